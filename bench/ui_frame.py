"""CPU time per UI frame at 160x48 and 240x70 on the demo simulator (headless Textual).

Each measured frame: one 50 ms simulator step is applied to the Market (not timed), then the
app's paint tick runs and Textual composes and writes the screen (timed with process_time,
so the figure is the app's CPU cost, an upper bound that includes the headless driver).

    python bench/ui_frame.py [--frames 300] [--append]   # --append adds a row to RESULTS.md
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
from obview.ui.synthetic import T0, StaticManager  # noqa: E402


async def measure(width: int, height: int, frames: int) -> tuple[float, float, float]:
    market, now = sim_market("demo", "BTC-PERP", seed=1, seconds=70, gap=None)
    sim = SimMarket("BTC-PERP", seed=5, start_time=now)
    clock = [now]
    app = ObviewApp(
        StaticManager({("demo", "BTC-PERP"): market}, ["demo"]),
        "demo",
        "BTC-PERP",
        clock=lambda: clock[0],
        frame_interval=3600,
    )  # frames driven by hand below
    times = []
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
            await pilot.pause()
            times.append(time.process_time() - t0)
    times.sort()
    return statistics.mean(times), times[len(times) // 2], times[int(len(times) * 0.99) - 1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args()
    rows = []
    for w, h in ((160, 48), (240, 70)):
        mean, p50, p99 = asyncio.run(measure(w, h, args.frames))
        line = f"| ui frame {w}x{h} | {mean * 1e3:.2f} ms mean | {p50 * 1e3:.2f} ms p50 | {p99 * 1e3:.2f} ms p99 |"
        print(line)
        rows.append(line)
    if args.append:
        res = Path(__file__).resolve().parent / "RESULTS.md"
        with res.open("a", encoding="utf-8") as f:
            f.write(
                f"\n### UI frame CPU time ({time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
                f"{args.frames} frames, sim step 50 ms per frame, heatmap column every 250 ms)\n\n"
            )
            f.write("| what | mean | p50 | p99 |\n|---|---|---|---|\n")
            f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    _ = T0
    main()
