"""End-to-end ingest: a depth-frame server in a separate process -> FeedSession -> Market, on
loopback.

The server (bench/replay_server.py) replays pre-encoded simulator depth frames in the demo
protocol at an offered rate (or as fast as the client reads, under TCP flow control) and stamps
each frame with its send time. The client is the app's own FeedSession + FeedPipeline + Market in
this process (one thread, so one core). Measured per run:

- sustained frames/s: deltas applied / time from the first to the last applied delta;
- nothing dropped: every delta applied, the sequence chain never broke (no gap, no resync, no
  bad frame) and the last applied sequence number is the one the server sent last;
- receive -> applied latency: the time the delta was applied to the book minus the server's
  send stamp (same host clock), p50 and p99 over the run after a short warm-up;
- CPU: this process's CPU time per applied frame (``time.process_time``).

While the 10k/s runs go, a bystander process times a fixed small loop every 5 ms and notes how
late it wakes: when the machine itself slows down or stalls, it shows there, and a latency tail
that comes with it is the machine's, not the code's.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import Figure
from obview.feed.session import FeedSession, SessionOptions
from obview.market import Market
from obview.venues.demo import DemoAdapter

ROOT = Path(__file__).resolve().parents[1]


class ProbeMarket(Market):
    """A Market that notes when each delta was applied (pipeline calls ``on_exchange_time``
    right after a successful apply) against the server's send stamp."""

    def __init__(self, *a, expect: int, **kw) -> None:
        super().__init__(*a, **kw)
        self.expect = expect
        self.applied = 0
        self.lat: list[float] = []
        self.t_first = self.t_last = 0.0
        self.cpu_first = self.cpu_last = 0.0
        self.done: asyncio.Future | None = None

    def on_exchange_time(self, ts_exchange: float | None, ts_local: float) -> None:
        super().on_exchange_time(ts_exchange, ts_local)
        if self.state.status.value != "LIVE" or ts_exchange is None:
            return
        now = time.time()
        self.lat.append(now - ts_exchange)
        self.applied += 1
        if self.applied == 1:
            self.t_first, self.cpu_first = time.perf_counter(), time.process_time()
        if self.applied == self.expect:
            self.t_last, self.cpu_last = time.perf_counter(), time.process_time()
            if self.done is not None and not self.done.done():
                self.done.set_result(None)


def start_server(steps: int = 4000) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.replay_server", "--steps", str(steps), "--lifetime", "240"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"replay server did not start: {line!r}")
    return proc, int(line.split()[1])


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()


async def one_run(port: int, rate: float, count: int, timeout: float) -> dict:
    """One connection: ``count`` deltas offered at ``rate`` frames/s (0: as fast as read)."""
    adapter = DemoAdapter(
        "BTC-PERP", endpoint=f"ws://127.0.0.1:{port}/demo?rate={rate:g}&count={count}"
    )
    # the snapshot's delta is not counted: the first delta after it is
    market = ProbeMarket(adapter.default_instrument(), expect=count)
    market.done = asyncio.get_running_loop().create_future()
    session = FeedSession(adapter, market, options=SessionOptions(connect_timeout=5.0))
    task = session.start()
    ok = True
    try:
        async with asyncio.timeout(timeout):
            await market.done
    except TimeoutError:
        ok = False
    finally:
        await session.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    st = market.stats
    wall = market.t_last - market.t_first
    cpu = market.cpu_last - market.cpu_first
    warm = min(len(market.lat) // 10, 500)
    lat = sorted(market.lat[warm:]) or [float("nan")]
    return {
        "complete": ok and market.applied == count,
        "applied": market.applied,
        "intact": st.gaps == 0
        and st.bad_frames == 0
        and st.checksum_errors == 0
        and market.resyncs == 0,
        "fps": (count - 1) / wall if ok and wall > 0 else float("nan"),
        "cpu_per_frame_us": cpu / max(1, count - 1) * 1e6 if ok else float("nan"),
        "cpu_share": cpu / wall if ok and wall > 0 else float("nan"),
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
    }


# A bystander process that, every 5 ms, times a fixed small loop and notes how late it woke:
# the machine's own speed dips and stalls during a run, which a latency tail includes whatever
# the code does (about 4% of a core).
_SLEEPER = """
import signal, sys, time
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
work, late, end = [], [], time.monotonic() + 120
while not stop and time.monotonic() < end:
    t = time.perf_counter()
    sum(range(3000))
    work.append(time.perf_counter() - t)
    t = time.monotonic()
    time.sleep(0.005)
    late.append(time.monotonic() - t - 0.005)
work.sort()
late.sort()
print(work[len(work) // 2] * 1e6, work[int(len(work) * 0.99)] * 1e6, late[-1] * 1000, flush=True)
"""


def _start_sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _SLEEPER], stdout=subprocess.PIPE, text=True)


def _sleeper_result(proc: subprocess.Popen) -> tuple[float, float, float] | None:
    """Stop the bystander: (median, p99 of the fixed loop in us, latest wake-up in ms), or None."""
    try:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        med, p99, late = (float(x) for x in out.split())
        return med, p99, late
    except Exception:
        proc.kill()
        return None


def run(quick: bool) -> list[Figure]:
    runs = 2 if quick else 3
    plan = [  # (label, offered rate, deltas per run)
        ("1k/s", 1000.0, 600 if quick else 2500),
        ("10k/s", 10000.0, 5000 if quick else 25000),
        ("max", 0.0, 20000 if quick else 80000),
    ]
    proc, port = start_server(1500 if quick else 4000)
    figs: list[Figure] = []
    try:
        for label, rate, count in plan:
            results = []
            sleeper = _start_sleeper() if label == "10k/s" else None
            for _ in range(runs):
                results.append(
                    asyncio.run(one_run(port, rate, count, timeout=count / (rate or 5000) + 15))
                )
            stalls = _sleeper_result(sleeper) if sleeper is not None else None
            whole = all(r["complete"] and r["intact"] for r in results)
            drop_note = (
                f"all {count} deltas x {runs} runs applied, seq chain intact"
                if whole
                else "DROPPED/BROKEN: "
                + "; ".join(
                    f"applied {r['applied']}/{count}, intact={r['intact']}" for r in results
                )
            )
            fps = [r["fps"] for r in results]
            cpu = statistics.median(r["cpu_per_frame_us"] for r in results)
            share = statistics.median(r["cpu_share"] for r in results)
            if rate == 0:
                figs.append(
                    Figure(
                        "ingest: sustained depth frames/s, server process -> FeedSession -> Market (offered: max)",
                        "frames/s",
                        fps,
                        target=">= 25k",
                        note=f"{drop_note}; client CPU {cpu:.1f} us/frame ({1e6 / cpu:,.0f} frames per CPU-s), {share:.0%} of one core",
                    )
                )
            else:
                figs.append(
                    Figure(
                        f"ingest: achieved frames/s at offered {label}",
                        "frames/s",
                        fps,
                        note=f"{drop_note}; client CPU {cpu:.1f} us/frame, {share:.0%} of one core",
                    )
                )
            figs.append(
                Figure(
                    f"ingest: send -> applied latency p50 at {label}",
                    "ms",
                    [r["p50_ms"] for r in results],
                )
            )
            figs.append(
                Figure(
                    f"ingest: send -> applied latency p99 at {label}",
                    "ms",
                    [r["p99_ms"] for r in results],
                    target="<= 2 ms" if label == "10k/s" else "",
                    note="at max the client is saturated: latency is queueing in socket buffers"
                    if rate == 0
                    else (
                        "machine meanwhile (a bystander process every 5 ms): a fixed loop took"
                        + f" {stalls[0]:.0f} us median, {stalls[1]:.0f} us p99"
                        + f" ({stalls[1] / stalls[0]:.1f}x); latest wake-up {stalls[2]:.1f} ms"
                        if stalls
                        else ""
                    ),
                )
            )
    finally:
        stop_server(proc)
    return figs
