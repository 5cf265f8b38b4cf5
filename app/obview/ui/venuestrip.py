"""Venue strip: configured venues with their number key and feed state mark."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from obview.model import FeedState
from obview.text import safe
from obview.ui.lines import SteadyLines
from obview.ui.statsbar import STATE_COLOR, STATE_MARK
from obview.ui.theming import PanelColors

#: the strip's spacing, widest first: (around the key, between venues, around the state mark,
#: longest name before it is cut)
TIGHTER = [(" ", "  ", " ", 20), ("", " ", " ", 20), ("", " ", "", 20), ("", " ", "", 6)]


class VenueStrip(SteadyLines, Widget):
    DEFAULT_CSS = """
    VenueStrip { height: 1; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pal: PanelColors | None = None
        self._text = Text()
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
                t = self._entries(venues, current, states, *spacing)
                if t.cell_len + len(hint) <= width:
                    t.append(hint, c.style("muted"))
                    break
                t = None
        if t is None:
            for spacing in TIGHTER:
                t = self._entries(venues, current, states, *spacing)
                if t.cell_len <= width:
                    break
        self._text = t
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
    ) -> Text:
        c = self.pal
        assert c is not None
        t = Text(no_wrap=True, overflow="ellipsis", end="")
        for i, (v, st) in enumerate(zip(venues, states, strict=True)):
            num = str(i + 1) if i < 9 else " "
            cur = v == current
            t.append(f"{pad}{num}{pad}", c.style(c.background, "muted" if not cur else "spread", bold=True))
            if st is None:
                t.append(f"{sep}○{sep}", c.style("muted"))
            else:
                t.append(f"{sep}{STATE_MARK[st.status]}{sep}", c.style(STATE_COLOR[st.status], bold=True))
            t.append(safe(v, name_max), c.style("spread" if cur else "axis", bold=cur))
            t.append(gap)
        return t

    def render(self) -> Text:
        return self._text
