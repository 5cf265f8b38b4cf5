"""The heatmap's title line: how far back its left edge reaches, even after the clock stepped."""

from __future__ import annotations

import re

from obview.ui.app import ObviewApp
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
