"""Soak: the full feed stack against the simulator at a high message rate, watching for leaks.

    python -m bench.soak                      # 10 minutes, 3 symbols, 300 updates/s asked each
    python -m bench.soak --duration 60        # a short run
    python -m bench.soak --accelerated-hour   # an hour of the demo feed (20 updates/s per
                                              # symbol, 72k steps) as fast as --rate allows
    python -m bench.soak --chaos 20 --app     # a fault every 20 s, and the headless app too
    python -m bench.soak --write              # record the run in bench/RESULTS.extra.md and
                                              # docs/RELIABILITY.md ("## Soak" sections)
    python -m bench.soak --server-process --rate 1700 --app
                                              # the simulator in its own process (the client
                                              # here gets the core to itself): ~5k frames/s

The stack is the app's own: ``FeedManager`` starts the demo simulator server on 127.0.0.1 (or,
with ``--server-process``, connects to ``obview demo-server`` run as a child process) and a
``FeedSession`` per symbol (connect, subscribe, sync, sampler, watchdog). Every ``--interval``
seconds it samples RSS (/proc/self/status), open file descriptors (/proc/self/fd), the number of
asyncio tasks and the queue depths (simulator send queues, what the client holds, book-sync
buffers), prints the series, and at the end the least-squares slope of RSS and tasks after the
warm-up: flat means no leak.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import replace_section
from bench.procstat import heap_mib, open_fds, rss_mib, slope

ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ("BTC-PERP", "ETH-PERP", "SOL-PERP")


@dataclass
class Sample:
    t: float
    rss: float
    fds: int
    tasks: int
    frames: int
    server_q: int
    recv_q: int
    sync_buf: int
    heatmap: int
    states: str
    coarse: int = 0  # the heatmap's 10 s periods (an hour's ring)
    heap_used: float = float("nan")  # MiB the C heap has handed out (Python objects included)
    heap_free: float = float("nan")  # MiB the C heap holds free
    py_blocks: int = 0  # Python's small-object allocator: blocks in use


@dataclass
class Run:
    args: argparse.Namespace
    samples: list[Sample] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    resyncs: int = 0
    reconnects: int = 0
    bad_frames: int = 0
    frames: int = 0
    steps: int = 0
    seconds: float = 0.0
    live_fraction: float = 0.0


def _queues(manager) -> tuple[int, int, int]:
    server = manager.demo_server
    server_q = max((c.queue.qsize() for c in server.clients), default=0) if server else 0
    recv_q = sync_buf = 0
    for sym in SYMBOLS:
        s = manager.session(("demo"), sym)
        if s is None:
            continue
        sync_buf = max(sync_buf, len(s.pipeline.sync.buffer))
        for st in s.streams.values():
            ws = st.ws
            if ws is not None:
                # what the client holds: messages before the session attached, received bytes
                # not yet cut into frames (in KiB), frames waiting to be sent
                held = len(ws._early) + ws._have // 1024 + len(st.outbox)
                recv_q = max(recv_q, held)
    return server_q, recv_q, sync_buf


def _start_server_process(rate: float) -> tuple[object, str]:
    """``obview demo-server`` in a child process; (process, its /demo URL)."""
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, "-m", "obview.cli", "demo-server", "--rate", str(rate)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "app")},
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if " on ws://" not in line:
        proc.kill()
        raise SystemExit(f"demo server did not start: {line!r}")
    return proc, line.split(" on ", 1)[1].split()[0]


class _Steps:
    """Simulator steps of a server in another process: the book messages received, per symbol."""

    def __init__(self, manager) -> None:
        self.manager = manager

    @property
    def steps(self) -> int:
        sessions = [self.manager.session("demo", sym) for sym in SYMBOLS]
        return sum(s.pipeline.book_events for s in sessions if s is not None) // len(SYMBOLS)


async def _chaos(manager, every: float, run: Run) -> None:
    rng = random.Random(1)
    while True:
        await asyncio.sleep(every)
        server = manager.demo_server
        fault = rng.choice(["kick", "reset", "drop", "garbage", "silence"])
        run.faults.append(fault)
        if fault == "kick":
            await server.kick()
        elif fault == "reset":
            await server.kick(abrupt=True)
        elif fault == "drop":
            server.faults.drop_next("delta", 3)
        elif fault == "garbage":
            server.faults.inject('{"type":"delta","seq":')
        else:
            server.pause()
            await asyncio.sleep(12)  # past the 5 s stale time and its grace: a reconnect
            server.resume()


async def soak(args: argparse.Namespace) -> Run:
    from obview.bus import Bus
    from obview.feed.manager import FeedManager
    from obview.model import FeedStatus

    run = Run(args)
    proc = None
    endpoints = {}
    if args.server_process:
        proc, url = _start_server_process(args.rate)
        endpoints["demo"] = url
    manager = FeedManager(
        bus=Bus(), venues=["demo"], warm_limit=len(SYMBOLS), demo_rate=args.rate, endpoints=endpoints
    )
    app_ctx = None
    markets = []
    try:
        for sym in SYMBOLS:
            m = await manager.open("demo", sym)
            if args.heatmap_history:
                # a shorter ring fills during the warm-up, so the slopes show leaks, not filling
                m.heatmap.columns = deque(m.heatmap.columns, maxlen=args.heatmap_history)
            if args.period_history:
                # the same for the hour's ring of 10 s periods: full after this many periods
                m.heatmap.coarse = deque(m.heatmap.coarse, maxlen=args.period_history)
            markets.append(m)
        if args.app:
            from obview.ui.app import ObviewApp

            # the process policy the app runs with (obview.ui.app.run_app): collector tuning and
            # the heap given back once a minute
            app = ObviewApp(manager, "demo", "BTC-PERP", gc_policy=True)
            app_ctx = app.run_test(size=(200, 50))
            await app_ctx.__aenter__()
        server = manager.demo_server or _Steps(manager)
        chaos = asyncio.create_task(_chaos(manager, args.chaos, run)) if args.chaos else None
        target = int(args.nominal_rate * 3600) if args.accelerated_hour else None
        start = time.monotonic()
        steps0 = server.steps
        live_ticks = total_ticks = 0
        next_sample = start
        print(
            f"{'t s':>6} {'RSS MiB':>8} {'heap':>6} {'free':>6} {'blocks':>8} {'fds':>4} {'tasks':>5} {'msgs':>10} {'srvQ':>5} {'rcvQ':>5} {'syncB':>5} {'heat':>5}  states",
            flush=True,
        )
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            total_ticks += 1
            live_ticks += all(m.state.status is FeedStatus.LIVE for m in markets)
            elapsed = now - start
            done = (server.steps - steps0 >= target) if target else elapsed >= args.duration
            if now >= next_sample or done:
                next_sample += args.interval
                gc.collect()
                sq, rq, sb = _queues(manager)
                used, free = heap_mib()
                s = Sample(
                    t=elapsed,
                    rss=rss_mib(),
                    fds=open_fds(),
                    tasks=len(asyncio.all_tasks()),
                    frames=sum(m.stats.frames for m in markets),
                    server_q=sq,
                    recv_q=rq,
                    sync_buf=sb,
                    heatmap=len(markets[0].heatmap.columns),
                    coarse=len(markets[0].heatmap.coarse),
                    states=" ".join(m.state.status.value[:4] for m in markets),
                    heap_used=used,
                    heap_free=free,
                    py_blocks=sys.getallocatedblocks(),
                )
                run.samples.append(s)
                print(
                    f"{s.t:6.0f} {s.rss:8.1f} {s.heap_used:6.1f} {s.heap_free:6.1f} {s.py_blocks:8d} {s.fds:4d} {s.tasks:5d} {s.frames:10d} {s.server_q:5d} {s.recv_q:5d} {s.sync_buf:5d} {s.heatmap:5d}  {s.states}",
                    flush=True,
                )
            if done:
                break
        if chaos is not None:
            chaos.cancel()
            await asyncio.gather(chaos, return_exceptions=True)
        run.seconds = time.monotonic() - start
        run.steps = server.steps - steps0
        run.frames = sum(m.stats.frames for m in markets)
        run.resyncs = sum(m.resyncs for m in markets)
        run.bad_frames = sum(m.stats.bad_frames for m in markets)
        run.reconnects = sum(manager.session("demo", s).connect_attempts - 1 for s in SYMBOLS)
        run.live_fraction = live_ticks / max(1, total_ticks)
    finally:
        if app_ctx is not None:
            await app_ctx.__aexit__(None, None, None)
        await manager.close()
        if proc is not None:
            proc.terminate()
            proc.wait(5)
    return run


def summarize(run: Run) -> list[str]:
    a = run.args
    warm = [s for s in run.samples if s.t >= a.warmup]
    xs = [s.t / 60 for s in warm]
    rss_slope = slope(xs, [s.rss for s in warm])
    task_slope = slope(xs, [s.tasks for s in warm])
    fd_slope = slope(xs, [s.fds for s in warm])
    first, last = (warm[0], warm[-1]) if warm else (None, None)
    mode = (
        f"accelerated hour ({a.nominal_rate:g} updates/s/symbol x 3600 s)"
        if a.accelerated_hour
        else f"{a.duration:g} s"
    )
    lines = [
        f"- run: {mode}; 3 demo symbols, {a.rate:g} updates/s each asked of the"
        + (" simulator in its own process" if a.server_process else " in-process simulator")
        + f"; sample every {a.interval:g} s; warm-up {a.warmup:g} s"
        + (
            f"; heatmap ring {a.heatmap_history} columns"
            if a.heatmap_history
            else "; heatmap rings at the app default (720 columns at 4 Hz: fills in 3 min; 360 periods of 10 s: an hour)"
            if not a.period_history
            else "; heatmap samples ring at the app default (720 columns at 4 Hz: fills in 3 min)"
        )
        + (
            f"; ring of 10 s periods cut to {a.period_history} (full after {a.period_history * 10:g} s)"
            if a.period_history
            else ""
        )
        + ("; headless app running" if a.app else "")
        + (
            f"; a fault every {a.chaos:g} s ({len(run.faults)}: {', '.join(sorted(set(run.faults)))})"
            if a.chaos
            else ""
        ),
        f"- delivered {run.frames:,} frames ({run.frames / max(run.seconds, 1e-9):,.0f}/s) from {run.steps:,} simulator steps"
        f" ({run.steps / max(run.seconds, 1e-9):,.0f}/s per symbol) in {run.seconds:.0f} s;"
        f" LIVE {run.live_fraction * 100:.1f}% of the time; resyncs {run.resyncs}, reconnects {run.reconnects}, bad frames {run.bad_frames}",
    ]
    if first and last:
        lines += [
            f"- after warm-up: RSS {first.rss:.1f} -> {last.rss:.1f} MiB (slope {rss_slope:+.3f} MiB/min);"
            f" C heap in use {first.heap_used:.1f} -> {last.heap_used:.1f} MiB (slope {slope(xs, [s.heap_used for s in warm]):+.3f} MiB/min);"
            f" Python blocks {first.py_blocks:,} -> {last.py_blocks:,} (slope {slope(xs, [s.py_blocks for s in warm]):+,.0f}/min);"
            f" tasks {first.tasks} -> {last.tasks} (slope {task_slope:+.3f}/min); fds {first.fds} -> {last.fds} (slope {fd_slope:+.3f}/min)",
        ]
        end = run.samples[-1].t
        tail = [s for s in warm if s.t >= end - 300] if end - a.warmup > 300 else []
        if len(tail) >= 2:
            tx = [s.t / 60 for s in tail]
            lines.append(
                f"- last 5 min: RSS {tail[0].rss:.1f} -> {tail[-1].rss:.1f} MiB (slope {slope(tx, [s.rss for s in tail]):+.3f} MiB/min);"
                f" C heap in use slope {slope(tx, [s.heap_used for s in tail]):+.3f} MiB/min, free {tail[0].heap_free:.1f} -> {tail[-1].heap_free:.1f} MiB;"
                f" peak RSS of the run {max(s.rss for s in run.samples):.1f} MiB"
            )
        lines += [
            f"- queue depth max: simulator send {max(s.server_q for s in run.samples)}, held by the client {max(s.recv_q for s in run.samples)},"
            f" book-sync buffer {max(s.sync_buf for s in run.samples)}",
        ]
    step = max(1, len(run.samples) // 12)
    shown = run.samples[::step]
    if run.samples and shown[-1] is not run.samples[-1]:
        shown.append(run.samples[-1])
    lines += [
        "",
        "| t (s) | RSS (MiB) | C heap in use (MiB) | heap free (MiB) | Python blocks | fds | tasks | frames | send q | recv q | heatmap cols | 10 s cols |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {s.t:.0f} | {s.rss:.1f} | {s.heap_used:.1f} | {s.heap_free:.1f} | {s.py_blocks:,} | {s.fds} | {s.tasks} | {s.frames:,} | {s.server_q} | {s.recv_q} | {s.heatmap} | {s.coarse} |"
        for s in shown
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    p.add_argument(
        "--rate",
        type=float,
        default=300.0,
        help="simulator updates/s per symbol asked (default 300; the in-process pair tops out near that)",
    )
    p.add_argument(
        "--accelerated-hour",
        action="store_true",
        help="run until an hour of --nominal-rate updates per symbol were produced",
    )
    p.add_argument(
        "--nominal-rate",
        type=float,
        default=20.0,
        help="updates/s per symbol of the hour being compressed (default 20, the demo feed's)",
    )
    p.add_argument(
        "--heatmap-history",
        type=int,
        default=None,
        help="heatmap ring length in columns (default: the app's, 720 = 3 min at 4 Hz)",
    )
    p.add_argument(
        "--period-history",
        type=int,
        default=None,
        help="ring of the heatmap's 10 s periods, in periods (default: the app's, 360 = an hour);"
        " a shorter one is full within the run, so the slopes after it show leaks, not filling",
    )
    p.add_argument(
        "--interval", type=float, default=5.0, help="seconds between samples (default 5)"
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds ignored by the slopes (default: 20%% of the run, at most 60)",
    )
    p.add_argument(
        "--chaos", type=float, default=0.0, help="inject a random fault every N seconds (0: none)"
    )
    p.add_argument(
        "--app", action="store_true", help="also run the Textual app headless on the feed"
    )
    p.add_argument(
        "--server-process",
        action="store_true",
        help="run the simulator as 'obview demo-server' in a child process (no --chaos then)",
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="record the run in bench/RESULTS.extra.md and docs/RELIABILITY.md",
    )
    a = p.parse_args(argv)
    if a.server_process and a.chaos:
        p.error("--chaos needs the in-process simulator (it injects the faults there)")
    if a.warmup is None:
        expected = 3600 * a.nominal_rate / a.rate if a.accelerated_hour else a.duration
        a.warmup = min(60.0, 0.2 * expected)
    sys.path.insert(0, str(ROOT / "app"))
    # a SIGTERM ends the run through its cleanup (the simulator child process with it)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run = asyncio.run(soak(a))
    lines = summarize(run)
    print("\n".join(["", "## Soak", "", *lines]))
    if a.write:
        stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime())
        body = [
            f"`python -m bench.soak {' '.join(argv if argv is not None else sys.argv[1:])}` ({stamp}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)",
            "",
            *lines,
        ]
        if a.server_process:  # the memory soak at a high rate: its own sections
            replace_section(ROOT / "bench" / "RESULTS.extra.md", "## Memory soak", body)
            replace_section(ROOT / "docs" / "RELIABILITY.md", "## Latest memory soak", body)
        else:
            replace_section(ROOT / "bench" / "RESULTS.extra.md", "## Soak", body)
            replace_section(ROOT / "docs" / "RELIABILITY.md", "## Latest soak", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
