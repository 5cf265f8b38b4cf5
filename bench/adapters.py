"""Adapters: frames/s through parse + sync + apply (FeedPipeline) on real recorded depth frames,
beside the bare ``orjson.loads`` floor on the identical frames. Simulator-dialect frames are
measured the same way for venues without a recording."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from bench.common import Figure
from obview.record import Replay, replay_frames

RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "recordings"

# venue, file, instrument, marker that a depth frame of that instrument contains
CASES = [
    ("binance", "binance.jsonl", "SUSHIUSDT", "sushiusdt@depth"),
    ("okx", "okx.jsonl", "BTC-USDT", '"channel":"books","instId":"BTC-USDT"'),
    ("deribit", "deribit.jsonl", "BTC-24SEP21-8000-P", "book.BTC-24SEP21-8000-P"),
]


def _load(venue: str, path: Path, instrument: str, marker: str):
    """(records to feed, number of depth frames): the instrument's depth frames and snapshots."""
    probe = Replay(venue, instrument=instrument)
    feed = []
    current = probe.book_spec.name
    for rec in replay_frames(path):
        if "connect" in rec:
            current = probe.stream_for(str(rec["connect"])) or probe.book_spec.name
        elif "http" in rec and probe._snapshot_is_ours(str(rec["http"])):
            feed.append(("http", current, rec["raw"].encode()))
        elif "raw" in rec and isinstance(rec["raw"], str) and marker in rec["raw"].replace("\\", ""):
            feed.append(("raw", current, rec["raw"]))
    return feed, sum(1 for k, _, _ in feed if k == "raw")


def _run_case(venue, feed, n_frames, instrument, rounds):
    frames = [text for k, _, text in feed if k == "raw"]

    def through_pipeline() -> float:
        total = 0.0
        for _ in range(rounds):
            r = Replay(venue, instrument=instrument)
            pipe = r.pipeline
            t0 = time.perf_counter()
            for kind, name, data in feed:
                if kind == "raw":
                    pipe.on_frame(name, data, 0.0)
                else:
                    pipe.on_snapshot_body(data, 0.0)
            total += time.perf_counter() - t0
            assert pipe.parse_errors == 0, f"{venue}: parse errors in benchmark frames"
        return n_frames * rounds / total

    def floor() -> float:
        loads = orjson.loads
        t0 = time.perf_counter()
        for _ in range(rounds):
            for f in frames:
                loads(f)
        return n_frames * rounds / (time.perf_counter() - t0)

    return through_pipeline, floor


def run(quick: bool) -> list[Figure]:
    runs = 3 if quick else 5
    figs: list[Figure] = []
    for venue, fname, inst, marker in CASES:
        path = RECORDINGS / fname
        if not path.exists():
            figs.append(Figure(f"adapter {venue} ({inst})", "frames/s", [], note=f"recording {path} not found"))
            continue
        try:
            feed, n = _load(venue, path, inst, marker)
        except Exception as e:  # an adapter not available in this build
            figs.append(Figure(f"adapter {venue} ({inst})", "frames/s", [], note=f"skipped: {e}"))
            continue
        rounds = max(1, (2000 if quick else 10000) // max(n, 1))
        pipe_fn, floor_fn = _run_case(venue, feed, n, inst, rounds)
        p_vals, f_vals = [], []
        for _ in range(runs):
            p_vals.append(pipe_fn())
            f_vals.append(floor_fn())
        pv = sorted(p_vals)[len(p_vals) // 2]
        fv = sorted(f_vals)[len(f_vals) // 2]
        sample = orjson.loads(feed[-1][2]) if feed else None
        size = len(feed[-1][2]) if sample is not None else 0
        figs.append(Figure(f"adapter {venue}: parse+sync+apply, recorded {inst} depth frames (n={n}, ~{size} B)", "frames/s", p_vals,
                           target=">= 70% of floor", note=f"{pv / fv:.0%} of the orjson.loads floor"))
        figs.append(Figure(f"adapter {venue}: orjson.loads floor, same frames", "frames/s", f_vals))
    return figs
