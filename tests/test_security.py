"""Hostile or broken input must do no harm: TLS verification, bounded frames and nesting,
non-finite numbers, network text kept inert in the terminal, hostile config and recording
files, and nothing listening beyond loopback unless asked."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import re
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from websockets.asyncio.server import serve

from e2e import FAST, until
from faultserver import start_fault_server
from obview.cli import main
from obview.feed.pipeline import FeedPipeline
from obview.feed.session import FeedSession, SessionOptions, checked_instrument
from obview.market import Market
from obview.model import FeedStatus, Side, Trade
from obview.text import safe
from obview.venues.demo import DemoAdapter
from obview.venues.registry import get_adapter, venue_names

HOSTILE = "[red]x[/red]\x1b[2J\x1b]0;pwned\x07\r\x00\x9b31m"
OPTS = FAST


def no_controls(text: str) -> bool:
    return not re.search(r"[\x00-\x1f\x7f-\x9f]", text)


# -- TLS ------------------------------------------------------------------------------------------
@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 / localhost, made now with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip(
            "needs the openssl command to make a test certificate (cryptography not installed)"
        )
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cmd = [
        "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, timeout=30)
    if res.returncode != 0:
        pytest.skip(f"openssl could not make a certificate: {res.stderr.decode()[:200]}")
    return cert, key


async def _tls_session(cert: Path, key: Path):
    sim = await start_fault_server(rate=50)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    tls = await serve(sim._handle, "127.0.0.1", 0, ssl=ctx, process_request=sim._process_request)
    port = tls.sockets[0].getsockname()[1]
    adapter = DemoAdapter("BTC-PERP", endpoint=f"wss://127.0.0.1:{port}/demo")
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=SessionOptions(**OPTS))
    return sim, tls, market, session


async def test_wss_with_self_signed_certificate_is_refused_with_a_clear_reason(
    self_signed, monkeypatch
):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    sim, tls, market, session = await _tls_session(*self_signed)
    task = session.start()
    try:
        await until(lambda: market.state.status is FeedStatus.RECONNECTING)
        assert market.state.reason.startswith("TLS certificate rejected: self"), market.state.reason
        await asyncio.sleep(0.5)
        assert market.state.status is not FeedStatus.LIVE and market.book.empty
        assert sim.attempts == []  # never got as far as the WebSocket upgrade
        assert session.connect_attempts >= 2  # keeps refusing on every retry, no downgrade
    finally:
        await session.stop()
        task.cancel()
        tls.close()
        await sim.close()


async def test_wss_with_a_trusted_certificate_connects(self_signed, monkeypatch):
    """Control for the test above: the same server is accepted once its certificate is
    trusted, so the refusal really is certificate verification."""
    cert, key = self_signed
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    sim, tls, market, session = await _tls_session(cert, key)
    task = session.start()
    try:
        await until(lambda: market.live)
        assert len(sim.attempts) == 1
    finally:
        await session.stop()
        task.cancel()
        tls.close()
        await sim.close()


# -- bounded frames and nesting -------------------------------------------------------------------
async def test_default_options_bound_frame_size():
    opts = SessionOptions(**OPTS)
    assert 0 < opts.max_size <= 16 * 2**20 and 0 < opts.max_queue <= 1024
    sim = await start_fault_server(rate=50)
    adapter = DemoAdapter("BTC-PERP", endpoint=sim.url("/demo"))
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=opts)
    task = session.start()
    try:
        await until(lambda: market.live)
        sim.oversize(opts.max_size + 1024)
        await until(lambda: market.state.status is FeedStatus.RECONNECTING)
        assert market.state.reason.startswith("frame over size limit")
        await until(lambda: market.live)
    finally:
        await session.stop()
        task.cancel()
        await sim.close()


async def test_deeply_nested_frames_are_counted_bad_frames_live():
    sim = await start_fault_server(rate=50)
    adapter = DemoAdapter("BTC-PERP", endpoint=sim.url("/demo"))
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=SessionOptions(**OPTS))
    task = session.start()
    try:
        await until(lambda: market.live)
        sim.inject("[" * 200_000 + "]" * 200_000)  # beyond orjson's depth limit (1024)
        await until(lambda: market.stats.bad_frames == 1)
        assert "depth limit" in market.stats.last_error
        within = "[" * 1000 + "]" * 1000  # within the limit: parsed, then rejected by shape
        sim.inject(
            '{"type":"delta","symbol":"BTC-PERP","seq":1,"prev_seq":0,"ts":1,"bids":'
            + within
            + ',"asks":[]}'
        )
        await until(lambda: market.stats.bad_frames == 2)
        await asyncio.sleep(0.1)
        assert market.live and len(sim.attempts) == 1
    finally:
        await session.stop()
        task.cancel()
        await sim.close()


HOSTILE_FRAMES: list[str | bytes] = [
    b"",
    b"\x00\xff\xfe",
    "[" * 5000 + "]" * 5000,
    '{"a":' * 5000 + "1" + "}" * 5000,
    '{"data":' + "[" * 1000 + "]" * 1000 + "}",
    "null",
    "1e999999",
    '"'
    + HOSTILE.replace("\x00", "")
    .replace("\x1b", "\\u001b")
    .replace("\x07", "\\u0007")
    .replace("\r", "\\r")
    .replace("\x9b", "\\u009b")
    + '"',
    '{"type":"error","reason":"[red]boom\\u001b[2J\\u0007"}',
    '{"type":"snapshot","symbol":"BTC-PERP","seq":1e400,"ts":1,"bids":[],"asks":[]}',
    '{"arg":{"channel":"books"},"data":[{"bids":[["nan","1"]],"asks":[]}]}',
    '{"topic":"orderbook.200.BTCUSDT","type":"snapshot","data":{"b":[["inf","1"]],"a":[]}}',
]


@pytest.mark.parametrize("venue", venue_names())
def test_every_adapter_counts_hostile_frames_and_never_raises(venue):
    adapter = get_adapter(venue)("BTC-PERP", endpoint="ws://127.0.0.1:9")
    market = Market(adapter.default_instrument())
    pipeline = FeedPipeline(adapter, market)
    for spec in adapter.streams():
        for frame in HOSTILE_FRAMES:
            pipeline.on_frame(spec.name, frame, time.time())  # must not raise
    assert market.stats.bad_frames >= len(adapter.streams()) * 4
    assert no_controls(market.stats.last_error)
    assert market.book.empty or not market.book.is_crossed()


def test_numbers_a_book_cannot_hold_are_bad_frames_not_book_levels():
    adapter = DemoAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    market = Market(adapter.default_instrument())
    p = FeedPipeline(adapter, market)
    snap = '{"type":"snapshot","symbol":"BTC-PERP","seq":1,"ts":1,"bids":[["100","1"]],"asks":[["101","1"]]}'
    p.on_frame("demo", snap, time.time())
    assert market.live
    market.tick()
    for bad in (
        '{"type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1,"bids":[["nan","1"]],"asks":[]}',
        '{"type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1,"bids":[["100","inf"]],"asks":[]}',
        '{"type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1,"bids":[["1e999","1"]],"asks":[]}',
        '{"type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1,"bids":[["-5","1"]],"asks":[]}',
        '{"type":"trade","symbol":"BTC-PERP","id":"1","price":"nan","size":"1","side":"buy","ts":1}',
        '{"type":"trade","symbol":"BTC-PERP","id":"1","price":"100","size":"inf","side":"buy","ts":1}',
        # finite, but past what a book's arithmetic holds: the mid of 1e308 and 1.5e308 is inf,
        # and grouping raised OverflowError in the ladder
        '{"type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1,"bids":[],"asks":[["1.5e308","1"]]}',
        '{"type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1,"bids":[["100","1e300"]],"asks":[]}',
        '{"type":"trade","symbol":"BTC-PERP","id":"1","price":"1e16","size":"1","side":"buy","ts":1}',
    ):
        assert p.on_frame("demo", bad, time.time()) == []
    assert market.stats.bad_frames == 9 and "finite" in market.stats.last_error
    assert market.book.top(5) == ([(100.0, 1.0)], [(101.0, 1.0)]) and not market.trades
    assert market.tick(time.time() + 1) is not None  # the heatmap sampler still works
    # the dropped delta's seq is missing: the next one is a gap, resynced, never applied blind
    p.on_frame(
        "demo",
        '{"type":"delta","symbol":"BTC-PERP","seq":3,"prev_seq":2,"ts":1,"bids":[],"asks":[]}',
        time.time(),
    )
    assert market.state.status is FeedStatus.SYNCING and market.state.reason.startswith("seq gap")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 0.0, -1.0])
def test_instrument_facts_with_unusable_numbers_are_rejected(bad):
    inst = DemoAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9").default_instrument()
    assert checked_instrument(inst) == inst
    for field in ("tick", "lot", "contract_value"):
        assert checked_instrument(dataclasses.replace(inst, **{field: bad})) is None
    assert no_controls(checked_instrument(dataclasses.replace(inst, base=HOSTILE)).base)


# -- network text stays inert ---------------------------------------------------------------------
def test_safe_strips_control_characters_and_keeps_markup_literal():
    s = safe(HOSTILE)
    assert no_controls(s) and "[red]x[/red]" in s and "\x1b" not in s


async def test_venue_error_reason_reaches_state_and_log_without_escapes(caplog):

    logger = logging.getLogger("obview.feed")
    logger.addHandler(caplog.handler)
    try:
        sim = await start_fault_server(rate=50)
        adapter = DemoAdapter("BTC-PERP", endpoint=sim.url("/demo"))
        market = Market(adapter.default_instrument())
        session = FeedSession(adapter, market, options=SessionOptions(**OPTS))
        task = session.start()
        try:
            await until(lambda: market.live)
            sim.inject('{"type":"error","reason":"[red]gone\\u001b[2J\\u0007\\r","fatal":true}')
            await until(lambda: market.state.status is FeedStatus.FAILED)
            assert market.state.reason.startswith("[red]gone") and no_controls(market.state.reason)
            assert no_controls(market.stats.last_error)
            logged = [r.getMessage() for r in caplog.records if "venue error" in r.getMessage()]
            assert logged and all(no_controls(m) for m in logged)
        finally:
            await session.stop()
            task.cancel()
            await sim.close()
    finally:
        logger.removeHandler(caplog.handler)


async def test_ui_renders_hostile_symbol_reason_and_trade_ids_as_plain_text():
    from obview.ui.app import ObviewApp
    from obview.ui.statsbar import StatsBar
    from obview.ui.synthetic import StaticManager, build_market

    market, now = build_market(seed=3, seconds=5, symbol=HOSTILE, gap=None)
    # instrument names come from the venue's REST facts; the session passes them through this
    market.instrument = checked_instrument(
        dataclasses.replace(market.instrument, base=HOSTILE, quote=HOSTILE)
    )
    for i in range(5):
        market.add_trade(
            Trade("demo", HOSTILE, 100_000.0 + i, 0.5, Side.BUY, f"{HOSTILE}{i}", now - 1, now - 1)
        )
    market.set_state(FeedStatus.SYNCING, f"seq gap {HOSTILE}")
    market.stats.last_error, market.stats.last_error_at = HOSTILE, now  # shown in the bar
    app = ObviewApp(
        StaticManager({("demo", HOSTILE): market}, ["demo"]), "demo", HOSTILE, clock=lambda: now
    )
    async with app.run_test(size=(200, 40)) as pilot:
        async with asyncio.timeout(5):
            await pilot.pause()
            await pilot.pause(0.1)
        text = app.query_one(StatsBar)._text
        assert "[red]x[/red]" in text.plain  # markup shown literally, not applied
        assert no_controls(text.plain.replace("\n", ""))  # the bar's own line break only
        assert not any("red" in str(span.style) for span in text.spans)
        out = io.StringIO()
        Console(file=out, force_terminal=True, color_system="truecolor", width=240).print(text)
        ansi = out.getvalue()
        # the only escape sequences in the output are the renderer's own colours (SGR)
        assert re.sub(r"\x1b\[[0-9;]*m", "", ansi).count("\x1b") == 0
        for widget in app.query("*"):
            for strip in getattr(widget, "_strips", None) or []:
                assert no_controls(strip.text), (type(widget).__name__, strip.text)


# -- hostile files ---------------------------------------------------------------------------------
def _one_error_line(capsys, rc: int) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("obview: error: "), err
    assert "Traceback" not in err
    return lines[0]


CONFIGS = {
    "binary": b"\x00\xff\xfe\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8,
    "huge": b"# padding\n" * 40_000,
    "wrong_type_int": b'warm_venues = "three"\n',
    "wrong_type_list": b'venues = "demo"\n',
    "wrong_type_table": b"endpoints = 5\n",
    "wrong_url": b'[endpoints]\ndemo = "file:///etc/passwd"\n',
    "nested": b"ui = " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "python": b"import os\nos.system('touch MARKER')\n",
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_hostile_config_file_is_one_error_line_and_exit_2(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "config.toml"
    path.write_bytes(CONFIGS[name].replace(b"MARKER", str(tmp_path / "executed").encode()))
    rc = main(["--config", str(path), "--venue", "demo", "--print", "--duration", "1"])
    line = _one_error_line(capsys, rc)
    assert str(path) in line and no_controls(line)
    assert not (tmp_path / "executed").exists()


RECORDINGS = {
    "binary": bytes(range(256)) * 16,
    "nested": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "python": b"import os\nos.system('touch MARKER')\n",
    "fake_gzip": bytes(range(200)),
}


@pytest.mark.parametrize("name", list(RECORDINGS))
def test_hostile_recording_is_one_error_line_and_exit_2(name, tmp_path, capsys):
    path = tmp_path / ("rec.jsonl.gz" if name == "fake_gzip" else "rec.jsonl")
    path.write_bytes(RECORDINGS[name].replace(b"MARKER", str(tmp_path / "executed").encode()))
    rc = main(["replay", str(path), "--venue", "demo", "--symbol", "BTC-PERP", "--summary"])
    line = _one_error_line(capsys, rc)
    assert no_controls(line)
    assert not (tmp_path / "executed").exists()


def test_replay_of_hostile_frames_prints_no_terminal_escapes(tmp_path):
    path = tmp_path / "rec.jsonl"
    path.write_text(
        '{"t":1,"connect":"ws://127.0.0.1/demo"}\n'
        '{"t":1,"raw":"{\\"type\\":\\"mystery\\u001b[2J\\"}"}\n'
        '{"t":1,"raw":"{\\"type\\":\\"error\\",\\"reason\\":\\"[red]boom\\\\u001b[2J\\\\u0007\\",\\"fatal\\":true}"}\n'
    )
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "obview.cli",
            "replay",
            str(path),
            "--venue",
            "demo",
            "--symbol",
            "BTC-PERP",
            "--summary",
        ],
        capture_output=True,
        timeout=30,
    )
    # no book in it: one error line, which carries the venue's (sanitised) last word
    assert res.returncode == 2, res.stderr
    assert res.stderr.count(b"\n") == 1 and b"the last error: [red]boom" in res.stderr
    assert b"\x1b" not in res.stderr and b"\x07" not in res.stderr and b"\x1b" not in res.stdout


# -- listening addresses ----------------------------------------------------------------------------
async def test_simulator_and_demo_feed_listen_on_loopback_only():
    from obview.feed.manager import FeedManager
    from obview.sim.server import start_server

    server = await start_server()
    try:
        addrs = {s.getsockname()[0] for s in server._server.sockets}
        assert addrs == {"127.0.0.1"}
    finally:
        await server.close()
    manager = FeedManager(venues=["demo"], options=SessionOptions(**OPTS))
    try:
        await manager.open("demo", "BTC-PERP")
        demo = manager.demo_server
        assert {s.getsockname()[0] for s in demo._server.sockets} == {"127.0.0.1"}
    finally:
        await manager.close()


def test_demo_server_command_binds_loopback_by_default():
    proc = subprocess.Popen(
        [sys.executable, "-m", "obview.cli", "demo-server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline().decode()
        assert re.search(r"ws://127\.0\.0\.1:\d+/demo", line), line
        port = int(re.search(r":(\d+)/", line).group(1))
        # and the kernel agrees: the listening socket is on 127.0.0.1, not 0.0.0.0
        listening = Path("/proc/net/tcp").read_text() if Path("/proc/net/tcp").exists() else ""
        if listening:
            local = [row.split()[1] for row in listening.splitlines()[1:] if row.split()[3] == "0A"]
            mine = [a for a in local if int(a.split(":")[1], 16) == port]
            assert mine == [f"0100007F:{port:04X}"], mine
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_flood_of_bad_frames_is_logged_in_bounded_lines(monkeypatch):
    # A feed of nothing but malformed frames (or a recording replayed as the wrong venue)
    # must not write a log line per frame: the first at once, then one per interval that
    # says how many it stood for. Every frame is still counted.
    from obview.feed import pipeline as pl
    from pipelog import pipeline_log_lines

    clock = [1000.0]
    monkeypatch.setattr(pl.time, "monotonic", lambda: clock[0])
    adapter = DemoAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    market = Market(adapter.default_instrument())
    p = FeedPipeline(adapter, market)
    with pipeline_log_lines() as lines:
        for _ in range(5000):
            p.on_frame("demo", '{"type":"delta","seq":', 0.0)
        assert len(lines) == 1 and "malformed JSON" in lines[0] and "more" not in lines[0]
        clock[0] += pl.BAD_FRAME_LOG_INTERVAL - 0.5
        p.on_frame("demo", "[1]", 0.0)
        assert len(lines) == 1
        clock[0] += 0.5
        p.on_frame("demo", "[1]", 0.0)
        assert len(lines) == 2 and "(and 5000 more bad frames since the last such line)" in lines[1]
    assert market.stats.bad_frames == p.parse_errors == 5002
