"""Colour scaling for sizes: log-scale colour indices, auto contrast, colormap stops, mark weights."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


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
        if low is None and high is None:
            # a flat window (one level, a uniform book): its size in the middle of the scale,
            # not at the bottom, where it was drawn all but invisible on the background
            lo, hi = hi / math.sqrt(10.0), hi * math.sqrt(10.0)
        else:
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
