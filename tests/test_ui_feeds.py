"""The app on real feeds: a real FeedManager with every venue's adapter on one fault server that
speaks each venue's dialect (the other UI tests use prepared markets).

First each venue key in turn: the venue comes up LIVE on screen with its own book. Then keys,
symbol prompts and feed faults at random, checking after each step that the market on screen is
the one selected, that the stats bar names it and that no more feeds are open than
``warm_venues``; at the end the feed on screen is LIVE again, and nothing raised unawaited.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time

from faultserver import FaultServer
from obview.feed.manager import FeedManager
from obview.feed.session import SessionOptions
from obview.symbols import CANONICAL
from obview.ui.app import ObviewApp
from obview.ui.compare import CompareScreen
from obview.ui.ladder import Ladder
from obview.ui.statsbar import StatsBar
from test_ui_keys import _queue_keys

PATHS = {
    "demo": "/demo",
    "binance": "",
    "bybit": "/v5/public/linear",
    "okx": "/ws/v5/public",
    "deribit": "/ws/api/v2",
    "hyperliquid": "/ws",
    "bitmex": "/realtime",
    "kraken": "/ws/v1",
    "dydx": "/v4/ws",
}
KEYS = [
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "left_square_bracket", "right_square_bracket", "space", "plus",
    "minus", "u", "t", "c", "H", "L", "T", "comma", "full_stop", "z", "Z", "x",
]  # fmt: skip


async def _until(pilot, pred, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not {what} within {timeout} s")
        await pilot.pause(0.05)


def _bar(app) -> str:
    return app.query_one(StatsBar)._text.plain.split("\n")[0]


async def test_every_venue_on_screen_then_keys_and_feed_faults_at_random():
    loop = asyncio.get_running_loop()
    unhandled: list[str] = []
    loop.set_exception_handler(lambda _l, ctx: unhandled.append(f"{ctx.get('message')}: {ctx.get('exception')!r}"))
    server = FaultServer("127.0.0.1", 5, None, 40.0, 2**20, 8192)
    await server._start(0)
    opts = SessionOptions(
        backoff_base=0.05, backoff_max=0.3, connect_timeout=2.0, resync_min_interval=0.05,
        resync_max_interval=0.5, stale_after=4.0, sync_timeout=3.0,
    )  # fmt: skip
    mgr = FeedManager(
        venues=list(PATHS),
        endpoints={v: server.url(p) for v, p in PATHS.items()},
        rest_endpoints={v: server.http_url() for v in PATHS},
        warm_limit=3,
        options=opts,
    )
    app = ObviewApp(mgr, "demo", "BTC-PERP")
    rng = random.Random(5)
    try:
        async with asyncio.timeout(90), app.run_test(size=(160, 48)) as pilot:
            # every venue's key shows that venue, LIVE, with its book in the ladder
            for n, venue in enumerate(PATHS, 1):
                _queue_keys(app, str(n))
                await _until(pilot, lambda v=venue: app.venue == v and app.market is not None and app.market.live, 10, f"{venue} LIVE")
                await _until(pilot, lambda v=venue: _bar(app).startswith(f" BTC-PERP  {v}   ● LIVE"), 2, f"{venue} in the bar")
                best = app.market.book.best_bid()
                assert best is not None and app.market.venue == venue
                ladder = "\n".join(app.query_one(Ladder).line_texts())
                assert "bid" in ladder and any(ch.isdigit() for ch in ladder)
            assert len(mgr._open) == mgr.warm_limit  # the least recently viewed were closed
            # then keys, symbols and faults at random
            checks = 0
            t0 = time.monotonic()
            while time.monotonic() - t0 < 12:
                r = rng.random()
                if r < 0.4:
                    _queue_keys(app, *rng.choices(KEYS, k=rng.randint(1, 3)))
                elif r < 0.5:
                    _queue_keys(app, "s")
                    await pilot.pause(0.05)
                    prompt = app.screen.query("Input")
                    if prompt:
                        prompt.first().value = rng.choice(["ETH-PERP", "SOL-PERP", "btc", "NOPE"])
                        _queue_keys(app, "enter")
                else:
                    f = rng.choice(["drop", "kick", "reset", "garbage", "burst", "rest", "refuse"])
                    if f == "drop":
                        server.faults.drop_next("delta", rng.randint(1, 5))
                    elif f == "kick":
                        await server.kick(abrupt=rng.random() < 0.5)
                    elif f == "reset":
                        server.reset()
                    elif f == "garbage":
                        server.inject('{"x":')
                    elif f == "burst":
                        await server.burst(rng.randint(100, 1000), symbol=rng.choice(list(server.markets)))
                    elif f == "rest":
                        server.rest_fault = rng.choice([None, "error", "stale", "broken"])
                    else:
                        server.faults.refuse_handshake(503)
                        await asyncio.sleep(0.2)
                        server.faults.refuse_handshake(None)
                await asyncio.sleep(rng.choice([0, 0.01, 0.05, 0.2]))
                await pilot.pause()
                if isinstance(app.screen, CompareScreen):
                    # every venue is held open for it, and no more than that
                    assert len(mgr._open) <= len(PATHS) * len(CANONICAL)
                    if rng.random() < 0.5:
                        _queue_keys(app, "escape")
                    continue
                if len(app.screen_stack) > 1:  # a prompt is open
                    continue
                checks += 1
                m = app.market
                assert m is None or (m.venue, m.symbol) == (app.venue, app.symbol), (m.venue, m.symbol, app.venue, app.symbol)
                assert _bar(app).startswith(f" {app.symbol}  {app.venue} "), _bar(app)
                # the feeds the compare view held are let go once it closes
                await _until(pilot, lambda: len(mgr._open) <= mgr.warm_limit, 3, "back to the warm limit")
            assert checks > 10
            server.faults.clear()
            server.rest_fault = None
            while len(app.screen_stack) > 1:
                app.pop_screen()
                await pilot.pause()
            if app.paused:
                _queue_keys(app, "space")
            await _until(pilot, lambda: app.market is not None and app.market.live, 15, f"{app.venue} LIVE at the end")
            assert app._exception is None
        await mgr.close()
        gc.collect()
        assert unhandled == []
    finally:
        loop.set_exception_handler(None)
        await mgr.close()
        await server.close()
