"""Run every benchmark, print a table, rewrite bench/RESULTS.md.

    python -m bench            # full run (< 3 min)
    python -m bench --quick    # smoke run (< 30 s)
    python -m bench --only book,adapters
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from bench.common import Figure, fmt

SUITES = ["book", "adapters", "ingest", "ui", "peer"]
RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    pkgs = []
    for name in ("textual", "rich", "websockets", "orjson", "msgspec", "sortedcontainers", "order-book", "ccxt"):
        try:
            pkgs.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu or platform.machine()}), Python {platform.python_version()} on {platform.system()}; "
        + ", ".join(pkgs)
    )


def calibration() -> float:
    """ns per iteration of a fixed pure-Python loop (median of 5): how fast this machine ran
    Python during the run. Shared machines drift by 2x from hour to hour; figures of runs whose
    calibration differs are not comparable, ratios within one run are."""
    def loop() -> float:
        t0 = time.perf_counter()
        s = 0
        for i in range(2_000_000):
            s += i
        return (time.perf_counter() - t0) / 2_000_000 * 1e9

    return sorted(loop() for _ in range(5))[2]


def table(figs: list[Figure]) -> list[str]:
    lines = ["| benchmark | unit | median | min | max | runs | target | note |", "| --- | --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for f in figs:
        lines.append(f"| {f.name} | {f.unit} | {fmt(f.median)} | {fmt(f.lo)} | {fmt(f.hi)} | {len(f.values)} | {f.target} | {f.note} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", default=",".join(SUITES))
    p.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    a = p.parse_args(argv)
    chosen = [s.strip() for s in a.only.split(",") if s.strip()]
    sections: list[tuple[str, list[Figure], float]] = []
    cal_before = calibration()
    print(f"calibration: {cal_before:.1f} ns per Python loop iteration")
    for name in chosen:
        if name not in SUITES:
            print(f"unknown suite {name!r}; valid: {', '.join(SUITES)}", file=sys.stderr)
            return 2
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.{name}")
            figs = mod.run(a.quick)
        except ImportError as e:
            figs = [Figure(name, "", [], note=f"skipped: {e}")]
        dt = time.perf_counter() - t0
        sections.append((name, figs, dt))
        print(f"\n## {name} ({dt:.1f} s)")
        print("\n".join(table(figs)))
    cal_after = calibration()
    print(f"calibration: {cal_after:.1f} ns per Python loop iteration (after)")
    if not a.no_write:
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        out = [
            "# Benchmark results",
            "",
            f"Run {now} with `python -m bench{' --quick' if a.quick else ''}`.",
            f"Machine: {machine()}.",
            f"Calibration: a fixed pure-Python loop ran at {cal_before:.1f} ns per iteration before the"
            f" suites and {cal_after:.1f} ns after (lower is faster).",
            "",
            "Figures are the median of several runs in one process, with min and max; ratios in the notes",
            "compare figures from the same run. These machines are noisy: compare ratios, not absolutes.",
        ]
        extra = RESULTS.with_name("RESULTS.extra.md")
        for name, figs, dt in sections:
            out += ["", f"## {name} ({dt:.1f} s)", ""] + table(figs)
        if extra.exists():
            out += ["", extra.read_text().strip()]
        RESULTS.write_text("\n".join(out) + "\n")
        print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
