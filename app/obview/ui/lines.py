"""Base for hot widgets: lines are cached Strips; only lines whose content changed repaint."""

from __future__ import annotations

from collections.abc import Hashable

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual.filter import ANSIToTruecolor
from textual.geometry import Region, Spacing
from textual.strip import Strip
from textual.widget import Widget

from obview.ui.theming import PanelColors, ansi_neutral

_NO_GUTTER = Spacing(0, 0, 0, 0)

#: the per-Strip caches of Textual's ``Strip`` (slots; a version without them all makes
#: ``release_strips`` a no-op)
_STRIP_CACHES = (
    "_divide_cache",
    "_crop_cache",
    "_filter_cache",
    "_crop_extend_cache",
    "_line_length_cache",
    "_style_cache",
    "_offsets_cache",
)


def _release(strip: Strip, depth: int) -> None:
    for name in _STRIP_CACHES:
        entries = getattr(strip, name)._cache
        if not entries:
            continue
        if depth:
            for value in list(entries.values()):
                for derived in value if isinstance(value, list) else (value,):
                    if derived is not strip and isinstance(derived, Strip):
                        _release(derived, depth - 1)
        entries.clear()


def _has_caches() -> bool:
    probe = Strip([])
    return all(hasattr(getattr(probe, name, None), "_cache") for name in _STRIP_CACHES)


_HAS_CACHES = _has_caches()


def release_strips(old: list[Strip], kept: list[Strip]) -> None:
    """Empty the caches of the lines in ``old`` that are not in ``kept`` (and of the Strips
    derived from them: filtered, cropped, divided).

    Textual's ``Strip.divide`` at a single cut caches a list holding the strip itself, and the
    compositor divides every line it paints, so every painted line is a reference cycle: once
    replaced it is garbage only the cyclic collector frees, together with its seven caches. A
    widget that replaces tens of lines a frame makes young collections of tens of thousands of
    objects (about 10 ms each) and, through them, stalls of 30-100 ms. Emptied caches break the
    cycles, so reference counting frees a replaced line at once. Clearing a cache never changes
    a Strip's content."""
    if not _HAS_CACHES:
        return
    keep = {id(s) for s in kept}
    for strip in old:
        if id(strip) not in keep:
            _release(strip, 3)


class SteadyLines:
    """For a widget (or container) that Textual's compositor asks for its lines every frame
    although they rarely change: hands back the lines it gave last time until Textual marks it
    dirty.

    The compositor renders every widget whose clip overlaps the frame's dirty box, and for a
    child of the screen the clip is the whole screen: the bars, the footer, the panels'
    container and the screen itself go through Textual's styles cache each frame (about 0.7 ms
    a frame between them, for lines that change a few times a second). A repaint request
    (``refresh``) marks the styles cache dirty or clears it, and a new size, crop, background or
    line filter (a theme, a dimmed screen below a modal) is part of the key, so none of them is
    ever answered from the memo."""

    _steady: tuple | None = None

    def render_lines(self, crop: Region) -> list[Strip]:
        cache = self._styles_cache  # type: ignore[attr-defined]
        key = (
            crop,
            self.size,  # type: ignore[attr-defined]
            self.background_colors,  # type: ignore[attr-defined]
            tuple(self.get_line_filters()),  # type: ignore[attr-defined]
        )
        memo = self._steady
        if (
            memo is not None
            and memo[0] == key
            and not getattr(cache, "_dirty_lines", True)
            and getattr(cache, "_cache", None)
        ):
            return memo[1]
        lines = super().render_lines(crop)  # type: ignore[misc]
        self._steady = (key, lines)
        return lines


class LineWidget(Widget):
    """Keeps one (key, Strip) per line. ``set_lines`` swaps in new lines and marks dirty only
    those whose key changed, so a frame where one level moved repaints one line.

    A panel that needs a separator at its left edge sets ``edge = 1``: the separator is drawn
    as the first cell of every line (in ``edge_style``), not as a CSS border, and builders lay
    their content out in ``content_width``. With no CSS gutter, tint or opacity on the widget,
    ``render_lines`` hands the compositor these same Strip objects (through the app's line
    filters) instead of having Textual's styles cache restyle every line into a new Strip each
    frame: an unchanged line then costs a few cache look-ups, and a changed one is filtered once.
    """

    DEFAULT_CSS = """
    LineWidget { height: 1fr; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._keys: list[Hashable] = []
        self._strips: list[Strip] = []
        self.pal: PanelColors | None = None
        self._blank_style = Style()
        self.edge = 0
        self.edge_style = Style()
        self._blank_line: Strip | None = None
        self._neutral = True  # see ``_note_style``
        self.needs_update = True  # set on resize: the app repaints this widget next frame

    @property
    def content_width(self) -> int:
        """Cells a line's content may use: the width less the edge separator."""
        return max(0, self.size.width - self.edge)

    def on_resize(self, _event) -> None:
        self.needs_update = True
        self._keys = []
        self._blank_line = None

    def set_colors(self, colors: PanelColors, edge_color: str | None = None) -> None:
        """Paint with ``colors``; ``edge_color`` (a hex colour) draws the left separator."""
        self.pal = colors
        self._blank_style = colors.style(bg=colors.background)
        if edge_color is not None:
            self.edge = 1
            self.edge_style = colors.style(edge_color, colors.background)
        self._blank_line = None
        self._keys = []  # every line rebuilds with the new styles
        self.refresh()

    def _note_style(self, style: Style) -> None:
        """Made a Style outside ``PanelColors.style``: note whether it is ``ansi_neutral``."""
        if self._neutral and not ansi_neutral(style):
            self._neutral = False

    def _line(self, segments: list[Segment], width: int) -> Strip:
        """A full-width Strip: the edge separator (if any), then ``segments``, padded or cut."""
        if self.edge and width > 0:
            segments = [Segment("▏", self.edge_style), *segments]
        else:
            segments = list(segments)
        n = sum([cell_len(s.text) for s in segments])
        if n < width:  # the common case: padded here, one Strip instead of two
            segments.append(Segment(" " * (width - n), self._blank_style))
            return Strip(segments, width)
        return Strip(segments, n).adjust_cell_length(width, self._blank_style)

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
                strip = self._line(build(payload), width)
            new_strips.append(strip)
            changed += 1
            if runs and runs[-1][1] == y:
                runs[-1][1] = y + 1
            else:
                runs.append([y, y + 1])
        if len(keyed) < len(old_keys):
            runs.append([len(keyed), len(old_keys)])
            changed += len(old_keys) - len(keyed)
        if changed:
            release_strips(self._strips, new_strips)
        self._keys, self._strips = new_keys, new_strips
        if runs:
            self.refresh(*(Region(0, a, width, b - a) for a, b in runs))
        return changed

    def line_texts(self) -> list[str]:
        """The lines' plain text, without the edge separator."""
        e = self.edge
        return [s.text[e:] for s in self._strips]

    def _blank(self, width: int) -> Strip:
        """A line past the last one: the edge separator (if any) on the background."""
        blank = self._blank_line
        if blank is None or blank.cell_length != width:
            blank = self._blank_line = self._line([], width)
        return blank

    def render_line(self, y: int) -> Strip:
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return self._blank(self.size.width)

    def render_lines(self, crop: Region) -> list[Strip]:
        styles = self.styles
        if (
            styles.gutter != _NO_GUTTER
            or styles.outline.spacing != _NO_GUTTER
            or styles.tint.a
            or self.opacity != 1.0
            or styles.text_opacity != 1.0
            or (styles.has_rule("hatch") and styles.hatch != "none")
        ):
            return super().render_lines(crop)
        width = self.size.width
        background = self.background_colors[1]
        filters = self.get_line_filters()
        pal = self.pal
        if self._neutral and pal is not None and pal.neutral:
            # every style in these lines is RGB and not dim, which the ANSI-to-truecolor filter
            # would only copy: skip it, and with it a filtered copy of each new line
            filters = [f for f in filters if not isinstance(f, ANSIToTruecolor)]
        blank_style = self._blank_style
        lines = self._strips
        count = len(lines)
        blank = self._blank(width)
        strips: list[Strip] = []
        for y in crop.line_range:
            strip = lines[y] if 0 <= y < count else blank
            if strip.cell_length != width:
                strip = strip.adjust_cell_length(width, blank_style)
            for line_filter in filters:
                # cached on the Strip: an unchanged line is filtered once, not every frame
                strip = strip.apply_filter(line_filter, background)
            strips.append(strip)
        x1, x2 = crop.column_span
        if (x1, x2) != (0, width):
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips


def seg(text: str, style: Style) -> Segment:
    return Segment(text, style)
