"""Helpers shared by the end-to-end tests (a FeedSession against a server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

from obview.feed.session import FeedSession, SessionOptions
from obview.market import Market
from obview.model import FeedStatus
from obview.sim.server import start_server

#: short backoff and timeouts, so a test's reconnects and resyncs take milliseconds
FAST = dict(backoff_base=0.05, backoff_max=0.3, connect_timeout=2.0, resync_min_interval=0.05)


def fast_options(**overrides) -> SessionOptions:
    return SessionOptions(**{**FAST, **overrides})


async def until(pred, timeout: float = 8.0, market=None, bad: list | None = None) -> None:
    """Poll ``pred`` until true. With ``market`` and ``bad``, also check continuously that a
    LIVE book is never crossed and never empty, recording each violation in ``bad``."""
    async with asyncio.timeout(timeout):
        while not pred():
            if (
                market is not None
                and bad is not None
                and market.live
                and (market.book.is_crossed() or market.book.empty)
            ):
                bad.append((market.state, market.book.best_bid(), market.book.best_ask()))
            await asyncio.sleep(0.005)


@asynccontextmanager
async def venue_feed(
    adapter_cls, symbol: str, path: str, *, seed: int, rate: float, options=None, **session_kw
):
    """A simulator server on 127.0.0.1 speaking ``adapter_cls``'s dialect at ``path``, and a
    started FeedSession on it (REST from the same server). Yields (server, adapter, market,
    session); stops the session and closes the server on the way out."""
    server = await start_server(seed=seed, rate=rate, symbols=[symbol])
    try:
        adapter = adapter_cls(symbol, endpoint=server.url(path), rest_endpoint=server.http_url())
        market = Market(adapter.default_instrument())
        session = FeedSession(adapter, market, options=options or fast_options(), **session_kw)
        task = session.start()
        try:
            yield server, adapter, market, session
        finally:
            await session.stop()
            task.cancel()
    finally:
        await server.close()


async def drop_a_delta_and_recover(server, market) -> None:
    """The server drops one delta: the feed must see the gap, say so (SYNCING, "seq gap"), and
    come back LIVE."""
    server.faults.drop_next("delta")
    await until(lambda: market.stats.gaps >= 1)
    assert any(s.status is FeedStatus.SYNCING and "seq gap" in s.reason for s in market.state_log)
    await until(lambda: market.live)
