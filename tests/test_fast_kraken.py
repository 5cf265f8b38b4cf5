"""Kraken Futures fast path (typed decoder) and one-pass sync against the slow path, frame by
frame and book by book.

The recording (../shared/recordings/kraken_futures.jsonl, 2021) holds ten inverse and
fixed-maturity products (PI_ / FI_) on one socket; the simulator speaks today's dialect for the
PF_ perpetuals, fills with a ``type`` of ``fill``, ``liquidation`` or ``block``.

A Kraken book frame ``parse`` refuses is a plain bad frame (the next message's seq then shows
the loss as a gap), and the pipeline checks the numbers of ``parse``'s events. The check here
is stricter than ``fastpath.check``: wherever ``parse`` (with that number check) refuses a
frame, the fast path must return None and leave the refusal to it.

The slow side of each book-by-book comparison also runs the general sync (``NextSeqSync``, as
``KrakenSync`` was before its one-pass ``on_delta``), so both the decoder and the sync are
compared with what they replace.
"""

from __future__ import annotations

import random

import orjson
import pytest

from fastpath import (
    BAD,
    assert_same,
    mutations,
    pipeline_run,
    recorded_frames,
    reference,
    sim_frames,
)
from obview.book import OrderBook
from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.model import BLOCK, LIQUIDATION, BookDelta, BookSnapshot, FeedStatus, Side, Trade
from obview.sim.dialects.kraken import KrakenDialect
from obview.sim.engine import SimMarket
from obview.venues import kraken as kraken_mod
from obview.venues.base import BookSync, NextSeqSync, SyncStatus
from obview.venues.kraken import KrakenAdapter, KrakenSync

STREAM = "public"
PRODUCTS = ["FI_BCHUSD_210730", "FI_BCHUSD_210924", "FI_ETHUSD_210730", "FI_ETHUSD_211231",
            "FI_XBTUSD_210730", "FI_XBTUSD_210924", "FI_XRPUSD_210924", "PI_ETHUSD", "PI_LTCUSD",
            "PI_XRPUSD"]  # fmt: skip
T0 = 1_700_000_000.0


class GeneralSync(NextSeqSync):
    """KrakenSync's rules without its one-pass ``on_delta``."""


class SlowKrakenAdapter(KrakenAdapter):
    def parse_fast(self, stream, frame, ts_local):
        return None  # always parse()

    def make_sync(self, book: OrderBook) -> BookSync:
        return GeneralSync(book, depth=kraken_mod.MAX_LEVELS)


def make(cls=KrakenAdapter, symbol: str = "BTC-PERP", instrument: str | None = None):
    return cls(symbol, endpoint="ws://127.0.0.1:9", instrument=instrument)


def check(adapter: KrakenAdapter, frame: str | bytes) -> bool:
    """The fast path gives what parse() gives, or None; None wherever parse() refuses the frame.
    True if the fast path took the frame."""
    fast = adapter.parse_fast(STREAM, frame, 0.0)
    if fast is None:
        return False
    ref = reference(adapter, STREAM, frame)
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    assert ref is not BAD, f"fast path took a frame parse() refuses: {text[:300]}"
    assert fast == ref, f"fast and slow paths differ on: {text[:300]}"
    return True


def check_all(adapter: KrakenAdapter, frames: list[str], seed: int = 1, per_frame: int = 6) -> int:
    """``check`` every frame, its bytes form and its mutations; how many originals it took."""
    rng = random.Random(seed)
    handled = 0
    for f in frames:
        handled += check(adapter, f)
        assert check(adapter, f.encode()) == (adapter.parse_fast(STREAM, f, 0.0) is not None)
        for m in mutations(f, rng, per_frame):
            check(adapter, m)
    return handled


def hot(frames: list[str]) -> list[str]:
    """``book`` and ``trade`` messages (of any product): the fast path's to take."""
    out = []
    for f in frames:
        msg = orjson.loads(f)
        if isinstance(msg, dict) and msg.get("feed") in ("book", "trade") and "event" not in msg:
            out.append(f)
    return out


def sim_feed(symbol: str = "BTC-PERP", steps: int = 600, dt: float = 0.25, resnap: int = 0) -> list[str]:
    """What the simulator's Kraken dialect sends one client subscribed to ``symbol``'s book,
    trades and heartbeats (one every five steps); ``resnap``: a fresh snapshot every that many
    steps (a resubscribe's, the seq counting on), so a book that broke is whole again later."""
    market = SimMarket(symbol, seed=11, start_time=T0)
    d = KrakenDialect({symbol: market}, "/ws/v1")
    adapter = make(symbol=symbol)
    frames = [o.text for o in d.on_connect()]
    for sub in adapter.streams()[0].subscribe:
        frames += [o.text for o in d.on_message(sub)]
    product = d.product_of[symbol]
    for k in range(steps):
        frames += [o.text for o in d.on_update(market.step(T0 + dt * (k + 1)))]
        frames += [o.text for o in d.heartbeat()]
        if resnap and k % resnap == resnap - 1:
            frames.append(d.snapshot(product).text)
    return frames


# -- frame by frame -----------------------------------------------------------------------------
@pytest.mark.parametrize("product", PRODUCTS)
def test_fast_path_agrees_on_the_recording(product):
    frames = recorded_frames("kraken_futures.jsonl")
    if not frames:
        pytest.skip("recording not available")
    adapter = make(instrument=product.lower())  # as the recording subscribed
    handled = check_all(adapter, frames, per_frame=4)
    # every book and trade message of any product takes the fast path (another product's gives
    # []); snapshots, ticker_lite, trade snapshots and acks go to the slow one
    assert handled == len(hot(frames)) == 7014 + 3
    ours = [f for f in hot(frames) if f'"product_id":"{product}"' in f]
    assert len(ours) > 10 and all(adapter.parse_fast(STREAM, f, 0.0) for f in ours)


@pytest.mark.parametrize("symbol", ["BTC-PERP", "ETH-PERP", "SOL-PERP"])
def test_fast_path_agrees_on_the_simulator_and_takes_every_book_and_trade_frame(symbol):
    frames = [f for stream, f in sim_frames("kraken", symbol) if stream == STREAM]
    adapter = make(symbol=symbol)
    handled = check_all(adapter, frames)
    book = [f for f in frames if f.startswith('{"feed":"book",')]
    trades = [f for f in frames if f.startswith('{"feed":"trade",')]
    assert len(book) > 1000 and trades and handled == len(hot(frames)) == len(book) + len(trades)
    for f in book:
        (ev,) = adapter.parse_fast(STREAM, f, 0.0)
        assert ev.__class__ is BookDelta and len(ev.bids) + len(ev.asks) == 1
        assert ev.ts_exchange is not None and ev.seq is not None
    for f in trades:
        (ev,) = adapter.parse_fast(STREAM, f, 0.0)
        assert ev.__class__ is Trade and ev.trade_id.startswith("sim-")


def test_fast_path_agrees_on_liquidations_and_block_trades_of_the_simulator():
    frames = sim_feed(steps=600)
    adapter = make()
    trades = [f for f in frames if f.startswith('{"feed":"trade",')]
    assert check_all(adapter, trades) == len(trades)
    kinds: dict[str, int] = {}
    for f in trades:
        (t,) = adapter.parse_fast(STREAM, f, 0.0)
        kinds[t.kind] = kinds.get(t.kind, 0) + 1
        assert t.kind == {"liquidation": LIQUIDATION, "block": BLOCK}.get(orjson.loads(f)["type"], "")
    assert kinds.get(LIQUIDATION, 0) > 5 and kinds.get(BLOCK, 0) >= 1 and kinds.get("", 0) > 1000


# -- the same books, events and errors through the pipeline --------------------------------------
def run_pipeline(cls, frames: list[str], instrument: str | None = None, symbol: str = "BTC-PERP"):
    adapter = make(cls, symbol, instrument)
    return pipeline_run(adapter, STREAM, frames, lambda _pipe: {"heartbeats": adapter.heartbeats})


def assert_same_run(frames: list[str], instrument: str | None = None, symbol: str = "BTC-PERP"):
    return assert_same(
        run_pipeline(KrakenAdapter, frames, instrument, symbol),
        run_pipeline(SlowKrakenAdapter, frames, instrument, symbol),
    )


@pytest.mark.parametrize("product", PRODUCTS)
def test_fast_and_slow_paths_build_the_same_books_from_the_recording(product):
    frames = recorded_frames("kraken_futures.jsonl")
    if not frames:
        pytest.skip("recording not available")
    run = assert_same_run(frames, product.lower())
    assert run["state"][0] is FeedStatus.LIVE and run["gaps"] == 0 and run["synced"]
    assert run["bids"] and run["asks"] and run["parse_errors"] == 0


@pytest.mark.parametrize("symbol", ["BTC-PERP", "SOL-PERP"])
def test_fast_and_slow_paths_build_the_same_books_from_the_simulator(symbol):
    run = assert_same_run(sim_feed(symbol, steps=800), symbol=symbol)
    assert run["state"][0] is FeedStatus.LIVE and run["gaps"] == 0 and len(run["trades"]) > 500
    assert run["heartbeats"] == 160 and run["parse_errors"] == 0
    assert run["liquidations"] > 0 and any(t.kind == BLOCK for t in run["trades"])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_damaged_recording_gives_the_same_errors_gaps_and_books(seed):
    # one frame in fifty of PI_ETHUSD's with one number or value swapped for a hostile one: the
    # slow path counts them as bad frames and gaps on the seq that then jumps; the fast path
    # must lead the pipeline to exactly the same place, frame by frame
    frames = recorded_frames("kraken_futures.jsonl")
    if not frames:
        pytest.skip("recording not available")
    rng = random.Random(seed)
    damaged = [
        (mutations(f, rng, 1) or [f])[0] if '"PI_ETHUSD"' in f and rng.random() < 0.02 else f
        for f in frames
    ]
    assert damaged != frames
    run = assert_same_run(damaged, "pi_ethusd")
    assert run["parse_errors"] > 0 or run["gaps"] > 0


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_damaged_simulator_feed_gives_the_same_errors_gaps_resyncs_and_books(seed):
    # frames mutated, dropped, repeated and swapped, with a fresh snapshot every 10 steps: the
    # book breaks (bad frames, seq gaps, replays ignored, crossed books) and comes back again
    # and again, through both the one-pass and the general sync
    rng = random.Random(seed)
    frames: list[str] = []
    for f in sim_feed(steps=500, resnap=10):
        r = rng.random()
        if r < 0.001:
            frames.append((mutations(f, rng, 1) or [f])[0])
        elif r < 0.002:
            continue  # lost
        elif r < 0.003:
            frames += [f, f]  # repeated
        elif r < 0.004 and frames:
            frames.insert(len(frames) - 1, f)  # one place early
        else:
            frames.append(f)
    run = assert_same_run(frames)
    assert run["gaps"] > 2 and run["parse_errors"] > 0
    assert sum(1 for s in run["books"] if s[3] is FeedStatus.LIVE) > len(frames) // 2


# -- the one-pass sync against the general one ---------------------------------------------------
def _random_delta(rng: random.Random, seq: int, book: OrderBook) -> BookDelta:
    """Mostly one level on its own side of 100 (a fifth of them deleting a level the book
    holds); some crossing levels, several or no levels, checksums and seq-less deltas."""
    away = round(abs(rng.gauss(0, 2.0)) + 0.1, 1) * (-1 if rng.random() < 0.03 else 1)
    qty = 0.0 if rng.random() < 0.3 else round(rng.uniform(0.1, 5.0), 2)
    bid, ask = [(100.0 - away, qty)], [(100.0 + away, qty)]
    if rng.random() < 0.2 and book.bids:
        bid = [(rng.choice(book.bids.keys()), 0.0)]
    if rng.random() < 0.2 and book.asks:
        ask = [(rng.choice(book.asks.keys()), 0.0)]
    shape = rng.random()
    if shape < 0.45:
        bids, asks = bid, []
    elif shape < 0.9:
        bids, asks = [], ask
    elif shape < 0.94:
        bids, asks = bid, ask  # several levels: the general path
    elif shape < 0.97:
        bids, asks = [], []
    else:
        bids, asks = [], ask + [(100.0 + away + 0.1, 1.0)]
    checksum = 7 if rng.random() < 0.02 else rng.choice([None, 0])
    return BookDelta("kraken", "X", bids, asks, seq=None if rng.random() < 0.005 else seq, checksum=checksum)


SNAPSHOTS = [
    ([(99.0, 1.0), (98.5, 2.0)], [(101.0, 1.0), (101.5, 3.0)]),
    ([(99.5, 1.0)], []),
    ([], []),
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("depth", [None, 4, kraken_mod.MAX_LEVELS])
def test_one_pass_sync_gives_the_general_sync_s_results_and_books(seed, depth):
    rng = random.Random(seed)
    one, general = KrakenSync(OrderBook(), depth=depth), GeneralSync(OrderBook(), depth=depth)
    seen: dict[tuple[SyncStatus, str], int] = {}
    seq = 10
    for i in range(4000):
        seq += 1 if rng.random() < 0.93 else rng.choice([0, -1, -5, 2, 3])  # replays, jumps
        if i % 150 == 0 or not one.synced and rng.random() < 0.1:
            snap = BookSnapshot("kraken", "X", *rng.choice(SNAPSHOTS), seq=seq - 1)
            assert one.on_snapshot(snap) == general.on_snapshot(snap)
        d = _random_delta(rng, seq, one.book)
        a, b = one.on_delta(d), general.on_delta(d)
        assert a == b, (i, d)
        key = (a.status, a.reason.split(" ")[0])
        seen[key] = seen.get(key, 0) + 1
        assert one.book.bids == general.book.bids and one.book.asks == general.book.asks, i
        assert one.book.bids.keys() == general.book.bids.keys()
        assert one.book.asks.keys() == general.book.asks.keys()
        assert (one.synced, one.last_seq, len(one.buffer)) == (general.synced, general.last_seq, len(general.buffer))
        if depth is not None:
            assert len(one.book.bids) <= depth and len(one.book.asks) <= depth
    # every outcome was met: applied, emptied, ignored, buffered, gaps of both kinds
    assert seen.keys() == {
        (SyncStatus.APPLIED, ""), (SyncStatus.APPLIED, "empty"), (SyncStatus.IGNORED, ""),
        (SyncStatus.BUFFERED, ""), (SyncStatus.GAP, "seq"), (SyncStatus.GAP, "crossed"),
    }, seen  # fmt: skip
    assert min(seen.values()) > 10, seen


def test_one_pass_sync_reasons():
    sync = KrakenSync(OrderBook(), depth=2)
    sync.on_snapshot(BookSnapshot("kraken", "X", [(99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0)], seq=1))
    delta = BookDelta("kraken", "X", [(97.0, 1.0)], [], seq=2)
    assert sync.on_delta(delta).status is SyncStatus.APPLIED
    assert sync.book.bids.keys() == [98.0, 99.0]  # the depth cut took the worst bid
    assert sync.on_delta(BookDelta("kraken", "X", [], [(101.0, 0.0)], seq=3)).status is SyncStatus.APPLIED
    assert sync.on_delta(BookDelta("kraken", "X", [(99.0, 0.0)], [], seq=4)).status is SyncStatus.APPLIED
    res = sync.on_delta(BookDelta("kraken", "X", [(98.0, 0.0)], [], seq=5))
    assert res.status is SyncStatus.APPLIED and res.reason == "empty book" and sync.book.empty
    sync.on_delta(BookDelta("kraken", "X", [(100.0, 1.0)], [], seq=6))
    res = sync.on_delta(BookDelta("kraken", "X", [], [(100.0, 1.0)], seq=7))
    assert res.status is SyncStatus.GAP and res.reason == "crossed by 0.00 bp" and not sync.synced


# -- odd, hostile and edge frames -----------------------------------------------------------------
BOOK = {"feed": "book", "product_id": "PF_XBTUSD", "side": "sell", "seq": 26660860,
        "price": 97004.5, "qty": 4787.0, "timestamp": 1626994927744}  # fmt: skip
TRADE = {"feed": "trade", "product_id": "PF_XBTUSD", "uid": "e2429e31-8b9d-4195-900e-fd42be2dec89",
         "side": "buy", "type": "fill", "seq": 5956, "time": 1626994929946, "qty": 320.0,
         "price": 97003.5}  # fmt: skip


def _frame(base: dict, kw: dict) -> str:
    msg = dict(base)
    for k, v in kw.items():
        if v is ...:
            del msg[k]
        else:
            msg[k] = v
    return orjson.dumps(msg).decode()


def book(**kw) -> str:
    return _frame(BOOK, kw)


def trade(**kw) -> str:
    return _frame(TRADE, kw)


TAKEN = [
    book(),
    book(side="buy"),
    book(qty=0),  # deletes
    book(qty=0.0, side="buy"),
    book(timestamp=...),
    book(timestamp=None),
    book(timestamp=-5),
    book(product_id="pf_xbtusd"),  # any case
    book(product_id="Pf_XbtUsd"),
    book(price=97004, qty=4787),  # integers
    book(seq=0),
    book(seq=-3),
    book(seq=2**63 - 1),
    book(timestamp=2**63 - 1),
    book(price=1e-300, qty=99999999999999.9),
    book().replace("4787.0", "1e-400"),  # a size that underflows to 0 on both paths
    book().replace("97004.5", "9.70045E4"),
    book().replace('"sell"', '"s\\u0065ll"'),  # escapes
    '{"timestamp":1626994927744,"qty":1.0,"price":97004.5,"seq":7,"side":"buy","product_id":"PF_XBTUSD","feed":"book"}',
    book().replace('"qty":4787.0', '"qty":1.0,"qty":4787.0'),  # the last one counts, as in orjson
    book().replace('"price":97004.5', '"price":1.0,"price":97004.5'),
    "  " + book() + "\n",
    # another product's messages: [] on both paths
    book(product_id="PF_ETHUSD"),
    book(product_id="PI_XBTUSD"),
    book(product_id="PF_XBTUSD_X"),
    book(product_id=""),
    trade(product_id="PF_ETHUSD"),
    # trades: every type Kraken documents, odd ones, and what stands for a missing uid
    trade(),
    trade(side="sell"),
    trade(type="liquidation"),
    trade(type="block"),
    trade(type="termination"),
    trade(type=...),
    trade(type=None),
    trade(type=""),
    trade(type="LIQUIDATION"),
    trade(type="Block"),
    trade(type="liquidation "),
    trade(type="liquidación"),
    trade(uid=...),
    trade(uid=None),
    trade(uid=..., seq=...),
    trade(uid=None, seq=None),
    trade(uid=..., seq=-1),
    trade(uid=""),
    trade(uid="u" * 100),
    trade(time=...),
    trade(time=None),
    trade(qty=0),
    trade(price=97003, qty=320),
]


@pytest.mark.parametrize("frame", TAKEN)
def test_fast_path_takes_edge_frames_and_agrees(frame):
    adapter = make()
    assert check(adapter, frame)
    assert check(adapter, frame.encode())


@pytest.mark.parametrize(
    ("type_", "kind"),
    [("fill", ""), ("liquidation", LIQUIDATION), ("block", BLOCK), ("termination", ""),
     (None, ""), ("", ""), ("LIQUIDATION", ""), ("liq", ""), ("blocks", "")],
)  # fmt: skip
def test_trade_kinds_on_both_paths(type_, kind):
    adapter = make()
    frame = trade(type=type_)
    (fast,) = adapter.parse_fast(STREAM, frame, 1.0)
    (slow,) = adapter.parse(STREAM, frame, 1.0)
    assert fast == slow and fast.kind == kind


def test_fast_path_events():
    adapter = make()
    (d,) = adapter.parse_fast(STREAM, book(), 2.5)
    assert d == BookDelta("kraken", "BTC-PERP", [], [(97004.5, 4787.0)], seq=26660860,
                          ts_exchange=1626994927.744, ts_local=2.5)  # fmt: skip
    assert d.__class__ is BookDelta
    (d,) = adapter.parse_fast(STREAM, book(side="buy", qty=0, timestamp=...), 0.0)
    assert (d.bids, d.asks, d.ts_exchange) == ([(97004.5, 0.0)], [], None)
    (t,) = adapter.parse_fast(STREAM, trade(), 3.0)
    assert t == Trade("kraken", "BTC-PERP", 97003.5, 320.0, Side.BUY, TRADE["uid"], 1626994929.946, 3.0, "")
    (t,) = adapter.parse_fast(STREAM, trade(uid=..., side="sell", type="liquidation"), 0.0)
    assert (t.trade_id, t.side, t.kind) == ("5956", Side.SELL, LIQUIDATION)
    (t,) = adapter.parse_fast(STREAM, trade(uid=None, seq=None), 0.0)
    assert t.trade_id == "None"  # as parse() names it
    assert adapter.parse_fast(STREAM, book(product_id="PF_ETHUSD"), 0.0) == []


LEFT = [
    # numbers the book must never hold, in every field the fast path reads
    book(qty=-1),
    book(qty=-0.5, side="buy"),
    book(price=0),
    book(price=-97004.5),
    book(price=1e15),  # MAX_NUMBER: refused by the decoder and by the pipeline's check
    book(qty=1e15),
    book().replace("4787.0", "1e400"),
    book().replace("4787.0", "9" * 400),
    book().replace("97004.5", "NaN"),
    book().replace("97004.5", "Infinity"),
    book().replace("97004.5", "-Infinity"),
    book().replace("97004.5", "-0.0"),
    trade(price=0),
    trade(qty=-1),
    trade(price=1e15),
    trade().replace("97003.5", "1e999"),
    # missing fields
    book(side=...),
    book(seq=...),
    book(price=...),
    book(qty=...),
    book(product_id=...),
    book(feed=...),
    trade(side=...),
    trade(price=...),
    trade(qty=...),
    trade(product_id=...),
    # wrong types: numbers as strings (parse() reads them), floats and bools for integers ...
    book(price="97004.5"),
    book(qty="4787"),
    book(price=True),
    book(qty=None),
    book(seq="26660860"),
    book(seq=26660860.0),
    book(seq=True),
    book(seq=None),
    book(timestamp=1626994927744.5),  # parse() takes a float time
    book(timestamp="1626994927744"),
    book(timestamp=True),
    book(timestamp=[1]),
    book(side="BUY"),
    book(side="Sell"),
    book(side=None),
    book(side=["buy"]),
    book(side=1),
    book(product_id=5),
    book(product_id=None),
    book(product_id=["PF_XBTUSD"]),
    trade(price="97003.5"),
    trade(side="Buy"),
    trade(side=None),
    trade(side=["buy"]),  # parse(): a TypeError, counted as a bad frame
    trade(uid=12345),  # parse() names it "12345"
    trade(uid=["a"]),
    trade(uid=..., seq=5956.0),
    trade(uid=..., seq="5956"),
    trade(seq="x"),  # read by the decoder, not by parse()
    trade(type=5),  # parse(): a fill
    trade(type={"a": 1}),
    trade(type=["liquidation"]),
    trade(time=1626994929946.0),
    trade(time="soon"),
    trade(time=False),
    # integers beyond int64 (orjson reads them as integers up to 2**64 - 1, then as floats)
    book(seq=2**63),
    book(seq=2**64 - 1),
    book().replace("26660860", str(-(2**63) - 1)),
    book().replace("26660860", str(2**64)),
    book(timestamp=2**63),
    trade(uid=..., seq=2**63),
    # fields the decoder does not know: orjson reads their values, the decoder would skip them
    # unread (parse() refuses a number beyond a double even in a field no one reads)
    book(tickSize=None),
    book(extra={"a": [1, 2]}),
    book(extra=1).replace('"extra":1', '"extra":1e400'),
    book(extra="x").replace('"extra":"x"', '"extra":"\\ud800"'),
    trade(extra=1).replace('"extra":1', '"extra":' + "9" * 400),
    trade(markPrice=97000.0),
    # a frame that also names an event is parse()'s control frame
    book(event="subscribed"),
    book(event=None),
    trade(event="alert", message="x"),
    # other feeds and messages
    book(feed="book_snapshot"),
    book(feed="Book"),
    book(feed=None),
    book(feed=5),
    trade(feed="trade_snapshot"),
    trade(feed="ticker"),
    '{"feed":"heartbeat","time":1626994929946}',
    '{"feed":"book_snapshot","product_id":"PF_XBTUSD","timestamp":1626994927674,"seq":26660859,'
    '"tickSize":null,"bids":[{"price":97003.9,"qty":2234.0}],"asks":[{"price":97004.6,"qty":600.0}]}',
    '{"feed":"trade_snapshot","product_id":"PF_XBTUSD","trades":[]}',
    '{"event":"info","version":1}',
    '{"event":"subscribed","feed":"book","product_ids":["PF_XBTUSD"]}',
    '{"event":"error","message":"Invalid product id"}',
    '{"event":"subscribed_failed","feed":"book","product_ids":["PF_XBTUSD"],"message":"no"}',
    '{"event":"alert","message":"Bad websocket message"}',
    book().replace('"feed":"book"', '"feed":"book","feed":"trade"'),
    book().replace('"feed":"book"', '"feed":"trade","feed":"book"'),
    "[]",
    "[" + book() + "]",
    "null",
    "not json",
    book()[:-5],  # cut short
    book() + "x",
    book().encode().replace(b"PF_XBTUSD", b"PF_XBT\xffUSD"),
    trade().encode().replace(b"e2429e31", b"e2429\xff31"),
    book().replace("PF_XBTUSD", "PF_XBT\ud800USD"),
    trade().replace('"e2429e31', '"\\ud800e2429e31'),
]


@pytest.mark.parametrize("frame", LEFT)
def test_fast_path_leaves_odd_and_hostile_frames_to_the_slow_path(frame):
    adapter = make()
    assert adapter.parse_fast(STREAM, frame, 0.0) is None
    if isinstance(frame, str):
        try:
            assert adapter.parse_fast(STREAM, frame.encode(), 0.0) is None
        except UnicodeEncodeError:
            pass  # a lone surrogate has no bytes form
    assert not check(adapter, frame)


SNAPSHOT = (
    '{"feed":"book_snapshot","product_id":"PF_XBTUSD","timestamp":1626994927674,"seq":26660859,'
    '"tickSize":null,"bids":[{"price":97003.9,"qty":2234.0},{"price":97003.3,"qty":35826.0}],'
    '"asks":[{"price":97004.6,"qty":600.0},{"price":97004.85,"qty":10.0}]}'
)


@pytest.mark.parametrize("frame", LEFT + TAKEN)
def test_odd_and_hostile_frames_on_a_synced_book_give_the_same_flags(frame):
    # after a snapshot whose seq the frame continues: the same book, bad frames, gaps, resync
    # requests and trades; then the message after it, which finds the gap a lost one left
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    run = assert_same_run([SNAPSHOT, text, book(seq=26660861, price=97010.0, qty=3.0)])
    assert run["actions"][0] == [] and run["books"][0][3] is FeedStatus.LIVE


def test_pipeline_takes_the_fast_path_for_book_and_trade_messages(monkeypatch):
    adapter = make()
    pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
    assert pipe._parse_fast is not None
    pipe.on_frame(STREAM, SNAPSHOT, 1.0)

    def refuse(*args):
        raise AssertionError("parse() called")

    monkeypatch.setattr(adapter, "parse", refuse)
    pipe.on_frame(STREAM, book(), 1.0)
    pipe.on_frame(STREAM, book(seq=26660861, side="buy", price=97003.3, qty=0), 1.0)
    pipe.on_frame(STREAM, trade(type="liquidation"), 1.0)
    pipe.on_frame(STREAM, book(product_id="PF_ETHUSD"), 1.0)
    m = pipe.market
    assert m.live and pipe.parse_errors == 0 and pipe.trades == 1 and m.stats.liquidations == 1
    assert dict(m.book.asks) == {97004.6: 600.0, 97004.5: 4787.0, 97004.85: 10.0}
    assert dict(m.book.bids) == {97003.9: 2234.0}
    assert pipe.sync.last_seq == 26660861
