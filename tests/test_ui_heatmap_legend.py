"""The heatmap's title line: how far back its left edge reaches, even after the clock stepped."""

from __future__ import annotations

import re

from obview.ui.app import ObviewApp
from obview.ui.heatframe import AXIS_WIDTH
from obview.ui.synthetic import StaticManager, build_market
from test_ui_app import settle


async def test_the_time_the_columns_cover_is_never_negative_after_the_clock_stepped_back():
    # the span was last column's time - first's: a clock stepped back an hour read "-3592s"
    m, now = build_market(seed=5, seconds=20)
    back = now - 3600
    for i in range(40):
        m.tick(back + i * 0.25)
    clock = back + 10.0
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): m}, ["demo"]), "demo", "BTC-PERP", clock=lambda: clock)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        title = app.w_heatmap.line_texts()[0]
        span = re.search(r"/col \(([^)]*)\)", title)
        assert span and not span.group(1).startswith("-"), title


async def test_the_title_keeps_whole_parts_the_scale_first_never_a_cut_number():
    """At 140 columns it read 'log 0.0220–7' (of 7.84 BTC), at 100 '…18.8 BT', and the
    colormap's name showed only past 200 columns: whole parts now, by importance."""
    m, now = build_market(seed=5, seconds=20)
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): m}, ["demo"]), "demo", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(240, 48)) as pilot:
        await settle(pilot)
        hm = app.w_heatmap
        lay = hm.layout_
        full = "".join(s.text for s in hm._legend(m, lay, 400)).split()
        assert "inferno" in full and "gap" in full
        seen_scale = []
        for w in range(12, 130, 3):
            title = "".join(s.text for s in hm._legend(m, lay, w))
            assert len(title) == w
            words = title.split()
            assert all(x in full for x in words), (w, title)  # no word cut short
            seen_scale.append(any(x.startswith("p") and "–" in x for x in words))
            if any(x == "log" for x in words):
                assert "BTC" in words  # the scale with its unit, or not at all
            if any(x.startswith("p") and "–" in x for x in words):
                assert "log" in words  # the cut-offs only beside the scale they cut
            if any(x.startswith("(") and x[1:2].isdigit() for x in words):
                assert any(x.endswith("s/col") for x in words)  # the span beside the column time
        assert seen_scale[-1] and not seen_scale[0]


async def test_time_before_the_history_is_drawn_as_no_data_not_as_an_empty_book():
    """The columns left of the first sample were blank: on the dark colormaps the colour of
    an empty book."""
    m, now = build_market(seed=5, seconds=3)
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): m}, ["demo"]), "demo", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        hm = app.w_heatmap
        pad = hm.size.width - AXIS_WIDTH - len(hm._entries)
        assert pad > 20
        for line in hm.line_texts()[1:]:
            assert line[:pad] == "╱" * pad


async def test_the_span_is_the_history_drawn_not_whole_columns_of_time():
    """30 s of samples at a minute a column: the title said "(1m00s)", the newest column's
    whole minute, for half a minute of history."""
    m, now = build_market(seed=5, seconds=30)
    assert m.heatmap.began % 60 == 0  # the samples begin on a minute: one column holds them
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): m}, ["demo"]), "demo", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        spans = {}
        for _ in range(7):
            await pilot.press("z")
            await settle(pilot)
            title = app.w_heatmap.line_texts()[0]
            span = re.search(r" (\S+)s/col \(([^)]*)\)", title)
            assert span, title
            spans[span.group(1)] = span.group(2)
        # 30 s drawn at every zoom (the samples' ticks: 0 to 29.95 s, from 0.25 s before)
        assert spans == {s: "30s" for s in ("0.5", "1", "2.5", "5", "10", "30", "60")}, spans
