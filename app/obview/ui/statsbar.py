"""Stats bar: identity, feed state with its reason, book age, prices, rates, latency.

Everything that came from the network is appended as plain ``Text`` spans, never markup.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from obview.market import Market
from obview.model import FeedStatus
from obview.text import safe
from obview.ui.lines import SteadyLines
from obview.ui.theming import PanelColors
from obview.ui.viewmodel import (
    bps,
    compact,
    decimals_for,
    format_duration,
    format_ms,
    format_price,
)

#: a LIVE book whose messages arrive this much later than the minute's quickest is flagged
BEHIND_WARN = 1.0

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


class StatsBar(SteadyLines, Widget):
    DEFAULT_CSS = """
    StatsBar { height: 2; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pal: PanelColors | None = None
        self._text = Text()

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
    ) -> None:
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
                t.append(safe(error, 160), c.style("down"))
            else:
                t.append("◐ CONNECTING", c.style("syncing", bold=True))
            t.append("\n")
            self._text = t
            self.refresh()
            return
        st = market.state
        t.append(
            f"{STATE_MARK[st.status]} {st.status.value}", c.style(STATE_COLOR[st.status], bold=True)
        )
        if st.reason:
            t.append(" ")
            t.append(safe(st.reason, 120), c.style(STATE_COLOR[st.status]))
        behind = market.stats.latency.behind(now)
        if st.status is FeedStatus.LIVE and behind is not None and behind >= BEHIND_WARN:
            # the book is whole but late: a backlog here, on the network or at the venue
            t.append(f" {format_duration(behind)} behind", c.style("stale", bold=True))
        age = market.book_age(now)
        t.append("   book age ", c.style("muted"))
        t.append(format_duration(age), c.style("stale" if age is not None and age > 2 else "axis"))
        t.append("   resyncs ", c.style("muted"))
        t.append(str(market.resyncs), c.style("stale" if market.resyncs else "axis"))
        if step is not None:
            t.append("   group ", c.style("muted"))
            t.append(format_price(step, decimals_for(step)), c.style("axis"))
        t.append("   units ", c.style("muted"))
        inst = market.instrument
        t.append(inst.quote if quote else inst.base, c.style("axis"))
        t.append("\n")

        book = market.book
        d = decimals_for(inst.tick)
        lp = market.last_price
        t.append(" last ", c.style("muted"))
        t.append(format_price(lp, d) if lp is not None else "—", c.style("spread", bold=True))
        mid = book.mid()
        t.append("  mid ", c.style("muted"))
        t.append(format_price(mid, d + 1) if mid is not None else "—", c.style("axis"))
        sp = book.spread()
        t.append("  spread ", c.style("muted"))
        if sp is None:
            t.append("—", c.style("axis"))
        else:
            b = bps(sp, mid)
            t.append(format_price(sp, d), c.style("axis"))
            t.append(f" ({b:.2f} bp)" if b is not None else "", c.style("axis"))
        imb = book.imbalance(10)
        t.append("  imb10 ", c.style("muted"))
        if imb is None:
            t.append("—", c.style("axis"))
        else:
            t.append(
                f"{imb:+.2f}", c.style("bid" if imb > 0.1 else "ask" if imb < -0.1 else "axis")
            )
        t.append("   ", c.style("muted"))
        t.append(compact(market.stats.messages.rate(now)), c.style("axis"))
        t.append(" msg/s", c.style("muted"))
        p50, p99 = market.stats.latency.percentiles(now)
        t.append("   latency p50 ", c.style("muted"))
        t.append(format_ms(p50), c.style("axis"))
        t.append(" p99 ", c.style("muted"))
        t.append(format_ms(p99), c.style("stale" if p99 is not None and p99 > 0.5 else "axis"))
        self._text = t
        self.refresh()

    def render(self) -> Text:
        return self._text
