"""Stats bar: identity, feed state with its reason, book age, prices, rates, latency.

Everything that came from the network is appended as plain ``Text`` spans, never markup.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from obview.market import Market
from obview.model import FeedStatus
from obview.text import safe
from obview.ui.lines import LineWidget
from obview.ui.numbers import (
    bps,
    compact,
    decimals_for,
    decimals_shown,
    format_duration,
    format_ms,
    format_price,
)
from obview.ui.theming import PanelColors

#: a LIVE book whose messages arrive this much later than the minute's quickest is flagged
BEHIND_WARN = 1.0
#: a book older than this (s) is shown in the warning colour, or 1.5x the measured cadence
BOOK_AGE_WARN = 2.0
#: a bad frame or a venue error is shown this long (s) after the last one
ERROR_SHOWN_FOR = 60.0

STATE_COLOR = {
    FeedStatus.LIVE: "live",
    FeedStatus.SYNCING: "syncing",
    FeedStatus.CONNECTING: "syncing",
    FeedStatus.STALE: "stale",
    FeedStatus.RECONNECTING: "stale",
    FeedStatus.FAILED: "down",
}
# glyphs differ as well as colours so states read without colour vision
STATE_MARK = {
    FeedStatus.LIVE: "●",
    FeedStatus.SYNCING: "◐",
    FeedStatus.CONNECTING: "◐",
    FeedStatus.STALE: "◌",
    FeedStatus.RECONNECTING: "◌",
    FeedStatus.FAILED: "✕",
}


class StatsBar(LineWidget):
    """Two lines, each a cached Strip (``LineWidget``): a line whose text and styles are the
    ones on screen costs nothing, so the book's figures (last, mid, spread) can follow the
    ladder frame by frame instead of trailing it by up to a quarter second."""

    DEFAULT_CSS = """
    StatsBar { height: 2; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._line1: Text | None = None  # the state line as last shown
        self._for: Market | None = None  # the market it was shown for
        self._book_line: list[tuple[str, Style]] | None = None  # the book's line, as parts
        self._last_show: tuple[tuple, dict] | None = None  # shown again on a resize
        self._neutral = False  # lines rendered from Text: styles combined outside the palette

    def set_colors(self, colors: PanelColors, edge_color: str | None = None) -> None:
        super().set_colors(colors, edge_color)
        self._blank_style = colors.style(bg=colors.surface)

    def show(
        self,
        venue: str,
        symbol: str,
        market: Market | None,
        now: float,
        *,
        paused: bool = False,
        step: float | None = None,
        quote: bool = False,
        error: str = "",
        retry_key: str | None = None,
        recording: tuple[int, str] | None = None,
    ) -> None:
        """``recording``: (bytes written, why it stopped or "") while ``--record`` is on."""
        self._last_show = (
            (venue, symbol, market, now),
            {"paused": paused, "step": step, "quote": quote, "error": error, "retry_key": retry_key, "recording": recording},
        )
        c = self.pal
        if c is None:
            return
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        t.append(f" {safe(symbol, 40)} ", c.style(c.background, "axis", bold=True))
        t.append(f" {safe(venue, 30)} ", c.style("axis", c.surface, bold=True))
        t.append("  ")
        if paused:
            t.append(" PAUSED ", c.style(c.background, "spread", bold=True))
            t.append("  ")
        if market is None:
            if error:
                t.append("✕ UNAVAILABLE ", c.style("down", bold=True))
                if retry_key:
                    t.append(f"press {retry_key} to retry  ", c.style("axis", bold=True))
                t.append(safe(error, 160), c.style("down"))
            else:
                t.append("◐ CONNECTING", c.style("syncing", bold=True))
            self._line1, self._book_line, self._for = t, None, None
            self._set_lines(t)
            return
        st = market.state
        t.append(
            f"{STATE_MARK[st.status]} {st.status.value}", c.style(STATE_COLOR[st.status], bold=True)
        )
        if retry_key and st.status in (FeedStatus.FAILED, FeedStatus.RECONNECTING):
            # before the reason, which may be long: the way out stays on screen (the app gives
            # a key for a reconnect only while its wait can be cut short)
            t.append(f" press {retry_key} to retry ", c.style("axis", bold=True))
        if st.reason:
            t.append(" ")
            t.append(safe(st.reason, 120), c.style(STATE_COLOR[st.status]))
        behind = market.stats.latency.behind(now)
        if st.status is FeedStatus.LIVE and behind is not None and behind >= BEHIND_WARN:
            # the book is whole but late: a backlog here, on the network or at the venue
            t.append(f" {format_duration(behind)} behind", c.style("stale", bold=True))
        if recording is not None and recording[1]:
            # a recording that stopped (disk full, its size cap) is news: it stays in the line,
            # after the book's own state
            t.append("   ✕ REC stopped: ", c.style("down", bold=True))
            t.append(safe(recording[1], 60), c.style("down"))
        width = self.size.width or 10_000
        # the fields after the state, each whole or not at all: a narrow terminal drops them
        # from the end instead of wrapping the bar (which hid its second line)
        age = market.book_age(now)
        inst = market.instrument
        # a venue that pushes whole books on a clock (Hyperliquid: every 2-5 s) is late only
        # against its own measured cadence
        every = market.stats.book_every
        late = max(BOOK_AGE_WARN, 1.5 * every) if every else BOOK_AGE_WARN
        book_age = _field(c, "   book age ", format_duration(age), "stale" if age is not None and age > late else "axis")
        if every:
            pushed = book_age.copy()
            pushed.append(" / every ", c.style("muted"))
            pushed.append(format_duration(every), c.style("axis"))
            book_age = (pushed, book_age)
        fields: list[Text | tuple[Text, ...]] = [
            book_age,
            _field(c, "   resyncs ", str(market.resyncs), "stale" if market.resyncs else "axis"),
        ]
        stats = market.stats
        if stats.last_error and 0 <= now - stats.last_error_at < ERROR_SHOWN_FOR:
            # frames the feed could not use (a changed protocol, a broken proxy) or the venue's
            # own complaint: otherwise a book that stopped moving would say STALE and not why
            n = stats.bad_frames
            short = Text("   ⚠ ", c.style("stale", bold=True))
            short.append(f"{n:,} bad frame{'s' if n != 1 else ''}" if n else "venue error", c.style("stale"))
            full = short.copy()
            full.append(": " if not n else ", last: ", c.style("stale"))
            full.append(safe(stats.last_error, 60), c.style("stale"))
            fields.append((full, short))  # the reason when it fits
        if recording is not None and not recording[1]:
            rec = Text("   ● ", c.style("down"))
            rec.append("REC ", c.style("muted"))
            rec.append(format_bytes(recording[0]), c.style("axis"))
            fields.append(rec)
        if step is not None:
            fields.append(_field(c, "   group ", format_price(step, decimals_for(step)), "axis"))
        fields.append(_field(c, "   units ", inst.quote if quote else inst.base, "axis"))
        _append_fitting(t, fields, width)
        self._line1, self._for = t, market
        self._book_line = None
        self.show_book(market, now)

    def show_book(self, market: Market, now: float) -> None:
        """Only the second line (the book's figures, rates, latency), under the first line as
        last shown: what the app calls on a frame the book moved. Made of plain parts, not a
        ``Text`` (it runs every frame the book moves), and keyed by them."""
        c = self.pal
        if c is None or self._line1 is None or market is not self._for:
            return  # the first line is another market's: the next whole show() does both
        width = self.size.width or 10_000
        bg = c.surface
        muted, axis = c.style("muted", bg), c.style("axis", bg)
        # a book not LIVE (STALE, say) keeps its figures on screen, greyed as the ladder's and
        # the tape's are: they are not the market now
        live = market.live
        if not live:
            axis = muted
        book = market.book
        d = decimals_for(market.instrument.tick)
        lp = market.last_price
        # the tick's decimals, or more for a price off the tick (exact, never rounded to it)
        text = lp is not None and format_price(lp, decimals_shown(lp, d))
        last_style = c.style("spread", bg, bold=True) if live else muted
        parts: list[tuple[str, Style]] = [(" last ", muted), (text or "—", last_style)]
        mid = book.mid()
        text = mid is not None and format_price(mid, decimals_shown(mid, d + 1))
        fields: list[tuple[tuple[str, Style], ...]] = [(("  mid ", muted), (text or "—", axis))]
        sp = book.spread()
        if sp is None:
            fields.append((("  spread ", muted), ("—", axis)))
        else:
            b = bps(sp, mid)
            text = format_price(sp, decimals_shown(sp, d, scale=mid)) + (f" ({b:.2f} bp)" if b is not None else "")
            fields.append((("  spread ", muted), (text, axis)))
        imb = book.imbalance(10)
        if imb is None:
            fields.append((("  imb10 ", muted), ("—", axis)))
        else:
            tone = "bid" if imb > 0.1 else "ask" if imb < -0.1 else "axis"
            fields.append((("  imb10 ", muted), (f"{imb:+.2f}", c.style(tone, bg) if live else muted)))
        rate = compact(market.stats.messages.rate(now))
        fields.append((("   ", muted), (rate, axis), (" msg/s", muted)))
        p50, p99 = market.stats.latency.percentiles(now)
        tone = "stale" if p99 is not None and p99 > 0.5 else "axis"
        fields.append(
            (("   latency p50 ", muted), (format_ms(p50), axis), (" p99 ", muted), (format_ms(p99), c.style(tone, bg)))
        )
        # the fields after the last price, each whole or not at all (all one cell a character)
        room = width - sum(len(t) for t, _ in parts)
        for field in fields:
            n = sum(len(t) for t, _ in field)
            if n > room:
                break
            parts.extend(field)
            room -= n
        self._book_line = parts
        self._set_lines(self._line1, parts)

    @property
    def _text(self) -> Text:
        """Both lines as one Text (what the bar shows)."""
        lines = []
        if self._line1 is not None:
            lines.append(self._line1)
        if self._book_line is not None:
            lines.append(Text.assemble(*self._book_line))
        return Text("\n").join(lines) if lines else Text()

    def _set_lines(self, line1: Text, book: list[tuple[str, Style]] | None = None) -> None:
        """Show the lines; only a line whose text or styles changed is made and repainted."""
        c = self.pal
        keyed: list[tuple] = [
            ((line1.plain, tuple((sp.start, sp.end, sp.style) for sp in line1.spans), c.name), line1)
        ]
        if book is not None:
            # text and styles: a colour turns at a threshold its rounded text may not show
            # (an imbalance of 0.0996 and 0.1004 both read "+0.10")
            keyed.append((tuple(book), book))
        self.set_lines(keyed, self._segments)

    def _segments(self, line: Text | list[tuple[str, Style]]) -> list[Segment]:
        if isinstance(line, list):
            return [Segment(t, st) for t, st in line]
        c = self.pal
        line = line.copy()
        line.style = c.style(bg=c.surface)
        if line.cell_len > self.size.width:
            line.truncate(self.size.width, overflow="ellipsis")
        return list(line.render(self.app.console))

    def on_resize(self, event) -> None:
        # (LineWidget's own on_resize runs too: Textual calls each class's handler)
        # which fields fit depends on the width
        if self._last_show is not None:
            args, kw = self._last_show
            self.show(*args, **kw)


def format_bytes(n: int) -> str:
    """A file size as the stats bar shows it: "812 B", "45 kB", "12.3 MB", "1.20 GB"."""
    if n < 1000:
        return f"{n} B"
    if n < 1_000_000:
        return f"{n / 1e3:.0f} kB"
    if n < 1_000_000_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e9:.2f} GB"


def _field(c: PanelColors, label: str, value: str, tone: str) -> Text:
    t = Text(label, c.style("muted"))
    t.append(value, c.style(tone))
    return t


def _append_fitting(line: Text, fields: list[Text | tuple[Text, ...]], width: int) -> None:
    """Append ``fields`` in order while the line stays within ``width`` cells (the line's own
    last line: ``line`` may already hold a first line). A tuple is one field's forms, longest
    first: the first that fits is taken."""
    room = width - cell_len(line.plain.rsplit("\n", 1)[-1])
    for field in fields:
        forms = field if isinstance(field, tuple) else (field,)
        f = next((f for f in forms if f.cell_len <= room), None)
        if f is None:
            break
        line.append_text(f)
        room -= f.cell_len
