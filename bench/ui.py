"""UI: the headless app (ObviewApp under Textual's headless driver) on a live feed.

Each figure comes from a fresh child process (``python -m bench.ui probe MODE ...``), so Textual
state never leaks between runs and start-up is measured from a real process start:

The app runs as ``obview`` runs it, with its garbage-collector policy (``tune_gc``).

- frame cost: demo feed from the replay server (bench/replay_server.py, its own process) at
  1k deltas/s; CPU time (``time.process_time``) of each paint tick (``ObviewApp._frame``: ladder,
  tape, heatmap and bars rebuilt from the Market) at 160x48 and 240x70, median and p99; and the
  whole process's CPU per painted frame (feed, Textual compositor and all) as a note. Each
  screen update is also rendered to the escape codes a 24-bit colour terminal would get
  (Textual's headless driver skips that), so the whole-process figure includes it, and their
  volume is a figure;
- first book: process start (the parent's clock at spawn) to the first ladder painted from a LIVE
  book, with the app's own in-process simulator as ``obview --venue demo`` uses it;
- key -> screen: while the replay server bursts 20k and then 50k deltas/s into the app, press ``u``
  (units) and time until the ladder's rendered lines have changed.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time

from bench.common import Figure
from bench.ingest import ROOT, start_server, stop_server


# -- child side ---------------------------------------------------------------------------------
def _app(endpoint: str | None):
    from obview.feed.manager import FeedManager
    from obview.ui.app import ObviewApp

    endpoints = {"demo": endpoint} if endpoint else {}
    mgr = FeedManager(venues=["demo"], endpoints=endpoints, warm_limit=1)
    # the collector policy ``obview`` itself runs with (obview.ui.app.tune_gc)
    return ObviewApp(mgr, "demo", "BTC-PERP", close_manager=True, gc_policy=True)


def _ladder_text(app) -> str:
    return "\n".join(app.w_ladder.line_texts())


def _book_painted(app) -> bool:
    m = app.market
    return (
        m is not None
        and m.live
        and not m.book.empty
        and bool(app.w_ladder._strips)
        and app.frames > 0
    )


def _render_as_a_terminal(app, out: dict) -> None:
    """Make the headless app turn each screen update into the escape codes a terminal would
    be sent, as Textual's terminal driver does (headless, Textual skips that step), so the
    whole-process figures include it; ``out`` counts the bytes and the CPU time it took. Only
    the write to a terminal is left out."""
    import io

    from rich.console import Console
    from textual._compositor import CompositorUpdate

    # a terminal that reports 24-bit colour (COLORTERM=truecolor), as most do; the headless
    # app's own console renders 16 colours, shorter codes than a real session writes
    console = Console(
        file=io.StringIO(),
        color_system="truecolor",
        force_terminal=True,
        legacy_windows=False,
        markup=False,
        highlight=False,
        emoji=False,
    )
    display = app._display

    def rendering_display(screen, renderable) -> None:
        if isinstance(renderable, CompositorUpdate):
            c0 = time.process_time()
            text = renderable.render_segments(console)
            out["render_s"] += time.process_time() - c0
            out["bytes"] += len(text.encode())
        display(screen, renderable)

    app._display = rendering_display


async def _probe(mode: str, arg: dict) -> dict:
    if mode == "first":
        app = _app(None)
        async with app.run_test(size=(160, 48)):
            async with asyncio.timeout(20):
                while not _book_painted(app):
                    await asyncio.sleep(0.002)
            return {"first_book_s": time.time() - arg["spawn"]}
    app = _app(arg["endpoint"])
    w, h = arg.get("size", (160, 48))
    costs: list[float] = []
    stamps: list[float] = []
    orig = app._frame

    def timed_frame(force: bool = False) -> None:
        stamps.append(time.perf_counter())
        c0 = time.process_time()
        orig(force)
        costs.append(time.process_time() - c0)

    app._frame = timed_frame
    out = {"bytes": 0, "render_s": 0.0}
    async with app.run_test(size=(w, h)):
        if mode == "frames":
            _render_as_a_terminal(app, out)
        async with asyncio.timeout(20):
            while not _book_painted(app):
                await asyncio.sleep(0.005)
        if mode == "frames":
            await asyncio.sleep(0.5)  # heatmap and tape fill in
            costs.clear()
            stamps.clear()
            c0, f0 = time.process_time(), app.frames
            t0 = time.perf_counter()
            out["bytes"], out["render_s"] = 0, 0.0
            await asyncio.sleep(arg["seconds"])
            cpu, frames, wall = time.process_time() - c0, app.frames - f0, time.perf_counter() - t0
            gaps = sorted(b - a for a, b in zip(stamps, stamps[1:], strict=False)) or [0.0]
            return {
                "gap_p99_ms": gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] * 1000,
                "gap_max_ms": gaps[-1] * 1000,
                "costs_ms": [c * 1000 for c in costs],
                "cpu_per_frame_ms": cpu / max(frames, 1) * 1000,
                "fps": frames / wall,
                "cpu_share": cpu / wall,
                "term_kb_s": out["bytes"] / wall / 1000,
                "term_render_ms": out["render_s"] / max(frames, 1) * 1000,
            }
        # key: under the burst, press "u" and wait for the ladder to change
        await asyncio.sleep(0.3)
        # the paint clock's rate under the burst, over a second with no key presses
        f0, m0, t_burst = app.frames, app.market.stats.frames, time.perf_counter()
        await asyncio.sleep(1.0)
        wall = time.perf_counter() - t_burst
        burst_fps, burst_mps = (app.frames - f0) / wall, (app.market.stats.frames - m0) / wall
        lat = []
        for _ in range(arg["presses"]):
            before = _ladder_text(app)
            t0 = time.perf_counter()
            app.simulate_key(
                "u"
            )  # posted like a terminal key event (Pilot.press also waits for idle)
            async with asyncio.timeout(5):
                while _ladder_text(app) == before:
                    await asyncio.sleep(0)
            lat.append((time.perf_counter() - t0) * 1000)
            await asyncio.sleep(0.1)
        return {
            "key_ms": lat,
            "frames_applied": app.market.stats.frames,
            "burst_fps": burst_fps,
            "burst_msgs_per_s": burst_mps,
        }


def _child(mode: str, arg: dict) -> dict:
    args = [sys.executable, "-m", "bench.ui", "probe", mode, json.dumps(arg)]
    arg.setdefault("spawn", time.time())
    args[-1] = json.dumps(arg)
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60)
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"ui probe {mode} failed: {out.stderr.strip()[-400:]}")


# -- the machine's own cost of being woken ---------------------------------------------------------
def _send_paced(port: int, rate: float, count: int) -> None:
    """Child side: ``count`` 200-byte messages to ``port`` at ``rate`` a second, then close."""
    import socket

    with socket.create_connection(("127.0.0.1", port)) as s:
        t0 = time.perf_counter()
        for i in range(count):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            s.sendall(b"x" * 200)


async def _bare_wakeups(rate: float, count: int) -> float:
    """CPU seconds per wakeup of a bare asyncio loop that a socket wakes ``rate`` times a second
    and that does nothing with the data: what being woken costs on this machine, before any
    work (the feed in the UI figures is woken this way once per frame it receives)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()
    got = 0

    class Counter(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            nonlocal got
            got += 1

        def connection_lost(self, exc: Exception | None) -> None:
            if not done.done():
                done.set_result(None)

    server = await loop.create_server(Counter, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = f"from bench.ui import _send_paced; _send_paced({port}, {rate!r}, {count})"
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    try:
        c0 = time.process_time()
        async with asyncio.timeout(count / rate + 20):
            await done
        cpu = time.process_time() - c0
    finally:
        server.close()
        child.wait(10)
    return cpu / max(got, 1)


# -- parent side --------------------------------------------------------------------------------
def _ctl(port: int, rate: float, count: int) -> None:
    import urllib.request

    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/ctl?rate={rate:g}&count={count}", timeout=5
    ) as r:
        r.read()


def run(quick: bool) -> list[Figure]:
    runs = 1 if quick else 3
    seconds = 0.6 if quick else 3.0
    figs: list[Figure] = []
    proc, port = start_server(1500 if quick else 4000)
    try:
        endpoint = f"ws://127.0.0.1:{port}/demo"
        # (width, height, deltas/s): the 1k/s stress feed at both sizes, and the rate the demo
        # venue itself runs at (about 50 deltas/s, like a busy real book stream)
        for w, h, rate in ((160, 48, 1000), (240, 70, 1000), (160, 48, 50)):
            _ctl(port, rate, 1_000_000)
            res = [
                _child("frames", {"endpoint": endpoint, "size": [w, h], "seconds": seconds})
                for _ in range(runs)
            ]
            feed = f"demo feed {rate:g} deltas/s" if rate < 1000 else "demo feed 1k deltas/s"
            fps = statistics.median(r["fps"] for r in res)
            share = statistics.median(r["cpu_share"] for r in res)
            if rate == 1000:
                med = [statistics.median(r["costs_ms"]) for r in res]
                p99 = [
                    sorted(r["costs_ms"])[
                        min(len(r["costs_ms"]) - 1, int(len(r["costs_ms"]) * 0.99))
                    ]
                    for r in res
                ]
                figs.append(
                    Figure(
                        f"ui: paint tick CPU at {w}x{h} (median), {feed}",
                        "ms/frame",
                        med,
                        target="<= 8 ms" if w == 160 else "",
                        note=f"{fps:.0f} frames/s painted",
                    )
                )
                figs.append(Figure(f"ui: paint tick CPU at {w}x{h} (p99)", "ms/frame", p99))
            figs.append(
                Figure(
                    f"ui: whole process CPU per painted frame at {w}x{h}, {feed}",
                    "ms/frame",
                    [r["cpu_per_frame_ms"] for r in res],
                    target="<= 8 ms (25% of a core at 30 fps)" if w == 160 else "",
                    note=f"feed, paint, Textual compositor, escape codes, collector and all; {share:.0%} of a core",
                )
            )
            render = statistics.median(r["term_render_ms"] for r in res)
            figs.append(
                Figure(
                    f"ui: terminal output at {w}x{h}, {feed}",
                    "kB/s",
                    [r["term_kb_s"] for r in res],
                    note=f"escape codes the screen updates make; rendering them costs {render:.2f} ms"
                    + " per frame (in the whole-process figure; the write itself is not)",
                )
            )
            figs.append(
                Figure(
                    f"ui: interval between paints at {w}x{h}, {feed} (p99)",
                    "ms",
                    [r["gap_p99_ms"] for r in res],
                    note=f"the clock ticks every 33.3 ms; worst interval {max(r['gap_max_ms'] for r in res):.0f} ms",
                )
            )
        # the 20k deltas/s burst, and 50k/s: the burst the app must stay responsive under
        for burst in (20_000, 50_000):
            _ctl(port, burst, 10_000_000)
            res = [
                _child("key", {"endpoint": endpoint, "size": [160, 48], "presses": 5 if quick else 10})
                for _ in range(runs)
            ]
            label = f"{burst // 1000}k deltas/s"
            figs.append(
                Figure(
                    f"ui: key press -> ladder changed, feed bursting {label}",
                    "ms",
                    [statistics.median(r["key_ms"]) for r in res],
                    target="<= 50 ms",
                    note="median of the presses per run (until the ladder's lines are rebuilt; the"
                    + f" compositor writes them on its next refresh); worst press {max(max(r['key_ms']) for r in res):.1f} ms;"
                    + f" frames received per run {min(r['frames_applied'] for r in res):,}+",
                )
            )
            figs.append(
                Figure(
                    f"ui: paint frames/s while the feed bursts {label} (1 s without key presses)",
                    "frames/s",
                    [r["burst_fps"] for r in res],
                    target="holds ~30",
                    note=f"feed applied {statistics.median(r['burst_msgs_per_s'] for r in res):,.0f} deltas/s meanwhile (server in its own process)",
                )
            )
    finally:
        stop_server(proc)
    wake = [asyncio.run(_bare_wakeups(1000, 1500 if quick else 3000)) for _ in range(runs)]
    figs.append(
        Figure(
            "ui: context: a bare asyncio loop woken 1k times/s, doing nothing (CPU per 33 ms frame)",
            "ms/frame",
            [w * 1000 * 1000 / 30 for w in wake],
            note=f"{statistics.median(wake) * 1e6:.0f} us per wakeup on this machine: part of the"
            + " whole-process figures at 1k deltas/s before any work is done",
        )
    )
    first = [_child("first", {})["first_book_s"] for _ in range(runs)]
    figs.append(
        Figure(
            "ui: process start -> first book painted (obview --venue demo, in-process simulator)",
            "s",
            first,
            target="<= 1.5 s",
        )
    )
    return figs


if __name__ == "__main__" and len(sys.argv) >= 4 and sys.argv[1] == "probe":
    result = asyncio.run(_probe(sys.argv[2], json.loads(sys.argv[3])))
    print("RESULT " + json.dumps(result), flush=True)
