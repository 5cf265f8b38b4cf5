"""Number and time formatting for the widgets: decimals, compact sizes, alignment on the point."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence


def decimals_for(step: float) -> int:
    """Decimals needed to print multiples of ``step`` exactly (0.5 -> 1, 0.01 -> 2, 5 -> 0)."""
    if step <= 0:
        return 2
    for d in range(0, 10):
        if abs(round(step, d) - step) < step * 1e-6:
            return d
    return 10


def decimals_shown(value: float, decimals: int, extra: int = 4, scale: float | None = None) -> int:
    """``decimals``, or up to ``extra`` more when ``value`` needs them to be shown exactly: a
    price off the instrument's tick (its built-in tick outdated, the venue's endpoint out of
    reach) read as the tick (a 0.05 spread as "0.1"). ``scale``: the size of the numbers
    ``value`` was computed from (a spread's prices), whose float noise is not a digit."""
    if not math.isfinite(value):
        return decimals
    a = abs(value)
    # float noise: a spread of 97005.3 - 97005.1 is 0.2000000000029; above 2**24 the prices'
    # own step (math.ulp) is larger than that
    ref = abs(scale) if scale is not None and math.isfinite(scale) else a
    tol = max(1e-9 * max(1.0, a), 4 * math.ulp(ref))
    for d in range(decimals, decimals + extra + 1):
        if abs(round(a, d) - a) <= tol:
            return d
    return decimals + extra


def format_price(price: float, decimals: int) -> str:
    return f"{price:.{decimals}f}"


def compact(x: float) -> str:
    """Compact size/notional: 0.0123, 0.123, 1.23, 12.3, 123, 1.23k, 12.3k, 123k, 1.23M, 1.23B,
    1.23T, then 1.2e+15."""
    a = abs(x)
    sign = "-" if x < 0 else ""
    if a == 0:
        return "0"
    if a >= 999.5e12:  # past the suffixes: a number, not a 100000T
        return f"{sign}{a:.1e}"
    for div, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
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


#: the suffixes a column of sizes may share, and the most digits before its point (1000k is
#: read at a glance; a 5-digit number less so)
SCALES = ((1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T"))
COLUMN_TOP = 9999.5


def compact_column(values: Sequence[float]) -> list[str]:
    """``compact`` for a column of sizes aligned on the point, all in one scale: the smallest
    of 1, k, M, B, T that keeps the column's largest under five digits. Each value on its own
    scale put ``741k`` and ``1.14M`` on the point as 741 over 1: the larger read as smaller
    (so did a cumulative column going from 850k to 1.02M). Zero is an empty cell."""
    top = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    scale = next((sc for sc in SCALES if top < sc[0] * COLUMN_TOP), None)
    if scale is None:  # past the suffixes: each on its own (exponents)
        return [compact(v) if v else "" for v in values]
    div, suffix = scale
    out = []
    for v in values:
        if not v or not math.isfinite(v):
            out.append("" if not v else str(v))
            continue
        w = abs(v) / div
        sign = "-" if v < 0 else ""
        if not suffix and w < 999.5:
            out.append(compact(v))  # no suffix below 1000: as ever
            continue
        d = 0 if w >= 99.95 else 1 if w >= 9.995 else 2
        if d == 2 and w < 0.005:
            d = 3  # not a "0.00k" for a non-zero size
        if w < 0.0005:
            out.append(f"{sign}<0.001{suffix}")  # too small for the scale, but not nothing
            continue
        out.append(f"{sign}{w:.{d}f}{suffix}")
    return out


def split_point(s: str) -> tuple[str, str]:
    """Split a number string at its decimal point, or before a unit suffix ("123k")."""
    i = s.find(".")
    if i >= 0:
        return s[:i], s[i:]
    j = len(s)
    while j > 0 and not s[j - 1].isdigit():
        j -= 1
    return s[:j], s[j:]


def point_widths(values: Sequence[str]) -> tuple[int, int]:
    """The widths ``align_on_point`` gives the parts before and from the decimal point."""
    parts = [split_point(v) for v in values]
    return max((len(a) for a, _ in parts), default=0), max((len(b) for _, b in parts), default=0)


def align_at(values: Sequence[str], iw: int, fw: int) -> list[str]:
    """``align_on_point`` with the two widths given (kept steady across frames)."""
    out = []
    for v in values:
        a, b = split_point(v)
        out.append(a.rjust(iw) + b.ljust(fw))
    return out


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
