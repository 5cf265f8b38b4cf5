"""OrderBook: one sorted map per side, absolute sizes, size 0 deletes.

A side is a plain dict (price -> size) plus a plain sorted list of its prices kept with
``bisect``. Books hold hundreds to a few thousand levels, where inserting into or deleting from
a Python list is a C ``memmove`` of a few KB: cheaper than any tree or bucketed structure written
in Python, and reading the best price is ``keys[-1]`` / ``keys[0]``. The side wraps the dict
rather than subclassing it, so the hot path (``OrderBook.apply_delta``) stores into a plain
dict with the interpreter's own subscript op instead of calling ``dict.__setitem__``.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator

from obview.model import Level

_EPS = 1e-9
#: float noise of ``price / step`` grows with the quotient (about 4e-16 of it): past 2**24 a
#: fixed 1e-9 no longer covers it (19995.01 / 0.001 floored to 19995009), so the tolerance
#: has a relative part too, far below the 1.0 between two buckets for any quotient under 1e11
_REL = 1e-12


def bucket_of(price: float, step: float) -> int:
    """Index ``i`` of the bucket [i*step, (i+1)*step) holding ``price``, float noise tolerated:
    the one rule the ladder, the heatmap sampler, its trades and the axis all bucket by."""
    x = price / step
    return math.floor(x + _EPS + abs(x) * _REL)


class BookSide:
    """price -> size with the prices also kept in an ascending list.

    A mapping: ``side[p]``, ``p in side``, ``len(side)``, ``get``; iteration, ``keys()``,
    ``values()`` and ``items()`` are in ascending price order; ``keys()`` returns the sorted list
    itself (index it, don't modify it). Also offers the few sorted-map helpers the project uses:
    ``irange``, ``peekitem``, ``popitem(index)``. ``levels`` is the underlying dict (read it,
    don't modify it).
    """

    __slots__ = ("levels", "_keys")

    def __init__(self, items: Iterable[Level] = ()) -> None:
        self.levels: dict[float, float] = dict(items)
        self._keys: list[float] = sorted(self.levels)

    # -- mapping ----------------------------------------------------------------------------
    def __getitem__(self, price: float) -> float:
        return self.levels[price]

    def get(self, price: float, default: float | None = None) -> float | None:
        return self.levels.get(price, default)

    def __contains__(self, price: object) -> bool:
        return price in self.levels

    def __len__(self) -> int:
        return len(self.levels)

    def __bool__(self) -> bool:
        return bool(self.levels)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BookSide):
            return self.levels == other.levels
        if isinstance(other, dict):
            return self.levels == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"BookSide({self.items()!r})"

    def __setitem__(self, price: float, size: float) -> None:
        levels = self.levels
        if price not in levels:
            insort(self._keys, price)
        levels[price] = size

    def __delitem__(self, price: float) -> None:
        del self.levels[price]
        keys = self._keys
        del keys[bisect_left(keys, price)]

    def pop(self, price: float, *default: float | None) -> float | None:
        levels = self.levels
        if price in levels:
            size = levels.pop(price)
            keys = self._keys
            del keys[bisect_left(keys, price)]
            return size
        if default:
            return default[0]
        raise KeyError(price)

    def clear(self) -> None:
        self.levels.clear()
        self._keys.clear()

    def __iter__(self) -> Iterator[float]:
        return iter(self._keys)

    def __reversed__(self) -> Iterator[float]:
        return reversed(self._keys)

    def keys(self) -> list[float]:
        return self._keys

    def values(self) -> list[float]:
        levels = self.levels
        return [levels[k] for k in self._keys]

    def items(self) -> list[Level]:
        levels = self.levels
        return [(k, levels[k]) for k in self._keys]

    # -- sorted-map helpers -------------------------------------------------------------------
    def irange(
        self, minimum: float | None = None, maximum: float | None = None, inclusive: tuple[bool, bool] = (True, True)
    ) -> Iterator[float]:
        """Prices between ``minimum`` and ``maximum`` (None: unbounded), ascending."""
        keys = self._keys
        lo = 0 if minimum is None else (bisect_left if inclusive[0] else bisect_right)(keys, minimum)
        hi = len(keys) if maximum is None else (bisect_right if inclusive[1] else bisect_left)(keys, maximum)
        return iter(keys[lo:hi])

    def peekitem(self, index: int = -1) -> Level:
        k = self._keys[index]
        return k, self.levels[k]

    def popitem(self, index: int = -1) -> Level:
        k = self._keys.pop(index)
        return k, self.levels.pop(k)

    def copy(self) -> BookSide:
        return BookSide(self.levels.items())


def bucket_floor(price: float, tick: float) -> float:
    """Largest multiple of ``tick`` at or below ``price`` (bids group down)."""
    return round(bucket_of(price, tick) * tick, 10)


def bucket_ceil(price: float, tick: float) -> float:
    """Smallest multiple of ``tick`` at or above ``price`` (asks group up)."""
    x = price / tick
    return round(math.ceil(x - _EPS - abs(x) * _REL) * tick, 10)


def _snapshot_side(levels: Iterable[Level]) -> BookSide:
    """A side holding ``levels`` of size > 0 (of a price given twice, the last such one).

    Venues that send only snapshots (Hyperliquid) build one per message: the common case (no
    price twice, no size <= 0) is built and checked by C calls instead of a Python filter."""
    if not isinstance(levels, list):
        levels = list(levels)
    d = dict(levels)
    sizes = d.values()
    if len(d) != len(levels) or (d and (not min(sizes) > 0 or any(map(math.isnan, sizes)))):
        d = dict((p, s) for p, s in levels if s > 0)
    side = BookSide.__new__(BookSide)
    side.levels = d
    side._keys = sorted(d)
    return side


class OrderBook:
    """Price levels of one instrument.

    Bids and asks are ``BookSide`` maps price -> size, both ascending, so the best bid is
    the last bid key and the best ask the first ask key.
    """

    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids = BookSide()
        self.asks = BookSide()

    def copy(self) -> OrderBook:
        """An independent copy (a paused screen's book)."""
        book = OrderBook()
        book.bids, book.asks = self.bids.copy(), self.asks.copy()
        return book

    # -- mutation ---------------------------------------------------------------------------
    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def apply_snapshot(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bids = _snapshot_side(bids)
        self.asks = _snapshot_side(asks)

    def apply_delta(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        # Hot path: the sides' dicts and key lists are written directly (one Python frame per
        # message, not per level). A size change at an existing price touches only the dict.
        if bids:
            side = self.bids
            levels, keys = side.levels, side._keys
            for p, s in bids:
                if s > 0:
                    if p not in levels:
                        insort(keys, p)
                    levels[p] = s
                elif p in levels:
                    del levels[p]
                    del keys[bisect_left(keys, p)]
        if asks:
            side = self.asks
            levels, keys = side.levels, side._keys
            for p, s in asks:
                if s > 0:
                    if p not in levels:
                        insort(keys, p)
                    levels[p] = s
                elif p in levels:
                    del levels[p]
                    del keys[bisect_left(keys, p)]

    def set_level(self, is_bid: bool, price: float, size: float) -> None:
        side = self.bids if is_bid else self.asks
        if size > 0:
            side[price] = size
        else:
            side.pop(price, None)

    def truncate(self, depth: int) -> None:
        """Keep only the best ``depth`` levels per side (venues that define book depth)."""
        if len(self.bids._keys) <= depth and len(self.asks._keys) <= depth:
            return  # the common case, checked after every update of such a venue
        while len(self.bids) > depth:
            self.bids.popitem(0)
        while len(self.asks) > depth:
            self.asks.popitem(-1)

    # -- reading ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.bids) + len(self.asks)

    @property
    def empty(self) -> bool:
        return not self.bids._keys and not self.asks._keys

    def best_bid(self) -> Level | None:
        keys = self.bids._keys
        if not keys:
            return None
        p = keys[-1]
        return p, self.bids.levels[p]

    def best_ask(self) -> Level | None:
        keys = self.asks._keys
        if not keys:
            return None
        p = keys[0]
        return p, self.asks.levels[p]

    def spread(self) -> float | None:
        b, a = self.bids._keys, self.asks._keys
        if not b or not a:
            return None
        return a[0] - b[-1]

    def mid(self) -> float | None:
        b, a = self.bids._keys, self.asks._keys
        if not b or not a:
            return None
        return (a[0] + b[-1]) / 2.0

    def spread_bps(self) -> float | None:
        sp, mid = self.spread(), self.mid()
        if sp is None or not mid:
            return None
        return sp / mid * 1e4

    def is_crossed(self) -> bool:
        """True when best bid >= best ask (a locked book counts: no venue rests one)."""
        b, a = self.bids._keys, self.asks._keys
        return bool(b and a) and b[-1] >= a[0]

    def crossed_bps(self) -> float:
        """How far bid exceeds ask, in basis points of the mid (0 when not crossed)."""
        if not self.is_crossed():
            return 0.0
        bb, ba = self.bids._keys[-1], self.asks._keys[0]
        return (bb - ba) / ((bb + ba) / 2.0) * 1e4

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """Best ``n`` levels per side: bids high->low, asks low->high."""
        if n <= 0:
            return [], []
        levels = self.bids.levels
        bids = [(k, levels[k]) for k in self.bids._keys[: -n - 1 : -1]]
        levels = self.asks.levels
        asks = [(k, levels[k]) for k in self.asks._keys[:n]]
        return bids, asks

    def grouped(self, tick: float, n: int) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
        """Best ``n`` buckets of width ``tick`` per side as (price, size, cumulative size).

        Bids round down and asks round up, so a bucket never crosses the spread. Walks only
        as many raw levels as needed to fill ``n`` buckets.
        """
        return self._group(self.bids, tick, n, True), self._group(self.asks, tick, n, False)

    @staticmethod
    def _group(side: BookSide, tick: float, n: int, is_bid: bool) -> list[tuple[float, float, float]]:
        # Per level only the bucket's integer index (as bucket_floor / bucket_ceil compute it) is
        # taken; the bucket's price is rounded once per bucket, not once per level.
        out: list[tuple[float, float, float]] = []
        if n <= 0 or not side:
            return out
        levels = side.levels
        if is_bid:
            keys: Iterable[float] = reversed(side._keys)
            to_bucket, sign = math.floor, 1.0
        else:
            keys = side._keys
            to_bucket, sign = math.ceil, -1.0
        eps, rel = sign * _EPS, sign * _REL
        cur: int | None = None
        cur_size = 0.0
        cum = 0.0
        for p in keys:
            x = p / tick
            k = to_bucket(x + eps + x * rel)  # prices are positive
            if k != cur:
                if cur is not None:
                    cum += cur_size
                    out.append((round(cur * tick, 10), cur_size, cum))
                    if len(out) >= n:
                        return out
                cur = k
                cur_size = 0.0
            cur_size += levels[p]
        if cur is not None:
            cum += cur_size
            out.append((round(cur * tick, 10), cur_size, cum))
        return out

    def depth_within(self, pct: float) -> tuple[float, float]:
        """Total (bid, ask) size resting within ±``pct`` percent of the mid."""
        mid = self.mid()
        if mid is None:
            return 0.0, 0.0
        lo, hi = mid * (1 - pct / 100.0), mid * (1 + pct / 100.0)
        bl, al = self.bids.levels, self.asks.levels
        bid = sum(bl[p] for p in self.bids.irange(lo, hi))
        ask = sum(al[p] for p in self.asks.irange(lo, hi))
        return bid, ask

    def imbalance(self, n: int = 10) -> float | None:
        """(bid - ask) / (bid + ask) over the top ``n`` levels; +1 all bids, -1 all asks."""
        bids, asks = self.top(n)
        b = sum(s for _, s in bids)
        a = sum(s for _, s in asks)
        return (b - a) / (b + a) if b + a > 0 else None

    def bucket_sizes(self, lo: float, step: float, count: int) -> list[float]:
        """Resting size (both sides) per price bucket [lo + i*step, lo + (i+1)*step); ``lo`` is
        a bucket edge (a multiple of ``step``), each level bucketed by ``bucket_of``."""
        first, sizes = self.bucket_span(lo, step, count)
        out = [0.0] * count
        out[first : first + len(sizes)] = sizes
        return out

    def bucket_span(self, lo: float, step: float, count: int) -> tuple[int, list[float]]:
        """``bucket_sizes`` cut to the buckets from the lowest to the highest occupied one:
        (index of the first of them, their sizes); (0, []) when no level is in the window.

        The heatmap's window is +-1% of the mid; a narrow book (Hyperliquid's 20 levels,
        Bybit's 200) covers a small part of it, so this is what a history of columns stores.
        """
        base = bucket_of(lo, step)
        # the window widened by half a bucket each way: a price on a bucket's edge may sit a
        # hair below it as a float; each level's bucket is then ``bucket_of``'s, as everywhere
        wlo, whi = lo - step / 2, lo + step * (count + 0.5)
        spans = []
        first, last = count, -1
        for side in (self.bids, self.asks):
            keys = side._keys
            a, b = bisect_left(keys, wlo), bisect_left(keys, whi)
            if a < b:
                spans.append((side.levels, keys[a:b]))
                first = min(first, bucket_of(keys[a], step) - base)
                last = max(last, bucket_of(keys[b - 1], step) - base)
        first, last = max(first, 0), min(last, count - 1)
        if first > last:
            return 0, []
        out = [0.0] * (last - first + 1)
        n = len(out)
        off = base + first
        for levels, prices in spans:
            for p in prices:
                x = p / step
                i = math.floor(x + _EPS + x * _REL) - off  # bucket_of, inlined: the hot loop
                if 0 <= i < n:
                    out[i] += levels[p]
        # the widened window's edge levels may fall outside it: the span ends on occupied ones
        lo_i, hi_i = 0, len(out)
        while lo_i < hi_i and not out[lo_i]:
            lo_i += 1
        while hi_i > lo_i and not out[hi_i - 1]:
            hi_i -= 1
        if lo_i >= hi_i:
            return 0, []
        if lo_i or hi_i < len(out):
            out = out[lo_i:hi_i]
        return first + lo_i, out
