from __future__ import annotations

import asyncio
import tracemalloc

from obview.bus import BOOK, STATE, TRADE, Bus


async def test_slow_subscriber_under_100k_burst_is_bounded_and_counts_drops():
    bus = Bus()
    trades = bus.subscribe(TRADE, "demo", "BTC-PERP", maxlen=1000)
    book = bus.subscribe(BOOK, "demo", "BTC-PERP")
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(100_000):
        bus.publish(TRADE, "demo", "BTC-PERP", i)
        bus.publish(BOOK, "demo", "BTC-PERP", i)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # the slow subscriber never read: it holds only the newest 1000 and knows it lost 99k
    assert len(trades.items) == 1000
    assert trades.dropped == 99_000
    assert trades.drain(10) == list(range(99_000, 99_010))
    # the book topic is conflated: one pending notification, the latest payload
    dirty, latest = book.take()
    assert dirty and latest == 99_999 and book.published == 100_000
    assert book.take() == (False, 99_999)
    assert grown < 2_000_000, grown  # bounded: no per-event growth


async def test_publish_never_blocks_and_wakes_waiters():
    bus = Bus()
    sub = bus.subscribe(STATE, "okx", "ETH-PERP")
    trades = bus.subscribe(TRADE, "okx", "ETH-PERP", maxlen=4)
    async with asyncio.timeout(2):
        waiter = asyncio.create_task(sub.wait())
        twaiter = asyncio.create_task(trades.wait())
        await asyncio.sleep(0)
        bus.publish(STATE, "okx", "ETH-PERP", "LIVE")
        bus.publish(TRADE, "okx", "ETH-PERP", "t1")
        assert await waiter == "LIVE"
        assert await twaiter == ["t1"]


def test_topics_are_separate_and_unsubscribe_works():
    bus = Bus()
    a = bus.subscribe(BOOK, "binance", "BTC-PERP")
    b = bus.subscribe(BOOK, "bybit", "BTC-PERP")
    assert bus.publish(BOOK, "binance", "BTC-PERP", 1) == 1
    assert a.dirty and not b.dirty
    bus.unsubscribe(a)
    assert bus.publish(BOOK, "binance", "BTC-PERP", 2) == 0
    assert bus.subscriber_count() == 1
