"""Adapters: frames/s through parse + sync + apply (FeedPipeline) on depth frames, beside the
bare ``orjson.loads`` floor on the identical frames.

Two sources of frames:

- real recordings (../shared/recordings/), for the venues that have one;
- the simulator speaking each venue's dialect (obview.sim.dialects), for every venue whose
  dialect exists: subscribe (or REST snapshot), then one frame per simulator step.

Only the steady state is timed: each round starts a fresh pipeline and feeds it, untimed, up
to the frame that makes the book whole (snapshot, buffered deltas); the depth frames after
that are timed. The floor parses exactly those timed frames. Python's ``float()`` of the
price/size strings is measured separately as a second floor, since every adapter must do it.

A third floor is the least work any correct client does in Python on the same frames: the
adapter's typed decoder (``parse_fast``: decode, numbers converted and checked in C) and then
one plain-dict store per level, with no sequence check, no ordering and no statistics. For the
Binance cases a stage breakdown (us per frame) shows where the rest goes.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson

from bench.common import Figure
from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus
from obview.replay import Replay, replay_frames

RECORDINGS = Path(__file__).resolve().parents[2] / "shared" / "recordings"

# venue, file, instrument, marker(s) that a depth frame of that instrument contains
CASES = [
    ("binance", "binance.jsonl", "SUSHIUSDT", "sushiusdt@depth"),
    ("okx", "okx.jsonl", "BTC-USDT", '"channel":"books","instId":"BTC-USDT"'),
    ("deribit", "deribit.jsonl", "BTC-24SEP21-8000-P", "book.BTC-24SEP21-8000-P"),
    ("bitmex", "bitmex.jsonl", "XBTUSD", ('{"table":"orderBookL2",', '"symbol":"XBTUSD"')),
    ("kraken", "kraken_futures.jsonl", "PI_ETHUSD", ('"feed":"book', '"product_id":"PI_ETHUSD"')),
]

# venue, dialect settings, label suffix: OKX twice, as live (checksum 0 since 2026-06, the sync
# then keeps no level texts) and with the checksums it sent before (CRC32 verified per update)
SIM_CASES: list[tuple[str, dict, str]] = [
    ("demo", {}, ""),
    ("binance", {}, ""),
    ("bybit", {}, ""),
    ("okx", {"send_checksum": False}, " (checksum 0, as live)"),
    ("okx", {"send_checksum": True}, " (checksums, pre-2026)"),
    ("deribit", {}, ""),
    ("hyperliquid", {}, ""),
    ("bitmex", {}, ""),
    ("kraken", {}, ""),
    ("dydx", {}, ""),
]
SIM_SYMBOL = "BTC-PERP"
MAX_ROUNDS = 20

Record = tuple[str, str, object]  # ("raw", stream, frame) or ("http", stream, body)


# -- frames -------------------------------------------------------------------------------------
def _load_recording(
    venue: str, path: Path, instrument: str, marker: str | tuple[str, ...]
) -> list[Record]:
    markers = (marker,) if isinstance(marker, str) else marker
    probe = Replay(venue, instrument=instrument)
    feed: list[Record] = []
    current = probe.book_spec.name
    for rec in replay_frames(path):
        if "connect" in rec:
            current = probe.stream_for(str(rec["connect"])) or probe.book_spec.name
        elif "http" in rec and probe._snapshot_is_ours(str(rec["http"])):
            feed.append(("http", current, rec["raw"].encode()))
        elif (
            "raw" in rec
            and isinstance(rec["raw"], str)
            and all(m in rec["raw"].replace("\\", "") for m in markers)
        ):
            feed.append(("raw", current, rec["raw"]))
    return feed


def _sim_feed(venue: str, steps: int, settings: dict | None = None):
    """(adapter factory, records) for the simulator speaking ``venue``'s dialect, or a reason."""
    from obview.sim.dialects import load_dialects
    from obview.sim.engine import SimMarket
    from obview.venues.registry import get_adapter

    dialects = load_dialects([venue])
    if venue not in dialects:
        return None, f"no simulator dialect for {venue} yet"
    try:
        acls = get_adapter(venue)
    except Exception as e:
        return None, f"no adapter: {e}"

    def make():
        return acls(SIM_SYMBOL, endpoint="ws://127.0.0.1:9", rest_endpoint="http://127.0.0.1:9")

    adapter = make()
    spec = next(s for s in adapter.streams() if s.book)
    u = urlsplit(spec.url)
    t0 = 1_700_000_000.0
    markets = {SIM_SYMBOL: SimMarket(SIM_SYMBOL, seed=7, start_time=t0)}
    dialect = dialects[venue](markets, u.path + (f"?{u.query}" if u.query else ""))
    for key, value in (settings or {}).items():
        setattr(dialect, key, value)
    feed: list[Record] = []

    def add(outs) -> None:
        for o in outs:
            if o.kind in ("delta", "snapshot") or not feed:
                feed.append(("raw", spec.name, o.text))

    add(dialect.on_connect())
    for frame in spec.subscribe:
        add(dialect.on_message(frame))
    req = adapter.snapshot_request()
    for k in range(steps):
        add(dialect.on_update(markets[SIM_SYMBOL].step(t0 + 0.01 * (k + 1))))
        if k == 5 and req is not None:  # REST venues: snapshot after a few buffered deltas
            r = urlsplit(req.url)
            res = dialects[venue].http(markets, r.path, dict(parse_qsl(r.query)), b"")
            if res is None or res[0] != 200:
                return None, f"simulator REST snapshot failed: {res and res[0]}"
            feed.append(("http", spec.name, res[1]))
    return make, feed


# -- timing -------------------------------------------------------------------------------------
def _feed_one(pipe: FeedPipeline, rec: Record) -> None:
    kind, name, data = rec
    if kind == "raw":
        pipe.on_frame(name, data, 0.0)
    else:
        pipe.on_snapshot_body(data, 0.0)


def _split(make_pipe, feed: list[Record]) -> int:
    """Index of the first record after the one that made the book whole."""
    pipe = make_pipe()
    for i, rec in enumerate(feed):
        _feed_one(pipe, rec)
        if pipe.market.state.status is FeedStatus.LIVE and pipe.sync.synced:
            return i + 1
    raise RuntimeError("the book never became whole on these frames")


def _measure(make_pipe, feed: list[Record], rounds: int) -> tuple[float, float, int]:
    """(pipeline frames/s, orjson floor frames/s, timed frames) over ``rounds`` fresh pipelines."""
    cut = _split(make_pipe, feed)
    warm, timed = feed[:cut], [r for r in feed[cut:] if r[0] == "raw"]
    frames = [r[2] for r in timed]
    total = 0.0
    for _ in range(rounds):
        pipe = make_pipe()
        for rec in warm:
            _feed_one(pipe, rec)
        on_frame = pipe.on_frame
        t0 = time.perf_counter()
        for _kind, name, data in timed:
            on_frame(name, data, 0.0)
        total += time.perf_counter() - t0
        assert pipe.parse_errors == 0, "parse errors in benchmark frames"
        assert pipe.market.stats.gaps == 0 and pipe.sync.synced, "book broke during the benchmark"
    loads = orjson.loads
    t0 = time.perf_counter()
    for _ in range(rounds):
        for f in frames:
            loads(f)
    floor_dt = time.perf_counter() - t0
    n = len(frames) * rounds
    return n / total, n / floor_dt, len(frames)


def _float_cost(frames: list) -> float:
    """frames/s of orjson.loads + float() of every numeric string in the frame (the price and
    size strings every adapter must convert; venues that send JSON numbers have none)."""

    def numeric(obj, out):
        if isinstance(obj, dict):
            for v in obj.values():
                numeric(v, out)
        elif isinstance(obj, list):
            for v in obj:
                numeric(v, out)
        elif isinstance(obj, str):
            try:
                float(obj)
                out.append(obj)
            except ValueError:
                pass
        return out

    parsed = [numeric(orjson.loads(f), []) for f in frames]
    loads = orjson.loads
    t0 = time.perf_counter()
    for f, strs in zip(frames, parsed, strict=True):
        loads(f)
        [float(x) for x in strs]
    return len(frames) / (time.perf_counter() - t0)


def _events(pipe: FeedPipeline, name: str, frames: list) -> list:
    out = []
    for f in frames:
        evs = pipe.adapter.parse_fast(name, f, 0.0)
        out.append(evs if evs is not None else pipe.adapter.parse(name, f, 0.0))
    return out


def _decode_store_floor(make_pipe, feed: list[Record], name: str, frames: list) -> float:
    """frames/s of the adapter's typed decode (parse_fast, else parse) + a dict store per level,
    the adapter in the state the whole feed leaves it in (OKX: no level texts on a live feed)."""
    pipe = make_pipe()
    for rec in feed:
        _feed_one(pipe, rec)
    adapter = pipe.adapter
    fast, slow = adapter.parse_fast, adapter.parse
    books = (BookDelta, BookSnapshot)
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    t0 = time.perf_counter()
    for f in frames:
        evs = fast(name, f, 0.0)
        if evs is None:
            evs = slow(name, f, 0.0)
        for ev in evs:
            if isinstance(ev, books):
                for p, q in ev.bids:
                    bids[p] = q
                for p, q in ev.asks:
                    asks[p] = q
    return len(frames) / (time.perf_counter() - t0)


def _stages(make_pipe, feed: list[Record], label: str, runs: int) -> list[Figure]:
    """us per frame of each stage of the pipeline on the timed frames (median of ``runs``)."""
    cut = _split(make_pipe, feed)
    warm, timed = feed[:cut], [r for r in feed[cut:] if r[0] == "raw"]
    name, frames = timed[0][1], [r[2] for r in timed]
    n = len(frames)
    vals: dict[str, list[float]] = {k: [] for k in ("loads", "fast", "sync", "apply", "all")}
    for _ in range(runs):
        loads = orjson.loads
        t0 = time.perf_counter()
        for f in frames:
            loads(f)
        vals["loads"].append((time.perf_counter() - t0) / n * 1e6)
        pipe = make_pipe()
        fast = pipe.adapter.parse_fast
        t0 = time.perf_counter()
        for f in frames:
            fast(name, f, 0.0)
        vals["fast"].append((time.perf_counter() - t0) / n * 1e6)
        evs = _events(pipe, name, frames)
        for kind, key in ((0, "sync"), (1, "apply")):
            pipe = make_pipe()
            for rec in warm:
                _feed_one(pipe, rec)
            on_delta, apply = pipe.sync.on_delta, pipe.market.book.apply_delta
            t0 = time.perf_counter()
            for es in evs:
                for e in es:
                    if kind == 0:
                        on_delta(e)
                    else:
                        apply(e.bids, e.asks)
            vals[key].append((time.perf_counter() - t0) / n * 1e6)
        pipe = make_pipe()
        for rec in warm:
            _feed_one(pipe, rec)
        on_frame = pipe.on_frame
        t0 = time.perf_counter()
        for f in frames:
            on_frame(name, f, 0.0)
        vals["all"].append((time.perf_counter() - t0) / n * 1e6)
    names = {
        "loads": "orjson.loads alone (the floor)",
        "fast": "typed decode + events (parse_fast)",
        "sync": "sequence check + apply + crossed check (BookSync.on_delta)",
        "apply": "of which book apply (OrderBook.apply_delta)",
        "all": "whole pipeline (parse + sync + market statistics)",
    }
    return [Figure(f"stage {label}: {names[k]}", "us/frame", v) for k, v in vals.items()]


def _case(
    figs: list[Figure], label: str, make_pipe, feed: list[Record], runs: int, budget: int
) -> None:
    cut = _split(make_pipe, feed)
    n_timed = sum(1 for r in feed[cut:] if r[0] == "raw")
    if n_timed == 0:
        figs.append(Figure(f"adapter {label}", "frames/s", [], note="no depth frames after sync"))
        return
    # each round replays the warm-up into a fresh pipeline (a snapshot of thousands of levels
    # for some venues): a feed with few timed frames gets no more than MAX_ROUNDS of them
    rounds = max(1, min(budget // n_timed, MAX_ROUNDS))
    p_vals, f_vals, g_vals, d_vals = [], [], [], []
    frames = [r[2] for r in feed[cut:] if r[0] == "raw"]
    name = next(r[1] for r in feed[cut:] if r[0] == "raw")
    size = sum(len(f) for f in frames) // len(frames)
    for _ in range(runs):
        p, f, _n = _measure(make_pipe, feed, rounds)
        p_vals.append(p)
        f_vals.append(f)
        g_vals.append(_float_cost(frames * rounds))
        d_vals.append(_decode_store_floor(make_pipe, feed, name, frames * rounds))
    pv, fv, gv, dv = (sorted(v)[len(v) // 2] for v in (p_vals, f_vals, g_vals, d_vals))
    figs.append(
        Figure(
            f"adapter {label}: parse+sync+apply (n={n_timed}, ~{size} B)",
            "frames/s",
            p_vals,
            target=">= 70% of floor",
            note=(
                f"{pv / fv:.0%} of the orjson.loads floor; {pv / gv:.0%} of loads+float(); "
                f"{pv / dv:.0%} of typed decode + dict store"
            ),
        )
    )
    figs.append(Figure(f"adapter {label}: orjson.loads floor, same frames", "frames/s", f_vals))
    figs.append(
        Figure(
            f"adapter {label}: orjson.loads + float() of its numeric strings, same frames",
            "frames/s",
            g_vals,
        )
    )
    figs.append(
        Figure(
            f"adapter {label}: typed decode (parse_fast) + a dict store per level, same frames",
            "frames/s",
            d_vals,
            note=f"{dv / fv:.0%} of the orjson.loads floor",
        )
    )
    if label.startswith("binance"):
        figs.extend(_stages(make_pipe, feed, label, runs))


def run(quick: bool) -> list[Figure]:
    runs = 3 if quick else 5
    budget = 1000 if quick else 6000
    figs: list[Figure] = []
    for venue, fname, inst, marker in CASES:
        path = RECORDINGS / fname
        label = f"{venue}, recorded {inst}"
        if not path.exists():
            figs.append(
                Figure(f"adapter {label}", "frames/s", [], note=f"recording {path} not found")
            )
            continue
        try:
            feed = _load_recording(venue, path, inst, marker)

            def make_pipe(venue=venue, inst=inst):
                return Replay(venue, instrument=inst).pipeline

            _case(figs, label, make_pipe, feed, runs, budget)
        except Exception as e:  # an adapter not available in this build
            figs.append(
                Figure(f"adapter {label}", "frames/s", [], note=f"skipped: {type(e).__name__}: {e}")
            )
    for venue, settings, suffix in SIM_CASES:
        label = f"{venue}, simulator {SIM_SYMBOL}{suffix}"
        try:
            make, feed = _sim_feed(venue, 600 if quick else 1500, settings)
            if make is None:
                figs.append(Figure(f"adapter {label}", "frames/s", [], note=str(feed)))
                continue

            def make_pipe(make=make):
                a = make()
                return FeedPipeline(a, Market(a.default_instrument()))

            _case(figs, label, make_pipe, feed, runs, budget)
        except Exception as e:
            figs.append(
                Figure(f"adapter {label}", "frames/s", [], note=f"skipped: {type(e).__name__}: {e}")
            )
    return figs
