"""Demo adapter against frames made by the demo dialect (no sockets)."""

from __future__ import annotations

import orjson
import pytest

from obview.book import OrderBook
from obview.model import BookDelta, BookSnapshot, Side, Trade
from obview.sim.dialects.demo import DemoDialect
from obview.sim.engine import SIM_SYMBOLS, SimMarket
from obview.venues.base import (
    DEPTH_REFRESH,
    FrameError,
    ResyncMode,
    SyncStatus,
    UnknownSymbol,
    VenueError,
)
from obview.venues.demo import DemoAdapter, DemoSync
from obview.venues.registry import get_adapter


def make(symbols=("BTC-PERP", "ETH-PERP")):
    markets = {s: SimMarket(s, seed=21, start_time=1000.0) for s in symbols}
    return markets, DemoDialect(markets, "/demo")


def texts(outs):
    return [o.text for o in outs]


def test_class_facts() -> None:
    assert get_adapter("demo") is DemoAdapter
    assert DemoAdapter.title == "Demo (simulator)"
    assert DemoAdapter.symbols == {s: s for s in SIM_SYMBOLS}
    assert DemoAdapter.resync_mode is ResyncMode.RESUBSCRIBE
    assert DemoAdapter.default_endpoint == ""
    with pytest.raises(UnknownSymbol, match="BTC-PERP"):
        DemoAdapter("DOGE-PERP")


def test_streams_and_frames() -> None:
    a = DemoAdapter("ETH-PERP", endpoint="ws://127.0.0.1:9999/demo")
    (spec,) = a.streams()
    assert spec.url == "ws://127.0.0.1:9999/demo"
    assert [orjson.loads(f) for f in spec.subscribe] == [
        {"op": "subscribe", "symbol": "ETH-PERP", "depth": 5000}
    ]
    assert spec.ping_interval == 10 and spec.stale_after == 3
    assert orjson.loads(spec.ping_frame) == {"op": "ping"}
    assert [orjson.loads(f) for f in a.resubscribe_frames(spec.name)] == [
        {"op": "resync", "symbol": "ETH-PERP"}
    ]
    # an endpoint without a path gets /demo
    assert (
        DemoAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9999")
        .streams()[0]
        .url.endswith(":9999/demo")
    )


def test_default_instrument() -> None:
    inst = DemoAdapter("SOL-PERP", endpoint="ws://x").default_instrument()
    _mid, tick, lot = SIM_SYMBOLS["SOL-PERP"]
    assert (inst.venue, inst.symbol, inst.native, inst.tick, inst.lot) == (
        "demo",
        "SOL-PERP",
        "SOL-PERP",
        tick,
        lot,
    )
    assert inst.size_unit == "base" and inst.base == "SOL"


def test_parse_every_message_type() -> None:
    markets, d = make()
    a = DemoAdapter("BTC-PERP", endpoint="ws://x/demo")
    m = markets["BTC-PERP"]
    sub = texts(d.on_message('{"op":"subscribe","symbol":"BTC-PERP"}'))
    assert orjson.loads(sub[0])["type"] == "subscribed"
    assert a.parse("demo", sub[0], 1.0) == []
    (snap,) = a.parse("demo", sub[1], 2.0)
    assert isinstance(snap, BookSnapshot)
    assert snap.seq == m.seq and snap.ts_local == 2.0
    assert snap.ts_exchange == pytest.approx(m.ts, abs=1e-3)
    assert snap.bids == m.book.top(500)[0] and snap.asks == m.book.top(500)[1]

    n_trades = 0
    for k in range(200):
        u = m.step(1000.0 + (k + 1) * 0.05)
        events = [e for f in texts(d.on_update(u)) for e in a.parse("demo", f, 3.0)]
        delta, trades = events[0], events[1:]
        assert isinstance(delta, BookDelta)
        assert (delta.seq, delta.prev_seq) == (u.seq, u.prev_seq)
        assert delta.bids == u.bids and delta.asks == u.asks
        assert len(trades) == len(u.trades)
        for t, st in zip(trades, u.trades, strict=True):
            assert isinstance(t, Trade)
            assert (t.price, t.size, t.side, t.trade_id) == (
                st.price,
                st.size,
                st.side,
                str(st.trade_id),
            )
            assert t.side in (Side.BUY, Side.SELL)
        n_trades += len(trades)
    assert n_trades > 0

    pong = texts(d.on_message('{"op":"ping"}'))
    assert orjson.loads(pong[0]) == {"type": "pong"} and a.parse("demo", pong[0], 0) == []
    (hb,) = texts(d.heartbeat())
    assert a.parse("demo", hb, 0) == []
    (resnap,) = texts(d.on_message('{"op":"resync","symbol":"BTC-PERP"}'))
    (ev,) = a.parse("demo", resnap, 0)
    assert isinstance(ev, BookSnapshot) and ev.seq == m.seq

    (err,) = texts(d.on_message('{"op":"subscribe","symbol":"NOPE"}'))
    assert a.parse("demo", err, 0) == []  # about another symbol's subscription
    nope = DemoAdapter("BTC-PERP", endpoint="ws://x/demo", instrument="NOPE")
    (ve,) = nope.parse("demo", err, 0)
    assert isinstance(ve, VenueError) and ve.fatal and "unknown symbol NOPE" in ve.reason


def test_other_symbols_are_ignored() -> None:
    markets, d = make()
    a = DemoAdapter("BTC-PERP", endpoint="ws://x/demo")
    _ack, snap = texts(d.on_message('{"op":"subscribe","symbol":"ETH-PERP"}'))
    assert a.parse("demo", snap, 0) == []
    u = markets["ETH-PERP"].step(1000.05)
    assert all(a.parse("demo", f, 0) == [] for f in texts(d.on_update(u)))
    # and updates of symbols nobody subscribed to produce nothing
    assert d.on_update(markets["BTC-PERP"].step(1000.05)) == []


@pytest.mark.parametrize(
    "frame",
    [
        b"{not json",
        b"[1,2]",
        b'{"type":"mystery"}',
        b'{"no_type":1}',
        b'{"type":"delta","symbol":"BTC-PERP","seq":2,"ts":1}',
        b'{"type":"delta","symbol":"BTC-PERP","seq":"x","prev_seq":1,"ts":1,"bids":[],"asks":[]}',
        b'{"type":"snapshot","symbol":"BTC-PERP","seq":1,"ts":1,"bids":[["1"]],"asks":[]}',
        b'{"type":"snapshot","symbol":"BTC-PERP","seq":1,"ts":1,"bids":{},"asks":[]}',
        b'{"type":"trade","symbol":"BTC-PERP","id":1,"price":"1","size":"1","side":"up","ts":1}',
        b'{"type":"trade","symbol":"BTC-PERP","id":1,"price":"abc","size":"1","side":"buy","ts":1}',
        b'{"type":"error"}',
    ],
)
def test_frame_errors(frame: bytes) -> None:
    a = DemoAdapter("BTC-PERP", endpoint="ws://x/demo")
    with pytest.raises(FrameError):
        a.parse("demo", frame, 0)


def test_dialect_answers_bad_client_frames() -> None:
    _markets, d = make()
    for frame, reason in [
        ("{oops", "malformed JSON"),
        ("[]", "expected a JSON object"),
        ('{"op":"dance"}', "unknown op"),
        ('{"op":"resync","symbol":"BTC-PERP"}', "not subscribed"),
        ('{"op":"subscribe","symbol":"BTC-PERP","depth":0}', "depth"),
    ]:
        (out,) = d.on_message(frame)
        msg = orjson.loads(out.text)
        assert msg["type"] == "error" and reason in msg["reason"]


def test_depth_and_unsubscribe() -> None:
    markets, d = make()
    _ack, snap = d.on_message('{"op":"subscribe","symbol":"BTC-PERP","depth":20}')
    msg = orjson.loads(snap.text)
    assert len(msg["bids"]) == 20 and len(msg["asks"]) == 20
    assert snap.kind == "snapshot"
    (unsub,) = d.on_message('{"op":"unsubscribe","symbol":"BTC-PERP"}')
    assert orjson.loads(unsub.text)["type"] == "unsubscribed"
    assert d.on_update(markets["BTC-PERP"].step(1000.05)) == []


def test_book_sync_and_gap_detection() -> None:
    markets, d = make()
    m = markets["BTC-PERP"]
    a = DemoAdapter("BTC-PERP", endpoint="ws://x/demo")
    book = OrderBook()
    sync = a.make_sync(book)
    _ack, snap_out = d.on_message('{"op":"subscribe","symbol":"BTC-PERP","depth":5000}')
    (snap,) = a.parse("demo", snap_out.text, 0)
    assert sync.on_snapshot(snap).status is SyncStatus.APPLIED

    def feed(k: int) -> list:
        outs = d.on_update(m.step(1000.0 + k * 0.05))
        return [a.parse("demo", o.text, 0)[0] for o in outs if o.kind == "delta"]

    for k in range(1, 100):
        (delta,) = feed(k)
        assert sync.on_delta(delta).status is SyncStatus.APPLIED
    assert book.bids == m.book.bids and book.asks == m.book.asks

    # a duplicate is ignored, a skipped delta is a gap
    assert sync.on_delta(delta).status is SyncStatus.IGNORED
    feed(100)  # lost
    (after,) = feed(101)
    res = sync.on_delta(after)
    assert res.status is SyncStatus.GAP
    assert str(after.prev_seq) in res.reason and str(after.prev_seq - 1) in res.reason
    assert not sync.synced

    # resync: a fresh snapshot, then the chain continues
    (resnap_out,) = d.on_message(a.resubscribe_frames("demo")[0])
    (resnap,) = a.parse("demo", resnap_out.text, 0)
    assert sync.on_snapshot(resnap).status is SyncStatus.APPLIED
    for k in range(102, 120):
        (delta,) = feed(k)
        assert sync.on_delta(delta).status is SyncStatus.APPLIED
    assert book.bids == m.book.bids and book.asks == m.book.asks


def test_levels_beyond_a_full_snapshots_edge_are_not_kept() -> None:
    # deltas name levels at any depth; past a full snapshot's deepest level only those that
    # changed would be known: a partial sum at every price there, dropped instead
    markets, d = make()
    m = markets["BTC-PERP"]
    a = DemoAdapter("BTC-PERP", endpoint="ws://x/demo")
    book = OrderBook()
    sync = DemoSync(book, limit=100)
    _ack, snap_out = d.on_message('{"op":"subscribe","symbol":"BTC-PERP","depth":100}')
    (snap,) = a.parse("demo", snap_out.text, 0)
    assert sync.on_snapshot(snap).status is SyncStatus.APPLIED
    lo, hi = sync.window
    assert lo == snap.bids[-1][0] and hi == snap.asks[-1][0]
    beyond = 0
    for k in range(1, 400):
        outs = d.on_update(m.step(1000.0 + k * 0.05))
        for o in outs:
            if o.kind != "delta":
                continue
            (delta,) = a.parse("demo", o.text, 0)
            beyond += any(p < lo for p, _ in delta.bids) + any(p > hi for p, _ in delta.asks)
            res = sync.on_delta(delta)
            if res.status is SyncStatus.GAP:
                assert res.refresh and DEPTH_REFRESH in res.reason
                return
            assert res.status is SyncStatus.APPLIED
            # the known stretch is the simulator's book exactly, and nothing beyond it is kept
            assert dict(book.bids.items()) == {p: s for p, s in m.book.bids.items() if p >= lo}
            assert dict(book.asks.items()) == {p: s for p, s in m.book.asks.items() if p <= hi}
    assert beyond > 0  # the deltas did name levels past the edge


def test_a_full_snapshot_side_thinned_to_its_edge_is_refreshed() -> None:
    a = DemoAdapter("BTC-PERP", endpoint="ws://x/demo")
    sync = DemoSync(OrderBook(), limit=20)
    bids = [(100.0 - i, 1.0) for i in range(20)]
    asks = [(101.0 + i, 1.0) for i in range(5)]  # not full: no edge on the ask side
    snap = BookSnapshot(a.name, a.symbol, bids, asks, seq=1)
    assert sync.on_snapshot(snap).status is SyncStatus.APPLIED
    assert sync.window == (81.0, None)
    # a level past the edge is dropped; the ask side has no edge, so a far ask is kept
    res = sync.on_delta(BookDelta(a.name, a.symbol, [(50.0, 3.0)], [(500.0, 1.0)], seq=2, prev_seq=1))
    assert res.status is SyncStatus.APPLIED
    assert 50.0 not in sync.book.bids and 500.0 in sync.book.asks
    # 19 bids taken: one left before the edge (fewer than a tenth of 20 = 2): refresh
    gone = [(100.0 - i, 0.0) for i in range(19)]
    res = sync.on_delta(BookDelta(a.name, a.symbol, gone, [], seq=3, prev_seq=2))
    assert res.status is SyncStatus.GAP and res.refresh and not sync.synced


@pytest.mark.parametrize(
    "frame, why",
    [
        ('{"type":"snapshot","symbol":"BTC-PERP","seq":1,"ts":1,"bids":[[true,true]],"asks":[[101,1]]}', "price is not a number"),
        ('{"type":"delta","symbol":"BTC-PERP","seq":2.9,"prev_seq":1.5,"ts":1,"bids":[[100,1]],"asks":[]}', "seq is not an integer"),
        ('{"type":"delta","symbol":"BTC-PERP","seq":5,"prev_seq":100,"ts":1,"bids":[[100,1]],"asks":[]}', "seq 5 does not follow prev_seq 100"),
    ],
)
def test_frames_outside_the_protocol_are_bad_frames_on_both_paths(frame, why):
    """A bool read as 1.0, a seq of 2.9 cut to 2, a seq that went back: each was applied."""
    from obview.feed.pipeline import FeedPipeline
    from obview.market import Market

    a = DemoAdapter("BTC-PERP")
    m = Market(a.default_instrument())
    pipe = FeedPipeline(a, m)
    pipe.on_frame("demo", frame.encode(), 1.0)
    assert pipe.parse_errors == 1 and why in m.stats.last_error


def test_the_first_book_of_a_subscription_is_not_a_latency_sample() -> None:
    # a snapshot's time is the book's last change, seconds old on a quiet market: counted, it
    # read as a p99 of seconds on a feed arriving in milliseconds
    from obview.feed.pipeline import FeedPipeline
    from obview.market import Market
    from obview.venues.hyperliquid import HyperliquidAdapter

    a = DemoAdapter("BTC-PERP", endpoint="ws://x/demo")
    m = Market(a.default_instrument())
    pipe = FeedPipeline(a, m)
    snap = '{"type":"snapshot","symbol":"BTC-PERP","seq":1,"ts":1000000,"bids":[["100","1"]],"asks":[["101","1"]]}'
    delta = '{"type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1004990,"bids":[["100","2"]],"asks":[]}'
    pipe.on_frame("demo", snap, 1005.0)  # the book last changed 5 s before
    assert m.live and list(m.stats.latency._samples) == []
    pipe.on_frame("demo", delta, 1005.0)
    assert [round(lat, 3) for _, lat, _ in m.stats.latency._samples] == [0.01]
    # a venue that pushes whole books: every book after the first is a latency sample
    h = HyperliquidAdapter("BTC-PERP")
    hm = Market(h.default_instrument())
    hp = FeedPipeline(h, hm)
    for t in (1000, 1001):
        levels = [[{"px": "100", "sz": "1", "n": 1}], [{"px": "101", "sz": "1", "n": 1}]]
        frame = orjson.dumps({"channel": "l2Book", "data": {"coin": "BTC", "time": t * 1000, "levels": levels}})
        hp.on_frame(h.streams()[0].name, frame, t + 0.02)
    assert hm.live and [round(lat, 3) for _, lat, _ in hm.stats.latency._samples] == [0.02]


def test_the_depth_the_server_grants_is_the_snapshots_full_depth() -> None:
    # a server that grants less than the 5000 asked for: its snapshots are full at what it
    # grants, and the book is bounded there
    a = DemoAdapter("BTC-PERP", endpoint="ws://x/demo")
    sync = a.make_sync(OrderBook())
    assert sync.limit == 5000
    assert a.parse("demo", '{"type":"subscribed","symbol":"ETH-PERP","depth":7}', 0) == []
    assert sync.limit == 5000  # another symbol's
    assert a.parse("demo", '{"type":"subscribed","symbol":"BTC-PERP","depth":20}', 0) == []
    assert (sync.limit, sync.edge) == (20, 2)
    bids = [(100.0 - i, 1.0) for i in range(20)]
    snap = BookSnapshot(a.name, a.symbol, bids, [(101.0, 1.0)], seq=1)
    assert sync.on_snapshot(snap).status is SyncStatus.APPLIED and sync.window == (81.0, None)
    # levels of size 0 do not make a side full
    sync2 = DemoSync(OrderBook(), limit=3)
    snap = BookSnapshot(a.name, a.symbol, [(100.0, 1.0), (99.0, 0.0), (98.0, 1.0)], [(101.0, 1.0)], seq=1)
    assert sync2.on_snapshot(snap).status is SyncStatus.APPLIED and sync2.window == (None, None)
