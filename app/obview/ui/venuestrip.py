"""Venue strip: configured venues with their number key and feed state mark; a click on one
switches to it."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget

from obview.model import FeedState
from obview.text import safe
from obview.ui.lines import SteadyLines
from obview.ui.statsbar import STATE_COLOR, STATE_MARK
from obview.ui.theming import PanelColors

#: the strip's spacing, widest first: (around the key, between venues, around the state mark,
#: longest name before it is cut)
#: longest name 0 leaves the names out (the stats bar names the venue on screen), so every
#: venue keeps its key and mark however narrow the terminal
TIGHTER = [
    (" ", "  ", " ", 20), ("", " ", " ", 20), ("", " ", "", 20), ("", " ", "", 6), ("", " ", "", 3),
    ("", " ", "", 0),
]  # fmt: skip


class VenueStrip(SteadyLines, Widget):
    DEFAULT_CSS = """
    VenueStrip { height: 1; width: 1fr; }
    """

    class Selected(Message):
        """A venue of the strip was clicked."""

        def __init__(self, venue: str) -> None:
            super().__init__()
            self.venue = venue

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pal: PanelColors | None = None
        self._text = Text()
        self._spans: list[tuple[int, int, str]] = []  # cells [start, end) of each venue's entry
        self._key: tuple | None = None
        self._last_show: tuple | None = None  # shown again on a resize

    def show(
        self, venues: list[str], current: str, states: list[FeedState | None], hint: str = ""
    ) -> None:
        self._last_show = (venues, current, states, hint)
        c = self.pal
        if c is None:
            return
        key = (
            tuple(venues),
            current,
            tuple((s.status, s.reason) if s else None for s in states),
            hint,
            c.name,
            self.size.width,
        )
        if key == self._key:
            return
        self._key = key
        width = self.size.width or 10_000
        # a narrow terminal: tighter and tighter, so that every venue keeps its key and mark,
        # and its name as long as it can. The key hint, whole or not at all, goes with the
        # first two spacings (where the strip still reads easily) when it fits.
        t = None
        if hint:
            for spacing in TIGHTER[:2]:
                t, spans = self._entries(venues, current, states, *spacing)
                if t.cell_len + len(hint) <= width:
                    t.append(hint, c.style("muted"))
                    break
                t = None
        if t is None:
            for spacing in TIGHTER:
                t, spans = self._entries(venues, current, states, *spacing)
                if t.cell_len <= width:
                    break
        self._text = t
        self._spans = spans
        self.refresh()

    def on_resize(self) -> None:
        # how much fits depends on the width
        if self._last_show is not None:
            self.show(*self._last_show)

    def _entries(
        self,
        venues: list[str],
        current: str,
        states: list[FeedState | None],
        pad: str,
        gap: str,
        sep: str = " ",
        name_max: int = 20,
    ) -> tuple[Text, list[tuple[int, int, str]]]:
        c = self.pal
        assert c is not None
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        spans: list[tuple[int, int, str]] = []
        for i, (v, st) in enumerate(zip(venues, states, strict=True)):
            start = t.cell_len
            num = str(i + 1) if i < 9 else " "
            cur = v == current
            t.append(f"{pad}{num}{pad}", c.style(c.background, "muted" if not cur else "spread", bold=True))
            if st is None:
                t.append(f"{sep}○{sep}", c.style("muted"))
            else:
                t.append(f"{sep}{STATE_MARK[st.status]}{sep}", c.style(STATE_COLOR[st.status], bold=True))
            if name_max:
                # short cuts read better as a plain prefix ("bin", "hyp") than with an ellipsis
                name = safe(v, name_max) if name_max > 4 else safe(v, 40)[:name_max]
                t.append(name, c.style("spread" if cur else "axis", bold=cur))
            spans.append((start, t.cell_len, v))
            t.append(gap)
        return t, spans

    def venue_at(self, x: int) -> str | None:
        """The venue whose entry covers cell ``x`` of the strip."""
        for start, end, v in self._spans:
            if start <= x < end:
                return v
        return None

    def on_click(self, event: events.Click) -> None:
        venue = self.venue_at(event.x)
        if venue is not None:
            self.post_message(self.Selected(venue))

    def render(self) -> Text:
        return self._text
