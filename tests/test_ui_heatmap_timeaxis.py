"""The heatmap's time axis in the app: its bottom line, each tick under the column of its age,
kept while nothing that places it changes, right when paused and across gaps."""

from __future__ import annotations

import math
import re
from functools import lru_cache

from obview.ui.app import ObviewApp
from obview.ui.heatmap import AXIS_WIDTH
from obview.ui.ladder import Ladder
from obview.ui.synthetic import StaticManager, build_market
from obview.ui.timeaxis import time_ticks
from test_timeaxis import seconds_of
from test_ui_app import ladder_prices, settle


@lru_cache
def _market90():
    return build_market(seed=8, seconds=90, gap=None)


def still_app(market, now) -> ObviewApp:
    """Frames are painted only when a test calls them; ``now`` is a time or a clock."""
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo"])
    clock = now if callable(now) else (lambda: now)
    return ObviewApp(mgr, "demo", "BTC-PERP", clock=clock, frame_interval=3600)


def time_axis(hm) -> str:
    """The time axis line's plot part (left of the price axis)."""
    return hm.line_texts()[-1][: hm.size.width - AXIS_WIDTH]


def ticks_of(axis: str) -> dict[int, str]:
    """Tick cell -> the label left of it."""
    return {m.end() - 1: m.group(1) for m in re.finditer(r"(-[0-9hms]+)┴", axis)}


async def test_each_tick_is_under_the_column_of_its_age_at_every_zoom():
    market, now = _market90()
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): market}, ["demo"]), "demo", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.w_heatmap
        seen = {}
        for zoom in range(6):  # 0.25 s to 10 s a column
            if zoom:
                await pilot.press("z")
                await settle(pilot)
            axis = time_axis(hm)
            plot_w = len(axis)
            ents = [e.col for e in hm._entries]
            first = plot_w - len(ents)
            secs = hm.zoom.seconds_per_column(market.heatmap.cadence)
            assert axis.endswith("now") and hm.line_texts()[-1][plot_w] == "┘"
            assert axis[:first] == "╱" * first  # the pad hatched, as the plot above it
            ticks = ticks_of(axis)
            newest = ents[-1].t
            for x, label in ticks.items():
                assert x - len(label) >= first  # not over the pad
                col = ents[x - first]
                age = seconds_of(label)
                if hm.zoom.k == 1:
                    # a sample a column: the one taken that long before the newest
                    assert newest - col.t == age or math.isclose(newest - col.t, age)
                else:
                    # an aligned period: the one that holds the instant that long before
                    p = secs
                    assert math.floor((newest - age) / p + 1e-9) == math.floor(col.t / p + 1e-9)
            seen[secs] = sorted(ticks.values(), key=seconds_of)
        assert seen[0.25] == ["-5s", "-10s"]
        assert seen[1] == ["-10s", "-20s", "-30s", "-40s", "-50s"]
        assert seen[2.5] == ["-30s", "-1m"]  # 36 columns of 90 s: -1m30s is the oldest, no room
        assert seen[10] == []  # 9 columns: "now" only


async def test_the_plot_keeps_its_rows_beside_the_ladder_s_above_the_time_axis():
    market, now = _market90()
    app = still_app(market, now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app._frame()
        hm, ladder = app.w_heatmap, app.query_one(Ladder)
        prices = ladder_prices(ladder)
        lines = hm.line_texts()
        assert len(lines) == len(prices) + 1 == hm.size.height  # title, rows, time axis
        for y, line in enumerate(lines[1:-1], start=1):
            if "┤" in line:
                assert float(line.split("┤")[1]) == prices[y - 1]
        # the window's lowest row is the time axis's: no price of the plot is lost but that one
        assert "now┘" in lines[-1] and "┤" not in lines[-1]


async def test_the_axis_line_is_made_again_only_when_what_places_its_ticks_changes():
    market, now = build_market(seed=8, seconds=12, gap=None)
    app = still_app(market, now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.w_heatmap
        app._frame()
        built = hm.time_axes_built
        strip = hm._strips[-1]
        app._frame()  # nothing new
        assert hm.time_axes_built == built and hm._strips[-1] is strip
        # the history still filling the width: a new column moves the pad's edge
        assert len(hm._entries) < hm.size.width - AXIS_WIDTH
        market.tick(market.heatmap.next_at)
        app._frame()
        assert hm.time_axes_built == built + 1
        # the plot full: a new column changes nothing the axis shows
        while len(hm._entries) < hm.size.width - AXIS_WIDTH:
            market.tick(market.heatmap.next_at)
            app._frame()
        built, strip = hm.time_axes_built, hm._strips[-1]
        frames = hm.frames_built
        for _ in range(3):
            market.tick(market.heatmap.next_at)
            app._frame()
        assert hm.frames_built == frames + 3  # the plot was repainted three times
        assert hm.time_axes_built == built and hm._strips[-1] is strip  # the axis line kept
        # a theme: made again, in its colours
        await pilot.press("t")
        await settle(pilot)
        assert hm.time_axes_built == built + 1 and hm._strips[-1] is not strip


async def test_paused_the_axis_counts_from_the_paused_moment_and_says_so():
    market, now = build_market(seed=8, seconds=40, gap=None)
    app = still_app(market, now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.w_heatmap
        app._frame()
        live = time_axis(hm)
        assert live.endswith("now")
        await pilot.press("space")
        await settle(pilot)
        paused = time_axis(hm)
        # the same ticks under the same columns; the newest is the paused moment, not now
        assert paused.endswith("paused") and ticks_of(paused) == ticks_of(live)
        frozen = [e.col for e in hm._entries]
        # the feed goes on (10 s more of samples), the paused screen does not
        for _ in range(40):
            market.tick(market.heatmap.next_at)
        app._frame()
        assert time_axis(hm) == paused
        # zoomed while paused: the frozen columns, merged, ages from the newest of them
        await pilot.press("z", "z")
        await settle(pilot)
        ents = [e.col for e in hm._entries]
        assert ents[-1].t == frozen[-1].t  # nothing sampled after the pause is drawn
        axis = time_axis(hm)
        ages = hm.zoom.ages(ents, market.heatmap.cadence)
        expect = time_ticks(ages, 1.0, len(axis), "paused")
        assert {x: lab for x, lab in expect[1:]} == ticks_of(axis) and axis.endswith("paused")
        await pilot.press("space")
        await settle(pilot)
        assert time_axis(hm).endswith("now")
        assert hm._entries[-1].col.t > frozen[-1].t  # resumed: the live columns again


async def test_columns_made_gaps_keep_their_place_on_the_axis():
    """A STALE stretch draws gaps, after the fact too (``unsee_since``): the columns are still
    time, so the ticks do not move."""
    market, now = build_market(seed=8, seconds=40, gap=(0.7, 0.8))
    app = still_app(market, now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.w_heatmap
        app._frame()
        before = time_axis(hm)
        gaps = sum(not e.col.live for e in hm._entries)
        assert gaps and "≈" not in before  # the STALE stretch: gaps, no time missing
        built = hm.time_axes_built
        assert market.heatmap.unsee_since(now - 6.0)  # the last 6 s: the book had stopped
        app._frame()
        assert sum(not e.col.live for e in hm._entries) > gaps
        assert time_axis(hm) == before and hm.time_axes_built == built


async def test_when_the_samples_stop_the_right_edge_says_ended_not_now():
    """A FAILED feed stops its sampler: the newest column stays the moment it failed, and the
    axis said ``now`` under it for as long as the screen stayed up."""
    from obview.model import FeedStatus

    market, t0 = build_market(seed=8, seconds=40, gap=None)
    clock = [t0]
    app = still_app(market, lambda: clock[0])
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.w_heatmap
        app._frame()
        live = time_axis(hm)
        assert live.endswith("now")
        market.set_state(FeedStatus.FAILED, "venue refused the symbol")
        clock[0] = t0 + 1.0  # a second without a sample: still now (a late sample, a busy loop)
        app._frame()
        assert time_axis(hm).endswith("now")
        clock[0] = t0 + 30.0
        app._frame()
        axis = time_axis(hm)
        # the ticks still count back from the newest column, as when paused: it is that moment
        assert axis.endswith("─ended") and ticks_of(axis) == ticks_of(live)
        label = hm._strips[-1]._segments
        assert any(s.text.endswith("ended") and s.style.bold for s in label)  # not the live edge
        # the feed back: samples again, and the edge is now
        market.set_state(FeedStatus.LIVE)
        market.tick(clock[0])
        app._frame()
        assert time_axis(hm).endswith("now")


async def test_a_heatmap_too_short_for_a_plot_row_does_not_say_it_waits_for_a_book():
    market, now = build_market(seed=8, seconds=12, gap=None)
    app = still_app(market, now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.w_heatmap
        app._frame()
        lay = hm.layout_
        assert lay is not None
        hm._rebuild(market, lay, hm.origin, now, 100, 2)
        assert hm._strips[0].text.startswith(" heatmap: no room")
        hm._rebuild(market, None, hm.origin, now, 100, 2)
        assert hm._strips[0].text.startswith(" heatmap: waiting for the first live book")
