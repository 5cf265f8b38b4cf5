"""Hyperliquid adapter: doc-example frames, snapshot ordering, trades, instrument facts.

No Hyperliquid recording exists in ../shared/recordings/, so the parsing tests use the frames
from the venue's documentation (as quoted in the fact sheet) and the end-to-end test uses the
simulator's Hyperliquid dialect.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.model import BookSnapshot, FeedStatus, Side, Trade
from obview.venues.base import FrameError, ResyncMode, UnknownSymbol, VenueError
from obview.venues.hyperliquid import SLOW_MAX_LAG, HyperliquidAdapter, price_decimals, price_tick
from obview.venues.registry import get_adapter

DOC_BOOK = (
    '{"channel":"l2Book","data":{"coin":"BTC","time":1710131872708,'
    '"levels":[[{"px":"68674.0","sz":"0.97139","n":4},{"px":"68673.0","sz":"0.5","n":2}],'
    '[{"px":"68675.0","sz":"0.04396","n":1}]]}}'
)
DOC_TRADES = (
    '{"channel":"trades","data":[{"coin":"BTC","side":"A","px":"68517.0","sz":"0.005",'
    '"time":1710125266669,"hash":"0xc872e959","tid":981894269203506,'
    '"users":["0xbuyer","0xseller"]}]}'
)
ACK = (
    '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":'
    '{"type":"l2Book","coin":"BTC","nSigFigs":null,"mantissa":null}}}'
)


def book_frame(t_ms: int, bids, asks, coin: str = "BTC") -> str:
    lv = [
        [{"px": str(p), "sz": str(s), "n": 1} for p, s in bids],
        [{"px": str(p), "sz": str(s), "n": 1} for p, s in asks],
    ]
    return orjson.dumps(
        {"channel": "l2Book", "data": {"coin": coin, "time": t_ms, "levels": lv}}
    ).decode()


def trade(
    tid: int, side: str, t_ms: int = 1_710_000_000_000, coin: str = "BTC", px="68000.0", sz="0.1"
):
    return {"coin": coin, "side": side, "px": px, "sz": sz, "time": t_ms, "hash": "0x0", "tid": tid}


def trades_frame(*trades) -> str:
    return orjson.dumps({"channel": "trades", "data": list(trades)}).decode()


def make(symbol: str = "BTC-PERP"):
    ad = HyperliquidAdapter(symbol)
    market = Market(ad.default_instrument())
    return ad, market, FeedPipeline(ad, market)


# -- registry, symbols, streams ------------------------------------------------------------
def test_registry_and_symbols():
    assert get_adapter("hyperliquid") is HyperliquidAdapter
    assert HyperliquidAdapter("ETH-PERP").native == "ETH"
    assert HyperliquidAdapter("SOL-PERP").native == "SOL"
    with pytest.raises(UnknownSymbol, match="BTC-PERP"):
        HyperliquidAdapter("DOGE-USD")
    assert HyperliquidAdapter.resync_mode is ResyncMode.NONE


def test_streams_subscribe_and_ping():
    ad = HyperliquidAdapter("BTC-PERP")
    spec, fast = ad.streams()
    assert spec.url == fast.url == "wss://api.hyperliquid.xyz/ws"
    # the fast top of the book on a connection of its own (its pushes look like the default
    # book's); it carries no trades and does not decide whether the book is whole
    assert [orjson.loads(s) for s in fast.subscribe] == [
        {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC", "fast": True}}
    ]
    assert (fast.book, fast.trades, fast.ping_frame) == (False, False, spec.ping_frame)
    # pongs keep it quiet where the venue answers nothing else: no reconnects every few seconds
    assert fast.stale_after > fast.ping_interval * 2
    subs = [orjson.loads(s) for s in spec.subscribe]
    assert subs == [
        {"method": "subscribe", "subscription": {"type": "l2Book", "coin": "BTC"}},
        {"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}},
    ]
    assert orjson.loads(spec.ping_frame) == {"method": "ping"}
    assert spec.ping_interval is not None and spec.ping_interval < 60  # server drops at 60 s
    assert spec.stale_after >= 3 * 5  # the default book can be 5 s apart
    # once measured: at least 3 of its intervals, never under 3 of the default 2 s ones
    factor, floor, ceiling = spec.stale_cadence
    assert factor >= 3 and floor >= 3 * 2 and ceiling >= 3 * 5
    re = [orjson.loads(s) for s in ad.resubscribe_frames("ws")]
    assert [r["method"] for r in re] == ["unsubscribe", "subscribe"]


def test_endpoint_override_keeps_or_adds_ws_path_and_derives_rest():
    ad = HyperliquidAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9999/ws")
    assert ad.streams()[0].url == "ws://127.0.0.1:9999/ws"
    assert ad.instrument_request().url == "http://127.0.0.1:9999/info"
    ad = HyperliquidAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9999/")
    assert ad.streams()[0].url == "ws://127.0.0.1:9999/ws"
    ad = HyperliquidAdapter("BTC-PERP", endpoint="ws://h/ws", rest_endpoint="http://r:1")
    assert ad.instrument_request().url == "http://r:1/info"
    assert (
        HyperliquidAdapter("BTC-PERP").instrument_request().url
        == "https://api.hyperliquid.xyz/info"
    )


# -- parsing doc examples -------------------------------------------------------------------
def test_doc_book_example_parses():
    ad = HyperliquidAdapter("BTC-PERP")
    (snap,) = ad.parse("ws", DOC_BOOK, 1710131873.0)
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == [(68674.0, 0.97139), (68673.0, 0.5)]
    assert snap.asks == [(68675.0, 0.04396)]
    assert snap.ts_exchange == pytest.approx(1710131872.708)
    assert snap.ts_local == 1710131873.0


def test_doc_trade_example_side_a_is_taker_sell():
    ad = HyperliquidAdapter("BTC-PERP")
    (tr,) = ad.parse("ws", DOC_TRADES, 1.0)
    assert isinstance(tr, Trade)
    assert (tr.price, tr.size, tr.side) == (68517.0, 0.005, Side.SELL)
    assert tr.trade_id == "981894269203506"
    assert tr.ts_exchange == pytest.approx(1710125266.669)
    (tb,) = ad.parse("ws", trades_frame(trade(1, "B")), 1.0)
    assert tb.side is Side.BUY


def test_control_frames_carry_nothing():
    ad = HyperliquidAdapter("BTC-PERP")
    assert ad.parse("ws", "Websocket connection established.", 1.0) == []
    assert ad.parse("ws", b"Websocket connection established.", 1.0) == []
    assert ad.parse("ws", ACK, 1.0) == []
    assert ad.parse("ws", '{"channel":"pong"}', 1.0) == []
    assert ad.parse("ws", '{"channel":"allMids","data":{"mids":{}}}', 1.0) == []
    (err,) = ad.parse("ws", '{"channel":"error","data":"Already subscribed: {}"}', 1.0)
    assert isinstance(err, VenueError) and "Already subscribed" in err.reason and not err.fatal


def test_garbage_raises_frame_error():
    ad = HyperliquidAdapter("BTC-PERP")
    with pytest.raises(FrameError):
        ad.parse("ws", "not json at all", 1.0)
    with pytest.raises(FrameError):
        ad.parse("ws", "[1,2]", 1.0)
    with pytest.raises(FrameError):
        ad.parse("ws", '{"data":1}', 1.0)
    with pytest.raises(FrameError):
        ad.parse("ws", trades_frame(trade(1, "X")), 1.0)


def test_other_coins_are_ignored():
    ad = HyperliquidAdapter("ETH-PERP")
    assert ad.parse("ws", DOC_BOOK, 1.0) == []
    assert ad.parse("ws", DOC_TRADES, 1.0) == []


# -- through the pipeline ------------------------------------------------------------------
def test_pipeline_goes_live_on_first_book_and_counts_garbage():
    ad, market, pipe = make()
    pipe.on_frame("ws", "Websocket connection established.", 1.0)
    pipe.on_frame("ws", ACK, 1.0)
    assert market.state.status is not FeedStatus.LIVE
    pipe.on_frame("ws", DOC_BOOK, 2.0)
    assert market.state.status is FeedStatus.LIVE
    assert market.book.best_bid() == (68674.0, 0.97139)
    assert market.book.best_ask() == (68675.0, 0.04396)
    pipe.on_frame("ws", DOC_TRADES, 2.1)
    assert pipe.trades == 1 and market.last_price == 68517.0
    pipe.on_frame("ws", '{"channel":"l2Book","data":{"coin":"BTC"}}', 2.2)
    pipe.on_frame("ws", "{broken", 2.3)
    assert pipe.parse_errors == 2
    assert market.state.status is FeedStatus.LIVE  # a bad frame does not break a whole book


def test_each_snapshot_replaces_the_book():
    _, market, pipe = make()
    pipe.on_frame("ws", book_frame(1000, [(100.0, 1), (99.0, 2)], [(101.0, 1), (102.0, 3)]), 1.0)
    pipe.on_frame("ws", book_frame(2000, [(98.0, 5)], [(103.0, 4)]), 2.0)
    assert list(market.book.bids.items()) == [(98.0, 5.0)]
    assert list(market.book.asks.items()) == [(103.0, 4.0)]


def test_older_snapshot_never_overwrites_newer():
    _, market, pipe = make()
    pipe.on_frame("ws", book_frame(2000, [(100.0, 1)], [(101.0, 1)]), 1.0)
    pipe.on_frame("ws", book_frame(1000, [(90.0, 1)], [(91.0, 1)]), 2.0)
    assert market.book.best_bid() == (100.0, 1.0)
    assert market.state.status is FeedStatus.LIVE
    # equal time = same block: re-applied
    pipe.on_frame("ws", book_frame(2000, [(100.0, 2)], [(101.0, 1)]), 3.0)
    assert market.book.best_bid() == (100.0, 2.0)


def test_identical_repeat_does_not_count_as_fresh_book():
    _, market, pipe = make()
    frame = book_frame(2000, [(100.0, 1)], [(101.0, 1)])
    pipe.on_frame("ws", frame, 1.0)
    assert market.stats.last_book_at == 1.0
    pipe.on_frame("ws", frame, 5.0)  # stuck stream repeating itself
    assert market.stats.last_book_at == 1.0
    pipe.on_frame("ws", book_frame(2500, [(100.0, 1)], [(101.0, 1)]), 6.0)  # time advances
    assert market.stats.last_book_at == 6.0


def test_crossed_snapshot_leaves_live_then_heals():
    _, market, pipe = make()
    pipe.on_frame("ws", book_frame(1000, [(100.0, 1)], [(101.0, 1)]), 1.0)
    actions = pipe.on_frame("ws", book_frame(2000, [(102.0, 1)], [(101.0, 1)]), 2.0)
    assert market.state.status is FeedStatus.SYNCING
    assert "crossed" in market.state.reason
    assert market.stats.gaps == 1 and actions  # NeedResync; NONE mode waits for the next one
    assert market.book.empty
    pipe.on_frame("ws", book_frame(3000, [(100.5, 1)], [(101.0, 1)]), 3.0)
    assert market.state.status is FeedStatus.LIVE
    assert market.book.best_bid() == (100.5, 1.0)


def test_empty_side_is_fine():
    _, market, pipe = make()
    pipe.on_frame("ws", book_frame(1000, [], [(101.0, 1)]), 1.0)
    assert market.state.status is FeedStatus.LIVE
    assert market.book.best_bid() is None


def test_trades_deduplicated_on_time_coin_tid():
    ad, market, pipe = make()
    pipe.on_frame("ws", trades_frame(trade(1, "B"), trade(2, "A")), 1.0)
    # after a resubscribe the first message repeats recent prints
    pipe.on_frame(
        "ws", trades_frame(trade(2, "A"), trade(3, "B"), trade(1, "ETH", coin="ETH")), 2.0
    )
    assert pipe.trades == 3
    assert [t.trade_id for t in market.trades] == ["1", "2", "3"]
    assert [t.side for t in market.trades] == [Side.BUY, Side.SELL, Side.BUY]


TRADES_ACK = '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"trades","coin":"BTC"}}}'


@pytest.mark.parametrize("fast", [True, False])
def test_the_push_right_after_subscribing_is_history_not_live_flow(fast):
    ad, market, pipe = make()
    if not fast:
        pipe._parse_fast = None  # the slow path decides the same
    pipe.on_frame("ws", TRADES_ACK, 100.0)
    # within a second of the ack: the venue repeating recent prints
    pipe.on_frame("ws", trades_frame(trade(1, "B"), trade(2, "A")), 100.2)
    assert pipe.trades == 0 and list(market.trades) == []
    # remembered: shown neither now nor when repeated, while new prints are live
    pipe.on_frame("ws", trades_frame(trade(2, "A"), trade(3, "B")), 100.5)
    assert [t.trade_id for t in market.trades] == ["3"]
    # a resubscribe whose first push comes later than that is live flow
    pipe.on_frame("ws", TRADES_ACK, 200.0)
    pipe.on_frame("ws", trades_frame(trade(4, "B")), 201.5)
    assert [t.trade_id for t in market.trades] == ["3", "4"]
    # the book's ack marks nothing
    pipe.on_frame("ws", ACK, 300.0)
    pipe.on_frame("ws", trades_frame(trade(5, "A")), 300.1)
    assert [t.trade_id for t in market.trades] == ["3", "4", "5"]


def test_trade_memory_is_bounded():
    ad = HyperliquidAdapter("BTC-PERP")
    for i in range(ad.trade_memory + 500):
        ad.parse("ws", trades_frame(trade(i, "B")), 1.0)
    assert len(ad._seen_trades) <= ad.trade_memory


# -- tick and instrument -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("price", "szd", "tick"),
    [
        (68674.0, 5, 1.0),  # 5 significant figures: integer
        (123456.0, 5, 1.0),  # integer prices always allowed
        (10000.0, 5, 1.0),
        (9999.5, 5, 0.1),  # 4 integer digits -> 1 decimal (and 6-5 = 1)
        (3012.3, 4, 0.1),
        (150.25, 2, 0.01),
        (1.2345, 0, 0.0001),
        (0.012345, 0, 0.000001),  # 6 - 0 decimals cap, not 7
        (0.5, 5, 0.1),  # 6 - szDecimals cap
    ],
)
def test_price_tick(price, szd, tick):
    assert price_tick(price, szd) == pytest.approx(tick)
    assert price_decimals(1000.0, 4) == 1


def test_default_instruments():
    btc = HyperliquidAdapter("BTC-PERP").default_instrument()
    assert (btc.tick, btc.lot, btc.size_unit, btc.native) == (1.0, 0.00001, "base", "BTC")
    eth = HyperliquidAdapter("ETH-PERP").default_instrument()
    assert (eth.tick, eth.lot) == (0.1, 0.0001)
    sol = HyperliquidAdapter("SOL-PERP").default_instrument()
    assert (sol.tick, sol.lot) == (0.01, 0.01)


META = {
    "universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
        {"name": "SOL", "szDecimals": 2, "maxLeverage": 20},
    ]
}


def test_parse_instrument_meta_and_ctxs_uses_current_price():
    ctxs = [
        {"markPx": "68000.0", "midPx": "68000.5"},
        {"markPx": "8123.4", "midPx": None},
        {"markPx": "12.345"},
    ]
    body = orjson.dumps([META, ctxs])
    btc = HyperliquidAdapter("BTC-PERP").parse_instrument(body)
    assert (btc.tick, btc.lot) == (1.0, 0.00001)
    eth = HyperliquidAdapter("ETH-PERP").parse_instrument(body)
    assert (eth.tick, eth.lot) == (0.1, 0.0001)
    sol = HyperliquidAdapter("SOL-PERP").parse_instrument(body)
    assert (sol.tick, sol.lot) == (0.001, 0.01)  # SOL at 12.345: 5 significant figures


def test_parse_instrument_bare_meta_and_errors():
    eth = HyperliquidAdapter("ETH-PERP").parse_instrument(orjson.dumps(META))
    assert eth.lot == 0.0001 and eth.tick == 0.1
    with pytest.raises(FrameError, match="XYZ"):
        HyperliquidAdapter("X", instrument="XYZ").parse_instrument(orjson.dumps(META))
    with pytest.raises(FrameError):
        HyperliquidAdapter("BTC-PERP").parse_instrument(b"[]")
    with pytest.raises(FrameError):
        HyperliquidAdapter("BTC-PERP").parse_instrument(b"<html>")


# -- end to end: the simulator speaking the Hyperliquid dialect ------------------------------
async def _wait(pred, timeout: float = 5.0, what: str = "condition") -> None:
    try:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def _hl_dialect(server):
    """The connection of the default book (the fast one has a connection of its own)."""
    ds = [
        c.dialect
        for c in server.clients
        if c.dialect.name == "hyperliquid" and not c.closing and c.dialect.books and not c.dialect.fast
    ]
    return ds[0] if ds else None


async def _in_step(server, session, coin: str = "BTC") -> None:
    """Stop stepping, let the last frames arrive, and check the client shows exactly the book
    the dialect last sent (same time, same top 20 levels)."""
    server.set_rate(0)
    await asyncio.sleep(0.05)
    d = _hl_dialect(server)
    assert d is not None

    def same_time() -> bool:
        sent = d.sent_books.get(coin)
        return sent is not None and session.pipeline.sync.last_ts == sent[0] / 1000.0

    await _wait(same_time, what="client to catch up with the dialect")
    await _wait(lambda: session.market.live, what="LIVE")
    _, bids, asks = d.sent_books[coin]
    got_b, got_a = session.market.book.top(20)
    assert got_b == bids and got_a == asks
    assert len(bids) == 20 and len(asks) == 20


@pytest.fixture
async def sim():
    server_mod = pytest.importorskip("obview.sim.server")
    server = await server_mod.start_server(port=0, seed=7, rate=40.0)
    try:
        yield server
    finally:
        async with asyncio.timeout(10):
            await server.close()


def _session(server, symbol: str = "BTC-PERP"):
    from obview.feed.session import FeedSession

    ad = HyperliquidAdapter(symbol, endpoint=server.url("/ws"))
    market = Market(ad.default_instrument())
    return FeedSession(ad, market), market


async def test_e2e_live_book_equals_dialect_then_crossed_and_kick_recover(sim):
    session, market = _session(sim)
    session.start()
    try:
        await _wait(lambda: market.live, what="first LIVE")
        await _in_step(sim, session)
        assert session.pipeline.parse_errors == 0
        # trades flow with taker sides from the dialect
        sim.set_rate(40.0)
        await _wait(lambda: session.pipeline.trades > 0, what="trades")
        assert {t.side for t in market.trades} <= {Side.BUY, Side.SELL}

        # a dropped book message self-heals with the next one
        sim.faults.drop_next("snapshot", 3)
        await _wait(lambda: sim.faults.pending("snapshot") == 0, what="drops")
        last_dropped = _hl_dialect(sim).sent_books["BTC"][0]
        await _wait(
            lambda: round(session.pipeline.sync.last_ts * 1000) > last_dropped,
            what="a book after the drops",
        )
        await _in_step(sim, session)

        # an injected crossed book: SYNCING with a reason, then LIVE on the next snapshot
        sim.set_rate(0)
        d = _hl_dialect(sim)
        t_next = d.sent_books["BTC"][0] + 1
        crossed = book_frame(t_next, [(200000.0, 1.0)], [(100.0, 1.0)])
        seen: list[FeedStatus] = []
        gaps0 = market.stats.gaps
        assert sim.faults.inject(crossed) == 2  # both connections: the default and the fast book
        await _wait(lambda: market.stats.gaps > gaps0, what="crossed book noticed")
        seen.append(market.state.status)
        assert seen == [FeedStatus.SYNCING] and "crossed" in market.state.reason
        assert market.book.empty
        sim.set_rate(40.0)
        await _wait(lambda: market.live, what="LIVE after crossed book")
        await _in_step(sim, session)

        # an older frame (reordered around a reconnect) never overwrites the newer book
        old = book_frame(1_000, [(1.0, 1.0)], [(2.0, 1.0)])
        before = market.book.top(20)
        sim.faults.inject(old)
        await asyncio.sleep(0.1)
        assert market.book.top(20) == before and market.live

        # a kick: reconnect, resubscribe, LIVE with the dialect's book again
        connects = sim.connections_total
        sim.set_rate(40.0)
        await sim.kick()
        await _wait(
            lambda: sim.connections_total > connects and _hl_dialect(sim) is not None,
            what="reconnect",
        )
        await _wait(lambda: market.live and _hl_dialect(sim).books, what="LIVE after kick")
        await _in_step(sim, session)
        assert session.pipeline.parse_errors == 0
    finally:
        async with asyncio.timeout(5):
            await session.stop()


async def test_e2e_eth_and_sol_books_equal_dialect(sim):
    for symbol, coin in (("ETH-PERP", "ETH"), ("SOL-PERP", "SOL")):
        sim.set_rate(40.0)
        session, market = _session(sim, symbol)
        session.start()
        try:
            await _wait(lambda m=market: m.live, what=f"{symbol} LIVE")
            await _in_step(sim, session, coin)
            # prices are on the 5-significant-figure grid the adapter's default tick expects
            tick = market.instrument.tick
            for p, _ in market.book.top(20)[0]:
                assert abs(p / tick - round(p / tick)) < 1e-6
        finally:
            async with asyncio.timeout(5):
                await session.stop()


async def test_e2e_dialect_answers_ping_and_refuses_double_subscribe(sim):
    from websockets.asyncio.client import connect

    async with asyncio.timeout(10), connect(sim.url("/ws"), max_queue=None) as ws:  # reads all: a prompt close
        assert await ws.recv() == "Websocket connection established."
        await ws.send('{"method":"ping"}')
        assert orjson.loads(await ws.recv()) == {"channel": "pong"}
        sub = '{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}'
        await ws.send(sub)
        ack = orjson.loads(await ws.recv())
        assert ack["channel"] == "subscriptionResponse"
        assert ack["data"]["subscription"]["coin"] == "BTC"
        await ws.send(sub)
        while True:
            msg = orjson.loads(await ws.recv())
            if msg["channel"] == "error":
                assert msg["data"].startswith("Already subscribed")
                break
            assert msg["channel"] == "l2Book"
            lv = msg["data"]["levels"]
            assert len(lv[0]) <= 20 and float(lv[0][0]["px"]) < float(lv[1][0]["px"])


def _levels(best: float, n: int, step: float, size: float = 1.0) -> list[tuple[float, float]]:
    return [(round(best + i * step, 1), size) for i in range(n)]


#: a default book of 20 levels a side around 100.0 / 101.0
SLOW_BOOK = (_levels(100.0, 20, -1.0), _levels(101.0, 20, 1.0))


def _hl_pipe() -> tuple[Market, FeedPipeline]:
    """A Hyperliquid BTC-PERP market and the pipeline that feeds it, frames given by hand."""
    ad = HyperliquidAdapter("BTC-PERP")
    m = Market(ad.default_instrument())
    return m, FeedPipeline(ad, m)


def test_the_fast_top_of_the_book_is_completed_by_the_default_book_beyond_it():
    # the default l2Book comes every 2-5 s with 20 levels, the fast one every 0.5 s with 5:
    # the book shown is the newer of the two, the fast levels first
    m, pipe = _hl_pipe()
    slow_b, slow_a = SLOW_BOOK
    pipe.on_frame("ws", book_frame(1_000_000, slow_b, slow_a), 1000.01)
    assert m.live and m.book.top(20) == (slow_b, slow_a)
    # a fast push half a second later: its five levels, then the default book beyond the fifth
    fast_b, fast_a = _levels(100.5, 5, -0.5, 2.0), _levels(101.0, 5, 0.5, 3.0)
    pipe.on_frame("fast", book_frame(1_000_500, fast_b, fast_a), 1000.51)
    bids, asks = m.book.top(40)
    assert bids == fast_b + [lv for lv in slow_b if lv[0] < fast_b[-1][0]]
    assert asks == fast_a + [lv for lv in slow_a if lv[0] > fast_a[-1][0]]
    assert pipe.sync.last_ts == 1000.5
    # a default book older than the fast one only completes it
    pipe.on_frame("ws", book_frame(1_000_400, _levels(99.0, 20, -1.0), slow_a), 1000.6)
    assert m.book.top(5)[0] == fast_b and m.book.best_bid() == (100.5, 2.0)
    assert (99.0 - 19) in m.book.bids  # its deeper bids
    # a newer default book is the book, whole
    new_b = _levels(100.2, 20, -1.0)
    pipe.on_frame("ws", book_frame(1_001_000, new_b, slow_a), 1001.01)
    assert m.book.top(20) == (new_b, slow_a)
    # a side the fast push does not fill is all there is on that side
    thin_a = _levels(101.0, 2, 1.0)
    pipe.on_frame("fast", book_frame(1_001_500, fast_b, thin_a), 1001.51)
    assert m.book.top(40)[1] == thin_a and len(m.book.top(40)[0]) > 5
    # a fast push reordered behind the last one changes nothing
    before = m.book.top(40)
    pipe.on_frame("fast", book_frame(1_000_900, _levels(50.0, 5, -1.0), _levels(60.0, 5, 1.0)), 1001.6)
    assert m.book.top(40) == before
    # the default book stalled: past SLOW_MAX_LAG behind, the fast levels alone
    late = 1_001_000 + int((SLOW_MAX_LAG + 1) * 1000)
    pipe.on_frame("fast", book_frame(late, fast_b, fast_a), late / 1000 + 0.01)
    assert m.book.top(40) == (fast_b, fast_a) and m.live
    assert pipe.parse_errors == 0 and m.stats.gaps == 0


def test_a_venue_refusing_the_fast_flag_leaves_the_default_book_live():
    m, pipe = _hl_pipe()
    slow_b, slow_a = SLOW_BOOK
    pipe.on_frame("ws", book_frame(1_000_000, slow_b, slow_a), 1000.01)
    err = '{"channel":"error","data":"Invalid subscription {\\"type\\":\\"l2Book\\",\\"coin\\":\\"BTC\\",\\"fast\\":true}"}'
    assert pipe.on_frame("fast", err, 1000.1) == []
    assert m.live and not pipe.halted and "Invalid subscription" in m.stats.last_error
    pipe.on_frame("ws", book_frame(1_002_000, slow_b[1:], slow_a), 1002.01)
    assert m.live and m.book.top(20) == (slow_b[1:], slow_a)


def test_fast_books_never_bring_the_feed_back_to_live_nor_count_as_its_pulse():
    # with the default connection down or silent, fast books re-synced the book after the
    # reset and set LIVE: the state flickered LIVE/RECONNECTING, LIVE with no trades
    from obview.model import FeedStatus

    m, pipe = _hl_pipe()
    slow_b, slow_a = SLOW_BOOK
    fast_b, fast_a = _levels(100.5, 5, -0.5, 2.0), _levels(101.0, 5, 0.5, 3.0)
    pipe.on_frame("ws", book_frame(1_000_000, slow_b, slow_a), 1000.01)
    assert m.live and pipe.book_events == 1
    # the default stream goes STALE (its watchdog): fast books move the book, not the state
    pipe.set_state(FeedStatus.STALE, "no data for 10 s")
    v = m.version
    pipe.on_frame("fast", book_frame(1_000_500, fast_b, fast_a), 1000.51)
    assert m.state.status is FeedStatus.STALE and pipe.book_events == 1 and m.version > v
    assert m.book.best_bid() == (100.5, 2.0)
    # its connection drops and the book is reset: still not LIVE on fast books alone
    pipe.reset_book(FeedStatus.RECONNECTING, "connection lost")
    for t in (1_001_000, 1_001_500):
        pipe.on_frame("fast", book_frame(t, fast_b, fast_a), t / 1000)
        assert m.state.status is FeedStatus.RECONNECTING and pipe.book_events == 1
    # the default stream's first book makes it whole again
    pipe.reset_book()  # reconnected: SYNCING, awaiting its book
    pipe.on_frame("fast", book_frame(1_002_000, fast_b, fast_a), 1002.01)
    assert m.state.status is FeedStatus.SYNCING
    pipe.on_frame("ws", book_frame(1_002_100, slow_b, slow_a), 1002.11)
    assert m.live and pipe.book_events == 2


def test_a_default_book_that_changes_nothing_shown_is_still_the_streams_pulse():
    # the fast levels newer and the deeper ones unchanged, a default push made the very book
    # shown, with the fast one's time: taken for a repeat, the default stream looked silent to
    # its watchdog and went STALE while its books kept coming
    m, pipe = _hl_pipe()
    slow_b, slow_a = SLOW_BOOK
    fast_b, fast_a = _levels(100.5, 5, -0.5, 2.0), _levels(101.0, 5, 0.5, 3.0)
    pipe.on_frame("ws", book_frame(1_000_000, slow_b, slow_a), 1000.01)
    pipe.on_frame("fast", book_frame(1_002_500, fast_b, fast_a), 1002.51)
    shown, pulse = m.book.top(40), pipe.book_events
    pipe.on_frame("ws", book_frame(1_002_000, slow_b, slow_a), 1002.6)  # its own time moved
    assert m.book.top(40) == shown and pipe.book_events == pulse + 1 and m.live
    # a true repeat of that push (its time again) is not news
    pipe.on_frame("ws", book_frame(1_002_000, slow_b, slow_a), 1002.7)
    assert pipe.book_events == pulse + 1
    # nor is a fast push repeated
    v = m.version
    pipe.on_frame("fast", book_frame(1_002_500, fast_b, fast_a), 1002.8)
    assert m.version == v


def test_a_bad_level_never_reaches_the_book_through_the_other_streams_push():
    # a push the pipeline refused (NaN, a negative or an infinite price) was still kept for
    # the merge and shown with the next good push of the other stream: LIVE with a NaN bid
    m, pipe = _hl_pipe()
    slow_b, slow_a = SLOW_BOOK
    fast_b, fast_a = _levels(100.5, 5, -0.5, 2.0), _levels(101.0, 5, 0.5, 3.0)
    pipe.on_frame("ws", book_frame(1_000_000, slow_b, slow_a), 1000.01)
    for bad in ("NaN", "-1", "inf", "1e20"):
        b = [(bad, 2.0), *fast_b[1:]]
        frame = book_frame(1_000_500, b, fast_a).replace(f'"px":"{bad}"', f'"px":"{bad}"')
        errors = m.stats.bad_frames
        pipe.on_frame("fast", frame, 1000.51)
        assert m.stats.bad_frames == errors + 1, bad
        pipe.on_frame("ws", book_frame(1_000_400, slow_b, slow_a), 1000.6)
        bids, asks = m.book.top(40)
        assert all(0 < p < 1e15 for p, _ in bids + asks) and m.live, (bad, bids[:2])


def test_a_push_stamped_ahead_does_not_hold_the_book_after_a_reconnect():
    # one push a day ahead: kept for the merge it outlived every reconnect, and a fast one
    # froze the top of the book, LIVE, for good
    m, pipe = _hl_pipe()
    slow_b, slow_a = SLOW_BOOK
    day = 86_400_000
    pipe.on_frame("ws", book_frame(1_000_000, slow_b, slow_a), 1000.01)
    pipe.on_frame("fast", book_frame(1_000_500 + day, _levels(100.5, 5, -0.5), _levels(101.0, 5, 0.5)), 1000.5)
    # later pushes: the fast ones read as older, the default ones are not made whole by the
    # frozen top once it is FAST_MAX_AGE old; the book stops moving, so its pulse stops
    pulse = pipe.book_events
    moved_b, moved_a = _levels(50.0, 20, -1.0), _levels(51.0, 20, 1.0)
    for k in range(1, 9):
        t = 1_000_000 + k * 1000
        pipe.on_frame("fast", book_frame(t, moved_b[:5], moved_a[:5]), t / 1000)
        pipe.on_frame("ws", book_frame(t + 500, moved_b, moved_a), t / 1000 + 0.5)
    assert pipe.book_events <= pulse + 3  # then silent: the stale watchdog reconnects it
    # the reconnect resets the book, and the merge forgets what it kept
    pipe.reset_book()
    t = 1_010_000
    pipe.on_frame("fast", book_frame(t, moved_b[:5], moved_a[:5]), t / 1000)
    pipe.on_frame("ws", book_frame(t + 100, moved_b, moved_a), t / 1000 + 0.1)
    assert m.live and m.book.top(20) == (moved_b, moved_a)


def test_the_latency_of_a_merged_book_is_its_own_pushs():
    m, pipe = _hl_pipe()
    slow_b, slow_a = SLOW_BOOK
    pipe.on_frame("ws", book_frame(1_000_000, slow_b, slow_a), 1000.01)
    pipe.on_frame("fast", book_frame(1_003_000, _levels(100.5, 5, -0.5), _levels(101.0, 5, 0.5)), 1003.02)
    # a default push of 1002.0 arriving at 1003.0 is a second late, whatever time the book shown has
    pipe.on_frame("ws", book_frame(1_002_000, slow_b[1:], slow_a), 1003.0)
    lats = [round(lat, 3) for _, lat, _ in m.stats.latency._samples]
    assert lats[-1] == 1.0, lats
