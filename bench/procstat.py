"""What a soak samples of its own process: RSS, the C heap, open file descriptors; and the
least-squares slope that says whether a series is flat."""

from __future__ import annotations

import os


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def heap_mib() -> tuple[float, float]:
    """(in use, free) MiB in the C heap (glibc ``mallinfo2``; nan elsewhere): RSS that grows while
    "in use" stays flat is the allocator keeping freed memory, not a leak."""
    try:
        import ctypes

        class _Info(ctypes.Structure):
            _fields_ = [(n, ctypes.c_size_t) for n in (
                "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
            )]  # fmt: skip

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _Info
        info = libc.mallinfo2()
        return (info.uordblks + info.hblkhd) / 2**20, info.fordblks / 2**20
    except (OSError, AttributeError):
        return float("nan"), float("nan")


def open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 with fewer than two points)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
