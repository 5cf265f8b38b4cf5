"""BitMEX ``liquidation`` table: each new liquidation order reported once as a LIQUIDATION_ORDER
trade (side = the order's, size = leavesQty in contracts, price = the order's limit), in a
subscribe frame of its own so that a refusal of it leaves the book and the trades alone.

The frames below are the venue's as others recorded or documented them: the bitmex-liquidations
README (2019, a TRXZ19 insert), a 2020 reddit thread (one XBTUSD order's insert, update and
delete), nautilus_trader's test data (crates/adapters/bitmex/test_data/ws_liquidation.json) and
fixtures captured in 2026 (an empty partial, ETHUSD and XAUTUSDT inserts, a delete carrying the
whole row).
"""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest

from e2e import fast_options, until
from fastpath import assert_same, mutations, pipeline_run, reference
from obview.feed.pipeline import Fatal, FeedPipeline, NeedResync
from obview.feed.session import FeedSession
from obview.market import Market
from obview.model import LIQUIDATION, LIQUIDATION_ORDER, FeedStatus, Side, Trade
from obview.sim.dialects.bitmex import BitmexDialect
from obview.sim.engine import SimMarket
from obview.sim.events import SimTrade, SimUpdate
from obview.sim.server import start_server
from obview.venues.base import FrameError, VenueError
from obview.venues.bitmex import BitmexAdapter

pytestmark = pytest.mark.timeout(60)

STREAM = "realtime"
T0 = 1_700_000_000.0

# bitmex-liquidations README (2019): "the first line of the banner"
README_TRX = (
    '{"table":"liquidation","action":"insert","data":[{"orderID":'
    '"8b4a95db-815a-f93a-c9a2-ffbbabeddbac","symbol":"TRXZ19","side":"Buy","price":2.17e-06,'
    '"leavesQty":5000}]}'
)
# r/BitMEX, Nov 2020: one order's insert, then its update (partly filled), then its delete
REDDIT_INSERT = (
    '{"table":"liquidation","action":"insert","data":[{"orderID":'
    '"98ae1dad-6a3b-51c4-14bd-e076919e9e30","symbol":"XBTUSD","side":"Buy","price":13854.5,'
    '"leavesQty":314930}]}'
)
REDDIT_UPDATE = (
    '{"table":"liquidation","action":"update","data":[{"orderID":'
    '"98ae1dad-6a3b-51c4-14bd-e076919e9e30","leavesQty":305515,"symbol":"XBTUSD"}]}'
)
REDDIT_DELETE = (
    '{"table":"liquidation","action":"delete","data":[{"orderID":'
    '"98ae1dad-6a3b-51c4-14bd-e076919e9e30","symbol":"XBTUSD"}]}'
)
# nautilus_trader test_data/ws_liquidation.json (a row), in its table frame
NAUTILUS = (
    '{"table":"liquidation","action":"insert","data":[{"orderID":'
    '"550e8400-e29b-41d4-a716-446655440099","symbol":"XBTUSD","side":"Buy","price":95000.0,'
    '"leavesQty":1000}]}'
)
# captured 2026 (a subscription to every instrument: the filter is empty)
PARTIAL_2026 = (
    '{"table":"liquidation","action":"partial","keys":["orderID"],"types":{"orderID":"guid",'
    '"symbol":"symbol","side":"symbol","price":"float","leavesQty":"long"},"filter":{},"data":[]}'
)
ETH_2026 = (
    '{"table":"liquidation","action":"insert","data":[{"orderID":'
    '"00000000-0063-1000-0000-00000004155c","symbol":"ETHUSD","side":"Buy","price":1959.85,'
    '"leavesQty":98}]}'
)
ETH_DELETE_2026 = ETH_2026.replace('"insert"', '"delete"')
XAUT_2026 = (
    '{"table":"liquidation","action":"insert","data":[{"orderID":'
    '"00000000-0063-1000-0000-000000041de0","symbol":"XAUTUSDT","side":"Sell","price":5102.08,'
    '"leavesQty":800}]}'
)
BOOK_PARTIAL = (
    '{"table":"orderBookL2","action":"partial","keys":["symbol","id","side"],'
    '"filter":{"symbol":"XBTUSD"},"data":['
    '{"symbol":"XBTUSD","id":1,"side":"Sell","size":21200,"price":32346},'
    '{"symbol":"XBTUSD","id":2,"side":"Buy","size":5000,"price":32200.5}]}'
)
REFUSED = (
    '{"status":400,"error":"Unknown table: liquidation","meta":{},'
    '"request":{"op":"subscribe","args":["liquidation:XBTUSD"]}}'
)


def adapter(instrument: str | None = None, symbol: str = "BTC-PERP") -> BitmexAdapter:
    return BitmexAdapter(symbol, endpoint="ws://127.0.0.1:9", instrument=instrument)


def both(ad: BitmexAdapter, frame: str) -> list:
    """parse()'s events, after checking the fast path gives the same or leaves it to parse()."""
    slow = ad.parse(STREAM, frame, 7.0)
    fast = ad.parse_fast(STREAM, frame, 7.0)
    assert fast is None or fast == slow
    return slow


def pipe(instrument: str | None = None, symbol: str = "BTC-PERP"):
    ad = adapter(instrument, symbol)
    market = Market(ad.default_instrument())
    return ad, market, FeedPipeline(ad, market)


# -- the venue's frames -------------------------------------------------------------------------
def test_the_venues_frames_read_as_one_liquidation_order_each():
    (t,) = both(adapter(), REDDIT_INSERT)
    assert isinstance(t, Trade) and t.kind == LIQUIDATION_ORDER
    assert (t.price, t.size, t.side) == (13854.5, 314930.0, Side.BUY)
    assert t.trade_id == "98ae1dad-6a3b-51c4-14bd-e076919e9e30"
    assert (t.venue, t.symbol, t.ts_exchange, t.ts_local) == ("bitmex", "BTC-PERP", None, 7.0)
    (n,) = both(adapter(), NAUTILUS)
    assert (n.price, n.size, n.side, n.kind) == (95000.0, 1000.0, Side.BUY, LIQUIDATION_ORDER)
    # a Sell order is a long liquidated; any instrument the adapter is made for
    (x,) = both(adapter("XAUTUSDT"), XAUT_2026)
    assert (x.price, x.size, x.side, x.kind) == (5102.08, 800.0, Side.SELL, LIQUIDATION_ORDER)
    (e,) = both(adapter("ETHUSD"), ETH_2026)
    assert (e.price, e.size, e.side) == (1959.85, 98.0, Side.BUY)
    (trx,) = both(adapter("TRXZ19"), README_TRX)
    assert (trx.price, trx.size) == (2.17e-06, 5000.0)


def test_only_new_orders_are_reported_not_their_updates_deletes_or_the_partial():
    ad = adapter()
    assert both(ad, REDDIT_UPDATE) == [] and both(ad, REDDIT_DELETE) == []
    assert both(adapter("ETHUSD"), ETH_DELETE_2026) == []
    assert both(ad, PARTIAL_2026) == []
    # orders open before we subscribed are not liquidations happening now
    open_orders = PARTIAL_2026.replace('"data":[]', '"data":' + REDDIT_INSERT.split('"data":')[1][:-1])
    assert orjson.loads(open_orders)["data"][0]["symbol"] == "XBTUSD"
    assert both(ad, open_orders) == []
    # the same order's insert is the one report of it
    (t,) = both(ad, REDDIT_INSERT)
    assert t.kind == LIQUIDATION_ORDER and t.size == 314930.0


def test_another_instruments_report_is_ignored():
    ad = adapter()
    assert both(ad, ETH_2026) == [] and both(ad, XAUT_2026) == [] and both(ad, README_TRX) == []
    # a frame of two instruments' orders: ours only
    rows = orjson.loads(ETH_2026)["data"] + orjson.loads(REDDIT_INSERT)["data"]
    frame = orjson.dumps({"table": "liquidation", "action": "insert", "data": rows}).decode()
    (t,) = both(ad, frame)
    assert (t.price, t.size) == (13854.5, 314930.0)
    # another instrument's odd row is not ours to refuse
    rows[0]["side"] = "Up"
    frame = orjson.dumps({"table": "liquidation", "action": "insert", "data": rows}).decode()
    assert len(both(ad, frame)) == 1


def test_a_liquidation_is_counted_in_the_minute_not_as_flow_and_converts_by_the_instrument():
    # XBTUSD: leavesQty is USD (one contract, one dollar)
    ad, market, p = pipe()
    p.on_frame(STREAM, BOOK_PARTIAL, 100.0)
    p.on_frame(STREAM, REDDIT_INSERT, 100.5)
    s = market.flow.summary(101.0)
    assert market.stats.liquidations == 1 and market.stats.trades_seen == 0
    assert s.forced_quote == pytest.approx(314930.0)
    assert s.forced_base == pytest.approx(314930.0 / 13854.5)
    assert (s.buy_base, s.sell_base) == (0.0, 0.0) and market.last_price is None
    assert market.trades[-1].kind == LIQUIDATION_ORDER
    # SOLUSDT: contracts of 1e-4 SOL, as its trades' sizes
    ad, market, p = pipe(symbol="SOL-PERP")
    frame = REDDIT_INSERT.replace("XBTUSD", "SOLUSDT").replace("13854.5", "150.5").replace(
        "314930", "25000"
    )
    p.on_frame(STREAM, frame, 100.0)
    s = market.flow.summary(101.0)
    assert s.forced_base == pytest.approx(2.5) and s.forced_quote == pytest.approx(2.5 * 150.5)


# -- bad frames -------------------------------------------------------------------------------
BAD = [
    '{"table":"liquidation","action":"insert","data":{}}',
    '{"table":"liquidation","action":"insert","data":[7]}',
    '{"table":"liquidation","action":"upsert","data":[]}',
    '{"table":"liquidation","action":"partial"}',
    REDDIT_INSERT.replace('"Buy"', '"Up"'),
    REDDIT_INSERT.replace('"Buy"', '["Buy"]'),
    REDDIT_INSERT.replace("13854.5", "-1"),
    REDDIT_INSERT.replace("13854.5", '"13854.5"'),
    REDDIT_INSERT.replace(',"price":13854.5', ""),
    REDDIT_INSERT.replace("314930", "-5"),
    REDDIT_INSERT.replace("314930", "1e999"),
    REDDIT_INSERT.replace("314930", "null"),
    REDDIT_INSERT[:70],  # cut short
    REDDIT_INSERT.replace("}]}", ""),
]


@pytest.mark.parametrize("frame", BAD)
def test_a_malformed_liquidation_frame_is_a_bad_frame_and_the_book_stays_live(frame):
    ad, market, p = pipe()
    with pytest.raises(FrameError):
        ad.parse(STREAM, frame, 1.0)
    assert ad.parse_fast(STREAM, frame, 1.0) is None
    p.on_frame(STREAM, BOOK_PARTIAL, 1.0)
    assert market.live
    actions = p.on_frame(STREAM, frame, 2.0)
    assert not any(isinstance(a, (NeedResync, Fatal)) for a in actions)
    assert p.parse_errors == 1 and market.stats.bad_frames == 1
    assert market.live and market.stats.gaps == 0 and not p.halted
    assert market.book.best_ask() == (32346.0, 21200.0) and not market.trades
    # the next good report is read as ever
    p.on_frame(STREAM, REDDIT_INSERT, 3.0)
    assert market.stats.liquidations == 1 and market.trades[-1].kind == LIQUIDATION_ORDER
    assert p.parse_errors == 1 and market.live


# -- the subscription and its refusal ------------------------------------------------------------
def test_the_liquidation_topic_is_subscribed_in_a_frame_of_its_own():
    (spec,) = adapter().streams()
    frames = [orjson.loads(f) for f in spec.subscribe]
    assert frames == [
        {"op": "subscribe", "args": ["orderBookL2:XBTUSD", "trade:XBTUSD"]},
        {"op": "subscribe", "args": ["liquidation:XBTUSD"]},
    ]
    assert orjson.loads(adapter(symbol="SOL-PERP").streams()[0].subscribe[1]) == {
        "op": "subscribe", "args": ["liquidation:SOLUSDT"]
    }  # fmt: skip
    # a book resync resubscribes the book alone: the liquidation subscription stands
    assert all("liquidation" not in f for f in adapter().resubscribe_frames(STREAM))


def test_a_refused_liquidation_subscription_is_not_fatal_but_a_refused_book_still_is():
    ad, market, p = pipe()
    p.on_frame(STREAM, BOOK_PARTIAL, 1.0)
    for refusal in (
        REFUSED,
        REFUSED.replace('["liquidation:XBTUSD"]', '"liquidation:XBTUSD"'),
        REFUSED.replace("Unknown table: liquidation", "Unknown or expired symbol."),
        REFUSED.replace('["liquidation:XBTUSD"]', '["liquidation"]'),
    ):
        (err,) = ad.parse(STREAM, refusal, 2.0)
        assert isinstance(err, VenueError) and not err.fatal and "liquidation" in err.reason
        actions = p.on_frame(STREAM, refusal, 2.0)
        assert not any(isinstance(a, (Fatal, NeedResync)) for a in actions)
        assert market.live and not p.halted
    assert "Unknown" in market.stats.last_error
    # the book's own topics refused: fatal, as before (alone or with the liquidation topic)
    for args in ('["orderBookL2:XBTUSD","trade:XBTUSD"]', '["liquidation:XBTUSD","trade:XBTUSD"]'):
        (err,) = ad.parse(STREAM, REFUSED.replace('["liquidation:XBTUSD"]', args), 3.0)
        assert err.fatal


class RefusingDialect(BitmexDialect):
    """A venue without the liquidation table (as an older or a private deployment might be)."""

    def _subscribe(self, topics, request):
        if any(t.startswith("liquidation") for t in topics):
            return [self._error("Unknown table: liquidation", request)]
        return super()._subscribe(topics, request)


async def test_e2e_a_refused_liquidation_subscription_leaves_the_book_live():
    server = await start_server(seed=52, rate=60, symbols=["BTC-PERP"])
    try:
        async with asyncio.timeout(40):
            server.dialects["bitmex"] = RefusingDialect
            ad = BitmexAdapter("BTC-PERP", endpoint=server.url("/realtime"))
            market = Market(ad.default_instrument())
            session = FeedSession(ad, market, options=fast_options())
            task = session.start()
            try:
                await until(lambda: market.live and "liquidation" in market.stats.last_error)
                attempts = session.connect_attempts
                await until(lambda: len(market.trades) >= 3)
                await asyncio.sleep(0.3)
                assert market.live and market.stats.gaps == 0
                assert session.connect_attempts == attempts
                assert not any(t.kind == LIQUIDATION_ORDER for t in market.trades)
                assert all(s.status is not FeedStatus.FAILED for s in market.state_log)
            finally:
                await session.stop()
                task.cancel()
    finally:
        await server.close()


# -- the simulator's dialect ----------------------------------------------------------------------
def dialect_talk(subscribe: list[str], symbol: str = "BTC-PERP"):
    sim = SimMarket(symbol, seed=5, start_time=T0)
    d = BitmexDialect({symbol: sim}, "/realtime")
    answers = [o for f in subscribe for o in d.on_message(f)]
    return sim, d, answers


def step_with(sim: SimMarket, kinds_sides: list[tuple[str, Side]]) -> SimUpdate:
    mid = sim.mid
    trades = [
        SimTrade(round(mid - i if side is Side.SELL else mid + i, 1), 0.5 + i, side, 900 + i,
                 T0 + 1.0, kind)  # fmt: skip
        for i, (kind, side) in enumerate(kinds_sides)
    ]
    return SimUpdate(sim.symbol, sim.seq + 1, sim.seq, T0 + 1.0, trades=trades)


def test_dialect_and_adapter_round_trip_one_order_and_its_fills():
    ad = adapter()
    sim, d, answers = dialect_talk(ad.streams()[0].subscribe)
    # the acks and the (empty) partial of the liquidation topic read as nothing
    liq_answers = [o.text for o in answers if "liquidation" in o.text]
    assert len(liq_answers) == 2 and all(ad.parse(STREAM, f, 0.0) == [] for f in liq_answers)
    partial = orjson.loads(liq_answers[1])
    assert (partial["action"], partial["keys"], partial["filter"], partial["data"]) == (
        "partial", ["orderID"], {"symbol": "XBTUSD"}, []
    )  # fmt: skip
    # an ordinary fill, then one liquidating sell sweeping three levels, then another fill
    update = step_with(sim, [("", Side.BUY)] + [(LIQUIDATION, Side.SELL)] * 3 + [("", Side.BUY)])
    outs = d.on_update(update)
    sent = [(o.kind, orjson.loads(o.text)) for o in outs if '"table":"orderBookL2"' not in o.text]
    assert [(k, m["table"], m["action"]) for k, m in sent] == [
        ("trade", "liquidation", "insert"), ("trade", "trade", "insert"),
        ("trade", "liquidation", "delete"),
    ]  # fmt: skip
    events = [e for o in outs for e in both(ad, o.text) if isinstance(e, Trade)]
    orders = [e for e in events if e.kind == LIQUIDATION_ORDER]
    fills = [e for e in events if e.kind != LIQUIDATION_ORDER]
    assert len(orders) == 1 and len(fills) == 5
    (order,) = orders
    liq_fills = [f for f in fills if f.side is Side.SELL]
    assert len(liq_fills) == 3 and order.side is Side.SELL
    assert order.size == sum(f.size for f in liq_fills) and order.size % 100 == 0
    assert order.price == min(f.price for f in liq_fills)  # the deepest level it reached
    assert order.trade_id == f"00000000-0063-1000-0000-{901:012x}"


def test_dialect_sends_liquidations_only_to_their_subscribers():
    ad = adapter()
    sim, d, _ = dialect_talk(ad.streams()[0].subscribe[:1])  # book and trades only
    outs = d.on_update(step_with(sim, [(LIQUIDATION, Side.BUY)]))
    assert outs and not any('"liquidation"' in o.text for o in outs)
    # subscribed to every instrument's: ours arrive (and are read), unsubscribing stops them
    assert len(d.on_message('{"op":"subscribe","args":["liquidation"]}')) == 2
    (ins,) = [o for o in d.on_update(step_with(sim, [(LIQUIDATION, Side.BUY)]))
              if '"action":"insert","data":[{"orderID"' in o.text]  # fmt: skip
    (t,) = ad.parse(STREAM, ins.text, 0.0)
    assert t.kind == LIQUIDATION_ORDER and t.side is Side.BUY
    (err,) = d.on_message('{"op":"subscribe","args":["liquidation"]}')
    assert "already subscribed" in err.text
    (ack,) = d.on_message('{"op":"unsubscribe","args":["liquidation"]}')
    assert orjson.loads(ack.text)["unsubscribe"] == "liquidation"
    outs = d.on_update(step_with(sim, [(LIQUIDATION, Side.BUY)]))
    assert not any('"liquidation"' in o.text for o in outs)
    (err,) = d.on_message('{"op":"subscribe","args":["liquidation:BTCUSD"]}')
    (ve,) = ad.parse(STREAM, err.text, 0.0)
    assert not ve.fatal and "Unknown or expired symbol" in ve.reason


async def test_e2e_liquidation_orders_arrive_beside_their_fills():
    server = await start_server(seed=51, rate=100, symbols=["BTC-PERP"])
    try:
        async with asyncio.timeout(40):
            ad = BitmexAdapter("BTC-PERP", endpoint=server.url("/realtime"))
            market = Market(ad.default_instrument())
            session = FeedSession(ad, market, options=fast_options())
            task = session.start()
            try:
                await until(lambda: market.live)
                await until(lambda: market.stats.liquidations >= 1, timeout=25)
                orders = [t for t in market.trades if t.kind == LIQUIDATION_ORDER]
                assert orders and all(t.size % 100 == 0 and t.size > 0 for t in orders)
                assert market.stats.trades_seen == sum(
                    t.kind != LIQUIDATION_ORDER for t in market.trades
                )
                assert market.live and session.pipeline.parse_errors == 0
            finally:
                await session.stop()
                task.cancel()
    finally:
        await server.close()


# -- fast path and slow path ----------------------------------------------------------------------
def sim_liquidation_frames(symbol: str = "BTC-PERP", steps: int = 400) -> list[str]:
    ad = adapter(symbol=symbol)
    sim = SimMarket(symbol, seed=5, start_time=T0)  # a seed with a burst of liquidations
    d = BitmexDialect({symbol: sim}, "/realtime")
    frames = [o.text for f in ad.streams()[0].subscribe for o in d.on_message(f)]
    for k in range(steps):
        frames += [o.text for o in d.on_update(sim.step(T0 + 0.05 * (k + 1)))]
    return frames


def test_fast_path_leaves_liquidation_frames_to_parse_and_runs_agree():
    frames = sim_liquidation_frames()
    liq = [f for f in frames if '"table":"liquidation"' in f]
    assert any('"insert"' in f for f in liq)
    docs = [REDDIT_INSERT, REDDIT_UPDATE, REDDIT_DELETE, NAUTILUS, PARTIAL_2026, ETH_2026, REFUSED]
    ad = adapter()
    rng = random.Random(3)
    for f in liq + docs + BAD:
        for g in [f, f.encode(), *mutations(f, rng)]:
            fast = ad.parse_fast(STREAM, g, 0.0)
            assert fast is None or fast == reference(ad, STREAM, g)
    # the whole run, book and tape, is the same through either path
    slow_cls = type("Slow", (BitmexAdapter,), {"parse_fast": lambda self, s, f, t: None})
    runs = [
        pipeline_run(cls("BTC-PERP", endpoint="ws://127.0.0.1:9"), STREAM, frames)
        for cls in (BitmexAdapter, slow_cls)
    ]
    run = assert_same(*runs)
    kinds = {t.kind for t in run["trades"]}
    assert kinds == {LIQUIDATION_ORDER, ""} and run["liquidations"] > 0
    assert run["state"][0] is FeedStatus.LIVE and run["gaps"] == 0
