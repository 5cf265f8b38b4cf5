"""Bybit liquidations: ``allLiquidation.{symbol}`` read as LIQUIDATION_ORDER trades.

The doc frame is the example of Bybit's "All Liquidation" page (bybit-exchange/docs,
``docs/v5/websocket/public/all-liquidation.mdx``), whose ``S`` is the liquidated position's
side: "When you receive a Buy update, this means that a long position has been liquidated". So a
``Sell`` report is a short closed by a BUY order. The refusal ack has the shape Bybit answers
an unknown topic with (``error:handler not found,topic:...``, ``req_id`` echoed;
sieblyio/bybit-api#561).
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from e2e import fast_options, until
from fastpath import check_all, sim_frames
from obview.feed.pipeline import Fatal, FeedPipeline, NeedResync
from obview.feed.session import FeedSession
from obview.market import Market
from obview.model import LIQUIDATION, LIQUIDATION_ORDER, FeedStatus, Side, Trade
from obview.sim.dialects.bybit import LIQUIDATION_PUSH, BybitDialect
from obview.sim.engine import SimMarket
from obview.sim.events import SimTrade, SimUpdate
from obview.sim.server import start_server
from obview.venues.base import VenueError
from obview.venues.bybit import LIQ_REQ_ID, BybitAdapter

pytestmark = pytest.mark.timeout(60)

#: the docs' example, verbatim
DOC_LIQ = (
    '{"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,'
    '"data":[{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}'
)
#: the same for our instrument, with a long liquidated too
LIQ = (
    '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1739502303204,"data":['
    '{"T":1739502302929,"s":"BTCUSDT","S":"Sell","v":"0.250","p":"97012.5"},'
    '{"T":1739502303001,"s":"BTCUSDT","S":"Buy","v":"1.500","p":"96870.1"}]}'
)
REFUSED = (
    '{"success":false,"ret_msg":"error:handler not found,topic:allLiquidation.BTCUSDT",'
    '"conn_id":"d9jhogatbetvf6evjmc0-8eoj","req_id":"obview-liq","op":"subscribe"}'
)
SNAPSHOT = (
    '{"topic":"orderbook.200.BTCUSDT","type":"snapshot","ts":1672304484978,'
    '"data":{"s":"BTCUSDT","b":[["16493.50","0.006"],["16493.00","0.100"]],'
    '"a":[["16611.00","0.029"],["16612.00","0.213"]],"u":18521288,"seq":7961638724},'
    '"cts":1672304484976}'
)
DELTA = SNAPSHOT.replace('"snapshot"', '"delta"').replace("18521288", "18521289")
T0 = 1_700_000_000.0


class RoseAdapter(BybitAdapter):
    """The adapter for the docs' instrument."""

    symbols = {**BybitAdapter.symbols, "ROSE-PERP": "ROSEUSDT"}


def adapter() -> BybitAdapter:
    return BybitAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9", rest_endpoint="http://127.0.0.1:9")


def live_pipeline():
    ad = adapter()
    market = Market(ad.default_instrument())
    pipe = FeedPipeline(ad, market)
    pipe.on_frame("public", SNAPSHOT, 1.0)
    assert market.live
    return pipe, market


# -- the subscription ------------------------------------------------------------------------------
def test_the_liquidation_topic_has_a_subscribe_request_of_its_own():
    (spec,) = adapter().streams()
    book, liq = (orjson.loads(f) for f in spec.subscribe)
    # a topic Bybit refuses fails its whole request: the book and trades are not in this one
    assert book["args"] == ["orderbook.200.BTCUSDT", "publicTrade.BTCUSDT"]
    assert liq == {"req_id": LIQ_REQ_ID, "op": "subscribe", "args": ["allLiquidation.BTCUSDT"]}
    assert book["req_id"] != LIQ_REQ_ID
    # a resync resubscribes the book only: the liquidation subscription stays as it is
    for frame in adapter().resubscribe_frames("public"):
        assert "allLiquidation" not in frame


# -- parsing ---------------------------------------------------------------------------------------
def test_the_docs_example_is_one_liquidation_order_of_the_side_that_closed_the_position():
    ad = RoseAdapter("ROSE-PERP", endpoint="ws://127.0.0.1:9")
    (t,) = ad.parse("public", DOC_LIQ, 5.0)
    assert isinstance(t, Trade) and t.kind == LIQUIDATION_ORDER
    # "Sell": a short position was liquidated, so the order closing it bought
    assert t.side is Side.BUY
    assert (t.price, t.size) == (0.04499, 20000.0)  # bankruptcy price; size in coins
    assert (t.venue, t.symbol, t.ts_local) == ("bybit", "ROSE-PERP", 5.0)
    assert t.ts_exchange == pytest.approx(1739502302.929)  # T, the liquidation's, not ts
    assert ad.parse_fast("public", DOC_LIQ, 5.0) is None  # left to parse
    # the other side: a long liquidated, its order sold
    (t,) = ad.parse("public", DOC_LIQ.replace('"S":"Sell"', '"S":"Buy"'), 5.0)
    assert t.side is Side.SELL and t.kind == LIQUIDATION_ORDER


def test_every_entry_of_a_push_is_one_order():
    a, b = adapter().parse("public", LIQ, 1.0)
    assert [(t.side, t.size, t.price) for t in (a, b)] == [
        (Side.BUY, 0.25, 97012.5),
        (Side.SELL, 1.5, 96870.1),
    ]
    assert {t.kind for t in (a, b)} == {LIQUIDATION_ORDER}
    assert a.ts_exchange == pytest.approx(1739502302.929)
    assert b.ts_exchange == pytest.approx(1739502303.001)
    # a numeric string time, as ts may come, is read the same
    quoted = DOC_LIQ.replace("ROSE", "BTC").replace("1739502302929", '"1739502302929"')
    (t,) = adapter().parse("public", quoted, 0.0)
    assert t.ts_exchange == pytest.approx(1739502302.929)


def test_another_instruments_reports_are_ignored():
    ad = adapter()
    assert ad.parse("public", LIQ.replace("BTCUSDT", "ETHUSDT"), 0.0) == []  # its topic
    assert ad.parse("public", DOC_LIQ, 0.0) == []
    # an entry of another symbol inside our topic is skipped, ours is kept
    stray = LIQ.replace('"s":"BTCUSDT","S":"Buy"', '"s":"ETHUSDT","S":"Buy"')
    (t,) = ad.parse("public", stray, 0.0)
    assert t.size == 0.25
    # and the deprecated topic is not ours
    old = (
        '{"topic":"liquidation.BTCUSDT","type":"snapshot","ts":1673251091822,"data":{"price":'
        '"0.03803","side":"Buy","size":"1637","symbol":"BTCUSDT","updatedTime":1673251091822}}'
    )
    assert ad.parse("public", old, 0.0) == []
    assert ad.parse_fast("public", old, 0.0) in (None, [])


MALFORMED = [
    LIQ.replace('"data":[', '"data":{"x":[').replace("]}", "]}}"),  # not a list
    LIQ.replace('"data":[{', '"data":[5,{'),  # an entry that is no object
    LIQ.replace('"S":"Sell"', '"S":"Long"'),  # no such side
    LIQ.replace('"S":"Sell"', '"S":["Sell"]'),
    LIQ.replace('"S":"Sell",', ""),
    LIQ.replace('"p":"97012.5"', '"p":"abc"'),
    LIQ.replace('"p":"97012.5"', '"p":true'),
    LIQ.replace('"v":"0.250"', '"v":null'),
    LIQ.replace('"v":"0.250",', ""),
    LIQ.replace('"T":1739502302929', '"T":true'),
    LIQ.replace('"T":1739502302929', '"T":"soon"'),
    LIQ.replace('"T":1739502302929,', ""),
    LIQ.replace('"p":"97012.5"', '"p":"NaN"'),  # not a number the market may hold
    LIQ.replace('"p":"97012.5"', '"p":"-1"'),
    LIQ.replace('"T":1739502302929', '"T":1' + "0" * 400),  # no float holds it
    '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1}',  # no data
]


@pytest.mark.parametrize("frame", MALFORMED)
def test_a_malformed_liquidation_frame_is_a_bad_frame_and_the_book_stays(frame):
    pipe, market = live_pipeline()
    actions = pipe.on_frame("public", frame, 2.0)
    assert not any(isinstance(a, (NeedResync, Fatal)) for a in actions), actions
    assert market.live and market.stats.bad_frames == 1 and market.stats.gaps == 0
    assert market.stats.liquidations == 0  # the good entry beside it is not taken either
    # the book goes on from where it was
    pipe.on_frame("public", DELTA, 3.0)
    assert market.live and pipe.sync.last_seq == 18521289 and market.stats.gaps == 0


def test_the_pipeline_counts_a_report_as_a_liquidation_not_as_a_trade():
    pipe, market = live_pipeline()
    pipe.on_frame("public", LIQ, 2.0)
    assert market.stats.liquidations == 2 and market.stats.trades_seen == 0
    assert [t.kind for t in market.trades] == [LIQUIDATION_ORDER] * 2
    assert market.stats.bad_frames == 0 and market.live


# -- a refused subscription ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "ack",
    [
        REFUSED,
        # no req_id echoed, the topic in the reason
        REFUSED.replace(',"req_id":"obview-liq"', ""),
        # the req_id only
        REFUSED.replace("error:handler not found,topic:allLiquidation.BTCUSDT", "Invalid topic"),
        '{"success":false,"ret_msg":"error:already subscribed,topic:allLiquidation.BTCUSDT",'
        '"conn_id":"c","req_id":"obview-liq","op":"subscribe"}',
    ],
)
def test_a_refused_liquidation_subscription_leaves_the_book_live(ack):
    (err,) = adapter().parse("public", ack, 0.0)
    assert isinstance(err, VenueError) and not err.fatal and "liquidations" in err.reason
    pipe, market = live_pipeline()
    actions = pipe.on_frame("public", ack, 2.0)
    assert actions == [] and market.live and not pipe.halted
    assert "liquidations" in market.stats.last_error
    pipe.on_frame("public", DELTA, 3.0)
    assert market.live and pipe.sync.last_seq == 18521289
    # the book's own refusal is still the end of the feed
    book_refused = (
        '{"success":false,"ret_msg":"Invalid symbol :[orderbook.200.BTCUSDX]",'
        '"req_id":"obview-sub","op":"subscribe"}'
    )
    (err,) = adapter().parse("public", book_refused, 0.0)
    assert err.fatal


# -- the fast path ---------------------------------------------------------------------------------
def test_the_fast_path_leaves_every_liquidation_frame_to_parse():
    ad = adapter()
    frames = [LIQ, DOC_LIQ.replace("ROSE", "BTC"), *MALFORMED]
    # even shaped like trades (an "i" each), they are not read as trades
    frames.append(LIQ.replace('"p":"97012.5"', '"p":"97012.5","i":"x"'))
    frames[-1] = frames[-1].replace('"p":"96870.1"', '"p":"96870.1","i":"y"')
    frames.append(SNAPSHOT.replace("orderbook.200.", "allLiquidation."))  # a book's shape
    for f in frames:
        assert ad.parse_fast("public", f, 0.0) is None, f
    handled, _ = check_all(ad, "public", frames)  # and their mutations: never a disagreement
    assert handled == 0


def test_the_fast_path_agrees_on_the_simulators_frames_with_liquidations():
    frames = sim_frames("bybit", steps=1500)
    liqs = [f for _, f in frames if '"topic":"allLiquidation.' in f]
    assert liqs
    ad = adapter()
    check_all(ad, "public", [f for _, f in frames])
    for f in liqs:
        assert ad.parse_fast("public", f, 0.0) is None
        assert {t.kind for t in ad.parse("public", f, 0.0)} == {LIQUIDATION_ORDER}


# -- the simulator's dialect -----------------------------------------------------------------------
def dialect(subscribe: bool = True):
    sim = SimMarket("BTC-PERP", seed=5, start_time=T0)
    d = BybitDialect({"BTC-PERP": sim}, "/v5/public/linear")
    (spec,) = adapter().streams()
    for frame in spec.subscribe if subscribe else spec.subscribe[:1]:
        for out in d.on_message(frame):
            assert orjson.loads(out.text).get("success", True) is True
    return sim, d


def liquidation_order(
    sim: SimMarket, first_id: int, ts: float, side: Side, n: int = 3
) -> list[SimTrade]:
    """A liquidation market order's fills as the engine makes them: consecutive ids, each a
    level worse than the last."""
    step = 1.0 if side is Side.BUY else -1.0  # each fill a level worse
    p = round(sim.mid, 1)
    return [
        SimTrade(round(p + step * i, 1), 0.5 + i, side, first_id + i, ts, LIQUIDATION)
        for i in range(n)
    ]


def read(frames: list[str]) -> list[Trade]:
    out: list[Trade] = []
    for f in frames:
        slow = adapter().parse("public", f, 1.0)
        fast = adapter().parse_fast("public", f, 1.0)
        assert fast is None or fast == slow
        out += [e for e in slow if isinstance(e, Trade)]
    return out


def test_a_simulated_liquidation_is_one_liquidation_order_plus_its_fills():
    sim, d = dialect()
    order = liquidation_order(sim, 900, T0 + 1.0, Side.SELL)
    plain = SimTrade(round(sim.mid, 1), 0.25, Side.BUY, 899, T0 + 1.0)
    update = SimUpdate("BTC-PERP", sim.seq + 1, sim.seq, T0 + 1.0, trades=[plain, *order])
    outs = d.on_update(update)
    frames = [o.text for o in outs if o.kind == "trade"]
    liq = [orjson.loads(f) for f in frames if "allLiquidation" in f]
    assert len(liq) == 1 and len(liq[0]["data"]) == 1
    entry = liq[0]["data"][0]
    # the real shape: T, s, S (the position's side: a selling liquidation closed a long), v, p
    assert set(entry) == {"T", "s", "S", "v", "p"}
    assert (entry["S"], entry["s"]) == ("Buy", "BTCUSDT")
    trades = read(frames)
    fills = [t for t in trades if t.kind != LIQUIDATION_ORDER]
    (report,) = [t for t in trades if t.kind == LIQUIDATION_ORDER]
    # the fills still come as ordinary trades (Bybit's trade feed marks no liquidation)
    assert [(t.price, t.size, t.side, t.kind) for t in fills] == [
        (t.price, t.size, t.side, "") for t in [plain, *order]
    ]
    assert report.side is Side.SELL
    assert report.size == pytest.approx(sum(t.size for t in order))
    assert report.price == min(t.price for t in order)  # the worst fill stands for bankruptcy
    assert report.ts_exchange == pytest.approx(T0 + 1.0)
    # a buying one reports a short liquidated
    order = liquidation_order(sim, 950, T0 + 2.0, Side.BUY, n=2)
    outs = d.on_update(SimUpdate("BTC-PERP", sim.seq + 2, sim.seq + 1, T0 + 2.0, trades=order))
    (report,) = [t for t in read([o.text for o in outs]) if t.kind == LIQUIDATION_ORDER]
    assert (report.side, report.price, report.size) == (Side.BUY, max(t.price for t in order), 2.0)


def test_two_liquidations_in_one_step_are_two_reports():
    sim, d = dialect()
    a = liquidation_order(sim, 900, T0 + 1.0, Side.SELL)
    b = liquidation_order(sim, 903, T0 + 1.0, Side.SELL)  # the next id, but back at the touch
    c = liquidation_order(sim, 920, T0 + 1.0, Side.SELL, n=1)  # not the next id
    outs = d.on_update(SimUpdate("BTC-PERP", sim.seq + 1, sim.seq, T0 + 1.0, trades=a + b + c))
    reports = [t for t in read([o.text for o in outs]) if t.kind == LIQUIDATION_ORDER]
    assert [r.size for r in reports] == [pytest.approx(4.5), pytest.approx(4.5), 0.5]


def test_reports_are_pushed_at_most_every_500_ms_and_none_is_lost():
    sim, d = dialect()
    pushes: list[tuple[float, int]] = []
    t = T0
    for k, dt in enumerate([0.0, 0.1, 0.2, 0.45, 0.5, 0.55, 1.2, 1.25, 1.69, 1.72]):
        order = liquidation_order(sim, 1000 + 10 * k, T0 + dt, Side.SELL, n=1)
        t = T0 + dt
        outs = d.on_update(SimUpdate("BTC-PERP", sim.seq + k + 1, sim.seq + k, t, trades=order))
        for o in outs:
            if "allLiquidation" in o.text:
                pushes.append((round(dt, 2), len(orjson.loads(o.text)["data"])))
    assert LIQUIDATION_PUSH == 0.5
    # the first at once; then one frame per 500 ms holding what waited
    assert pushes == [(0.0, 1), (0.5, 4), (1.2, 2), (1.72, 3)]


def test_the_simulator_reports_every_liquidation_of_a_long_run():
    sim, d = dialect()
    fills = 0.0
    frames = []
    for k in range(4000):
        update = sim.step(T0 + 0.01 * (k + 1))
        fills += sum(t.size for t in update.trades if t.kind == LIQUIDATION)
        frames += [o.text for o in d.on_update(update) if "allLiquidation" in o.text]
    last = sim.step(T0 + 60.0)  # a push is due: what still waited goes out
    fills += sum(t.size for t in last.trades if t.kind == LIQUIDATION)
    frames += [o.text for o in d.on_update(last) if "allLiquidation" in o.text]
    times = [orjson.loads(f)["ts"] for f in frames]
    assert len(frames) > 5 and all(b - a >= 500 for a, b in zip(times, times[1:], strict=False))
    reports = read(frames)
    assert sum(r.size for r in reports) == pytest.approx(fills)


def test_no_liquidation_frames_unless_subscribed_and_none_after_unsubscribing():
    sim, d = dialect(subscribe=False)
    order = liquidation_order(sim, 900, T0 + 1.0, Side.SELL)
    outs = d.on_update(SimUpdate("BTC-PERP", sim.seq + 1, sim.seq, T0 + 1.0, trades=order))
    assert not any("allLiquidation" in o.text for o in outs)
    assert sum("publicTrade" in o.text for o in outs) == 1  # the fills
    sim, d = dialect()
    (spec,) = adapter().streams()
    (dup,) = d.on_message(spec.subscribe[1])
    assert "already subscribed" in orjson.loads(dup.text)["ret_msg"]
    d.on_message('{"op":"unsubscribe","args":["allLiquidation.BTCUSDT"]}')
    outs = d.on_update(SimUpdate("BTC-PERP", sim.seq + 1, sim.seq, T0 + 1.0, trades=order))
    assert not any("allLiquidation" in o.text for o in outs)


# -- end to end ------------------------------------------------------------------------------------
class NoLiquidations(BybitDialect):
    """A venue that does not know the topic: refused as Bybit refuses an unknown one."""

    def _parse_topic(self, topic):
        if isinstance(topic, str) and topic.startswith("allLiquidation."):
            return None
        return super()._parse_topic(topic)


@pytest.mark.parametrize("refuse", [False, True])
async def test_e2e_liquidations_arrive_and_a_refusal_costs_the_feed_nothing(refuse, monkeypatch):
    # every market order a liquidation: one comes within a second of wall time
    monkeypatch.setattr("obview.sim.engine._LIQUIDATIONS", (1.0, 1.0))
    server = await start_server(seed=3, symbols=["BTC-PERP"], rate=100)
    if refuse:
        server.dialects["bybit"] = NoLiquidations
    try:
        ad = BybitAdapter(
            "BTC-PERP", endpoint=server.url("/v5/public/linear"), rest_endpoint=server.http_url()
        )
        market = Market(ad.default_instrument())
        session = FeedSession(ad, market, options=fast_options())
        task = session.start()
        try:
            await until(lambda: market.live)
            if refuse:
                await until(lambda: "liquidations" in (market.stats.last_error or ""))
                trades = session.pipeline.trades
                await until(lambda: session.pipeline.trades > trades + 5)
                assert market.stats.liquidations == 0
            else:
                await until(lambda: any(t.kind == LIQUIDATION_ORDER for t in market.trades))
            assert market.live and market.state.status is FeedStatus.LIVE
            assert not any(s.status is FeedStatus.FAILED for s in market.state_log)
            assert session.pipeline.parse_errors == 0 and market.stats.gaps == 0
        finally:
            await session.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await server.close()

