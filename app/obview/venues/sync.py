"""Book sync: the sequencing rules that say whether a venue's book is whole.

``BookSync`` applies a snapshot, then deltas whose ``prev_seq`` equals the last ``seq``, and
answers each with a ``SyncResult`` (APPLIED, BUFFERED, IGNORED or a GAP with its reason);
``NextSeqSync`` and ``SnapshotOnlySync`` are its two other common rules. Venue-specific syncs
(Binance's U/u/pu, OKX's checksum, ...) subclass these in the venue's module.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from obview.book import OrderBook
from obview.model import BookDelta, BookSnapshot

#: the reason a venue's book is refreshed from a new snapshot on purpose (a resync, not a gap)
DEPTH_REFRESH = "depth refresh"


class SyncStatus(enum.Enum):
    APPLIED = "applied"  # book changed and is whole
    BUFFERED = "buffered"  # held until a snapshot arrives
    IGNORED = "ignored"  # stale / duplicate / not for us; book unchanged
    GAP = "gap"  # book is no longer trustworthy: resync needed


@dataclass(slots=True)
class SyncResult:
    status: SyncStatus
    reason: str = ""
    refresh: bool = False  # GAP only: a book renewed on purpose (a resync, not counted as a gap)


APPLIED = SyncResult(SyncStatus.APPLIED)
BUFFERED = SyncResult(SyncStatus.BUFFERED)
IGNORED = SyncResult(SyncStatus.IGNORED)
#: applied, and nothing is left on either side: in sync, nothing to show
EMPTIED = SyncResult(SyncStatus.APPLIED, "empty book")


def bp_text(bps: float) -> str:
    """Basis points for a reason: two decimals under 10 bp (a $1 cross at BTC prices is
    0.10 bp, which whole numbers would call 0), whole ones above."""
    return f"{bps:.2f} bp" if bps < 10 else f"{bps:.0f} bp"


def fmt_seq_gap(expected: int | None, got: int | None) -> str:
    return f"seq gap {expected}\u2192{got}"


class BookSync:
    """Sequencing rules for one book: snapshot, then deltas whose ``prev_seq`` equals the last
    ``seq`` (the common case: OKX seqId/prevSeqId, Deribit change_id/prev_change_id, demo).

    Subclasses override ``check_delta`` (e.g. Binance U/u/pu, Bybit u+1) and ``verify`` (e.g. an
    OKX CRC32). Every accepted event is applied to ``book``; a crossed book after an update is
    a GAP. Deltas arriving before the first snapshot are buffered (bounded) and replayed when
    the snapshot comes, for venues whose snapshot comes out of band (REST).
    """

    max_buffer: ClassVar[int] = 10_000
    #: updates behind the book, each linking to the one before, that make a new chain (a gap)
    behind_chain: ClassVar[int] = 3

    def __init__(self, book: OrderBook, depth: int | None = None) -> None:
        self.book = book
        self.depth = depth  # venue-defined book depth: truncate after each update
        self.synced = False
        self.last_seq: int | None = None
        self.buffer: list[BookDelta] = []
        self.buffer_dropped = 0
        self._behind: tuple[int | None, int | None, int] = (None, None, 0)  # check_delta's
        # on_delta inlines _post_apply's common case unless a subclass extends it
        self._plain_post = type(self)._post_apply is BookSync._post_apply

    def reset(self) -> None:
        """Forget the book (reconnect or resync started)."""
        self.synced = False
        self.last_seq = None
        self._behind = (None, None, 0)
        self.buffer.clear()
        self.book.clear()

    # -- events -----------------------------------------------------------------------------
    def on_snapshot(self, snap: BookSnapshot) -> SyncResult:
        self.book.apply_snapshot(snap.bids, snap.asks)
        self.last_seq = snap.seq
        self.synced = True
        res = self.after_snapshot(snap)
        if res.status is SyncStatus.GAP:
            return self._fail(res)
        return self._post_apply(snap.checksum)

    def after_snapshot(self, snap: BookSnapshot) -> SyncResult:
        """Replay buffered deltas that follow ``snap`` (override for venue rules)."""
        buffered, self.buffer = self.buffer, []
        for d in buffered:
            if d.seq is not None and snap.seq is not None and d.seq <= snap.seq:
                continue
            res = self.on_delta(d)
            if res.status is SyncStatus.GAP:
                return res
        return APPLIED

    def on_delta(self, delta: BookDelta) -> SyncResult:
        if not self.synced:
            if len(self.buffer) >= self.max_buffer:
                self.buffer.pop(0)
                self.buffer_dropped += 1
            self.buffer.append(delta)
            return BUFFERED
        res = self.check_delta(delta)
        if res.status is not SyncStatus.APPLIED:
            if res.status is SyncStatus.GAP:
                return self._fail(res)
            return res
        book = self.book
        book.apply_delta(delta.bids, delta.asks)
        if delta.seq is not None:
            self.last_seq = delta.seq
        if self._plain_post and not delta.checksum:
            # the common case of _post_apply, inline: within the depth (nothing to cut: a
            # venue with a depth, Bybit's 200, OKX's 400, took the whole slow path every
            # message), no checksum to verify
            bk, ak = book.bids._keys, book.asks._keys
            depth = self.depth
            if depth is None or (len(bk) <= depth and len(ak) <= depth):
                if bk and ak:
                    if bk[-1] < ak[0]:
                        return APPLIED
                elif bk or ak:
                    return APPLIED  # one-sided; crossed or empty goes on to _post_apply
        return self._post_apply(delta.checksum)

    # -- rules ------------------------------------------------------------------------------
    def check_delta(self, delta: BookDelta) -> SyncResult:
        """Return APPLIED to apply, IGNORED to drop, or a GAP with a reason."""
        if self.last_seq is None or delta.prev_seq is None:
            return APPLIED
        if delta.prev_seq == self.last_seq:
            return APPLIED
        seq = delta.seq
        if seq is not None and delta.prev_seq <= seq <= self.last_seq:
            # behind the book: a duplicate (or a keep-alive, seq == prev), or a new chain the venue started (OKX resets its
            # seqId after maintenance) whose linking update was lost. Duplicates come singly;
            # updates that keep linking to one another behind an unmoved book are a new chain,
            # and dropping them all froze the book until the stale watchdog
            last, prev_ignored, run = self._behind
            run = run + 1 if (last == self.last_seq and prev_ignored == delta.prev_seq) else 1
            self._behind = (self.last_seq, seq, run)
            if run >= self.behind_chain:
                return SyncResult(
                    SyncStatus.GAP, f"sequence restarted behind the book ({delta.prev_seq}\u2192{seq} after {last})"
                )
            return IGNORED
        # anything else that does not link is a gap, a reset among them (seqId < prevSeqId)
        return SyncResult(SyncStatus.GAP, fmt_seq_gap(self.last_seq, delta.prev_seq))

    def verify(self, checksum: int) -> bool:
        """Check the venue checksum against ``book``; default: venue sends none."""
        return True

    def _post_apply(self, checksum: int | None) -> SyncResult:
        if self.depth is not None:
            self.book.truncate(self.depth)
        if checksum is not None and checksum != 0 and not self.verify(checksum):
            return self._fail(SyncResult(SyncStatus.GAP, "checksum mismatch"))
        if self.book.is_crossed():
            return self._fail(SyncResult(SyncStatus.GAP, f"crossed by {bp_text(self.book.crossed_bps())}"))
        if self.book.empty:
            # nothing on either side: a valid book (BitMEX sends an empty partial for a book
            # with no orders; rows then build it up; a deep option may have none), which the
            # pipeline shows as LIVE with the reason
            return EMPTIED
        return APPLIED

    def keep_for_repair(self, delta: BookDelta) -> None:
        """``delta`` met a book it could not follow (a GAP): a venue whose repair snapshot may
        be taken inside that very event keeps it for the snapshot (default: dropped)."""

    def _fail(self, res: SyncResult) -> SyncResult:
        self.synced = False
        self.last_seq = None
        self.buffer.clear()
        return res


class NextSeqSync(BookSync):
    """Snapshot replaces; each delta's ``seq`` must be the last one plus one (Bybit ``u``, Kraken
    Futures ``seq``): a lower one is a replay (ignored), a higher one a gap."""

    def check_delta(self, delta: BookDelta) -> SyncResult:
        last = self.last_seq
        if last is None or delta.seq is None:
            return APPLIED
        if delta.seq == last + 1:
            return APPLIED
        if delta.seq <= last:
            return IGNORED  # replayed / duplicate
        return SyncResult(SyncStatus.GAP, fmt_seq_gap(last + 1, delta.seq))


class SnapshotOnlySync(BookSync):
    """Every book message is a full snapshot (Hyperliquid l2Book): drop ones older than the
    last applied exchange time, so a reordered frame never overwrites a newer book."""

    def __init__(self, book: OrderBook, depth: int | None = None) -> None:
        super().__init__(book, depth)
        self.last_ts: float | None = None

    def reset(self) -> None:
        super().reset()
        self.last_ts = None

    def on_snapshot(self, snap: BookSnapshot) -> SyncResult:
        if self.last_ts is not None and snap.ts_exchange is not None and snap.ts_exchange < self.last_ts:
            return IGNORED
        if snap.ts_exchange is not None:
            self.last_ts = snap.ts_exchange
        return super().on_snapshot(snap)
