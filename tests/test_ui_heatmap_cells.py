"""What the heatmap draws in its cells: the best bid and ask traces, and a flat window's colour."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from obview.market import Market
from obview.model import FeedStatus, Instrument
from obview.ui.colorscale import auto_scale
from obview.ui.heatmap import AXIS_WIDTH, Heatmap
from obview.ui.theming import load_colormaps, load_theme_files
from obview.ui.viewmodel import heat_layout


class _One(App):
    def compose(self) -> ComposeResult:
        yield Heatmap(id="hm")


async def _draw(m: Market, size=(40, 16), step: float | None = None, glyphs: list | None = None):
    _, panels = load_theme_files()
    pal, cmap = panels["obview-dark"], load_colormaps()["inferno"]
    app = _One()
    async with asyncio.timeout(20), app.run_test(size=size) as pilot:
        hm = app.query_one(Heatmap)
        hm.set_colors(pal)
        hm.set_colormap(cmap)
        await pilot.pause()
        step = step or m.heatmap.step * 2  # the app's default: two sampler buckets a row
        lay = heat_layout(step, m.heatmap.step)
        rows = hm.size.height - 1
        origin = int(m.book.mid() // step) - rows // 2
        hm.update_from(m, lay, origin, m.heatmap.columns[-1].t, step)
        await pilot.pause()
        # the last plot column of every row: (upper half's colour, lower half's colour)
        x = hm.size.width - AXIS_WIDTH - 1
        out = []
        for strip in hm._strips[1:-1]:  # the plot rows: below the title, above the time axis
            cells = [(ch, seg.style) for seg in strip for ch in seg.text]
            st = cells[x][1]
            out.append((st.color.triplet.hex, st.bgcolor.triplet.hex))
            if glyphs is not None:
                glyphs.append(cells[x][0])
        return out, pal


def _touch_market() -> Market:
    """A LIVE BTC book on a 0.1 tick, bid 97000.0 and ask 97000.1, one sample taken."""
    m = Market(Instrument("demo", "BTC-PERP", "X", 0.1, 0.001))
    m.book.apply_snapshot(
        [(round(97000 - 0.1 * i, 1), 1.0 + i) for i in range(200)],
        [(round(97000.1 + 0.1 * i, 1), 1.0 + i) for i in range(200)],
    )
    m.set_state(FeedStatus.LIVE)
    m.tick(1000.0)
    return m


def test_a_flat_window_sits_mid_scale_not_on_the_background():
    # one size everywhere (a uniform book, one level in view): it was level 1 of 32, drawn
    # #0d071d on a #0b0e14 panel
    sc = auto_scale([5.0] * 20, levels=32)
    assert 12 <= sc.index(5.0) <= 20


async def test_the_best_bid_trace_shows_when_the_spread_is_inside_one_half_cell():
    # bid 97000.0 and ask 97000.1 fall in one 0.5 half: the ask drew over the bid
    m = _touch_market()
    assert m.heatmap.step == 0.5
    cells, pal = await _draw(m)
    bid, ask = pal["bbo_bid"].lower(), pal["bbo_ask"].lower()
    flat = [c.lower() for pair in cells for c in pair]
    assert bid in flat and ask in flat
    # in one row: the ask in the upper half, the bid in the lower
    assert any(up.lower() == ask and lo.lower() == bid for up, lo in cells)


async def test_rows_beyond_the_sampled_window_read_unknown_not_empty():
    # a coarse grouping reaches past the +-1% the sampler looks at: rows there were drawn as
    # nothing resting while the ladder beside them showed a wall
    m = Market(Instrument("demo", "BTC-PERP", "X", 0.1, 0.001))
    m.book.apply_snapshot(
        [(97000.0 - 50 * i, 5.0) for i in range(120)],  # down to -6%
        [(97000.5 + 50 * i, 5.0) for i in range(120)],
    )
    m.set_state(FeedStatus.LIVE)
    m.tick(1000.0)
    col = m.heatmap.columns[-1]
    assert col.lo is not None and col.hi is not None  # the window the sample looked at
    glyphs: list[str] = []
    await _draw(m, size=(40, 40), step=100.0, glyphs=glyphs)  # 39 rows of 100: about +-2%
    assert glyphs[0] == "╱" and glyphs[-1] == "╱"  # the far rows: unknown, hatched
    assert "▀" in glyphs[len(glyphs) // 2 - 3 : len(glyphs) // 2 + 3]  # near the mid: drawn


def test_a_trade_dot_keeps_the_trace_under_it_and_stands_out_from_it():
    """A dot took the lower half-cell's colour as its background: the ask trace above it was
    gone in every column that traded, and a buy dot on the bid trace was 1.6:1 (a sell dot on
    the ask trace 1.1:1)."""
    from rich.color import Color

    from obview.ui.heatmap import MARK_CONTRAST, _contrast, _standing_out
    from obview.ui.theming import load_theme_files

    _themes, panels = load_theme_files()
    for name, pal in panels.items():
        for side in ("buy", "sell"):
            for under in ("bbo_bid", "bbo_ask", "bid", "ask"):
                fg = _standing_out(pal[side], pal[under])
                rgb = Color.parse(fg).get_truecolor(), Color.parse(pal[under]).get_truecolor()
                assert _contrast(*rgb) >= MARK_CONTRAST - 0.05, (name, side, under, fg)


async def test_a_trade_at_the_touch_keeps_the_trace_visible_under_its_dot():
    from obview.model import Side, Trade

    m = _touch_market()
    m.add_trade(Trade("demo", "BTC-PERP", 97000.1, 5.0, Side.BUY, "1", None, 1000.1))
    m.tick(1000.25)
    glyphs: list[str] = []
    cells, pal = await _draw(m, glyphs=glyphs)
    ask = pal["bbo_ask"].lower()
    dots = [(g, fg, bg) for g, (fg, bg) in zip(glyphs, cells, strict=True) if g != "▀"]
    assert dots, glyphs
    # the touch's cell: the dot over the ask trace (it took the lower half, the bid's)
    assert any(bg.lower() == ask for _g, _fg, bg in dots), dots


def test_a_price_label_too_long_for_the_axis_loses_decimals_then_goes_compact_never_digits():
    from obview.ui.heatframe import _fitted

    assert _fitted(97005.5, 1, 9) == "97005.5"
    assert _fitted(0.0000123456, 10, 9) == "0.0000123"  # decimals dropped: the value rounded
    assert _fitted(1234567.25, 2, 9) == "1234567.2"
    # 98710000000000 read "9871000000": another number; compact keeps its size
    assert _fitted(98710000000000.0, 0, 9) == "98.7T"
    assert _fitted(98710000000000.0, 0, 10) == "98.7T"
    for price in (98710000000000.0, 123456789012.5, 0.000001234567):
        for width in (5, 9, 10):
            assert len(_fitted(price, 6, width)) <= width


async def test_the_heatmap_axis_never_shows_a_price_cut_to_its_width():
    import re

    from obview.ui.app import ObviewApp
    from obview.ui.heatmap import AXIS_WIDTH
    from obview.ui.synthetic import StaticManager, build_market

    market, now = build_market(seed=3, seconds=5, price=98_710_000_000_000.0, gap=None)
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): market}, ["demo"]), "demo", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.3)
        hm = app.w_heatmap
        cells = [line[hm.size.width - AXIS_WIDTH :] for line in hm.line_texts()[1:-1]]
        labels = [m.group(1) for c in cells if (m := re.search(r"[┤◀]\s*(\S+)", c))]
        assert labels, cells
        # each label is a whole number of its own: compact, or a price with all its digits
        assert all(re.fullmatch(r"\d+(\.\d+)?[kMBT]|\d{14,}(\.\d+)?", x) for x in labels), labels
