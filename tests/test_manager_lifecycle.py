"""Feeds as the user moves between venues: a closed feed never reads LIVE, the compare view
holds feeds once and as they are, closes happen together, and a refused switch leaves the one
in flight alone."""

from __future__ import annotations

import asyncio

from e2e import fast_options, until
from obview.feed.manager import FeedManager
from obview.feed.session import FeedSession
from obview.market import Market
from obview.model import FeedStatus, Instrument
from obview.ui.app import ObviewApp
from obview.ui.compare import CompareScreen
from obview.ui.synthetic import StaticManager


async def test_a_feed_the_manager_closed_never_reads_live():
    manager = FeedManager(venues=["demo"], warm_limit=1, options=fast_options())
    try:
        async with asyncio.timeout(15):
            btc = await manager.open("demo", "BTC-PERP")
            await until(lambda: btc.live)
            await manager.open("demo", "ETH-PERP")  # past the warm limit: BTC's feed is closed
            assert manager.get("demo", "BTC-PERP") is None
            assert btc.state.status is FeedStatus.FAILED and btc.state.reason == "feed closed"
    finally:
        await manager.close()


async def test_a_feed_knows_whether_its_venue_sends_the_whole_book():
    # past a whole book's deepest level nothing rests; past a top-N book nothing is known
    manager = FeedManager(venues=["demo", "bybit"], endpoints={"bybit": "ws:///x"}, options=fast_options())
    try:
        async with asyncio.timeout(15):
            demo = await manager.open("demo", "BTC-PERP")
            bybit = await manager.open("bybit", "BTC-PERP")
            assert demo.whole_book and not bybit.whole_book
    finally:
        await manager.close()


async def test_the_compare_view_takes_a_failed_feed_as_it_is():
    manager = FeedManager(
        venues=["demo", "okx"], endpoints={"okx": "ws:///x"}, warm_limit=2, options=fast_options()
    )
    try:
        async with asyncio.timeout(15):
            await manager.open("demo", "BTC-PERP")
            okx = await manager.open("okx", "BTC-PERP")  # viewed last, and it fails
            await until(lambda: okx.state.status is FeedStatus.FAILED)
            order = list(manager._open)
            # the view shows the market on screen, FAILED; it does not start another one that
            # nothing shows and that would be the first closed when the view goes
            assert await manager.open("okx", "BTC-PERP", pin=True) is okx
            assert list(manager._open) == order
            await manager.unpin()
            assert manager.get("okx", "BTC-PERP") is okx
            # the venue's own key still retries it
            again = await manager.open("okx", "BTC-PERP")
            assert again is not okx
    finally:
        await manager.close()


async def test_feeds_beyond_the_warm_limit_close_together_outside_the_lock(monkeypatch):
    manager = FeedManager(venues=["demo"], warm_limit=1, options=fast_options())
    stop = FeedSession.stop
    running, most, locked = 0, 0, []

    async def slow_stop(self):
        nonlocal running, most
        running += 1
        most = max(most, running)
        locked.append(manager._lock.locked())
        await asyncio.sleep(0.2)  # a venue's close handshake
        running -= 1
        await stop(self)

    monkeypatch.setattr(FeedSession, "stop", slow_stop)
    try:
        async with asyncio.timeout(15):
            await manager.open("demo", "BTC-PERP")
            for sym in ("ETH-PERP", "SOL-PERP"):
                await manager.open("demo", sym, pin=True)
            await manager.unpin()
            assert list(manager._open) == [("demo", "BTC-PERP")]
            assert most == 2 and locked == [False, False]
    finally:
        await manager.close()


async def test_a_feed_opening_while_the_manager_closes_is_closed_too(monkeypatch):
    manager = FeedManager(venues=["demo"], warm_limit=2, options=fast_options())
    make = FeedManager._make_adapter

    async def slow_make(self, venue, symbol):
        await asyncio.sleep(0.2)  # a cold venue's instrument facts
        return await make(self, venue, symbol)

    monkeypatch.setattr(FeedManager, "_make_adapter", slow_make)
    async with asyncio.timeout(15):
        opening = asyncio.ensure_future(manager.open("demo", "BTC-PERP"))
        await asyncio.sleep(0.05)
        await manager.close()
        # the open in flight finished first, and its feed was closed with the rest
        market = await opening
        assert market.state.status is FeedStatus.FAILED and market.state.reason == "feed closed"
        assert manager._open == {} and manager.demo_server is None
        try:
            await manager.open("demo", "ETH-PERP")
        except RuntimeError as e:
            assert "closed" in str(e)
        else:
            raise AssertionError("a closed manager opened a feed")


def _market(venue: str) -> Market:
    m = Market(Instrument(venue, "BTC-PERP", "X", 0.5, 0.001, "base", 1.0, "BTC", "USD"))
    m.book.apply_snapshot([(100_000.0, 1.0)], [(100_000.5, 1.0)])
    m.set_state(FeedStatus.LIVE)
    return m


class SlowManager(StaticManager):
    """Opens take a while, as a cold venue's connect does."""

    async def open(self, venue: str, symbol: str, *, pin: bool = False) -> Market:
        if not pin:
            await asyncio.sleep(0.3)
        return await super().open(venue, symbol, pin=pin)


async def test_a_refused_symbol_leaves_the_switch_in_flight_alone():
    demo, binance = _market("demo"), _market("binance")
    mgr = SlowManager({("demo", "BTC-PERP"): demo, ("binance", "BTC-PERP"): binance}, ["demo", "binance"])
    app = ObviewApp(mgr, "demo", "BTC-PERP")
    async with asyncio.timeout(20), app.run_test(size=(120, 36)) as pilot:
        await until(lambda: app.market is demo)
        await pilot.press("2")  # binance: on its way
        await pilot.pause(0.05)
        app._switch("binance", "DOGE-PERP")  # refused at once, with one line
        assert app.wanted == ("binance", "BTC-PERP")
        await until(lambda: app.market is binance)
        assert app.venue == "binance" and app.symbol == "BTC-PERP"


async def test_the_current_venues_key_brings_a_feed_back_when_none_is_coming():
    demo = _market("demo")
    mgr = StaticManager({("demo", "BTC-PERP"): demo}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP")
    async with asyncio.timeout(20), app.run_test(size=(120, 36)) as pilot:
        await until(lambda: app.market is demo)
        app.market = None  # no feed, no error, and no switch under way to bring one
        await pilot.press("1")
        await until(lambda: app.market is demo)


async def test_one_compare_view_at_a_time_and_no_switch_underneath_it():
    mgr = StaticManager({("demo", "BTC-PERP"): _market("demo"), ("binance", "BTC-PERP"): _market("binance")})
    app = ObviewApp(mgr, "demo", "BTC-PERP")
    async with asyncio.timeout(20), app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await pilot.press("x")
        await pilot.pause(0.2)
        app.action_compare()  # as the command palette, which works over the view, would
        await pilot.pause(0.2)
        assert sum(isinstance(s, CompareScreen) for s in app.screen_stack) == 1
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert not any(t.startswith(("Venue:", "Symbol:", "Compare")) for t in titles)
        assert any(t.startswith("Theme:") for t in titles)
        await pilot.press("escape")
        await pilot.pause(0.2)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert any(t.startswith("Symbol:") for t in titles)


def _coin(symbol: str, mid: float, tick: float) -> Market:
    m = Market(Instrument("demo", symbol, "X", tick, 0.001, "base", 1.0, symbol[:3], "USD"))
    m.book.apply_snapshot(
        [(mid - tick * (1 + i), 1.0 + i) for i in range(40)],
        [(mid + tick * i, 1.0 + i) for i in range(40)],
    )
    m.set_state(FeedStatus.LIVE)
    return m


async def test_a_grouping_chosen_on_one_symbol_does_not_follow_to_another():
    btc, sol = _coin("BTC-PERP", 97_000.0, 0.1), _coin("SOL-PERP", 180.0, 0.001)
    sol2 = _coin("SOL-PERP", 180.0, 0.001)
    markets = {("demo", "BTC-PERP"): btc, ("demo", "SOL-PERP"): sol, ("binance", "SOL-PERP"): sol2}
    mgr = StaticManager(markets, ["demo", "binance"])
    app = ObviewApp(mgr, "demo", "BTC-PERP")
    async with asyncio.timeout(20), app.run_test(size=(160, 48)) as pilot:
        await until(lambda: app.market is btc and app.step is not None)
        for _ in range(4):
            await pilot.press("minus")  # down to BTC's finest steps: 0.1 is also a SOL step
        while app.step < 0.5:
            await pilot.press("plus")
        await pilot.pause(0.1)
        assert not app.step_auto and app.step == 0.5  # ~0.3% of SOL's price a row
        app._switch("demo", "SOL-PERP")
        await until(lambda: app.market is sol)
        await pilot.pause(0.1)
        assert app.step_auto and app.step < 0.5
        # the same symbol on another venue keeps the grouping chosen for it
        await pilot.press("plus")
        chosen = app.step
        app._switch("binance", "SOL-PERP")
        await until(lambda: app.market is sol2)
        await pilot.pause(0.1)
        assert app.step == chosen and not app.step_auto


async def test_an_endpoint_no_connection_can_use_fails_once_instead_of_retrying():
    # a port past 65535 raised inside every connect and was retried as RECONNECTING for ever
    manager = FeedManager(
        venues=["okx", "bybit"],
        endpoints={"okx": "ws:///x", "bybit": "ws://127.0.0.1:99999/v5/public/linear"},
        options=fast_options(),
    )
    try:
        async with asyncio.timeout(10):
            for venue in ("okx", "bybit"):
                m = await manager.open(venue, "BTC-PERP")
                await until(lambda m=m: m.state.status is FeedStatus.FAILED)
                assert m.state.reason.startswith("bad URL"), m.state.reason
                assert manager.session(venue, "BTC-PERP").connect_attempts <= 1
    finally:
        await manager.close()
