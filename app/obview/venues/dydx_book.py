"""dYdX v4 book rules: ``message_id`` sequencing and the venue's uncrossing rule, bounded.

``DydxSync`` checks that each book message is the previous one plus one (batch elements in
order) and, while the indexer's book is crossed, removes the older of the two crossing levels,
as the venue documents; see ``obview.venues.dydx`` for the protocol.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from obview.book import OrderBook
from obview.model import BookDelta, BookSnapshot
from obview.venues.base import (
    APPLIED,
    IGNORED,
    BookSync,
    SyncResult,
    SyncStatus,
    bp_text,
    fmt_seq_gap,
)


@dataclass(slots=True)
class DydxDelta(BookDelta):
    """One book update: ``seq`` is the envelope's ``message_id``; ``part`` its position in a
    ``channel_batch_data`` list (0 for ``channel_data``)."""

    part: int = 0


class DydxSync(BookSync):
    """message_id sequencing (each book message the previous plus one, batch elements in
    order) and the venue's documented uncrossing rule, bounded (see the module docstring)."""

    #: apply the venue's uncrossing rule (False: any crossed book is a GAP)
    uncross: ClassVar[bool] = True
    max_drops_per_update: ClassVar[int] = 20
    max_drops_per_window: ClassVar[int] = 100
    window: ClassVar[float] = 60.0

    def __init__(self, book: OrderBook, depth: int | None = None) -> None:
        super().__init__(book, depth)
        self.last_part = 0
        # price -> (message_id, part) of the message that last set the level
        self.bid_age: dict[float, tuple[int, int]] = {}
        self.ask_age: dict[float, tuple[int, int]] = {}
        self.uncrossed = 0  # levels removed or reduced by the uncrossing rule, in total
        self._drops: deque[float] = deque(maxlen=self.max_drops_per_window)
        self._now = 0.0

    def reset(self) -> None:
        super().reset()
        self.last_part = 0
        self.bid_age.clear()
        self.ask_age.clear()
        # the drop history survives: a feed that keeps crossing gets no fresh budget per resync

    # -- events -----------------------------------------------------------------------------
    def on_snapshot(self, snap: BookSnapshot) -> SyncResult:
        age = (snap.seq if snap.seq is not None else -1, -1)
        self.bid_age = {p: age for p, s in snap.bids if s > 0}
        self.ask_age = {p: age for p, s in snap.asks if s > 0}
        self.last_part = 0
        self._now = snap.ts_local
        return super().on_snapshot(snap)

    def on_delta(self, delta: BookDelta) -> SyncResult:
        # The common update: a synced book, the next message or the next element of the same
        # batch, no checksum, no depth. What check_delta, OrderBook.apply_delta, the age
        # bookkeeping and _post_apply do for it, in one pass over the levels (book and ages
        # written together); a book that is neither crossed nor empty after it is APPLIED with
        # no further call, any other goes on to _post_apply (uncrossing, the empty book).
        # Anything else (held before the snapshot, behind, a gap) takes the general path.
        seq = delta.seq
        last = self.last_seq
        if not self.synced or last is None or seq is None or delta.checksum or self.depth is not None:
            return self.on_delta_general(delta)
        part = getattr(delta, "part", 0)
        if seq == last + 1:
            if part != 0:
                return self.on_delta_general(delta)
        elif seq != last or part != self.last_part + 1:
            return self.on_delta_general(delta)
        book = self.book
        age = (seq, part)
        bids, asks = delta.bids, delta.asks
        if bids:
            side, ages = book.bids, self.bid_age
            levels, keys = side.levels, side._keys
            for p, s in bids:
                if s > 0:
                    if p not in levels:
                        insort(keys, p)
                    levels[p] = s
                    ages[p] = age
                else:
                    if levels.pop(p, None) is not None:
                        del keys[bisect_left(keys, p)]
                    ages.pop(p, None)
        if asks:
            side, ages = book.asks, self.ask_age
            levels, keys = side.levels, side._keys
            for p, s in asks:
                if s > 0:
                    if p not in levels:
                        insort(keys, p)
                    levels[p] = s
                    ages[p] = age
                else:
                    if levels.pop(p, None) is not None:
                        del keys[bisect_left(keys, p)]
                    ages.pop(p, None)
        self.last_seq = seq
        self.last_part = part
        self._now = delta.ts_local
        bk, ak = book.bids._keys, book.asks._keys
        if bk and ak:
            if bk[-1] < ak[0]:
                return APPLIED
        elif bk or ak:
            return APPLIED  # one-sided: neither crossed nor empty
        return self._post_apply(delta.checksum)

    def on_delta_general(self, delta: BookDelta) -> SyncResult:
        """Every delta, by the rules as written (``on_delta`` takes the common one in one pass)."""
        if not self.synced:
            return super().on_delta(delta)  # held until the snapshot
        res = self.check_delta(delta)
        if res.status is not SyncStatus.APPLIED:
            return self._fail(res) if res.status is SyncStatus.GAP else res
        part = getattr(delta, "part", 0)
        self.book.apply_delta(delta.bids, delta.asks)
        if delta.seq is not None:
            self.last_seq = delta.seq
        self.last_part = part
        age = (delta.seq if delta.seq is not None else -1, part)
        for ages, levels in ((self.bid_age, delta.bids), (self.ask_age, delta.asks)):
            for p, s in levels:
                if s > 0:
                    ages[p] = age
                else:
                    ages.pop(p, None)
        self._now = delta.ts_local
        return self._post_apply(delta.checksum)

    # -- rules ------------------------------------------------------------------------------
    def check_delta(self, delta: BookDelta) -> SyncResult:
        last, seq = self.last_seq, delta.seq
        if last is None or seq is None:
            return APPLIED
        part = getattr(delta, "part", 0)
        if seq == last:  # the next element of the same batch, or a repeated message
            if part == self.last_part + 1:
                return APPLIED
            if part <= self.last_part:
                return IGNORED
            return SyncResult(SyncStatus.GAP, f"batch element gap at message {seq}")
        if seq == last + 1 and part == 0:
            return APPLIED
        if seq < last:
            return IGNORED  # duplicate / replayed
        return SyncResult(SyncStatus.GAP, fmt_seq_gap(last + 1, seq))

    def _post_apply(self, checksum: int | None) -> SyncResult:
        if self.uncross and self.book.is_crossed():
            res = self._uncross()
            if res is not None:
                return self._fail(res)
        return super()._post_apply(checksum)

    def _uncross(self) -> SyncResult | None:
        """Remove crossed levels, older first; a GAP when the budget is spent."""
        book = self.book
        drops = 0
        while True:
            bid, ask = book.best_bid(), book.best_ask()
            if bid is None or ask is None or bid[0] < ask[0]:
                return None
            bps = book.crossed_bps()
            if drops >= self.max_drops_per_update:
                return SyncResult(
                    SyncStatus.GAP, f"crossed by {bp_text(bps)} after {drops} stale levels removed"
                )
            history = self._drops
            if len(history) == history.maxlen and self._now - history[0] < self.window:
                return SyncResult(
                    SyncStatus.GAP,
                    f"crossed by {bp_text(bps)}; over {self.max_drops_per_window} stale levels "
                    f"removed in {self.window:g} s",
                )
            (bp, bs), (ap, as_) = bid, ask
            bid_age = self.bid_age.get(bp, (-1, -1))
            ask_age = self.ask_age.get(ap, (-1, -1))
            if bid_age < ask_age:
                book.apply_delta([(bp, 0.0)], ())
                self.bid_age.pop(bp, None)
            elif ask_age < bid_age:
                book.apply_delta((), [(ap, 0.0)])
                self.ask_age.pop(ap, None)
            else:  # set by the same message: both sides lose the smaller size
                m = min(bs, as_)
                nb = 0.0 if bs == m else bs - m
                na = 0.0 if as_ == m else as_ - m
                book.apply_delta([(bp, nb)], [(ap, na)])
                if nb == 0.0:
                    self.bid_age.pop(bp, None)
                if na == 0.0:
                    self.ask_age.pop(ap, None)
            drops += 1
            self.uncrossed += 1
            history.append(self._now)
