"""Pure view-model functions: what the widgets show, computed without a terminal.

Widgets call these and only draw the result, so every grouping step, price window and DOM row
is a plain unit test. Number formatting lives in ``obview.ui.numbers``, colour scaling in
``obview.ui.colorscale``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from obview.book import bucket_of
from obview.model import Instrument
from obview.ui.numbers import decimals_for

# -- grouping -------------------------------------------------------------------------------


def is_multiple(value: float, step: float) -> bool:
    """True when ``value`` is a whole multiple (>= 1) of ``step``, within float noise."""
    if step <= 0 or value < step * (1 - 1e-9):
        return False
    n = value / step
    return abs(n - round(n)) < 1e-6


def group_steps(tick: float, count: int = 20, extra: float | None = None) -> list[float]:
    """Grouping steps: the tick, then the 1-2-5 decimal series above it that are whole
    multiples of the tick (tick 0.1 -> 0.1, 0.2, 0.5, 1, 2, 5, 10 ...; tick 0.5 -> 0.5, 1, 2,
    5, 10 ...; tick 0.25 -> 0.25, 0.5, 1, 2, 5 ...).

    ``extra`` (the heatmap sampler's bucket) is inserted when missing, so there is always a
    grouping at which the ladder and the heatmap share one price grid.
    """
    if tick <= 0:
        tick = 0.01
    d = decimals_for(tick)
    out: list[float] = [tick]
    scale = 10.0 ** math.floor(math.log10(tick))
    while len(out) < count and scale <= tick * 1e6:
        for m in (1, 2, 5):
            v = round(m * scale, max(0, d + 1))
            if v > out[-1] * (1 + 1e-9) and is_multiple(v, tick) and len(out) < count:
                out.append(v)
        scale *= 10
    # a tick the decimal series does not divide (0.3, 0.15, 3): whole 1-2-5 multiples of it
    # (the series alone found none, and float noise later passed 5e15 as "a multiple")
    k = 1.0
    while len(out) < count:
        for m in (1, 2, 5):
            v = round(tick * m * k, max(0, d + 1))
            if v > out[-1] * (1 + 1e-9) and len(out) < count:
                out.append(v)
        k *= 10
    if extra is not None and extra > 0 and not any(abs(v - extra) <= extra * 1e-9 for v in out):
        out = sorted([*out, round(extra, 12)])
    return out


def next_step(steps: Sequence[float], current: float, direction: int) -> float:
    """The neighbouring step (direction +1 coarser, -1 finer), clamped to the list."""
    i = min(range(len(steps)), key=lambda k: abs(steps[k] - current))
    i = max(0, min(len(steps) - 1, i + direction))
    return steps[i]


@dataclass(slots=True, frozen=True)
class LadderLevel:
    price: float
    size: float  # in display units (base or quote)
    cum: float
    is_bid: bool


def ladder_levels(
    bids: Iterable[tuple[float, float, float]],
    asks: Iterable[tuple[float, float, float]],
    inst: Instrument,
    quote: bool,
) -> tuple[list[LadderLevel], list[LadderLevel]]:
    """Convert grouped (price, native size, native cum) to display units, cum recomputed."""

    def conv(levels: Iterable[tuple[float, float, float]], is_bid: bool) -> list[LadderLevel]:
        out = []
        cum = 0.0
        for p, s, _ in levels:
            v = inst.to_quote(p, s) if quote else inst.to_base(p, s)
            cum += v
            out.append(LadderLevel(p, v, cum, is_bid))
        return out

    return conv(bids, True), conv(asks, False)


def bar_cells(value: float, vmax: float, width: int) -> str:
    """A horizontal bar of ``value / vmax`` of ``width`` cells, in eighth-block resolution."""
    if vmax <= 0 or width <= 0 or value <= 0:
        return ""
    eighths = int(round(min(1.0, value / vmax) * width * 8))
    eighths = max(eighths, 1)
    full, rem = divmod(eighths, 8)
    return "█" * full + (" ▏▎▍▌▋▊▉"[rem] if rem else "")


# -- colour scaling -------------------------------------------------------------------------

def window_origin(mid_bucket: int, origin: int | None, rows: int, margin: float = 0.25) -> int:
    """Lowest bucket of a ``rows``-bucket price window that follows the mid with hysteresis.

    The window moves only when the mid leaves its middle band, so the picture does not jitter
    with every tick of the mid.
    """
    if rows <= 0:
        return mid_bucket
    if origin is None:
        return mid_bucket - rows // 2
    lo = origin + int(rows * margin)
    hi = origin + rows - 1 - int(rows * margin)
    if lo <= mid_bucket <= hi:
        return origin
    return mid_bucket - rows // 2


def bucket_index(price: float, step: float) -> int:
    """Index of the bucket [i*step, (i+1)*step) holding ``price`` (float noise tolerated; the
    book's and the heatmap sampler's rule)."""
    return bucket_of(price, step)


class PriceWindow:
    """A window of ``rows`` price buckets that follows the mid with hysteresis.

    The ladder and the heatmap read one shared window, so their rows are the same buckets;
    changing the bucket or the row count recentres it.
    """

    def __init__(self) -> None:
        self.key: tuple[float, int] | None = None
        self.origin: int | None = None

    def follow(self, mid: float | None, step: float, rows: int) -> int:
        key = (step, rows)
        if key != self.key:
            self.key, self.origin = key, None
        if mid is not None:
            # never below zero: rows of negative prices say nothing
            self.origin = max(0, window_origin(bucket_index(mid, step), self.origin, rows))
        return self.origin if self.origin is not None else 0


@dataclass(slots=True, frozen=True)
class HeatLayout:
    """How heatmap cells map to price: each text row is one bucket of ``row_step``; the
    half-blocks show ``sub`` (2: lower and upper half-buckets, 1: the whole bucket twice) and
    each half-row sums ``k`` sampler buckets. ``aligned``: rows are the ladder's rows."""

    row_step: float
    sub: int
    k: int
    aligned: bool


def heat_layout(group: float, sampler_step: float) -> HeatLayout:
    """Rows follow the grouping when it is a whole multiple of the sampler bucket (the ladder
    and heatmap then share one axis); otherwise the heatmap keeps its own finest grid: one row
    = two sampler buckets, one per half-block."""
    if is_multiple(group, sampler_step):
        n = int(round(group / sampler_step))
        if n % 2 == 0:
            return HeatLayout(group, 2, n // 2, True)
        return HeatLayout(group, 1, n, True)
    return HeatLayout(sampler_step * 2, 2, 1, False)


@dataclass(slots=True, frozen=True)
class DomRow:
    """One bucket of the continuous ladder: [price, price + step)."""

    price: float
    bid: float
    ask: float
    bid_cum: float
    ask_cum: float


@dataclass(slots=True)
class DomGrid:
    rows: list[DomRow]  # top (highest price) first
    best_bid_row: int | None  # row index of the best bid's bucket, None when off-window
    best_ask_row: int | None


def dom_grid(book, inst: Instrument, quote: bool, origin: int, rows: int, step: float) -> DomGrid:
    """Sizes per bucket for buckets ``origin .. origin + rows - 1`` (display units), with
    cumulative sizes counted outward from the touch (asks upward, bids downward), including
    levels that lie between the touch and the window when the window has drifted off it."""
    bids = [0.0] * rows
    asks = [0.0] * rows
    lo, hi = origin * step, (origin + rows) * step
    conv = inst.to_quote if quote else inst.to_base
    coins = not quote and inst.size_unit == "base"  # sizes are already in display units
    floor = math.floor
    for side, acc in ((book.bids, bids), (book.asks, asks)):
        levels = side.levels
        for p in side.irange(lo - step, hi + step):
            x = p / step
            j = floor(x + 1e-9 + x * 1e-12) - origin  # bucket_index, inlined: the hot loop
            if 0 <= j < rows:
                acc[j] += levels[p] if coins else conv(p, levels[p])
    # what lies between the touch and the window edge still counts toward the cumulative sums
    asks_side, bids_side = book.asks, book.bids
    ask_cum = sum(
        conv(p, asks_side[p])
        for p in asks_side.irange(None, lo + step)
        if bucket_index(p, step) < origin
    )
    bid_cum = sum(
        conv(p, bids_side[p])
        for p in bids_side.irange(hi - step, None)
        if bucket_index(p, step) >= origin + rows
    )
    acum = [0.0] * rows
    for j in range(rows):
        ask_cum += asks[j]
        acum[j] = ask_cum
    bcum = [0.0] * rows
    for j in range(rows - 1, -1, -1):
        bid_cum += bids[j]
        bcum[j] = bid_cum
    out = [
        DomRow((origin + j) * step, bids[j], asks[j], bcum[j], acum[j])
        for j in range(rows - 1, -1, -1)
    ]
    bb, ba = book.best_bid(), book.best_ask()

    def row_of(price: float | None) -> int | None:
        if price is None:
            return None
        j = bucket_index(price, step) - origin
        return rows - 1 - j if 0 <= j < rows else None

    return DomGrid(out, row_of(bb[0] if bb else None), row_of(ba[0] if ba else None))
