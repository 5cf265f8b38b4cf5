"""Trade tape (time & sales): newest first, same-millisecond sweeps on one line."""

from __future__ import annotations

from rich.segment import Segment

from obview.market import Market
from obview.model import BLOCK, TRADE_TAGS, Side
from obview.ui.lines import LineWidget
from obview.ui.numbers import (
    align_on_point,
    clock_ms,
    compact,
    compact_column,
    decimals_for,
    format_price,
)
from obview.ui.tapemodel import (
    aggregate_tape,
    sweep_text,
    tier_of,
)


class Tape(LineWidget):
    DEFAULT_CSS = """
    Tape { width: 44; height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tiers: tuple[float, float, float] = (100_000.0, 1_000_000.0, 5_000_000.0)

    def update_from(self, market: Market, quote: bool, now: float) -> int:
        if self.pal is None or self.size.height <= 0:
            return 0
        c = self.pal
        inst = market.instrument
        width = self.content_width
        n = max(0, self.size.height - 2)
        rows = aggregate_tape(market.trades, inst, n)
        flow = market.flow.summary(now)
        rate = market.stats.trades.rate(now)
        unit = inst.quote if quote else inst.base
        lines: list[tuple] = []
        # a feed that is not LIVE: the prints it had are still real, but the flow may have gone
        # on without them; they are dimmed and the title says why
        dim = not market.live
        state = f"  {market.state.status.value}" if dim else ""
        head = fit_first(
            (
                f" TAPE  {rate:5.1f} trades/s   units {unit}{state}",
                f" TAPE {rate:.1f}/s {unit}{state}",
                f" TAPE{state}",
                " TAPE",
            ),
            width,
        )
        head_style = c.style("stale", c.surface, bold=True) if dim else c.style("axis", c.surface, bold=True)
        lines.append((("h", head, dim), [(head, head_style)]))
        bv, sv = (flow.buy_quote, flow.sell_quote) if quote else (flow.buy_base, flow.sell_base)
        fv = flow.forced_quote if quote else flow.forced_base
        tot = bv + sv
        b, s = compact(bv), compact(sv)
        plain = ((f" 1m buy {b}  sell {s} ", ""), (f" B {b} S {s} ", ""), ("", ""))
        if fv > 0:
            # of the minute's flow, what liquidations forced; kept before the longer words
            f = compact(fv)
            plain = ((f" 1m buy {b}  sell {s}  ", f"liq {f} "), (f" B {b} S {s} ", f"L {f} "), *plain)
        flow_txt, liq_txt = fit_pair(plain, width)
        bar_w = max(0, width - len(flow_txt) - len(liq_txt) - 1)
        nb = int(round(bar_w * bv / tot)) if tot > 0 else 0
        ns = bar_w - nb if tot > 0 else 0
        lines.append(
            (
                ("f", flow_txt, liq_txt, nb, ns),
                [
                    (flow_txt, c.style("muted", c.surface)),
                    (liq_txt, c.style("forced", c.surface, bold=True)),
                    ("▆" * nb, c.style("buy", c.surface)),
                    ("▆" * ns, c.style("sell", c.surface)),
                ],
            )
        )
        dec = decimals_for(inst.tick)
        prices = align_on_point([format_price(r.first, dec) for r in rows])
        sizes = align_on_point(compact_column([r.quote if quote else r.base for r in rows]))
        pw, sw = max((len(p) for p in prices), default=0), max(map(len, sizes), default=0)
        fit = tape_fit(pw, sw, width)
        if any(r.kind in TRADE_TAGS for r in rows):
            # a liquidation or block trade on screen: room for its tag's letter, taken from the
            # clock, not from the prices (then the side mark alone is drawn on the tag's colour)
            tagged = tape_fit(pw, sw, width - 2)
            if tagged[3]:
                fit = tagged
        clock_w, side_w, size_w, show_price = fit
        for r, p, s in zip(rows, prices, sizes, strict=True):
            buy = r.side is Side.BUY
            tier = tier_of(r.quote, self.tiers)
            used = clock_w + side_w + (len(p) if show_price else 0) + 1 + max(size_w, len(s))
            # a liquidation's or block trade's tag after the size: its word, else its letter
            tag = TRADE_TAGS.get(r.kind, "")
            if tag and used + 1 + len(tag) > width:
                tag = tag[0] if used + 2 <= width else ""
            used += 1 + len(tag) if tag else 0
            # the sweep's end gets what is left, whole or not at all
            swept = sweep_text(r.first, r.last, r.count, dec, width - used) if show_price else ""
            # no room even for its letter: the side mark alone is drawn on the tag's colour
            tag_key = ("block" if r.kind == BLOCK else "forced", tag) if r.kind in TRADE_TAGS else None
            key = (r.ts, buy, p, s, swept, tier, fit, dim, tag_key)
            # the row's parts are made only if its line is new (``_build``): most are kept
            lines.append((key, (r.ts, buy, p, s, swept, tier, width, fit, dim, tag_key)))
        return self.set_lines(lines, self._build)

    def _row(
        self, ts, buy, price, size, swept, tier, width, fit=(12, 3, 7, True), dim=False, tag=None
    ):
        clock_w, side_w, size_w, show_price = fit
        c = self.pal
        side_key = "buy" if buy else "sell"
        bg = c.background
        if dim:
            tier = 0
            side_key = "muted"
        if tier >= 2:
            bg = c[f"tier{tier}"]
            fg_main = c.style(c.background, bg, bold=True)
            fg_time = fg_main
        else:
            fg_main = c.style(side_key, bg, bold=tier == 1)
            fg_time = c.style("muted", bg)
        size_style = c.style("tier1", bg, bold=True) if tier == 1 else fg_main
        mark = "▲" if buy else "▼"
        mark_style = fg_main
        if tag is not None and not tag[1] and not dim:
            mark_style = c.style(c.background, tag[0], bold=True)
        parts = [
            (clock_ms(ts)[12 - clock_w :], fg_time),
            (" " if side_w == 3 else "", fg_main),
            (mark, mark_style),
            (" ", fg_main),
            (price if show_price else "", fg_main),
            (" " + size.rjust(size_w) if size_w else "", size_style),
        ]
        if tag is not None and tag[1]:
            color, word = tag
            parts.append((" ", c.style(bg=bg)))
            parts.append((word, c.style(c.background, "muted" if dim else color, bold=True)))
        parts.append((swept, c.style("muted", bg) if tier < 2 else fg_main))
        used = sum(len(t) for t, _ in parts)
        parts.append((" " * max(0, width - used), c.style(bg=bg)))
        return parts

    def _build(self, payload) -> list[Segment]:
        """A line's segments: from its parts (the bars), or a trade row's fields."""
        parts = payload if isinstance(payload, list) else self._row(*payload)
        return [Segment(t, s) for t, s in parts if t]


def tape_fit(price_w: int, size_w: int, width: int) -> tuple[int, int, int, bool]:
    """How a trade row fits ``width`` columns: (clock width, side mark width, size column
    width, price shown). A narrow tape drops whole parts, never a number's digits: first the
    clock's hours, then the clock, then the padding around the side mark and the size, and last
    the price (the ladder beside it shows prices; the size is the trade)."""
    sized = max(7, size_w)
    for clock_w, side_w, col, price in (
        (12, 3, sized, True), (9, 3, sized, True), (0, 3, sized, True), (0, 2, size_w, True)
    ):  # fmt: skip
        if clock_w + side_w + price_w + 1 + col <= width:
            return clock_w, side_w, col, price
    if 2 + 1 + size_w <= width:
        return 0, 2, size_w, False
    return 0, 2, 0, False  # not even the size: the side marks alone


def fit_pair(pairs: tuple[tuple[str, str], ...], width: int) -> tuple[str, str]:
    """The first of ``pairs`` (longest first) whose two texts together fit ``width``, else the
    last; a pair whose second text is empty stands for the first without it."""
    return next((p for p in pairs if len(p[0]) + len(p[1]) <= width), pairs[-1])


def fit_first(texts: tuple[str, ...], width: int) -> str:
    """The first of ``texts`` (longest first) that fits ``width``, else the last."""
    return next((t for t in texts if len(t) <= width), texts[-1])
