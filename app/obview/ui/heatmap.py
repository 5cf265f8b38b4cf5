"""Liquidity heatmap: time columns x price buckets, half-block cells, BBO traces, trade marks.

Each text cell shows two price buckets (``▀`` with the upper bucket as foreground and the
lower as background). Columns sampled while the feed was not LIVE are drawn as hatched gaps:
the history never pretends to know a book it did not see.
"""

from __future__ import annotations

import math

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from obview.market import HeatmapColumn, Market
from obview.ui.lines import LineWidget
from obview.ui.theming import COLORMAP_LEVELS, Colormap
from obview.ui.viewmodel import (
    ColorScale,
    auto_scale,
    compact,
    decimals_for,
    format_price,
    mark_weight,
    window_origin,
)

ASK = 64  # code offset for buckets above the column's mid (tinted colormaps)
BBO_BID = 200
BBO_ASK = 201
GAP = -1
NONE = -2
MARK_GLYPHS = "·•●⬤"
AXIS_WIDTH = 11


class Heatmap(LineWidget):
    DEFAULT_CSS = """
    Heatmap { width: 1fr; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.colormap: Colormap | None = None
        self.low_pct = 5.0
        self.high_pct = 99.0
        self.origin: int | None = None
        self._window_key: tuple | None = None
        self._col_cache: dict[int, tuple[tuple, list[float]]] = {}
        self._last_key: tuple | None = None
        self._cell_styles: dict[tuple[int, int], Style] = {}
        self._mark_styles: dict[tuple[str, int], Style] = {}
        self.scale: ColorScale | None = None
        self.bucket: float | None = None
        self.frames_built = 0

    def set_colors(self, colors) -> None:
        self._cell_styles = {}
        self._mark_styles = {}
        self._last_key = None
        super().set_colors(colors)

    def set_colormap(self, cmap: Colormap) -> None:
        self.colormap = cmap
        self._cell_styles = {}
        self._mark_styles = {}
        self._last_key = None

    # -- colours ------------------------------------------------------------------------------
    def _color(self, code: int) -> str:
        c = self.pal
        cm = self.colormap
        if code == BBO_BID:
            return c["bbo_bid"]
        if code == BBO_ASK:
            return c["bbo_ask"]
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
        return st

    # -- model -> grid ------------------------------------------------------------------------
    def update_from(self, market: Market, group_step: float, now: float) -> bool:
        """Rebuild when a column arrived or the view changed; returns True when repainted."""
        if self.pal is None or self.colormap is None:
            return False
        w, h = self.size.width, self.size.height
        sampler = market.heatmap
        cols = sampler.columns
        last = cols[-1] if cols else None
        key = (
            w,
            h,
            len(cols),
            id(last),
            group_step,
            self.low_pct,
            self.high_pct,
            sampler.step,
            market.live,
        )
        if key == self._last_key:
            return False
        self._last_key = key
        self._rebuild(market, group_step, w, h)
        self.frames_built += 1
        self.refresh()
        return True

    def _aggregate(self, col: HeatmapColumn, origin: int, k: int, rows: int) -> list[float]:
        ck = (origin, k, rows)
        hit = self._col_cache.get(id(col))
        if hit is not None and hit[0] == ck:
            return hit[1]
        s = col.sizes
        n = len(s)
        off = col.start
        vals = [0.0] * rows
        for j in range(rows):
            a = (origin + j) * k - off
            if a >= n or a + k <= 0:
                continue
            if k == 1:
                vals[j] = s[a]
            else:
                vals[j] = sum(s[max(a, 0) : min(a + k, n)])
        self._col_cache[id(col)] = (ck, vals)
        return vals

    def _rebuild(self, market: Market, group_step: float, w: int, h: int) -> None:
        c = self.pal
        bg = c.style(bg=c.background)
        step = market.heatmap.step
        plot_w = max(0, w - AXIS_WIDTH)
        rows = max(0, h - 1)
        half = rows * 2
        if step is None or plot_w <= 0 or rows <= 0:
            msg = " heatmap: waiting for the first live book…"
            self._strips = [
                Strip([Segment(msg, c.style("muted", c.background))]).adjust_cell_length(w, bg)
            ]
            self._strips += [Strip.blank(w, bg) for _ in range(max(0, h - 1))]
            return
        k = max(1, int(round(group_step / step)))
        bstep = k * step
        self.bucket = bstep
        cols = list(market.heatmap.columns)[-plot_w:]
        mid = market.book.mid() if market.live else None
        if mid is None:
            for col in reversed(cols):
                if col.live and col.best_bid and col.best_ask:
                    mid = (col.best_bid + col.best_ask) / 2
                    break
        wkey = (k, half)
        if wkey != self._window_key:
            self.origin = None
            self._window_key = wkey
            self._col_cache.clear()
        if mid is not None:
            self.origin = window_origin(int(math.floor(mid / bstep)), self.origin, half)
        origin = self.origin if self.origin is not None else 0

        live_ids = {id(col) for col in cols}
        self._col_cache = {i: v for i, v in self._col_cache.items() if i in live_ids}
        agg: list[list[float] | None] = [
            self._aggregate(col, origin, k, half) if col.live else None for col in cols
        ]
        flat = [v for a in agg if a is not None for v in a if v > 0]
        self.scale = scale = auto_scale(flat, self.low_pct, self.high_pct, COLORMAP_LEVELS)

        # trade marks: strongest per text cell, weight vs the window's largest
        marks: list[dict[int, tuple[float, bool]]] = []
        vmax = 0.0
        for col in cols:
            m: dict[int, tuple[float, bool]] = {}
            for is_buy, book_side in ((True, col.buys), (False, col.sells)):
                for b, vol in book_side.items():
                    j = b // k - origin
                    if 0 <= j < half:
                        y = (half - 1 - j) // 2
                        prev = m.get(y)
                        total = vol + (prev[0] if prev and prev[1] is is_buy else 0.0)
                        if prev is None or total > prev[0]:
                            m[y] = (total, is_buy)
            for v, _ in m.values():
                vmax = max(vmax, v)
            marks.append(m)

        grid: list[list[int]] = []
        for col, a in zip(cols, agg, strict=True):
            if a is None:
                grid.append([GAP] * half)
                continue
            split = None
            if self.colormap.tinted and col.best_bid and col.best_ask:
                split = int(math.floor((col.best_bid + col.best_ask) / 2 / bstep)) - origin
            codes = [scale.index(v) for v in a]
            if split is not None:
                for j in range(max(0, split + 1), half):
                    codes[j] += ASK
            if col.best_bid:
                j = int(math.floor(col.best_bid / bstep)) - origin
                if 0 <= j < half:
                    codes[j] = BBO_BID
            if col.best_ask:
                j = int(math.floor(col.best_ask / bstep)) - origin
                if 0 <= j < half:
                    codes[j] = BBO_ASK
            grid.append(codes)
        pad = plot_w - len(cols)

        strips: list[Strip] = [self._legend(market, bstep, w)]
        gap_style = c.style("gap", c.background)
        pad_seg = Segment(" " * pad, bg) if pad > 0 else None
        dec = decimals_for(bstep)
        last_price = market.last_price
        lp_row = None
        if last_price is not None:
            j = int(math.floor(last_price / bstep)) - origin
            if 0 <= j < half:
                lp_row = (half - 1 - j) // 2
        axis_style = c.style("axis", c.background)
        lp_style = c.style(c.background, "spread", bold=True)
        buy_c, sell_c = c["buy"], c["sell"]
        for y in range(rows):
            jt = half - 1 - 2 * y
            jb = jt - 1
            segs: list[Segment] = [pad_seg] if pad_seg else []
            run_text: list[str] = []
            run_style: Style | None = None
            for x, codes in enumerate(grid):
                up, lo = codes[jt], codes[jb]
                mk = marks[x].get(y)
                if up == GAP:
                    ch, st = "╱", gap_style
                elif mk is not None:
                    ch = MARK_GLYPHS[mark_weight(mk[0], vmax, len(MARK_GLYPHS))]
                    st = self._mark_style(buy_c if mk[1] else sell_c, lo)
                else:
                    ch, st = "▀", self._cell_style(up, lo)
                if st is run_style:
                    run_text.append(ch)
                else:
                    if run_text:
                        segs.append(Segment("".join(run_text), run_style))
                    run_text, run_style = [ch], st
            if run_text:
                segs.append(Segment("".join(run_text), run_style))
            # price axis: the boundary between this row's two buckets
            if y == lp_row:
                label = "◀" + format_price(last_price, dec).rjust(AXIS_WIDTH - 1)
                segs.append(Segment(label[:AXIS_WIDTH], lp_style))
            elif y % 3 == 1:
                p = (origin + jt) * bstep
                segs.append(
                    Segment(
                        ("┤" + format_price(p, dec).rjust(AXIS_WIDTH - 1))[:AXIS_WIDTH], axis_style
                    )
                )
            else:
                segs.append(Segment("│".ljust(AXIS_WIDTH), axis_style))
            strips.append(Strip(segs).adjust_cell_length(w, bg))
        self._strips = strips

    def _mark_style(self, color: str, lower: int) -> Style:
        k = (color, lower)
        st = self._mark_styles.get(k)
        if st is None:
            st = Style(color=color, bgcolor=self._color(lower), bold=True)
            self._mark_styles[k] = st
        return st

    def _legend(self, market: Market, bstep: float, w: int) -> Strip:
        c = self.pal
        segs = [Segment(" HEATMAP ", c.style("axis", c.surface, bold=True))]
        unit = market.instrument.base
        sc = self.scale
        txt = f" bucket {format_price(bstep, decimals_for(bstep))}"
        if sc is not None:
            txt += f"  log {compact(sc.lo)}–{compact(sc.hi)} {unit} p{self.low_pct:g}–{self.high_pct:g} "
        segs.append(Segment(txt, c.style("muted", c.surface)))
        cm = self.colormap
        ramp = cm.bid[1::4] if not cm.tinted else cm.bid[1::8] + cm.ask[1::8]
        for col in ramp:
            segs.append(Segment("█", c.style(col, c.surface)))
        segs.append(Segment(f" {cm.name}  ", c.style("muted", c.surface)))
        segs.append(Segment("╱╱", c.style("gap", c.surface)))
        segs.append(Segment(" gap ", c.style("muted", c.surface)))
        return Strip(segs).adjust_cell_length(w, c.style(bg=c.surface))
