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
import math
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

    @property
    def longest(self) -> float | None:
        """The longest recent interval between changes (s), once ``need`` have been seen: a
        push may come that late without anything being wrong (2-5 s, irregularly)."""
        if len(self._gaps) < self.need:
            return None
        return max(self._gaps)

    def stale_after(self, default: float) -> float:
        typical = self.typical
        if typical is None:
            return default
        return min(self.ceiling, max(self.floor, self.factor * typical))


class Activity:
    """How busy a book is: the share of recent seconds in which it changed, and from that the
    silence that is still ordinary for it while its connection answers.

    An illiquid book (BitMEX SOLUSDT, a quiet Deribit or Kraken perpetual) can go 20 s without a
    change; a BTC book changes every second. Silence on a book that changes in most seconds is
    a stuck stream; the same silence on one that changes in one second of ten is the market.
    Changes cluster (one sweep is twenty deltas in 100 ms), so intervals between changes say
    little; the share of active seconds does not care. With a share ``p`` of active seconds a
    silence of ``s`` seconds has a chance of about ``(1 - p) ** s``: ordinary while that is
    above ``unlikely`` (1e-5: a book changing in 9 seconds of 10 is wrong after 5 s of
    silence, one changing in 1 of 10 may be still for 109 s).

    The share is taken up to the book's last change, not over the silence being judged (that
    silence would lower the share and so lengthen itself), and over watched time only: the
    time between connections is left out, and so is a silence that ended in a stale close (a
    stuck stream's silences would otherwise teach it that silence is its habit). Kept across
    reconnects; bounded to the last ``window`` seconds.
    """

    __slots__ = ("window", "unlikely", "min_span", "_secs", "_since", "_paused_at", "_offset", "_first")

    def __init__(self, window: int = 300, unlikely: float = 1e-5, min_span: float = 10.0) -> None:
        self.window = window
        self.unlikely = unlikely
        self.min_span = min_span  # watched seconds below which the share is not told
        # seconds are counted on a watched-time clock: monotonic time less the time between
        # connections (``_offset``), so an outage is neither quiet nor busy
        self._secs: collections.deque[int] = collections.deque(maxlen=window + 2)
        self._since: float | None = None  # when watching began, watched time
        self._paused_at: float | None = None  # monotonic
        self._offset = 0.0
        self._first: float | None = None  # the first change, watched time

    def watching(self, now: float) -> None:
        """A connection is up: time from here counts (the time between connections does not)."""
        if self._paused_at is not None and now > self._paused_at:
            self._offset += now - self._paused_at
        self._paused_at = None
        if self._since is None:
            self._since = now - self._offset

    def paused(self, at: float) -> None:
        """Time from ``at`` on does not count until the next connection: the connection ended,
        or (``at`` the book's last change) a silence ended in a stale close."""
        if self._paused_at is None or at < self._paused_at:
            self._paused_at = at

    def changed(self, at: float) -> None:
        w = at - self._offset
        s = int(w)
        if not self._secs or self._secs[-1] != s:
            self._secs.append(s)
        if self._first is None:
            self._first = w
        if self._since is None:
            self._since = w

    def share(self, at: float) -> float | None:
        """Share of the watched seconds of the ``window`` up to ``at`` (monotonic) with a
        change (None: under ``min_span`` s watched, too few to tell)."""
        if self._since is None:
            return None
        w = at - self._offset
        span = min(float(self.window), w - self._since)
        if span < self.min_span:
            return None
        # the whole seconds the span touches, the part-seconds at its ends included, and the
        # same seconds counted active: a book changing every second reads 1.0
        first, last = math.floor(w - span), math.floor(w)
        active = sum(1 for s in self._secs if first <= s <= last)
        return min(1.0, active / (last - first + 1))

    def early_share(self, at: float, early_span: float = 3.0) -> float | None:
        """Before ``min_span`` is watched: a cautious share from the time since its first
        change, one unseen quiet second added (``active / (ceil(elapsed) + 1)``: a book changing
        in each second of its first 4 reads 0.8, not 1.0). Only ever used to shorten the venue's stale time
        (a busy book frozen in its first seconds read LIVE for the venue's 10-20 s), never to
        lengthen it. None under ``early_span`` seconds, or once ``share`` tells."""
        if self._since is None or self._first is None:
            return None
        w = at - self._offset
        if w - self._since >= self.min_span:
            return None
        # from its first change (the seconds of connecting and subscribing before it are not
        # the book's habit), over ``early_span`` s at least of exact time: a burst of changes
        # across two second boundaries is not three busy seconds
        elapsed = w - self._first
        if elapsed < early_span:
            return None
        first, last = math.floor(self._first), math.floor(w)
        active = sum(1 for s in self._secs if first <= s <= last)
        return min(1.0, active / (math.ceil(elapsed) + 1))

    def ordinary_silence(self, p: float, floor: float, ceiling: float) -> float:
        """The longest silence that is still ordinary for a book changing in a share ``p`` of
        its seconds, within [floor, ceiling]."""
        if p >= 1.0:
            return floor
        if p <= 0.0:
            return ceiling
        return min(ceiling, max(floor, math.log(self.unlikely) / math.log1p(-p)))
