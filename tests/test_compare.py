"""Compare view: the symbol on every venue side by side (figures, feed holding, the screen)."""

from __future__ import annotations

import asyncio

import pytest
from rich.console import Console
from rich.measure import Measurement

from e2e import fast_options, until
from faultserver import FaultServer
from obview.compare import compare, depth_near_mid
from obview.feed.manager import FeedManager
from obview.market import Market
from obview.model import FeedStatus, Instrument
from obview.printmode import compare_line
from obview.ui.app import ObviewApp
from obview.ui.compare import CompareScreen, comparison_table, shallow_note, summary_line
from obview.ui.synthetic import StaticManager
from obview.ui.theming import load_theme_files

NOW = 1_800_000_000.0
_WIDE = Console(width=1000)


def market(venue: str, bids, asks, *, status=FeedStatus.LIVE, unit="base", cv=1.0, tick=0.5) -> Market:
    m = Market(Instrument(venue, "BTC-PERP", "X", tick, 0.001, unit, cv, "BTC", "USD"))
    m.book.apply_snapshot(bids, asks)
    m.set_state(status, "" if status is FeedStatus.LIVE else "seq gap 5\u21927")
    return m


def test_rows_bests_and_the_spread_across_venues():
    a = market("a", [(100.0, 1.0), (99.0, 2.0)], [(101.0, 1.0)])
    b = market("b", [(100.5, 1.0)], [(101.5, 3.0)])
    c = market("c", [(99.5, 1.0)], [(100.8, 1.0)])
    cmp = compare(["a", "b", "c", "d"], [a, b, c, None], NOW)
    assert [r.key for r in cmp.rows] == ["1", "2", "3", "4"]
    assert cmp.live == 3 and cmp.rows[3].state is None and not cmp.rows[3].live
    assert (cmp.best_bid, cmp.best_bid_venue) == (100.5, "b")
    assert (cmp.best_ask, cmp.best_ask_venue) == (100.8, "c")
    assert [r.best_bid for r in cmp.rows] == [False, True, False, False]
    assert [r.best_ask for r in cmp.rows] == [False, False, True, False]
    # the consensus is the median mid: 100.5 (a), 101.0 (b), 100.15 (c)
    assert cmp.consensus_mid == pytest.approx(100.5)
    assert cmp.rows[1].vs_mid_bps == pytest.approx((101.0 - 100.5) / 100.5 * 1e4)
    assert cmp.cross_spread_bps == pytest.approx((100.8 - 100.5) / 100.5 * 1e4)
    assert cmp.rows[0].spread_bps == pytest.approx(1.0 / 100.5 * 1e4)


def test_one_venues_bid_above_anothers_ask_reads_as_crossed_across_venues():
    a = market("a", [(100.0, 1.0)], [(100.2, 1.0)])
    b = market("b", [(100.4, 1.0)], [(100.6, 1.0)])
    cmp = compare(["a", "b"], [a, b], NOW)
    assert cmp.cross_spread_bps is not None and cmp.cross_spread_bps < 0
    line = summary_line(cmp, _pal(), "BTC-PERP").plain
    assert "crossed across venues by" in line and "best bid 100.4 b" in line


def test_a_book_that_is_not_live_or_is_crossed_takes_no_part():
    a = market("a", [(100.0, 1.0)], [(100.2, 1.0)])
    syncing = market("s", [(200.0, 1.0)], [(201.0, 1.0)], status=FeedStatus.SYNCING)
    crossed = market("x", [(100.5, 1.0)], [(100.1, 1.0)])  # whole-book check not passed yet
    empty = market("e", [], [])
    cmp = compare(["a", "s", "x", "e"], [a, syncing, crossed, empty], NOW)
    assert cmp.live == 1 and cmp.best_bid_venue == "a" and cmp.best_ask_venue == "a"
    for r in cmp.rows[1:]:
        assert not r.live and r.bid is None and r.vs_mid_bps is None
    # its state and reason are shown instead of prices
    text = _table_text(cmp, 160)
    assert "SYNCING" in text and "seq gap 5\u21927" in text and "200.0" not in text
    assert "(empty)" in text


def test_no_live_venue_gives_no_cross_venue_figures():
    cmp = compare(["a"], [market("a", [(1.0, 1.0)], [(2.0, 1.0)], status=FeedStatus.STALE)], NOW)
    assert cmp.live == 0 and cmp.best_bid is None and cmp.cross_spread_bps is None
    assert "0 of 1 venues LIVE" in summary_line(cmp, _pal(), "BTC-PERP").plain


@pytest.mark.parametrize(
    ("unit", "cv", "want_bid", "want_ask"),
    [
        # coins: size x price
        ("base", 1.0, 2 * 1000.0 + 1 * 999.5, 3 * 1000.5),
        # contracts of 0.01 coin
        ("contract", 0.01, (2 * 1000.0 + 1 * 999.5) * 0.01, 3 * 1000.5 * 0.01),
        # inverse: sizes count USD already
        ("quote", 1.0, 2 + 1, 3),
    ],
)
def test_depth_counts_quote_notional_within_the_band_whatever_the_size_unit(unit, cv, want_bid, want_ask):
    # mid 1000.25; 10 bp band = 999.25 .. 1001.25: 999.0 and 1002.0 lie outside it
    m = market("a", [(1000.0, 2.0), (999.5, 1.0), (999.0, 50.0)], [(1000.5, 3.0), (1002.0, 70.0)], unit=unit, cv=cv)
    b, a = depth_near_mid(m.book, m.instrument, 10.0)
    assert b == pytest.approx(want_bid) and a == pytest.approx(want_ask)
    row = compare(["a"], [m], NOW).rows[0]
    assert row.bid_depth == pytest.approx(want_bid) and row.ask_depth == pytest.approx(want_ask)


def test_a_book_that_ends_inside_the_band_is_marked_not_shown_as_thin():
    """Hyperliquid sends 20 levels (about +-2 bp of BTC): its depth within +-10 bp read as a
    thinner market than its neighbours', with nothing said."""
    deep = market("full", [(1000.0 - i * 0.5, 1.0) for i in range(10)], [(1000.5 + i * 0.5, 1.0) for i in range(10)])
    # mid 1000.25, band 999.25 .. 1001.25; this one ends at 999.5 / 1001.0
    shallow = market("hl", [(1000.0, 1.0), (999.5, 1.0)], [(1000.5, 1.0), (1001.0, 1.0)])
    cmp = compare(["full", "hl"], [deep, shallow], NOW)
    full, hl = cmp.rows
    assert (full.bid_reach_bps, full.ask_reach_bps) == (None, None)
    assert hl.bid_reach_bps == pytest.approx(0.75 / 1000.25 * 1e4)
    assert hl.ask_reach_bps == pytest.approx(0.75 / 1000.25 * 1e4)
    text = _table_text(cmp, 160)
    rows = {line.split()[1]: line for line in text.splitlines()[1:]}
    assert "*" in rows["hl"] and "*" not in rows["full"]
    note = shallow_note(cmp)
    assert note.startswith("* the book the venue sends ends inside ±10bp (hl ±7.5bp)"), note
    assert shallow_note(compare(["full"], [deep], NOW)) == ""
    line = compare_line(cmp, "BTC-PERP", NOW, {})
    got = {v["venue"]: (v["bid_depth_reach_bps"], v["ask_depth_reach_bps"]) for v in line["venues"]}
    assert got == {"full": (None, None), "hl": (7.5, 7.5)}


def test_a_whole_book_that_ends_inside_the_band_is_all_there_is_not_marked():
    # a venue sending every level (BitMEX, Deribit, Kraken, dYdX): its sum is the whole sum
    thin = market("bitmex", [(1000.0, 1.0), (999.5, 1.0)], [(1000.5, 1.0), (1001.0, 1.0)])
    thin.whole_book = True
    row = compare(["bitmex"], [thin], NOW).rows[0]
    assert (row.bid_reach_bps, row.ask_reach_bps) == (None, None)
    assert row.bid_depth == pytest.approx(1000.0 + 999.5)
    assert shallow_note(compare(["bitmex"], [thin], NOW)) == ""


def test_the_table_drops_whole_columns_on_a_narrow_terminal_never_cuts_them():
    a = market("a", [(100.0, 1.0)], [(100.2, 1.0)])
    text = {w: _table_text(compare(["a"], [a], NOW), w) for w in (160, 60, 34)}
    assert "latency" in text[160] and "msg/s" in text[160] and "vs mid" in text[160]
    assert "latency" not in text[60] and "bids" in text[60] and "spread" in text[60]
    assert "bids" not in text[34] and "spread" not in text[34] and "100.2" in text[34]
    for w, t in text.items():
        assert max(len(line.rstrip()) for line in t.splitlines()) <= w
        assert "…" not in t


def test_on_a_very_narrow_terminal_the_reason_and_the_key_go_before_a_price_is_cut():
    # at 56 columns prices read "9691…": the state's reason was only ever shortened, and Rich
    # squeezed the price columns to make room
    live = market("binance", [(96914.5, 1.0)], [(96915.0, 1.0)])
    down = market("okx", [(96910.0, 1.0)], [(96911.0, 1.0)], status=FeedStatus.RECONNECTING)
    down.set_state(FeedStatus.RECONNECTING, "connect timeout after 10 s; retry in 4.2 s")
    cmp = compare(["binance", "okx"], [live, down], NOW)
    text = {w: _table_text(cmp, w) for w in (52, 40, 34)}
    for w, t in text.items():
        assert "…" not in t, (w, t)
        assert max(len(line.rstrip()) for line in t.splitlines()) <= w
        assert "96914.5" in t and "96915.0" in t and "◌" in t
    assert "RECONNECTING" in text[52] and "RECONNECTING" in text[40]
    assert "connect timeout" not in text[40]


def test_prices_of_venues_with_different_ticks_line_up_on_the_point():
    a = market("a", [(97010.3, 1.0)], [(97010.4, 1.0)], tick=0.1)
    h = market("hyperliquid", [(97010.0, 1.0)], [(97011.0, 1.0)], tick=1.0)
    lines = _table_text(compare(["a", "hyperliquid"], [a, h], NOW), 120).splitlines()
    row_a = next(x for x in lines if x.lstrip().startswith("1"))
    row_h = next(x for x in lines if x.lstrip().startswith("2"))
    assert row_a.index("97010.3") == row_h.index("97010  ")
    assert row_a.index("97010.4") == row_h.index("97011  ")


def test_venue_text_from_the_network_is_not_markup():
    m = market("[bold red]evil[/]", [(100.0, 1.0)], [(100.2, 1.0)], status=FeedStatus.RECONNECTING)
    m.set_state(FeedStatus.RECONNECTING, "[link=x]click[/link]")
    text = _table_text(compare(["[bold red]evil[/]"], [m], NOW), 160)
    assert "[bold red]evil[/]" in text and "[link=x]click[/link]" in text


# -- the feed manager holds every venue open while the view is up ------------------------------


async def test_pinned_feeds_outlive_the_warm_limit_until_released_never_viewed_first():
    manager = FeedManager(venues=["demo"], warm_limit=1, options=fast_options())
    try:
        async with asyncio.timeout(15):
            viewed = await manager.open("demo", "BTC-PERP")
            eth = await manager.open("demo", "ETH-PERP", pin=True)
            sol = await manager.open("demo", "SOL-PERP", pin=True)
            assert await manager.open("demo", "BTC-PERP", pin=True) is viewed
            await until(lambda: viewed.live and eth.live and sol.live)
            assert len(manager._open) == 3  # past the warm limit while pinned
            await manager.unpin()
            # the two opened only for the comparison go; the one viewed stays
            assert list(manager._open) == [("demo", "BTC-PERP")]
            # picking a pinned venue in the view keeps it, the previous one goes
            await manager.open("demo", "ETH-PERP", pin=True)
            eth2 = await manager.open("demo", "ETH-PERP")
            await manager.unpin()
            assert list(manager._open) == [("demo", "ETH-PERP")] and manager.get("demo", "ETH-PERP") is eth2
            assert manager.get("demo", "BTC-PERP") is None
    finally:
        await manager.close()


# -- the screen --------------------------------------------------------------------------------


def _static_app():
    a = market("demo", [(100_000.0, 1.0), (99_999.5, 2.0)], [(100_000.5, 1.5)])
    b = market("binance", [(100_001.0, 1.0)], [(100_001.5, 2.0)])
    down = market("bybit", [], [], status=FeedStatus.RECONNECTING)
    down.set_state(FeedStatus.RECONNECTING, "connect failed: timed out after 10 s")
    mgr = StaticManager(
        {("demo", "BTC-PERP"): a, ("binance", "BTC-PERP"): b, ("bybit", "BTC-PERP"): down},
        ["demo", "binance", "okx", "bybit"],
    )
    return ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: NOW), mgr


async def test_x_shows_every_venue_and_a_number_switches_to_it():
    app, mgr = _static_app()
    async with asyncio.timeout(20), app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause(0.3)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        assert mgr.pinned == {("demo", "BTC-PERP"), ("binance", "BTC-PERP"), ("bybit", "BTC-PERP")}
        shown = _rendered(screen)
        assert "2 of 4 venues LIVE" in shown and "RECONNECTING connect failed" in shown
        assert "best bid 100001.0 binance" in shown and "best ask 100000.5 demo" in shown
        assert "crossed across venues by" in shown  # binance's bid is above demo's ask
        assert "no BTC-PERP" in shown  # okx: not in this manager
        # every column has its room (the table is measured unbounded, not at the width of
        # the console the app started with)
        table = comparison_table(screen.comparison, screen.pal, 156, screen.errors)
        want = Measurement.get(_WIDE, _WIDE.options, table).maximum
        assert want > 80 and screen.query_one("#compare-body").size.width >= want
        await pilot.press("2")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, CompareScreen)
        assert app.venue == "binance" and mgr.pinned == set()
        # escape closes without a switch
        await pilot.press("x")
        await pilot.pause(0.1)
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, CompareScreen) and app.venue == "binance"


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_a_click_on_a_venues_row_switches_to_it(size):
    app, mgr = _static_app()
    async with asyncio.timeout(20), app.run_test(size=size) as pilot:
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause(0.3)
        screen = app.screen
        body = screen.query_one("#compare-body")
        console = Console(width=body.size.width, record=True, color_system=None)
        console.print(screen.shown)
        lines = console.export_text().splitlines()  # as the body lays them out
        row = next(i for i, line in enumerate(lines) if line.split()[:2] == ["2", "binance"])
        assert screen.row_at(row) == 1  # the summary wraps at 80 columns: found, not assumed
        # the summary line and the column headers are not rows: clicking them does nothing
        header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["#", "venue"])
        assert screen.row_at(0) is None and screen.row_at(header) is None
        await pilot.click(body, offset=(2, 0))
        await pilot.click(body, offset=(2, header))
        await pilot.pause(0.1)
        assert app.screen is screen
        await pilot.click(body, offset=(4, row))
        await pilot.pause(0.2)
        assert not isinstance(app.screen, CompareScreen)
        assert app.venue == "binance" and mgr.pinned == set()


async def test_the_app_can_open_on_the_compare_view():
    app, mgr = _static_app()
    app.start_compare = True  # obview BTC-PERP --compare
    async with asyncio.timeout(20), app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        assert isinstance(app.screen, CompareScreen) and app.screen.comparison.live == 2
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, CompareScreen) and app.venue == "demo"


async def test_the_view_fits_an_80_column_terminal():
    app, _ = _static_app()
    async with asyncio.timeout(20), app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause(0.3)
        box = app.screen.query_one("Vertical")
        assert 0 < box.size.width <= 80 and box.region.right <= 80
        shown = _rendered(app.screen)
        assert "binance" in shown and "spread" in shown


async def test_on_real_feeds_the_view_connects_every_venue_then_lets_the_extra_ones_go():
    server = FaultServer("127.0.0.1", 5, None, 40.0, 2**20, 8192)
    await server._start(0)
    paths = {"demo": "/demo", "binance": "", "deribit": "/ws/api/v2"}
    mgr = FeedManager(
        venues=list(paths),
        endpoints={v: server.url(p) for v, p in paths.items()},
        rest_endpoints={v: server.http_url() for v in paths},
        warm_limit=1,
        options=fast_options(),
    )
    app = ObviewApp(mgr, "demo", "BTC-PERP")
    try:
        async with asyncio.timeout(40), app.run_test(size=(160, 48)) as pilot:
            await until(lambda: app.market is not None and app.market.live)
            await pilot.press("x")
            screen = app.screen

            def all_live() -> bool:
                cmp = getattr(screen, "comparison", None)
                return cmp is not None and cmp.live == 3

            await until(all_live)
            cmp = screen.comparison
            # one simulated market spoken in three dialects: one touch, so no venue is off the
            # consensus by more than a spread, and each has depth near its mid
            for r in cmp.rows:
                assert abs(r.vs_mid_bps) <= r.spread_bps + 1.0 and r.bid_depth > 0 and r.ask_depth > 0
            assert len(mgr._open) == 3
            await pilot.press("3")
            await until(lambda: app.venue == "deribit" and not isinstance(app.screen, CompareScreen))
            await until(lambda: len(mgr._open) == 1)
            assert list(mgr._open) == [("deribit", "BTC-PERP")]
    finally:
        await mgr.close()
        await server.close()


def test_a_reason_is_whole_where_the_width_allows_and_cut_only_where_it_does_not():
    """'no network: cannot resolve …' was cut at 28 characters with 60 columns free."""
    live = market("binance", [(96914.5, 1.0)], [(96915.0, 1.0)])
    down = market("okx", [(96910.0, 1.0)], [(96911.0, 1.0)], status=FeedStatus.RECONNECTING)
    why = "no network: cannot resolve ws.okx.com; retry in 4.2 s"
    down.set_state(FeedStatus.RECONNECTING, why)
    cmp = compare(["binance", "okx"], [live, down], NOW)
    assert why in _table_text(cmp, 200)
    narrow = _table_text(cmp, 120)
    assert why not in narrow and "no network" in narrow
    assert max(len(line.rstrip()) for line in narrow.splitlines()) <= 120


# -- helpers -----------------------------------------------------------------------------------


def _pal():
    _themes, panels = load_theme_files()
    return panels["obview-dark"]


def _table_text(cmp, width: int) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(comparison_table(cmp, _pal(), width))
    return console.export_text()


def _rendered(screen) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(screen.shown)
    return console.export_text()


def test_the_summary_wraps_between_figures_never_inside_one():
    # at 80 columns it broke between "best ask 97039.1" and the venue quoting it
    a = market("binance", [(97030.0, 1.0)], [(97039.1, 1.0)])
    b = market("deribit", [(97031.5, 1.0)], [(97040.0, 1.0)])
    cmp = compare(["binance", "deribit"], [a, b], NOW)
    for width in range(30, 140):
        text = summary_line(cmp, _pal(), "BTC-PERP", width)
        console = Console(width=width, record=True, color_system=None)
        console.print(text)
        raw = console.export_text().splitlines()
        lines = [ln.strip() for ln in raw]
        assert len(lines) <= 4 and max(len(ln) for ln in raw) <= width, (width, raw)
        for whole in ("best bid 97031.5 deribit", "best ask 97039.1 binance", "spread across venues"):
            assert any(whole in ln for ln in lines), (width, lines)


async def test_the_box_keeps_its_width_while_the_summary_changes_length():
    # "crossed across venues by" is longer than "spread across venues": the centred box moved
    # sideways each time a venue's touch flipped between the two
    app, mgr = _static_app()
    async with asyncio.timeout(20), app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause(0.3)
        screen = app.screen
        box = screen.query_one("Vertical")
        wide = box.region.width
        assert "crossed across venues" in _rendered(screen)
        b = mgr.markets[("binance", "BTC-PERP")]
        b.book.apply_snapshot([(99_990.0, 1.0)], [(100_010.0, 2.0)])  # no longer crossed
        screen._refresh()
        await pilot.pause(0.2)
        assert "spread across venues" in _rendered(screen)
        assert box.region.width == wide and box.region.x == screen.query_one("Vertical").region.x
