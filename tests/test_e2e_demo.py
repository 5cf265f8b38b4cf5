"""End to end: the demo simulator on 127.0.0.1, a FeedSession with the demo adapter, a Market."""

from __future__ import annotations

import asyncio

from e2e import fast_options, until
from obview.feed.manager import FeedManager
from obview.feed.session import FeedSession
from obview.market import Market
from obview.model import FeedStatus
from obview.sim.server import start_server
from obview.venues.demo import DemoAdapter

OPTS = fast_options()


async def test_demo_feed_live_with_trades_then_survives_server_restart():
    server = await start_server(seed=3, rate=50)
    port = server.port
    adapter = DemoAdapter("BTC-PERP", endpoint=server.url("/demo"))
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=OPTS)
    task = session.start()
    bad: list = []
    try:
        await until(lambda: market.live, market=market, bad=bad)
        await until(lambda: len(market.trades) >= 3, market=market, bad=bad)
        bb, ba = market.book.best_bid(), market.book.best_ask()
        assert bb[0] < ba[0] and len(market.book.bids) > 50 and len(market.book.asks) > 50
        t = market.trades[-1]
        assert t.venue == "demo" and t.price > 0 and t.size > 0 and t.trade_id
        await server.close()
        await until(lambda: market.state.status is FeedStatus.RECONNECTING, market=market, bad=bad)
        assert market.book.empty and market.state.reason
        server = await start_server(port=port, seed=3, rate=50)
        await until(lambda: market.live, market=market, bad=bad)
        await until(lambda: len(market.heatmap.columns) > 0 and any(not c.live for c in market.heatmap.columns))
        assert bad == []
    finally:
        await session.stop()
        task.cancel()
        await server.close()


async def test_demo_book_equals_simulator_book_and_gap_resyncs():
    server = await start_server(seed=5, rate=40)
    adapter = DemoAdapter("ETH-PERP", endpoint=server.url("/demo"))
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=OPTS)
    task = session.start()
    bad: list = []
    try:
        await until(lambda: market.live)
        server.set_rate(0)  # hold the simulator still so both books can be compared
        sim = server.markets["ETH-PERP"]
        await until(lambda: session.pipeline.sync.last_seq == sim.seq)  # caught up
        assert market.book.top(10_000) == sim.book.top(10_000)  # the whole book
        server.set_rate(40)
        server.faults.drop_next("delta")
        await until(lambda: market.resyncs >= 1 and market.live, market=market, bad=bad)
        assert any(s.status is FeedStatus.SYNCING and s.reason.startswith("seq gap") for s in market.state_log)
        server.set_rate(0)
        await until(lambda: session.pipeline.sync.last_seq == sim.seq and market.live)
        assert market.book.top(10_000) == sim.book.top(10_000)  # the whole book
        assert bad == []
    finally:
        await session.stop()
        task.cancel()
        await server.close()


async def test_manager_keeps_warm_feeds_bounded():
    manager = FeedManager(venues=["demo"], warm_limit=2, options=OPTS)
    try:
        async with asyncio.timeout(10):
            a = await manager.open("demo", "BTC-PERP")
            b = await manager.open("demo", "ETH-PERP")
            await until(lambda: a.live and b.live)
            assert await manager.open("demo", "btc") is a  # warm: same market, instantly
            b_task = manager._open[("demo", "ETH-PERP")].task
            c = await manager.open("demo", "SOL-PERP")
            assert b_task.done()  # the closed feed's task has ended, not merely been asked to
            await until(lambda: c.live)
            assert manager.get("demo", "ETH-PERP") is None  # least recently viewed was closed
            assert manager.get("demo", "BTC-PERP") is a
            try:
                await manager.open("demo", "DOGE-PERP")
                raise AssertionError("unknown symbol accepted")
            except ValueError as e:
                assert "valid: BTC-PERP" in str(e)
    finally:
        await manager.close()


async def test_manager_opens_a_failed_feed_afresh():
    manager = FeedManager(venues=["demo"], options=OPTS)
    try:
        async with asyncio.timeout(10):
            a = await manager.open("demo", "BTC-PERP")
            await until(lambda: a.live)
            # the venue ends the feed with a fatal error
            manager.demo_server.faults.inject('{"type":"error","reason":"maintenance","fatal":true}')
            await until(lambda: a.state.status is FeedStatus.FAILED)
            await until(lambda: manager._open[("demo", "BTC-PERP")].task.done())
            b = await manager.open("demo", "BTC-PERP")  # asked again: a new session
            assert b is not a and manager.get("demo", "BTC-PERP") is b
            await until(lambda: b.live)
            assert a.state.status is FeedStatus.FAILED  # the old one stays as it ended
            assert await manager.open("demo", "BTC-PERP") is b  # a running one is kept
    finally:
        await manager.close()
