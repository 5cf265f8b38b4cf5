"""Give the C heap's free pages back to the system (glibc ``malloc_trim``), now and then.

A long session frees and reallocates buffers of many sizes (frames, book and heatmap arrays),
and glibc keeps what is freed inside its heap, raising its own trim threshold after large
frees: in an hour's soak the memory in use levelled off once the heatmap history was full,
while the free space the heap held kept growing (4 -> 22 MiB), and RSS with it. Trimming
once a minute returns those pages; it costs a few milliseconds. Elsewhere than glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: seconds between trims while the app runs
TRIM_INTERVAL = 60.0


@functools.cache
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        fn = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl without it, Windows)
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim_heap() -> bool:
    """Return the heap's free pages to the system; True if the C library could."""
    fn = _malloc_trim()
    if fn is None:
        return False
    try:
        return bool(fn(0))
    except OSError:
        return False
