"""A recording survives the ways a process really ends: SIGTERM and SIGHUP (a `kill`, a closed
terminal) close it as Ctrl-C does, and a `.gz` one killed outright still replays up to its last
sync flush. Before, a `.gz` recording ended by any of them was an empty file."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys

import pytest

from obview.record import Recorder
from obview.replay import replay_frames, replay_summary

ENV = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent-obview-test"}


def _start(path, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "obview.cli", "BTC-PERP", "--venue", "demo", "--print", "--record", str(path), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)],
    )


def _wait_lines(proc, n: int) -> None:
    for _ in range(n):  # --print writes a line a second
        assert proc.stdout.readline(), proc.stderr.read()


@pytest.mark.parametrize(("sig", "rc"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_print_session_ended_by_a_signal_closes_its_gz_recording_whole(tmp_path, sig, rc):
    path = tmp_path / "rec.jsonl.gz"
    proc = _start(path)
    try:
        _wait_lines(proc, 2)
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == rc
    finally:
        proc.kill()
        proc.wait()
    assert "Traceback" not in proc.stderr.read()
    with gzip.open(path, "rt") as f:  # a whole gzip stream: its end marker is there
        assert sum(1 for _ in f) > 10
    s = replay_summary(path, "demo", symbol="BTC-PERP")
    assert s["state"] == "LIVE" and s["parse_errors"] == 0


def test_a_gz_recording_killed_outright_replays_up_to_its_last_flush(tmp_path):
    path = tmp_path / "rec.jsonl.gz"
    proc = _start(path)
    try:
        _wait_lines(proc, 3)
    finally:
        proc.kill()  # SIGKILL: nothing is closed
        proc.wait()
    s = replay_summary(path, "demo", symbol="BTC-PERP")
    assert s["frames"] > 10 and s["state"] == "LIVE" and s["parse_errors"] == 0
    assert s["cut_short_at_line"] is not None  # said, as a plain file's torn line is
    # a run appended after it made the whole file unreadable (the new gzip member followed a
    # cut one): it is refused with one line, and the file still replays as it did
    with pytest.raises(OSError) as e:
        Recorder(path)
    assert "ends cut short" in e.value.strerror and "record to a new file" in e.value.strerror
    assert replay_summary(path, "demo", symbol="BTC-PERP")["frames"] == s["frames"]


def test_the_recorder_sync_flushes_a_gz_file_once_a_second(tmp_path):
    now = [1000.0]
    path = tmp_path / "r.jsonl.gz"
    rec = Recorder(path, clock=lambda: now[0])
    rec.received('{"a":1}', 1)
    assert os.path.getsize(path) < 30  # the gzip header at most: held in the buffer
    now[0] += 1.5
    rec.received('{"a":2}', 1)
    # readable as it stands, without close: the cut-off stream reads up to the flush
    assert [r["raw"] for r in replay_frames(path)] == ['{"a":1}', '{"a":2}']
    rec.close()
    assert [r["raw"] for r in replay_frames(path)] == ['{"a":1}', '{"a":2}']


def test_a_gz_file_cut_before_any_line_is_still_an_error(tmp_path):
    from obview.replay import ReplayError

    path = tmp_path / "cut.jsonl.gz"
    data = gzip.compress(b'{"t":1,"raw":"x"}\n' * 100)
    path.write_bytes(data[:15])
    with pytest.raises(ReplayError, match="cannot read"):
        list(replay_frames(path))


def test_a_gz_recording_appended_to_counts_what_it_holds_against_the_cap(tmp_path):
    # each run counted from 0: a .gz file appended to run after run grew by the cap each time
    path = tmp_path / "a.jsonl.gz"
    with Recorder(path) as rec:
        for i in range(2000):
            rec.received(f'{{"n":{i},"pad":"{i * 7919 % 10007:x}"}}', 1)
    held = os.path.getsize(path)
    rec = Recorder(path, max_bytes=held + 200)
    for _ in range(50):
        rec.received('{"more":1}', 1)
    rec.close()
    assert rec.full and rec.lines < 50
