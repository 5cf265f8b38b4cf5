"""dYdX v4 fast path (typed decoders) and one-pass sync against the slow path, frame by frame
and book by book.

There is no dYdX recording (../shared/recordings/ holds none; a ``dydx*.jsonl`` put there is
read by the first test), so the frames are the simulator's dYdX dialect (batched and unbatched
book updates, trades with liquidations), the documented examples, hand-made edge frames and
mutations of all of them.

The adapter is stateful (trade ids remembered, contents versions noted), so each frame is read
by the fast path on the adapter and by ``parse`` on a copy of it taken before: the events and
the state they leave must be the same, and a None must leave the state untouched. As for the
other venues whose book frames ``parse`` may refuse, the check is stricter than
``fastpath.check``: wherever ``parse`` (with the pipeline's number check) refuses a frame, the
fast path must return None.

The slow side of each book-by-book comparison also runs the general sync (``on_delta_general``,
``DydxSync`` as it was before its one-pass ``on_delta``).
"""

from __future__ import annotations

import copy
import random

import orjson
import pytest

from fastpath import BAD, RECORDINGS, mutations, recorded_frames, reference, sim_frames
from obview.book import OrderBook
from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus
from obview.sim.dialects.dydx import DydxDialect
from obview.sim.engine import SimMarket
from obview.venues.base import SyncStatus
from obview.venues.dydx import DydxAdapter, DydxDelta, DydxSync

T0 = 1_700_000_000.0


class GeneralSync(DydxSync):
    """DydxSync's rules without its one-pass ``on_delta``."""

    def on_delta(self, delta):
        return self.on_delta_general(delta)


class SlowDydxAdapter(DydxAdapter):
    def parse_fast(self, stream, frame, ts_local):
        return None  # always parse()

    def make_sync(self, book):
        return GeneralSync(book)


def make(cls=DydxAdapter, symbol: str = "BTC-PERP"):
    return cls(symbol, endpoint="ws://127.0.0.1:9")


def state(a: DydxAdapter):
    return set(a._seen), list(a._seen_order), set(a._versions)


def check(adapter: DydxAdapter, stream: str, frame: str | bytes) -> bool:
    """The fast path gives what parse() gives (events and state), or None leaving the state as
    it was; None wherever parse() refuses the frame. True if the fast path took the frame."""
    before = copy.deepcopy(adapter)
    fast = adapter.parse_fast(stream, frame, 0.0)
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    if fast is None:
        assert state(adapter) == state(before), f"a None changed the adapter: {text[:300]}"
        return False
    ref = reference(before, stream, frame)
    assert ref is not BAD, f"fast path took a frame parse() refuses: {text[:300]}"
    assert fast == ref, f"fast and slow paths differ on: {text[:300]}"
    assert [e.__class__ for e in fast] == [e.__class__ for e in ref]
    assert state(adapter) == state(before), f"the paths remember differently: {text[:300]}"
    return True


def check_all(adapter: DydxAdapter, frames: list[tuple[str, str]], seed: int = 1, per_frame: int = 6) -> int:
    """``check`` every (stream, frame), its bytes form and its mutations (those on copies of the
    adapter, so a mutated print is not taken for a repeat); how many originals it took."""
    rng = random.Random(seed)
    handled = 0
    for stream, f in frames:
        for m in [f.encode(), *mutations(f, rng, per_frame)]:
            check(copy.deepcopy(adapter), stream, m)
        handled += check(adapter, stream, f)
    return handled


def hot(frames: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Book updates on the book stream and trade updates: the fast path's to take."""
    out = []
    for stream, f in frames:
        msg = orjson.loads(f)
        if msg.get("type") in ("channel_data", "channel_batch_data") and (
            msg.get("channel") == "v4_trades" or stream == "book"
        ):
            out.append((stream, f))
    return out


def _cross(frame: str, market: SimMarket, rng: random.Random) -> str:
    """``frame`` with a bid a few ticks over the market's best ask added to its last update:
    the stale-level cross the indexer is known for, which the uncrossing rule repairs."""
    msg = orjson.loads(frame)
    update = msg["contents"][-1] if isinstance(msg["contents"], list) else msg["contents"]
    price = market.fmt_price(market.book.best_ask()[0] + market.tick * rng.randint(0, 3))
    update.setdefault("bids", []).append([price, "0.5"])
    return orjson.dumps(msg).decode()


def sim_feed(symbol="BTC-PERP", steps=600, dt=0.01, batched=(True, False), reconnect=0, cross=0.0):
    """(stream, frame) the simulator's dYdX dialect sends a client of ``symbol``'s book and
    trades, ``batched`` saying how each is subscribed; ``reconnect``: the book socket starts
    anew every that many steps (("reset", "") marks it: the session's ``reset_book``);
    ``cross``: the share of book updates given a crossing bid."""
    rng = random.Random(3)
    market = SimMarket(symbol, seed=11, start_time=T0)
    native = make(symbol=symbol).native
    out: list[tuple[str, str]] = []

    def connect(stream: str, channel: str, batch: bool) -> DydxDialect:
        d = DydxDialect({symbol: market}, "/v4/ws")
        sub = orjson.dumps({"type": "subscribe", "channel": channel, "id": native, "batched": batch})
        out.extend((stream, o.text) for o in [*d.on_connect(), *d.on_message(sub.decode())])
        return d

    conns = {"book": connect("book", "v4_orderbook", batched[0]), "trades": connect("trades", "v4_trades", batched[1])}
    for k in range(steps):
        update = market.step(T0 + dt * (k + 1))
        for stream, d in conns.items():
            for o in d.on_update(update):
                crossed = stream == "book" and rng.random() < cross
                out.append((stream, _cross(o.text, market, rng) if crossed else o.text))
        if reconnect and k % reconnect == reconnect - 1:
            out.append(("reset", ""))
            conns["book"] = connect("book", "v4_orderbook", batched[0])
    return out


# -- frame by frame -----------------------------------------------------------------------------
def test_fast_path_agrees_on_any_dydx_recording():
    names = sorted(p.name for p in RECORDINGS.glob("dydx*.jsonl")) if RECORDINGS.exists() else []
    if not names:
        pytest.skip("no dYdX recording")
    for name in names:
        frames = [f for f in recorded_frames(name) if '"v4_trades"' in f or '"v4_orderbook"' in f]
        check_all(make(), [("trades" if '"v4_trades"' in f else "book", f) for f in frames], per_frame=2)


@pytest.mark.parametrize("symbol", ["BTC-PERP", "ETH-PERP", "SOL-PERP"])
def test_fast_path_agrees_on_the_simulator_and_takes_every_update(symbol):
    frames = sim_frames("dydx", symbol, steps=600)
    adapter = make(symbol=symbol)
    handled = check_all(adapter, frames)
    book = [f for s, f in frames if s == "book" and '"channel_batch_data"' in f]
    trades = [f for s, f in frames if s == "trades" and '"channel_data"' in f]
    assert len(book) > 20 and len(trades) > 100 and handled == len(hot(frames)) == len(book) + len(trades)
    for f in book:
        evs = adapter.parse_fast("book", f, 0.0)
        assert [e.__class__ for e in evs] == [DydxDelta] * len(orjson.loads(f)["contents"])
        assert [e.part for e in evs] == list(range(len(evs))) and len({e.seq for e in evs}) == 1


@pytest.mark.parametrize("batched", [(False, False), (True, True), (False, True)])
def test_fast_path_agrees_on_unbatched_books_batched_trades_and_liquidations(batched):
    frames = [(s, f) for s, f in sim_feed(steps=600, dt=0.1, batched=batched) if s != "reset"]
    adapter = make()
    assert check_all(adapter, frames, per_frame=3) == len(hot(frames))
    kinds = [orjson.loads(f)["type"] for s, f in frames if s == "book" and '"message_id":1,' not in f]
    assert set(kinds[2:]) == {"channel_batch_data" if batched[0] else "channel_data"}
    liquidations = sum(f.count('"LIQUIDATED"') for s, f in frames if s == "trades")
    assert liquidations > 10


# -- the same books, events and errors through the pipeline --------------------------------------
def run_pipeline(cls, frames: list[tuple[str, str]], symbol: str = "BTC-PERP"):
    adapter = make(cls, symbol)
    pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
    m, sync = pipe.market, pipe.sync
    actions, books = [], []
    for i, (stream, f) in enumerate(frames):
        if stream == "reset":
            pipe.reset_book()
            continue
        actions.append(pipe.on_frame(stream, f, 1.0 + i * 0.05))
        books.append((m.book.best_bid(), m.book.best_ask(), len(m.book), m.state.status, sync.last_seq, sync.last_part))
    return {
        "actions": actions, "books": books, "bids": dict(m.book.bids), "asks": dict(m.book.asks),
        "bid_keys": list(m.book.bids.keys()), "ask_keys": list(m.book.asks.keys()),
        "bid_age": sync.bid_age, "ask_age": sync.ask_age, "uncrossed": sync.uncrossed,
        "drops": list(sync._drops), "synced": sync.synced, "buffer": list(sync.buffer),
        "state": (m.state.status, m.state.reason), "gaps": m.stats.gaps, "resyncs": m.resyncs,
        "parse_errors": pipe.parse_errors, "last_error": m.stats.last_error, "trades": list(m.trades),
        "liquidations": m.stats.liquidations, "book_events": pipe.book_events, "version": m.version,
        "adapter": state(adapter),
    }  # fmt: skip


def assert_same_run(frames: list[tuple[str, str]], symbol: str = "BTC-PERP"):
    fast = run_pipeline(DydxAdapter, frames, symbol)
    slow = run_pipeline(SlowDydxAdapter, frames, symbol)
    for key in fast:
        assert fast[key] == slow[key], key
    return fast


@pytest.mark.parametrize("batched", [(True, False), (False, True)])
@pytest.mark.parametrize("symbol", ["BTC-PERP", "SOL-PERP"])
def test_fast_and_slow_paths_build_the_same_books_from_the_simulator(symbol, batched):
    run = assert_same_run(sim_feed(symbol, steps=1500, batched=batched, reconnect=500), symbol)
    assert run["state"][0] is FeedStatus.LIVE and run["gaps"] == 0 and run["synced"]
    assert len(run["trades"]) > 200 and run["liquidations"] > 0 and run["parse_errors"] == 0


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_damaged_simulator_feed_gives_the_same_errors_gaps_resyncs_and_books(seed):
    # frames mutated, dropped, repeated and swapped, the book socket starting anew every 60
    # steps: bad frames, message_id gaps, repeats ignored, crossed books uncrossed or given
    # up, and the book whole again after each new connection, through both syncs
    rng = random.Random(seed)
    frames: list[tuple[str, str]] = []
    for stream, f in sim_feed(steps=3000, dt=0.05, reconnect=60, cross=0.05):
        r = rng.random()
        if r < 0.03 and stream != "reset":
            frames.append((stream, (mutations(f, rng, 1) or [f])[0]))
        elif r < 0.035:
            continue  # lost
        elif r < 0.04:
            frames += [(stream, f), (stream, f)]  # repeated
        elif r < 0.045 and frames:
            frames.insert(len(frames) - 1, (stream, f))  # one place early
        else:
            frames.append((stream, f))
    run = assert_same_run(frames)
    assert run["gaps"] > 2 and run["parse_errors"] > 0 and run["uncrossed"] > 0
    assert sum(1 for s in run["books"] if s[3] is FeedStatus.LIVE) > len(frames) // 2


# -- the one-pass sync against the general one ---------------------------------------------------
def _random_delta(rng: random.Random, seq: int, part: int, sync: DydxSync, ts: float) -> BookDelta:
    """A few levels about 100 (some crossing, a fifth deleting a level the book holds); rarely
    none, a plain BookDelta without ``part``, a checksum or no seq."""
    book = sync.book
    bids, asks = [], []
    for _ in range(rng.choice([0, 1, 1, 2, 3, 6])):
        away = round(abs(rng.gauss(0, 2.0)) + 0.1, 1) * (-1 if rng.random() < 0.04 else 1)
        qty = 0.0 if rng.random() < 0.25 else round(rng.uniform(0.1, 5.0), 2)
        if rng.random() < 0.5:
            bids.append((rng.choice(book.bids.keys()), 0.0) if book.bids and rng.random() < 0.2 else (100.0 - away, qty))
        else:
            asks.append((rng.choice(book.asks.keys()), 0.0) if book.asks and rng.random() < 0.2 else (100.0 + away, qty))
    seq_ = None if rng.random() < 0.003 else seq
    if rng.random() < 0.01:
        return BookDelta("dydx", "X", bids, asks, seq=seq_, ts_local=ts)
    checksum = 7 if rng.random() < 0.01 else rng.choice([None, 0])
    return DydxDelta("dydx", "X", bids, asks, seq=seq_, ts_local=ts, checksum=checksum, part=part)


SNAPSHOTS = [
    ([(99.0, 1.0), (98.5, 2.0)], [(101.0, 1.0), (101.5, 3.0)]),
    ([(101.0, 1.0), (100.0, 2.0)], [(100.5, 0.25), (102.0, 1.0)]),  # crossed
    ([(99.5, 1.0)], []),
    ([], []),
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("depth", [None, 3])
def test_one_pass_sync_gives_the_general_sync_s_results_books_and_ages(monkeypatch, seed, depth):
    monkeypatch.setattr(DydxSync, "max_drops_per_window", 30)
    monkeypatch.setattr(DydxSync, "max_drops_per_update", 4)
    rng = random.Random(seed)
    one, general = DydxSync(OrderBook(), depth=depth), GeneralSync(OrderBook(), depth=depth)
    seen: dict[tuple[SyncStatus, str], int] = {}
    seq, part, ts = 10, 0, 0.0
    for i in range(5000):
        ts += 0.05
        r = rng.random()
        if r < 0.55:
            seq, part = seq + 1, 0  # the next message
        elif r < 0.9:
            part += 1  # the next element of the batch
        else:  # repeats, elements skipped or replayed, message ids behind or ahead
            seq, part = seq + rng.choice([0, 0, -1, -3, 2, 5]), max(0, part + rng.choice([-2, 0, 2, 3]))
        if i % 200 == 0 or not one.synced and rng.random() < 0.1:
            snap = BookSnapshot("dydx", "X", *rng.choice(SNAPSHOTS), seq=seq - 1, ts_local=ts)
            assert one.on_snapshot(snap) == general.on_snapshot(snap), i
        d = _random_delta(rng, seq, part, one, ts)
        a, b = one.on_delta(d), general.on_delta(d)
        assert a == b, (i, d)
        key = (a.status, a.reason.split(" ")[0])
        seen[key] = seen.get(key, 0) + 1
        assert one.book.bids == general.book.bids and one.book.asks == general.book.asks, i
        assert one.book.bids.keys() == general.book.bids.keys() and one.book.asks.keys() == general.book.asks.keys()
        assert (one.bid_age, one.ask_age, one.uncrossed, list(one._drops), one._now) == (
            general.bid_age, general.ask_age, general.uncrossed, list(general._drops), general._now)  # fmt: skip
        assert (one.synced, one.last_seq, one.last_part, len(one.buffer)) == (
            general.synced, general.last_seq, general.last_part, len(general.buffer))  # fmt: skip
    assert one.uncrossed > 50
    # every outcome was met: applied, emptied, ignored, buffered, gaps of every kind
    assert seen.keys() == {
        (SyncStatus.APPLIED, ""), (SyncStatus.APPLIED, "empty"), (SyncStatus.IGNORED, ""),
        (SyncStatus.BUFFERED, ""), (SyncStatus.GAP, "seq"), (SyncStatus.GAP, "batch"),
        (SyncStatus.GAP, "crossed"),
    }, seen  # fmt: skip
    assert min(seen.values()) > 5, seen


def test_one_pass_sync_reasons():
    sync = DydxSync(OrderBook())
    sync.on_snapshot(BookSnapshot("dydx", "X", [(99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0)], seq=1))
    assert sync.on_delta(DydxDelta("dydx", "X", [(100.0, 2.0)], [(101.0, 0.0)], seq=2)).status is SyncStatus.APPLIED
    assert (sync.bid_age, sync.ask_age) == ({99.0: (1, -1), 98.0: (1, -1), 100.0: (2, 0)}, {})
    # a newer ask under the bids: the older bids go (the venue's rule), one-sided then
    res = sync.on_delta(DydxDelta("dydx", "X", [], [(98.5, 1.0)], seq=2, part=1))
    assert res.status is SyncStatus.APPLIED and sync.uncrossed == 2
    assert sync.book.bids.keys() == [98.0] and sync.bid_age == {98.0: (1, -1)}
    res = sync.on_delta(DydxDelta("dydx", "X", [(98.0, 0.0)], [(98.5, 0.0)], seq=3))
    assert res.status is SyncStatus.APPLIED and res.reason == "empty book" and sync.book.empty
    res = sync.on_delta(DydxDelta("dydx", "X", [(97.0, 1.0)], [], seq=3, part=2))
    assert res.status is SyncStatus.GAP and res.reason == "batch element gap at message 3"
