"""Switching what the app shows: venue and symbol (validated before anything is cancelled),
the market opened through the manager, and what a new market resets on screen.

A mixin of ``ObviewApp`` (as ``KeyActions`` is): it reads and sets the app's state.
"""

from __future__ import annotations

from typing import Any

from obview.text import safe
from obview.ui.tapemodel import large_trade_tiers


class Switching:
    """Venue and symbol switching of ``ObviewApp``, mixed in ahead of ``KeyActions``; the state
    it uses (venue, symbol, market, the grouping, the paused copy) is the app's."""

    manager: Any

    @property
    def venues(self) -> list[str]:
        return list(getattr(self.manager, "venues", []) or [self.venue])

    def _switch(self, venue: str, symbol: str) -> None:
        validate = getattr(self.manager, "validate", None)
        if validate is not None:
            # refused here, before the switch in flight is cancelled: going back to what was
            # on screen then could bring back a feed the manager had closed meanwhile
            try:
                venue, symbol = validate(venue, symbol)
            except ValueError as e:
                self.notify(safe(str(e), 300), title="Not switched", severity="error", markup=False)
                return
        self.wanted = (venue, symbol)
        self._open_token += 1
        token = self._open_token
        async def work() -> None:
            await self._open(venue, symbol, token)

        # a function, not a coroutine: a switch cancelled by the next one before it started
        # (keys pressed together) leaves no coroutine that was never awaited
        self.run_worker(work, exclusive=True, group="open")

    async def _open(self, venue: str, symbol: str, token: int) -> None:
        prev = (self.venue, self.symbol, self.market)
        self.venue, self.symbol = venue, symbol
        warm = self.manager.get(venue, symbol) if hasattr(self.manager, "get") else None
        self.market = warm
        self.error = ""
        self._on_market_changed()
        try:
            market = await self.manager.open(venue, symbol)
        except ValueError as e:  # unknown venue/symbol: one line that lists valid choices
            self.venue, self.symbol, self.market = prev
            if token == self._open_token:
                self.wanted = prev[:2]
            self._on_market_changed()
            self.notify(safe(str(e), 300), title="Not switched", severity="error", markup=False)
            return
        except Exception as e:  # network down etc.: say why instead of a blank screen
            if token == self._open_token:
                self.market = None
                self.error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                self._on_market_changed()
            return
        if token != self._open_token:
            return
        self.market = market
        self._on_market_changed()

    def _on_market_changed(self) -> None:
        m = self.market
        if self.paused and (self._frozen is None or self._frozen[0] is not m):
            # another venue or symbol asked for while paused: shown live, not a still of nothing
            self.paused, self._frozen = False, None
            self.refresh_bindings()
        if m is not None:
            if self.symbol != self._grouped_symbol:
                # another instrument: its own default grouping (a step chosen for BTC that
                # happens to be a multiple of SOL's tick put SOL's whole book in one row)
                self._grouped_symbol = self.symbol
                self.step_auto = True
            self._sync_steps(m, reset=True)
            self.w_tape.tiers = large_trade_tiers(
                m.instrument.base, self._ui_setting("large_trades")
            )
        self._seen_version = -1
        self._repaint_all()
