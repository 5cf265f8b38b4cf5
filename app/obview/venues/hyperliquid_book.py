"""Hyperliquid's book: its sync and the merge of its two book streams.

Every ``l2Book`` message is a whole top of the book: no sequence numbers, no checksum, ordered by
the exchange ``time``. Since mid-2026 the default subscription pushes 20 levels every 2-5 s and a
``"fast": true`` one 5 levels every 0.5 s; a push does not say which subscription produced it,
so each has a connection of its own (``HyperliquidAdapter.streams``). ``TwoBooks`` keeps the last
book of each and makes the book shown; ``HyperliquidSync`` orders them and tells repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from obview.book import OrderBook
from obview.model import BookSnapshot, Level
from obview.venues.sync import IGNORED, SnapshotOnlySync, SyncResult

#: the stream of the ``fast`` book subscription, and the levels a side its pushes hold
FAST = "fast"
FAST_LEVELS = 5
#: the default book's levels beyond the fast ones are shown while it is at most this many
#: seconds behind them (it comes every 2-5 s; a stalled one leaves the fast levels alone)
SLOW_MAX_LAG = 15.0
#: the fast book is the top of the book only while one came within this many seconds (local
#: time: pushes come every 0.5 s)
FAST_MAX_AGE = 3.0


@dataclass(slots=True)
class HlBook(BookSnapshot):
    """A book to show (``TwoBooks.merged``), and the push it follows: that push's
    stream and its own ``time`` (the book's may be the other stream's)."""

    source: str = "ws"
    pushed: float | None = None


class HyperliquidSync(SnapshotOnlySync):
    """Full-book snapshots ordered by exchange time.

    On top of the base rule (older ``time`` dropped), a push that repeats its stream's last one
    (the same ``time``) with the book already shown is IGNORED: it carries no news, and counting
    it as a book change would hide a stream whose ``time`` stopped advancing from the stale
    watchdog. A default book whose own ``time`` moved is never a repeat, even where the book it
    makes is the one shown (the fast levels newer, the deeper ones unchanged): it is the default
    stream's pulse.
    """

    def __init__(self, book: OrderBook, depth: int | None = None) -> None:
        super().__init__(book, depth)
        self._pushed: dict[str | None, float] = {}  # stream -> the time of its last push applied
        #: called when the book is forgotten (reconnect, resync): the adapter's merge forgets
        #: the books it keeps too, or one stamped in the future outlived every reconnect
        self.on_reset: Callable[[], None] | None = None

    def reset(self) -> None:
        super().reset()
        self._pushed.clear()
        if self.on_reset is not None:
            self.on_reset()

    def on_snapshot(self, snap: BookSnapshot) -> SyncResult:
        src = getattr(snap, "source", None)
        pushed = getattr(snap, "pushed", snap.ts_exchange)
        if (
            self.synced
            and pushed is not None
            and pushed == self._pushed.get(src)
            and _same_side(self.book.bids, snap.bids)
            and _same_side(self.book.asks, snap.asks)
        ):
            return IGNORED
        res = super().on_snapshot(snap)
        if res is not IGNORED and pushed is not None:
            self._pushed[src] = pushed
        return res


def _same_side(side, levels: list[Level]) -> bool:
    live = [(p, s) for p, s in levels if s > 0]
    if len(side) != len(live):
        return False
    return all(side.get(p) == s for p, s in live)


class TwoBooks:
    """The last book of each of Hyperliquid's two book streams, and the book they make."""

    def __init__(self, venue: str, symbol: str) -> None:
        self.venue = venue
        self.symbol = symbol
        self._slow: BookSnapshot | None = None  # the default l2Book's (20 levels, every 2-5 s)
        self._fast: BookSnapshot | None = None  # the fast one's (5 levels, every 0.5 s)

    def forget(self) -> None:
        self._slow = self._fast = None

    def merged(self, stream: str, snap: BookSnapshot) -> HlBook:
        """The book to show after ``snap`` came on ``stream``: the newer of the two streams'
        books, the fast one's five levels a side completed by the default book beyond them."""
        pushed = snap.ts_exchange

        def shown(book: BookSnapshot, bids=None, asks=None) -> HlBook:
            return HlBook(
                self.venue, self.symbol, book.bids if bids is None else bids,
                book.asks if asks is None else asks, None, book.ts_exchange, snap.ts_local,
                source=stream, pushed=pushed,
            )  # fmt: skip

        prev = self._fast if stream == FAST else self._slow
        if prev is not None and pushed is not None and prev.ts_exchange is not None and pushed < prev.ts_exchange:
            return shown(snap)  # older than its stream's last (reordered): the sync drops it
        if stream == FAST:
            self._fast = snap
        else:
            self._slow = snap
        fast, slow = self._fast, self._slow
        if fast is not None and snap.ts_local - fast.ts_local > FAST_MAX_AGE:
            # no fast push taken for a while (stalled, or its pushes dropped as older than one
            # stamped ahead): its levels are not the top of the book now
            fast = None
        if fast is None or fast.ts_exchange is None:
            return shown(snap if stream != FAST or slow is None else slow)
        if slow is not None and (slow.ts_exchange is None or slow.ts_exchange >= fast.ts_exchange):
            return shown(slow)
        bids, asks = fast.bids, fast.asks
        if slow is not None and fast.ts_exchange - slow.ts_exchange <= SLOW_MAX_LAG:
            # a side the fast push fills is completed beyond its last level; a side it does
            # not fill is all there is (the default book's deeper levels are gone)
            if len(bids) >= FAST_LEVELS:
                edge = bids[-1][0]
                bids = bids + [lv for lv in slow.bids if lv[0] < edge]
            if len(asks) >= FAST_LEVELS:
                edge = asks[-1][0]
                asks = asks + [lv for lv in slow.asks if lv[0] > edge]
        return shown(fast, bids, asks)
