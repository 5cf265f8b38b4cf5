"""Heatmap time zoom: several sampler columns drawn as one, for a longer look back.

The sampler takes a column every 0.25 s, so a heatmap 70 cells wide spans under 20 s. Zoomed
out, each drawn column stands for ``k`` consecutive samples of one aligned period (the sample
time divided by ``k`` sampling intervals, so a column never changes its members as new samples
arrive, except the newest one, which is still filling):

- resting size per bucket: the mean over the period's LIVE samples (liquidity that sat there
  the whole period reads as strongly as at 1x; an order that flickered reads weaker);
- traded volume per bucket: the sum over the period;
- best bid and ask: those of its last LIVE sample;
- a period without any LIVE sample is a gap, as a single one is.

Merged columns are kept while they are on screen, so a frame costs only the merge of the
newest, filling period; the rest are the same objects frame after frame, which the heatmap's
per-column cache relies on.
"""

from __future__ import annotations

import math
import operator
from array import array
from collections.abc import Iterable, Sequence

from obview.market import HeatmapColumn

ZOOMS = (1, 2, 4, 10, 20)  # sampler columns per drawn column


class TimeZoom:
    def __init__(self) -> None:
        self.k = 1
        # (id of the period's first sample, its count) -> (first, last, merged)
        self._memo: dict[tuple[int, int], tuple[HeatmapColumn, HeatmapColumn, HeatmapColumn]] = {}

    def step(self, direction: int) -> bool:
        """Zoom out (+1: more samples a column) or in (-1); True when the zoom changed."""
        i = ZOOMS.index(self.k) + direction
        if not 0 <= i < len(ZOOMS):
            return False
        self.k = ZOOMS[i]
        self._memo.clear()
        return True

    def seconds_per_column(self, cadence: float) -> float:
        return self.k * cadence

    def view(self, columns: Sequence[HeatmapColumn], width: int, cadence: float) -> list[HeatmapColumn]:
        """The last ``width`` columns to draw, oldest first."""
        if width <= 0:
            return []
        k = self.k
        if k == 1:
            n = len(columns)
            return [columns[i] for i in range(max(0, n - width), n)]
        n = len(columns)
        raw = [columns[i] for i in range(max(0, n - (width + 1) * k), n)]
        groups = _periods(raw, k * cadence)
        if len(groups) > width:
            groups = groups[-width:]  # the oldest period may be cut by the slice: it goes first
        memo: dict[tuple[int, int], tuple[HeatmapColumn, HeatmapColumn, HeatmapColumn]] = {}
        out = []
        for g in groups:
            key = (id(g[0]), len(g))
            hit = self._memo.get(key)
            same = hit is not None and hit[0] is g[0] and hit[1] is g[-1]
            merged = hit[2] if same else merge(g)
            memo[key] = (g[0], g[-1], merged)
            out.append(merged)
        self._memo = memo  # only what is on screen: bounded by the width
        return out


def _periods(cols: list[HeatmapColumn], period: float) -> list[list[HeatmapColumn]]:
    """Consecutive columns grouped by the aligned period their time falls in."""
    groups: list[list[HeatmapColumn]] = []
    cur = None
    for c in cols:
        p = math.floor(c.t / period + 1e-9)
        if p != cur or not groups:
            groups.append([c])
            cur = p
        else:
            groups[-1].append(c)
    return groups


def merge(cols: Sequence[HeatmapColumn]) -> HeatmapColumn:
    """One column for ``cols`` (see the module docstring)."""
    live = [c for c in cols if c.live]
    last = cols[-1]
    buys = _sum_dicts(c.buys for c in cols)
    sells = _sum_dicts(c.sells for c in cols)
    if not live:
        return HeatmapColumn(t=last.t, live=False, buys=buys, sells=sells)
    lo = min(c.start for c in live)
    hi = max(c.start + len(c.sizes) for c in live)
    acc = [0.0] * (hi - lo)
    for c in live:
        a = c.start - lo
        b = a + len(c.sizes)
        acc[a:b] = map(operator.add, acc[a:b], c.sizes)
    inv = 1.0 / len(live)
    ref = live[-1]
    return HeatmapColumn(
        t=last.t,
        live=True,
        start=lo,
        sizes=array("f", [v * inv for v in acc]),
        best_bid=ref.best_bid,
        best_ask=ref.best_ask,
        buys=buys,
        sells=sells,
    )


def _sum_dicts(ds: Iterable[dict[int, float]]) -> dict[int, float]:
    out: dict[int, float] = {}
    for d in ds:
        for b, v in d.items():
            out[b] = out.get(b, 0.0) + v
    return out
