"""Heatmap time zoom: several sampler columns drawn as one, for a longer look back.

The sampler takes a column every 0.25 s, so a heatmap 70 cells wide spans under 20 s. Zoomed
out, each drawn column stands for ``k`` consecutive samples of one aligned period (the sample
time divided by ``k`` sampling intervals, so a column never changes its members as new samples
arrive, except the newest one, which is still filling):

- resting size per bucket: the mean over the period's LIVE samples (liquidity that sat there
  the whole period reads as strongly as at 1x; an order that flickered reads weaker);
- traded volume per bucket: the sum over the period;
- best bid and ask: those of its last LIVE sample;
- a period with fewer than half its samples LIVE is a gap, as a single non-LIVE one is (the
  book is not known for most of it).

From 10 s a column up, the columns come from the sampler's ring of 10 s periods (an hour of
them) and the period still filling; each drawn column then averages its periods.

Merged columns are kept while they are on screen, so a frame costs only the merge of the
newest, filling period; the rest are the same objects frame after frame, which the heatmap's
per-column cache relies on.

``ages`` says how many columns of time each drawn column is before the newest (the time axis
places its ticks by it), and ``since`` when the drawn history begins (the title's span).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from obview.sampler import HeatmapColumn, HeatmapSampler, merge_columns

# samples per drawn column: 0.25 s to 5 s from the samples (3 minutes kept), 10 s to 60 s from
# the sampler's 10 s periods (an hour kept)
ZOOMS = (1, 2, 4, 10, 20, 40, 120, 240)


class TimeZoom:
    def __init__(self) -> None:
        self.k = 1
        # (id of the period's first sample, its count) -> (first, last, merged)
        self._memo: dict[tuple[int, int], tuple[HeatmapColumn, HeatmapColumn, HeatmapColumn]] = {}
        # the period still filling: (its first sample, how many it had, merged)
        self._pending: tuple[HeatmapColumn, int, HeatmapColumn] | None = None
        self._unseen = 0  # the sampler's count of unsee_since calls the memo has seen
        #: when the time the last ``view`` drew begins (its oldest sample's tick), or None
        self.since: float | None = None

    def step(self, direction: int) -> bool:
        """Zoom out (+1: more samples a column) or in (-1); True when the zoom changed."""
        i = ZOOMS.index(self.k) + direction
        if not 0 <= i < len(ZOOMS):
            return False
        self.k = ZOOMS[i]
        self._memo.clear()
        self._pending = None
        return True

    def seconds_per_column(self, cadence: float) -> float:
        return self.k * cadence

    def view(self, sampler: HeatmapSampler, width: int) -> list[HeatmapColumn]:
        """The last ``width`` columns to draw, oldest first."""
        self.since = None
        if width <= 0:
            return []
        unseen = getattr(sampler, "unseen", 0)
        if unseen != self._unseen:
            # columns were made gaps after the fact: merged groups of them are stale
            self._unseen = unseen
            self._memo.clear()
            self._pending = None
        k = self.k
        columns: Sequence[HeatmapColumn] = sampler.columns
        cadence = sampler.cadence
        if k == 1:
            cols = list(columns)[-width:]  # a deque: one copy, not an index walk per column
            if cols:
                self.since = cols[0].t - cadence  # a sample stands for the tick before it
            return cols
        every = sampler.coarse_every
        coarse = k >= every and k % every == 0
        if coarse:
            # from the sampler's merged periods, and the one still filling
            raw = list(sampler.coarse)[-(width + 1) * (k // every) :]
            if sampler.pending:
                raw.append(self._filling(sampler))
        else:
            raw = list(columns)[-(width + 1) * k :]
        groups = _periods(raw, k * cadence)
        if len(groups) > width:
            groups = groups[-width:]  # the oldest period may be cut by the slice: it goes first
        if groups:
            first = groups[0][0]
            if coarse:
                # a merged period keeps only its last sample's time: from its period's start,
                # or from the first sample the sampler took, if that came later
                p = every * cadence
                since = _period(first.t, p) * p
                began = getattr(sampler, "began", None)
                self.since = since if began is None else max(since, began - cadence)
            else:
                self.since = first.t - cadence
        memo: dict[tuple[int, int], tuple[HeatmapColumn, HeatmapColumn, HeatmapColumn]] = {}
        out = []
        for g in groups:
            key = (id(g[0]), len(g))
            hit = self._memo.get(key)
            same = hit is not None and hit[0] is g[0] and hit[1] is g[-1]
            merged = hit[2] if same else merge_columns(g)
            memo[key] = (g[0], g[-1], merged)
            out.append(merged)
        self._memo = memo  # only what is on screen: bounded by the width
        return out

    def _filling(self, sampler: HeatmapSampler) -> HeatmapColumn:
        """The sampler's period still filling, merged and cut as the finished ones are (the
        same object until it grows)."""
        pending = sampler.pending
        hit = self._pending
        if hit is not None and hit[0] is pending[0] and hit[1] == len(pending):
            return hit[2]
        merged = sampler.crop_period(merge_columns(pending))
        self._pending = (pending[0], len(pending), merged)
        return merged


    def ages(self, cols: Sequence[HeatmapColumn], cadence: float) -> Sequence[int]:
        """How many columns of time each of ``cols`` (a ``view``, oldest first) is before the
        newest one: ``range(n - 1, -1, -1)`` when no time is missing between them.

        At 1x a column is a sample, and the sampler fills the ticks it missed with gap
        columns, so the count is the age. Zoomed out, a column is an aligned period: time
        missing between two columns (the sampler's hour of periods, after a sleep longer than
        its 3 minutes of samples) is a difference of more than one period. A clock stepped
        back leaves times that do not order the columns: the count again."""
        n = len(cols)
        whole = range(n - 1, -1, -1)
        if self.k == 1 or n < 2:
            return whole
        period = self.k * cadence
        last = _period(cols[-1].t, period)
        if last - _period(cols[0].t, period) == n - 1:
            return whole
        ages = [last - _period(c.t, period) for c in cols]
        if any(b >= a for a, b in zip(ages, ages[1:], strict=False)):
            return whole
        return ages


def _period(t: float, period: float) -> int:
    """The aligned period of length ``period`` that time ``t`` falls in."""
    return math.floor(t / period + 1e-9)


def _periods(cols: list[HeatmapColumn], period: float) -> list[list[HeatmapColumn]]:
    """Consecutive columns grouped by the aligned period their time falls in."""
    groups: list[list[HeatmapColumn]] = []
    cur = None
    for c in cols:
        p = _period(c.t, period)
        if p != cur or not groups:
            groups.append([c])
            cur = p
        else:
            groups[-1].append(c)
    return groups
