"""LineWidget's Strip handling, without a terminal."""

from __future__ import annotations

import gc

from rich.segment import Segment
from rich.style import Style
from rich.terminal_theme import DEFAULT_TERMINAL_THEME
from textual.color import Color
from textual.filter import ANSIToTruecolor
from textual.strip import Strip

from obview.ui.lines import release_strips

STYLE = Style(color="#ff0000", bgcolor="#000000")


def _painted_line() -> Strip:
    """A line as the compositor leaves it: filtered, then divided at the widget's one cut (the
    division caches a list holding the filtered strip itself), and cropped."""
    line = Strip([Segment("97000.1", STYLE), Segment("  1.25", STYLE)], 13)
    shown = line.apply_filter(ANSIToTruecolor(DEFAULT_TERMINAL_THEME), Color(0, 0, 0))
    assert shown.divide([13]) == [shown]
    shown.crop(2, 9).divide([7])
    line.adjust_cell_length(20, STYLE)
    return line


def _garbage_after(release: bool) -> int:
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        lines = [_painted_line() for _ in range(5)]
        kept = lines[:1]
        if release:
            release_strips(lines, kept)
        del lines
        found = gc.collect()
        assert kept[0].text == "97000.1  1.25"
        return found
    finally:
        if enabled:
            gc.enable()


def test_a_painted_line_is_a_reference_cycle_that_release_breaks():
    assert _garbage_after(release=False) > 0  # Textual's caches make cycles ...
    assert _garbage_after(release=True) == 0  # ... which release_strips empties


def test_release_keeps_lines_still_shown_and_their_content():
    a, b = _painted_line(), _painted_line()
    release_strips([a, b], [b])
    assert a.text == b.text == "97000.1  1.25"
    assert b.divide([13])[0].text == b.text
    # a released line still works if painted again: its caches simply refill
    assert a.crop(0, 7).text == "97000.1"


def test_ansi_neutral_styles():
    from obview.ui.theming import PanelColors, ansi_neutral

    assert ansi_neutral(Style()) and ansi_neutral(STYLE) and ansi_neutral(Style(bold=True))
    assert not ansi_neutral(Style(color="red"))  # a named colour: the filter maps it to RGB
    assert not ansi_neutral(Style(bgcolor="default"))
    assert not ansi_neutral(Style(color="#ffffff", dim=True))  # the filter blends dim text
    pal = PanelColors("t", "#000000", "#ffffff", "#111111", {"bid": "#00ff00", "odd": "green"})
    pal.style("bid", pal.background)
    assert pal.neutral
    pal.style("odd")
    assert not pal.neutral
