"""Heatmap sampling: the book snapshotted into time columns of price buckets, kept in two
bounded rings (every sample, and per 10 s period), and columns merged for a coarser time axis.

Nothing here knows about terminals; the heatmap widget and its time zoom read these columns.
"""

from __future__ import annotations

import copy
import itertools
import math
import operator
from array import array
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from obview.book import OrderBook, bucket_of
from obview.model import Instrument, Side

#: the most of a silence before STALE that is redrawn as a gap (s)
UNSEE_MOST = 30.0
#: missed samples of a stall up to this long (s), the feed LIVE on both sides, keep the last
#: book; a longer one (a suspended process, a laptop asleep) is a gap
STALL_HELD = 2.0


@dataclass(slots=True)
class HeatmapColumn:
    """One sampler tick: resting size per price bucket, plus what traded during the tick.

    Bucket ``i`` covers prices [(start + i) * step, (start + i + 1) * step). ``live`` is False
    when the feed was not LIVE at the sample time; such a column has no sizes (a visible gap).
    """

    t: float
    live: bool
    start: int = 0
    sizes: array = field(default_factory=lambda: array("f"))
    best_bid: float | None = None
    best_ask: float | None = None
    buys: dict[int, float] = field(default_factory=dict)  # bucket -> base size bought
    sells: dict[int, float] = field(default_factory=dict)
    #: the buckets the sample looked at, [lo, hi): outside them nothing is known (not "empty")
    lo: int | None = None
    hi: int | None = None


def merge_columns(cols: Sequence[HeatmapColumn]) -> HeatmapColumn:
    """One column standing for consecutive ``cols``: the mean resting size per bucket over the
    LIVE ones, every trade of all of them, the last LIVE one's best bid and ask; a gap when
    fewer than half were LIVE (with one LIVE sample enough, zooming out hid any outage shorter
    than a column: 78 of 160 samples STALE drew as a whole book)."""
    if len(cols) == 1:
        return cols[0]
    live = [c for c in cols if c.live]
    last = cols[-1]
    buys = _sum_counts(c.buys for c in cols)
    sells = _sum_counts(c.sells for c in cols)
    if 2 * len(live) < len(cols):
        return HeatmapColumn(t=last.t, live=False, buys=buys, sells=sells)
    lo = min(c.start for c in live)
    hi = max(c.start + len(c.sizes) for c in live)
    acc = [0.0] * (hi - lo)
    for c in live:
        a = c.start - lo
        b = a + len(c.sizes)
        acc[a:b] = map(operator.add, acc[a:b], c.sizes)
    ref = live[-1]
    # known where any live sample looked; each bucket the mean over the samples that looked
    # at it (a mean over all would count unseen as empty; known only where every sample looked
    # shrank to nothing as the mid drifted over a 20-level book)
    windows = sorted((c.lo, c.hi) for c in live if c.lo is not None and c.hi is not None and c.lo < c.hi)
    # one stretch, or a bucket between two windows would read as known and empty
    joined = all(b[0] <= a[1] for a, b in zip(windows, windows[1:], strict=False))
    if len(windows) == len(live) and joined:
        known: tuple[int, int] | None = (windows[0][0], max(w[1] for w in windows))
        diff = [0] * (hi - lo + 1)  # how many samples saw each bucket, by a difference array
        for wlo, whi in windows:
            a, b = max(wlo - lo, 0), min(whi - lo, hi - lo)
            if a < b:
                diff[a] += 1
                diff[b] -= 1
        seen = itertools.accumulate(diff[:-1])
        sizes = [v / n if n else 0.0 for v, n in zip(acc, seen, strict=True)]
    elif len(windows) == len(live) and windows:
        known = (ref.lo, ref.hi) if ref.lo is not None and ref.hi is not None else None
        inv = 1.0 / len(live)
        sizes = [v * inv for v in acc]
    else:
        known = None
        inv = 1.0 / len(live)
        sizes = [v * inv for v in acc]
    return HeatmapColumn(
        t=last.t,
        live=True,
        start=lo,
        sizes=array("f", sizes),
        best_bid=ref.best_bid,
        best_ask=ref.best_ask,
        buys=buys,
        sells=sells,
        lo=known[0] if known else None,
        hi=known[1] if known else None,
    )


def _sum_counts(ds: Iterable[dict[int, float]]) -> dict[int, float]:
    out: dict[int, float] = {}
    for d in ds:
        for b, v in d.items():
            out[b] = out.get(b, 0.0) + v
    return out


class HeatmapSampler:
    """Snapshots the book into fixed-cadence time columns of price buckets (bounded rings).

    The bucket width is fixed per market from the first mid seen: the instrument tick scaled
    up so that ``span_pct`` either side of the mid fits in ``buckets`` buckets. Columns keep
    absolute bucket indices, so they line up even as the window follows the mid.

    Two rings: ``columns``, one per sample (``history`` of them: 3 minutes at 0.25 s), and
    ``coarse``, one per ``coarse_every`` samples merged (``merge_columns``) once their period
    of sample time has passed (``coarse_history`` of them: an hour at 10 s). A period keeps the
    buckets within ``span_pct / 2`` of its mid, half the samples' window: a deep book fills the
    whole window (4000 buckets, 16 KB a column). Measured in the soak (three warm markets on
    such books), 5 s periods cut to half grew RSS about 1.1 MiB a minute while their ring
    filled; 10 s periods hold the hour in half that. ``pending`` holds
    the samples of the period still filling.
    """

    def __init__(
        self,
        cadence: float = 0.25,
        history: int = 720,
        buckets: int = 4000,
        span_pct: float = 1.0,
        coarse_every: int = 40,
        coarse_history: int = 360,
    ) -> None:
        self.cadence = cadence
        self.buckets = buckets
        self.span_pct = span_pct
        self.columns: deque[HeatmapColumn] = deque(maxlen=history)
        self.coarse_every = coarse_every
        self.unseen = 0  # how many times columns were made gaps after the fact
        self.coarse: deque[HeatmapColumn] = deque(maxlen=coarse_history)
        self.pending: list[HeatmapColumn] = []
        self.step: float | None = None
        self.next_at = 0.0
        self.began: float | None = None  # the first sample's time: no history before it
        self._buys: dict[int, float] = {}
        self._sells: dict[int, float] = {}

    def frozen(self) -> HeatmapSampler:
        """A still copy of the history drawn so far (a paused screen's): columns sampled later
        go to this sampler, not to the copy."""
        f = copy.copy(self)
        f.columns = deque(self.columns, maxlen=self.columns.maxlen)
        f.coarse = deque(self.coarse, maxlen=self.coarse.maxlen)
        f.pending = list(self.pending)
        f._buys, f._sells = dict(self._buys), dict(self._sells)
        return f

    def choose_step(self, mid: float, tick: float) -> float:
        want = mid * self.span_pct / 100.0 * 2 / self.buckets
        if tick <= 0:
            tick = want
        # the smallest whole number of ticks in the 1-2.5-5 series at least ``want`` wide (1, 5,
        # 10, 25, 50, 100 ... ticks): the ladder's default grouping is two buckets, which is
        # then in the 1-2-5 series of its steps (2, 10, 20, 50 ... ticks; a bucket of 2 ticks
        # made a default of 4, an odd step between 2 and 5)
        scale = 1.0
        while True:
            for m in (1, 2.5, 5):
                n = m * scale
                if n == int(n) and tick * n >= want:
                    return round(tick * n, 12)
            scale *= 10

    def add_trade(self, price: float, base_size: float, side: Side) -> None:
        if self.step is None:
            return
        b = bucket_of(price, self.step)  # the rule the book's buckets and the axis use
        target = self._buys if side is Side.BUY else self._sells
        if len(target) < 4096 or b in target:
            target[b] = target.get(b, 0.0) + base_size

    def period_of(self, t: float) -> int:
        """The aligned period of ``coarse_every`` samples that sample time ``t`` falls in."""
        return math.floor(t / (self.cadence * self.coarse_every) + 1e-9)

    def crop_period(self, col: HeatmapColumn) -> HeatmapColumn:
        """``col`` cut to the buckets within a quarter of the window of its mid (a new column:
        a period of one sample is that sample itself, which the samples' ring still holds)."""
        keep = self.buckets // 4
        if not col.live or len(col.sizes) <= 2 * keep or not (col.best_bid and col.best_ask):
            return col
        step = self.step or 1.0
        mid = int(math.floor((col.best_bid + col.best_ask) / 2 / step)) - col.start
        lo = min(max(0, mid - keep), len(col.sizes) - 2 * keep)
        a, b = col.start + lo, col.start + lo + 2 * keep
        return HeatmapColumn(
            t=col.t,
            live=True,
            start=a,
            sizes=col.sizes[lo : lo + 2 * keep],
            best_bid=col.best_bid,
            best_ask=col.best_ask,
            buys=col.buys,
            sells=col.sells,
            lo=a if col.lo is None else max(a, col.lo),
            hi=b if col.hi is None else min(b, col.hi),
        )

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def sample(
        self, now: float, book: OrderBook, live: bool, inst: Instrument, whole: bool = False
    ) -> HeatmapColumn | None:
        """A column if one is due. ``whole``: the book is the venue's whole depth, so the window
        is known past its deepest levels (empty there), not cut at them."""
        if now < self.next_at:
            if self.next_at - now <= self.cadence:
                return None
            # earlier than the last sample: the wall clock was stepped back (sampling would
            # wait for the old time to come round again); the cadence restarts from now
            self.next_at = 0.0
        # keep a fixed cadence, but never try to catch up on missed ticks with samples: the
        # time they cover (a suspended process, a stalled loop, a sleeping laptop) becomes gap
        # columns, so x stays time and the heatmap does not pretend it saw that book
        if self.next_at and now - self.next_at < self.cadence:
            self.next_at += self.cadence
        else:
            if self.next_at and self.columns:
                missed = min(int((now - self.next_at) / self.cadence), self.columns.maxlen or 0)
                t = now - missed * self.cadence
                prev = self.columns[-1]
                # a short stall of this process (a busy frame, a time zoom rebuilt under load)
                # is not the feed's outage: a feed LIVE on both sides of it keeps the book it
                # had (the frames of those moments were not applied yet); hatched, it read as
                # "the feed was not LIVE then" while the status said LIVE throughout
                held = live and prev.live and missed * self.cadence <= STALL_HELD
                for _ in range(missed):
                    if held:
                        col = HeatmapColumn(
                            t, True, prev.start, prev.sizes, prev.best_bid, prev.best_ask,
                            lo=prev.lo, hi=prev.hi,
                        )  # fmt: skip
                    else:
                        col = HeatmapColumn(t=t, live=False)
                    self._add(col, t)
                    t += self.cadence
            self.next_at = now + self.cadence
        mid = book.mid()
        if self.step is None and mid:
            self.step = self.choose_step(mid, inst.tick)
        if not live or mid is None or self.step is None:
            col = HeatmapColumn(t=now, live=False)
        else:
            step = self.step
            start = bucket_of(mid, step) - self.buckets // 2
            # what the sample knows: the window, within the book's depth (beyond a venue's 20
            # or 400 levels nothing is known, which is not "nothing resting")
            lo, hi = start, start + self.buckets
            bk, ak = book.bids._keys, book.asks._keys
            if bk and not whole:
                lo = max(lo, bucket_of(bk[0], step))
            if ak and not whole:
                hi = min(hi, bucket_of(ak[-1], step) + 1)
            window = (lo, max(lo, hi))
            # only the occupied stretch of the window is kept: a column costs what the book
            # spans, not the whole +-span_pct window
            first, sizes = book.bucket_span(start * step, step, self.buckets)
            start += first
            if inst.size_unit != "base":
                sizes = [inst.to_base((start + i + 0.5) * step, s) for i, s in enumerate(sizes)]
            bb, ba = book.best_bid(), book.best_ask()
            col = HeatmapColumn(
                t=now,
                live=True,
                start=start,
                sizes=array("f", sizes),
                best_bid=bb[0] if bb else None,
                best_ask=ba[0] if ba else None,
                lo=window[0],
                hi=window[1],
            )
        col.buys, col.sells = self._buys, self._sells
        self._buys, self._sells = {}, {}
        self._add(col, now)
        return col

    def unsee_since(self, t: float, most: float = UNSEE_MOST) -> int:
        """Columns sampled after ``t`` (the book's last change before it went STALE), drawn
        live from a book that had in fact stopped, become gaps (their trades stay); those of
        the ``most`` seconds after ``t``. Returns how many."""
        cols, pending = self.columns, self.pending
        if not cols:
            return 0
        end = t + most
        n = 0
        periods = set()
        for i in range(len(cols) - 1, -1, -1):
            c = cols[i]
            if c.t <= t:
                break
            if not c.live or c.t > end:
                continue
            # a new column, not the old one changed: the widget caches cells per column
            gap = HeatmapColumn(t=c.t, live=False, buys=c.buys, sells=c.sells)
            cols[i] = gap
            for j, p in enumerate(pending):
                if p is c:
                    pending[j] = gap
            periods.add(self.period_of(c.t))
            n += 1
        # periods already merged into the coarse ring are merged again from their samples,
        # or zoomed out the stopped book still read live
        if not n:
            return 0
        coarse, oldest = self.coarse, min(periods)
        for i in range(len(coarse) - 1, -1, -1):
            k = self.period_of(coarse[i].t)
            if k < oldest:
                break
            if k in periods:
                same = [c for c in cols if self.period_of(c.t) == k]
                coarse[i] = self.crop_period(merge_columns(same))
        self.unseen += 1  # merged views of these columns are stale (the time zoom's)
        return n

    def _add(self, col: HeatmapColumn, now: float) -> None:
        if self.began is None:
            self.began = col.t
        self.columns.append(col)
        pending = self.pending
        if pending and self.period_of(pending[-1].t) != self.period_of(now):
            # the period's samples, merged once it is over (and on a clock stepped back)
            self.coarse.append(self.crop_period(merge_columns(pending)))
            self.pending = []
        self.pending.append(col)
