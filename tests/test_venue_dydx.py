"""dYdX v4 Indexer adapter: doc examples, a replayed session, message_id rules, uncrossing,
trades, instrument facts, and the simulator's dYdX dialect end to end.

No dYdX recording exists (../shared/recordings/ has none, and the v3 protocol is retired). The
frames below follow the fact sheet's doc examples (../shared/venues/dydx.md section 4) and the
shapes in the official clients' fixtures (nautilus_trader's dYdX test data, ccxt's comments):
snapshots as ``{"price","size"}`` objects, updates as ``[price, size]`` arrays, ``"0"`` /
``"0.0"`` deleting a level.
"""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from e2e import drop_a_delta_and_recover, until, venue_feed
from obview.feed.pipeline import Fatal, FeedPipeline, NeedResync
from obview.market import Market
from obview.model import BookSnapshot, FeedStatus, Side, Trade
from obview.venues.base import FrameError, ResyncMode, UnknownSymbol, VenueError
from obview.venues.dydx import DydxAdapter, DydxDelta, DydxSync
from obview.venues.registry import get_adapter

# -- doc examples (fact sheet section 4) ----------------------------------------------------------
DOC_CONNECTED = (
    '{"type":"connected","connection_id":"004a1efa-21bb-4b19-a2e9-a8ffadd6dc53","message_id":0}'
)
DOC_SNAPSHOT = (
    '{"type":"subscribed","connection_id":"ee5a","message_id":2,"channel":"v4_orderbook",'
    '"id":"BTC-USD","contents":{"bids":[{"price":"28194","size":"4.764826096"},'
    '{"price":"28193","size":"3.115323739"}],"asks":[{"price":"28195","size":"3.219612343"}]}}'
)
DOC_DELTA = (
    '{"type":"channel_data","connection_id":"ee5a","message_id":484,"id":"BTC-USD",'
    '"channel":"v4_orderbook","version":"0.0.1","contents":{"bids":[["27773","1.986168516"]]}}'
)
DOC_BATCH = (
    '{"type":"channel_batch_data","connection_id":"c","message_id":7,"id":"BTC-USD",'
    '"channel":"v4_orderbook","version":"1.0.0","contents":[{"bids":[["65000","0.5"]]},'
    '{"asks":[["65001","0"],["65003","1.2"]]},{"bids":[["65000","0"]]}]}'
)
DOC_TRADE = (
    '{"type":"channel_data","connection_id":"c","message_id":4,"id":"BTC-USD","channel":"v4_trades",'
    '"version":"1.1.0","contents":{"trades":[{"id":"02b6148d0000000200000005","side":"BUY",'
    '"size":"0.024","price":"114581","type":"LIMIT","createdAt":"2025-08-04T00:42:07.119Z",'
    '"createdAtHeight":"45487245"}]}}'
)
DOC_ERROR = (
    '{"type":"error","message":"Invalid subscription id for channel: (v4_orderbook-BTC-USDX)",'
    '"connection_id":"c","message_id":1}'
)


def make(symbol: str = "BTC-PERP"):
    ad = DydxAdapter(symbol)
    market = Market(ad.default_instrument())
    return ad, market, FeedPipeline(ad, market)


def snapshot(mid: int, bids, asks, ticker: str = "BTC-USD") -> str:
    return orjson.dumps(
        {
            "type": "subscribed",
            "connection_id": "conn",
            "message_id": mid,
            "channel": "v4_orderbook",
            "id": ticker,
            "contents": {
                "bids": [{"price": str(p), "size": str(s)} for p, s in bids],
                "asks": [{"price": str(p), "size": str(s)} for p, s in asks],
            },
        }
    ).decode()


def update(mid: int, bids=(), asks=(), ticker: str = "BTC-USD") -> str:
    contents: dict = {}
    if bids:
        contents["bids"] = [[str(p), str(s)] for p, s in bids]
    if asks:
        contents["asks"] = [[str(p), str(s)] for p, s in asks]
    return orjson.dumps(
        {
            "type": "channel_data",
            "connection_id": "conn",
            "message_id": mid,
            "id": ticker,
            "channel": "v4_orderbook",
            "version": "1.0.0",
            "contents": contents,
        }
    ).decode()


def batch(mid: int, *parts: dict) -> str:
    contents = [{k: [[str(p), str(s)] for p, s in v] for k, v in part.items()} for part in parts]
    return orjson.dumps(
        {
            "type": "channel_batch_data",
            "connection_id": "conn",
            "message_id": mid,
            "id": "BTC-USD",
            "channel": "v4_orderbook",
            "version": "1.0.0",
            "contents": contents,
        }
    ).decode()


def trades_msg(mid: int, trades: list[tuple], kind: str = "channel_data") -> str:
    return orjson.dumps(
        {
            "type": kind,
            "connection_id": "conn2",
            "message_id": mid,
            "id": "BTC-USD",
            "channel": "v4_trades",
            "version": "1.1.0",
            "contents": {
                "trades": [
                    {
                        "id": tid,
                        "side": side,
                        "size": size,
                        "price": price,
                        "type": "LIMIT",
                        "createdAt": at,
                        "createdAtHeight": "45487245",
                    }
                    for tid, side, size, price, at in trades
                ]
            },
        }
    ).decode()


BIDS = [(100.0, 1.0), (99.0, 2.0), (98.0, 3.0)]
ASKS = [(101.0, 1.5), (102.0, 2.5), (103.0, 3.5)]


# -- adapter basics ---------------------------------------------------------------------------
def test_registry_symbols_streams_and_subscribe_frames():
    assert get_adapter("dydx") is DydxAdapter
    assert [DydxAdapter(s).native for s in ("BTC-PERP", "ETH-PERP", "SOL-PERP")] == [
        "BTC-USD",
        "ETH-USD",
        "SOL-USD",
    ]
    ad = DydxAdapter("BTC-PERP")
    book, trades = ad.streams()
    assert book.url == trades.url == "wss://indexer.dydx.trade/v4/ws"
    assert (book.book, book.trades, trades.book, trades.trades) == (True, False, False, True)
    assert [orjson.loads(f) for f in book.subscribe] == [
        {"type": "subscribe", "channel": "v4_orderbook", "id": "BTC-USD", "batched": True}
    ]
    assert [orjson.loads(f) for f in trades.subscribe] == [
        {"type": "subscribe", "channel": "v4_trades", "id": "BTC-USD", "batched": False}
    ]
    # no application heartbeat exists; a quiet book is not stale for one server ping cycle
    assert book.ping_frame is None and book.stale_after == 20
    assert ad.resync_mode is ResyncMode.RECONNECT
    assert ad.rest_endpoint == "https://indexer.dydx.trade"
    local = DydxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    assert local.streams()[0].url == "ws://127.0.0.1:9/v4/ws"
    assert local.rest_endpoint == "http://127.0.0.1:9"
    with pytest.raises(UnknownSymbol, match="BTC-PERP"):
        DydxAdapter("DOGE-PERP")


def test_parse_doc_snapshot_update_and_batch():
    ad = DydxAdapter("BTC-PERP")
    (snap,) = ad.parse("book", DOC_SNAPSHOT, 3.0)
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == [(28194.0, 4.764826096), (28193.0, 3.115323739)]
    assert snap.asks == [(28195.0, 3.219612343)]
    assert (snap.seq, snap.ts_exchange, snap.ts_local) == (2, None, 3.0)
    (d,) = ad.parse("book", DOC_DELTA, 4.0)
    assert isinstance(d, DydxDelta)
    assert (d.bids, d.asks, d.seq, d.part) == ([(27773.0, 1.986168516)], [], 484, 0)
    parts = ad.parse("book", DOC_BATCH, 5.0)
    assert [(p.seq, p.part) for p in parts] == [(7, 0), (7, 1), (7, 2)]
    assert parts[1].asks == [(65001.0, 0.0), (65003.0, 1.2)] and parts[2].bids == [(65000.0, 0.0)]
    # nautilus' fixture deletes with "0.0"; older doc samples carry a third "offset" element
    (z,) = ad.parse("book", update(9, bids=[("43240.0", "0.0")]), 1.0)
    assert z.bids == [(43240.0, 0.0)]
    three = DOC_DELTA.replace('[["27773","1.986168516"]]', '[["27773","1.5","1234"]]')
    assert ad.parse("book", three, 1.0)[0].bids == [(27773.0, 1.5)]
    # an update with object levels, a snapshot with array levels: both shapes are read
    obj = DOC_DELTA.replace('[["27773","1.986168516"]]', '[{"price":"27773","size":"2"}]')
    assert ad.parse("book", obj, 1.0)[0].bids == [(27773.0, 2.0)]
    arr = snapshot(1, [], []).replace('"bids":[]', '"bids":[["5","1"],["4","0"]]')
    assert ad.parse("book", arr, 1.0)[0].bids == [(5.0, 1.0)]  # a zero level is no level


def test_parse_doc_trade_taker_side_and_time():
    ad = DydxAdapter("BTC-PERP")
    (t,) = ad.parse("trades", DOC_TRADE, 9.0)
    assert isinstance(t, Trade)
    assert (t.price, t.size, t.side, t.trade_id) == (
        114581.0,
        0.024,
        Side.BUY,
        "02b6148d0000000200000005",
    )
    assert t.ts_exchange == pytest.approx(1754268127.119)
    assert ad.parse("trades", DOC_TRADE, 9.5) == []  # the same fill again: shown once
    sell = DOC_TRADE.replace('"BUY"', '"SELL"').replace("0000000200000005", "0000000200000006")
    (s,) = ad.parse("trades", sell, 10.0)
    assert s.side is Side.SELL
    # older payloads: UUID ids and ``liquidation`` instead of ``type``
    old = DOC_TRADE.replace('"02b6148d0000000200000005"', '"8ee6d90d-272d-5edd-bf0f-2e4d6ae3d3b7"')
    old = old.replace('"type":"LIMIT"', '"liquidation":true')
    (o,) = ad.parse("trades", old, 11.0)
    assert o.trade_id == "8ee6d90d-272d-5edd-bf0f-2e4d6ae3d3b7"
    assert o.kind == "liq" and t.kind == s.kind == ""  # a liquidation, shown as one


def test_trade_snapshot_is_history_not_new_prints():
    ad = DydxAdapter("BTC-PERP")
    at = "2025-08-04T00:42:07.119Z"
    hist = trades_msg(
        2, [("b", "SELL", "1", "100", at), ("a", "BUY", "1", "100", at)], "subscribed"
    )
    assert ad.parse("trades", hist, 1.0) == []
    fresh = trades_msg(3, [("b", "SELL", "1", "100", at), ("c", "BUY", "2", "101", at)])
    assert [t.trade_id for t in ad.parse("trades", fresh, 2.0)] == ["c"]


def test_control_frames_errors_other_markets_and_garbage():
    ad = DydxAdapter("BTC-PERP")
    assert ad.parse("book", DOC_CONNECTED, 0.0) == []
    unsub = '{"type":"unsubscribed","connection_id":"c","message_id":5,"channel":"v4_orderbook","id":"BTC-USD"}'
    assert ad.parse("book", unsub, 0.0) == []
    assert ad.parse("book", '{"type":"pong","connection_id":"c","message_id":6}', 0.0) == []
    (err,) = ad.parse("book", DOC_ERROR, 0.0)
    assert isinstance(err, VenueError) and err.fatal and "Invalid subscription id" in err.reason
    for text in (
        "Invalid subscribe message: already subscribed (v4_orderbook-BTC-USD)",
        "Too many subscribe attempts for channel v4_orderbook-BTC-USD. Please  reconnect and try again.",
        "Internal error, could not fetch data for subscription: v4_orderbook.",
    ):
        (e,) = ad.parse("book", orjson.dumps({"type": "error", "message": text}), 0.0)
        assert isinstance(e, VenueError) and not e.fatal, text
    # another market, another channel, a book frame on the trades connection: not ours
    assert ad.parse("book", update(3, bids=[(1, 1)], ticker="ETH-USD"), 0.0) == []
    assert ad.parse("book", DOC_DELTA.replace("v4_orderbook", "v4_candles"), 0.0) == []
    assert ad.parse("trades", DOC_DELTA, 0.0) == []
    bad = [
        "not json",
        "[1,2]",
        '{"message_id":3}',
        '{"type":"weird"}',
        DOC_DELTA.replace('"message_id":484,', ""),
        DOC_DELTA.replace('"message_id":484', '"message_id":"484"'),
        DOC_DELTA.replace('"1.986168516"', '"NaN"'),
        DOC_DELTA.replace('"1.986168516"', '"-1"'),
        DOC_DELTA.replace('"27773"', '"0"'),
        DOC_DELTA.replace('"27773"', '"abc"'),
        DOC_DELTA.replace('[["27773","1.986168516"]]', '[["27773"]]'),
        DOC_DELTA.replace('[["27773","1.986168516"]]', '"x"'),
        DOC_BATCH.replace('{"bids":[["65000","0.5"]]}', "7"),
        DOC_TRADE.replace('"BUY"', '"LONG"'),
        DOC_TRADE.replace('"2025-08-04T00:42:07.119Z"', '"yesterday"'),
        DOC_TRADE.replace('"114581"', '"inf"'),
        DOC_TRADE.replace('{"trades":', '{"fills":'),
    ]
    for frame in bad:
        with pytest.raises(FrameError):
            ad.parse("book" if "v4_orderbook" in frame else "trades", frame, 0.0)
    # in the pipeline: counted, never a crash; a refused subscription ends the feed
    _, market, pipe = make()
    for frame in bad:
        assert pipe.on_frame("book", frame, 0.0) == []
    assert pipe.parse_errors == len(bad)
    acts = pipe.on_frame("book", DOC_ERROR, 0.0)
    assert [type(a) for a in acts] == [Fatal] and market.state.status is FeedStatus.FAILED


def test_instrument_facts_defaults_and_perpetual_markets():
    ad = DydxAdapter("BTC-PERP")
    d = ad.default_instrument()
    assert (d.tick, d.lot, d.size_unit, d.contract_value, d.base, d.quote) == (
        1.0,
        0.0001,
        "base",
        1.0,
        "BTC",
        "USD",
    )
    assert DydxAdapter("SOL-PERP").default_instrument().lot == 0.1
    assert ad.instrument_request().url == (
        "https://indexer.dydx.trade/v4/perpetualMarkets?ticker=BTC-USD"
    )
    market = {
        "clobPairId": "1",
        "ticker": "ETH-USD",
        "status": "ACTIVE",
        "oraclePrice": "3103.01",
        "atomicResolution": -9,
        "tickSize": "0.1",
        "stepSize": "0.001",
        "stepBaseQuantums": 1000000,
        "subticksPerTick": 100000,
    }
    eth = DydxAdapter("ETH-PERP")
    inst = eth.parse_instrument(orjson.dumps({"markets": {"ETH-USD": market}}))
    assert (inst.tick, inst.lot, inst.base, inst.size_unit) == (0.1, 0.001, "ETH", "base")
    # nautilus' fixture wraps the same map in ``result``
    wrapped = orjson.dumps({"status": "success", "result": {"markets": {"ETH-USD": market}}})
    assert eth.parse_instrument(wrapped).tick == 0.1
    with pytest.raises(FrameError):
        ad.parse_instrument(orjson.dumps({"markets": {"ETH-USD": market}}))
    with pytest.raises(FrameError):
        ad.parse_instrument(b'{"errors":[{"msg":"ticker must be a valid ticker"}]}')
    with pytest.raises(FrameError):
        eth.parse_instrument(orjson.dumps({"markets": {"ETH-USD": {**market, "tickSize": "0"}}}))


# -- a replayed session -------------------------------------------------------------------------
def session_frames(seed: int = 5, n: int = 300):
    """A realistic book session in the documented shapes: ``connected``, the ``subscribed``
    snapshot (objects), then ``channel_batch_data`` and ``channel_data`` updates (arrays,
    ``"0"`` deletes) numbered by ``message_id``; the reference book is kept independently.
    Prices stay on a tick of 1 and bids below asks, as a real (uncrossed) BTC-USD book."""
    rng = random.Random(seed)
    bids = {float(64000 - i): round(rng.uniform(0.01, 3.0), 4) for i in range(1, 40)}
    asks = {float(64000 + i): round(rng.uniform(0.01, 3.0), 4) for i in range(1, 40)}
    frames = [DOC_CONNECTED, snapshot(1, sorted(bids.items(), reverse=True), sorted(asks.items()))]

    def change() -> dict:
        is_bid = rng.random() < 0.5
        side, other = (bids, asks) if is_bid else (asks, bids)
        best_other = (min(other) if is_bid else max(other)) if other else 64000.0
        off = rng.randint(1, 25)
        price = best_other - off if is_bid else best_other + off
        if price in side and rng.random() < 0.4 and len(side) > 5:
            size = 0.0
            del side[price]
        else:
            size = round(rng.uniform(0.0001, 2.5), 4)
            side[price] = size
        text = "0" if size == 0 else f"{size:.4f}"
        return {"bids" if is_bid else "asks": [[f"{price:.0f}", text]]}

    mid = 1
    for _ in range(n):
        mid += 1
        if rng.random() < 0.7:
            parts = [change() for _ in range(rng.randint(1, 6))]
            frames.append(
                orjson.dumps(
                    {
                        "type": "channel_batch_data",
                        "connection_id": "conn",
                        "message_id": mid,
                        "id": "BTC-USD",
                        "channel": "v4_orderbook",
                        "version": "1.0.0",
                        "contents": parts,
                    }  # fmt: skip
                ).decode()
            )
        else:
            frames.append(
                orjson.dumps(
                    {
                        "type": "channel_data",
                        "connection_id": "conn",
                        "message_id": mid,
                        "id": "BTC-USD",
                        "channel": "v4_orderbook",
                        "version": "1.0.0",
                        "contents": change(),
                    }  # fmt: skip
                ).decode()
            )
    return frames, sorted(bids.items(), reverse=True), sorted(asks.items())


def replay(frames):
    ad, market, pipe = make()
    crossed = 0
    for i, f in enumerate(frames):
        pipe.on_frame("book", f, 1000.0 + i)
        crossed += market.book.is_crossed()
    return pipe, market, crossed


def test_session_replays_to_the_reference_book():
    frames, ref_bids, ref_asks = session_frames()
    pipe, market, crossed = replay(frames)
    assert pipe.parse_errors == 0 and crossed == 0
    assert market.live and market.stats.gaps == 0
    assert pipe.sync.last_seq == 301 and pipe.sync.uncrossed == 0
    assert market.book.top(10_000) == (ref_bids, ref_asks)
    assert market.book.best_bid() == ref_bids[0] and market.book.best_ask() == ref_asks[0]
    assert market.book.best_bid()[0] < market.book.best_ask()[0]
    assert len(market.book.bids) == len(ref_bids) > 20


@pytest.mark.parametrize("cut", [2, 57, 150, 299])
def test_session_with_one_update_removed_is_a_gap(cut):
    frames, _, _ = session_frames()
    pipe, market, _ = replay(frames[:cut] + frames[cut + 1 :])
    assert market.stats.gaps == 1 and not market.live
    assert market.state.status is FeedStatus.SYNCING
    assert market.state.reason.startswith(f"seq gap {cut}\u2192{cut + 1}")
    assert market.book.empty


def test_session_with_one_update_corrupted_is_a_gap():
    frames, _, _ = session_frames()
    broken = list(frames)
    broken[120] = broken[120][:-9]  # truncated in transit: unreadable, so its number is missing
    pipe, market, _ = replay(broken)
    assert pipe.parse_errors == 1
    assert market.stats.gaps == 1 and "seq gap 120" in market.state.reason
    assert not market.live and market.book.empty


def test_trades_stream_counts_sides():
    ad, market, pipe = make()
    at = "2025-08-04T00:42:0{}.000Z"
    pipe.on_frame(
        "trades", trades_msg(1, [("x", "BUY", "0.1", "64000", at.format(0))], "subscribed"), 1.0
    )
    pipe.on_frame("trades", trades_msg(2, [("t1", "BUY", "0.5", "64001", at.format(1))]), 2.0)
    pipe.on_frame(
        "trades",
        trades_msg(
            3,
            [
                ("t2", "SELL", "0.25", "63999", at.format(2)),
                ("t3", "SELL", "1", "63998", at.format(2)),
            ],
        ),
        3.0,
    )
    pipe.on_frame("trades", trades_msg(3, [("t2", "SELL", "0.25", "63999", at.format(2))]), 3.1)
    sides = [t.side for t in market.trades]
    assert sides == [Side.BUY, Side.SELL, Side.SELL] and pipe.trades == 3
    assert market.last_price == 63998.0 and market.trades[0].ts_exchange == pytest.approx(
        1754268121.0
    )


# -- sync rules -----------------------------------------------------------------------------------
def test_updates_follow_message_id_and_batches_apply_in_order():
    _, market, pipe = make()
    assert pipe.on_frame("book", snapshot(1, BIDS, ASKS), 1.0) == []
    assert market.live
    pipe.on_frame("book", update(2, bids=[(100, 0), (99.5, 4)]), 1.1)
    pipe.on_frame(
        "book",
        batch(3, {"asks": [(101, 0)]}, {"asks": [(101.5, 2)]}, {"asks": [(101.5, 0.7)]}),
        1.2,
    )
    assert market.book.best_bid() == (99.5, 4.0)
    assert market.book.best_ask() == (101.5, 0.7)  # the last element of a batch wins
    pipe.on_frame("book", update(4, asks=[(150, 0)]), 1.3)  # deleting an unknown level is fine
    pipe.on_frame("book", batch(5), 1.4)  # an empty batch still takes its number
    pipe.on_frame("book", update(6, bids=[(99.5, 1)]), 1.5)
    assert market.live and market.stats.gaps == 0 and pipe.sync.last_seq == 6
    assert market.book.bids[99.5] == 1.0


def test_duplicate_and_older_messages_are_ignored():
    _, market, pipe = make()
    pipe.on_frame("book", snapshot(1, BIDS, ASKS), 1.0)
    b = batch(2, {"bids": [(99, 7)]}, {"bids": [(99, 8)]})
    pipe.on_frame("book", b, 1.1)
    pipe.on_frame("book", update(3, bids=[(98, 5)]), 1.2)
    pipe.on_frame("book", b, 1.3)  # repeated batch
    pipe.on_frame("book", update(3, bids=[(98, 9)]), 1.4)  # repeated message
    pipe.on_frame("book", update(1, bids=[(97, 9)]), 1.5)  # older than the snapshot
    assert (
        market.book.bids[99] == 8.0 and market.book.bids[98] == 5.0 and 97.0 not in market.book.bids
    )
    assert market.live and market.stats.gaps == 0


def test_message_id_jump_is_a_gap_and_reconnect_snapshot_recovers():
    _, market, pipe = make()
    pipe.on_frame("book", snapshot(1, BIDS, ASKS), 1.0)
    pipe.on_frame("book", update(2, bids=[(99, 3)]), 1.1)
    acts = pipe.on_frame("book", update(4, bids=[(99, 4)]), 1.2)
    assert [type(a) for a in acts] == [NeedResync]
    assert market.state.status is FeedStatus.SYNCING and "seq gap 3\u21924" in market.state.reason
    assert market.book.empty and market.stats.gaps == 1
    # out of order: the late message 3 cannot repair anything; it waits for a snapshot
    assert pipe.on_frame("book", update(3, bids=[(99, 5)]), 1.3) == []
    assert not market.live
    # a new connection starts over at subscribed = 1; what came before the snapshot is held
    # and replayed after it when it follows it
    pipe.reset_book()
    pipe.on_frame("book", update(2, bids=[(50, 1)]), 1.4)  # before the snapshot: held
    assert not market.live and market.book.empty
    pipe.on_frame("book", snapshot(1, [(90, 1)], [(91, 1)]), 1.5)
    assert market.live and dict(market.book.bids) == {90.0: 1.0, 50.0: 1.0}
    pipe.on_frame("book", update(3, asks=[(91, 0), (92, 2)]), 1.6)
    assert market.book.best_ask() == (92.0, 2.0) and market.live


def test_later_snapshot_replaces_book():
    _, market, pipe = make()
    pipe.on_frame("book", snapshot(1, BIDS, ASKS), 1.0)
    pipe.on_frame("book", update(2, bids=[(99.5, 1)]), 1.1)
    pipe.on_frame("book", snapshot(7, [(80, 1)], [(81, 2)]), 1.2)
    assert dict(market.book.bids) == {80.0: 1.0} and dict(market.book.asks) == {81.0: 2.0}
    pipe.on_frame("book", update(8, bids=[(79, 2)]), 1.3)
    assert market.live and len(market.book.bids) == 2 and market.stats.gaps == 0


def test_updates_before_any_snapshot_are_not_live():
    _, market, pipe = make()
    pipe.on_frame("book", update(2, bids=[(100.5, 1)]), 1.0)
    pipe.on_frame("book", batch(3, {"asks": [(100.7, 1)]}), 1.1)
    assert not market.live and market.book.empty


def test_crossing_level_older_side_is_removed_by_the_venue_rule():
    """The venue's uncrossing rule: the level set by the older message goes."""
    _, market, pipe = make()
    pipe.on_frame("book", snapshot(1, BIDS, ASKS), 1.0)
    # a newer ask below the snapshot's best bid: the stale bid (message 1) is removed
    pipe.on_frame("book", update(2, asks=[(99.5, 0.4)]), 1.1)
    assert market.live and not market.book.is_crossed()
    assert market.book.best_bid() == (99.0, 2.0) and market.book.best_ask() == (99.5, 0.4)
    assert pipe.sync.uncrossed == 1
    # a newer bid above the ask of message 2: that ask is the stale one now
    pipe.on_frame("book", update(3, bids=[(101.0, 0.3)]), 1.2)
    # both asks at or under it are older (messages 2 and 1): both go
    assert market.book.best_bid() == (101.0, 0.3) and market.book.best_ask() == (102.0, 2.5)
    assert not market.book.is_crossed() and market.live and pipe.sync.uncrossed == 3
    assert market.stats.gaps == 0


def test_crossed_snapshot_levels_of_the_same_message_net_out():
    _, market, pipe = make()
    pipe.on_frame("book", snapshot(1, [(101, 1.0), (100, 2.0)], [(100.5, 0.25), (102, 1.0)]), 1.0)
    # bid 101 and ask 100.5 came in the same message: both lose 0.25, the ask goes
    assert market.live and market.book.best_bid() == (101.0, 0.75)
    assert market.book.best_ask() == (102.0, 1.0) and pipe.sync.uncrossed == 1


def test_crossed_book_beyond_the_budget_is_a_gap():
    _, market, pipe = make()
    bids = [(100.0 - i, 1.0) for i in range(40)]
    pipe.on_frame("book", snapshot(1, bids, [(200.0, 1.0)]), 1.0)
    # one ask under 30 stale bids: more corrections than one message may make
    acts = pipe.on_frame("book", update(2, asks=[(70.5, 1.0)]), 1.1)
    assert [type(a) for a in acts] == [NeedResync]
    assert "crossed" in market.state.reason and not market.live and market.book.empty

    # many small corrections in a short time: the window budget
    _, market, pipe = make()
    pipe.on_frame("book", snapshot(1, [(50.0, 1.0)], [(500.0, 1.0)]), 1.0)
    sync = pipe.sync
    assert isinstance(sync, DydxSync)
    mid = 1

    def one_correction(now: float) -> None:
        # a bid, then a newer ask under it (the bid goes), then the ask is deleted
        nonlocal mid
        for frame in (
            update(mid + 1, bids=[(55.0, 1.0)]),
            update(mid + 2, asks=[(54.0, 1.0)]),
            update(mid + 3, asks=[(54.0, 0)]),
        ):
            pipe.on_frame("book", frame, now)
        mid += 3

    for i in range(sync.max_drops_per_window):
        one_correction(2.0 + i * 0.1)
        assert market.live and sync.uncrossed == i + 1, i
    one_correction(20.0)
    assert not market.live and market.book.empty
    assert "crossed" in market.state.reason and "removed in 60 s" in market.state.reason


def test_crossed_book_is_a_gap_when_uncrossing_is_off(monkeypatch):
    monkeypatch.setattr(DydxSync, "uncross", False)
    _, market, pipe = make()
    pipe.on_frame("book", snapshot(1, BIDS, ASKS), 1.0)
    acts = pipe.on_frame("book", update(2, bids=[(101.5, 1.0)]), 1.1)
    assert [type(a) for a in acts] == [NeedResync]
    assert market.state.reason.startswith("crossed by") and not market.live


# -- the simulator's dialect ------------------------------------------------------------------------
def test_dialect_handshake_numbers_refusals_and_rest():
    from obview.sim.dialects.dydx import DydxDialect
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimTrade, SimUpdate

    m = SimMarket("BTC-PERP", seed=2, start_time=1_700_000_000.0)
    d = DydxDialect({"BTC-PERP": m}, "/v4/ws")
    ad = DydxAdapter("BTC-PERP")
    (hello,) = d.on_connect()
    assert orjson.loads(hello.text)["message_id"] == 0 and ad.parse("book", hello.text, 0.0) == []
    (err,) = d.on_message('{"type":"subscribe","channel":"v4_orderbook","id":"DOGE-USD"}')
    (ve,) = ad.parse("book", err.text, 0.0)
    assert ve.fatal and "Invalid subscription id" in ve.reason
    (err,) = d.on_message('{"type":"subscribe","channel":"v5_books","id":"BTC-USD"}')
    assert ad.parse("book", err.text, 0.0)[0].fatal
    (sub,) = d.on_message(
        '{"type":"subscribe","channel":"v4_orderbook","id":"BTC-USD","batched":true}'
    )
    s = orjson.loads(sub.text)
    # the DOGE-USD subscribe passed validation (a channel, a string id) and took a number; the
    # unknown channel did not: the indexer numbers valid subscribes and unsubscribes only
    assert sub.kind == "snapshot" and s["message_id"] == 2
    assert len(s["contents"]["bids"]) == len(m.book.bids) and set(s["contents"]["bids"][0]) == {
        "price",
        "size",
    }
    (again,) = d.on_message('{"type":"subscribe","channel":"v4_orderbook","id":"BTC-USD"}')
    assert not ad.parse("book", again.text, 0.0)[0].fatal
    # a JSON ping gets no answer and no number (the WebSocket ping is the venue's heartbeat)
    assert d.on_message('{"type":"ping","id":5}') == [] and d.message_id == 3
    # batched: updates of 250 ms go out as one channel_batch_data
    ts = m.ts
    up = lambda k, **kw: SimUpdate("BTC-PERP", 1, 0, ts + k * 0.1, **kw)  # noqa: E731
    assert d.on_update(up(1, bids=[(96000.0, 0.5)])) == []
    assert d.on_update(up(2, asks=[(98000.0, 0.0)])) == []
    (out,) = d.on_update(up(3, bids=[(96000.0, 0.0)]))
    f = orjson.loads(out.text)
    assert out.kind == "delta" and f["type"] == "channel_batch_data" and f["message_id"] == 4
    assert f["contents"] == [
        {"bids": [["96000.0", "0.500"]]},
        {"asks": [["98000.0", "0"]]},
        {"bids": [["96000.0", "0"]]},
    ]
    # trades: unbatched channel_data, taker side, ISO time
    (tsub,) = d.on_message('{"type":"subscribe","channel":"v4_trades","id":"BTC-USD"}')
    assert ad.parse("trades", tsub.text, 0.0) == []
    trade = SimTrade(97000.0, 0.25, Side.SELL, 77, ts + 0.5)
    outs = d.on_update(up(5, trades=[trade]))
    (t,) = ad.parse("trades", outs[-1].text, 0.0)
    assert (t.price, t.size, t.side, t.ts_exchange) == (
        97000.0,
        0.25,
        Side.SELL,
        pytest.approx(ts + 0.5, abs=1e-3),
    )
    # REST: market facts and the book
    status, body = DydxDialect.http(
        {"BTC-PERP": m}, "/v4/perpetualMarkets", {"ticker": "BTC-USD"}, b""
    )
    inst = ad.parse_instrument(body)
    assert status == 200 and (inst.tick, inst.lot) == (m.tick, m.lot)
    status, _ = DydxDialect.http({"BTC-PERP": m}, "/v4/perpetualMarkets", {"ticker": "X-USD"}, b"")
    assert status == 400
    status, body = DydxDialect.http(
        {"BTC-PERP": m}, "/v4/orderbooks/perpetualMarket/BTC-USD", {}, b""
    )
    assert status == 200 and len(orjson.loads(body)["asks"]) == len(m.book.asks)
    assert DydxDialect.http({"BTC-PERP": m}, "/v5/market/instruments-info", {}, b"") is None


# -- end to end: the simulator speaking dYdX ------------------------------------------------------
def book_dialect(server):
    ds = [
        c.dialect
        for c in server.clients
        if c.dialect.name == "dydx" and any(k[0] == "v4_orderbook" for k in c.dialect.subs)
    ]
    return ds[0] if len(ds) == 1 else None


async def frozen_equal(server, market, sim, sync, ticker: str = "BTC-USD") -> None:
    """Stop stepping, let the last batch arrive (the heartbeat flushes it), compare the whole
    book with the simulator's."""
    server.set_rate(0)

    def sent_id():
        d = book_dialect(server)
        sub = d.subs.get(("v4_orderbook", ticker)) if d else None
        return None if sub is None or sub.buffer else (sub.last_id or 1)

    await until(
        lambda: market.live and sent_id() is not None and sync.last_seq == sent_id(), timeout=5
    )

    def rounded(levels):
        return [(round(p, 8), round(s, 8)) for p, s in levels]

    bids, asks = market.book.top(100_000)
    sim_bids, sim_asks = sim.book.top(100_000)
    assert rounded(bids) == rounded(sim_bids) and rounded(asks) == rounded(sim_asks)
    assert len(bids) > 100 and not market.book.is_crossed()
    server.set_rate(40)


async def test_e2e_live_gap_duplicate_kick_and_pings():
    async with asyncio.timeout(45):
        feed = venue_feed(DydxAdapter, "BTC-PERP", "/v4/ws", seed=11, rate=40)
        async with feed as (server, _adapter, market, session):
            sim = server.markets["BTC-PERP"]
            sync = session.pipeline.sync
            bad: list = []
            assert market.instrument.tick == 1.0  # built-in default until the REST answer
            await until(
                lambda: market.live and market.instrument.tick == sim.tick, market=market, bad=bad
            )
            assert market.instrument.lot == sim.lot and market.instrument.size_unit == "base"
            await frozen_equal(server, market, sim, sync)
            await until(lambda: session.pipeline.trades >= 3, timeout=10)
            assert {t.side for t in market.trades} <= {Side.BUY, Side.SELL}
            assert all(t.venue == "dydx" and t.ts_exchange for t in market.trades)

            # a dropped book message: message_id jumps -> SYNCING (seq gap) -> reconnect -> LIVE
            attempts = session.connect_attempts
            await drop_a_delta_and_recover(server, market)
            assert session.connect_attempts > attempts
            await frozen_equal(server, market, sim, sync)

            # a duplicated one is ignored
            gaps = market.stats.gaps
            server.faults.duplicate_next("delta", 2)
            await until(lambda: server.faults.duplicated >= 2)
            await frozen_equal(server, market, sim, sync)
            assert market.stats.gaps == gaps

            # the server's WebSocket pings are answered on both connections
            conns = [c for c in server.clients if c.dialect.name == "dydx"]
            assert len(conns) == 2
            for c in conns:
                pong = await c.ws.ping()
                await asyncio.wait_for(pong, 2.0)

            # every connection dropped: reconnect, subscribe again, snapshot, LIVE
            connects = session.connect_attempts
            await server.kick()
            await until(
                lambda: session.connect_attempts >= connects + 2 and market.live,
                market=market,
                bad=bad,
            )
            await frozen_equal(server, market, sim, sync)
            assert bad == [] and session.pipeline.parse_errors == 0


async def test_e2e_json_pings_take_no_message_id_and_sol_sizes_are_coins():
    """A client that sends JSON pings on the book connection gets no answer, and the pings do
    not move the venue's message_id: the book's sequence stays whole."""
    async with asyncio.timeout(30):

        class Pinging(DydxAdapter):
            def streams(self):
                specs = super().streams()
                specs[0].ping_interval = 0.05
                specs[0].ping_frame = '{"type":"ping"}'
                return specs

        async with venue_feed(Pinging, "SOL-PERP", "/v4/ws", seed=4, rate=40) as feed:
            server, _adapter, market, session = feed
            book_conn = lambda: [  # noqa: E731
                c.dialect for c in server.clients if any(k[0] == "v4_orderbook" for k in c.dialect.subs)
            ]
            await until(lambda: market.live and any(d.pings >= 5 for d in book_conn()))
            assert market.stats.gaps == 0 and market.live
            assert session.pipeline.parse_errors == 0
            await until(lambda: market.instrument.tick == server.markets["SOL-PERP"].tick)
            await frozen_equal(
                server, market, server.markets["SOL-PERP"], session.pipeline.sync, "SOL-USD"
            )


def test_a_replayed_trades_reconnect_leaves_the_book_alone(tmp_path):
    # dYdX's book and trades sockets share one URL: replay took every connect line for the
    # book's and wiped the book when the trades socket reconnected (SYNCING to the end)
    from obview.record import Recorder
    from obview.replay import replay_summary
    from obview.sim.dialects.dydx import DydxDialect
    from obview.sim.engine import SimMarket

    m = SimMarket("BTC-PERP", seed=3, start_time=1_700_000_000.0)
    book_spec, trades_spec = DydxAdapter("BTC-PERP").streams()
    path = tmp_path / "dydx.jsonl"
    rec = Recorder(path)
    for spec in (book_spec, trades_spec, trades_spec):  # the trades socket reconnects last
        d = DydxDialect({"BTC-PERP": m}, "/v4/ws")
        c = rec.connect(spec.url)
        for out in d.on_connect():
            rec.received(out.text, c)
        for frame in spec.subscribe:
            rec.sent(frame, c)
            for out in d.on_message(frame):
                rec.received(out.text, c)
    rec.close()
    s = replay_summary(path, "dydx", "BTC-PERP")
    assert s["state"] == "LIVE" and s["best_bid"] == m.book.best_bid()[0]
