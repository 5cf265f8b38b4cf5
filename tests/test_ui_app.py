"""Pilot tests of the app on deterministic prepared markets (no network, frozen clock)."""

from __future__ import annotations

import asyncio
from functools import lru_cache

from textual.geometry import Region

from obview.market import Market
from obview.model import FeedStatus
from obview.ui.app import ObviewApp
from obview.ui.heatmap import AXIS_WIDTH, Heatmap
from obview.ui.ladder import Ladder
from obview.ui.screens import HelpScreen
from obview.ui.statsbar import StatsBar
from obview.ui.synthetic import StaticManager, build_market
from obview.ui.tape import Tape
from obview.ui.venuestrip import VenueStrip
from obview.ui.viewmodel import bucket_index


@lru_cache
def _markets():
    demo, now = build_market(seed=3, seconds=20)
    binance, _ = build_market(seed=4, seconds=20, venue="binance", price=101_000.0, gap=None)
    return demo, binance, now


def make_app(size_reason: str | None = None) -> tuple[ObviewApp, StaticManager]:
    demo, binance, now = _markets()
    markets = {("demo", "BTC-PERP"): demo, ("binance", "BTC-PERP"): binance}
    mgr = StaticManager(markets, ["demo", "binance", "okx"])
    return ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now), mgr


def text_of(widget) -> str:
    return "\n".join(widget.line_texts())


async def settle(pilot, t: float = 0.05) -> None:
    async with asyncio.timeout(5):
        await pilot.pause()
        await pilot.pause(t)


async def test_app_starts_and_book_appears():
    app, mgr = make_app()
    demo = _markets()[0]
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.market is demo
        w = app.query_one(Ladder)
        ladder = text_of(w)
        bb = demo.book.best_bid()[0]
        ba = demo.book.best_ask()[0]
        # the default grouping is two heatmap buckets: a continuous grid, one bucket per half-block
        assert w.mode == "grid" and app.step == 2 * demo.heatmap.step
        prices = ladder_prices(w)
        for p in (bb, ba):
            assert bucket_index(p, app.step) * app.step in prices
        assert "bp" in ladder.splitlines()[0]  # the spread in the header
        assert "TAPE" in text_of(app.query_one(Tape))
        hm = app.query_one(Heatmap)
        assert hm.frames_built >= 1 and len(hm._strips) == hm.size.height
        assert "╱" in text_of(hm)  # the STALE stretch is drawn as a gap
        stats = app.query_one(StatsBar)._text.plain
        assert "LIVE" in stats and "BTC-PERP" in stats and "demo" in stats


async def test_keys_switch_venue_grouping_units_theme_colormap():
    app, mgr = make_app()
    demo, binance, _ = _markets()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        assert app.venue == "binance" and app.market is binance
        assert "binance" in app.query_one(StatsBar)._text.plain
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert app.market is demo
        first = app.step
        await pilot.press("plus")
        await pilot.press("plus")
        await settle(pilot)
        assert app.step > first
        assert f"group {app.step:g}" in app.query_one(StatsBar)._text.plain
        await pilot.press("minus")
        await settle(pilot)
        assert first < app.step
        await pilot.press("u")
        await settle(pilot)
        assert app.quote_units and "units USD" in app.query_one(StatsBar)._text.plain
        assert "k " in text_of(app.query_one(Ladder))  # notional sizes (thousands of USD)
        theme = app.theme
        await pilot.press("t")
        await settle(pilot)
        assert app.theme != theme and app.theme.startswith("obview-")
        # nothing else on screen names the theme: a notice does
        said = [n.message for n in app._notifications]
        assert f"theme: {app.theme.removeprefix('obview-')}" in said, said
        cmap = app.colormap_name
        await pilot.press("c")
        await settle(pilot)
        assert (
            app.colormap_name != cmap and app.query_one(Heatmap).colormap.name == app.colormap_name
        )


async def test_pause_freezes_display_and_resume_catches_up():
    app, mgr = make_app()
    demo = _markets()[0]
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert app.paused and "PAUSED" in app.query_one(StatsBar)._text.plain
        # the footer says what space does now
        keys = {b.action: b.description for _, b, enabled, _ in app.active_bindings.values() if enabled}
        assert keys.get("resume") == "Resume" and "pause" not in keys
        before = text_of(app.query_one(Ladder))
        bb = demo.book.best_bid()
        demo.book.set_level(True, bb[0], bb[1] + 77.0)
        demo.on_book_changed(demo.stats.last_book_at)
        try:
            await settle(pilot, 0.15)
            assert text_of(app.query_one(Ladder)) == before  # frozen
            # a key that redraws (units there and back) redraws the paused moment, not the feed
            await pilot.press("u", "u")
            await settle(pilot, 0.1)
            assert app.paused and text_of(app.query_one(Ladder)) == before
            await pilot.press("space")
            await settle(pilot, 0.1)
            assert not app.paused
            assert text_of(app.query_one(Ladder)) != before  # caught up
            keys = {b.action: b.description for _, b, enabled, _ in app.active_bindings.values() if enabled}
            assert keys.get("pause") == "Pause" and "resume" not in keys
        finally:
            demo.book.set_level(True, bb[0], bb[1])
            demo.on_book_changed(demo.stats.last_book_at)


async def open_help(app, pilot) -> HelpScreen:
    await settle(pilot)
    await pilot.press("question_mark")
    await settle(pilot)
    assert isinstance(app.screen, HelpScreen)
    return app.screen


async def test_help_opens_and_closes():
    app, _ = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await open_help(app, pilot)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, HelpScreen)


async def test_unknown_symbol_keeps_current_and_says_why():
    app, _ = make_app()
    demo = _markets()[0]
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        inp = app.screen.query_one("#symbol-input")
        inp.value = "nope"
        await pilot.press("enter")
        await settle(pilot, 0.1)
        assert app.market is demo and app.symbol == "BTC-PERP"
        msgs = [n.message for n in app._notifications]
        assert any("'nope'" in m and "valid" in m for m in msgs)  # as typed


async def test_small_terminal_collapses_panels():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.query_one(Heatmap).display
        ladder = app.query_one(Ladder)
        assert ladder.display and "bp" in text_of(ladder).splitlines()[0]
        await pilot.press("H")  # the user can still ask for the heatmap
        await settle(pilot)
        assert app.query_one(Heatmap).display
        await pilot.press("2", "1", "plus", "u", "space", "space")
        await settle(pilot)
        # nothing overlaps: visible panels tile the main row
        regions = [
            w.region for w in (app.query_one(Heatmap), ladder, app.query_one(Tape)) if w.display
        ]
        for a in regions:
            for b in regions:
                if a is not b:
                    assert not a.overlaps(b)


async def test_network_text_is_shown_literally_not_as_markup():
    demo, binance, now = _markets()
    evil, _ = build_market(seed=5, seconds=3, venue="okx", gap=None)
    evil.set_state(FeedStatus.STALE, "seq gap [bold]x[/] \x1b[2J")
    mgr = StaticManager({("demo", "BTC-PERP"): demo, ("okx", "BTC-PERP"): evil}, ["demo", "okx"])
    app = ObviewApp(mgr, "okx", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        plain = app.query_one(StatsBar)._text.plain
        assert "seq gap [bold]x[/]" in plain
        assert "\x1b" not in plain
        assert "[bold]x[/]" in text_of(app.query_one(Ladder))  # ladder header shows it too
        strip = app.query_one(VenueStrip)._text.plain
        assert "◌" in strip  # the stale mark


def ladder_prices(ladder) -> list[float]:
    return [float(t.split()[0]) for t in ladder.line_texts()[1:]]


def axis_labels(hm) -> dict[int, float]:
    """Heatmap line -> the price its axis label names (rows with a ``┤`` tick)."""
    out = {}
    for y, s in enumerate(hm._strips[1:], start=1):
        t = s.text
        if "┤" in t:
            out[y] = float(t.split("┤")[1])
    return out


async def test_ladder_and_heatmap_share_one_price_axis_and_zoom_together():
    app, _ = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        ladder, hm = app.query_one(Ladder), app.query_one(Heatmap)
        assert app.step == 2 * app.market.heatmap.step == 5.0
        assert hm.layout_.sub == 2  # each half-block is one sampler bucket: double resolution
        for presses in ([], ["plus"], ["plus"]):  # 5, 10, 20
            for k in presses:
                await pilot.press(k)
            await settle(pilot)
            step = app.step
            assert ladder.mode == "grid" and hm.layout_.aligned and hm.layout_.row_step == step
            prices = ladder_prices(ladder)
            assert len(prices) == len(hm._strips) - 1
            # continuous: one row per bucket, empty buckets included
            assert all(abs(a - b - step) < 1e-9 for a, b in zip(prices, prices[1:], strict=False))
            labels = axis_labels(hm)
            assert len(labels) >= 3
            for y, p in labels.items():
                assert p == prices[y - 1], (step, y)  # the same bucket on the same line
            # the touch is inside the window, marked on the ladder
            bb = app.market.book.best_bid()[0]
            assert min(prices) <= bb < max(prices) + step
        assert app.step == 20.0 and hm.layout_.sub == 2  # 20 = two half-rows of 10 (4 sampler buckets each)
        await pilot.press("minus", "minus", "minus")  # 2: finer than the bucket of 2.5
        await settle(pilot)
        assert app.step == 2.0
        assert ladder.mode == "compact" and not hm.layout_.aligned
        assert "unaligned" in hm._strips[0].text and "compact" in text_of(ladder)


def still_app(seconds: float) -> tuple[ObviewApp, Market, float]:
    """An app on one prepared market whose frames are painted only when a test calls them."""
    market, now = build_market(seed=8, seconds=seconds, gap=None)
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    return ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600), market, now


async def test_a_new_heatmap_column_costs_one_column():
    app, market, now = still_app(12)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.query_one(Heatmap)
        app._frame()
        coded, built = hm.columns_coded, hm.frames_built
        app._frame()  # nothing new: nothing recomputed, nothing repainted
        assert (hm.columns_coded, hm.frames_built) == (coded, built)
        assert len(market.heatmap.columns) < hm.size.width  # the plot is not full yet
        # one new column when it is due (later would be a missed tick too: a gap column), same
        # book, same clock (no scale update)
        market.tick(market.heatmap.next_at)
        app._frame()
        assert hm.columns_coded == coded + 1
        assert hm.frames_built == built + 1


async def test_a_last_price_move_repaints_only_the_marker_cells():
    market, now = build_market(seed=8, seconds=12, gap=None)
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.query_one(Heatmap)
        app._frame()
        lay, x = hm.layout_, hm.size.width - AXIS_WIDTH
        old_row = next(y for y, s in enumerate(hm._strips) if "◀" in s.text)
        built, moves = hm.frames_built, hm.axis_moves
        refreshed: list = []
        real_refresh = hm.refresh
        hm.refresh = lambda *regions, **kw: (refreshed.append(regions), real_refresh(*regions, **kw))
        market.last_price += 4 * lay.row_step  # four rows up, no new column
        app._frame()
        assert (hm.frames_built, hm.axis_moves) == (built, moves + 1)
        new_row = next(y for y, s in enumerate(hm._strips) if "◀" in s.text)
        assert new_row == old_row - 4
        # the two rows' axis cells are all that is repainted
        assert [set(r) for r in refreshed] == [
            {Region(x, old_row, AXIS_WIDTH, 1), Region(x, new_row, AXIS_WIDTH, 1)}
        ]
        # and the lines are those a full rebuild draws
        moved = list(hm._strips)
        hm._last_key = None
        app._frame()
        assert hm.frames_built == built + 1 and hm._strips == moved
        # off the window: the marker is gone, its row repainted
        refreshed.clear()
        market.last_price += 1000 * lay.row_step
        app._frame()
        assert not any("◀" in s.text for s in hm._strips)
        assert [set(r) for r in refreshed] == [{Region(x, new_row, AXIS_WIDTH, 1)}]


async def test_default_grouping_becomes_the_sampler_bucket_once_it_is_known():
    src, now = build_market(seed=9, seconds=2, gap=None)
    fresh = Market(src.instrument)  # a book, but no heatmap sample yet: bucket unknown
    fresh.book.apply_snapshot(src.book.bids.items(), src.book.asks.items())
    fresh.set_state(FeedStatus.LIVE)
    mgr = StaticManager({("demo", "BTC-PERP"): fresh}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert fresh.heatmap.step is None and app.step == fresh.instrument.tick
        fresh.tick(now)  # the first sample fixes the bucket
        app._frame()
        await settle(pilot)
        assert app.step == 2 * fresh.heatmap.step and app.query_one(Ladder).mode == "grid"
        assert app.query_one(Heatmap).layout_.aligned


async def test_the_heatmap_time_zoom_looks_further_back_at_the_cost_of_one_column():
    app, market, now = still_app(30)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.query_one(Heatmap)
        app._frame()
        samples = len(market.heatmap.columns)
        plot_w = hm.size.width - AXIS_WIDTH
        assert samples > plot_w  # at 0.25 s a column the plot shows the last part only
        first_legend = text_of(hm).splitlines()[0]
        assert "0.25s/col" in first_legend and len(hm._entries) == plot_w
        await pilot.press("z", "z", "z")  # 0.5, 1, 2.5 s a column
        await settle(pilot)
        assert hm.zoom.k == 10 and "2.5s/col" in text_of(hm).splitlines()[0]
        # the legend says how far back the plot reaches: all 30 s now, not the last 16 s
        assert "0.25s/col (16s)" in first_legend and "2.5s/col (30s)" in text_of(hm).splitlines()[0]
        shown = len(hm._entries)
        assert samples // 10 <= shown <= samples // 10 + 2  # every sample, ten to a column
        app._frame()
        coded, built = hm.columns_coded, hm.frames_built
        market.tick(now + 0.3)  # a new sample: only the newest column is merged and coded
        app._frame()
        assert (hm.columns_coded, hm.frames_built) == (coded + 1, built + 1)
        await pilot.press("z", "z", "z", "z", "z", "z")  # 5, 10, 30, 60 s a column, and no further
        await settle(pilot)
        assert hm.zoom.k == 240 and "60s/col" in text_of(hm).splitlines()[0]
        assert 1 <= len(hm._entries) <= 2  # 30 s of samples: the minute still filling
        await pilot.press(*["Z"] * 8)  # back to 1x, and no further
        await settle(pilot)
        assert hm.zoom.k == 1 and "0.25s/col" in text_of(hm).splitlines()[0]
        assert len(hm._entries) == plot_w


async def test_ctrl_z_suspends_as_in_any_terminal_program(monkeypatch):
    import os
    import signal

    from textual.drivers.headless_driver import HeadlessDriver

    app, _ = make_app()
    sent: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, sig: sent.append(sig))
    # the headless driver cannot suspend; a terminal's can
    monkeypatch.setattr(HeadlessDriver, "can_suspend", property(lambda self: True))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+z")
        await settle(pilot)
        assert sent == [signal.SIGTSTP] and app.is_running


async def test_back_from_ctrl_z_the_whole_screen_is_written_again(monkeypatch):
    """After ``fg`` the terminal shows whatever the shell left: Textual wrote only what changed
    next, so the venue strip and the footer (which rarely change) stayed blank."""
    from textual._compositor import LayoutUpdate
    from textual.drivers.headless_driver import HeadlessDriver

    app, _ = make_app()
    monkeypatch.setattr(HeadlessDriver, "can_suspend", property(lambda self: True))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        written: list = []
        display = app._display
        app._display = lambda screen, update: (written.append(update), display(screen, update))
        await settle(pilot, 0.2)
        # running on, at most the parts of the screen that changed are written
        assert not any(isinstance(u, LayoutUpdate) for u in written)
        written.clear()
        app.post_message(HeadlessDriver.SignalResume())  # what the driver posts on SIGCONT
        await settle(pilot, 0.2)
        full = [u for u in written if isinstance(u, LayoutUpdate)]
        assert full and full[0].region == app.screen.region
        assert app.resumes == 1


async def test_heatmap_cut_offs_are_adjustable_both_ends():
    app, _ = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.query_one(Heatmap)
        assert (hm.low_pct, hm.high_pct) == (5.0, 99.0)
        await pilot.press("greater_than_sign")
        await pilot.press("full_stop")
        await settle(pilot)
        assert (hm.low_pct, hm.high_pct) == (10.0, 99.5)
        title = text_of(hm).splitlines()[0]
        assert "p10–99.5" in title
        await pilot.press("less_than_sign", "less_than_sign", "less_than_sign", "comma")
        await settle(pilot)
        assert (hm.low_pct, hm.high_pct) == (0.0, 99.0)


def _cells(strips) -> list[list[tuple[str, object]]]:
    return [[(seg.text, seg.style) for seg in strip] for strip in strips]


async def test_line_widgets_hand_the_compositor_what_textual_styles_cache_would():
    """LineWidget.render_lines skips Textual's styles cache for plain widgets: its lines (whole,
    cropped, past the last line, and with the light theme's filters) equal that path's."""
    from textual.geometry import Region
    from textual.widget import Widget

    app, _mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        for theme in ("obview-dark", "obview-light"):
            app.theme = theme
            await settle(pilot)
            for w in (app.query_one(Heatmap), app.query_one(Ladder), app.query_one(Tape)):
                width, height = w.size
                assert w.size == w.region.size  # no CSS gutter: the fast path is the one taken
                for crop in (
                    Region(0, 0, width, height),
                    Region(3, 2, width - 5, 7),
                    Region(0, height - 2, width, 2),
                ):
                    fast = w.render_lines(crop)
                    slow = Widget.render_lines(w, crop)
                    assert len(fast) == crop.height
                    assert _cells(fast) == _cells(slow), (type(w).__name__, crop)
                if w.edge:
                    assert all(t.startswith("▏") for t in (s.text for s in w.render_lines(w.size.region)))
        # a widget given a CSS gutter falls back to Textual's own path (and draws the padding)
        tape = app.query_one(Tape)
        tape.styles.padding = (0, 0, 0, 2)
        await settle(pilot)
        (line,) = tape.render_lines(Region(0, 1, tape.region.width, 1))
        assert line.text.startswith("  ▏")


async def test_a_line_with_an_ansi_colour_still_goes_through_the_filter():
    """The fast path skips the ANSI-to-truecolor filter only while every style is RGB: a line
    built with a named colour is converted as Textual's own path converts it."""
    from rich.segment import Segment
    from rich.style import Style
    from textual.widget import Widget

    app, _mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.action_pause()  # the frame clock would rebuild the tape's lines
        tape = app.query_one(Tape)
        odd = Style(color="red", bgcolor="default")

        def build(text):
            tape._note_style(odd)
            return [Segment(text, odd)]

        tape.set_lines([(("odd", i), f"line {i}") for i in range(5)], build)
        crop = tape.size.region
        fast, slow = tape.render_lines(crop), Widget.render_lines(tape, crop)
        assert _cells(fast) == _cells(slow)
        (shown,) = [seg for seg in fast[1] if seg.text.startswith("line")]
        assert shown.style.color.triplet is not None and shown.style.bgcolor.triplet is not None


async def test_resizing_the_terminal_lays_the_panels_out_for_the_new_size():
    """Each resize picks the panels for the size it goes to (the layout once lagged a resize
    behind: growing from 80 to 240 columns left the heatmap hidden)."""
    app, _mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        for size in ((80, 24), (240, 70), (160, 48), (100, 30), (240, 70), (99, 40), (140, 40)):
            await pilot.resize_terminal(*size)
            await settle(pilot, 0.1)
            w = size[0]
            shown = (app.w_heatmap.display, app.w_ladder.display, app.w_tape.display)
            expected = (w >= 100, True, w >= 140 or w < 100)
            assert shown == expected, (size, shown)
            assert app.w_ladder.region.width == (46 if w >= 120 else 40) or not expected[0], size
            if expected[0]:
                assert "HEATMAP" in app.w_heatmap.line_texts()[0], size


async def test_kept_lines_follow_a_theme_switch_and_a_venue_switch():
    from textual.widget import Widget

    from obview.ui.lines import SteadyLines

    app, _ = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        kept = [w for w in [app.screen, *app.screen.walk_children()] if isinstance(w, SteadyLines)]
        assert {type(w).__name__ for w in kept} == {
            "MainScreen", "VenueStrip", "Panels", "Keys"
        }  # fmt: skip
        for keys in ([], ["t"], ["2"], ["t", "1"], ["H"], ["T", "L"], ["H", "T", "L"]):
            for k in keys:
                await pilot.press(k)
            await settle(pilot)
            for w in kept:
                crop = w.size.region
                assert w.render_lines(crop) == Widget.render_lines(w, crop), (keys, w)


async def test_help_scrolls_where_the_terminal_is_too_small_for_it():
    from textual.containers import VerticalScroll

    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        body = (await open_help(app, pilot)).query_one(VerticalScroll)
        assert body.max_scroll_y > 0 and body.scroll_y == 0
        await pilot.press("end")
        await settle(pilot, 0.3)
        assert body.scroll_y == body.max_scroll_y  # the last legend line can be reached
    app, _ = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        help_screen = await open_help(app, pilot)
        assert help_screen.query_one(VerticalScroll).max_scroll_y == 0  # all of it fits


async def test_a_long_reason_on_an_empty_book_wraps_in_the_ladder():
    from obview.model import Instrument

    _, _, now = _markets()
    market = Market(Instrument("binance", "BTC-PERP", "BTCUSDT", tick=0.1, lot=0.001, base="BTC", quote="USDT"))
    reason = "no network: cannot resolve host fstream.binance.com; retry in 3.8 s"
    market.set_state(FeedStatus.RECONNECTING, reason)
    app = ObviewApp(StaticManager({("binance", "BTC-PERP"): market}, ["binance"]), "binance", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        w = app.query_one(Ladder)
        lines = w.line_texts()
        assert w.content_width < len(reason)  # the panel is narrower than the reason
        head = lines[0].rstrip()
        assert head.startswith(" RECONNECTING: no network") and head.endswith("…")
        body = " ".join(line.strip() for line in lines[1:] if line.strip())
        assert body == reason  # every word of it, over several lines
        assert all(len(line) <= w.content_width for line in lines)


async def test_every_theme_the_app_offers_renders():
    """obview's themes and Textual's own (its palette's theme picker offers them all)."""
    app, _ = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        names = list(app.available_themes)
        # the ansi themes (a 'transparent' panel colour) crashed the app: one is among them
        assert "obview-dark" in names and ({"ansi-dark", "textual-ansi"} & set(names))
        for name in names:
            app.theme = name
            await settle(pilot)
            assert app.is_running and app._exception is None, name
            assert text_of(app.query_one(Ladder)).strip(), name


async def test_a_narrow_tape_drops_the_clock_not_digits_of_a_price_or_size():
    # under 100 columns the tape gets what the ladder leaves: its fixed columns ran off the
    # edge and 96984.3 showed as 9698, 0.283 as 0
    import re

    row = re.compile(r"[▲▼] +(\S+) +(\S+)")

    async def rows_at(w: int, h: int) -> list[tuple[str, str, str]]:
        app, mgr = make_app()
        async with app.run_test(size=(w, h)) as pilot:
            await settle(pilot)
            tape = app.w_tape
            assert tape.display and tape.size.width < 60 or w >= 100
            out = []
            for line in tape.line_texts()[2:]:
                assert len(line) <= tape.size.width
                m = row.search(line)
                if m:
                    out.append((line.split("▲")[0].split("▼")[0].strip(), m.group(1), m.group(2)))
            return out

    wide = await rows_at(160, 30)
    assert wide and all(len(t) == 12 for t, _, _ in wide)
    clocks = set()
    # (a liquidation's tag on screen takes two cells from the clock: the steps move)
    for w, h in ((80, 24), (76, 24), (72, 16), (70, 16), (66, 16), (60, 15)):
        narrow = await rows_at(w, h)
        assert narrow, (w, h)
        # the same trades, price and size whole; only the clock gave way
        assert [(p, s) for _, p, s in narrow] == [(p, s) for _, p, s in wide[: len(narrow)]], (w, h)
        clock = {len(t) for t, _, _ in narrow}
        assert len(clock) == 1 and clock <= {12, 9, 0}, (w, h, narrow[:2])
        assert all(t == wt[12 - len(t) :] for (t, _, _), (wt, _, _) in zip(narrow, wide, strict=False))
        clocks |= clock
    assert clocks == {12, 9, 0}, clocks  # hh: went first, then the rest of the clock


async def test_a_tape_too_narrow_for_its_columns_drops_the_price_never_digits():
    # at 52-60 columns the size column was cut at the panel's edge: 78.6k showed as 78.6
    def trades(app) -> list[list[str]]:
        out = []
        for line in app.w_tape.line_texts()[2:]:
            assert len(line) <= app.w_tape.size.width
            for mark in "▲▼":
                if mark in line:
                    out.append(line.split(mark, 1)[1].split())
        return out

    app, mgr = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        wide = trades(app)
    assert wide and all(len(t) >= 2 for t in wide)
    prices, sizes = [t[0] for t in wide], [t[1] for t in wide]
    for w in (60, 58, 55, 52, 50, 46):
        app, mgr = make_app()
        async with app.run_test(size=(w, 14)) as pilot:
            await settle(pilot)
            if not app.w_tape.display:
                continue
            narrow = trades(app)
        assert narrow, w
        for i, t in enumerate(narrow):
            # size whole, and the price whole or not there at all (the sweep's end may follow);
            # or, narrower still, the side marks alone
            if not t or t[0] == sizes[i]:
                continue
            assert t[:2] == [prices[i], sizes[i]], (w, t, prices[i], sizes[i])


def test_tape_fit_gives_way_in_order():
    from obview.ui.tape import tape_fit

    assert tape_fit(7, 5, 30) == (12, 3, 7, True)
    assert tape_fit(7, 5, 29) == (9, 3, 7, True)
    assert tape_fit(7, 5, 26) == (0, 3, 7, True)
    assert tape_fit(7, 5, 17) == (0, 2, 5, True)  # "▲ 97031.5 78.6k"
    assert tape_fit(7, 5, 14) == (0, 2, 5, False)  # "▲  78.6k"
    assert tape_fit(7, 5, 7) == (0, 2, 0, False)  # "▲"


async def test_the_last_panel_shown_stays():
    # H, L and T together left a blank screen with no word of why
    app, mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("H", "L", "T")
        await settle(pilot)
        shown = [w for w in (app.w_heatmap, app.w_ladder, app.w_tape) if w.display]
        assert shown == [app.w_tape]
        assert any("one panel stays" in n.message for n in app._notifications)


async def test_the_venue_picker_shows_each_feeds_state():
    from textual.widgets import OptionList

    from obview.ui.screens import VenuePicker

    app, mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, VenuePicker)
        ol = app.screen.query_one(OptionList)
        rows = [str(ol.get_option_at_index(i).prompt) for i in range(ol.option_count)]
        assert rows[0].startswith("1  demo") and "● LIVE" in rows[0]
        assert rows[2].startswith("3  okx") and "○ not connected" in rows[2]


async def test_a_resize_while_paused_lays_the_paused_moment_out_at_the_new_size():
    # the resize's own repaint ran on the panels' old sizes and nothing drew them again until
    # the user resumed: ladder rows out of order, the header cut, the heatmap's axis gone
    app, mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        for size in ((100, 30), (100, 20), (60, 15), (160, 48), (240, 70)):
            await pilot.resize_terminal(*size)
            await settle(pilot, 0.15)
            assert app.paused
            lad, hm, tape = app.query_one(Ladder), app.query_one(Heatmap), app.query_one(Tape)
            # (the heatmap's time axis says "paused" in place of "now": left out)
            shown = {w: w.line_texts()[: -1 if w is hm else None] for w in (lad, hm, tape) if w.display}
            paused = {w: "\n".join(lines) for w, lines in shown.items()}
            for w in paused:
                assert len(w.line_texts()) == w.size.height, (size, type(w).__name__)
            if lad.display:
                prices = ladder_prices(lad)
                steps = {round(a - b, 6) for a, b in zip(prices, prices[1:], strict=False)}
                assert steps == {round(app.step, 6)}, (size, prices)
            # the market holds still here: what resuming draws is what the pause showed
            await pilot.press("space")
            await settle(pilot, 0.15)
            assert {w: "\n".join(w.line_texts()[: -1 if w is hm else None]) for w in paused} == paused, size
            await pilot.press("space")
            await settle(pilot)


async def test_a_switch_while_paused_shows_the_new_venue_live():
    app, mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot, 0.2)
        assert app.venue == "binance" and not app.paused and app._frozen is None


async def test_ladder_columns_keep_their_places_from_frame_to_frame():
    """Widths came from each frame's widest number: the bid, ask and cum columns and their
    decimal points moved sideways as numbers changed. They widen at once and narrow only after
    the numbers have been narrower for a while."""
    from obview.ui.ladder import NARROW_AFTER, Ladder

    market, t0 = build_market(seed=8, seconds=12, gap=None)
    clock = [t0]
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: clock[0], frame_interval=3600)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        ladder = app.query_one(Ladder)
        book = market.book
        bb = book.best_bid()[0]
        heads = []
        for size in (123456.789, 1.0, 123456.789, 1.0, 123456.789, 1.0):  # a wide number comes and goes
            book.apply_delta([(bb, size)], [])
            market.version += 1
            clock[0] += 0.5
            app._frame()
            heads.append(ladder.line_texts()[0])
        assert len(set(heads[1:])) == 1, heads  # the titles (and so the columns) stay put
        steady = heads[-1]
        clock[0] += NARROW_AFTER + 0.5
        market.version += 1
        app._frame()
        clock[0] += 0.1
        market.version += 1
        app._frame()
        later = ladder.line_texts()[0]
        assert later != steady  # narrowed once the wide number had been gone a while


async def test_the_tape_of_a_feed_that_is_not_live_is_dimmed_and_says_why():
    """Its last prints stayed at full brightness while the feed was STALE or reconnecting, as
    if the flow had stopped there."""
    from obview.model import FeedStatus
    from obview.ui.tape import Tape

    market, now = build_market(seed=8, seconds=12, gap=None)
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        tape = app.query_one(Tape)
        app._frame(force=True)

        def row_colors() -> set:
            return {seg.style.color.triplet.hex for strip in tape._strips[2:6] for seg in strip if seg.text.strip()}

        pal = tape.pal
        sides = {pal["buy"].lower(), pal["sell"].lower()}
        live = row_colors()
        assert live & sides
        market.set_state(FeedStatus.STALE, "no data for 5.0 s")
        app._frame(force=True)
        assert "STALE" in tape.line_texts()[0]
        dimmed = row_colors()
        assert not dimmed & sides and pal["muted"].lower() in dimmed
        market.set_state(FeedStatus.LIVE)
        app._frame(force=True)
        assert row_colors() == live and "STALE" not in tape.line_texts()[0]


async def test_a_stale_books_ladder_and_status_figures_are_greyed_as_its_tape_is():
    """A STALE book's ladder rows and status-line figures kept their live colours while its
    tape was greyed: the panels disagreed about whether the numbers were the market now."""
    from obview.model import FeedStatus

    market, now = build_market(seed=8, seconds=12, gap=None)
    # a spread wider than a row, so the grid draws its label and the compact ladder its row
    market.book.apply_delta([(p, 0.0) for p in market.book.bids._keys[-60:]], [])
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        ladder, bar = app.query_one(Ladder), app.query_one(StatsBar)
        pal = ladder.pal
        muted = pal["muted"].lower()
        sides = {pal[k].lower() for k in ("bid", "ask", "bid_text", "ask_text", "bid_bar", "ask_bar")}

        def ladder_colors() -> set:
            return {
                seg.style.color.triplet.hex
                for strip in ladder._strips[1:]
                for seg in strip
                if seg.text.strip("▏ ") and seg.style.color is not None and "╱" not in seg.text
            }

        def figure_colors() -> set:
            # the status line's second line: the values after "last", "mid", "spread", "imb10"
            segs = list(bar._strips[1])
            names = ("last", "mid", "spread", "imb10")
            return {
                segs[i + 1].style.color.triplet.hex
                for i, seg in enumerate(segs[:-1])
                if seg.text.strip() in names
            }

        for compact in (False, True):
            if compact:
                # a grouping that is not a multiple of the heatmap's buckets: the compact ladder
                app.step_auto = False
                app.step = market.heatmap.step * 2.5
            market.set_state(FeedStatus.LIVE)
            app._repaint_all()
            assert ladder.mode == ("compact" if compact else "grid")
            assert any("spread" in t or "bp" in t for t in ladder.line_texts()[1:])
            assert ladder_colors() & sides and figure_colors() - {muted}
            market.set_state(FeedStatus.STALE, "no data for 5.0 s")
            app._repaint_all()
            assert "STALE" in ladder.line_texts()[0]
            assert ladder_colors() == {muted}, (compact, ladder_colors())
            assert figure_colors() == {muted}
            market.set_state(FeedStatus.LIVE)
            app._repaint_all()
            assert ladder_colors() & sides and figure_colors() - {muted}


async def test_ladder_rows_beyond_the_books_depth_are_hatched_not_shown_empty():
    """A venue sends 20 or 200 levels: rows past the deepest of them were blank, as if nothing
    rested there (the heatmap hatches them as unknown)."""
    market, now = build_market(seed=5, seconds=10, gap=None, depth=20)
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app._frame(force=True)
        ladder = app.query_one(Ladder)
        assert ladder.mode == "grid"
        step = app.step
        floor = bucket_index(market.book.bids._keys[0], step) * step
        ceiling = bucket_index(market.book.asks._keys[-1], step) * step
        hatched = {"below": 0, "above": 0, "edge": 0}
        for line in ladder.line_texts()[1:]:
            price = float(line.split()[0])
            beyond = price < floor - 1e-9 or price > ceiling + 1e-9
            if beyond:
                hatched["below" if price < floor else "above"] += 1
                # the price and the hatch alone: no size, no cumulative total
                assert line.split()[1:] and set("".join(line.split()[1:])) == {"╱"}, line
            elif abs(price - floor) < 1e-9 or abs(price - ceiling) < 1e-9:
                # the row holding the deepest level: its sum stops there, hatched past its bar
                edge = market.book.bids._keys[0] if price == floor else market.book.asks._keys[-1]
                # partial unless the deepest level is the bucket's last price (its first tick
                # for bids, its top tick for asks)
                tick = market.instrument.tick
                partial = edge > floor + tick / 2 if price == floor else edge < ceiling + step - tick * 1.5
                assert line.rstrip().endswith("╱") == partial, (line, edge)
                hatched["edge"] += partial
            else:
                assert "╱" not in line, line
        assert hatched["below"] and hatched["above"] and hatched["edge"], hatched
        # a row a tick wide holds one price: the deepest level's row is whole, never hatched
        app.step_auto, app.step = False, market.instrument.tick
        app._repaint_all()
        assert ladder.mode == "grid"
        edges = [
            ln for ln in ladder.line_texts()[1:]
            if float(ln.split()[0]) in (market.book.bids._keys[0], market.book.asks._keys[-1])
        ]  # fmt: skip
        assert edges and not any(ln.rstrip().endswith("╱") for ln in edges), edges


async def test_a_whole_books_ladder_shows_rows_past_its_deepest_level_empty_not_hatched():
    """A venue sending every level (Deribit, BitMEX, Kraken, dYdX, the simulator) has nothing
    resting past its deepest bid and ask: those rows were hatched as unknown."""
    market, now = build_market(seed=5, seconds=10, gap=None, depth=20)
    market.whole_book = True
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app._frame(force=True)
        ladder = app.query_one(Ladder)
        assert ladder.mode == "grid"
        step = app.step
        floor = bucket_index(market.book.bids._keys[0], step) * step
        ceiling = bucket_index(market.book.asks._keys[-1], step) * step
        lines = ladder.line_texts()[1:]
        beyond = [ln for ln in lines if not floor - 1e-9 <= float(ln.split()[0]) <= ceiling + 1e-9]
        assert beyond, lines  # the window reaches past the book's 20 levels
        assert not any("╱" in ln for ln in lines), lines
        assert all(len(ln.split()) == 1 for ln in beyond), beyond  # the price alone: empty


async def test_each_ladder_column_of_notional_shares_one_scale():
    """In quote units a column mixed 816k and 1.16M (the cumulative one 652k and 9.57M), and on
    the point 816 stood over 1: the larger read as the smaller."""
    market, now = build_market(seed=5, seconds=10, gap=None)
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.quote_units = True
        app.step_auto, app.step = False, 5.0  # rows of about 0.5M to a few M: k and M both
        app._repaint_all()
        ladder = app.query_one(Ladder)
        assert ladder.mode == "grid"
        sizes: dict[str, set[str]] = {"ask": set(), "bid": set(), "cum": set()}
        seen: list[float] = []
        book = market.book
        head, *lines = ladder.line_texts()
        ask_end, cum_end = head.index("ask") + 3, head.index("cum") + 3
        for line in lines:
            toks = [t for t in line.split() if t[0].isdigit()]
            if len(toks) != 3 or not line[ask_end:cum_end].strip():
                continue  # the spread's row, or the touch (both sides, no cumulative size)
            side = "ask" if float(toks[0]) >= book.best_ask()[0] else "bid"
            for key, tok in ((side, toks[1]), ("cum", toks[2])):
                sizes[key].add(tok[-1] if tok[-1].isalpha() else "")
            seen.append(float(toks[1].rstrip("kM")) * (1e3 if toks[1].endswith("k") else 1e6 if toks[1].endswith("M") else 1))
        assert max(seen) >= 1e6 and min(seen) < 1e6, seen  # the book straddles k and M
        assert all(len(v) == 1 for v in sizes.values()), sizes


async def test_the_ladder_header_keeps_or_drops_its_unit_by_width_not_by_the_spread():
    # at some widths the unit came and went as the spread's text changed length ("cum  BTC
    # 0.02bp", then "cum 0.1 0.01bp")
    import copy

    demo = _markets()[0]
    market = copy.copy(demo)
    market.book = demo.book.copy()
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    now = _markets()[2]
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        lad = app.w_ladder
        ba = market.book.best_ask()[0]
        far = [p for p in market.book.asks if p < ba * 1.002]  # asks within 20 bp
        seen = {}
        for width in range(34, 56):
            lad.styles.width = width
            await settle(pilot)
            heads = []
            for asks in ([], [(p, 0.0) for p in far]):  # the touch, then a spread of ~20 bp
                book = demo.book.copy()
                book.apply_delta([], asks)
                market.book = book
                market.version += 1
                app._frame()
                heads.append(lad.line_texts()[0])
            has_unit = {" BTC" in h for h in heads}
            assert len(has_unit) == 1, (width, heads)
            seen[width] = has_unit.pop()
        assert set(seen.values()) == {True, False}  # narrow widths drop it, wide keep it
