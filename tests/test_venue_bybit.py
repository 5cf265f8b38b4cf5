"""Bybit v5 linear adapter: doc examples, snapshot/delta/u rules, trades, instrument facts.

No Bybit recording exists in ../shared/recordings/: the one published with cryptofeed was the
retired pre-v5 "realtime" API, so it says nothing about today's protocol. The parsing tests
use the v5 documentation's example frames (as quoted in ../shared/venues/bybit.md) and the
end-to-end tests run the adapter against the simulator's Bybit dialect.
"""

from __future__ import annotations

import orjson
import pytest

from e2e import drop_a_delta_and_recover, until, venue_feed
from obview.feed.pipeline import Fatal, FeedPipeline, NeedResync
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus, Side, Trade
from obview.venues.base import FrameError, ResyncMode, UnknownSymbol, VenueError
from obview.venues.bybit import BybitAdapter
from obview.venues.registry import get_adapter

# v5 doc examples (fact sheet section 4); the docs show depth 50, obview subscribes depth 200
DOC_SNAPSHOT = (
    '{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1672304484978,'
    '"data":{"s":"BTCUSDT","b":[["16493.50","0.006"],["16493.00","0.100"]],'
    '"a":[["16611.00","0.029"],["16612.00","0.213"]],"u":18521288,"seq":7961638724},'
    '"cts":1672304484976}'
).replace("orderbook.50.", "orderbook.200.")
DOC_DELTA = (
    '{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,'
    '"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30240.00","0"]],"a":[["30248.70","0"]],'
    '"u":177400507,"seq":66544703342},"cts":1687940967464}'
).replace("orderbook.50.", "orderbook.200.")
DOC_TRADE = (
    '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,'
    '"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",'
    '"L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}'
)
ACKS = (
    '{"success":true,"ret_msg":"","op":"subscribe","conn_id":"cejreassvfrsfvb9v1a0-2m"}',
    '{"success":true,"ret_msg":"subscribe","conn_id":"2324d924","req_id":"10001","op":"subscribe"}',
    '{"success":true,"ret_msg":"pong","conn_id":"465772b1","op":"ping"}',
    '{"op":"pong","args":["1672916271846"]}',
)


def make(symbol: str = "BTC-PERP"):
    ad = BybitAdapter(symbol)
    market = Market(ad.default_instrument())
    return ad, market, FeedPipeline(ad, market)


def book(
    kind: str, u: int, bids=(), asks=(), sym: str = "BTCUSDT", ts: int = 1_700_000_000_000
) -> str:
    return orjson.dumps(
        {
            "topic": f"orderbook.200.{sym}",
            "type": kind,
            "ts": ts,
            "data": {
                "s": sym,
                "b": [[str(p), str(q)] for p, q in bids],
                "a": [[str(p), str(q)] for p, q in asks],
                "u": u,
                "seq": 1000 + u,
            },
            "cts": ts - 2,
        }
    ).decode()


BIDS = [(100.0, 1.0), (99.9, 2.0), (99.8, 3.0)]
ASKS = [(100.1, 1.5), (100.2, 2.5), (100.3, 3.5)]


# -- adapter basics ---------------------------------------------------------------------------
def test_registry_symbols_stream_and_ping():
    assert get_adapter("bybit") is BybitAdapter
    assert [BybitAdapter(s).native for s in ("BTC-PERP", "ETH-PERP", "SOL-PERP")] == [
        "BTCUSDT",
        "ETHUSDT",
        "SOLUSDT",
    ]
    ad = BybitAdapter("BTC-PERP")
    (s,) = ad.streams()
    assert s.url == "wss://stream.bybit.com/v5/public/linear"
    assert s.book and s.trades
    sub, liq = (orjson.loads(f) for f in s.subscribe)
    assert sub["op"] == "subscribe" and sub["args"] == [
        "orderbook.200.BTCUSDT",
        "publicTrade.BTCUSDT",
    ]
    # liquidations in a request of their own: a refused topic fails its whole request
    assert liq["op"] == "subscribe" and liq["args"] == ["allLiquidation.BTCUSDT"]
    assert s.ping_interval == 20.0 and orjson.loads(s.ping_frame) == {"op": "ping"}
    assert ad.resync_mode is ResyncMode.RESUBSCRIBE
    unsub, resub = (orjson.loads(f) for f in ad.resubscribe_frames("public"))
    assert unsub["op"] == "unsubscribe" and unsub["args"] == ["orderbook.200.BTCUSDT"]
    assert resub["op"] == "subscribe" and resub["args"] == ["orderbook.200.BTCUSDT"]
    with pytest.raises(UnknownSymbol, match="BTC-PERP"):
        BybitAdapter("BTC-USDT")
    assert BybitAdapter("BTC-PERP", endpoint="ws://127.0.0.1:1/v5/public/linear").streams()[
        0
    ].url == ("ws://127.0.0.1:1/v5/public/linear")
    # a bare host gets the linear stream's path, as the venue's own URL has it
    for bare in ("ws://127.0.0.1:1", "ws://127.0.0.1:1/"):
        assert BybitAdapter("BTC-PERP", endpoint=bare).streams()[0].url == "ws://127.0.0.1:1/v5/public/linear"
    assert BybitAdapter("BTC-PERP").streams()[0].url == "wss://stream.bybit.com/v5/public/linear"


def test_parse_doc_snapshot_and_delta():
    ad = BybitAdapter("BTC-PERP")
    (snap,) = ad.parse("public", DOC_SNAPSHOT, 3.0)
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == [(16493.5, 0.006), (16493.0, 0.1)]
    assert snap.asks == [(16611.0, 0.029), (16612.0, 0.213)]
    assert snap.seq == 18521288
    assert snap.ts_exchange == pytest.approx(1672304484.978)
    (d,) = ad.parse("public", DOC_DELTA, 4.0)
    assert isinstance(d, BookDelta)
    assert d.bids == [(30247.2, 30.028), (30240.0, 0.0)] and d.asks == [(30248.7, 0.0)]
    assert d.seq == 177400507 and d.ts_local == 4.0


def test_parse_doc_trade_taker_side():
    ad = BybitAdapter("BTC-PERP")
    (t,) = ad.parse("public", DOC_TRADE, 1.0)
    assert isinstance(t, Trade)
    assert (t.price, t.size, t.side) == (16578.5, 0.001, Side.BUY)
    assert t.trade_id == "20f43950-d8dd-5b31-9112-a178eb6023af"
    assert t.ts_exchange == pytest.approx(1672304486.865)
    sell = DOC_TRADE.replace('"S":"Buy"', '"S":"Sell"')
    assert ad.parse("public", sell, 1.0)[0].side is Side.SELL


def test_string_timestamp_is_accepted():
    ad = BybitAdapter("BTC-PERP")
    (snap,) = ad.parse(
        "public", DOC_SNAPSHOT.replace('"ts":1672304484978', '"ts":"1672304484978"'), 0.0
    )
    assert snap.ts_exchange == pytest.approx(1672304484.978)


def test_acks_pongs_errors_other_topics_and_garbage():
    ad = BybitAdapter("BTC-PERP")
    for frame in ACKS:
        assert ad.parse("public", frame, 0.0) == []
    (err,) = ad.parse(
        "public",
        '{"success":false,"ret_msg":"Invalid symbol :[orderbook.200.BTCUSDX]","op":"subscribe"}',
        0.0,
    )
    assert isinstance(err, VenueError) and err.fatal and "Invalid symbol" in err.reason
    (err2,) = ad.parse("public", '{"success":false,"ret_msg":"busy","op":"ping"}', 0.0)
    assert not err2.fatal
    # a resync's subscribe that overtook its unsubscribe: not the end of the feed
    (err3,) = ad.parse(
        "public",
        '{"success":false,"ret_msg":"error:already subscribed,topic:orderbook.200.BTCUSDT","op":"subscribe"}',
        0.0,
    )
    assert isinstance(err3, VenueError) and not err3.fatal
    assert ad.parse("public", book("snapshot", 5, BIDS, ASKS, sym="ETHUSDT"), 0.0) == []
    assert ad.parse("public", '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{}}', 0.0) == []
    with pytest.raises(FrameError):
        ad.parse("public", "[1,2]", 0.0)
    with pytest.raises(FrameError):
        ad.parse("public", '{"hello":1}', 0.0)
    with pytest.raises(FrameError):
        ad.parse("public", book("weird", 5, BIDS, ASKS), 0.0)
    # a refused subscription fails the market with the venue's reason
    _, market, pipe = make()
    acts = pipe.on_frame(
        "public", '{"success":false,"ret_msg":"Invalid topic","op":"subscribe"}', 0.0
    )
    assert [type(a) for a in acts] == [Fatal] and market.state.status is FeedStatus.FAILED


def test_instrument_facts_and_defaults():
    ad = BybitAdapter("BTC-PERP")
    d = ad.default_instrument()
    assert (d.tick, d.lot, d.size_unit, d.base, d.quote) == (0.1, 0.001, "base", "BTC", "USDT")
    assert ad.instrument_request().url == (
        "https://api.bybit.com/v5/market/instruments-info?category=linear&symbol=BTCUSDT"
    )
    body = orjson.dumps(
        {
            "retCode": 0,
            "retMsg": "OK",
            "result": {
                "category": "linear",
                "list": [
                    {
                        "symbol": "BTCUSDT",
                        "contractType": "LinearPerpetual",
                        "status": "Trading",
                        "baseCoin": "BTC",
                        "quoteCoin": "USDT",
                        "priceScale": "2",
                        "priceFilter": {
                            "minPrice": "0.10",
                            "maxPrice": "199999.80",
                            "tickSize": "0.10",
                        },
                        "lotSizeFilter": {
                            "maxOrderQty": "100.000",
                            "minOrderQty": "0.001",
                            "qtyStep": "0.001",
                        },
                    }
                ],
            },
        }
    )
    inst = ad.parse_instrument(body)
    assert (inst.tick, inst.lot, inst.base, inst.quote) == (0.1, 0.001, "BTC", "USDT")
    with pytest.raises(FrameError):
        BybitAdapter("ETH-PERP").parse_instrument(body)
    with pytest.raises(FrameError):
        ad.parse_instrument(b'{"retCode":10001,"retMsg":"params error","result":{}}')


# -- sync rules ---------------------------------------------------------------------------------
def test_snapshot_then_consecutive_deltas():
    _, market, pipe = make()
    assert pipe.on_frame("public", book("snapshot", 100, BIDS, ASKS), 1.0) == []
    assert market.state.status is FeedStatus.LIVE
    pipe.on_frame("public", book("delta", 101, bids=[(100.0, 0), (99.95, 4.0)]), 1.1)
    pipe.on_frame(
        "public", book("delta", 102, asks=[(100.15, 0.5), (123.0, 0)]), 1.2
    )  # unknown delete ok
    assert market.book.best_bid() == (99.95, 4.0)
    assert market.book.best_ask() == (100.1, 1.5) and market.book.asks[100.15] == 0.5
    assert market.stats.gaps == 0 and market.live


def test_duplicate_delta_ignored():
    _, market, pipe = make()
    pipe.on_frame("public", book("snapshot", 100, BIDS, ASKS), 1.0)
    pipe.on_frame("public", book("delta", 101, bids=[(99.9, 7.0)]), 1.1)
    pipe.on_frame("public", book("delta", 101, bids=[(99.9, 7.0)]), 1.2)
    pipe.on_frame("public", book("delta", 100, bids=[(99.9, 9.0)]), 1.3)
    assert market.book.bids[99.9] == 7.0 and market.live and market.stats.gaps == 0


def test_u_jump_is_a_gap_then_new_snapshot_recovers():
    _, market, pipe = make()
    pipe.on_frame("public", book("snapshot", 100, BIDS, ASKS), 1.0)
    pipe.on_frame("public", book("delta", 101), 1.1)
    acts = pipe.on_frame("public", book("delta", 103, bids=[(99.95, 1.0)]), 1.2)
    assert [type(a) for a in acts] == [NeedResync]
    assert market.state.status is FeedStatus.SYNCING and "seq gap 102" in market.state.reason
    assert market.book.empty and market.stats.gaps == 1
    # deltas in flight before the new snapshot are held, older ones dropped on replay
    pipe.on_frame("public", book("delta", 104, bids=[(99.0, 1.0)]), 1.3)
    pipe.on_frame("public", book("snapshot", 110, BIDS, ASKS), 1.4)
    assert market.live and 99.0 not in market.book.bids
    pipe.on_frame("public", book("delta", 111, asks=[(100.1, 0)]), 1.5)
    assert market.book.best_ask() == (100.2, 2.5)


def test_later_snapshot_replaces_book():
    _, market, pipe = make()
    pipe.on_frame("public", book("snapshot", 100, BIDS, ASKS), 1.0)
    pipe.on_frame("public", book("snapshot", 250, [(90.0, 1.0)], [(91.0, 1.0)]), 1.1)
    assert dict(market.book.bids) == {90.0: 1.0} and dict(market.book.asks) == {91.0: 1.0}
    pipe.on_frame("public", book("delta", 251, bids=[(89.0, 2.0)]), 1.2)
    assert market.live and len(market.book.bids) == 2


def test_u_equals_one_is_a_service_restart_snapshot():
    ad, market, pipe = make()
    pipe.on_frame("public", book("snapshot", 5000, BIDS, ASKS), 1.0)
    (ev,) = ad.parse("public", book("delta", 1, [(50.0, 1.0)], [(51.0, 2.0)]), 1.1)
    assert isinstance(ev, BookSnapshot)
    pipe.on_frame("public", book("delta", 1, [(50.0, 1.0)], [(51.0, 2.0)]), 1.1)
    assert dict(market.book.bids) == {50.0: 1.0} and dict(market.book.asks) == {51.0: 2.0}
    pipe.on_frame("public", book("delta", 2, bids=[(49.0, 1.0)]), 1.2)
    assert market.live and market.stats.gaps == 0 and market.book.bids[49.0] == 1.0


def test_book_is_kept_to_200_levels():
    _, market, pipe = make()
    bids = [(1000.0 - i * 0.1, 1.0) for i in range(200)]
    asks = [(1000.1 + i * 0.1, 1.0) for i in range(200)]
    pipe.on_frame("public", book("snapshot", 10, bids, asks), 1.0)
    pipe.on_frame("public", book("delta", 11, bids=[(1000.05, 1.0)], asks=[(1000.08, 1.0)]), 1.1)
    assert len(market.book.bids) == 200 and len(market.book.asks) == 200
    assert market.book.best_bid()[0] == 1000.05 and market.book.best_ask()[0] == 1000.08
    assert round(market.book.bids.keys()[0], 6) == round(
        1000.0 - 198 * 0.1, 6
    )  # worst one fell out


def test_crossed_book_is_a_gap():
    _, market, pipe = make()
    pipe.on_frame("public", book("snapshot", 10, BIDS, ASKS), 1.0)
    acts = pipe.on_frame("public", book("delta", 11, bids=[(100.2, 1.0)]), 1.1)
    assert [type(a) for a in acts] == [NeedResync]
    assert "crossed" in market.state.reason and not market.live


def test_delta_before_any_snapshot_is_not_live():
    _, market, pipe = make()
    pipe.on_frame("public", book("delta", 11, bids=[(100.2, 1.0)]), 1.1)
    assert not market.live and market.book.empty


# -- end to end: the simulator speaking the Bybit dialect -----------------------------------------

from obview.feed.session import FeedSession, SessionOptions  # noqa: E402
from obview.sim.server import start_server  # noqa: E402

TOPIC = "orderbook.200.BTCUSDT"


def top(book, n: int = 200):
    bids, asks = book.top(n)
    return [(round(p, 8), round(s, 8)) for p, s in bids], [
        (round(p, 8), round(s, 8)) for p, s in asks
    ]


def book_dialects(server):
    return [c.dialect for c in server.clients if any(k[0] == TOPIC for k in c.dialect.books)]


async def frozen_equal(server, market, sim, sync) -> None:
    """Stop stepping, let the client apply everything sent, compare with the dialect's book."""
    server.set_rate(0)

    def sent_u():
        ds = book_dialects(server)
        return ds[0].u.get(TOPIC) if len(ds) == 1 else None

    await until(lambda: market.live and sent_u() is not None and sync.last_seq == sent_u())
    (d,) = book_dialects(server)
    state = next(s for k, s in d.books.items() if k[0] == TOPIC)
    encoded = (
        sorted(((round(p, 8), round(s, 8)) for p, s in state.bids.items()), reverse=True),
        sorted((round(p, 8), round(s, 8)) for p, s in state.asks.items()),
    )
    assert top(market.book) == encoded == top(sim.book)
    assert len(market.book.bids) == 200 and len(market.book.asks) == 200
    server.set_rate(40)


async def test_e2e_dialect_sync_gap_restart_and_reconnect():
    opts = SessionOptions(
        backoff_base=0.05, backoff_max=0.2, connect_timeout=2.0, resync_min_interval=0.05
    )
    feed = venue_feed(BybitAdapter, "BTC-PERP", "/v5/public/linear", seed=11, rate=40, options=opts)
    async with feed as (server, _adapter, market, session):
        sim = server.markets["BTC-PERP"]
        sync = session.pipeline.sync
        await until(lambda: market.live)
        await until(lambda: market.instrument.tick == sim.tick and market.instrument.lot == sim.lot)
        await frozen_equal(server, market, sim, sync)
        await until(lambda: session.pipeline.trades > 0)
        # dropped delta: u jumps -> SYNCING with a reason -> resubscribe -> snapshot -> LIVE
        attempts = session.connect_attempts
        await drop_a_delta_and_recover(server, market)
        assert session.connect_attempts == attempts  # resubscribed on the same socket
        await frozen_equal(server, market, sim, sync)
        # duplicated delta: ignored, no gap
        gaps = market.stats.gaps
        server.faults.duplicate_next("delta")
        await until(lambda: server.faults.duplicated >= 1)
        await frozen_equal(server, market, sim, sync)
        assert market.stats.gaps == gaps
        # the venue's book service restarts: a u = 1 snapshot, no gap, still equal
        for d in book_dialects(server):
            d.restart()
        await until(lambda: sync.last_seq is not None and sync.last_seq < 10)
        await frozen_equal(server, market, sim, sync)
        assert market.stats.gaps == gaps
        # kick: reconnect, subscribe again, snapshot
        await server.kick()
        await until(lambda: any(s.status is FeedStatus.RECONNECTING for s in market.state_log))
        await until(lambda: market.live and session.connect_attempts > attempts)
        await frozen_equal(server, market, sim, sync)
        assert session.pipeline.parse_errors == 0


async def test_e2e_pings_are_answered():
    server = await start_server(seed=5, symbols=["BTC-PERP"], rate=20)
    try:
        pongs: list[str] = []

        class FastPing(BybitAdapter):
            ping_interval = 0.05

            def parse(self, stream, frame, ts_local):
                text = frame.decode() if isinstance(frame, bytes) else frame
                if '"pong"' in text:
                    pongs.append(text)
                return super().parse(stream, frame, ts_local)

        ad = FastPing(
            "BTC-PERP", endpoint=server.url("/v5/public/linear"), rest_endpoint=server.http_url()
        )
        market = Market(ad.default_instrument())
        session = FeedSession(ad, market)
        task = session.start()
        try:
            await until(lambda: market.live)
            await until(lambda: len(pongs) >= 3)
            assert market.live and session.pipeline.parse_errors == 0
        finally:
            await session.stop()
            task.cancel()
    finally:
        await server.close()


def test_dialect_subscribe_errors_and_instruments():
    from obview.sim.dialects.bybit import BybitDialect
    from obview.sim.engine import SimMarket

    markets = {"BTC-PERP": SimMarket("BTC-PERP", seed=2, start_time=1_700_000_000.0)}
    d = BybitDialect(markets, "/v5/public/linear")
    (err,) = d.on_message('{"op":"subscribe","args":["orderbook.200.DOGEUSDT"]}')
    assert orjson.loads(err.text)["success"] is False
    # the adapter turns the refusal into a fatal venue error
    (ve,) = BybitAdapter("BTC-PERP").parse("public", err.text, 0.0)
    assert isinstance(ve, VenueError) and ve.fatal
    (pong,) = d.on_message('{"op":"ping","req_id":"7"}')
    assert BybitAdapter("BTC-PERP").parse("public", pong.text, 0.0) == []
    ack, snap = d.on_message('{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}')
    s = orjson.loads(snap.text)
    assert s["type"] == "snapshot" and len(s["data"]["b"]) == 50 and len(s["data"]["a"]) == 50
    # the same topic again: refused as Bybit does, no second snapshot, and not fatal for us
    (dup,) = d.on_message('{"op":"subscribe","args":["orderbook.50.BTCUSDT"]}')
    f = orjson.loads(dup.text)
    assert f["success"] is False and f["ret_msg"] == "error:already subscribed,topic:orderbook.50.BTCUSDT"
    (ve,) = BybitAdapter("BTC-PERP").parse("public", dup.text, 0.0)
    assert isinstance(ve, VenueError) and not ve.fatal
    status, body = BybitDialect.http(
        markets, "/v5/market/instruments-info", {"category": "linear", "symbol": "BTCUSDT"}, b""
    )
    inst = BybitAdapter("BTC-PERP").parse_instrument(body)
    assert (
        status == 200
        and inst.tick == markets["BTC-PERP"].tick
        and inst.lot == markets["BTC-PERP"].lot
    )


def test_dialect_restart_reaches_every_symbol_subscribed():
    """A restart owes each subscribed topic one u = 1 snapshot, whichever symbol steps first."""
    from obview.sim.dialects.bybit import BybitDialect
    from obview.sim.engine import SimMarket

    markets = {
        sym: SimMarket(sym, seed=2, start_time=1_700_000_000.0) for sym in ("BTC-PERP", "ETH-PERP")
    }
    d = BybitDialect(markets, "/v5/public/linear")
    d.on_message('{"op":"subscribe","args":["orderbook.50.ETHUSDT"]}')
    d.restart()
    firsts = []
    for k in range(40):  # BTC steps before ETH, as the server steps its markets in order
        for m in markets.values():
            for out in d.on_update(m.step(1_700_000_000.0 + 0.05 * (k + 1))):
                if out.kind in ("snapshot", "delta"):
                    firsts.append(orjson.loads(out.text))
    assert firsts, "the ETH book never changed in 40 steps"
    assert firsts[0]["type"] == "snapshot" and firsts[0]["data"]["u"] == 1
    assert all(f["type"] == "delta" for f in firsts[1:])
