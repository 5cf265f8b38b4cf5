"""The rig the fault tests share: a fault-injecting simulator (tests/faultserver.py), a demo
FeedSession on it with fast timings, and a ``Watch`` that records every moment a wrong book was
shown as LIVE; plus the backoff check."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from dataclasses import dataclass

from faultserver import FaultServer, Watch, WatchedMarket, start_fault_server
from obview.feed.session import FeedSession, SessionOptions
from obview.model import FeedStatus
from obview.venues.demo import DemoAdapter

STALE_AFTER = 0.5
BASE, CAP = 0.05, 0.4


def options(**kw) -> SessionOptions:
    base = dict(
        backoff_base=BASE,
        backoff_max=CAP,
        connect_timeout=1.0,
        stale_after=STALE_AFTER,
        stale_grace=1.0,
        resync_min_interval=0.05,
        resync_max_interval=0.8,
    )
    base.update(kw)
    return SessionOptions(**base)


# the watchdog looks every stale_after/4; allow that plus scheduling slack
STALE_LIMIT = STALE_AFTER * 1.25 + 0.3


@dataclass
class Rig:
    server: FaultServer
    market: WatchedMarket
    session: FeedSession
    watch: Watch
    adapter: DemoAdapter
    task: asyncio.Task | None = None

    @property
    def state(self):
        return self.market.state

    def transitions(self, status: FeedStatus, prefix: str = "") -> list:
        return [
            s for s in self.market.state_log if s.status is status and s.reason.startswith(prefix)
        ]

    async def until(self, pred, timeout: float = 8.0) -> None:
        async with asyncio.timeout(timeout):
            while not pred():
                await asyncio.sleep(0.005)

    async def live(self, timeout: float = 8.0) -> None:
        await self.until(lambda: self.market.live and not self.market.book.empty, timeout)

    async def book_matches_server(self) -> None:
        """Freeze the simulator, let the client catch up, compare the books level by level."""
        sim = self.server.markets[self.market.symbol]
        rate = self.server.rate
        self.server.set_rate(0)
        try:
            await self.until(
                lambda: self.session.pipeline.sync.last_seq == sim.seq and self.market.live
            )
            assert self.market.book.top(100) == sim.book.top(100)
        finally:
            self.server.set_rate(rate)

    def assert_never_wrong_while_live(self) -> None:
        assert self.watch.violations == [], self.watch.violations
        assert self.watch.live_checks > 0 and self.watch.compared > 0


@asynccontextmanager
async def rig(adapter_cls=DemoAdapter, rate: float = 60.0, start: bool = True, recorder=None, **opts):
    server = await start_fault_server(rate=rate, seed=7)
    adapter = adapter_cls("BTC-PERP", endpoint=server.url("/demo"))
    market = WatchedMarket(adapter.default_instrument())
    session = FeedSession(adapter, market, options=options(**opts), recorder=recorder)
    watch = Watch(market, session, stale_limit=STALE_LIMIT, server=server).start()
    r = Rig(server, market, session, watch, adapter)
    task = None
    try:
        if start:
            task = session.start()
            await r.live()
        r.task = task
        yield r
    finally:
        await watch.stop()
        await session.stop()
        if r.task is not None:
            r.task.cancel()
        await server.close()


def min_gaps(n: int, base: float = BASE, cap: float = CAP) -> list[float]:
    """Lower bounds of the waits between attempts: jitter keeps at least half the backoff."""
    return [0.5 * min(cap, base * 2**k) for k in range(n)]


def assert_backoff(attempts: list[float], base: float = BASE, cap: float = CAP) -> None:
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    for i, (gap, low) in enumerate(zip(gaps, min_gaps(len(gaps), base, cap), strict=True)):
        assert gap >= low * 0.9, (
            f"attempt {i + 2} came {gap:.3f} s after the previous, backoff {low:.3f} s"
        )
