"""LineWidget's Strip handling, without a terminal."""

from __future__ import annotations

import asyncio
import gc

from rich.segment import Segment
from rich.style import Style
from rich.terminal_theme import DEFAULT_TERMINAL_THEME
from textual.app import App
from textual.color import Color
from textual.filter import ANSIToTruecolor, Monochrome
from textual.geometry import Region
from textual.strip import Strip
from textual.widgets import Static

from obview.ui.lines import SteadyLines, release_strips

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



class _Steady(SteadyLines, Static):
    pass


class _SteadyApp(App):
    CSS = "Static { height: 2; background: #102030; }"

    def compose(self):
        yield _Steady("ask 97000.5", id="steady")
        yield Static("ask 97000.5", id="plain")


async def test_steady_lines_are_kept_until_textual_marks_the_widget_dirty():
    app = _SteadyApp()
    async with asyncio.timeout(10), app.run_test(size=(40, 6)) as pilot:
        await pilot.pause()
        steady, plain = app.query_one("#steady"), app.query_one("#plain")
        crop = Region(0, 0, 40, 2)

        def both(change) -> None:
            change(steady)
            change(plain)

        first = steady.render_lines(crop)
        assert first == plain.render_lines(crop)  # what Textual's own path draws
        assert steady.render_lines(crop) is first  # nothing changed: the same lines
        assert steady.render_lines(Region(0, 1, 40, 1)) == first[1:]  # another crop
        for change in (
            lambda: both(lambda w: w.update("bid 96999.5")),  # new content
            lambda: both(lambda w: setattr(w.styles, "background", "#403020")),  # a style
            lambda: app._filters.append(Monochrome()),  # a line filter for the whole app
        ):
            before = steady.render_lines(crop)
            change()
            await pilot.pause()
            after = steady.render_lines(crop)
            assert after != before
            assert after == plain.render_lines(crop)
