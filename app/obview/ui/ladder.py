"""Depth ladder: asks above, spread row, bids below; size bars scaled to the visible max."""

from __future__ import annotations

import textwrap

from rich.segment import Segment

from obview.market import Market
from obview.text import fit, safe
from obview.ui.lines import LineWidget
from obview.ui.numbers import (
    align_at,
    align_on_point,
    bps,
    compact_column,
    decimals_for,
    decimals_shown,
    format_price,
    point_widths,
)
from obview.ui.viewmodel import bar_cells, bucket_index, dom_grid, ladder_levels

FLASH_SECONDS = 0.45
#: cells the header keeps for the spread beside the unit: "0.01bp" and its space (a wider
#: figure is left out there rather than the unit)
UNIT_ROOM = 7
#: a column narrows only after its numbers have been narrower this long (s): at 5 s the
#: columns still moved by a cell every few seconds as sizes came and went
NARROW_AFTER = 30.0


class StickyWidths:
    """Column widths that widen at once and narrow only after ``NARROW_AFTER`` s of narrower
    numbers: recomputed from each frame's widest number, the columns (and the header's unit
    beside the spread) jumped sideways from one frame to the next."""

    __slots__ = ("key", "widths", "narrower_since")

    def __init__(self) -> None:
        self.key: object = None
        self.widths: tuple[int, ...] = ()
        self.narrower_since: float | None = None

    def fit(self, key: object, need: tuple[int, ...], now: float) -> tuple[int, ...]:
        """The widths to draw with, for columns that need ``need`` now; ``key`` (grouping,
        units, mode, panel width) starts afresh when it changes."""
        if key != self.key or len(need) != len(self.widths):
            self.key, self.widths, self.narrower_since = key, need, None
            return need
        wider = tuple(max(a, b) for a, b in zip(self.widths, need, strict=True))
        if wider != self.widths:
            self.widths, self.narrower_since = wider, None
        elif need != self.widths:
            if self.narrower_since is None or now < self.narrower_since:
                self.narrower_since = now
            elif now - self.narrower_since >= NARROW_AFTER:
                self.widths, self.narrower_since = need, None
        else:
            self.narrower_since = None
        return self.widths


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
        self._widths = StickyWidths()
        self.flashing = False
        self.tick = 0.01
        self.mode = "grid"  # "grid": continuous, aligned with the heatmap; "compact": levels only

    def levels_per_side(self) -> int:
        return max(1, (self.size.height - 2) // 2)

    def update_from(
        self, market: Market, step: float, quote: bool, now: float, origin: int | None = None
    ) -> int:
        """Recompute the rows from the market; returns how many lines changed.

        With ``origin`` the ladder is a continuous price grid (one row per ``step`` bucket from
        ``origin`` up, the heatmap's rows); without, it lists only non-empty levels."""
        if self.pal is None or self.size.height <= 0:
            return 0
        if origin is not None:
            return self._update_grid(market, step, quote, now, origin)
        self.mode = "compact"
        n = self.levels_per_side()
        book = market.book
        inst = market.instrument
        gb, ga = book.grouped(step, n)
        bids, asks = ladder_levels(gb, ga, inst, quote)
        if self._prev_step != (step, quote):
            self._prev_sizes.clear()
            self._flash_until.clear()
            self._prev_step = (step, quote)
        self._track_flashes([(lv.is_bid, lv.price, lv.size) for lv in bids + asks], now)
        self.flashing = any(t > now for t in self._flash_until.values())

        d = decimals_for(step)
        unit = inst.quote if quote else inst.base
        width = self.content_width
        show_cum = width >= 34
        lines: list[tuple] = []
        c = self.pal
        state_line = self._header(market, "")  # replaces the column titles when not LIVE
        dim = state_line is not None  # a book not LIVE (STALE) is greyed
        if state_line is not None:
            lines.append(state_line)

        if book.empty:
            if state_line is None:
                lines.append((("head0",), ("", c.style(bg=c.surface))))
            lines.extend(self._message_body(market, width, max(0, self.size.height - 2)))
            return self.set_lines(lines, self._build_plain)

        visible = asks[:n] + bids[:n]
        vmax = max((lv.size for lv in visible), default=0.0)
        prices = align_on_point([format_price(lv.price, d) for lv in visible])
        sizes = compact_column([lv.size for lv in visible])
        cums = compact_column([lv.cum for lv in visible])
        pw = max((len(p) for p in prices), default=8) + 1
        pw, siw, sfw, ciw, cfw = self._widths.fit(
            ("compact", market.venue, market.symbol, step, quote, width), (pw, *point_widths(sizes), *point_widths(cums)), now
        )
        sizes, cums = align_at(sizes, siw, sfw), align_at(cums, ciw, cfw)
        sw = max(siw + sfw + 1, 7)
        cw = max(ciw + cfw + 1, 7) if show_cum else 0
        bar_w = max(0, width - pw - sw - cw - 2)

        if state_line is None:
            head = "price".rjust(pw) + "size".rjust(sw) + ("cum".rjust(cw) if cw else "")
            head += f"  {unit} grp {format_price(step, d)} compact"
            lines.append((("head", head), (head, c.style("muted", c.surface))))
        rows: list[tuple] = []
        na = len(asks[:n])
        # asks: best ask sits just above the spread row, so print them high -> low
        for i in range(n - na):
            rows.append((("pad", i), None))
        for i in range(na - 1, -1, -1):
            rows.append(
                self._level_row(asks[i], prices[i], sizes[i], cums[i], pw, sw, cw, bar_w, vmax, now, dim)
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
        sp_style = c.style("muted", c.surface) if dim else c.style("spread", c.surface, bold=True)
        rows.append((("spread", sp, width, dim), (sp.center(width), sp_style)))
        for i, lv in enumerate(bids[:n]):
            j = na + i
            rows.append(
                self._level_row(lv, prices[j], sizes[j], cums[j], pw, sw, cw, bar_w, vmax, now, dim)
            )
        lines.extend(rows)
        return self.set_lines(lines, self._build)

    def _track_flashes(self, levels: list[tuple[bool, float, float]], now: float) -> None:
        prev = self._prev_sizes
        cur: dict[tuple[bool, float], float] = {}
        for is_bid, price, size in levels:
            k = (is_bid, price)
            cur[k] = size
            old = prev.get(k)
            if prev and (old is None or abs(old - size) > 1e-12 * max(1.0, size)):
                self._flash_until[k] = now + FLASH_SECONDS
        self._prev_sizes = cur
        if len(self._flash_until) > 512:
            self._flash_until = {k: t for k, t in self._flash_until.items() if t > now}

    def _level_row(self, lv, price, size, cum, pw, sw, cw, bar_w, vmax, now, dim=False):
        flash = self._flash_until.get((lv.is_bid, lv.price), 0.0) > now and not dim
        bar = bar_cells(lv.size, vmax, bar_w)
        key = ("lv", lv.is_bid, price, size, cum, bar, flash, pw, sw, cw, dim)
        return key, (lv.is_bid, price, size, cum, bar, flash, pw, sw, cw, bar_w, dim)

    def _build_plain(self, payload) -> list[Segment]:
        text, style = payload
        return [Segment(text, style)]

    def _build(self, payload) -> list[Segment]:
        c = self.pal
        if payload is None:
            return [Segment("", c.style(bg=c.background))]
        if isinstance(payload[0], str):
            return self._build_plain(payload)
        is_bid, price, size, cum, bar, flash, pw, sw, cw, bar_w, dim = payload
        bg = c["flash"] if flash else c.background
        side_txt = "muted" if dim else "bid_text" if is_bid else "ask_text"
        price_st = c.style("muted", bg) if dim else c.style("bid" if is_bid else "ask", bg, bold=True)
        segs = [
            Segment(price.rjust(pw), price_st),
            Segment(size.rjust(sw), c.style(side_txt, bg)),
        ]
        if cw:
            segs.append(Segment(cum.rjust(cw), c.style("muted", bg)))
        segs.append(Segment("  ", c.style(bg=bg)))
        bar_st = "muted" if dim else "bid_bar" if is_bid else "ask_bar"
        segs.append(Segment(bar.ljust(bar_w), c.style(bar_st, bg)))
        return segs

    def _message_body(self, market: Market, width: int, rows: int) -> list[tuple]:
        """``rows`` blank lines with what an empty book waits for (or why there is none),
        wrapped to the panel and centred in them."""
        c = self.pal
        msg = (
            "waiting for the book…"
            if market.live
            else safe(market.state.reason or market.state.status.value, 240)
        )
        body = [(("empty", i), ("", c.style(bg=c.background))) for i in range(rows)]
        text = textwrap.wrap(msg, max(8, width - 2)) or [msg]
        text = text[: max(1, rows)]
        top = max(0, (rows - len(text)) // 2)
        for i, part in enumerate(text):
            if top + i < rows:
                body[top + i] = (("msg", i, part), (part.center(width), c.style("muted", c.background)))
        return body

    # -- continuous grid (shared axis with the heatmap) -----------------------------------------
    def _header(self, market: Market, text: str) -> tuple | None:
        """The state line replaces the column titles while the feed is not LIVE."""
        if market.live:
            return None
        c = self.pal
        head = fit(f" {market.state.status.value}: {safe(market.state.reason, 60)}", self.content_width)
        return (("head", head, "stale"), (head, c.style("stale", c.surface, bold=True)))

    def _update_grid(
        self, market: Market, step: float, quote: bool, now: float, origin: int
    ) -> int:
        self.mode = "grid"
        self.tick = market.instrument.tick
        c = self.pal
        book, inst = market.book, market.instrument
        width = self.content_width
        rows = max(0, self.size.height - 1)
        if self._prev_step != (step, quote):
            self._prev_sizes.clear()
            self._flash_until.clear()
            self._prev_step = (step, quote)
        state_line = self._header(market, "")
        if book.empty:
            self.flashing = False
            lines = [state_line or (("head0",), ("", c.style(bg=c.surface)))]
            return self.set_lines(lines + self._message_body(market, width, rows), self._build_plain)

        grid = dom_grid(book, inst, quote, origin, rows, step)
        self._track_flashes(
            [(True, r.price, r.bid) for r in grid.rows if r.bid > 0]
            + [(False, r.price, r.ask) for r in grid.rows if r.ask > 0],
            now,
        )
        self.flashing = any(t > now for t in self._flash_until.values())
        d = decimals_for(step)
        unit = inst.quote if quote else inst.base
        prices = [format_price(r.price, d) for r in grid.rows]
        # one scale a column: 741k and 1.14M on the point read as 741 over 1
        bids = compact_column([r.bid if r.bid > 0 else 0.0 for r in grid.rows])
        asks = compact_column([r.ask if r.ask > 0 else 0.0 for r in grid.rows])

        def cum_of(r) -> float:
            if r.ask > 0 and r.bid <= 0:
                return r.ask_cum
            if r.bid > 0 and r.ask <= 0:
                return r.bid_cum
            return 0.0

        cums = compact_column([cum_of(r) for r in grid.rows])
        pw = max((len(p) for p in prices), default=6) + 1
        # the decimal points' places too are kept from frame to frame, not only the columns
        pw, biw, bfw, aiw, afw, ciw, cfw = self._widths.fit(
            ("grid", market.venue, market.symbol, step, quote, width),
            (pw, *point_widths(bids), *point_widths(asks), *point_widths(cums)),
            now,
        )
        bids, asks, cums = align_at(bids, biw, bfw), align_at(asks, aiw, afw), align_at(cums, ciw, cfw)
        bw = max(biw + bfw, 5) + 2
        aw = max(aiw + afw, 5) + 2
        cw = max(ciw + cfw, 5) + 2 if width >= 36 else 0
        bar_w = max(0, width - pw - bw - aw - cw - 1)
        vmax = max((max(r.bid, r.ask) for r in grid.rows), default=0.0)

        ra, rb = grid.best_ask_row, grid.best_bid_row
        mid = book.mid()
        # what the book knows: rows past its deepest bid or ask are beyond the depth the venue
        # sends (Bybit's 200 levels, Hyperliquid's 20), not empty: hatched as the heatmap has
        # them (a venue sending its whole book has nothing there: empty). A book not LIVE
        # (STALE) is greyed, as the tape and the status line are.
        dim = not market.live
        bk, ak = ((), ()) if market.whole_book else (book.bids._keys, book.asks._keys)
        floor = bucket_index(bk[0], step) * step if bk else None
        ceiling = bucket_index(ak[-1], step) * step if ak else None
        # the rows holding the deepest bid and ask are partial unless that level is their
        # bucket's last price (its first tick for bids, its top tick for asks)
        tick = inst.tick or step
        floor_cut = floor is not None and bk[0] > floor + tick / 2
        ceiling_cut = ceiling is not None and ak[-1] < ceiling + step - tick * 1.5
        lines: list[tuple] = []
        if state_line is not None:
            lines.append(state_line)
        else:
            titles = "price".rjust(pw) + "bid".rjust(bw) + "ask".rjust(aw)
            titles += "cum".rjust(cw) if cw else ""
            room = width - len(titles) - len(unit) - 2
            if room >= UNIT_ROOM:
                # the unit whenever it leaves room for a spread in bp: decided by the width
                # alone, so it does not come and go as the spread's text changes length
                titles += f"  {unit}"
                right = self._spread_text(book, step, room)
            else:
                right = self._spread_text(book, step, width - len(titles))
            lines.append(((("head", titles, width, tuple(t for t, _ in right))), (titles, right)))
        spread_label_done = False
        for i, r in enumerate(grid.rows):
            # region: above the best ask -> asks, below the best bid -> bids, between -> spread
            if ra is not None and rb is not None:
                region = "ask" if i < ra else "bid" if i > rb else "in" if ra < i < rb else "touch"
            else:
                region = "ask" if mid is not None and r.price >= mid else "bid"
            best = (i == ra) + 2 * (i == rb)  # 1 best ask, 2 best bid, 3 both in one bucket
            label = ""
            if region == "in" and not spread_label_done:
                spread_label_done = True
                label = _fitting(self._spread_label(book, step), bar_w)
            if r.bid > 0 and r.ask > 0:
                na = int(round(min(1.0, r.ask / vmax) * bar_w)) if vmax else 0
                nb = int(round(min(1.0, r.bid / vmax) * bar_w)) if vmax else 0
                bar: tuple = ("split", na, nb)
            elif r.ask > 0:
                partial = ceiling_cut and abs(r.price - ceiling) < step * 1e-6
                bar = ("ask", bar_cells(r.ask, vmax, bar_w), partial)
            elif r.bid > 0:
                partial = floor_cut and abs(r.price - floor) < step * 1e-6
                bar = ("bid", bar_cells(r.bid, vmax, bar_w), partial)
            elif (floor is not None and r.price < floor - step * 1e-6) or (
                ceiling is not None and r.price > ceiling + step * 1e-6
            ):
                bar = ("unknown",)
            else:
                bar = ("none", label)
            flash = (
                self._flash_until.get((True, r.price), 0.0) > now
                or self._flash_until.get((False, r.price), 0.0) > now
            )
            payload = (
                prices[i],
                bids[i],
                asks[i],
                cums[i] if cw else "",
                bar,
                region,
                best,
                flash,
                pw,
                bw,
                aw,
                cw,
                bar_w,
                dim,
            )
            lines.append((("g", *payload), payload))
        return self.set_lines(lines, self._build_grid)

    def _spread_label(self, book, step: float) -> str:
        sp, mid = book.spread(), book.mid()
        if sp is None:
            return ""
        d = decimals_shown(sp, max(decimals_for(step) if sp >= step else 0, decimals_for(self.tick)), scale=mid)
        b = bps(sp, mid)
        return f"spread {format_price(sp, d)}" + (f" {b:.2f}bp" if b is not None else "")

    def _spread_text(self, book, step: float, room: int):
        """The header's right side: spread (abs and bp) in whatever room the titles leave."""
        c = self.pal
        sp, mid = book.spread(), book.mid()
        if sp is None:
            return [(" one-sided"[: max(0, room)], c.style("stale", c.surface))]
        if book.is_crossed():
            t = f" CROSSED {book.crossed_bps():.1f}bp"
            return [(t[: max(0, room)], c.style("stale", c.surface, bold=True))]
        full = self._spread_label(book, step)
        b = bps(sp, mid)
        short = full.replace("spread ", "")
        for t in (
            full,
            full.replace("spread ", "spr "),
            short,
            f"{b:.2f}bp" if b is not None else "",
        ):
            if t and len(t) + 1 <= room:  # always a space between the titles and the spread
                text = t.rjust(room - 1) + " " if len(t) + 2 <= room else " " + t
                return [(text, c.style("spread", c.surface, bold=True))]
        return []

    def _build_grid(self, payload) -> list[Segment]:
        c = self.pal
        if isinstance(payload[0], str) and len(payload) == 2:  # header
            text, right = payload
            segs = [Segment(text, c.style("muted", c.surface))]
            if isinstance(right, list):
                segs += [Segment(t, st) for t, st in right]
            else:
                segs = [Segment(text, right)]
            return segs
        price, bid, ask, cum, bar, region, best, flash, pw, bw, aw, cw, bar_w, dim = payload
        bg = c["flash"] if flash and not dim else c.surface if region == "in" else c.background
        kind = bar[0]
        if dim or kind == "unknown":
            pst = c.style("muted", bg)
        elif best == 3:
            pst = c.style(c.background, "spread", bold=True)
        elif best == 1:
            pst = c.style(c.background, "ask", bold=True)
        elif best == 2:
            pst = c.style(c.background, "bid", bold=True)
        elif region == "in" or not (bid.strip() or ask.strip()):
            pst = c.style("muted", bg)
        else:
            pst = c.style("ask" if region == "ask" else "bid", bg, bold=True)
        segs = [
            Segment(" " * (pw - len(price)), c.style(bg=bg)),
            Segment(price, pst),
            Segment(bid.rjust(bw), c.style("muted" if dim else "bid_text", bg)),
            Segment(ask.rjust(aw), c.style("muted" if dim else "ask_text", bg)),
        ]
        if cw:
            segs.append(Segment(cum.rjust(cw), c.style("muted", bg)))
        segs.append(Segment(" ", c.style(bg=bg)))
        if kind == "unknown":
            segs.append(Segment("╱" * bar_w, c.style("muted", bg)))
        elif kind in ("ask", "bid"):
            _, cells, partial = bar
            st = c.style("muted" if dim else f"{kind}_bar", bg)  # greyed, its length kept
            if partial:  # what the venue does not send is hatched past the bar
                segs += [Segment(cells, st), Segment("╱" * (bar_w - len(cells)), c.style("muted", bg))]
            else:
                segs.append(Segment(cells.ljust(bar_w), st))
        elif kind == "split":
            # both sides in one bucket (the touch when the spread is inside it): asks in the
            # upper half-cell, bids in the lower, as the heatmap's half-blocks stack them
            _, na, nb = bar
            both = min(na, nb)
            ask_c, bid_c = (c["muted"], c["muted"]) if dim else (c["ask_bar"], c["bid_bar"])
            segs.append(Segment("▀" * both, c.style(ask_c, bid_c)))
            if na > nb:
                segs.append(Segment("▀" * (na - nb), c.style(ask_c, bg)))
            elif nb > na:
                segs.append(Segment("▄" * (nb - na), c.style(bid_c, bg)))
            segs.append(Segment(" " * (bar_w - max(na, nb)), c.style(bg=bg)))
        else:
            label_st = c.style("muted", bg) if dim else c.style("spread", bg, bold=True)
            segs.append(Segment(bar[1].center(bar_w)[:bar_w], label_st))
        return segs


def _fitting(label: str, room: int) -> str:
    """The spread label ("spread 2.2 0.23bp") in ``room`` cells: whole, without the word, the
    price alone, else nothing; never cut mid-word ("sprea")."""
    short = label.removeprefix("spread ")
    for text in (label, short, short.split(" ")[0]):
        if len(text) <= room:
            return text
    return ""
