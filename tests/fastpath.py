"""Helpers for the fast-path tests: a venue's ``parse_fast`` must give exactly what ``parse``
(plus the pipeline's number check) gives, or None, on every frame: recorded, simulated, and
the same frames with one number or value swapped for something hostile."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from urllib.parse import urlsplit

from obview.feed.pipeline import _numbers_ok
from obview.replay import replay_frames
from obview.venues.base import VenueAdapter

REPO = Path(__file__).resolve().parents[1]
RECORDINGS = Path(os.environ.get("OBVIEW_RECORDINGS", REPO.parent / "shared" / "recordings"))

BAD = "bad"  # the slow path refuses the frame (raises, or a number the book must not hold)

#: what a hostile or odd venue might put where a number belongs
SWAPS = [
    '"NaN"', '"nan"', '"inf"', '"-inf"', '"Infinity"', '"-1"', '"-0.5"', '"0"', '"0x10"', '" 1"',
    '"1_0"', '"1e400"', '""', '"abc"', '"-0"', "null", "true", "[]", "{}", "-1", "1e400", "0",
    '"1e-400"', "1.5", '"12"', '"2.0"', "2.0", "1e15", "12.0", "-12", '"1e3"', "false",
    '"false"',
]

_NUMBER = re.compile(r'"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"|(?<=[:\[,])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?=[,\]}])')


def recorded_frames(name: str) -> list[str]:
    """Every received frame of ``RECORDINGS/name`` (empty when the recording is absent)."""
    path = RECORDINGS / name
    if not path.exists():
        return []
    return [r["raw"] for r in replay_frames(path) if isinstance(r.get("raw"), str)]


def sim_frames(venue: str, symbol: str = "BTC-PERP", steps: int = 300) -> list[tuple[str, str]]:
    """(stream, frame) the simulator speaking ``venue``'s dialect sends on each of the adapter's
    streams: subscribe answers, the first snapshot, then ``steps`` steps of updates and trades."""
    from obview.sim.dialects import load_dialects
    from obview.sim.engine import SimMarket
    from obview.venues.registry import get_adapter

    dialects = load_dialects([venue])
    adapter = get_adapter(venue)(symbol, endpoint="ws://127.0.0.1:9", rest_endpoint="http://127.0.0.1:9")
    t0 = 1_700_000_000.0
    markets = {symbol: SimMarket(symbol, seed=11, start_time=t0)}
    out: list[tuple[str, str]] = []
    per_stream = []
    for spec in adapter.streams():
        u = urlsplit(spec.url)
        d = dialects[venue](markets, u.path + (f"?{u.query}" if u.query else ""))
        per_stream.append((spec.name, d))
        out += [(spec.name, o.text) for o in d.on_connect()]
        for frame in spec.subscribe:
            out += [(spec.name, o.text) for o in d.on_message(frame)]
    for k in range(steps):
        update = markets[symbol].step(t0 + 0.01 * (k + 1))
        for name, d in per_stream:
            out += [(name, o.text) for o in d.on_update(update)]
    return out


def reference(adapter: VenueAdapter, stream: str, frame: str | bytes):
    """What the slow path makes of ``frame``: its events, or BAD."""
    try:
        events = adapter.parse(stream, frame, 0.0)
    except Exception:
        return BAD
    if not all(_numbers_ok(e) for e in events):
        return BAD
    return events


def check(adapter: VenueAdapter, stream: str, frame: str | bytes) -> bool:
    """Assert the fast path agrees with the slow one on ``frame``; True if it handled it."""
    fast = adapter.parse_fast(stream, frame, 0.0)
    if fast is None:
        return False
    ref = reference(adapter, stream, frame)
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    if ref is BAD:
        # The typed decoders also read integers (sequence numbers, times) written as numeric
        # strings, which ``parse`` may refuse; what they must never do is let a bad price or
        # size through.
        assert all(_numbers_ok(e) for e in fast), f"fast path let a bad number through: {text[:300]}"
        return True
    assert fast == ref, f"fast and slow paths differ on: {text[:300]}"
    return True


def mutations(frame: str, rng: random.Random, per_frame: int = 6) -> list[str]:
    """``frame`` with one number (quoted or bare) swapped for a hostile value, a few times."""
    spans = [m.span() for m in _NUMBER.finditer(frame)]
    out = []
    for _ in range(min(per_frame, len(spans))):
        a, b = rng.choice(spans)
        out.append(frame[:a] + rng.choice(SWAPS) + frame[b:])
    return out


def check_all(adapter: VenueAdapter, stream: str, frames: list, seed: int = 1) -> tuple[int, int]:
    """Check every frame, its bytes form and its mutations; (handled, total) over the originals."""
    rng = random.Random(seed)
    handled = 0
    for f in frames:
        if check(adapter, stream, f):
            handled += 1
        check(adapter, stream, f.encode())
        for m in mutations(f, rng):
            check(adapter, stream, m)
    return handled, len(frames)


# -- whole runs through the pipeline ---------------------------------------------------------------
def pipeline_run(adapter: VenueAdapter, stream: str, frames: list, extra=None) -> dict:
    """Feed ``frames`` to a fresh pipeline of ``adapter``; what a user could see of the run:
    the actions, the book after every frame, the final books, state, counters and trades
    (``extra(pipe)`` adds a venue's own sync state)."""
    from obview.feed.pipeline import FeedPipeline
    from obview.market import Market

    pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
    m = pipe.market
    actions, books = [], []
    for i, f in enumerate(frames):
        actions.append(pipe.on_frame(stream, f, float(i)))
        books.append((m.book.best_bid(), m.book.best_ask(), len(m.book), m.state.status))
    out = {
        "actions": actions,
        "books": books,
        "bids": dict(m.book.bids),
        "asks": dict(m.book.asks),
        "synced": pipe.sync.synced,
        "last_seq": pipe.sync.last_seq,
        "buffer": list(pipe.sync.buffer),
        "state": (m.state.status, m.state.reason),
        "gaps": m.stats.gaps,
        "resyncs": m.resyncs,
        "parse_errors": pipe.parse_errors,
        "bad_frames": m.stats.bad_frames,
        "last_error": m.stats.last_error,
        "trades": list(m.trades),
        "liquidations": m.stats.liquidations,
        "book_events": pipe.book_events,
        "version": m.version,
    }
    if extra is not None:
        out.update(extra(pipe))
    return out


def assert_same(fast: dict, slow: dict) -> dict:
    """Two ``pipeline_run`` results are equal, key by key (the first that differs is named)."""
    for key in fast:
        assert fast[key] == slow[key], key
    return fast
