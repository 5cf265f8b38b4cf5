"""The command line as a user meets it: one-line errors, exit 2, no tracebacks."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from obview.cli import main

ENV = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent-obview-test"}


def run(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "obview.cli", *args], capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["BTC-PERP", "--venue", "nasdaq"], "valid: "),
        (["DOGE-PERP", "--venue", "demo"], "BTC-PERP"),
        # an empty name (a script's unset variable) is not the default: it ran BTC-PERP
        (["", "--venue", "demo", "--print"], "unknown symbol '' for venue demo; valid: "),
        (["BTC-PERP", "--venue", "", "--print"], "valid: "),
        (["BTC-PERP", "--venue", "demo", "--endpoint", "", "--print"], "--endpoint '': must be a ws://"),
        (["BTC-PERP", "--venue", "binance", "--rest-endpoint", "", "--print"], "--rest-endpoint '': must be"),
        (["BTC-PERP", "--bogus"], "unrecognized arguments"),
        (["BTC-PERP", "--venue", "demo", "--endpoint", "ftp://x"], "ws://"),
        (["BTC-PERP", "--venue", "binance", "--endpoint", "ws://[::1"], "not a valid URL (Invalid IPv6 URL)"),
        (["BTC-PERP", "--venue", "binance", "--endpoint", "ws://127.0.0.1:99999"], "Port out of range"),
        (["BTC-PERP", "--venue", "binance", "--rest-endpoint", "https://"], "names no host"),
        # a WebSocket feed is not an HTTP URL, nor the other way round
        (["BTC-PERP", "--venue", "bybit", "--endpoint", "http://127.0.0.1:1"], "must be a ws:// or wss:// URL"),
        (["BTC-PERP", "--venue", "binance", "--rest-endpoint", "wss://x"], "must be an http:// or https:// URL"),
        (["BTC-PERP", "--venue", "binance", "--endpoint", "ws://h/a b"], "a space"),
        (["BTC-PERP", "--venue", "demo", "--print", "--duration", "-1"], "positive"),
        (["demo-server", "--port", "70000"], "out of range"),
        (["replay", "/nonexistent/file.jsonl", "--venue", "nasdaq"], "valid: "),
        (["BTC-PERP", "--venue", "demo", "--print", "--duration", "nan"], "positive number"),
        (["BTC-PERP", "--venue", "demo", "--print", "--duration", "inf"], "positive number"),
        (["BTC-PERP", "--venue", "demo", "--log", "/nonexistent-dir/x.log"], "cannot write the log"),
        (["BTC-PERP", "--venue", "demo", "--record", "/tmp/obv-same.jsonl", "--log", "/tmp/./obv-same.jsonl"], "same file"),
        (["BTC-PERP", "--venue", "demo", "--record", ""], "--record needs a file name"),
        (["replay", "/tmp", "--venue", "demo"], "not a directory"),
        (["demo-server", "--rate", "-5"], "above 0"),
        (["demo-server", "--rate", "nan"], "above 0"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent-obview-test")
    with pytest.raises(SystemExit) as e:
        raise SystemExit(main(args))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_bad_config_file_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('theme = 3\n')
    assert main(["BTC-PERP", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'theme'" in err and str(cfg) in err


def test_version_and_venues(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and "obview" in capsys.readouterr().out
    assert main(["venues"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "BTC-PERP" in out


def test_print_mode_on_demo_venue_reports_live_book():
    pytest.importorskip("obview.sim.server")
    r = run("BTC-PERP", "--venue", "demo", "--print", "--duration", "3")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert 2 <= len(lines) <= 4
    last = lines[-1]
    assert last["venue"] == "demo" and last["symbol"] == "BTC-PERP" and last["state"] == "LIVE"
    assert last["best_bid"] < last["best_ask"] and last["spread"] > 0 and last["msgs_per_s"] > 0
    assert last["latency_ms_p50"] is not None
    # the counters replay's summary has, so a live run and its replay can be compared
    assert last["trades"] > 0 and last["gaps"] == 0 and last["checksum_errors"] == 0


def test_print_mode_ends_when_its_duration_is_up_not_on_the_next_whole_second():
    pytest.importorskip("obview.sim.server")
    r = run("BTC-PERP", "--venue", "demo", "--print", "--duration", "1.5")
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert r.returncode == 0 and len(lines) == 2, r.stdout  # at 1 s and at 1.5 s (it ran to 2 s)
    assert lines[1]["t"] - lines[0]["t"] < 0.9  # half a second apart; whole seconds read 1.0


def test_print_compare_gives_every_venue_and_the_figures_across_them(tmp_path):
    # demo LIVE; binance pointed at a closed local port: its state and why, never prices
    cfg = tmp_path / "c.toml"
    cfg.write_text('venues = ["demo", "binance"]\n[endpoints]\nbinance = "ws://127.0.0.1:9"\n')
    r = run("BTC-PERP", "--venue", "demo", "--config", str(cfg), "--print", "--compare", "--duration", "3")
    assert r.returncode == 0, r.stderr
    last = json.loads(r.stdout.splitlines()[-1])
    assert last["symbol"] == "BTC-PERP" and last["live"] == 1
    demo, binance = last["venues"]
    assert demo["venue"] == "demo" and demo["state"] == "LIVE" and demo["bid"] < demo["ask"]
    assert demo["bid_depth_quote"] > 0 and demo["ask_depth_quote"] > 0 and demo["vs_mid_bps"] == 0
    assert last["best_bid_venue"] == last["best_ask_venue"] == "demo"
    assert last["best_bid"] == demo["bid"] and last["cross_spread_bps"] == demo["spread_bps"] > 0
    assert binance["venue"] == "binance" and binance["state"] in ("CONNECTING", "RECONNECTING")
    assert binance["bid"] is None and binance["spread_bps"] is None and binance["reason"]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (a disk that is always full)")
def test_a_recording_that_stops_says_so_once():
    # --record onto a full disk: the book goes on, and the user is told (it was only logged);
    # the exit status says the recording is not whole (it was 0: a script took it for whole)
    r = run("BTC-PERP", "--venue", "demo", "--print", "--duration", "2", "--record", "/dev/full")
    assert r.returncode == 1, r.stderr
    assert [json.loads(x)["state"] for x in r.stdout.splitlines()][-1] == "LIVE"
    said = r.stderr.splitlines()
    assert len(said) == 1, said
    assert said[0].startswith("obview: recording to /dev/full stopped: No space left on device (")
    assert said[0].endswith(" frames not recorded)")
    # and every line says so, as the viewer's status bar does (a script reading only stdout
    # learnt it at the exit status)
    recs = [json.loads(x)["recording"] for x in r.stdout.splitlines()]
    assert recs and all(x == {"bytes": 0, "stopped": "No space left on device"} for x in recs)


def test_demo_server_on_a_port_in_use_is_one_line():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = run("demo-server", "--port", str(port))
    assert res.returncode == 2
    assert res.stderr == f"obview: error: cannot listen on 127.0.0.1:{port}: address already in use\n"


@pytest.mark.parametrize("extra", [[], ["--compare"]])
def test_print_into_a_pipe_closed_early_ends_quietly(extra):
    # `obview ... --print | head -1`: BrokenPipeError and a traceback, exit 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "obview.cli", "BTC-PERP", "--venue", "demo", "--print", "--duration", "8", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
    )  # fmt: skip
    try:
        assert proc.stdout.readline().startswith(b"{")
        proc.stdout.close()
        assert proc.wait(timeout=20) == 0
        assert proc.stderr.read() == b""
    finally:
        proc.kill()
        proc.wait()


def test_print_to_a_full_disk_is_one_line():
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [sys.executable, "-m", "obview.cli", "BTC-PERP", "--venue", "demo", "--print", "--duration", "2"],
            stdout=full, stderr=subprocess.PIPE, text=True, timeout=30, env=ENV,
        )  # fmt: skip
    assert r.returncode == 1
    assert r.stderr == "obview: error: cannot write to stdout: No space left on device\n"


@pytest.mark.parametrize("cmd", [["venues"], ["replay", "REC", "--venue", "hyperliquid", "--symbol", "BTC-PERP"]])
def test_listing_and_replay_output_to_a_closed_pipe_or_a_full_disk(cmd, tmp_path):
    """`obview venues | head -0`, `obview replay ... > /dev/full`: tracebacks (BrokenPipeError,
    OSError) where --print already ended quietly or in one line."""
    from test_record import write_hl_session

    rec = tmp_path / "s.jsonl"
    write_hl_session(rec).close()
    argv = [sys.executable, "-m", "obview.cli", *[str(rec) if a == "REC" else a for a in cmd]]
    with open("/dev/full", "w") as full:
        r = subprocess.run(argv, stdout=full, stderr=subprocess.PIPE, text=True, timeout=30, env=ENV)
    assert r.returncode == 1
    assert r.stderr == "obview: error: cannot write to stdout: No space left on device\n"
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # the reader is gone before the first line
    try:
        assert proc.wait(timeout=30) == 0
        assert proc.stderr.read() == b""
    finally:
        proc.kill()
        proc.wait()


def test_the_log_file_is_bounded_and_keeps_one_previous_file(tmp_path):
    import logging

    from obview.cli import _LogFile

    path = tmp_path / "obview.log"
    h = _LogFile(path, maxBytes=10_000, backupCount=1)
    log = logging.getLogger("obview.test.logfile")
    log.propagate = False
    log.addHandler(h)
    try:
        for i in range(2_000):  # ~100 kB of lines
            log.warning("venue error %d: the same complaint again", i)
    finally:
        log.removeHandler(h)
        h.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["obview.log", "obview.log.1"]
    assert all((tmp_path / f).stat().st_size <= 10_000 for f in files)


def test_a_log_the_disk_refuses_is_dropped_quietly():
    # logging printed "--- Logging error ---" and a traceback to stderr, over the app's screen
    r = run("BTC-PERP", "--venue", "okx", "--endpoint", "ws://127.0.0.1:1", "--print", "--duration", "2", "--log", "/dev/full")
    # only the line that says the run never had a book (its own exit status), no logging error
    assert r.returncode == 1
    assert r.stderr.startswith("obview: no live book from okx BTC-PERP in 2 s (") and r.stderr.count("\n") == 1


def test_duration_without_print_is_refused(capsys):
    # it was silently ignored: the viewer ran on
    assert main(["BTC-PERP", "--venue", "demo", "--duration", "3"]) == 2
    assert capsys.readouterr().err == "obview: error: --duration needs --print (the viewer runs until q)\n"


def test_replay_of_a_pipe_is_refused_and_symbols_are_taken_as_the_viewer_takes_them(tmp_path, capsys):
    from obview.record import Recorder

    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    # read twice, a pipe was empty the second time: "holds no received frames"
    assert main(["replay", str(fifo), "--venue", "demo", "--symbol", "BTC-PERP"]) == 2
    assert "replay needs a regular file" in capsys.readouterr().err
    path = tmp_path / "r.jsonl"
    with Recorder(path) as rec:
        rec.connect("ws://127.0.0.1:9/demo")
        rec.received('{"type":"snapshot","symbol":"BTC-PERP","seq":1,"ts":1,"bids":[["100","1"]],"asks":[["101","1"]]}', 1)
    for sym in ("btc-perp", "BTC"):
        assert main(["replay", str(path), "--venue", "demo", "--symbol", sym]) == 0
        assert json.loads(capsys.readouterr().out)["state"] == "LIVE"


def test_a_huge_symbol_is_one_short_line(capsys):
    assert main(["X" * 100_000, "--venue", "demo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and len(err) < 200 and "'" + "X" * 40 + "'\u2026" in err



def test_a_print_run_that_never_had_a_live_book_says_so_and_exits_1():
    # a closed port for the whole --duration: the lines say RECONNECTING and why, and the exit
    # status says there was no market (it was 0: a script took lines of nulls for a result)
    r = run("BTC-PERP", "--venue", "binance", "--endpoint", "ws://127.0.0.1:9", "--print", "--duration", "2")
    assert r.returncode == 1
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert lines and all(x["state"] == "RECONNECTING" and x["best_bid"] is None for x in lines)
    # the state the last line showed, without its countdown (closing the feed is not news)
    assert r.stderr == "obview: no live book from binance BTC-PERP in 2 s (RECONNECTING: connection refused)\n"


def test_print_compare_with_no_venue_live_exits_1(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('venues = ["binance", "okx"]\n[endpoints]\nbinance = "ws://127.0.0.1:9"\nokx = "ws://127.0.0.1:9"\n')
    r = run("BTC-PERP", "--venue", "binance", "--config", str(cfg), "--print", "--compare", "--duration", "2")
    assert r.returncode == 1
    assert json.loads(r.stdout.splitlines()[-1])["live"] == 0
    assert r.stderr == "obview: no live book from any of binance, okx for BTC-PERP in 2 s\n"


def test_a_feed_live_between_two_lines_counts_as_live():
    from obview.market import Market
    from obview.model import FeedStatus, Instrument
    from obview.printmode import went_live

    m = Market(Instrument("demo", "BTC-PERP", "BTC-PERP", 0.1, 0.001))
    assert not went_live(m)
    m.set_state(FeedStatus.LIVE)
    m.set_state(FeedStatus.RECONNECTING, "connection lost")
    assert not m.live and went_live(m)


def test_the_viewer_without_a_terminal_is_one_line_not_a_screen_into_a_file():
    # `obview BTC-PERP < /dev/null 2> log`: the screen's escape codes went into the file and no
    # key could end it (it ran until killed)
    r = run("BTC-PERP", "--venue", "demo")
    assert r.returncode == 2
    assert r.stderr == "obview: error: the viewer needs a terminal (its input or screen is redirected); use --print for lines\n"


def test_a_terminal_gone_without_a_sighup_ends_the_viewer():
    """A pane closed under a process of another session sends it no SIGHUP: obview's screen
    writer died on the first failed write, the next screen update blocked its event loop, and
    it ran on for good, its feeds open (SIGTERM ignored too)."""
    import pty
    import threading

    master, slave = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "obview.cli", "BTC-PERP", "--venue", "demo"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # no controlling terminal: closing the pty sends no SIGHUP
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(slave)
    seen = bytearray()

    def drain() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(master, 65536):
                seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while b"LIVE" not in seen and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert b"LIVE" in seen, bytes(seen[-300:])
        os.close(master)
        assert child.wait(timeout=10) == 128 + signal.SIGHUP
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_the_viewer_with_its_screen_redirected_says_so_on_the_terminal():
    # `obview BTC-PERP 2>/dev/null`: Textual draws on stderr, so the refusal went only there
    import pty

    master, slave = pty.openpty()
    with open(os.devnull, "w") as null:
        child = subprocess.Popen(
            [sys.executable, "-m", "obview.cli", "BTC-PERP", "--venue", "demo"],
            stdin=slave, stdout=slave, stderr=null, env=ENV,
        )  # fmt: skip
        os.close(slave)
        assert child.wait(timeout=20) == 2
    out = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(master, 4096):
            out += chunk
    os.close(master)
    assert b"obview: error: the viewer needs a terminal (its input or screen is redirected)" in out
