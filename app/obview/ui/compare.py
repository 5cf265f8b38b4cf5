"""Compare view (key ``x``): the symbol on every configured venue, side by side.

While it is open, the feed manager holds a feed to each venue open (past the warm limit); on
close the ones never viewed are closed again. Keys 1-9, or a click on a venue's row, switch to
that venue and close the view.
Everything from the network (venue names, state reasons) is drawn as ``Text``.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console, Group
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from obview.compare import Comparison, VenueRow, compare
from obview.model import FeedStatus
from obview.text import safe
from obview.ui.numbers import align_on_point, compact, decimals_for, format_ms, format_price
from obview.ui.screens import _Modal
from obview.ui.statsbar import STATE_COLOR, STATE_MARK
from obview.ui.theming import PanelColors

#: seconds between refreshes of the table
REFRESH = 0.25

# columns: (key, header), left to right
COLUMNS = [
    ("key", "#"),
    ("venue", "venue"),
    ("state", "state"),
    ("bid", "bid"),
    ("ask", "ask"),
    ("spread", "spread"),
    ("bid_depth", "bids"),
    ("ask_depth", "asks"),
    ("vs_mid", "vs mid"),
    ("latency", "latency"),
    ("msgs", "msg/s"),
]
#: a non-LIVE venue's reason is cut to this many characters in its row, or to the second
#: figure on a narrow terminal
REASON_CHARS = (80, 28, 12)
#: what a narrow terminal gives up first, then next ... ("long_reason": reasons cut to the
#: second figure, "reason": to the third)
DROP_ORDER = [
    ("long_reason",), ("msgs",), ("latency",), ("vs_mid",), ("reason",), ("bid_depth", "ask_depth"), ("spread",),
    ("no_reason",), ("key",), ("tight",), ("state_word",),
]  # fmt: skip
_MEASURE = Console(width=10_000, color_system=None)


def _bp(x: float | None, sign: bool = False) -> str:
    if x is None:
        return "—"
    d = 2 if abs(x) < 1 else 1  # a liquid perp's spread is a fraction of a basis point
    return f"{x:+.{d}f}bp" if sign else f"{x:.{d}f}bp"


def comparison_table(
    cmp: Comparison, c: PanelColors, width: int, errors: dict[str, str] | None = None
) -> Table:
    """The rows of ``cmp`` as a table of at most ``width`` cells: where they do not all fit,
    whole columns are left out (``DROP_ORDER``), never cut short."""
    dropped: set[str] = set()
    for drop in [(), *DROP_ORDER]:
        dropped.update(drop)
        keys = [k for k, _ in COLUMNS if k not in dropped]
        reason = (
            0 if "no_reason" in dropped
            else REASON_CHARS[2] if "reason" in dropped
            else REASON_CHARS[1] if "long_reason" in dropped
            else REASON_CHARS[0]
        )  # fmt: skip
        table = _table(cmp, c, keys, errors or {}, reason, dropped)
        if Measurement.get(_MEASURE, _MEASURE.options, table).maximum <= width:
            break
    return table


def _table(
    cmp: Comparison,
    c: PanelColors,
    keys: list[str],
    errors: dict[str, str],
    reason: int,
    dropped: frozenset[str] | set[str] = frozenset(),
) -> Table:
    headers = dict(COLUMNS)
    word = "state_word" not in dropped  # last resort: the state's mark alone (● ◐ ◌ ✕)
    table = Table(
        box=None,
        padding=(0, 1 if "tight" in dropped else 2, 0, 0),
        expand=False,
        show_edge=False,
        header_style=c.style("muted", bold=True),
    )
    for k in keys:
        right = k not in ("key", "venue", "state")
        table.add_column(
            headers[k],
            justify="right" if right else "left",
            no_wrap=True,
            overflow="ellipsis",
        )
    # prices line up on the point across venues of different ticks (97010 beside 97010.3):
    # equal-width strings, left-justified in their right-justified column
    live = [r for r in cmp.rows if r.live]
    fmt = [decimals_for(r.tick or 0.01) for r in live]
    bids = align_on_point([format_price(r.bid or 0.0, d) for r, d in zip(live, fmt, strict=True)])
    asks = align_on_point([format_price(r.ask or 0.0, d) for r, d in zip(live, fmt, strict=True)])
    prices = {id(r): (b, a) for r, b, a in zip(live, bids, asks, strict=True)}
    for r in cmp.rows:
        p = prices.get(id(r), ("", ""))
        table.add_row(*[_cell(k, r, c, errors.get(r.venue, ""), reason, word, p) for k in keys])
    return table


def _cell(
    key: str,
    r: VenueRow,
    c: PanelColors,
    error: str,
    reason: int,
    word: bool = True,
    prices: tuple[str, str] | None = None,
) -> Text:
    if key == "key":
        return Text(r.key, c.style("axis", bold=True))
    if key == "venue":
        return Text(safe(r.venue, 20), c.style("axis"))
    if key == "state":
        st = r.state
        if st is None:
            return Text(safe(error, 40) if error else "○ not open", c.style("muted"))
        label = f"{STATE_MARK[st.status]} {st.status.value}" if word else STATE_MARK[st.status]
        t = Text(label, c.style(STATE_COLOR[st.status], bold=True))
        if st.status is FeedStatus.LIVE and not r.live:
            t.append(" (empty)", c.style("muted"))
        elif st.reason and not r.live and reason:
            # why it has no prices to show, short: the stats bar has it whole once switched to
            t.append(" ")
            t.append(safe(st.reason, reason), c.style(STATE_COLOR[st.status]))
        return t
    if not r.live:
        return Text("")
    if prices is None:
        d = decimals_for(r.tick or 0.01)
        prices = (format_price(r.bid or 0.0, d), format_price(r.ask or 0.0, d))
    if key == "bid":
        return Text(prices[0], c.style("bid_text", bold=r.best_bid), justify="left")
    if key == "ask":
        return Text(prices[1], c.style("ask_text", bold=r.best_ask), justify="left")
    if key == "spread":
        return Text(_bp(r.spread_bps), c.style("spread"))
    if key in ("bid_depth", "ask_depth"):
        bid = key == "bid_depth"
        depth, reach = (r.bid_depth, r.bid_reach_bps) if bid else (r.ask_depth, r.ask_reach_bps)
        t = Text(compact(depth) if depth is not None else "—", c.style("bid" if bid else "ask"))
        # the venue's book ends inside the band: a sum of what it holds, said under the table
        t.append("*" if reach is not None else " ", c.style("stale", bold=True))
        return t
    if key == "vs_mid":
        return Text(_bp(r.vs_mid_bps, sign=True), c.style("axis"))
    if key == "latency":
        return Text(format_ms(r.latency), c.style("axis"))
    if key == "msgs":
        return Text(f"{r.msgs:.0f}" if r.msgs is not None else "—", c.style("axis"))
    raise KeyError(key)


def shallow_note(cmp: Comparison) -> str:
    """What a ``*`` by a depth means, naming the venues whose books end inside the band and
    how far they reach (or "" when every book reaches it)."""
    reach = []
    for r in cmp.rows:
        sides = [x for x in (r.bid_reach_bps, r.ask_reach_bps) if x is not None]
        if r.live and sides:
            reach.append(f"{safe(r.venue, 20)} ±{min(sides):.1f}bp")
    if not reach:
        return ""
    return (
        f"* the book the venue sends ends inside ±{cmp.band_bps:g}bp ({', '.join(reach)}):"
        " the sum is of what it holds"
    )


def summary_line(cmp: Comparison, c: PanelColors, symbol: str, width: int | None = None) -> Text:
    """Across the LIVE venues: the best bid and ask, where they are, and the spread between.
    With ``width``, a line too long for it breaks between those figures, never inside one (a
    price and the venue quoting it stay together)."""
    head = Text()
    head.append(f" {safe(symbol, 40)} ", c.style(c.background, "axis", bold=True))
    head.append(f"  {cmp.live} of {len(cmp.rows)} venues LIVE", c.style("axis"))
    groups = [head]
    if cmp.best_bid is not None and cmp.best_ask is not None and cmp.cross_spread_bps is not None:
        d = max(decimals_for(r.tick or 0.01) for r in cmp.rows if r.live)
        for name, price, venue, tone in (
            ("best bid ", cmp.best_bid, cmp.best_bid_venue, "bid_text"),
            ("best ask ", cmp.best_ask, cmp.best_ask_venue, "ask_text"),
        ):
            g = Text(name, c.style("muted"))
            g.append(format_price(price, d), c.style(tone, bold=True))
            g.append(f" {safe(venue, 20)}", c.style("axis"))
            groups.append(g)
        if cmp.cross_spread_bps < 0:
            # one venue's bid above another's ask
            groups.append(
                Text(f"crossed across venues by {_bp(-cmp.cross_spread_bps)}", c.style("stale", bold=True))
            )
        else:
            g = Text("spread across venues ", c.style("muted"))
            g.append(_bp(cmp.cross_spread_bps), c.style("spread", bold=True))
            groups.append(g)
    t = groups[0]
    line = t.cell_len
    for g in groups[1:]:
        if width is not None and line + 3 + g.cell_len > width:
            t.append("\n ")
            line = 1
        else:
            t.append("   ")
            line += 3
        t.append_text(g)
        line += g.cell_len
    return t


class CompareScreen(_Modal):
    BINDINGS = [
        Binding("escape,x,q", "close", "Close"),
        *[Binding(str(i), f"pick({i})", show=False) for i in range(1, 10)],
    ]
    DEFAULT_CSS = """
    CompareScreen { align: center middle; }
    CompareScreen > Vertical { width: auto; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1; }
    CompareScreen Static { width: auto; }
    """

    def __init__(
        self,
        manager,
        venues: list[str],
        symbol: str,
        pal: PanelColors,
        clock: Callable[[], float],
    ) -> None:
        super().__init__()
        self.manager = manager
        self.venues = list(venues)
        self.symbol = symbol
        self.pal = pal
        self.clock = clock
        self.errors: dict[str, str] = {}  # venue -> why it has no feed here (symbol not listed)
        self.comparison: Comparison | None = None
        self.shown: Group | None = None  # what the body was last given
        self._above: Group | None = None  # the body down to the table's last row, for clicks
        self._body = Static(id="compare-body")
        self._need, self._width_for = 0, -1  # the widest content so far, at this terminal width

    def compose(self) -> ComposeResult:
        with Vertical():
            yield self._body

    def on_mount(self) -> None:
        self._open_all()
        self._refresh()
        self.set_interval(REFRESH, self._refresh)

    @work(group="compare-open")
    async def _open_all(self) -> None:
        for v in self.venues:
            try:
                await self.manager.open(v, self.symbol, pin=True)
            except ValueError:  # the venue does not list this symbol
                self.errors[v] = f"○ no {self.symbol}"
            except Exception as e:  # the feed could not be started: say why in its row
                self.errors[v] = f"✕ {type(e).__name__}"
            if not self.is_attached:
                return

    def _refresh(self) -> None:
        get = getattr(self.manager, "get", None)
        markets = [get(v, self.symbol) if get else None for v in self.venues]
        cmp = compare(self.venues, markets, self.clock())
        self.comparison = cmp
        width = max(20, self.app.size.width - 4)
        c = self.pal
        hint = Text(
            f"bids, asks: quote notional resting within ±{cmp.band_bps:g}bp of each venue's own mid ·"
            " vs mid: against the LIVE venues' median mid · 1-9 or a click switch to a venue · esc close",
            c.style("muted"),
        )
        short = shallow_note(cmp)
        if short:
            hint.append("\n")
            hint.append(short, c.style("stale"))
        table = comparison_table(cmp, c, width, self.errors)
        head = summary_line(cmp, c, self.symbol)  # its length on one line
        need = max(
            # measured unbounded: the app's console is only as wide as its first screen
            Measurement.get(_MEASURE, _MEASURE.options, table).maximum,
            min(head.cell_len, width),
            60,
        )
        # grown, the box keeps its width while open (a summary changing length, "spread" to
        # "crossed" and back, moved the centred box sideways every few seconds); a resize of
        # the terminal starts afresh
        size = self.app.size.width
        if self._width_for != size:
            self._width_for, self._need = size, 0
        self._need = need = max(need, self._need)
        box = self.query_one(Vertical)
        box.styles.width = min(need + 4, size)  # + border and padding
        # broken between its figures to the body's width (the box less border and padding)
        head = summary_line(cmp, c, self.symbol, max(1, min(need, size - 4)))
        self._above = Group(head, Text(""), table)
        self.shown = Group(head, Text(""), table, Text(""), hint)
        self._body.update(self.shown)

    def row_at(self, y: int) -> int | None:
        """The table row (0 = the first venue) on line ``y`` of the body, if any: the rows are
        the last lines of the body laid out down to the table's end at the body's width (the
        summary above wraps on a narrow terminal)."""
        if self._above is None or self.comparison is None:
            return None
        n = len(self.comparison.rows)
        opts = _MEASURE.options.update_width(max(1, self._body.size.width))
        i = y - (len(_MEASURE.render_lines(self._above, opts, pad=False)) - n)
        return i if 0 <= i < n else None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self._body)
        if offset is None:
            return
        i = self.row_at(offset.y)
        if i is not None:
            event.stop()
            self.action_pick(i + 1)

    def action_pick(self, n: int) -> None:
        if 1 <= n <= len(self.venues):
            self.dismiss(self.venues[n - 1])

    def action_close(self) -> None:
        self.dismiss(None)
