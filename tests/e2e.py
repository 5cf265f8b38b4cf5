"""Helpers shared by the end-to-end tests (a FeedSession against a server on 127.0.0.1)."""

from __future__ import annotations

import asyncio

from obview.feed.session import SessionOptions

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
