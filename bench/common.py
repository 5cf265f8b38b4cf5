"""Helpers shared by the benchmarks: repeated runs, median with min/max, and rewriting a\nsection of a results page."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Figure:
    """One measured quantity over several runs (higher_is_better says how to read it)."""

    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    target: str = ""
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def lo(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def hi(self) -> float:
        return max(self.values) if self.values else float("nan")


def fmt(x: float) -> str:
    if x != x:  # nan
        return "n/a"
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:.2f}M"
    if ax >= 1e4:
        return f"{x / 1e3:.1f}k"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 1:
        return f"{x:.2f}"
    return f"{x:.4f}"


def rate(fn: Callable[[], int], runs: int) -> list[float]:
    """Run ``fn`` (which returns how many items it processed) ``runs`` times: items/s each."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t0
        out.append(n / dt)
    return out


def rates_interleaved(fns: dict[str, Callable[[], int]], runs: int) -> dict[str, list[float]]:
    """``rate`` of several functions, round-robin (run 1 of each, then run 2 of each, ...): a
    machine whose speed drifts during the suite then shifts all of them alike, so the ratios
    between them hold."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            out[k] += rate(fn, 1)
    return out


def per_call_ms(fn: Callable[[], object], calls: int, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        out.append((time.perf_counter() - t0) / calls * 1000)
    return out


def replace_section(path: Path, heading: str, body: list[str]) -> None:
    """Replace the ``## heading`` section of a markdown file (or append it)."""
    text = path.read_text() if path.exists() else ""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    found = False
    while i < len(lines):
        if lines[i].strip() == heading:
            found = True
            out += [heading, "", *body, ""]
            i += 1
            while i < len(lines) and not lines[i].startswith("## "):
                i += 1
            continue
        out.append(lines[i])
        i += 1
    if not found:
        if out and out[-1].strip():
            out.append("")
        out += [heading, "", *body, ""]
    path.write_text("\n".join(out).rstrip() + "\n")
