"""Depth ladder: asks above, spread row, bids below; size bars scaled to the visible max."""

from __future__ import annotations

from rich.segment import Segment

from obview.market import Market
from obview.ui.lines import LineWidget
from obview.ui.viewmodel import (
    LadderLevel,
    align_on_point,
    bar_cells,
    bps,
    compact,
    decimals_for,
    format_price,
    ladder_levels,
    sanitize,
)

FLASH_SECONDS = 0.45


class Ladder(LineWidget):
    """Price / size / cumulative columns with eighth-block bars; changed sizes flash briefly."""

    DEFAULT_CSS = """
    Ladder { width: 46; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._prev_sizes: dict[tuple[bool, float], float] = {}
        self._flash_until: dict[tuple[bool, float], float] = {}
        self._prev_step: tuple[float, bool] | None = None
        self.flashing = False

    def levels_per_side(self) -> int:
        return max(1, (self.size.height - 2) // 2)

    def update_from(self, market: Market, step: float, quote: bool, now: float) -> int:
        """Recompute the rows from the market; returns how many lines changed."""
        if self.pal is None or self.size.height <= 0:
            return 0
        n = self.levels_per_side()
        book = market.book
        inst = market.instrument
        gb, ga = book.grouped(step, n)
        bids, asks = ladder_levels(gb, ga, inst, quote)
        if self._prev_step != (step, quote):
            self._prev_sizes.clear()
            self._flash_until.clear()
            self._prev_step = (step, quote)
        self._track_flashes(bids + asks, now)
        self.flashing = any(t > now for t in self._flash_until.values())

        d = decimals_for(step)
        unit = inst.quote if quote else inst.base
        width = self.size.width
        show_cum = width >= 34
        lines: list[tuple] = []
        c = self.pal
        if not market.live:
            head = f" {market.state.status.value}: {sanitize(market.state.reason, 60)}"
            lines.append((("head", head, "stale"), (head, c.style("stale", c.surface, bold=True))))
        else:
            head = None  # needs the column widths, set below

        if book.empty:
            if head is None:
                lines.append((("head0",), ("", c.style(bg=c.surface))))
            msg = (
                "waiting for the book…"
                if market.live
                else sanitize(market.state.reason or market.state.status.value, 80)
            )
            body = [
                (("empty", i), ("", c.style(bg=c.background)))
                for i in range(max(0, self.size.height - 2))
            ]
            mid_i = len(body) // 2
            if body:
                body[mid_i] = (("msg", msg), (msg.center(width), c.style("muted", c.background)))
            lines.extend(body)
            return self.set_lines(lines, self._build_plain)

        visible = asks[:n] + bids[:n]
        vmax = max((lv.size for lv in visible), default=0.0)
        prices = align_on_point([format_price(lv.price, d) for lv in visible])
        sizes = align_on_point([compact(lv.size) for lv in visible])
        cums = align_on_point([compact(lv.cum) for lv in visible])
        pw = max((len(p) for p in prices), default=8) + 1
        sw = max(max((len(s) for s in sizes), default=5) + 1, 7)
        cw = max(max((len(s) for s in cums), default=5) + 1, 7) if show_cum else 0
        bar_w = max(0, width - pw - sw - cw - 2)

        if head is None:
            head = "price".rjust(pw) + "size".rjust(sw) + ("cum".rjust(cw) if cw else "")
            head += f"  {unit} · grp {format_price(step, d)}"
            lines.append((("head", head), (head, c.style("muted", c.surface))))
        rows: list[tuple] = []
        na = len(asks[:n])
        # asks: best ask sits just above the spread row, so print them high -> low
        for i in range(n - na):
            rows.append((("pad", i), None))
        for i in range(na - 1, -1, -1):
            rows.append(
                self._level_row(asks[i], prices[i], sizes[i], cums[i], pw, sw, cw, bar_w, vmax, now)
            )
        spread = book.spread()
        mid = book.mid()
        if spread is not None:
            sp = f"spread {format_price(spread, d if spread >= step else decimals_for(market.instrument.tick))}"
            b = bps(spread, mid)
            if b is not None:
                sp += f"  {b:.2f} bp"
            if book.is_crossed():
                sp = f"CROSSED {book.crossed_bps():.1f} bp"
        else:
            sp = "one-sided book"
        rows.append(
            (("spread", sp, width), (sp.center(width), c.style("spread", c.surface, bold=True)))
        )
        for i, lv in enumerate(bids[:n]):
            j = na + i
            rows.append(
                self._level_row(lv, prices[j], sizes[j], cums[j], pw, sw, cw, bar_w, vmax, now)
            )
        lines.extend(rows)
        return self.set_lines(lines, self._build)

    def _track_flashes(self, levels: list[LadderLevel], now: float) -> None:
        prev = self._prev_sizes
        cur: dict[tuple[bool, float], float] = {}
        for lv in levels:
            k = (lv.is_bid, lv.price)
            cur[k] = lv.size
            old = prev.get(k)
            if prev and (old is None or abs(old - lv.size) > 1e-12 * max(1.0, lv.size)):
                self._flash_until[k] = now + FLASH_SECONDS
        self._prev_sizes = cur
        if len(self._flash_until) > 512:
            self._flash_until = {k: t for k, t in self._flash_until.items() if t > now}

    def _level_row(self, lv, price, size, cum, pw, sw, cw, bar_w, vmax, now):
        flash = self._flash_until.get((lv.is_bid, lv.price), 0.0) > now
        bar = bar_cells(lv.size, vmax, bar_w)
        key = ("lv", lv.is_bid, price, size, cum, bar, flash, pw, sw, cw)
        return key, (lv.is_bid, price, size, cum, bar, flash, pw, sw, cw, bar_w)

    def _build_plain(self, payload) -> list[Segment]:
        text, style = payload
        return [Segment(text, style)]

    def _build(self, payload) -> list[Segment]:
        c = self.pal
        if payload is None:
            return [Segment("", c.style(bg=c.background))]
        if isinstance(payload[0], str):
            return self._build_plain(payload)
        is_bid, price, size, cum, bar, flash, pw, sw, cw, bar_w = payload
        bg = c["flash"] if flash else c.background
        side_txt = "bid_text" if is_bid else "ask_text"
        segs = [
            Segment(price.rjust(pw), c.style("bid" if is_bid else "ask", bg, bold=True)),
            Segment(size.rjust(sw), c.style(side_txt, bg)),
        ]
        if cw:
            segs.append(Segment(cum.rjust(cw), c.style("muted", bg)))
        segs.append(Segment("  ", c.style(bg=bg)))
        segs.append(Segment(bar.ljust(bar_w), c.style("bid_bar" if is_bid else "ask_bar", bg)))
        return segs
