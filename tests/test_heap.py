"""Giving the C heap's free pages back (obview.heap): RSS drops when freed memory is trimmed."""

from __future__ import annotations

import sys

import pytest

from obview.heap import trim_heap


def _rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc and /proc")
def test_trimming_returns_freed_heap_pages_to_the_system():
    if not trim_heap():
        pytest.skip("this C library has no malloc_trim")
    # 64 MiB in 16 KiB blocks (on the heap, below the mmap threshold); keep one in eight so the
    # freed ones sit between live blocks, where the heap's own top trim cannot reach them
    blocks = [bytearray(16 * 1024) for _ in range(4096)]
    for b in blocks:
        b[::4096] = b"\1" * len(b[::4096])  # touch every page
    keep = blocks[::8]
    del blocks
    before = _rss_kib()
    assert trim_heap()
    after = _rss_kib()
    assert before - after > 32 * 1024, (before, after)  # most of the 56 MiB freed comes back
    assert len(keep) == 512
