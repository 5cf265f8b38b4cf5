"""OKX book integrity: the CRC32 checksum over the original level strings, and ``OkxSync``.

``checksum`` is a signed CRC32 over the top 25 levels of the book *after* an update, built from
the price/size strings exactly as sent: ``bid1px:bid1sz:ask1px:ask1sz:bid2px:...``, the longer
side's remaining levels appended alone. Since mid-2026 the live feed sends 0 there: 0 means "not
sent" and never fails a book. ``seqId`` / ``prevSeqId`` chain the updates (see ``okx``).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

from obview.book import OrderBook
from obview.model import BookDelta, BookSnapshot
from obview.venues.base import APPLIED, IGNORED, BookSync, SyncResult, SyncStatus

BOOK_DEPTH = 400
CHECKSUM_LEVELS = 25

RawLevel = tuple[str, str]  # (price, size) exactly as sent
#: ``"price:size"`` exactly as sent: one level's piece of the checksum text
RawText = str

_PRICE = itemgetter(0)


def okx_checksum(bids: list[RawLevel], asks: list[RawLevel]) -> int:
    """OKX book checksum: CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:bid2px:...`` over the best 25
    levels per side (the longer side's remaining levels appended alone), as a signed int32.

    ``bids`` best (highest) first, ``asks`` best (lowest) first, strings as received."""
    parts: list[str] = []
    nb = min(len(bids), CHECKSUM_LEVELS)
    na = min(len(asks), CHECKSUM_LEVELS)
    for i in range(max(nb, na)):
        if i < nb:
            parts.append(bids[i][0])
            parts.append(bids[i][1])
        if i < na:
            parts.append(asks[i][0])
            parts.append(asks[i][1])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def _checksum_text(bids: Sequence[RawText], asks: Sequence[RawText]) -> str:
    """The text ``okx_checksum`` hashes, from ``"price:size"`` pieces already cut to the top 25:
    bid and ask pieces interleaved, then the longer side's rest (C-level slice assignments)."""
    nb, na = len(bids), len(asks)
    if nb == na:
        parts = [*bids, *asks]
        parts[0::2] = bids
        parts[1::2] = asks
    elif nb > na:
        parts = [*bids[:na], *asks]
        parts[0::2] = bids[:na]
        parts[1::2] = asks
        parts += bids[na:]
    else:
        parts = [*bids, *asks[:nb]]
        parts[0::2] = bids
        parts[1::2] = asks[:nb]
        parts += asks[nb:]
    return ":".join(parts)


def _lookup(texts: dict[float, RawText], prices: list[float]) -> Sequence[RawText]:
    """``texts`` of ``prices`` in order (KeyError for a missing one), in one C call."""
    if len(prices) > 1:
        return itemgetter(*prices)(texts)
    return [texts[p] for p in prices]


@dataclass(slots=True)
class OkxBookSnapshot(BookSnapshot):
    """A snapshot that also keeps, per level, the ``"price:size"`` strings as sent (in the order
    of ``bids`` / ``asks``): what the checksum is computed from."""

    raw_bids: list[RawText] = field(default_factory=list)
    raw_asks: list[RawText] = field(default_factory=list)
    rest: bool = False  # fetched over REST (joins the updates buffered on this subscription)


@dataclass(slots=True)
class OkxBookDelta(BookDelta):
    """An update; ``raw_bids`` / ``raw_asks`` are None when it carries no texts: its checksum
    is 0 (the live feed since mid-2026) and the sync has stopped keeping them (``OkxSync``)."""

    raw_bids: list[RawText] | None = field(default_factory=list)
    raw_asks: list[RawText] | None = field(default_factory=list)


#: checksum-0 updates in a row after which the sync stops keeping the level texts (and the
#: adapter stops building them): the live feed sends 0 on every update since mid-2026
ZERO_RUN = 100


class OkxSync(BookSync):
    """seqId/prevSeqId chain (base rules) plus the CRC32 check over the original strings.

    Keeps price -> ``"price:size"`` as sent, per side, next to the float book. An entry is
    written for every level an applied message names, deletions included (one C-level
    ``dict.update`` per side instead of a Python loop): only prices in the book are ever looked
    up, and each of those holds the text of the message that last set it. Entries of deleted
    or cut-off levels are pruned once a side's map grows past ``raw_limit``.

    The texts cost as much as the book itself and only a non-zero checksum reads them. After
    ``ZERO_RUN`` updates in a row with checksum 0 (OKX's live feed since mid-2026) the sync
    stops wanting them (``texts_wanted``, which the adapter reads) and drops them once an update
    arrives without them; a stream that mixes zero and non-zero checksums keeps them. Should a
    non-zero checksum arrive after the texts were dropped, the book cannot be verified against
    it: that is a resync (the fresh snapshot brings the texts back), never an unchecked book.
    """

    def __init__(self, book: OrderBook, depth: int | None = BOOK_DEPTH) -> None:
        super().__init__(book, depth)
        self.bid_raw: dict[float, RawText] = {}
        self.ask_raw: dict[float, RawText] = {}
        self.raw_limit = 4 * (depth or BOOK_DEPTH)
        self.checksums_verified = 0
        self.checksums_skipped = 0  # checksum 0 or absent: nothing to verify
        self.first_pending = False
        self.texts_ok = False  # the maps hold the text of every level of the book
        self.zero_run = 0  # checksum-0 updates applied in a row
        self.rest_too_old = 0  # REST books fetched again: older than the buffered updates

    @property
    def texts_wanted(self) -> bool:
        """Whether updates with checksum 0 should still carry their level texts."""
        return self.zero_run < ZERO_RUN

    def reset(self) -> None:
        super().reset()
        self.bid_raw.clear()
        self.ask_raw.clear()
        self.first_pending = False
        self.texts_ok = False

    def on_snapshot(self, snap: BookSnapshot) -> SyncResult:
        if getattr(snap, "rest", False) and snap.seq is not None and not self.synced:
            # A REST book older than the updates buffered since subscribing cannot be joined to
            # them, but they are still good for a newer one: keep them and let the fallback fetch
            # again (the fact sheet's "if S < that prevSeqId, fetch again"), rather than drop
            # them and resubscribe (which spends the subscribe budget and waits out the
            # websocket snapshot's timeout again).
            first = next((d for d in self.buffer if d.seq is not None and d.seq > snap.seq), None)
            if first is not None and first.prev_seq is not None and first.prev_seq > snap.seq:
                self.rest_too_old += 1
                return SyncResult(
                    SyncStatus.BUFFERED,
                    f"REST snapshot {snap.seq} older than the updates buffered from {first.prev_seq}",
                )
        if isinstance(snap, OkxBookSnapshot):
            self.bid_raw = dict(zip(map(_PRICE, snap.bids), snap.raw_bids, strict=False))
            self.ask_raw = dict(zip(map(_PRICE, snap.asks), snap.raw_asks, strict=False))
            self.texts_ok = True
        else:
            self.bid_raw = {}
            self.ask_raw = {}
            self.texts_ok = False
        self.zero_run = 0
        return super().on_snapshot(snap)

    def after_snapshot(self, snap: BookSnapshot) -> SyncResult:
        # Updates held before a websocket snapshot belong to the previous subscription;
        # without a seqId there is no way to tell which of them follow it, so drop those.
        self.buffer = [d for d in self.buffer if d.seq is not None]
        # The first update after a snapshot must bridge it: prevSeqId <= S < seqId. Over the
        # websocket prevSeqId == S exactly; a REST snapshot (the path once the websocket
        # snapshot is gone) usually lands inside an update's range.
        self.first_pending = snap.seq is not None
        return super().after_snapshot(snap)

    def check_delta(self, delta: BookDelta) -> SyncResult:
        last = self.last_seq
        prev = delta.prev_seq
        if last is None or prev is None or prev == last:
            # the steady state: the chain links (or there is none to follow)
            self.first_pending = False
        elif self.first_pending and delta.seq is not None:
            if prev <= delta.seq <= last:
                return IGNORED  # already in the snapshot (a keep-alive too, seq == prev)
            if not prev <= last < delta.seq:
                return SyncResult(
                    SyncStatus.GAP,
                    f"snapshot {last} does not bridge update {prev}\u2192{delta.seq}",
                )
            self.first_pending = False
        else:
            self.first_pending = False
            res = super().check_delta(delta)
            if res.status is not SyncStatus.APPLIED:
                return res
        if self.texts_ok and (delta.__class__ is OkxBookDelta or isinstance(delta, OkxBookDelta)):
            # the base class applies the floats right after this; keep the texts in step
            raw_bids, raw_asks = delta.raw_bids, delta.raw_asks
            if raw_bids is None or raw_asks is None:
                self.texts_ok = False  # an update without texts: the maps fall behind
                self.bid_raw = {}
                self.ask_raw = {}
            else:
                if delta.bids:
                    self.bid_raw.update(zip(map(_PRICE, delta.bids), raw_bids, strict=False))
                if delta.asks:
                    self.ask_raw.update(zip(map(_PRICE, delta.asks), raw_asks, strict=False))
        return APPLIED

    def verify(self, checksum: int) -> bool:
        book = self.book
        try:
            bids = _lookup(self.bid_raw, book.bids.keys()[: -CHECKSUM_LEVELS - 1 : -1])
            asks = _lookup(self.ask_raw, book.asks.keys()[:CHECKSUM_LEVELS])
        except KeyError:
            return False
        crc = zlib.crc32(_checksum_text(bids, asks).encode())
        ok = (crc - (1 << 32) if crc >= (1 << 31) else crc) == checksum
        if ok:
            self.checksums_verified += 1
        return ok

    def _post_apply(self, checksum: int | None) -> SyncResult:
        if not checksum:
            self.checksums_skipped += 1
            self.zero_run += 1
        else:
            self.zero_run = 0
            if not self.texts_ok:
                return self._fail(
                    SyncResult(
                        SyncStatus.GAP, "checksums resumed after zero ones: resync to verify"
                    )
                )
        if self.texts_ok:
            limit = self.raw_limit
            if len(self.bid_raw) > limit or len(self.ask_raw) > limit:
                self._prune()
        return super()._post_apply(checksum)

    def _prune(self) -> None:
        """Drop the texts of levels the book no longer holds (bounded memory)."""
        raw = self.bid_raw
        self.bid_raw = {p: raw[p] for p in self.book.bids.levels if p in raw}
        raw = self.ask_raw
        self.ask_raw = {p: raw[p] for p in self.book.asks.levels if p in raw}
