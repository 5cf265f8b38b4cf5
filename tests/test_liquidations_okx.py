"""OKX ``liquidation-orders``: the docs' example, other instruments' rows, bad frames, a refused
subscription, and the simulator's dialect against the adapter.

The channel (OKX docs, "Liquidation orders channel", /ws/v5/public) is subscribed by instrument
type and carries every swap's liquidations: one push per instrument and order, at most one order
per contract a second, ``side`` the liquidation order's, ``sz`` in contracts, ``bkPx`` the
bankruptcy price. The 2022 recording was made without it: the docs' example, the shape clients
logged live and the simulator stand in.
"""

from __future__ import annotations

import orjson
import pytest

from e2e import until, venue_feed
from fastpath import check
from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.model import LIQUIDATION, LIQUIDATION_ORDER, FeedStatus, Side, Trade
from obview.sim import engine
from obview.sim.dialects.okx import OkxDialect
from obview.sim.engine import SimMarket
from obview.sim.events import SimTrade, SimUpdate
from obview.venues.base import FrameError, VenueError
from obview.venues.okx import OkxAdapter

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0

#: the OKX docs' push example, as printed there
DOCS = (
    '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[{"bkLoss":"0",'
    '"bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13","ts":"1692266434010"}],'
    '"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP","instType":"SWAP","uly":"IOST-USDT"}]}'
)


def item(inst: str = "BTC-USDT-SWAP", **detail: str) -> dict:
    d = {"bkLoss": "0", "bkPx": "63955.7", "ccy": "", "posSide": "long", "side": "sell",
         "sz": "3.62", "ts": "1786408771714"}  # fmt: skip
    d.update(detail)
    fam = inst.removesuffix("-SWAP")
    return {"details": [d], "instFamily": fam, "instId": inst, "instType": "SWAP", "uly": fam}


def push(*items: dict) -> str:
    return orjson.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": list(items)}
    ).decode()


def both(adapter: OkxAdapter, frame: str) -> list:
    """``parse``'s events, after checking the fast path agrees (or leaves the frame to it)."""
    check(adapter, "public", frame)
    return adapter.parse("public", frame, 5.0)


# -- the docs' example and what the adapter makes of a row -----------------------------------------
def test_the_docs_example_is_a_shorts_buy_order_of_13_contracts_at_the_bankruptcy_price():
    a = OkxAdapter("IOST-PERP", instrument="IOST-USDT-SWAP")
    (t,) = both(a, DOCS)
    assert t == Trade(
        "okx", "IOST-PERP", 0.007831, 13.0, Side.BUY, "liq-1692266434010", 1692266434.010, 5.0,
        kind=LIQUIDATION_ORDER,
    )  # fmt: skip
    # ours, a liquidation a second at most: parse reads it, the fast path leaves it there
    assert a.parse_fast("public", DOCS, 5.0) is None


def test_a_long_sold_off_is_a_sell_and_its_contracts_convert_as_the_trades_do():
    a = OkxAdapter("BTC-PERP")
    (t,) = both(a, push(item()))  # the shape of a BTC-USDT-SWAP row seen live by a client
    assert (t.side, t.price, t.size, t.kind) == (Side.SELL, 63955.7, 3.62, LIQUIDATION_ORDER)
    inst = a.default_instrument()  # 0.01 BTC a contract
    assert inst.to_base(t.price, t.size) == pytest.approx(0.0362)
    assert inst.to_quote(t.price, t.size) == pytest.approx(0.0362 * 63955.7)
    # a row without the order's side: the position's says it
    (t,) = both(a, push(item(side="", posSide="long")))
    assert t.side is Side.SELL
    (t,) = both(a, push(item(side="", posSide="short")))
    assert t.side is Side.BUY
    d = item()
    del d["details"][0]["side"]
    d["details"][0]["posSide"] = "short"
    (t,) = both(a, push(d))
    assert t.side is Side.BUY
    # two rows in one item: two orders
    d = item()
    d["details"].append({**d["details"][0], "side": "buy", "posSide": "short", "ts": "1786408772714"})
    assert [(t.side, t.trade_id) for t in both(a, push(d))] == [
        (Side.SELL, "liq-1786408771714"), (Side.BUY, "liq-1786408772714")
    ]  # fmt: skip


def test_other_instruments_rows_are_ignored_fast_and_slow():
    btc = OkxAdapter("BTC-PERP")
    # the docs' example is an IOST swap's: nothing for BTC, decided on the fast path
    assert btc.parse_fast("public", DOCS, 5.0) == [] == btc.parse("public", DOCS, 5.0)
    mixed = push(item("ETH-USDT-SWAP", sz="40"), item(), item("DOGE-USDT-SWAP", sz="9"))
    assert [t.size for t in both(btc, mixed)] == [3.62]
    assert [t.size for t in both(OkxAdapter("ETH-PERP"), mixed)] == [40.0]
    sol = OkxAdapter("SOL-PERP")
    assert sol.parse_fast("public", mixed, 5.0) == [] == sol.parse("public", mixed, 5.0)
    # another instrument's item is skipped whatever it holds, as parse skips it
    odd = push({"instId": "ETH-USDT-SWAP", "details": "?"}, {"instId": 7})
    assert btc.parse_fast("public", odd, 5.0) in ([], None) and btc.parse("public", odd, 5.0) == []


def test_the_subscription_goes_with_the_books_and_a_resync_resubscribes_the_books_only():
    a = OkxAdapter("BTC-PERP")
    (spec,) = a.streams()
    assert len(spec.subscribe) == 1  # one request of the 480 a connection an hour
    args = orjson.loads(spec.subscribe[0])["args"]
    assert {"channel": "liquidation-orders", "instType": "SWAP"} in args
    assert all("liquidation" not in f for f in a.resubscribe_frames(spec.name))
    # an inverse swap's and a future's are their instType's; a spot pair has no such rows
    sub = orjson.loads(OkxAdapter("X", instrument="BTC-USD-220527").streams()[0].subscribe[0])
    assert {"channel": "liquidation-orders", "instType": "FUTURES"} in sub["args"]
    spot = OkxAdapter("X", instrument="BTC-USDT").streams()[0].subscribe[0]
    assert "liquidation" not in spot


# -- bad frames and refusals -------------------------------------------------------------------------
BAD = [
    '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":{"instId":"BTC-USDT-SWAP"}}',
    '{"arg":{"channel":"liquidation-orders","instType":"SWAP"}}',
    '{"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[5]}',
    push({"instId": "BTC-USDT-SWAP", "details": {"side": "sell"}}),
    push({"instId": "BTC-USDT-SWAP"}),
    push({"instId": "BTC-USDT-SWAP", "details": ["x"]}),
    push(item(side="long")),
    push(item(side="", posSide="net")),
    push(item(bkPx="abc")),
    push(item(bkPx="NaN")),
    push(item(sz="inf")),
    push(item(ts="1786408771714.5")),
    push(item(ts="1" + "0" * 400)),
    push(item(ts=1786408771714)),  # type: ignore[arg-type]
]
#: rows parse reads but the pipeline refuses (a price a book must never hold)
REFUSED = [push(item(bkPx="0")), push(item(sz="-1")), push(item(bkPx="-5"))]


@pytest.mark.parametrize("frame", BAD)
def test_a_malformed_row_is_a_frame_error(frame):
    a = OkxAdapter("BTC-PERP")
    with pytest.raises(FrameError):
        a.parse("public", frame, 5.0)
    assert a.parse_fast("public", frame, 5.0) is None


def _live_pipeline() -> tuple[FeedPipeline, OkxDialect, SimMarket]:
    """A BTC-PERP pipeline made LIVE by the simulator's books, and the dialect feeding it."""
    adapter = OkxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    sim = SimMarket("BTC-PERP", seed=5, start_time=T0)
    d = OkxDialect({"BTC-PERP": sim}, "/ws/v5/public")
    pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
    for f in adapter.streams()[0].subscribe:
        for o in d.on_message(f):
            assert pipe.on_frame("public", o.text, T0) == []
    assert pipe.market.state.status is FeedStatus.LIVE
    return pipe, d, sim


def test_malformed_liquidation_frames_are_bad_frames_and_the_book_stays_live():
    pipe, d, sim = _live_pipeline()
    m = pipe.market
    for n, frame in enumerate(BAD + REFUSED, 1):
        assert pipe.on_frame("public", frame, T0 + n) == []  # no resync asked
        assert (m.stats.bad_frames, m.state.status, m.stats.gaps) == (n, FeedStatus.LIVE, 0), frame
    assert m.resyncs == 0 and m.stats.liquidations == 0
    # the book's chain goes on from where it was
    for k in range(1, 40):
        for o in d.on_update(sim.step(T0 + 20 + k * 0.05)):
            assert pipe.on_frame("public", o.text, T0 + 20 + k * 0.05) == []
    assert m.state.status is FeedStatus.LIVE and m.resyncs == 0
    assert m.book.best_bid()[0] == sim.book.best_bid()[0]


@pytest.mark.parametrize(
    "frame",
    [
        # OKX's errors quote the request in msg ("Wrong URL or channel:orders-algo,instType:SWAP
        # doesn't exist. ..." as clients logged it for another channel)
        '{"event":"error","code":"60018","msg":"Wrong URL or channel:liquidation-orders,'
        "instType:SWAP doesn't exist. Please use the correct URL, channel and parameters "
        'referring to API document.","connId":"a4d3ae55"}',
        '{"event":"error","code":"60018","msg":"Subscribe failed, wrong URL or channel",'
        '"arg":{"channel":"liquidation-orders","instType":"SWAP"},"connId":"a4d3ae55"}',
        '{"event":"error","code":"60012","msg":"Invalid request: {\\"op\\": \\"subscribe\\", '
        '\\"args\\":[{\\"channel\\":\\"liquidation-orders\\"}]}","connId":"a4d3ae55"}',
        '{"event":"error","code":"51001","msg":"channel:liquidation-orders doesn\'t exist"}',
    ],
)
def test_a_refused_liquidation_subscription_is_a_venue_error_not_a_fatal_one(frame):
    a = OkxAdapter("BTC-PERP")
    (err,) = a.parse("public", frame, 5.0)
    assert isinstance(err, VenueError) and not err.fatal
    assert "liquidations not shown" in err.reason
    pipe, _d, _sim = _live_pipeline()
    assert pipe.on_frame("public", frame, T0 + 1) == []
    assert pipe.market.state.status is FeedStatus.LIVE and not pipe.halted
    # the same code about our book is still the end of the feed (60012 never is)
    (err,) = a.parse(
        "public", frame.replace("liquidation-orders", "books").replace("instType", "instId"), 5.0
    )
    assert err.fatal is ('"code":"60012"' not in frame)


def test_a_refusal_quoting_the_whole_request_is_about_the_book_too():
    a = OkxAdapter("BTC-PERP")
    whole = "Invalid request: " + a.streams()[0].subscribe[0]

    def error(code: str, msg: str) -> str:
        return orjson.dumps({"event": "error", "code": code, "msg": msg}).decode()

    (err,) = a.parse("public", error("60018", whole), 5.0)
    assert err.fatal and "liquidations not shown" not in err.reason
    (err,) = a.parse("public", error("60012", whole), 5.0)
    assert not err.fatal and "liquidations not shown" not in err.reason
    # an error naming another channel in its arg is not the liquidations' either
    frame = (
        '{"event":"error","code":"60018","msg":"liquidation-orders?",'
        '"arg":{"channel":"books","instId":"BTC-USDT-SWAP"}}'
    )
    (err,) = a.parse("public", frame, 5.0)
    assert err.fatal


async def test_a_server_refusing_the_channel_leaves_the_book_and_trades_live(monkeypatch):
    monkeypatch.setattr(OkxDialect, "liquidations", False)
    async with venue_feed(OkxAdapter, "BTC-PERP", "/ws/v5/public", seed=5, rate=60) as (
        _server, _adapter, market, session,
    ):  # fmt: skip
        bad: list = []
        await until(lambda: market.live and "60018" in (market.stats.last_error or ""), market=market, bad=bad)
        assert "liquidation" in market.stats.last_error
        seen = market.stats.trades_seen
        await until(lambda: market.stats.trades_seen > seen + 3, market=market, bad=bad)
        assert market.live and session.failed is None and market.resyncs == 0
        assert bad == []


# -- the simulator's dialect and the adapter -----------------------------------------------------------
def _talk(symbols=("BTC-PERP", "ETH-PERP")) -> tuple[OkxDialect, dict[str, SimMarket]]:
    """A dialect connection with BTC-PERP's subscription (books, trades, liquidations)."""
    markets = {s: SimMarket(s, seed=5, start_time=T0) for s in symbols}
    d = OkxDialect(markets, "/ws/v5/public")
    outs = d.on_message(OkxAdapter("BTC-PERP").streams()[0].subscribe[0])
    acks = [orjson.loads(o.text) for o in outs if '"event"' in o.text]
    assert {"event": "subscribe", "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
            "connId": d.conn_id} in acks  # fmt: skip
    return d, markets


def _step(d: OkxDialect, sim: SimMarket, ts: float, fills: list[tuple[float, float, Side, str]]):
    trades = [SimTrade(p, s, side, 900 + i, ts, kind) for i, (p, s, side, kind) in enumerate(fills)]
    update = SimUpdate(sim.symbol, sim.seq + 1, sim.seq, ts, trades=trades)
    return [o for o in d.on_update(update) if o.kind == "trade"]


def _read(adapter: OkxAdapter, outs) -> list[Trade]:
    got: list[Trade] = []
    for o in outs:
        got += [e for e in both(adapter, o.text) if isinstance(e, Trade)]
    return got


def test_a_simulated_liquidation_is_one_order_beside_its_ordinary_fills():
    d, markets = _talk()
    btc = markets["BTC-PERP"]
    mid = round(btc.mid, 1)
    lo, lower, hi, higher = (round(mid + x, 1) for x in (-0.1, -0.3, 0.2, 0.4))
    fills = [
        (mid, 0.5, Side.BUY, ""),
        (lo, 0.3, Side.SELL, LIQUIDATION),  # a long's order sells through two levels
        (lower, 0.2, Side.SELL, LIQUIDATION),
        (lower, 0.1, Side.SELL, ""),
    ]
    adapter = OkxAdapter("BTC-PERP")
    got = _read(adapter, _step(d, btc, T0 + 1.25, fills))
    orders = [t for t in got if t.kind == LIQUIDATION_ORDER]
    plain = [t for t in got if t.kind != LIQUIDATION_ORDER]
    # the fills as trades, all four (OKX's trades do not mark a liquidation's)
    assert [(t.price, t.size, t.kind) for t in plain] == [
        (p, s / 0.01, "") for p, s, _side, _k in fills
    ]  # fmt: skip
    (liq,) = orders
    assert (liq.side, liq.price, liq.ts_exchange) == (Side.SELL, lower, T0 + 1.25)
    assert liq.size == pytest.approx(50.0)  # 0.5 BTC in contracts of 0.01
    assert adapter.default_instrument().to_base(liq.price, liq.size) == pytest.approx(0.5)
    # a short's: a buy, at its highest fill
    shorts = [(hi, 0.1, Side.BUY, LIQUIDATION), (higher, 0.1, Side.BUY, LIQUIDATION)]
    got = _read(adapter, _step(d, btc, T0 + 2.5, shorts))
    (liq,) = [t for t in got if t.kind == LIQUIDATION_ORDER]
    assert (liq.side, liq.price, liq.size) == (Side.BUY, higher, pytest.approx(20.0))
    # a step without a liquidation pushes none
    assert all(t.kind == "" for t in _read(adapter, _step(d, btc, T0 + 3.5, fills[:1])))


def test_the_dialect_pushes_one_order_a_contract_a_second():
    d, markets = _talk()
    btc, eth = markets["BTC-PERP"], markets["ETH-PERP"]
    p = round(btc.mid, 1)

    def liqs(sim, ts):
        outs = _step(d, sim, ts, [(p if sim is btc else 3600.0, 0.1, Side.SELL, LIQUIDATION)])
        return [o.text for o in outs if "liquidation-orders" in o.text]

    assert len(liqs(btc, T0 + 1.0)) == 1
    assert liqs(btc, T0 + 1.4) == liqs(btc, T0 + 1.999) == []  # the same second: not shown
    assert len(liqs(eth, T0 + 1.5)) == 1  # another contract's second
    assert len(liqs(btc, T0 + 2.0)) == 1
    # ETH's comes on BTC's connection (subscribed by instType): the BTC adapter skips it
    (eth_push,) = liqs(eth, T0 + 3.0)
    assert both(OkxAdapter("BTC-PERP"), eth_push) == []
    (t,) = both(OkxAdapter("ETH-PERP"), eth_push)
    assert (t.kind, t.side, t.size) == (LIQUIDATION_ORDER, Side.SELL, pytest.approx(1.0))  # 0.1 ETH
    # unsubscribed: no more
    d.on_message('{"op":"unsubscribe","args":[{"channel":"liquidation-orders","instType":"SWAP"}]}')
    assert liqs(btc, T0 + 5.0) == []


async def test_a_live_feed_shows_the_simulators_liquidations_on_the_tape(monkeypatch):
    monkeypatch.setattr(engine, "_LIQUIDATIONS", (1.0, 1.0))  # every market order: a liquidation
    async with venue_feed(OkxAdapter, "BTC-PERP", "/ws/v5/public", seed=5, rate=60) as (
        _server, _adapter, market, session,
    ):  # fmt: skip
        bad: list = []

        def orders() -> list[Trade]:
            return [t for t in market.trades if t.kind == LIQUIDATION_ORDER]

        await until(lambda: market.live and len(orders()) >= 2, timeout=15, market=market, bad=bad)
        got = orders()
        assert market.stats.liquidations >= len(got)
        assert len({int(t.ts_exchange) for t in got}) == len(got)  # one a second at most
        assert all(t.size > 0 and t.price > 0 for t in got)
        assert any(t.kind == "" for t in market.trades)  # their fills, as trades
        assert market.live and session.failed is None and (market.stats.last_error or "") == ""
        assert bad == []
