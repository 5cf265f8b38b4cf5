"""Liquidations, deleveraging and block trades: read from each venue's trade messages where the
venue marks them, sent so by the simulator's dialects, counted in the flow and the --print line,
and tagged in the tape."""

from __future__ import annotations

import asyncio
import random
from urllib.parse import urlsplit

import orjson
import pytest

from obview.market import FlowWindow, Market
from obview.model import BLOCK, DELEVERAGE, LIQUIDATION, LIQUIDATION_ORDER, Side, Trade
from obview.printmode import snapshot_line
from obview.sim.dialects import load_dialects
from obview.sim.engine import SimMarket
from obview.sim.events import SimTrade, SimUpdate
from obview.ui.app import ObviewApp
from obview.ui.numbers import compact
from obview.ui.synthetic import StaticManager, build_market
from obview.ui.tapemodel import aggregate_tape
from obview.venues.registry import get_adapter

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000.0


def _adapter(venue: str):
    return get_adapter(venue)("BTC-PERP", endpoint="ws://127.0.0.1:9", rest_endpoint="http://127.0.0.1:9")


def _printed(venue: str, kinds: list[str]) -> list[Trade]:
    """The trades ``venue``'s adapter reads from what the simulator speaking its dialect sends
    for one step holding a fill of each of ``kinds``; both the fast and the slow path."""
    adapter = _adapter(venue)
    sim = SimMarket("BTC-PERP", seed=5, start_time=T0)
    markets = {"BTC-PERP": sim}
    dialect = load_dialects([venue])[venue]
    frames: list[tuple[str, str]] = []
    talks = []
    for spec in adapter.streams():
        u = urlsplit(spec.url)
        d = dialect(markets, u.path + (f"?{u.query}" if u.query else ""))
        talks.append((spec.name, d))
        for frame in spec.subscribe:
            d.on_message(frame)
    mid = sim.mid
    trades = [
        SimTrade(round(mid + i, 1), 0.5, Side.SELL, 900 + i, T0 + 1.0, kind)
        for i, kind in enumerate(kinds)
    ]
    update = SimUpdate("BTC-PERP", sim.seq + 1, sim.seq, T0 + 1.0, trades=trades)
    for name, d in talks:
        frames += [(name, o.text) for o in d.on_update(update) if o.kind == "trade"]
    slow: list[Trade] = []
    fast: list[Trade] = []
    for name, f in frames:
        slow += [e for e in _adapter(venue).parse(name, f, 1.0) if isinstance(e, Trade)]
        got = adapter.parse_fast(name, f, 1.0)
        got = got if got is not None else adapter.parse(name, f, 1.0)
        fast += [e for e in got if isinstance(e, Trade)]
    assert [(t.price, t.kind) for t in fast] == [(t.price, t.kind) for t in slow], venue
    return sorted(slow, key=lambda t: t.price)


@pytest.mark.parametrize(
    ("venue", "liq", "block", "reported"),
    [
        ("demo", LIQUIDATION, BLOCK, 0),
        ("deribit", LIQUIDATION, BLOCK, 0),
        ("kraken", LIQUIDATION, BLOCK, 0),
        ("dydx", LIQUIDATION, None, 0),  # no block trades on dYdX
        # Bybit marks block trades (BT); its liquidations come on allLiquidation
        ("bybit", "", BLOCK, 1),
        # a liquidation channel of their own: forceOrder, liquidation-orders, liquidation
        ("binance", "", None, 1),
        ("okx", "", None, 1),
        ("bitmex", "", None, 1),
        ("hyperliquid", "", None, 0),  # no public liquidations
    ],
)
def test_each_venue_reads_the_kind_its_trades_carry(venue, liq, block, reported):
    printed = _printed(venue, ["", LIQUIDATION, BLOCK])
    # the liquidation a venue reports apart from its trades: one, beside its fill
    orders = [t for t in printed if t.kind == LIQUIDATION_ORDER]
    assert len(orders) == reported, (venue, printed)
    trades = [t for t in printed if t.kind != LIQUIDATION_ORDER]
    liq_fill = sorted(trades, key=lambda t: t.price)[1]
    assert all(o.side is liq_fill.side for o in orders), (venue, orders, liq_fill)
    kinds = [t.kind for t in trades]
    if block is None:
        # a venue whose trade feed has no block trades is not sent one
        assert kinds == ["", liq], (venue, kinds)
    else:
        assert kinds == ["", liq, block], (venue, kinds)


def _parse_one(venue: str, stream: str, frame: str) -> Trade:
    ad = _adapter(venue)
    slow = ad.parse(stream, frame, 1.0)
    fast = _adapter(venue).parse_fast(stream, frame, 1.0)
    assert fast is None or fast == slow
    (t,) = slow
    return t


DERIBIT = (
    '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms",'
    '"data":[{"trade_seq":1,"trade_id":"7","timestamp":1655397355998,"tick_direction":2,'
    '"price":21026,"mark_price":21019.9,"instrument_name":"BTC-PERPETUAL","index_price":21031.7,'
    '"direction":"buy","amount":10%s}]}}'
)


@pytest.mark.parametrize(
    ("extra", "kind"),
    [
        ("", ""),
        (',"liquidation":"T"', LIQUIDATION),
        (',"liquidation":"M"', ""),  # the maker's: the taker's row is not the forced side
        (',"liquidation":"MT"', LIQUIDATION),
        (',"block_trade_id":"154"', BLOCK),
        (',"liquidation":null', ""),
        (',"block_trade_id":null', ""),
        (',"liquidation":"T","block_trade_id":"9"', LIQUIDATION),
        (',"liquidation":7', ""),  # not one of Deribit's words
    ],
)
def test_deribit_liquidation_and_block_fields(extra, kind):
    assert _parse_one("deribit", "public", DERIBIT % extra).kind == kind


DYDX = (
    '{"type":"channel_data","connection_id":"c","message_id":4,"id":"BTC-USD","channel":"v4_trades",'
    '"version":"1.1.0","contents":{"trades":[{"id":"02b6","side":"SELL","size":"0.024",'
    '"price":"114581",%s"createdAt":"2025-08-04T00:42:07.119Z"}]}}'
)


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        ('"type":"LIMIT",', ""),
        ('"type":"MARKET",', ""),
        ('"type":"LIQUIDATED",', LIQUIDATION),
        ('"type":"DELEVERAGED",', DELEVERAGE),
        ('"type":"SOMETHING_NEW",', ""),
        ('"type":["LIQUIDATED"],', ""),  # odd: not a liquidation, and not a lost trade
        ('"liquidation":true,', LIQUIDATION),
        ('"liquidation":false,', ""),
        ('"liquidation":"yes",', ""),
        ("", ""),
    ],
)
def test_dydx_trade_types(field, kind):
    assert _parse_one("dydx", "trades", DYDX % field).kind == kind


KRAKEN = (
    '{"feed":"trade","product_id":"PF_XBTUSD","uid":"u1","side":"sell",%s"seq":5,'
    '"time":1626994929946,"qty":3.0,"price":119.5}'
)


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        ('"type":"fill",', ""),
        ('"type":"liquidation",', LIQUIDATION),
        ('"type":"block",', BLOCK),
        ('"type":"termination",', ""),
        ('"type":{"a":1},', ""),
        ("", ""),
    ],
)
def test_kraken_trade_types(field, kind):
    assert _parse_one("kraken", "public", KRAKEN % field).kind == kind


BYBIT = (
    '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
    '"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f4","BT":%s}]}'
)


@pytest.mark.parametrize(
    ("bt", "kind"), [("false", ""), ("true", BLOCK), ('"true"', ""), ("null", ""), ("1", "")]
)
def test_bybit_block_trade_flag(bt, kind):
    assert _parse_one("bybit", "public", BYBIT % bt).kind == kind


def test_the_simulator_prints_liquidations_and_blocks_without_changing_the_book():
    a = SimMarket("BTC-PERP", seed=3, start_time=0.0)
    b = SimMarket("BTC-PERP", seed=3, start_time=0.0)
    b._kinds = random.Random("another stream of kinds")
    kinds: dict[str, int] = {}
    for i in range(1, 12_001):
        ua, ub = a.step(i * 0.05), b.step(i * 0.05)
        # the kinds draw from their own generator: the book moves the same either way
        assert (ua.bids, ua.asks) == (ub.bids, ub.asks)
        for t in ua.trades:
            kinds[t.kind] = kinds.get(t.kind, 0) + 1
    fills = sum(kinds.values())
    # 10 simulated minutes: a few percent of fills are liquidations, and a block or more
    assert 0.005 * fills < kinds.get(LIQUIDATION, 0) < 0.2 * fills, kinds
    assert kinds.get(BLOCK, 0) >= 1, kinds


def _trade(price, size, side, ms, kind="", tid="1"):
    return Trade("demo", "BTC-PERP", price, size, side, tid, ms / 1000.0, ms / 1000.0, kind)


def test_tape_rows_keep_a_liquidations_fills_apart_from_the_fills_beside_it():
    inst = Market(_adapter("demo").default_instrument()).instrument
    trades = [
        _trade(100.0, 1.0, Side.SELL, 1000),
        _trade(99.9, 2.0, Side.SELL, 1000, LIQUIDATION),
        _trade(99.8, 3.0, Side.SELL, 1000, LIQUIDATION),
        _trade(99.7, 1.0, Side.SELL, 1000),
        _trade(99.7, 4.0, Side.BUY, 1000, BLOCK),
    ]
    rows = aggregate_tape(trades, inst, 10)
    assert [(r.kind, r.count, r.base) for r in rows] == [
        (BLOCK, 1, 4.0),
        ("", 1, 1.0),
        (LIQUIDATION, 2, 5.0),
        ("", 1, 1.0),
    ]


def test_flow_and_counts_say_what_was_forced():
    w = FlowWindow(horizon=60)
    w.add(100.2, True, 1.0, 100.0)
    w.add(100.5, False, 2.0, 200.0, forced=True)
    w.add(130.0, True, 4.0, 400.0, forced=True)
    s = w.summary(130.5)
    assert (s.buy_base, s.sell_base, s.count) == (5.0, 2.0, 3)
    assert (s.forced_base, s.forced_quote) == (6.0, 600.0)
    later = w.summary(161.5)  # the first second has left the window
    assert (later.forced_base, later.count) == (4.0, 1)

    m = Market(_adapter("demo").default_instrument())
    for i, kind in enumerate(["", LIQUIDATION, DELEVERAGE, BLOCK, ""]):
        m.add_trade(_trade(100.0 + i, 1.0, Side.BUY, 1_000 + i, kind, str(i)))
    assert (m.stats.trades_seen, m.stats.liquidations) == (5, 2)
    # the heatmap's trade marks are taker flow against the book, and the last price is the
    # book's: not a block trade's or deleveraging's negotiated price
    m2 = Market(_adapter("demo").default_instrument())
    seen = []
    m2.heatmap.add_trade = lambda price, base, side: seen.append(price)
    for i, kind in enumerate(["", BLOCK, LIQUIDATION, DELEVERAGE]):
        m2.add_trade(_trade(100.0 + i, 1.0, Side.BUY, 1_000 + i, kind, str(i)))
        assert m2.last_price == (100.0 + i if kind not in (BLOCK, DELEVERAGE) else m2.last_price)
    assert seen == [100.0, 102.0] and m2.last_price == 102.0
    assert m2.flow.summary(2.0).buy_base == 3.0  # nor is a block the minute's taker flow
    line = snapshot_line(m, 2.0)
    assert (line["trades"], line["liquidations"]) == (5, 2)


async def test_the_tape_tags_liquidations_and_block_trades_and_the_flow_counts_them():
    market, now = build_market(seed=3, seconds=10)
    before = market.flow.summary(now).forced_base  # the prepared market's own liquidations
    ms = int(now * 1000) - 50
    market.add_trade(_trade(market.book.best_bid()[0], 0.7, Side.SELL, ms, LIQUIDATION, "L1"))
    market.add_trade(_trade(market.book.best_ask()[0], 9.0, Side.BUY, ms + 1, BLOCK, "B1"))
    market.add_trade(_trade(market.book.best_ask()[0], 0.2, Side.BUY, ms + 2, DELEVERAGE, "A1"))
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    for width, words in ((160, ("ADL", "BLK", "LIQ")), (66, ("ADL", "BLK", "LIQ"))):
        app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now)
        async with app.run_test(size=(width, 30)) as pilot:
            async with asyncio.timeout(5):
                await pilot.pause()
                await pilot.pause(0.05)
            lines = app.w_tape.line_texts()
            tagged = [next((w for w in words if f" {w}" in ln), None) for ln in lines[2:5]]
            assert tagged == list(words), (width, lines[:6])
            for ln in lines:
                assert len(ln) <= app.w_tape.size.width
            flow = lines[1]
            forced = market.flow.summary(now).forced_base
            assert forced == pytest.approx(before + 0.9), forced
            shown = compact(forced)
            assert (f"liq {shown}" if width == 160 else f"L {shown}") in flow, (width, flow)


def test_the_demo_dialect_and_adapter_round_trip_a_kind():
    frame = orjson.dumps(
        {"type": "trade", "symbol": "BTC-PERP", "id": 5, "price": "100.5", "size": "1",
         "side": "sell", "ts": 1, "kind": "liq"}  # fmt: skip
    ).decode()
    assert _parse_one("demo", "demo", frame).kind == LIQUIDATION
    assert _parse_one("demo", "demo", frame.replace('"liq"', '"rogue"')).kind == ""
    assert _parse_one("demo", "demo", frame.replace('"liq"', "5")).kind == ""


def test_the_help_says_what_the_tags_mean():
    from obview.ui import screens

    text = " ".join(screens.LEGEND)
    for word in ("LIQ", "ADL", "BLK", "liq 1.2"):
        assert word in text, word


async def test_a_narrow_tape_keeps_a_liquidations_letter():
    # at 60 columns the row fitted without room for the tag, and the tag was dropped whole
    market, now = build_market(seed=3, seconds=10)
    ms = int(now * 1000) - 50
    market.add_trade(_trade(market.book.best_bid()[0], 12.345, Side.SELL, ms, LIQUIDATION, "L9"))
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    narrow = 0
    for width in range(52, 72, 2):
        app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now)
        async with app.run_test(size=(width, 24)) as pilot:
            async with asyncio.timeout(5):
                await pilot.pause()
                await pilot.pause(0.05)
            tape = app.w_tape
            if not tape.display:
                continue
            lines = tape.line_texts()
            i = next(i for i, ln in enumerate(lines) if i >= 2 and "12.3" in ln)
            row = lines[i]
            assert all(len(ln) <= tape.size.width for ln in lines), width
            # the tag never costs the prices (the ladder's neighbour shows them): the clock goes
            assert "100104.5" in row, (width, row)
            if row.rstrip().endswith((" L", " LIQ")):
                continue
            # no room even for the letter: the side mark is drawn on the tag's colour
            (mark,) = [s for s in tape._strips[i] if s.text == "▼"]
            assert mark.style.bgcolor.name == tape.pal["forced"], (width, row)
            narrow += 1
    assert narrow  # the narrowest widths took that path


def test_the_ladders_spread_label_is_never_cut_mid_word():
    from obview.ui.ladder import _fitting

    label = "spread 2.2 0.23bp"
    assert [_fitting(label, n) for n in (30, 17, 16, 10, 3, 2)] == [
        label, label, "2.2 0.23bp", "2.2 0.23bp", "2.2", ""
    ]
