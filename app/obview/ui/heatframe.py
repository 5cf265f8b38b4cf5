"""The heatmap's frame: its title line (scale, time span, colormap), its price axis, with the
last-price marker that moves alone, and its time axis. A mixin of ``Heatmap``, whose state it
reads."""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip

from obview.market import Market
from obview.sampler import HeatmapColumn
from obview.ui.lines import release_strips
from obview.ui.numbers import compact, decimals_for, format_price, format_span
from obview.ui.timeaxis import BASE, BREAK, ENDED, NOW, PAD, PAUSED, TICK, axis_text, time_ticks
from obview.ui.viewmodel import HeatLayout, bucket_index

AXIS_WIDTH = 11
LABEL_EVERY = 5  # axis label on buckets whose index is a multiple of this


#: the newest sample older than this (s) is not "now": the feed's sampling stopped (a FAILED
#: feed, a closed one)
STOPPED_AFTER = 2.0


def _fitted(price: float, decimals: int, width: int) -> str:
    """``price`` in ``width`` cells: with fewer decimals if it must, else compact (``98.7T``);
    cut to the width, a label read as another number (98710000000000 as ``9871000000``)."""
    for d in range(decimals, -1, -1):
        text = format_price(price, d)
        if len(text) <= width:
            return text
    return compact(price)[:width]


class HeatmapFrame:
    """Title line, price axis and time axis of ``Heatmap``."""

    def _newest_label(self, market: Market, now: float) -> str:
        """The right edge's label: ``paused``; ``ended`` once no sample has come for
        ``STOPPED_AFTER`` seconds (a feed that FAILED stops the columns: the edge read ``now``
        under a book from minutes before, and the ticks count back from that moment, not from
        now; the status line gives the book's age); else ``now``."""
        if self.paused:
            return PAUSED
        cols = market.heatmap.columns
        if cols and now - cols[-1].t > max(STOPPED_AFTER, 4 * market.heatmap.cadence):
            return ENDED
        return NOW

    def _marker_row(self, market: Market, lay: HeatLayout, origin: int) -> int | None:
        """The plot row of the last price, or None when it is off the window."""
        last_price = market.last_price
        if last_price is None:
            return None
        rows = len(self._plot)
        j = bucket_index(last_price, lay.row_step) - origin
        return rows - 1 - j if 0 <= j < rows else None

    def _axis(
        self, market: Market, lay: HeatLayout, origin: int, y: int, lp_row: int | None
    ) -> Segment:
        """Plot row ``y``'s axis cell: the last price marker, a label on round buckets (a row
        is the bucket [p, p + step)), or the bare axis line."""
        c = self.pal
        b = origin + len(self._plot) - 1 - y
        if y == lp_row:
            dec = max(decimals_for(lay.row_step), decimals_for(market.instrument.tick))
            label = "◀" + _fitted(market.last_price, dec, AXIS_WIDTH - 1).rjust(AXIS_WIDTH - 1)
            return Segment(label, c.style(c.background, "spread", bold=True))
        if b % LABEL_EVERY == 0:
            label = "┤" + _fitted(b * lay.row_step, decimals_for(lay.row_step), AXIS_WIDTH - 2).rjust(
                AXIS_WIDTH - 2
            )
            return Segment(label + " ", c.style("axis", c.background))
        return Segment("│".ljust(AXIS_WIDTH), c.style("axis", c.background))

    def _move_marker(self, market: Market, lay: HeatLayout, origin: int, w: int) -> None:
        """Redraw the rows the last-price marker left and reached, and repaint only their
        axis cells."""
        old, new = self._lp_row, self._marker_row(market, lay, origin)
        self._lp_row = new
        x = max(0, w - AXIS_WIDTH)
        strips = list(self._strips)
        for y in {old, new} - {None}:
            strips[y + 1] = Strip([*self._plot[y], self._axis(market, lay, origin, y, new)], w)
        release_strips(self._strips, strips)
        self._strips = strips
        regions = [Region(x, y + 1, w - x, 1) for y in {old, new} - {None}]
        if regions:
            self.refresh(*regions)

    def _time_line(
        self, market: Market, cols: list[HeatmapColumn], plot_w: int, w: int, newest: str = NOW
    ) -> None:
        """The time axis line under the plot (``_time_strip``): its ticks, the corner where it
        meets the price axis, and the seconds a column under the price labels. Made again only
        when what places the ticks changed (a new column moves nothing once the plot is full:
        the ticks are ages, and the columns of those ages stay where they are)."""
        cadence = market.heatmap.cadence
        secs = self.zoom.seconds_per_column(cadence)
        ages = self.zoom.ages(cols, cadence)
        shape = len(ages) if isinstance(ages, range) else tuple(ages)
        key = (w, plot_w, secs, shape, newest)
        if key == self._time_key and self._time_strip is not None:
            return
        self._time_key = key
        self.time_axes_built += 1
        c = self.pal
        bg = c.background
        ticks = time_ticks(ages, secs, plot_w, newest)
        text = axis_text(ages, plot_w, ticks)
        styles = {
            PAD: c.style("gap", bg),
            BASE: c.style("muted", bg),
            TICK: c.style("muted", bg),
            BREAK: c.style("muted", bg),
        }
        label = c.style("axis", bg)
        segs: list[Segment] = []
        run: list[str] = []
        run_style: Style | None = None
        # the newest column's label: bold unless it is now (paused or ended: that moment)
        last = plot_w - len(newest) if ticks and ticks[0][1] == newest else plot_w
        for x, ch in enumerate(text):
            st = styles.get(ch) or (c.style("axis", bg, bold=newest != NOW) if x >= last else label)
            if st is not run_style and run:
                segs.append(Segment("".join(run), run_style))
                run = []
            run_style = st
            run.append(ch)
        if run:
            segs.append(Segment("".join(run), run_style))
        # the corner joins the price axis's line; under the prices, the axis's unit
        segs.append(Segment("┘", c.style("axis", bg)))
        unit = f"{secs:g}s/col"
        if len(unit) <= AXIS_WIDTH - 2:
            segs.append(Segment(unit.rjust(AXIS_WIDTH - 1), c.style("muted", bg)))
        self._time_strip = Strip(segs).adjust_cell_length(w, c.style(bg=bg))

    def _legend(self, market: Market, lay: HeatLayout, w: int) -> Strip:
        """The title line: its parts by importance (the title, a grouping the heatmap cannot
        follow, the scale and its cut-offs, the row and column sizes, the span, the colormap,
        the colour ramp, the gap key), as many
        whole parts as fit, in their places; a part is never cut mid-word or mid-number."""
        c = self.pal
        bar = c.style("muted", c.surface)
        dec = decimals_for(lay.row_step / lay.sub)
        # (priority: lower goes in first, segments); drawn in list order
        parts: list[tuple[int, list[tuple[str, Style]]]] = [(0, [(" HEATMAP ", c.style("axis", c.surface, bold=True))])]
        row = f" row {format_price(lay.row_step, decimals_for(lay.row_step))}"
        if lay.sub == 2:
            row += f" (½ {format_price(lay.row_step / 2, dec)})"
        parts.append((4, [(row, bar)]))
        secs = self.zoom.seconds_per_column(market.heatmap.cadence)
        zoomed = self.zoom.k > 1
        parts.append((5, [(f"  {secs:g}s/col", c.style("axis", c.surface, bold=True) if zoomed else bar)]))
        ents = self._entries
        if ents:
            # how far back the left edge is: the time the drawn columns cover (the oldest one
            # from its first sample: a minute's column filled for 20 s is 20 s of history)
            since = self.zoom.since
            span = ents[-1].col.t - since if since is not None else 0.0
            if span <= 0:  # the clock was stepped back under the drawn columns
                span = len(ents) * secs
            parts.append((6, [(f" ({format_span(span)})", bar)]))
        if not lay.aligned and self.group is not None:
            g = format_price(self.group, decimals_for(self.group))
            sb = format_price(lay.row_step / 2, dec)
            parts.append((1, [(f"  unaligned: grp {g} < bucket {sb}", c.style("stale", c.surface, bold=True))]))
        sc = self.scale
        if sc is not None:
            unit = market.instrument.base
            parts.append((2, [(f"  log {compact(sc.lo)}–{compact(sc.hi)} {unit}", bar)]))
            parts.append((3, [(f" p{self.low_pct:g}–{self.high_pct:g}", bar)]))
        cm = self.colormap
        ramp = cm.bid[1::4] if not cm.tinted else cm.bid[1::8] + cm.ask[1::8]
        parts.append((8, [(" ", bar), *[("█", c.style(col, c.surface)) for col in ramp]]))
        parts.append((7, [(f" {cm.name}", bar)]))
        parts.append((9, [("  ", bar), ("╱╱", c.style("gap", c.surface)), (" gap ", bar)]))
        # a part that means nothing alone goes only with the one it qualifies: the cut-offs
        # with the scale, the span with the column time
        needs = {3: 2, 6: 5}
        room, keep, kept = w, set(), set()
        for i in sorted(range(len(parts)), key=lambda i: parts[i][0]):
            prio = parts[i][0]
            n = sum(len(t) for t, _ in parts[i][1])
            if (n <= room or not keep) and needs.get(prio, prio) in kept | {prio}:
                keep.add(i)
                kept.add(prio)
                room -= n
        segs = [Segment(t, st) for i, (_, p) in enumerate(parts) if i in keep for t, st in p]
        return Strip(segs).adjust_cell_length(w, c.style(bg=c.surface))
