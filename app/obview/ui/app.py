"""The obview Textual app: stats bar, venue strip, heatmap, ladder and tape.

Data lives in ``Market`` objects owned by the feed manager; the app reads them on one paint
clock (~30 fps) and repaints only panels whose market ``version`` (or view settings) changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from collections.abc import Callable
from typing import Any

from rich.color import Color as RichColor
from rich.color import ColorParseError
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer

from obview.heap import TRIM_INTERVAL, trim_heap
from obview.market import Market
from obview.ui.actions import KeyActions
from obview.ui.driver import TERMINAL_CHECK, TERMINAL_GONE, isatty, terminal_fds
from obview.ui.heatmap import Heatmap
from obview.ui.ladder import Ladder
from obview.ui.lines import SteadyLines
from obview.ui.statsbar import StatsBar
from obview.ui.switching import Switching
from obview.ui.tape import Tape
from obview.ui.theming import (
    DEFAULT_COLORMAP,
    load_colormaps,
    load_theme_files,
    resolve_theme_name,
)
from obview.ui.venuestrip import VenueStrip
from obview.ui.viewmodel import PriceWindow, group_steps, heat_layout, is_multiple

FRAME_INTERVAL = 1 / 30
SLOW_INTERVAL = 0.25  # stats bar and venue strip: ages and rates change with time alone
WIDE = 140  # all three panels
MEDIUM = 100  # heatmap + ladder; below this: ladder + tape
MIN_HEATMAP = 20  # columns the heatmap keeps before a fixed-width tape gives way
MIN_TAPE = 20  # columns of a tape beside the ladder: side, price and size ("▲ 97031.5   78.6k")


def tune_gc() -> None:
    """Garbage-collector policy for the running app (a latency choice for the whole process).

    A full collection that walks Textual's widget tree and the heatmap history stalls a frame
    for tens of ms. Freezing the heap built at start-up takes it out of every later collection,
    and a larger young generation batches the young ones (the hot widgets free their replaced
    lines without the collector: ``obview.ui.lines.release_strips``). Called once the app is on
    screen.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)


class MainScreen(SteadyLines, Screen):
    """The default screen (stats, venues, panels, keys): fully covered by its widgets, so its
    own lines are kept rather than rebuilt every frame (``SteadyLines``)."""


class Panels(SteadyLines, Horizontal):
    """The row of panels: heatmap, ladder, tape."""


class Keys(SteadyLines, Footer):
    """The key bar."""


#: the coarsest grouping is the price over this (a 70-row ladder then stays above zero)
MAX_STEP_DIVISOR = 50


class ObviewApp(Switching, KeyActions, App):
    """Order-book visualizer for one (venue, symbol) at a time, with warm venue switching."""

    CSS_PATH = "obview.tcss"
    TITLE = "obview"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        # a terminal program's usual ctrl+z: Textual restores the terminal and stops the process
        Binding("ctrl+z", "suspend_process", "Suspend", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("space", "pause", "Pause"),
        Binding("space", "resume", "Resume"),  # the footer says which one space does now
        # the footer shows these in this order and a narrow one ends early: what switches the
        # view (venue, compare, symbol) before what tunes it
        Binding("v", "pick_venue", "Venue"),
        Binding("x", "compare", "Compare"),
        Binding("s", "symbol", "Symbol"),
        Binding("plus,equals_sign", "group(1)", "Group+"),
        Binding("minus,underscore", "group(-1)", "Group-"),
        Binding("u", "units", "Units"),
        Binding("left_square_bracket", "cycle_venue(-1)", "Prev venue", show=False),
        Binding("right_square_bracket", "cycle_venue(1)", "Next venue", show=False),
        Binding("t", "next_theme", "Theme"),
        Binding("c", "next_colormap", "Colormap"),
        Binding("comma", "contrast(-1)", "Contrast-", show=False),
        Binding("full_stop", "contrast(1)", "Contrast+", show=False),
        Binding("less_than_sign", "floor(-1)", "Floor-", show=False),
        Binding("greater_than_sign", "floor(1)", "Floor+", show=False),
        Binding("z", "time_zoom(1)", "Zoom out time", show=False),
        Binding("Z", "time_zoom(-1)", "Zoom in time", show=False),
        Binding("H", "toggle_panel('heatmap')", "Heatmap", show=False),
        Binding("L", "toggle_panel('ladder')", "Ladder", show=False),
        Binding("T", "toggle_panel('tape')", "Tape", show=False),
        *[Binding(str(i), f"venue({i})", f"Venue {i}", show=False) for i in range(1, 10)],
    ]

    def __init__(
        self,
        manager: Any,
        venue: str,
        symbol: str,
        config: Any = None,
        *,
        clock: Callable[[], float] | None = None,
        frame_interval: float = FRAME_INTERVAL,
        close_manager: bool = False,
        gc_policy: bool = False,
        exit_on_signals: bool = False,
        compare: bool = False,
    ) -> None:
        super().__init__()
        self.manager = manager
        self.venue = venue
        self.symbol = symbol
        #: what the last switch asked for, set at once: keys pressed before its feed opens
        #: (``venue`` changes only then) step on from here, not from the venue being left
        self.wanted = (venue, symbol)
        self.config = config
        self.clock = clock or time.time
        self.frame_interval = frame_interval
        self.close_manager = close_manager
        self.gc_policy = gc_policy
        self.exit_on_signals = exit_on_signals
        self.start_compare = compare  # open on the compare view
        self.market: Market | None = None
        self.error = ""
        self.paused = False
        self.quote_units = False
        self.step: float | None = None
        self.steps: list[float] = []
        # until the user zooms, the grouping follows the heatmap sampler's bucket, so the
        # ladder and the heatmap start on one shared price axis on every symbol
        self.step_auto = True
        self._grouped_symbol: str | None = None  # the symbol the grouping was chosen on
        #: while paused: (the market on screen, its still copy, the time it was taken)
        self._frozen: tuple[Market, Market, float] | None = None
        self._painted_sizes: tuple = ()  # the panels' sizes at the last frame drawn
        self._painted_state: object = None  # the feed state the status line last said
        self._capped: Market | None = None  # the market whose price has capped the steps
        self.window = PriceWindow()  # shared by the ladder and an aligned heatmap
        self.heat_window = PriceWindow()  # the heatmap's own, when the grouping is finer
        self.high_pct = 99.0
        self.low_pct = 5.0
        self.panel_override: dict[str, bool | None] = {
            "heatmap": None,
            "ladder": None,
            "tape": None,
        }
        self._seen_version = -1
        self._last_slow = 0.0
        self._open_token = 0
        self.frames = 0
        self.resumes = 0  # times back from a suspension (Ctrl+Z, fg)
        self._ttys: list[int] = []  # the terminal's descriptors, watched while the app runs
        self.themes, self.panels = load_theme_files()
        self.colormaps = load_colormaps()
        self.colormap_name = DEFAULT_COLORMAP

    # -- setup --------------------------------------------------------------------------------
    def get_default_screen(self) -> Screen:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        # kept as attributes: ``query_one`` searches the active screen, which may be a modal
        self.w_stats = StatsBar(id="stats")
        self.w_venues = VenueStrip(id="venues")
        self.w_heatmap = Heatmap(id="heatmap")
        self.w_ladder = Ladder(id="ladder")
        self.w_tape = Tape(id="tape")
        yield self.w_stats
        yield self.w_venues
        with Panels(id="main"):
            yield self.w_heatmap
            yield self.w_ladder
            yield self.w_tape
        yield Keys()

    def on_mount(self) -> None:
        for th in self.themes:
            self.register_theme(th)
        cfg_theme = getattr(self.config, "theme", None)
        self.theme = resolve_theme_name(cfg_theme, [t.name for t in self.themes])
        cmap = getattr(self.config, "colormap", None)
        if cmap in self.colormaps:
            self.colormap_name = cmap
        elif cfg_theme is None or cmap is None:
            self.colormap_name = self.panels[self.theme].colormap
        self.theme_changed_signal.subscribe(self, lambda _t: self._apply_colors())
        # back from Ctrl+Z: the terminal's screen was the shell's meanwhile. Textual repaints
        # only what changes after a SIGCONT, so the venue strip and the footer (which change
        # rarely) stayed blank; the whole screen is written again
        self.app_resume_signal.subscribe(self, lambda _app: self._after_resume())
        self._apply_colors()
        self._apply_layout()
        self.set_interval(self.frame_interval, self._frame)
        self._switch(self.venue, self.symbol)
        if self.gc_policy:
            self.call_after_refresh(tune_gc)
            # the C heap keeps what is freed: give it back once a minute (obview.heap)
            self.set_interval(TRIM_INTERVAL, trim_heap)
        if self.start_compare:
            self.call_after_refresh(self.action_compare)
        if self.exit_on_signals:
            # a `kill` or a closed terminal ends the app as q does: the feeds close, the
            # terminal is restored and a recording is closed whole (a .gz one was left empty)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, lambda sig=sig: self.exit(return_code=128 + sig))
            # a terminal can also go away without a SIGHUP reaching us (a pane closed under a
            # process of another group): it was left running for good, its feeds open
            self._ttys = [f for f in terminal_fds() if isatty(f)]
            if self._ttys:
                self.set_interval(TERMINAL_CHECK, self._check_terminal)

    def get_driver_class(self):  # type: ignore[no-untyped-def]
        """Textual's driver for this platform, or on Linux and macOS ``ObviewDriver`` (its
        screen writer outlives the terminal, see obview.ui.driver)."""
        from textual.drivers.linux_driver import LinuxDriver

        from obview.ui.driver import ObviewDriver

        cls = super().get_driver_class()
        return ObviewDriver if cls is LinuxDriver else cls

    def _check_terminal(self) -> None:
        if any(not isatty(fd) for fd in self._ttys):
            self.exit(return_code=TERMINAL_GONE)  # as a closed terminal's SIGHUP does

    def _after_resume(self) -> None:
        self.resumes += 1
        self.refresh(layout=True)
        self._repaint_all()

    async def on_unmount(self) -> None:
        if self.exit_on_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
        # feeds run on this app's event loop, so they are closed before the loop ends
        if self.close_manager and hasattr(self.manager, "close"):
            try:
                await self.manager.close()
            except Exception:
                pass

    def _ui_setting(self, key: str, default: Any = None) -> Any:
        ui = getattr(self.config, "ui", None) or {}
        return ui.get(key, default) if isinstance(ui, dict) else default

    def _apply_colors(self) -> None:
        panel = (
            self.panels.get(self.theme) or self.panels[resolve_theme_name(None, list(self.panels))]
        )
        # the ladder and tape draw their left separator in the theme's panel colour
        edge = self.get_css_variables().get("panel", panel.surface)
        try:
            RichColor.parse(edge)
        except ColorParseError:  # Textual's own ansi themes say "transparent": not a colour
            edge = panel.surface
        self.w_heatmap.set_colors(panel)
        self.w_ladder.set_colors(panel, edge)
        self.w_tape.set_colors(panel, edge)
        self.w_stats.set_colors(panel)
        strip = self.w_venues
        strip.pal = panel
        strip._key = None
        self.w_heatmap.set_colormap(self.colormaps[self.colormap_name])
        self._repaint_all()

    @staticmethod
    def auto_panels(w: int) -> dict[str, bool]:
        """Which panels a ``w``-column terminal shows unless the user toggled them."""
        # below MEDIUM the tape takes what the 40-column ladder leaves, when that holds a trade
        tape = w >= WIDE or (w < MEDIUM and w - 40 >= MIN_TAPE)
        return {"heatmap": w >= MEDIUM, "ladder": True, "tape": tape}

    def _apply_layout(self, width: int | None = None) -> None:
        w = self.size.width if width is None else width
        auto = self.auto_panels(w)
        shown = {
            k: (auto[k] if self.panel_override[k] is None else self.panel_override[k]) for k in auto
        }
        hm, lad, tape = self.w_heatmap, self.w_ladder, self.w_tape
        hm.display, lad.display, tape.display = shown["heatmap"], shown["ladder"], shown["tape"]
        # whichever panel is left without the heatmap takes the spare width
        lad_w = 46 if w >= 120 else 40
        lad.styles.width = "1fr" if not shown["heatmap"] and not shown["tape"] else lad_w
        tape_w = 44 if w >= 200 else 40
        if shown["heatmap"] and shown["ladder"] and w - lad_w - tape_w < MIN_HEATMAP:
            # all three forced onto a narrow screen: the heatmap and the tape share what the
            # ladder leaves (fixed widths ran past the right edge)
            tape_w = "1fr"
        tape.styles.width = "1fr" if not shown["heatmap"] else tape_w
        self._repaint_all()

    def on_resize(self, event) -> None:
        # the event's size: when this handler runs, ``self.size`` still holds the old one
        self._apply_layout(event.size.width)

    def _sync_steps(self, m: Market, reset: bool = False) -> None:
        """Grouping steps from the tick plus the sampler bucket (known after the first mid)."""
        sampler = m.heatmap.step
        # the default grouping is two sampler buckets a row: the ladder and the heatmap share
        # the axis and each heatmap half-block shows one bucket (twice the vertical resolution)
        default = sampler * 2 if sampler is not None else None
        steps = group_steps(m.instrument.tick, extra=default)
        ref = m.book.mid() or m.last_price
        if ref:
            # no coarser than a fiftieth of the price: past that a tall ladder reached below
            # zero (BTC at 97,000 went up to a 500,000 grouping, rows down to -10,500,000)
            cap = max(ref / MAX_STEP_DIVISOR, default or 0.0)
            steps = [v for i, v in enumerate(steps) if i == 0 or v <= cap * (1 + 1e-9)]
        if steps != self.steps:
            self.steps = steps
            if self.step is not None and not any(
                abs(v - self.step) <= 1e-12 + v * 1e-9 for v in steps
            ):
                self.step_auto = True  # another instrument: its own default
        if reset and self.step is None:
            self.step_auto = True
        if self.step_auto or self.step is None:
            self.step = default if default is not None else steps[0]

    def _mid(self, m: Market) -> float | None:
        """The mid the windows follow: the book's while LIVE, else the last live column's."""
        mid = m.book.mid() if m.live else None
        if mid is None:
            for col in reversed(m.heatmap.columns):
                if col.live and col.best_bid and col.best_ask:
                    return (col.best_bid + col.best_ask) / 2
            mid = m.book.mid()
        return mid

    # -- painting -----------------------------------------------------------------------------
    def _repaint_all(self) -> None:
        self._seen_version = -1
        self._last_slow = 0.0
        if self.is_running:
            hm = self.w_heatmap
            hm._last_key = None
            self._frame(force=True)

    def _frame(self, force: bool = False) -> None:
        if self.paused and not force and self._panel_sizes() == self._painted_sizes:
            # the panels hold still; the feed's state, book age and the venue strip do not (a
            # feed that died while paused read LIVE until the user resumed). A panel whose size
            # changed (a resize, once its layout has settled) is drawn again from the paused
            # moment: the resize's own repaint ran on the old sizes.
            now = self.clock()
            if self._slow_due(now):
                self._paint_slow(now)
            return
        wall = now = self.clock()
        m = live = self.market
        if self.paused and self._frozen is not None and self._frozen[0] is m:
            # a key while paused (grouping, units, a resize) redraws the paused moment; the
            # status line goes on with the live feed and the real time
            m, now = self._frozen[1], self._frozen[2]
        ladder, tape, hm = self.w_ladder, self.w_tape, self.w_heatmap
        if self._painted_sizes != (sizes := self._panel_sizes()):
            self._painted_sizes = sizes
            force = True
            ladder.needs_update = tape.needs_update = True
            hm._last_key = None
        fresh = False
        if m is not None and live is not None and self.step is not None:
            fresh = m.version != self._seen_version
            self._seen_version = m.version
            if self.step_auto and live.heatmap.step is not None and live.heatmap.step * 2 != self.step:
                self._sync_steps(live)
            elif live is not self._capped and (live.book.mid() or live.last_price):
                # the first price: a kept grouping gets the cap it could not get without one
                self._capped = live
                self._sync_steps(live)
            step = self.step
            sampler = m.heatmap.step
            # one window for both panels: rows = the panel height below its title line
            panel = ladder if ladder.display else hm
            rows = max(0, panel.size.height - 1)
            grid = sampler is None or is_multiple(step, sampler)
            mid = self._mid(m) if (grid or hm.display) else None
            origin = self.window.follow(mid, step, rows) if grid else None
            if ladder.display and (fresh or ladder.flashing or ladder.needs_update):
                ladder.needs_update = ladder.size.height <= 0
                ladder.update_from(m, step, self.quote_units, now, origin)
            if tape.display and (fresh or tape.needs_update):
                tape.needs_update = tape.size.height <= 0
                tape.update_from(m, self.quote_units, now)
            if hm.display:
                hm.high_pct = self.high_pct
                hm.paused = self.paused
                hm.low_pct = self.low_pct
                layout = heat_layout(step, sampler) if sampler is not None else None
                if layout is not None and not layout.aligned:
                    hrows = max(0, hm.size.height - 1)
                    hm_origin = self.heat_window.follow(mid, layout.row_step, hrows)
                else:
                    hm_origin = origin or 0
                hm.update_from(m, layout, hm_origin, now, step)
        elif m is None:
            for w in (ladder, tape, hm):
                w._strips = []
                w._keys = []
                w.refresh()
        if self._slow_due(wall, force):
            self._paint_slow(wall)
        elif fresh and m is live:
            # the book moved: the status line's last, mid and spread follow the ladder this
            # frame (its second line only, repainted only if its text changed)
            self.w_stats.show_book(live, wall)
        self.frames += 1

    def _slow_due(self, now: float, force: bool = False) -> bool:
        """Whether the status line and the venue strip are drawn this frame: every quarter
        second, and at once on a new feed state (LIVE, STALE, ...: the first line read SYNCING
        beside a ladder and figures already live); if so, it is counted as drawn."""
        state = self.market.state if self.market is not None else None
        if force or now - self._last_slow >= SLOW_INTERVAL or now < self._last_slow or state is not self._painted_state:
            self._last_slow, self._painted_state = now, state
            return True
        return False

    def _panel_sizes(self) -> tuple:
        return (self.w_ladder.size, self.w_tape.size, self.w_heatmap.size)

    def _recording(self) -> tuple[int, str] | None:
        rec = getattr(self.manager, "recorder", None)
        return None if rec is None else (rec.file_bytes, rec.reason)

    def _paint_slow(self, now: float) -> None:
        self._paint_stats(now)
        venues = self.venues
        state = getattr(self.manager, "state", None)
        states = [state(v, self.symbol) if state else None for v in venues]
        self.w_venues.show(venues, self.venue, states, hint="  [ ] cycle · v pick · x compare · s symbol")

    def _paint_stats(self, now: float) -> None:
        self.w_stats.show(
            self.venue,
            self.symbol,
            self.market,
            now,
            paused=self.paused,
            step=self.step,
            quote=self.quote_units,
            error=self.error,
            retry_key=self._retry_key(),
            recording=self._recording(),
        )


def run_app(
    manager: Any, venue: str, symbol: str, config: Any = None, *, compare: bool = False
) -> int:
    """Run the app until the user quits (``compare``: open on the compare view); returns the
    process exit code."""
    app = ObviewApp(
        manager,
        venue,
        symbol,
        config,
        close_manager=True,
        gc_policy=True,
        compare=compare,
        exit_on_signals=True,
    )
    app.run()
    return app.return_code or 0
