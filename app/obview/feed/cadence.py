"""How often a book stream changes, measured while it runs, and the silence that means STALE.

A venue whose book arrives as periodic snapshots (Hyperliquid's ``l2Book``: about 0.5 s with
``fast``, 2 s by default, up to 5 s since July 2026, and changed twice in one year) cannot be
given one fixed stale time that is both quick to notice a stopped stream and never trips on a
slow one. ``Cadence`` keeps the last few intervals between book changes on one stream and turns
their median into the stale time: ``factor`` times the typical interval, kept within
``[floor, ceiling]``. The median ignores one late push or one burst; until ``need`` intervals
have been seen the stream's fixed ``stale_after`` stands.

Intervals are measured on the monotonic clock, only within one connection (the gap across a
reconnect says nothing about the venue's cadence), and the history is bounded.
"""

from __future__ import annotations

import collections
import statistics


class Cadence:
    __slots__ = ("factor", "floor", "ceiling", "need", "_gaps", "_last")

    def __init__(
        self, factor: float, floor: float, ceiling: float, *, keep: int = 16, need: int = 5
    ) -> None:
        if not (factor > 0 and 0 < floor <= ceiling):
            raise ValueError("cadence needs factor > 0 and 0 < floor <= ceiling")
        self.factor = factor
        self.floor = floor
        self.ceiling = ceiling
        self.need = max(1, min(need, keep))
        self._gaps: collections.deque[float] = collections.deque(maxlen=keep)
        self._last: float | None = None

    def restart(self) -> None:
        """A new connection: the next change starts a fresh interval."""
        self._last = None

    def changed(self, at: float) -> None:
        """The book changed at monotonic time ``at``."""
        last, self._last = self._last, at
        if last is not None and at > last:
            self._gaps.append(at - last)

    @property
    def typical(self) -> float | None:
        """Median interval between changes (s), once ``need`` have been seen."""
        if len(self._gaps) < self.need:
            return None
        return statistics.median(self._gaps)

    def stale_after(self, default: float) -> float:
        typical = self.typical
        if typical is None:
            return default
        return min(self.ceiling, max(self.floor, self.factor * typical))
