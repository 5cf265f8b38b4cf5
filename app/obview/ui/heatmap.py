"""Liquidity heatmap: time columns x price buckets, half-block cells, BBO traces, trade marks.

Rows are price buckets. When the grouping is a whole multiple of the sampler's bucket, one text
row is one ladder row (the same bucket, the same window), so the heatmap and the ladder read
across on one price axis: a DOM beside its history. The half-blocks then show the lower and
upper half of the bucket when the grouping splits evenly into sampler buckets, and the whole
bucket twice otherwise (the axis stays shared; the BBO traces still use the halves: best ask in
the upper, best bid in the lower half). A finer grouping than the sampler can draw leaves the
heatmap on its own grid (two sampler buckets per row), and the legend says it is unaligned.

Columns sampled while the feed was not LIVE are drawn as hatched gaps: the history never
pretends to know a book it did not see. So are the rows of a live column beyond the window its
sample looked at (a coarse grouping reaches past it): unknown there, not empty.

The bottom line is the time axis (ui/timeaxis.py): round ages under the columns of that age,
right-aligned to the newest column. It takes the price window's lowest row, so each plot row
stays beside the ladder row of its bucket.

Cost: each column's colour codes and cells are cached per (window, scale); a new column costs
one column, and the rows are re-joined from cached cells. The colour scale (auto-contrast) is
re-estimated at most twice a second and only replaces the current one when a cut-off moved by
more than a few per cent, so the cache survives ordinary frames. The time axis line is kept
while what places its ticks (width, seconds a column, the columns' ages, pause, theme) holds.
"""

from __future__ import annotations

import math

from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from obview.market import Market
from obview.sampler import HeatmapColumn
from obview.ui.colorscale import ColorScale, auto_scale, mark_weight
from obview.ui.heatframe import AXIS_WIDTH, HeatmapFrame
from obview.ui.lines import LineWidget, release_strips
from obview.ui.theming import COLORMAP_LEVELS, Colormap
from obview.ui.timeaxis import NOW
from obview.ui.timezoom import TimeZoom
from obview.ui.viewmodel import HeatLayout, bucket_index

ASK = 64  # code offset for buckets above the column's mid (tinted colormaps)
BBO_BID = 200
BBO_ASK = 201
UNSEEN = 202  # a half-row outside the sampled window: not known, drawn as such (not "empty")
MARK_GLYPHS = "·•●⬤"
SCALE_EVERY = 0.5  # s between auto-contrast estimates
SCALE_TOLERANCE = 0.05  # keep the cached cells unless a cut-off moved more than this (ratio)


class _Col:
    """Cache of one sampler column for the current window: sizes per half-row, then codes
    and cells for the current scale generation."""

    __slots__ = ("col", "vals", "gen", "cells", "marks", "seen")

    def __init__(
        self,
        col: HeatmapColumn,
        vals: list[float] | None,
        marks: dict,
        seen: tuple[int, int] | None = None,
    ) -> None:
        self.col = col
        self.vals = vals  # None for a gap column
        self.seen = seen  # the half-rows [a, b) inside the sampled window (None: all of them)
        self.marks = marks  # row -> (volume, is_buy)
        self.gen = -1
        # one glyph per text row (a str) and its style: two objects per column, not one per cell
        self.cells: tuple[str, list[Style]] = ("", [])


class Heatmap(HeatmapFrame, LineWidget):
    DEFAULT_CSS = """
    Heatmap { width: 1fr; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.colormap: Colormap | None = None
        self.low_pct = 5.0
        self.high_pct = 99.0
        self.layout_: HeatLayout | None = None
        self.origin: int | None = None
        self.group: float | None = None
        self._view_key: tuple | None = None
        self._cache: dict[int, _Col] = {}
        self._last_key: tuple | None = None
        self._axis_key: tuple | None = None
        self._entries: list[_Col] = []
        self._plot: list[list[Segment]] = []
        self._cell_styles: dict[tuple[int, int], Style] = {}
        self._mark_styles: dict[tuple[str, int], Style] = {}
        self.scale: ColorScale | None = None
        self.mark_max = 0.0
        self._scale_at = -1e18
        self._scale_pct: tuple[float, float] | None = None
        self._gen = 0
        self.bucket: float | None = None
        self.frames_built = 0
        self.axis_moves = 0  # repaints of only the last-price marker's rows, for tests
        self._lp_row: int | None = None
        self.columns_coded = 0  # how many columns had their cells (re)computed, for tests
        self.zoom = TimeZoom()
        #: the screen is paused: the time axis's newest column is the paused moment, not now
        self.paused = False
        self._time_key: tuple | None = None
        self._time_strip: Strip | None = None
        self.time_axes_built = 0  # how many time axis lines were made, for tests

    def set_colors(self, colors) -> None:
        self._restyle()
        self._time_key = None
        super().set_colors(colors)

    def set_colormap(self, cmap: Colormap) -> None:
        self.colormap = cmap
        self._restyle()

    def _restyle(self) -> None:
        self._cell_styles = {}
        self._mark_styles = {}
        self._last_key = None
        self._gen += 1

    # -- colours ------------------------------------------------------------------------------
    def _color(self, code: int) -> str:
        c = self.pal
        cm = self.colormap
        if code == BBO_BID:
            return c["bbo_bid"]
        if code == BBO_ASK:
            return c["bbo_ask"]
        if code == UNSEEN:
            return c["gap"]
        if code < 0:
            return c.background
        if code >= ASK:
            return cm.ask[code - ASK]
        return cm.bid[code]

    def _cell_style(self, upper: int, lower: int) -> Style:
        k = (upper, lower)
        st = self._cell_styles.get(k)
        if st is None:
            st = Style(color=self._color(upper), bgcolor=self._color(lower))
            self._cell_styles[k] = st
            self._note_style(st)
        return st

    def _mark_style(self, color: str, under: int) -> Style:
        k = (color, under)
        st = self._mark_styles.get(k)
        if st is None:
            bg = self._color(under)
            # a buy dot on the bid trace, a sell dot on the ask trace, a dot on a bright level:
            # the same hue or brightness hid it (1.1-1.6:1); its own hue, darkened or lightened
            # until it stands out, keeps the side readable
            st = Style(color=_standing_out(color, bg), bgcolor=bg, bold=True)
            self._mark_styles[k] = st
            self._note_style(st)
        return st

    # -- model -> rows ------------------------------------------------------------------------
    def update_from(
        self,
        market: Market,
        layout: HeatLayout | None,
        origin: int,
        now: float,
        group: float | None = None,
    ) -> bool:
        """Repaint when a column arrived or the view changed; returns True when repainted.

        ``origin`` is the bucket of the price window's lowest row (the ladder's bottom line),
        where the time axis goes: the plot shows the window's rows above it. ``layout`` None:
        the sampler has no bucket yet (no live book seen)."""
        if self.pal is None or self.colormap is None:
            return False
        origin += 1
        w, h = self.size.width, self.size.height
        cols = market.heatmap.columns
        last = cols[-1] if cols else None
        newest = self._newest_label(market, now)
        view = (w, h, len(cols), id(last), layout, origin, group, self.low_pct, self.high_pct, self.zoom.k, newest)
        if view == self._last_key and self._scale_due(now) and layout is not None:
            # a periodic contrast check: repaint only if the scale really moved
            gen = self._gen
            self._update_scale(self._entries, now)
            if gen != self._gen:
                self._last_key = None
        if view != self._last_key:
            self._last_key = view
            self.layout_, self.origin, self.group = layout, origin, group
            self._rebuild(market, layout, origin, now, w, h, newest)
            self._axis_key = None
        elif layout is None:
            return False
        axis_key = (view, self._gen, market.last_price)
        if axis_key == self._axis_key:
            return False
        only_axis = self._axis_key is not None and self._axis_key[:2] == axis_key[:2]
        self._axis_key = axis_key
        if only_axis and self._plot and len(self._strips) == len(self._plot) + 2:
            # only the last price moved: its marker leaves one row of the axis for another;
            # the plot (most of the screen) is not written again
            self._move_marker(market, layout, origin, w)
            self.axis_moves += 1
            return True
        self._assemble(market, layout, origin, w, h)
        self.frames_built += 1
        self.refresh()
        return True

    def _scale_due(self, now: float) -> bool:
        return now - self._scale_at >= SCALE_EVERY or now < self._scale_at

    def _column(self, col: HeatmapColumn, lay: HeatLayout, origin: int, rows: int) -> _Col:
        """Sizes per half-row (bottom-up) and trade volume per row for one column."""
        hit = self._cache.get(id(col))
        if hit is not None and hit.col is col:
            return hit
        n = lay.k * lay.sub  # sampler buckets per row
        # each side's volume per row summed over the row's buckets first, then the larger
        # side marks the row (a sell split over two buckets lost to a buy larger than either)
        per_side: list[dict[int, float]] = [{}, {}]
        for side, traded in ((0, col.buys), (1, col.sells)):
            acc = per_side[side]
            for b, vol in traded.items():
                j = b // n - origin
                if 0 <= j < rows:
                    y = rows - 1 - j
                    acc[y] = acc.get(y, 0.0) + vol
        buys, sells = per_side
        marks: dict[int, tuple[float, bool]] = {y: (v, True) for y, v in buys.items()}
        for y, v in sells.items():
            if v > buys.get(y, 0.0):
                marks[y] = (v, False)
        vals: list[float] | None = None
        seen: tuple[int, int] | None = None
        if col.live:
            s = col.sizes
            ns = len(s)
            k = lay.k
            halves = rows * lay.sub
            base = origin * lay.sub * k - col.start  # sampler index of the lowest half-row
            if col.lo is not None and col.hi is not None:
                # half-row i covers sampler buckets [base + i*k, base + (i+1)*k): known only
                # when all of them lie in the window the sample looked at (a coarse grouping
                # reaches past it; a wall there was drawn as nothing resting)
                a = -((base + col.start - col.lo) // k)  # ceil((lo - start - base) / k)
                b = (col.hi - col.start - base) // k
                seen = (max(0, a), min(halves, b))
            if k == 1:
                a, b = max(0, base), min(ns, base + halves)
                vals = [0.0] * halves
                if a < b:
                    vals[a - base : b - base] = s[a:b]
            else:
                vals = [0.0] * halves
                for i in range(halves):
                    a = base + i * k
                    if a + k <= 0 or a >= ns:
                        continue
                    vals[i] = sum(s[max(a, 0) : min(a + k, ns)])
        entry = _Col(col, vals, marks, seen)
        self._cache[id(col)] = entry
        return entry

    def _update_scale(self, entries: list[_Col], now: float) -> None:
        pct = (self.low_pct, self.high_pct)
        if self.scale is not None and pct == self._scale_pct and not self._scale_due(now):
            return
        self._scale_at = now
        flat = [v for e in entries if e.vals is not None for v in e.vals if v > 0]
        new = auto_scale(flat, self.low_pct, self.high_pct, COLORMAP_LEVELS)
        vmax = max((m[0] for e in entries for m in e.marks.values()), default=0.0)
        moved = not new.close_to(self.scale, SCALE_TOLERANCE) or pct != self._scale_pct
        marks_moved = (vmax > 0) != (self.mark_max > 0) or (
            vmax > 0 and abs(math.log(vmax / self.mark_max)) > 0.2
        )
        if moved:
            self.scale = new
            self._scale_pct = pct
        if marks_moved:
            self.mark_max = vmax
        if moved or marks_moved:
            self._gen += 1

    def _cells(self, e: _Col, lay: HeatLayout, origin: int, rows: int, gap: Style) -> None:
        """Colour codes per half-row -> one (glyph, style) per text row, top row first."""
        if e.gen == self._gen:
            return
        e.gen = self._gen
        self.columns_coded += 1
        if e.vals is None:
            e.cells = ("╱" * rows, [gap] * rows)
            return
        col = e.col
        codes = self.scale.indices(e.vals)
        sub = lay.sub
        half = lay.row_step / sub
        if self.colormap.tinted and col.best_bid and col.best_ask:
            split = bucket_index((col.best_bid + col.best_ask) / 2, half) - origin * sub
            for i in range(max(0, split + 1), len(codes)):
                if codes[i]:
                    codes[i] += ASK
        if e.seen is not None:
            a, b = e.seen
            n = len(codes)
            codes[:a] = [UNSEEN] * min(a, n)
            codes[b:] = [UNSEEN] * max(0, n - b)
        if sub == 1:
            codes = [x for x in codes for _ in (0, 1)]  # both halves show the whole bucket
        # BBO traces; with whole-bucket cells the ask takes the upper half, the bid the lower,
        # and so they do when both fall in one half-row (a spread inside a half: the ask drew
        # over the bid, whose trace was gone on most BTC columns)
        ib = ia = None
        if col.best_bid:
            ib = bucket_index(col.best_bid, half) - origin * sub
            ib = ib if sub == 2 else 2 * ib
        if col.best_ask:
            ia = bucket_index(col.best_ask, half) - origin * sub
            ia = ia if sub == 2 else 2 * ia + 1
        if ib is not None and ib == ia:
            ib, ia = ib - ib % 2, ib - ib % 2 + 1
        if ib is not None and 0 <= ib < len(codes):
            codes[ib] = BBO_BID
        if ia is not None and 0 <= ia < len(codes):
            codes[ia] = BBO_ASK
        marks = e.marks
        vmax = self.mark_max
        buy_c, sell_c = self.pal["buy"], self.pal["sell"]
        glyphs: list[str] = []
        styles: list[Style] = []
        for y in range(rows):
            j = rows - 1 - y
            up, lo = codes[2 * j + 1], codes[2 * j]
            mk = marks.get(y)
            if mk is not None:
                glyphs.append(MARK_GLYPHS[mark_weight(mk[0], vmax, len(MARK_GLYPHS))])
                # under the dot, the half that holds a bid/ask trace if one does: the trace
                # stays visible through the trades (they mostly print at the touch)
                under = up if up in (BBO_ASK, BBO_BID) else lo
                styles.append(self._mark_style(buy_c if mk[1] else sell_c, under))
            elif up == UNSEEN and lo == UNSEEN:
                # outside what the sample looked at: unknown, hatched as a gap is, not empty
                glyphs.append("╱")
                styles.append(gap)
            else:
                glyphs.append("▀")
                styles.append(self._cell_style(up, lo))
        e.cells = ("".join(glyphs), styles)

    def _rebuild(
        self,
        market: Market,
        lay: HeatLayout | None,
        origin: int,
        now: float,
        w: int,
        h: int,
        newest: str = NOW,
    ) -> None:
        c = self.pal
        bg = c.style(bg=c.background)
        plot_w = max(0, w - AXIS_WIDTH)
        rows = max(0, h - 2)  # below the title line, above the time axis
        if lay is None or plot_w <= 0 or rows <= 0:
            # no bucket yet, or no room for one row of plot under the title and above the axis
            msg = " heatmap: waiting for the first live book…" if lay is None else " heatmap: no room"
            self._strips = [
                Strip([Segment(msg, c.style("muted", c.background))]).adjust_cell_length(w, bg)
            ]
            self._strips += [Strip.blank(w, bg) for _ in range(max(0, h - 1))]
            self._plot = []
            self._entries = []
            return
        self.bucket = lay.row_step
        view = (lay, origin, rows)
        if view != self._view_key:
            self._view_key = view
            self._cache.clear()
            self.scale = None  # a new window: estimate the contrast at once
        cols = self.zoom.view(market.heatmap, plot_w)
        entries = [self._column(col, lay, origin, rows) for col in cols]
        keep = {id(e.col) for e in entries}
        if len(self._cache) > len(keep):
            self._cache = {i: e for i, e in self._cache.items() if i in keep}
        self._update_scale(entries, now)
        gap_style = c.style("gap", c.background)
        for e in entries:
            self._cells(e, lay, origin, rows, gap_style)

        self._entries = entries
        pad = plot_w - len(entries)
        # before the history reaches the left edge: no data, drawn as a gap is (blank, it was
        # the colour of an empty book on the dark colormaps)
        pad_seg = Segment("╱" * pad, gap_style) if pad > 0 else None
        cells = [e.cells for e in entries]
        plot: list[list[Segment]] = []
        for y in range(rows):
            segs: list[Segment] = [pad_seg] if pad_seg else []
            run_text: list[str] = []
            run_style: Style | None = None
            for glyphs, styles in cells:
                ch, st = glyphs[y], styles[y]
                if st is run_style:
                    run_text.append(ch)
                else:
                    if run_text:
                        segs.append(Segment("".join(run_text), run_style))
                    run_text, run_style = [ch], st
            if run_text:
                segs.append(Segment("".join(run_text), run_style))
            plot.append(segs)
        self._plot = plot
        self._time_line(market, cols, plot_w, w, newest)

    def _assemble(
        self, market: Market, lay: HeatLayout | None, origin: int, w: int, h: int
    ) -> None:
        """Legend + cached plot rows + the price axis (which follows the last price)."""
        if lay is None or not self._plot:
            return  # the waiting message is already in place
        lp_row = self._lp_row = self._marker_row(market, lay, origin)
        strips: list[Strip] = [self._legend(market, lay, w)]
        strips += [
            Strip([*plot, self._axis(market, lay, origin, y, lp_row)], w)
            for y, plot in enumerate(self._plot)
        ]
        strips.append(self._time_strip)
        release_strips(self._strips, strips)
        self._strips = strips


#: the contrast a trade dot keeps against the cell under it
MARK_CONTRAST = 2.5


def _luminance(rgb: tuple[int, int, int]) -> float:
    def lin(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    r, g, b = rgb
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _standing_out(color: str, bg: str) -> str:
    """``color``, or the nearest shade of it (towards black on a light cell, white on a dark
    one) with at least ``MARK_CONTRAST`` against ``bg``."""
    try:
        fg, back = Color.parse(color).get_truecolor(), Color.parse(bg).get_truecolor()
    except Exception:  # a colour Rich cannot resolve to RGB: as it is
        return color
    if _contrast(fg, back) >= MARK_CONTRAST:
        return color
    to = (0, 0, 0) if _luminance(back) > 0.18 else (255, 255, 255)
    best = fg
    for k in range(1, 11):
        t = k / 10
        best = tuple(round(f + (e - f) * t) for f, e in zip(fg, to, strict=True))  # type: ignore[assignment]
        if _contrast(best, back) >= MARK_CONTRAST:
            break
    return "#{:02x}{:02x}{:02x}".format(*best)
