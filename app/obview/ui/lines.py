"""Base for hot widgets: lines are cached Strips; only lines whose content changed repaint."""

from __future__ import annotations

from collections.abc import Hashable

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from obview.ui.theming import PanelColors


class LineWidget(Widget):
    """Keeps one (key, Strip) per line. ``set_lines`` swaps in new lines and marks dirty only
    those whose key changed, so a frame where one level moved repaints one line."""

    DEFAULT_CSS = """
    LineWidget { height: 1fr; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._keys: list[Hashable] = []
        self._strips: list[Strip] = []
        self.pal: PanelColors | None = None
        self._blank_style = Style()
        self.needs_update = True  # set on resize: the app repaints this widget next frame

    def on_resize(self, _event) -> None:
        self.needs_update = True
        self._keys = []

    def set_colors(self, colors: PanelColors) -> None:
        self.pal = colors
        self._blank_style = colors.style(bg=colors.background)
        self._keys = []  # every line rebuilds with the new styles
        self.refresh()

    def set_lines(self, keyed: list[tuple[Hashable, object]], build) -> int:
        """``keyed`` = [(key, payload)] per line; ``build(payload) -> list[Segment]`` is called
        only for changed keys. Returns how many lines changed."""
        width = self.size.width
        changed = 0
        old_keys = self._keys
        # strips by key: a line that only moved (the tape scrolling, the ladder window moving)
        # reuses its Strip instead of building a new one
        known = dict(zip(old_keys, self._strips, strict=False))
        new_keys: list[Hashable] = []
        new_strips: list[Strip] = []
        # changed lines, as runs of consecutive rows: one region each, one refresh call in all
        runs: list[list[int]] = []
        for y, (key, payload) in enumerate(keyed):
            k = (key, width)
            new_keys.append(k)
            if y < len(old_keys) and old_keys[y] == k:
                new_strips.append(self._strips[y])
                continue
            strip = known.get(k)
            if strip is None:
                strip = Strip(build(payload)).adjust_cell_length(width, self._blank_style)
            new_strips.append(strip)
            changed += 1
            if runs and runs[-1][1] == y:
                runs[-1][1] = y + 1
            else:
                runs.append([y, y + 1])
        if len(keyed) < len(old_keys):
            runs.append([len(keyed), len(old_keys)])
            changed += len(old_keys) - len(keyed)
        self._keys, self._strips = new_keys, new_strips
        if runs:
            self.refresh(*(Region(0, a, width, b - a) for a, b in runs))
        return changed

    def render_line(self, y: int) -> Strip:
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self._blank_style)


def seg(text: str, style: Style) -> Segment:
    return Segment(text, style)
