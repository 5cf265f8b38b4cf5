"""What the keys and the command palette do in the obview app (``ObviewApp`` mixes this in).

The methods read and set the app's view state (venue, symbol, grouping, units, colours, panels)
and ask the app to switch feeds or repaint; the app module keeps composing, painting and the
feed switch itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from textual import events
from textual.app import SystemCommand
from textual.command import CommandPalette
from textual.screen import Screen

from obview.model import FeedStatus
from obview.symbols import CANONICAL
from obview.ui.screens import HelpScreen, Palette, SymbolPrompt, VenuePicker
from obview.ui.viewmodel import next_step

#: the heatmap colour scale's high and low cut-offs (percentiles of the visible window)
HIGH_PCTS = [90.0, 95.0, 98.0, 99.0, 99.5, 99.9, 100.0]
LOW_PCTS = [0.0, 1.0, 5.0, 10.0, 25.0, 50.0]


class KeyActions:
    """The app's ``action_*`` methods, the venue-retry rule and the command palette's entries.

    Mixed into ``ObviewApp`` ahead of Textual's ``App``, whose ``on_event`` and
    ``get_system_commands`` these extend; the state they use is the app's."""

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_pause(self) -> None:
        self.paused = not self.paused
        m = self.market
        # paused, the panels draw a still copy of this moment; resumed, the live market again
        self._frozen = (m, m.frozen(), self.clock()) if self.paused and m is not None else None
        self.refresh_bindings()  # the footer's space: Pause or Resume
        self._frame(force=True)

    def action_resume(self) -> None:
        self.action_pause()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pause":
            return not self.paused
        if action == "resume":
            return self.paused
        return True

    def action_group(self, direction: int) -> None:
        if self.market is not None:
            self._sync_steps(self.market)  # the coarsest step follows the price
        if not self.steps or self.step is None:
            return
        self.step = next_step(self.steps, self.step, direction)
        self.step_auto = False
        self._repaint_all()

    def action_units(self) -> None:
        self.quote_units = not self.quote_units
        self._repaint_all()

    def action_venue(self, n: int) -> None:
        venues = self.venues
        if not 1 <= n <= len(venues):
            return
        venue, symbol = self.wanted
        if venues[n - 1] != venue or (venue == self.venue and (self._failed() or self._adrift())):
            self._switch(venues[n - 1], symbol)  # the current venue's key retries a failed feed
        elif venue == self.venue and self._reconnecting():
            # ... and cuts short the wait of one that reconnects (the venue is back, say)
            retry = getattr(self.manager, "retry_now", None)
            if retry is not None and retry(venue, symbol):
                self.notify(f"{venue}: reconnecting now", timeout=2)

    def _reconnecting(self) -> bool:
        """The feed on screen waits out a backoff its key may cut short."""
        m = self.market
        if m is None or m.state.status is not FeedStatus.RECONNECTING:
            return False
        can = getattr(self.manager, "can_retry_now", None)
        return can is not None and can(self.venue, self.symbol)

    def _failed(self) -> bool:
        """The feed on screen has ended: it could not be opened, or the venue refused it."""
        m = self.market
        return (m is None and bool(self.error)) or (m is not None and m.state.status is FeedStatus.FAILED)

    def _adrift(self) -> bool:
        """No feed on screen, no error to say why, and no switch under way to bring one."""
        if self.market is not None or self.error:
            return False
        return not any(w.group == "open" and not w.is_finished for w in self.workers)

    def _comparing(self) -> bool:
        from obview.ui.compare import CompareScreen

        return any(isinstance(s, CompareScreen) for s in self.screen_stack)

    def _retry_key(self) -> str | None:
        """The key that retries the feed on screen, when it has failed or waits to reconnect."""
        venues = self.venues
        if (self._failed() or self._reconnecting()) and self.venue in venues and venues.index(self.venue) < 9:
            return str(venues.index(self.venue) + 1)
        return None

    def on_venue_strip_selected(self, message) -> None:
        """A venue clicked in the strip: as its number key."""
        venues = self.venues
        if message.venue in venues:
            self.action_venue(venues.index(message.venue) + 1)

    def action_cycle_venue(self, direction: int) -> None:
        venues = self.venues
        if not venues:
            return
        venue, symbol = self.wanted
        i = venues.index(venue) if venue in venues else -1
        self._switch(venues[(i + direction) % len(venues)], symbol)

    def action_pick_venue(self) -> None:
        def chosen(v: str | None) -> None:
            if v and v != self.venue:
                self._switch(v, self.symbol)

        state = getattr(self.manager, "state", None)
        states = {v: state(v, self.symbol) for v in self.venues} if state else {}
        self.push_screen(VenuePicker(self.venues, self.venue, states, self.w_stats.pal), chosen)

    def action_compare(self) -> None:
        """The symbol on every venue side by side; a venue picked there is switched to."""
        from obview.ui.compare import CompareScreen

        def closed(v: str | None) -> None:
            if v and (v != self.venue or self._failed()):
                self._switch(v, self.symbol)
            release = getattr(self.manager, "unpin", None)
            if release is not None:
                # after the switch has asked for its feed, so that one is kept warm
                self.run_worker(release, group="compare-release")

        pal = self.w_stats.pal
        if pal is None or self._comparing():
            return  # one is open (the palette still works over it): its feeds are held once
        self.push_screen(CompareScreen(self.manager, self.venues, self.symbol, pal, self.clock), closed)

    def action_symbol(self) -> None:
        def chosen(s: str | None) -> None:
            if s and s.strip():
                # as typed: the venue's check names what the user wrote, not what it became
                self._switch(self.wanted[0], s.strip())

        self.push_screen(SymbolPrompt(self.symbol, list(CANONICAL)), chosen)

    def action_next_theme(self) -> None:
        names = [t.name for t in self.themes]
        i = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(i + 1) % len(names)]
        # nothing else on screen names it (the colormap is in the heatmap's title)
        self.notify(f"theme: {self.theme.removeprefix('obview-')}", timeout=2, markup=False)

    def action_next_colormap(self) -> None:
        names = list(self.colormaps)
        i = names.index(self.colormap_name) if self.colormap_name in names else -1
        self.set_colormap(names[(i + 1) % len(names)])

    def set_colormap(self, name: str) -> None:
        self.colormap_name = name
        self.w_heatmap.set_colormap(self.colormaps[name])
        self._repaint_all()

    def action_contrast(self, direction: int) -> None:
        i = min(range(len(HIGH_PCTS)), key=lambda k: abs(HIGH_PCTS[k] - self.high_pct))
        self.high_pct = HIGH_PCTS[max(0, min(len(HIGH_PCTS) - 1, i + direction))]
        self._repaint_all()

    def action_floor(self, direction: int) -> None:
        """Move the low cut-off: sizes below this percentile of the window draw as empty."""
        i = min(range(len(LOW_PCTS)), key=lambda k: abs(LOW_PCTS[k] - self.low_pct))
        self.low_pct = LOW_PCTS[max(0, min(len(LOW_PCTS) - 1, i + direction))]
        self._repaint_all()

    def action_time_zoom(self, direction: int) -> None:
        """Heatmap time axis: +1 draws more samples a column (a longer look back), -1 fewer."""
        if self.w_heatmap.zoom.step(direction):
            self._repaint_all()

    def action_toggle_panel(self, name: str) -> None:
        panels = {"heatmap": self.w_heatmap, "ladder": self.w_ladder, "tape": self.w_tape}
        widget = panels[name]
        show = not widget.display
        if not show and not any(w.display for k, w in panels.items() if k != name):
            # the last panel shown: hiding it left a blank screen that said nothing
            self.notify("one panel stays shown: H heatmap, L ladder, T tape", timeout=3)
            return
        # toggled back to what this width shows anyway: automatic again, so a resize lays it
        # out for the new width (a kept override forced panels that no longer fit)
        self.panel_override[name] = None if show == self.auto_panels(self.size.width)[name] else show
        self._apply_layout()

    # -- command palette ----------------------------------------------------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            try:
                self.screen  # noqa: B018
            except Exception:  # the app is closing (Quit chosen): keys queued behind it go
                return  # nowhere, instead of raising ScreenStackError on the way out
        await super().on_event(event)

    def action_command_palette(self) -> None:
        if not self.use_command_palette or any(isinstance(s, CommandPalette) for s in self.screen_stack):
            return  # one is open already (on top, or under a screen one of its commands opened)
        # no fixed id (Textual's own palette has one): a palette that was just closed is still
        # registered until its removal completes, and a new one with its id raised DuplicateIds
        self.push_screen(Palette())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # the app's own commands, not Textual's: its Theme restyled only the frame around the
        # panels, its Screenshot saved to a ~/Downloads that may not exist, its Keys panel
        # listed Textual's bindings
        yield SystemCommand("Quit", "leave obview (key q)", self.action_quit)
        yield SystemCommand("Help", "keys and what the screen shows (key ?)", self.action_help)
        yield SystemCommand(
            "Screenshot", "save an SVG of the screen in the current directory", self._save_screenshot_here
        )
        if self._comparing():
            # over the compare view, a switch would change what it shows underneath it; its
            # own keys pick a venue
            yield from self._look_commands()
            return
        for i, v in enumerate(self.venues):
            yield SystemCommand(
                f"Venue: {v}",
                f"switch to {v} (key {i + 1})",
                lambda v=v: self._switch(v, self.symbol),
            )
        yield SystemCommand(
            "Compare venues",
            f"{self.symbol} on every venue side by side (key x)",
            self.action_compare,
        )
        for s in CANONICAL:
            yield SystemCommand(
                f"Symbol: {s}",
                f"show {s} on the current venue",
                lambda s=s: self._switch(self.venue, s),
            )
        yield from self._look_commands()

    def _save_screenshot_here(self) -> None:
        try:
            path = self.save_screenshot(path=os.getcwd())
        except OSError as e:
            self.notify(f"screenshot not saved: {e.strerror or e}", severity="error")
            return
        self.notify(f"screenshot saved: {path}")

    def _look_commands(self) -> Iterable[SystemCommand]:
        for t in self.themes:
            yield SystemCommand(
                f"Theme: {t.name}",
                "switch the colour theme",
                lambda n=t.name: setattr(self, "theme", n),
            )
        for name in self.colormaps:
            yield SystemCommand(
                f"Colormap: {name}", "heatmap colormap", lambda n=name: self.set_colormap(n)
            )

