"""Pure view-model functions: what the widgets show, computed without a terminal.

Widgets call these and only draw the result, so every number format, grouping step, colour
scale and tape aggregation rule is a plain unit test.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from obview.book import bucket_of
from obview.model import Instrument

# -- numbers --------------------------------------------------------------------------------


def decimals_for(step: float) -> int:
    """Decimals needed to print multiples of ``step`` exactly (0.5 -> 1, 0.01 -> 2, 5 -> 0)."""
    if step <= 0:
        return 2
    for d in range(0, 10):
        if abs(round(step, d) - step) < step * 1e-6:
            return d
    return 10


def format_price(price: float, decimals: int) -> str:
    return f"{price:.{decimals}f}"


def compact(x: float) -> str:
    """Compact size/notional: 0.0123, 0.123, 1.23, 12.3, 123, 1.23k, 12.3k, 123k, 1.23M ..."""
    a = abs(x)
    sign = "-" if x < 0 else ""
    if a == 0:
        return "0"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div * 0.9995:
            v = a / div
            if v >= 99.95:
                return f"{sign}{v:.0f}{suffix}"
            if v >= 9.995:
                return f"{sign}{v:.1f}{suffix}"
            return f"{sign}{v:.2f}{suffix}"
    if a >= 99.95:
        return f"{sign}{a:.0f}"
    if a >= 9.995:
        return f"{sign}{a:.1f}"
    if a >= 0.9995:
        return f"{sign}{a:.2f}"
    if a >= 0.09995:
        return f"{sign}{a:.3f}"
    if a >= 0.00009995:
        return f"{sign}{a:.4f}"
    # two significant figures: a 1e-5 lot (Hyperliquid's BTC) read as "0.0000", an empty size
    if a < 1e-10:
        return f"{sign}{a:.1e}"
    d = 1 - math.floor(math.log10(a))
    return f"{sign}{a:.{d}f}"


def split_point(s: str) -> tuple[str, str]:
    """Split a number string at its decimal point, or before a unit suffix ("123k")."""
    i = s.find(".")
    if i >= 0:
        return s[:i], s[i:]
    j = len(s)
    while j > 0 and not s[j - 1].isdigit():
        j -= 1
    return s[:j], s[j:]


def align_on_point(values: Sequence[str], width: int | None = None) -> list[str]:
    """Pad number strings so their decimal points sit in one column (right-justified block)."""
    parts = [split_point(v) for v in values]
    iw = max((len(a) for a, _ in parts), default=0)
    fw = max((len(b) for _, b in parts), default=0)
    out = [a.rjust(iw) + b.ljust(fw) for a, b in parts]
    if width is not None:
        out = [s.rjust(width)[-width:] if len(s) <= width else s[:width] for s in out]
    return out


def bps(part: float | None, whole: float | None) -> float | None:
    if part is None or not whole:
        return None
    return part / whole * 1e4


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.0f}m"


def format_span(seconds: float) -> str:
    """A stretch of time at a glance: "45s", "2m30s", "1h05m"."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def format_ms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    ms = seconds * 1000
    return f"{ms:.1f}ms" if abs(ms) < 10 else f"{ms:.0f}ms"


def clock_ms(ts: float) -> str:
    """HH:MM:SS.mmm in UTC (exchanges stamp in UTC; the tape must not depend on the host zone)."""
    t = time.gmtime(ts)
    return f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{int(ts * 1000) % 1000:03d}"


# -- grouping -------------------------------------------------------------------------------


def is_multiple(value: float, step: float) -> bool:
    """True when ``value`` is a whole multiple (>= 1) of ``step``, within float noise."""
    if step <= 0 or value < step * (1 - 1e-9):
        return False
    n = value / step
    return abs(n - round(n)) < 1e-6


def group_steps(tick: float, count: int = 14, extra: float | None = None) -> list[float]:
    """Grouping steps: the tick, then the 1-5 decimal series above it that are whole multiples
    of the tick (tick 0.1 -> 0.1, 0.5, 1, 5, 10, 50, 100 ...; tick 0.5 -> 0.5, 1, 5, 10 ...).

    ``extra`` (the heatmap sampler's bucket) is inserted when missing, so there is always a
    grouping at which the ladder and the heatmap share one price grid.
    """
    if tick <= 0:
        tick = 0.01
    d = decimals_for(tick)
    out: list[float] = [tick]
    scale = 10.0 ** math.floor(math.log10(tick))
    while len(out) < count and scale <= tick * 1e6:
        for m in (1, 5):
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


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile of an ascending sequence (pct in 0..100)."""
    n = len(sorted_values)
    if n == 0:
        return 0.0
    if n == 1:
        return sorted_values[0]
    pos = max(0.0, min(100.0, pct)) / 100.0 * (n - 1)
    lo = int(math.floor(pos))
    hi = min(n - 1, lo + 1)
    frac = pos - lo
    return sorted_values[lo] * (1 - frac) + sorted_values[hi] * frac


@dataclass(slots=True, frozen=True)
class ColorScale:
    """Log-scale mapping of sizes to colour indices 1..levels (0 = nothing resting).

    ``lo``/``hi`` are the cut-offs in size units: at or below ``lo`` maps to 1, at or above
    ``hi`` maps to ``levels``, so one huge wall saturates instead of washing out the rest.
    The level boundaries are precomputed, so mapping a size is one ``bisect``.
    """

    lo: float
    hi: float
    levels: int = 32
    bounds: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        llo, lhi = math.log(self.lo), math.log(self.hi)
        n = self.levels - 1
        if lhi <= llo or n <= 0:
            b: tuple[float, ...] = ()
        else:
            # index k+1 starts where the linear index f*(levels-1) reaches k - 0.5
            b = tuple(math.exp(llo + (k - 0.5) / n * (lhi - llo)) for k in range(1, n + 1))
        object.__setattr__(self, "bounds", b)

    def index(self, size: float) -> int:
        if size <= 0:
            return 0
        if not self.bounds:
            return self.levels
        return 1 + bisect_right(self.bounds, size)

    def indices(self, sizes: Iterable[float]) -> list[int]:
        b = self.bounds
        if not b:
            return [self.levels if v > 0 else 0 for v in sizes]
        return [1 + bisect_right(b, v) if v > 0 else 0 for v in sizes]

    def close_to(self, other: ColorScale | None, tolerance: float = 0.05) -> bool:
        """True when ``other`` has the same levels and cut-offs within ``tolerance`` (ratio)."""
        if other is None or other.levels != self.levels:
            return False
        return (
            abs(math.log(self.lo / other.lo)) <= tolerance
            and abs(math.log(self.hi / other.hi)) <= tolerance
        )


def auto_scale(
    values: Iterable[float],
    low_pct: float = 5.0,
    high_pct: float = 99.0,
    levels: int = 32,
    low: float | None = None,
    high: float | None = None,
) -> ColorScale:
    """Cut-offs from percentiles of the visible non-zero sizes, unless given explicitly."""
    vals = sorted(v for v in values if v > 0)
    if not vals:
        return ColorScale(low or 1.0, high or 10.0, levels)
    lo = low if low is not None else percentile(vals, low_pct)
    hi = high if high is not None else percentile(vals, high_pct)
    lo = max(lo, vals[0] * 0.5, 1e-12)
    if hi <= lo:
        hi = lo * 10.0
    return ColorScale(lo, hi, levels)


def interpolate_stops(stops: Sequence[str], n: int) -> list[str]:
    """``n`` evenly spaced hex colours along a piecewise-linear path through ``stops``."""
    rgb = [tuple(int(s.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)) for s in stops]
    if len(rgb) == 1:
        return [stops[0]] * n
    out = []
    for k in range(n):
        f = k / (n - 1) * (len(rgb) - 1) if n > 1 else 0.0
        i = min(int(f), len(rgb) - 2)
        t = f - i
        a, b = rgb[i], rgb[i + 1]
        c = tuple(round(a[j] + (b[j] - a[j]) * t) for j in range(3))
        out.append("#{:02x}{:02x}{:02x}".format(*c))
    return out


def mark_weight(volume: float, vmax: float, glyphs: int = 4) -> int:
    """Glyph index 0..glyphs-1 for a trade mark: area grows with volume (size ~ sqrt)."""
    if volume <= 0 or vmax <= 0:
        return 0
    f = math.sqrt(min(1.0, volume / vmax))
    return max(0, min(glyphs - 1, int(math.ceil(f * glyphs)) - 1))


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
