"""Binance liquidations: the ``<symbol>@forceOrder`` stream read as LIQUIDATION_ORDER trades.

What is checked: the venue's documented frame and a published one (a SELL whose average
fill price differs from its order price) give the right side, size, price and kind; another
instrument's report is ignored; unreadable reports are bad frames that never resync the
book; the fast path leaves them to ``parse``; the simulator's dialect sends one report per
liquidation order after its fills, throttled to one a second per symbol as the venue is; and
a refused forceOrder subscription leaves the book LIVE and the trades flowing.
"""

from __future__ import annotations

import orjson
import pytest

from e2e import until, venue_feed
from fastpath import check, check_all, sim_frames
from obview.feed.pipeline import FeedPipeline, NeedResync
from obview.feed.session import SessionOptions
from obview.market import Market
from obview.model import LIQUIDATION, LIQUIDATION_ORDER, FeedStatus, Side, Trade
from obview.sim.dialects.binance import BinanceDialect
from obview.sim.engine import SimMarket
from obview.sim.events import SimTrade, SimUpdate
from obview.venues.base import BookFrameError, FrameError, VenueError
from obview.venues.binance import LIQ_SUBSCRIBE_ID, BinanceAdapter

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0

# Binance docs, USD-M "Liquidation Order Streams", response example (comments removed)
DOC_FORCE_ORDER = (
    '{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",'
    '"q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}'
)
# a published !forceOrder@arr frame (tiagosiebler/binance, parseRawWsMessage's docstring):
# several fills (l < z), the average price above the SELL order's limit
IOTX_FORCE_ORDER = (
    '{"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1634653599186,"o":{"s":"IOTXUSDT",'
    '"S":"SELL","o":"LIMIT","f":"IOC","q":"3661","p":"0.06606","ap":"0.06669","X":"FILLED",'
    '"l":"962","z":"3661","T":1634653599180}}}'
)


def _order(**o) -> str:
    base = {
        "s": "BTCUSDT", "S": "BUY", "o": "LIMIT", "f": "IOC", "q": "0.500", "p": "30010.0",
        "ap": "30004.5", "X": "FILLED", "l": "0.200", "z": "0.500", "T": 1_700_000_000_123,
    }  # fmt: skip
    base.update(o)
    data = {"e": "forceOrder", "E": 1_700_000_000_200, "o": {k: v for k, v in base.items() if v is not ...}}
    return orjson.dumps({"stream": "btcusdt@forceOrder", "data": data}).decode()


def _one(ad: BinanceAdapter, frame: str) -> Trade:
    (t,) = ad.parse("trades", frame, 5.0)
    assert isinstance(t, Trade)
    return t


# -- parsing ---------------------------------------------------------------------------------------
def test_the_documented_frame_is_one_liquidation_order_raw_and_combined():
    ad = BinanceAdapter("BTC-PERP")
    combined = '{"stream":"btcusdt@forceOrder","data":' + DOC_FORCE_ORDER + "}"
    for frame in (DOC_FORCE_ORDER, combined):
        t = _one(ad, frame)
        assert t.kind == LIQUIDATION_ORDER
        assert (t.side, t.price, t.size) == (Side.SELL, 9910.0, 0.014)  # coins, as aggTrade's q
        assert t.ts_exchange == pytest.approx(1568014460.893)  # T, the order's trade time
        assert (t.venue, t.symbol, t.ts_local) == ("binance", "BTC-PERP", 5.0)


def test_the_filled_quantity_at_its_average_price():
    # ap and z, not the order's limit p: 3661 IOTX at 0.06669, a long liquidated (SELL)
    t = _one(BinanceAdapter("BTC-PERP", instrument="IOTXUSDT"), IOTX_FORCE_ORDER)
    assert (t.side, t.price, t.size, t.kind) == (Side.SELL, 0.06669, 3661.0, LIQUIDATION_ORDER)
    # a BUY (a short liquidated) that expired part filled: what filled, where it filled
    t = _one(BinanceAdapter("BTC-PERP"), _order(X="EXPIRED", q="0.900", z="0.500"))
    assert (t.side, t.price, t.size) == (Side.BUY, 30004.5, 0.5)
    # nothing filled: the order itself, its quantity at its price
    t = _one(BinanceAdapter("BTC-PERP"), _order(X="EXPIRED", z="0", ap="0", l="0"))
    assert (t.side, t.price, t.size) == (Side.BUY, 30010.0, 0.5)


def test_another_instruments_report_is_ignored():
    ad, market, pipe = _live()
    frame = _order(s="ETHUSDT")
    assert ad.parse("trades", frame, 1.0) == []
    assert ad.parse("trades", IOTX_FORCE_ORDER, 1.0) == []
    before = len(market.trades)
    assert pipe.on_frame("trades", frame, 1.0) == []
    assert len(market.trades) == before and market.stats.liquidations == 0
    # ours, through the same pipeline: on the tape and in the liquidations, not a fill
    pipe.on_frame("trades", _order(), 1.0)
    assert market.trades[-1].kind == LIQUIDATION_ORDER
    assert (market.stats.liquidations, market.stats.trades_seen) == (1, 0)


def _depth(U: int, u: int, pu: int, bids=(), asks=()) -> str:
    data = {
        "e": "depthUpdate", "E": 1_700_000_000_000, "T": 1_700_000_000_000, "s": "BTCUSDT",
        "U": U, "u": u, "pu": pu, "b": [[str(p), str(q)] for p, q in bids],
        "a": [[str(p), str(q)] for p, q in asks],
    }  # fmt: skip
    return orjson.dumps({"stream": "btcusdt@depth@100ms", "data": data}).decode()


def _live() -> tuple[BinanceAdapter, Market, FeedPipeline]:
    """A pipeline whose book is synced and LIVE."""
    ad = BinanceAdapter("BTC-PERP")
    market = Market(ad.default_instrument())
    pipe = FeedPipeline(ad, market)
    pipe.on_frame("depth", _depth(95, 105, 90, bids=[(100.0, 2)]), 0.0)
    snap = {"lastUpdateId": 100, "E": 1, "T": 1, "bids": [["100.0", "1"]], "asks": [["101.0", "1"]]}
    assert pipe.on_snapshot_body(orjson.dumps(snap), 0.0) == []
    pipe.on_frame("depth", _depth(106, 110, 105, asks=[(101.5, 3)]), 0.0)
    assert market.live and pipe.sync.synced
    return ad, market, pipe


BAD_REPORTS = [
    '{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1}}',  # no order
    '{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1,"o":[1,2]}}',
    _order(S="LONG"),
    _order(S=["SELL"]),
    _order(S=...),
    _order(T="1700000000123"),
    _order().replace('"T":1700000000123', '"T":' + "9" * 30),  # read as a float
    _order(T=-5),
    _order(T=...),
    _order(z="abc"),
    _order(z=None),
    _order(ap=...),
    _order(ap="NaN"),
    _order(ap="-5"),
    _order(z="1e400"),
    _order(z="0", ap="0", p=...),
    '{"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT","S":"SELL"',
]


@pytest.mark.parametrize("frame", BAD_REPORTS)
def test_an_unreadable_report_is_a_bad_frame_and_the_book_stays_live(frame):
    ad, market, pipe = _live()
    try:
        events = ad.parse("trades", frame, 1.0)
    except FrameError as e:
        assert not isinstance(e, BookFrameError)  # it never touched the book
    else:  # read, but with a number no trade may hold: the pipeline drops it
        (t,) = events
        assert not (0 < t.price < 1e300 and 0 <= t.size < 1e300)
    gaps, resyncs, book = market.stats.gaps, market.resyncs, dict(market.book.bids)
    actions = pipe.on_frame("trades", frame, 1.0)
    assert not any(isinstance(a, NeedResync) for a in actions)
    assert market.stats.bad_frames == 1 and pipe.parse_errors == 1
    assert (market.stats.gaps, market.resyncs, dict(market.book.bids)) == (gaps, resyncs, book)
    assert market.live and pipe.sync.synced
    assert market.stats.liquidations == 0 and not any(t.kind == LIQUIDATION_ORDER for t in market.trades)
    # and the next depth event still applies
    pipe.on_frame("depth", _depth(111, 112, 110, bids=[(100.5, 1)]), 2.0)
    assert market.book.best_bid()[0] == 100.5 and market.live


def test_a_refused_subscription_is_a_non_fatal_venue_error():
    ad, market, pipe = _live()
    refusal = orjson.dumps(
        {"error": {"code": 2, "msg": "Invalid request: unknown stream"}, "id": LIQ_SUBSCRIBE_ID}
    ).decode()
    (err,) = ad.parse("trades", refusal, 1.0)
    assert isinstance(err, VenueError) and not err.fatal
    assert "forceOrder" in err.reason and "unknown stream" in err.reason
    assert pipe.on_frame("trades", refusal, 1.0) == []
    assert market.live and market.stats.gaps == 0 and market.resyncs == 0
    assert "forceOrder" in market.stats.last_error
    # the ack is nothing at all
    assert ad.parse("trades", f'{{"result":null,"id":{LIQ_SUBSCRIBE_ID}}}', 1.0) == []


# -- fast path -------------------------------------------------------------------------------------
def test_the_fast_path_agrees_with_parse_on_reports():
    ad = BinanceAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    ours = [
        DOC_FORCE_ORDER, '{"stream":"btcusdt@forceOrder","data":' + DOC_FORCE_ORDER + "}",
        _order(), _order(s="ETHUSDT"), *BAD_REPORTS,
    ]  # fmt: skip
    for frame in ours:
        # today it declines them (None); a decoder of their own would have to agree
        check(ad, "trades", frame)
        check(ad, "trades", frame.encode())
    check_all(ad, "trades", ours)  # their hostile mutations too
    # the simulator's reports (and everything around them) agree frame by frame
    frames = [f for s, f in sim_frames("binance", steps=2000) if s == "trades"]
    reports = [f for f in frames if '"forceOrder"' in f]
    assert reports
    check_all(ad, "trades", frames)
    slow = [e for f in reports for e in ad.parse("trades", f, 0.0)]
    assert slow and all(t.kind == LIQUIDATION_ORDER for t in slow)


# -- the simulator's dialect -----------------------------------------------------------------------
def _connection(sim: SimMarket, subscribe: bool = True) -> tuple[BinanceAdapter, BinanceDialect]:
    """The adapter's trade stream as the simulator serves it: URL, then its subscribe frames."""
    from urllib.parse import urlsplit

    ad = BinanceAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    spec = ad.streams()[1]
    u = urlsplit(spec.url)
    d = BinanceDialect({"BTC-PERP": sim}, f"{u.path}?{u.query}")
    if subscribe:
        assert spec.subscribe, "the trade stream asks for forceOrder"
        for frame in spec.subscribe:
            (ack,) = d.on_message(frame)
            assert orjson.loads(ack.text) == {"result": None, "id": LIQ_SUBSCRIBE_ID}
    return ad, d


def _step(sim: SimMarket, ts: float, *fills: tuple[float, float, Side, str]) -> SimUpdate:
    trades = [SimTrade(p, s, side, 900 + i, ts, kind) for i, (p, s, side, kind) in enumerate(fills)]
    return SimUpdate("BTC-PERP", sim.seq + 1, sim.seq, ts, trades=trades)


def _read(ad: BinanceAdapter, d: BinanceDialect, update: SimUpdate) -> list[Trade]:
    out = []
    for o in d.on_update(update):
        assert o.kind == "trade"
        slow = ad.parse("trades", o.text, 1.0)
        fast = ad.parse_fast("trades", o.text, 1.0)
        assert fast is None or fast == slow
        out += slow
    return out


def test_a_simulated_liquidation_is_its_fills_and_one_order_report():
    sim = SimMarket("BTC-PERP", seed=5, start_time=T0)
    ad, d = _connection(sim)
    got = _read(
        ad,
        d,
        _step(
            sim, T0 + 1.0,
            (100.0, 0.3, Side.BUY, ""),  # an ordinary fill before it
            (100.5, 0.1, Side.SELL, LIQUIDATION),  # the liquidation walks the bids
            (100.4, 0.3, Side.SELL, LIQUIDATION),
        ),
    )  # fmt: skip
    fills = [t for t in got if t.kind != LIQUIDATION_ORDER]
    orders = [t for t in got if t.kind == LIQUIDATION_ORDER]
    assert [(t.price, t.size, t.side, t.kind) for t in fills] == [
        (100.0, 0.3, Side.BUY, ""),
        (100.5, 0.1, Side.SELL, ""),  # aggTrade has no liquidation flag
        (100.4, 0.3, Side.SELL, ""),
    ]
    (order,) = orders
    assert got[-1] is order  # after its fills
    assert order.side is Side.SELL and order.size == pytest.approx(0.4)
    assert order.price == pytest.approx(100.425, abs=sim.tick)  # the fills' average
    assert order.ts_exchange == pytest.approx(T0 + 1.0)
    # not subscribed: the fills only
    _, plain = _connection(SimMarket("BTC-PERP", seed=5, start_time=T0), subscribe=False)
    texts = [o.text for o in plain.on_update(_step(sim, T0 + 1.0, (100.5, 0.1, Side.SELL, LIQUIDATION)))]
    assert len(texts) == 1 and "aggTrade" in texts[0]


def test_reports_are_throttled_to_the_latest_one_a_second():
    sim = SimMarket("BTC-PERP", seed=5, start_time=T0)
    ad, d = _connection(sim)

    def reports(ts: float, *fills) -> list[tuple[float, Side, float, float]]:
        out = []
        for o in d.on_update(_step(sim, ts, *fills)):
            data = orjson.loads(o.text)["data"]
            if data["e"] == "forceOrder":
                (t,) = ad.parse("trades", o.text, 0.0)
                out.append((t.price, t.side, data["E"] / 1000.0 - T0, t.ts_exchange - T0))
        return out

    liq = LIQUIDATION
    assert reports(1.0 + T0, (101.0, 0.1, Side.BUY, liq)) == [(101.0, Side.BUY, 1.0, 1.0)]  # at once
    assert reports(1.3 + T0, (102.0, 0.1, Side.BUY, liq)) == []  # held
    assert reports(1.6 + T0, (99.0, 0.1, Side.SELL, liq)) == []  # replaces it: 102 is never sent
    assert reports(1.9 + T0) == []
    # a second after the last push, the latest goes out: pushed now, traded at 1.6
    assert reports(2.05 + T0) == [(99.0, Side.SELL, pytest.approx(2.05), pytest.approx(1.6))]
    # two orders in one step (sides apart), both inside the second: the later one is held
    assert reports(2.5 + T0, (98.0, 0.1, Side.SELL, liq), (103.0, 0.1, Side.BUY, liq)) == []
    assert reports(3.05 + T0, (97.0, 0.1, Side.SELL, liq)) == [
        (97.0, Side.SELL, pytest.approx(3.05), pytest.approx(3.05))
    ]  # the held 103 was replaced by this one, pushed at once as its second had passed
    # two orders in one step with the second passed: one push, the later
    assert reports(4.1 + T0, (96.0, 0.1, Side.SELL, liq), (104.0, 0.1, Side.BUY, liq)) == [
        (104.0, Side.BUY, pytest.approx(4.1), pytest.approx(4.1))
    ]
    assert reports(5.5 + T0) == []  # nothing held, nothing sent
    # never more than one a second over a long simulated run
    frames = [orjson.loads(f) for _, f in sim_frames("binance", steps=3000)]
    pushed = [f["data"]["E"] for f in frames if f.get("stream") == "btcusdt@forceOrder"]
    assert len(pushed) > 5 and all(b - a >= 1000 for a, b in zip(pushed, pushed[1:], strict=False))


def test_the_dialect_serves_force_order_on_the_market_route_only():
    sim = SimMarket("BTC-PERP", seed=5, start_time=T0)
    liq = _step(sim, T0 + 1.0, (100.5, 0.1, Side.SELL, LIQUIDATION))
    # in the URL of a combined /market stream
    d = BinanceDialect({"BTC-PERP": sim}, "/market/stream?streams=btcusdt@forceOrder")
    (o,) = d.on_update(liq)
    assert orjson.loads(o.text)["stream"] == "btcusdt@forceOrder"
    # raw mode: the payload itself
    d = BinanceDialect({"BTC-PERP": sim}, "/market/ws/btcusdt@forceOrder")
    (o,) = d.on_update(liq)
    assert orjson.loads(o.text)["e"] == "forceOrder"
    # asked on /public: accepted, silent (as the venue is on the wrong route)
    d = BinanceDialect({"BTC-PERP": sim}, "/public/stream?streams=btcusdt@depth@100ms")
    (ack,) = d.on_message('{"method":"SUBSCRIBE","params":["btcusdt@forceOrder"],"id":3}')
    assert orjson.loads(ack.text) == {"result": None, "id": 3}
    assert not [x for x in d.on_update(liq) if "forceOrder" in x.text]
    # unsubscribed: silent again
    d = BinanceDialect({"BTC-PERP": sim}, "/market/stream?streams=btcusdt@forceOrder")
    (lst,) = d.on_message('{"method":"LIST_SUBSCRIPTIONS","id":4}')
    assert orjson.loads(lst.text)["result"] == ["btcusdt@forceOrder"]
    d.on_message('{"method":"UNSUBSCRIBE","params":["btcusdt@forceOrder"],"id":5}')
    assert d.on_update(liq) == []


# -- end to end ------------------------------------------------------------------------------------
def _opts() -> SessionOptions:
    return SessionOptions(backoff_base=0.05, backoff_max=0.2, connect_timeout=2.0, resync_min_interval=0.05)


async def test_e2e_liquidations_reach_the_market_beside_their_fills(monkeypatch):
    monkeypatch.setattr("obview.sim.engine._LIQUIDATIONS", (1.0, 1.0))  # every market order
    feed = venue_feed(BinanceAdapter, "BTC-PERP", "", seed=7, rate=40, options=_opts())
    async with feed as (server, _adapter, market, session):
        await until(lambda: market.live and any(t.kind == LIQUIDATION_ORDER for t in market.trades))
        assert market.stats.liquidations >= 1 and market.stats.trades_seen >= 1
        assert session.pipeline.parse_errors == 0 and market.live


async def test_e2e_a_refused_liquidation_subscription_leaves_the_book_live(monkeypatch):
    real_add = BinanceDialect._add

    def refuse_force_order(self, stream: str) -> bool:
        return False if stream.endswith("@forceOrder") else real_add(self, stream)

    monkeypatch.setattr(BinanceDialect, "_add", refuse_force_order)
    monkeypatch.setattr("obview.sim.engine._LIQUIDATIONS", (1.0, 1.0))  # every market order
    feed = venue_feed(BinanceAdapter, "BTC-PERP", "", seed=7, rate=40, options=_opts())
    async with feed as (server, _adapter, market, session):
        await until(lambda: market.live and "forceOrder" in (market.stats.last_error or ""))
        seen, attempts, trades = len(market.state_log), session.connect_attempts, session.pipeline.trades
        await until(lambda: session.pipeline.trades > trades + 3)  # the trades go on
        assert "refused" in market.stats.last_error
        assert market.live and market.stats.gaps == 0
        assert all(s.status is FeedStatus.LIVE for s in list(market.state_log)[seen:])
        assert session.connect_attempts == attempts  # no socket was dropped for it
        assert not any(t.kind == LIQUIDATION_ORDER for t in market.trades)
        assert session.pipeline.parse_errors == 0
