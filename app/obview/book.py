"""OrderBook: one sorted map per side (sortedcontainers), absolute sizes, size 0 deletes."""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import islice

from sortedcontainers import SortedDict

from obview.model import Level

_EPS = 1e-9

_dict_set = dict.__setitem__
_dict_del = dict.__delitem__


def _lo(side: SortedDict) -> float:
    """Smallest key of a non-empty side without building a keys view (hot path)."""
    return side._list._lists[0][0]


def _hi(side: SortedDict) -> float:
    """Largest key of a non-empty side."""
    return side._list._lists[-1][-1]


def bucket_floor(price: float, tick: float) -> float:
    """Largest multiple of ``tick`` at or below ``price`` (bids group down)."""
    return round(math.floor(price / tick + _EPS) * tick, 10)


def bucket_ceil(price: float, tick: float) -> float:
    """Smallest multiple of ``tick`` at or above ``price`` (asks group up)."""
    return round(math.ceil(price / tick - _EPS) * tick, 10)


class OrderBook:
    """Price levels of one instrument.

    Bids and asks are ``SortedDict`` maps price -> size, both ascending, so the best bid is
    the last bid key and the best ask the first ask key.
    """

    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()
        self.asks: SortedDict = SortedDict()

    # -- mutation ---------------------------------------------------------------------------
    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bids = SortedDict((p, s) for p, s in bids if s > 0)
        self.asks = SortedDict((p, s) for p, s in asks if s > 0)

    def apply_delta(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        # Hot path. The SortedDict is a dict plus a sorted key list: a size change at an existing
        # price (most updates) only touches the dict; a new or removed price also updates the key
        # list. Done here directly to skip SortedDict's Python-level __setitem__ / pop frames.
        dset, ddel = _dict_set, _dict_del
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels:
                if s > 0:
                    if p not in side:
                        side._list_add(p)
                    dset(side, p, s)
                elif p in side:
                    ddel(side, p)
                    side._list_remove(p)

    def set_level(self, is_bid: bool, price: float, size: float) -> None:
        side = self.bids if is_bid else self.asks
        if size > 0:
            side[price] = size
        else:
            side.pop(price, None)

    def truncate(self, depth: int) -> None:
        """Keep only the best ``depth`` levels per side (venues that define book depth)."""
        while len(self.bids) > depth:
            self.bids.popitem(0)
        while len(self.asks) > depth:
            self.asks.popitem(-1)

    # -- reading ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)

    @property
    def empty(self) -> bool:
        return not self.bids and not self.asks

    def best_bid(self) -> Level | None:
        if not self.bids:
            return None
        p = _hi(self.bids)
        return p, self.bids[p]

    def best_ask(self) -> Level | None:
        if not self.asks:
            return None
        p = _lo(self.asks)
        return p, self.asks[p]

    def spread(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return _lo(self.asks) - _hi(self.bids)

    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (_lo(self.asks) + _hi(self.bids)) / 2.0

    def spread_bps(self) -> float | None:
        sp, mid = self.spread(), self.mid()
        if sp is None or not mid:
            return None
        return sp / mid * 1e4

    def is_crossed(self) -> bool:
        """True when best bid >= best ask (a locked book counts: no venue rests one)."""
        bids, asks = self.bids, self.asks
        return bool(bids) and bool(asks) and _hi(bids) >= _lo(asks)

    def crossed_bps(self) -> float:
        """How far bid exceeds ask, in basis points of the mid (0 when not crossed)."""
        if not self.is_crossed():
            return 0.0
        bb, ba = _hi(self.bids), _lo(self.asks)
        return (bb - ba) / ((bb + ba) / 2.0) * 1e4

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """Best ``n`` levels per side: bids high->low, asks low->high."""
        if n <= 0:
            return [], []
        # iterate the sorted keys (C-level chain over the key sublists), look sizes up in the dict
        side = self.bids
        keys = list(islice(reversed(side), n))
        bids = list(zip(keys, map(side.__getitem__, keys), strict=True))
        side = self.asks
        keys = list(islice(side, n))
        asks = list(zip(keys, map(side.__getitem__, keys), strict=True))
        return bids, asks

    def grouped(self, tick: float, n: int) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
        """Best ``n`` buckets of width ``tick`` per side as (price, size, cumulative size).

        Bids round down and asks round up, so a bucket never crosses the spread. Walks only
        as many raw levels as needed to fill ``n`` buckets.
        """
        return self._group(self.bids, tick, n, True), self._group(self.asks, tick, n, False)

    @staticmethod
    def _group(side: SortedDict, tick: float, n: int, is_bid: bool) -> list[tuple[float, float, float]]:
        out: list[tuple[float, float, float]] = []
        if n <= 0 or not side:
            return out
        keys = reversed(side.keys()) if is_bid else iter(side.keys())
        bucket_of = bucket_floor if is_bid else bucket_ceil
        cur_price: float | None = None
        cur_size = 0.0
        cum = 0.0
        for p in keys:
            b = bucket_of(p, tick)
            if b != cur_price:
                if cur_price is not None:
                    cum += cur_size
                    out.append((cur_price, cur_size, cum))
                    if len(out) >= n:
                        return out
                cur_price = b
                cur_size = 0.0
            cur_size += side[p]
        if cur_price is not None:
            cum += cur_size
            out.append((cur_price, cur_size, cum))
        return out

    def depth_within(self, pct: float) -> tuple[float, float]:
        """Total (bid, ask) size resting within ±``pct`` percent of the mid."""
        mid = self.mid()
        if mid is None:
            return 0.0, 0.0
        lo, hi = mid * (1 - pct / 100.0), mid * (1 + pct / 100.0)
        bid = sum(self.bids[p] for p in self.bids.irange(lo, hi))
        ask = sum(self.asks[p] for p in self.asks.irange(lo, hi))
        return bid, ask

    def imbalance(self, n: int = 10) -> float | None:
        """(bid - ask) / (bid + ask) over the top ``n`` levels; +1 all bids, -1 all asks."""
        bids, asks = self.top(n)
        b = sum(s for _, s in bids)
        a = sum(s for _, s in asks)
        return (b - a) / (b + a) if b + a > 0 else None

    def bucket_sizes(self, lo: float, step: float, count: int) -> list[float]:
        """Resting size (both sides) per price bucket [lo + i*step, lo + (i+1)*step)."""
        out = [0.0] * count
        hi = lo + step * count
        for side in (self.bids, self.asks):
            for p in side.irange(lo, hi, inclusive=(True, False)):
                i = int((p - lo) / step)
                if 0 <= i < count:
                    out[i] += side[p]
        return out
