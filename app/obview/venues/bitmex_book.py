"""BitMEX book rules: ``orderBookL2`` rows keyed by level id, checked against the book.

``BitmexSync`` keeps ``id -> (side, price)`` beside the book and calls a gap on any row that
does not fit it (see ``obview.venues.bitmex`` for the protocol): the only way a lost message
shows on a feed without sequence numbers or checksums.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from dataclasses import dataclass, field
from typing import ClassVar

from obview.book import OrderBook
from obview.model import BookDelta, BookSnapshot
from obview.venues.base import APPLIED, IGNORED, BookSync, SyncResult, SyncStatus

#: most levels one book may hold (XBTUSD's full partial had 9,346 rows in 2021)
MAX_LEVELS = 200_000

# row actions of a delta (the partial is a snapshot of its own)
INSERT, UPDATE, DELETE = 0, 1, 2
_ACTION_NAMES = ("insert", "update", "delete")

Row = tuple[int, int, bool, float | None, float]  # action, id, is_bid, price (None: not sent), size
PartialRow = tuple[int, bool, float, float]  # id, is_bid, price, size


@dataclass(slots=True)
class BitmexBookSnapshot(BookSnapshot):
    """A ``partial``: the levels plus the id each one is known by."""

    rows: list[PartialRow] = field(default_factory=list)


@dataclass(slots=True)
class BitmexBookDelta(BookDelta):
    """``insert`` / ``update`` / ``delete`` rows; ``BitmexSync`` resolves them into levels."""

    rows: list[Row] = field(default_factory=list)


def _gap(reason: str) -> SyncResult:
    return SyncResult(SyncStatus.GAP, reason)


class BitmexSync(BookSync):
    """The book plus ``id -> (is_bid, price)`` and its inverse, always changed together."""

    max_levels: ClassVar[int] = MAX_LEVELS

    def __init__(self, book: OrderBook, depth: int | None = None) -> None:
        super().__init__(book, depth)
        self.ids: dict[int, tuple[bool, float]] = {}
        self.at: dict[tuple[bool, float], int] = {}

    def reset(self) -> None:
        super().reset()
        self.ids.clear()
        self.at.clear()

    def _fail(self, res: SyncResult) -> SyncResult:
        self.ids.clear()
        self.at.clear()
        return super()._fail(res)

    def on_snapshot(self, snap: BookSnapshot) -> SyncResult:
        rows = snap.rows if isinstance(snap, BitmexBookSnapshot) else None
        if rows is not None:
            if len(rows) > self.max_levels:
                return self._fail(_gap(f"partial of {len(rows)} levels exceeds {self.max_levels}"))
            ids: dict[int, tuple[bool, float]] = {}
            at: dict[tuple[bool, float], int] = {}
            for id_, is_bid, price, size in rows:
                key = (is_bid, price)
                if id_ in ids:
                    return self._fail(_gap(f"partial lists level id {id_} twice"))
                if key in at:
                    return self._fail(_gap(f"partial lists two level ids at {price:g}"))
                if not size > 0:
                    return self._fail(_gap(f"partial level id {id_} has size 0"))
                ids[id_] = key
                at[key] = id_
            self.ids, self.at = ids, at
        return super().on_snapshot(snap)

    def after_snapshot(self, snap: BookSnapshot) -> SyncResult:
        self.buffer.clear()  # nothing is buffered: rows before the partial are in it
        return APPLIED

    def on_delta(self, delta: BookDelta) -> SyncResult:
        if not self.synced:
            return IGNORED  # before the partial: already part of it
        if delta.__class__ is not BitmexBookDelta:
            return super().on_delta(delta)
        # Each row is checked against the id map and written to the book at once (one pass, no
        # level list built and applied after). A row that does not fit fails the sync, and the
        # pipeline then clears the book, rows written before it included. ``delta.bids`` /
        # ``asks`` still receive the levels the rows resolve to.
        ids, at = self.ids, self.at
        book = self.book
        bid_side, ask_side = book.bids, book.asks
        bids, asks = delta.bids, delta.asks
        for action, id_, is_bid, price, size in delta.rows:
            if is_bid:
                side, out = bid_side, bids
            else:
                side, out = ask_side, asks
            levels = side.levels
            if action == INSERT:
                key = (is_bid, price)
                if id_ in ids:
                    return self._fail(_gap(f"insert of level id {id_} already in the book"))
                if key in at:
                    return self._fail(_gap(f"insert of a second level id at {price:g}"))
                if not size > 0:
                    return self._fail(_gap(f"insert of level id {id_} with size 0"))
                if len(ids) >= self.max_levels:
                    return self._fail(_gap(f"book exceeds {self.max_levels} levels"))
                ids[id_] = key  # type: ignore[assignment]
                at[key] = id_  # type: ignore[index]
                out.append((price, size))  # type: ignore[arg-type]
                if price not in levels:
                    insort(side._keys, price)
                levels[price] = size  # type: ignore[index]
                continue
            known = ids.get(id_)
            if known is None:
                return self._fail(_gap(f"{_ACTION_NAMES[action]} of unknown level id {id_}"))
            if known[0] != is_bid or (price is not None and price != known[1]):
                return self._fail(_gap(f"level id {id_} changed side or price"))
            price = known[1]
            if action == UPDATE:
                if not size > 0:
                    return self._fail(_gap(f"update of level id {id_} to size 0"))
                out.append((price, size))
                if price not in levels:
                    insort(side._keys, price)
                levels[price] = size
            else:
                del ids[id_]
                del at[known]
                out.append((price, 0.0))
                if price in levels:
                    del levels[price]
                    keys = side._keys
                    del keys[bisect_left(keys, price)]
        if self._plain_post and self.depth is None:
            # BookSync.on_delta's common case: neither side crossed nor empty
            bk, ak = bid_side._keys, ask_side._keys
            if bk and ak:
                if bk[-1] < ak[0]:
                    return APPLIED
            elif bk or ak:
                return APPLIED
        return self._post_apply(None)
