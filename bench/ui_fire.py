"""UI under fire: the Textual app headless on a bursting demo feed; key -> screen delay and fps.

    python -m bench.ui_fire                 # idle feed, then bursting feeds; prints a table
    python -m bench.ui_fire --write         # and records it in bench/RESULTS.extra.md

The app runs on the same event loop as the feed (as it does for real): ``FeedManager`` starts
the demo simulator on 127.0.0.1, the app shows BTC-PERP and the simulator's rate is raised. For
each key press (units toggle ``u``, grouping ``+`` / ``-``) the delay is measured from the press
to the screen showing the change (the stats bar shows units and grouping); the frame rate is the app's
paint-clock ticks per second while the feed is pumping.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from textual import events

ROOT = Path(__file__).resolve().parent.parent
CHARS = {"plus": "+", "minus": "-"}


@dataclass
class FireResult:
    rate: float
    delays: list[float] = field(default_factory=list)
    fps: float = 0.0
    msgs_per_s: float = 0.0
    live: bool = False

    def row(self) -> str:
        d = sorted(self.delays)
        p50 = statistics.median(d) * 1000 if d else float("nan")
        p95 = d[min(len(d) - 1, int(len(d) * 0.95))] * 1000 if d else float("nan")
        mx = d[-1] * 1000 if d else float("nan")
        return f"| {self.rate:,.0f} | {self.msgs_per_s:,.0f} | {len(d)} | {p50:.1f} | {p95:.1f} | {mx:.1f} | {self.fps:.1f} |"


HEADER = [
    "| sim updates/s asked (per symbol) | frames/s the feed delivered | key presses | key -> screen p50 (ms) | p95 (ms) | max (ms) | app paint ticks/s |",
    "|---:|---:|---:|---:|---:|---:|---:|",
]


def _ladder_step(app) -> float | None:
    """The grouping step the stats bar shows (None: not drawn)."""
    from obview.ui.statsbar import StatsBar

    m = re.search(r"group ([0-9.,]+)", app.query_one(StatsBar)._text.plain)
    try:
        return float(m.group(1).replace(",", "")) if m else None
    except ValueError:
        return None


def _shows_step(app, before: float | None) -> bool:
    shown = _ladder_step(app)
    return app.step != before and shown is not None and abs(shown - app.step) < 1e-9


async def _press_and_wait(pilot, key: str, changed, timeout: float) -> float:
    # the key goes in where a terminal's would (the driver), without Pilot.press's wait for an
    # idle process, which a busy feed never gives and which would add up to 2 s to every press
    app = pilot.app
    event = events.Key(key, CHARS.get(key, key))
    event.set_sender(app)
    t0 = time.perf_counter()
    app._driver.send_message(event)
    try:
        async with asyncio.timeout(timeout):
            while not changed():
                await asyncio.sleep(0.001)
    except TimeoutError:
        print(
            f"key {key!r}: no change after {timeout:g} s (step {app.step}, ladder {_ladder_step(app)}, quote {app.quote_units})",
            file=sys.stderr,
        )
        return float("inf")
    return time.perf_counter() - t0


async def under_fire(
    rates: list[float], presses: int = 10, settle: float = 1.0, timeout: float = 5.0
) -> list[FireResult]:
    """Run the app on the demo feed at each simulator rate; measure key delays and frame rate."""
    from obview.feed.manager import FeedManager
    from obview.feed.session import SessionOptions
    from obview.ui.app import ObviewApp
    from obview.ui.statsbar import StatsBar

    manager = FeedManager(venues=["demo"], demo_rate=20.0, options=SessionOptions())
    app = ObviewApp(manager, "demo", "BTC-PERP")
    results = []
    try:
        async with app.run_test(size=(180, 48)) as pilot:
            async with asyncio.timeout(15):
                while app.market is None or not app.market.live or app.step is None:
                    await asyncio.sleep(0.01)
            market = app.market
            server = manager.demo_server
            for rate in rates:
                server.set_rate(rate)
                await asyncio.sleep(settle)
                res = FireResult(rate)
                # paint clock alone (no key presses, which force extra frames)
                f0, m0, t0 = app.frames, market.stats.frames, time.perf_counter()
                await asyncio.sleep(1.0)
                dt = time.perf_counter() - t0
                res.fps = (app.frames - f0) / dt
                res.msgs_per_s = (market.stats.frames - m0) / dt
                for i in range(presses):
                    quote = app.quote_units
                    want = "units USD" if not quote else f"units {market.instrument.base}"
                    res.delays.append(
                        await _press_and_wait(
                            pilot,
                            "u",
                            lambda w=want: w in app.query_one(StatsBar)._text.plain,
                            timeout,
                        )
                    )
                    key = "plus" if i % 2 == 0 else "minus"
                    before = app.step
                    res.delays.append(
                        await _press_and_wait(
                            pilot,
                            key,
                            lambda b=before: _shows_step(app, b),
                            timeout,
                        )
                    )
                    await asyncio.sleep(0.05)
                res.live = market.live
                results.append(res)
            server.set_rate(20.0)
    finally:
        await manager.close()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.ui_fire", description=__doc__.split("\n")[0])
    p.add_argument(
        "--rates", default="20,500,2000,10000", help="simulator updates/s per symbol to try"
    )
    p.add_argument("--presses", type=int, default=15, help="key pairs per rate")
    p.add_argument(
        "--write", action="store_true", help="record the table in bench/RESULTS.extra.md"
    )
    a = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "app"))
    rates = [float(x) for x in a.rates.split(",")]
    results = asyncio.run(under_fire(rates, a.presses))
    lines = [*HEADER, *(r.row() for r in results)]
    print("\n".join(lines))
    if a.write:
        from bench.common import replace_section

        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime())
        body = [
            f"`python -m bench.ui_fire` ({stamp}, Python {sys.version.split()[0]}): the app headless (180x48) on the demo feed,"
            " simulator in the same process; a key press is timed until the screen shows the change"
            " (`u`: units, `+`/`-`: grouping, both shown in the stats bar and applied to the ladder in the same forced frame). The paint clock is 30 Hz.",
            "",
            *lines,
        ]
        replace_section(ROOT / "bench" / "RESULTS.extra.md", "## UI under fire", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
