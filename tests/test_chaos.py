"""Random faults against every venue's dialect: a seeded schedule of dropped, duplicated,
reordered, truncated and corrupted frames, lost and repeated snapshots, kicks, resets, silences,
refused handshakes, bursts, rate changes, service restarts, garbage frames and failing, slow,
stale or broken REST answers, applied to the real adapter and FeedSession on the simulator.

Throughout, ``Watch`` checks every visible change and every 3 ms that a LIVE book is synced,
uncrossed, non-empty and (where the dialect's sequence numbers are the simulator's) has the
server's best prices at the client's sequence number. Afterwards the feed must come back LIVE
with the server's book, and nothing may have raised in a task nobody awaits.

The scripted tests in test_faults*.py and test_venue_*.py name each fault; this one finds the
combinations nobody scripted (such schedules found a resync task that died, unawaited, on a
connection lost under it).
"""

from __future__ import annotations

import asyncio
import gc
import random
import time

import pytest

from faultserver import FaultServer, Watch, WatchedMarket
from obview.feed.session import FeedSession, SessionOptions
from obview.sim.dialects.binance import STRIDE
from obview.venues.binance import BinanceAdapter
from obview.venues.bitmex import BitmexAdapter
from obview.venues.bybit import BybitAdapter
from obview.venues.demo import DemoAdapter
from obview.venues.deribit import DeribitAdapter
from obview.venues.dydx import DydxAdapter
from obview.venues.hyperliquid import HyperliquidAdapter
from obview.venues.kraken import KrakenAdapter
from obview.venues.okx import OkxAdapter

# adapter, WebSocket path, the client's sequence numbers are the simulator's (or map to them),
# sizes in coins
VENUES = {
    "demo": (DemoAdapter, "/demo", True, True),
    "binance": (BinanceAdapter, "", lambda u: u // STRIDE, True),  # a step's ids: k * STRIDE...
    "bybit": (BybitAdapter, "/v5/public/linear", False, True),  # u counts messages per topic
    "okx": (OkxAdapter, "/ws/v5/public", True, False),  # contracts
    "deribit": (DeribitAdapter, "/ws/api/v2", True, False),  # USD
    "hyperliquid": (HyperliquidAdapter, "/ws", False, False),  # prices aggregated to 5 digits
    "bitmex": (BitmexAdapter, "/realtime", False, False),  # no sequence numbers; contracts
    "kraken": (KrakenAdapter, "/ws/v1", False, True),  # seq counts single-level messages
    "dydx": (DydxAdapter, "/v4/ws", False, True),  # message_id counts messages per connection
}
FAULTS = [
    "drop", "drop_many", "dup", "corrupt", "reorder", "truncate", "drop_snapshot",
    "dup_snapshot", "kick", "kick_abrupt", "reset", "silence", "garbage", "refuse", "burst",
    "rate_up", "rate_down", "restart", "rest_error", "rest_429", "rest_slow", "rest_stale",
    "rest_broken", "rest_ok",
]  # fmt: skip
STEPS = 25


async def _apply(server: FaultServer, rng: random.Random, fault: str) -> None:
    f = server.faults
    if fault.startswith("rest_"):
        server.rest_fault = None if fault == "rest_ok" else fault[5:]
    elif fault == "drop":
        f.drop_next("delta")
    elif fault == "drop_many":
        f.drop_next("delta", rng.randint(2, 20))
    elif fault == "dup":
        f.duplicate_next("delta", rng.randint(1, 5))
    elif fault == "corrupt":
        f.corrupt_next("delta")
    elif fault == "reorder":
        server.reorder_next()
    elif fault == "truncate":
        server.truncate_next()
    elif fault == "drop_snapshot":
        f.drop_next("snapshot", rng.randint(1, 2))
    elif fault == "dup_snapshot":
        f.duplicate_next("snapshot")
    elif fault == "kick":
        await server.kick()
    elif fault == "kick_abrupt":
        await server.kick(abrupt=True)
    elif fault == "reset":
        server.reset()
    elif fault == "silence":
        server.pause()
        await asyncio.sleep(rng.uniform(0.05, 0.6))
        server.resume()
    elif fault == "garbage":
        server.inject(rng.choice(['{"x":', "null", "[]", "{}", '"s"', '{"op":"pong"}']))
    elif fault == "refuse":
        f.refuse_handshake(rng.choice([429, 503]))
        await asyncio.sleep(rng.uniform(0.05, 0.4))
        f.refuse_handshake(None)
    elif fault == "burst":
        await server.burst(rng.randint(100, 2000))
    elif fault == "rate_up":
        server.set_rate(rng.choice([200, 1000]))
    elif fault == "rate_down":
        server.set_rate(rng.choice([0, 5, 40]))
    elif fault == "restart":  # Bybit's service restart (u starts again at 1); others ignore it
        for c in server.clients:
            if hasattr(c.dialect, "restart"):
                c.dialect.restart()
    else:
        raise AssertionError(fault)


async def _until(pred, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not {what} within {timeout} s")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("venue", list(VENUES))
async def test_random_faults_never_show_a_wrong_book_live_and_it_recovers(venue: str, seed: int):
    cls, path, same_seq, coins = VENUES[venue]
    rng = random.Random(f"{venue}-{seed}")
    loop = asyncio.get_running_loop()
    unhandled: list[str] = []
    loop.set_exception_handler(lambda _loop, ctx: unhandled.append(f"{ctx.get('message')}: {ctx.get('exception')!r}"))
    server = FaultServer("127.0.0.1", seed, ["BTC-PERP"], 40.0, 2**20, 8192)
    await server._start(0)
    try:
        async with asyncio.timeout(60):
            adapter = cls("BTC-PERP", endpoint=server.url(path), rest_endpoint=server.http_url())
            market = WatchedMarket(adapter.default_instrument())
            opts = SessionOptions(
                backoff_base=0.05, backoff_max=0.3, connect_timeout=2.0,
                resync_min_interval=0.05, resync_max_interval=0.5,
                stale_after=4.0, stale_grace=1.0, sync_timeout=3.0,
            )  # fmt: skip
            session = FeedSession(adapter, market, options=opts)
            watch = Watch(
                market, session, stale_limit=6.0, server=server if same_seq else None, sizes=coins,
                sim_seq=same_seq if callable(same_seq) else None,
            ).start()  # fmt: skip
            task = session.start()
            try:
                await _until(lambda: market.live and not market.book.empty, 10, "LIVE at start")
                schedule = [rng.choice(FAULTS) for _ in range(STEPS)]
                for fault in schedule:
                    await _apply(server, rng, fault)
                    await asyncio.sleep(rng.choice([0, 0.001, 0.01, 0.05, 0.2]))
                # faults over: frames flow again, so a gap the last fault left shows itself
                server.faults.clear()
                server.rest_fault = None
                server.resume()
                server.set_rate(40)
                server._reorder = server._truncate = 0
                server._held.clear()
                await asyncio.sleep(0.5)
                await _until(lambda: market.live and not market.book.empty, 15, f"LIVE again after {schedule}")
                # still: the client catches up and holds the server's book
                server.set_rate(0)
                sim = server.markets["BTC-PERP"]

                def same() -> bool:
                    mb, ma = market.book.top(20)
                    sb, sa = sim.book.top(20)
                    if venue == "hyperliquid":  # its dialect aggregates: what it last sent
                        # (on the default book's connection: the fast one's holds 5 levels)
                        sent = [
                            c.dialect.sent_books.get("BTC")
                            for c in server.clients
                            if not c.closing and not c.dialect.fast
                        ]
                        return bool(sent) and sent[-1] is not None and (mb, ma) == tuple(sent[-1][1:])
                    if coins:
                        return (mb, ma) == (sb, sa)
                    return [p for p, _ in mb] == [p for p, _ in sb] and [p for p, _ in ma] == [p for p, _ in sa]

                await _until(same, 3, f"the server's book after {schedule}")
                assert market.live
            finally:
                await watch.stop()
                await session.stop()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        gc.collect()  # a task that died unawaited reports itself when collected
        assert unhandled == []
        assert watch.violations == [], (schedule, watch.violations)
        assert watch.live_checks > 0 and (watch.compared > 0 or not same_seq)
    finally:
        loop.set_exception_handler(None)
        await server.close()
