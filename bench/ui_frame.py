"""CPU time per UI frame at 160x48 and 240x70 on the demo simulator (headless Textual).

Each measured frame: one 50 ms simulator step is applied to the Market (not timed), then the
app's paint tick runs and Textual composes and writes the screen (timed with process_time,
so the figure is the app's CPU cost, an upper bound that includes the headless driver). The
"paint" columns time the app's own tick alone (view-model + widget line building), the
"frame" columns add Textual's compositor and the headless write. The app runs with the
garbage-collector policy ``obview`` itself uses (``tune_gc``); ``--default-gc`` leaves
Python's defaults.

    python bench/ui_frame.py [--frames 300] [--write] [--label now]

``--write`` replaces the rows of the same label in the "## UI frame cost" section of
bench/RESULTS.extra.md (other sections and other labels are left alone); bench/RESULTS.md is
produced by bench/run.py and is not touched here.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from screenshots import sim_market  # noqa: E402

from obview.model import Trade  # noqa: E402
from obview.sim.engine import SimMarket  # noqa: E402
from obview.ui.app import ObviewApp  # noqa: E402
from obview.ui.synthetic import StaticManager  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.extra.md"
SECTION = "## UI frame cost"
NOTE = (
    ' Rows: "before (0943415)" is the app before the heatmap cell cache, with Python\''
    's default collector; "after" runs with the collector policy the app sets at star'
    't (`tune_gc`: freeze the start-up heap, young generation 20k); "after, default G'
    "C\" without it. frame = paint tick + Textual compositor/driver; paint = the app's"
    " own tick."
)


def _stats(times: list[float]) -> tuple[float, float, float]:
    times = sorted(times)
    return (
        statistics.mean(times),
        times[len(times) // 2],
        times[max(0, int(len(times) * 0.99) - 1)],
    )


async def measure(
    width: int, height: int, frames: int, gc_policy: bool = True
) -> dict[str, tuple[float, float, float]]:
    market, now = sim_market("demo", "BTC-PERP", seed=1, seconds=70, gap=None)
    sim = SimMarket("BTC-PERP", seed=5, start_time=now)
    clock = [now]
    app = ObviewApp(
        StaticManager({("demo", "BTC-PERP"): market}, ["demo"]),
        "demo",
        "BTC-PERP",
        clock=lambda: clock[0],
        frame_interval=3600,
        **({"gc_policy": True} if gc_policy else {}),
    )  # frames driven by hand below
    total, paint = [], []
    async with app.run_test(size=(width, height)) as pilot:
        await pilot.pause(0.2)
        for _ in range(frames):
            clock[0] += 0.05
            up = sim.step(clock[0])
            market.book.apply_delta(up.bids, up.asks)
            market.on_book_changed(clock[0])
            for t in up.trades:
                market.add_trade(
                    Trade(
                        "demo", "BTC-PERP", t.price, t.size, t.side, str(t.trade_id), t.ts, clock[0]
                    )
                )
            market.tick(clock[0])
            t0 = time.process_time()
            app._frame()
            t1 = time.process_time()
            await pilot.pause()
            total.append(time.process_time() - t0)
            paint.append(t1 - t0)
    return {"frame": _stats(total), "paint": _stats(paint)}


def write_section(label: str, rows: list[str], header: str) -> None:
    """Replace this label's rows in the UI frame cost section, keeping everything else."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == SECTION), None)
    if start is None:
        before, body, after = lines, [], []
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        before, body, after = lines[:start], lines[start + 1 : end], lines[end:]
    old_rows = [ln for ln in body if ln.startswith("| ") and not ln.startswith(("| label", "|---"))]
    kept = [ln for ln in old_rows if not ln.startswith(f"| {label} |")]
    section = [
        SECTION,
        "",
        header,
        "",
        "| label | size | frame mean | frame p50 | frame p99 | paint mean | paint p99 |",
        "|---|---|---|---|---|---|---|",
        *kept,
        *rows,
        "",
    ]
    while before and not before[-1].strip():
        before.pop()
    out = [*before, *([""] if before else []), *section, *after]
    RESULTS.write_text("\n".join(out).rstrip() + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--write", action="store_true", help="update bench/RESULTS.extra.md")
    ap.add_argument("--label", default="now", help="row label in the results table")
    ap.add_argument(
        "--default-gc", action="store_true", help="leave the collector as Python sets it"
    )
    args = ap.parse_args()
    rows = []
    for w, h in ((160, 48), (240, 70)):
        r = asyncio.run(measure(w, h, args.frames, not args.default_gc))
        (fm, f50, f99), (pm, _, p99) = r["frame"], r["paint"]
        row = (
            f"| {args.label} | {w}x{h} | {fm * 1e3:.2f} ms | {f50 * 1e3:.2f} ms | "
            f"{f99 * 1e3:.2f} ms | {pm * 1e3:.2f} ms | {p99 * 1e3:.2f} ms |"
        )
        print(row, flush=True)
        rows.append(row)
    if args.write:
        write_section(
            args.label,
            rows,
            f"CPU time per frame (process_time), {args.frames} frames, demo simulator, sim step "
            f"50 ms per frame, heatmap column every 250 ms; Python {platform.python_version()}, "
            f"{platform.machine()}. Target: mean <= 8 ms at 160x48." + NOTE,
        )


if __name__ == "__main__":
    main()
