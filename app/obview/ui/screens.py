"""Modal screens: help, venue picker, symbol prompt, command palette."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.await_complete import AwaitComplete
from textual.binding import Binding
from textual.command import CommandPalette
from textual.containers import Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

HELP_ROWS: list[tuple[str, str]] = [
    ("1 – 9", "switch to venue N of the strip (its own key retries a failed feed, or reconnects one waiting to); or click it"),
    ("[  ]", "previous / next venue"),
    ("v", "venue picker"),
    ("x", "compare venues: the symbol's bid, ask, spread and depth on every venue at once; its number or a click on its row switches to one"),
    ("s", "switch symbol (validated)"),
    ("+  -", "coarser / finer price grouping (ladder and heatmap zoom)"),
    ("u", "units: base size / quote notional (ladder and tape)"),
    ("space", "pause the panels on this moment (grouping and units redraw it; feeds and the status line keep running; resume catches up)"),
    (",  .", "heatmap contrast: lower / raise the high percentile cut-off"),
    ("<  >", "heatmap floor: lower / raise the low percentile cut-off"),
    ("z  Z", "heatmap time: more / fewer seconds a column (0.25 s to 60 s: up to an hour back)"),
    ("t", "next theme"),
    ("c", "next heatmap colormap"),
    ("H  L  T", "show / hide heatmap, ladder, tape (back to what the width shows: automatic again)"),
    ("ctrl+p", "command palette: venues, symbols, themes, colormaps"),
    ("?", "this help"),
    ("ctrl+z", "suspend to the shell (fg resumes; a venue that dropped the feed meanwhile resyncs)"),
    ("q", "quit"),
]

LEGEND: list[str] = [
    "Heatmap: x = time (newest right), y = price; colour = resting size, log scale between the"
    " low/high cut-offs shown in its title. Bright lines trace best bid and best ask. Zoomed out"
    " in time (z), a column shows the mean resting size of its seconds and all their trades.",
    "Dots are trades, coloured by taker side, area growing with volume.",
    "╱╱ hatching = the feed was not LIVE then (no book is shown for that time), or a price"
    " beyond what the sample looked at (±1% of the mid; ±0.5% from 10 s a column).",
    "State marks: ● live  ◐ connecting/syncing  ◌ stale/reconnecting  ✕ down  ○ not connected",
    '"LIVE 2.3s behind": the book is whole but its messages arrive that much later than usual.',
    "Heatmap bottom line: the time axis. \"-30s┴\" = the column above the tick is 30 s before the"
    " newest (the right edge, \"now\"; \"paused\" while paused, \"ended\" when the feed's samples"
    " stopped: ages count from that moment);"
    " ≈ = time missing between two columns. Under the prices: the seconds a column.",
    "Heatmap title: \"row 1 (½ 0.5)\" = a text row is a price bucket of 1, each half-cell 0.5;"
    " \"unaligned\" = the grouping is finer than the heatmap's bucket, so the heatmap keeps a"
    " price axis of its own beside the ladder.",
    "Tape: ▲ taker buy, ▼ taker sell; ×3 = three fills of one taker in one millisecond at one"
    " price; →96998.4 = where a sweep across prices ended (Δ+1.3 when narrow); a tinted row is"
    " a large trade by quote notional. LIQ = a liquidation (or its venue's report of one),"
    " ADL = deleveraging, BLK = a block trade (off the book, not on the heatmap), where the"
    " venue marks them (L, A, B when narrow); \"liq 1.2\" in the minute's flow = what"
    " liquidations forced.",
    "Status line: imb10 = (bid − ask) / (bid + ask) of the size resting in the top 10 levels"
    " (+1 all bids, −1 all asks); latency = venue time to arrival, p50/p99 over a minute.",
    "Ladder header: the spread, in price and in bp, after the column names.",
]


class _OnTop:
    """A screen that is dismissed once, and only while it is on top of the stack.

    ``Screen.dismiss`` pops whatever screen is on top. Keys that arrive together (the app was
    busy) are handled one after another by a screen that may already be gone: Enter then
    Escape, or two Enters, dismissed a modal twice, which popped the main screen's stack and
    crashed the app with ScreenStackError; an Enter queued for the symbol prompt after ctrl+p
    closed the command palette instead and answered the prompt twice. Such a dismiss now does
    nothing."""

    def dismiss(self, result: object = None) -> AwaitComplete:
        if self.app.screen is not self:  # type: ignore[attr-defined]
            return AwaitComplete()
        return super().dismiss(result)  # type: ignore[misc]


class _Modal(_OnTop, ModalScreen):
    pass


class HelpScreen(_Modal):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss_help", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 100; max-width: 100%; height: auto; max-height: 100%;
        border: round $primary; background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for k, d in HELP_ROWS:
            table.add_row(Text(k), Text(d))
        legend = Table.grid(padding=(0, 0, 0, 2), pad_edge=True)  # wrapped lines keep the indent
        legend.add_column()
        for line in LEGEND:
            legend.add_row(Text(line))
        # scrolls (arrow keys, page keys, wheel) where the terminal is too small for it all
        with VerticalScroll():
            yield Label(Text("obview — keys", style="bold"))
            yield Static(table)
            yield Label(Text("Reading the screen"))
            yield Static(legend)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class VenuePicker(_Modal):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    VenuePicker { align: center middle; }
    VenuePicker > Vertical { width: 40; height: auto; max-height: 80%; border: round $primary;
        background: $surface; }
    VenuePicker OptionList { height: auto; max-height: 20; }
    """

    def __init__(self, venues: list[str], current: str, states=None, pal=None) -> None:
        super().__init__()
        self.venues = venues
        self.current = current
        self.states = states or {}  # venue -> FeedState of its feed for this symbol (None: none)
        self.pal = pal

    def _row(self, i: int, venue: str) -> Text:
        from obview.ui.statsbar import STATE_COLOR, STATE_MARK

        t = Text(f"{i + 1}  " if i < 9 else "   ")
        t.append(venue.ljust(12))
        st = self.states.get(venue)
        if st is None:
            t.append("○ not connected", self.pal.style("muted") if self.pal else "")
        else:
            # the mark and the word: states read without colour vision too
            t.append(
                f"{STATE_MARK[st.status]} {st.status.value}",
                self.pal.style(STATE_COLOR[st.status]) if self.pal else "",
            )
        return t

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(" Venue")
            opts = [Option(self._row(i, v), id=v) for i, v in enumerate(self.venues)]
            ol = OptionList(*opts)
            yield ol

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if self.current in self.venues:
            ol.highlighted = self.venues.index(self.current)
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class SymbolPrompt(_Modal):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    SymbolPrompt { align: center middle; }
    SymbolPrompt > Vertical { width: 50; height: auto; border: round $primary; background: $surface; }
    """

    def __init__(self, current: str, choices: list[str]) -> None:
        super().__init__()
        self.current = current
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(" Symbol (e.g. " + ", ".join(self.choices[:4]) + ")"))
            yield Input(value=self.current, placeholder="BTC-PERP", id="symbol-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


#: the command palette's search, undecorated (``Palette`` runs it in a worker of its own)
_GATHER = getattr(CommandPalette._gather_commands, "__wrapped__", None)


class Palette(_OnTop, CommandPalette):
    """Textual's command palette, minus two crashes on keys that arrive together (as when the
    app is busy with a burst): PageUp / PageDown reaching its list before the list has been
    laid out raised a KeyError in ``OptionList._move_page`` (such a key now does nothing, as on
    an empty list), and a second Enter dismissed it again once gone (``_OnTop``); also a
    search started as it closes, or an arrow key reaching it once its list is gone. A chosen
    command runs once: Enters queued behind the choice ran it again, once each."""

    _ran = False

    @on(Input.Submitted)
    @on(Button.Pressed)
    def _select_or_command(self, event: Input.Submitted | Button.Pressed | None = None) -> None:
        if event is not None:
            # the base class registered its own copy of this handler: run only this one
            event.prevent_default()
            event.stop()
        if self._ran:
            return
        if not self._list_visible and self._selected_command is not None:
            self._ran = True  # this call runs the command and closes the palette
        try:
            super()._select_or_command(event)
        except NoMatches:  # an Enter reaching it once its list is gone (it ended the app)
            pass

    def _action_command_list(self, action: str) -> None:
        try:
            super()._action_command_list(action)
        except (KeyError, IndexError, NoMatches):
            # NoMatches: an arrow key queued behind the choice reaches the palette as it closes,
            # its list already gone (it ended the app)
            pass

    def _action_cursor_down(self) -> None:
        try:
            super()._action_cursor_down()
        except NoMatches:  # as above: the list is gone
            pass

    if _GATHER is not None:

        @work(exclusive=True, group=CommandPalette._GATHER_COMMANDS_GROUP)
        async def _gather_commands(self, search_value: str) -> None:
            # a key typed into the search as the palette closes starts a search on a palette
            # whose list is already gone: its worker failed with NoMatches and ended the app
            try:
                await _GATHER(self, search_value)
            except NoMatches:
                pass
