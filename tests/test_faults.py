"""One test per feed fault, against the fault-injecting simulator (tests/faultserver.py).

Each test asserts what the user sees: the FeedState transition and its reason, recovery to LIVE
with the server's book, bad frames counted and logged (never raised), reconnects and resyncs
backing off, and, checked continuously by ``Watch`` at every visible change and every few ms,
no moment where a gapped, crossed, empty, stale or wrong book is shown as LIVE.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

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
async def rig(adapter_cls=DemoAdapter, rate: float = 60.0, start: bool = True, **opts):
    server = await start_fault_server(rate=rate, seed=7)
    adapter = adapter_cls("BTC-PERP", endpoint=server.url("/demo"))
    market = WatchedMarket(adapter.default_instrument())
    session = FeedSession(adapter, market, options=options(**opts))
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


@pytest.fixture
def feedlog(caplog):
    """Capture obview.feed records even if another test turned propagation off."""
    logger = logging.getLogger("obview.feed")
    logger.addHandler(caplog.handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(old)


def min_gaps(n: int, base: float = BASE, cap: float = CAP) -> list[float]:
    """Lower bounds of the waits between attempts: jitter keeps at least half the backoff."""
    return [0.5 * min(cap, base * 2**k) for k in range(n)]


def assert_backoff(attempts: list[float], base: float = BASE, cap: float = CAP) -> None:
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    for i, (gap, low) in enumerate(zip(gaps, min_gaps(len(gaps), base, cap), strict=True)):
        assert gap >= low * 0.9, (
            f"attempt {i + 2} came {gap:.3f} s after the previous, backoff {low:.3f} s"
        )


# -- connection faults ----------------------------------------------------------------------------
async def test_clean_close_mid_stream_reconnects_to_live_with_server_book():
    async with rig() as r:
        await r.until(lambda: r.market.stats.frames > 20)
        await r.server.kick()
        await r.until(lambda: r.state.status is FeedStatus.RECONNECTING)
        assert r.state.reason.startswith("closed by server (1001: kicked); retry in ")
        assert r.market.book.empty  # the old book is not kept on screen as if current
        await r.live()
        assert len(r.server.attempts) == 2
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_tcp_reset_mid_stream_reconnects_to_live_with_server_book():
    async with rig() as r:
        await r.until(lambda: r.market.stats.frames > 20)
        assert r.server.reset() == 1
        await r.until(lambda: r.state.status is FeedStatus.RECONNECTING)
        assert r.state.reason.startswith("connection lost (no close frame); retry in ")
        await r.live()
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_silent_open_socket_goes_stale_then_reconnects_and_recovers():
    async with rig() as r:
        r.server.pause()
        t0 = time.monotonic()
        await r.until(lambda: r.state.status is FeedStatus.STALE)
        stale_at = time.monotonic() - t0
        assert r.state.reason.startswith("no data for ")
        assert STALE_AFTER * 0.8 <= stale_at <= STALE_LIMIT + 0.2, stale_at
        await r.until(lambda: r.state.status is FeedStatus.RECONNECTING)
        assert r.state.reason.startswith("no data for ") and "; retry in " in r.state.reason
        await asyncio.sleep(1.5)  # still silent after reconnecting: STALE again, never LIVE
        assert r.state.status is not FeedStatus.LIVE
        r.server.resume()
        await r.live()
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_flapping_server_gets_backoff_not_a_reconnect_storm():
    async with rig() as r:
        t0 = time.monotonic()
        end = t0 + 2.0
        while time.monotonic() < end:  # every connection is cut right after it opens
            await r.server.kick()
            await asyncio.sleep(0.01)
        attempts = r.server.attempts_between(t0)
        # 2 s of base 0.05 doubling to a 0.4 cap, jitter >= 0.5: at most ~12; a storm is hundreds
        assert 3 <= len(attempts) <= 14, len(attempts)
        assert_backoff(attempts)
        await r.live()
        r.assert_never_wrong_while_live()


# -- bad frames -----------------------------------------------------------------------------------
async def _bad_frame_case(r: Rig, log, send, expect: str) -> None:
    resyncs, frames = r.market.resyncs, r.market.stats.bad_frames
    send()
    await r.until(lambda: r.market.stats.bad_frames == frames + 1)
    assert expect in r.market.stats.last_error
    assert any("bad frame on demo" in m and expect in m for m in log.messages), log.messages
    assert not [rec for rec in log.records if rec.exc_info]  # logged as a line, not a traceback
    await asyncio.sleep(0.2)
    assert r.market.live and r.market.resyncs == resyncs  # nothing else disturbed
    assert len(r.server.attempts) == 1
    await r.book_matches_server()
    r.assert_never_wrong_while_live()


async def test_malformed_json_is_counted_and_logged_not_raised(feedlog):
    async with rig() as r:
        await _bad_frame_case(
            r, feedlog, lambda: r.server.inject('{"type":"delta","seq":'), "malformed JSON"
        )


async def test_binary_frame_is_counted_and_logged_not_raised(feedlog):
    async with rig() as r:
        await _bad_frame_case(
            r, feedlog, lambda: r.server.send_binary(b"\x00\xff\xfe\x80binary"), "malformed JSON"
        )


async def test_unknown_message_type_is_counted_and_logged_not_raised(feedlog):
    async with rig() as r:
        frame = '{"type":"mystery","symbol":"BTC-PERP","seq":1}'
        await _bad_frame_case(
            r, feedlog, lambda: r.server.inject(frame), "unknown message type 'mystery'"
        )


async def test_wrong_shape_delta_is_counted_and_logged_not_raised(feedlog):
    async with rig() as r:
        frame = (
            '{"type":"delta","symbol":"BTC-PERP","seq":"x","prev_seq":1,"ts":1,"bids":7,"asks":[]}'
        )
        await _bad_frame_case(r, feedlog, lambda: r.server.inject(frame), "levels must be a list")


async def test_truncated_delta_is_counted_then_the_lost_seq_resyncs(feedlog):
    async with rig() as r:
        r.server.truncate_next()
        await r.until(lambda: r.market.stats.bad_frames == 1 and r.market.resyncs == 1)
        assert "malformed JSON" in r.market.stats.last_error or "seq gap" in r.state.reason
        assert any("bad frame on demo: malformed JSON" in m for m in feedlog.messages)
        await r.live()
        assert r.transitions(FeedStatus.SYNCING, "seq gap ")
        assert len(r.server.attempts) == 1  # resynced on the same connection
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_frame_over_size_limit_closes_and_reconnects():
    async with rig(max_size=64 * 1024) as r:
        r.server.oversize(200_000)
        await r.until(lambda: r.state.status is FeedStatus.RECONNECTING)
        assert r.state.reason.startswith("frame over size limit; retry in ")
        await r.live()
        assert len(r.server.attempts) == 2
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


# -- sequencing faults ----------------------------------------------------------------------------
async def test_skipped_sequence_number_resyncs_on_same_connection():
    async with rig() as r:
        r.server.faults.drop_next("delta")
        await r.until(lambda: r.market.resyncs == 1)
        await r.live()
        gap = r.transitions(FeedStatus.SYNCING, "seq gap ")
        assert gap and "\u2192" in gap[0].reason
        assert r.market.stats.gaps == 1 and len(r.server.attempts) == 1
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_duplicated_sequence_numbers_are_ignored():
    async with rig() as r:
        r.server.faults.duplicate_next("delta", 5)
        await r.until(lambda: r.server.faults.duplicated == 5)
        await r.book_matches_server()
        assert r.market.resyncs == 0 and r.market.stats.gaps == 0
        assert [s.status for s in r.market.state_log].count(FeedStatus.LIVE) == 1  # never left LIVE
        r.assert_never_wrong_while_live()


async def test_reordered_sequence_numbers_resync_and_the_late_delta_is_dropped():
    async with rig() as r:
        r.server.reorder_next()
        await r.until(lambda: r.market.resyncs == 1)
        await r.live()
        assert r.transitions(FeedStatus.SYNCING, "seq gap ")
        await asyncio.sleep(0.2)
        assert r.market.resyncs == 1  # the late delta did not cause a second resync
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_persistent_gaps_resync_with_backoff_not_a_storm():
    async with rig() as r:
        resync_frames = []
        orig = r.session._send

        async def spy(st, frame):
            if '"resync"' in frame:
                resync_frames.append(time.monotonic())
            await orig(st, frame)

        r.session._send = spy
        end = time.monotonic() + 2.0
        while time.monotonic() < end:  # a venue that keeps losing deltas
            r.server.faults.drop_next("delta")
            await asyncio.sleep(0.03)
        # resync_min 0.05 doubling to 0.8: about 6 in 2 s; one per gap would be ~60
        assert 2 <= len(resync_frames) <= 9, len(resync_frames)
        gaps = [b - a for a, b in zip(resync_frames, resync_frames[1:], strict=False)]
        assert all(g >= 0.04 for g in gaps), gaps
        await r.live()
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_crossed_book_is_never_shown_live_and_resyncs():
    async with rig() as r:
        r.server.cross_next()
        await r.until(lambda: r.market.resyncs == 1)
        crossed = r.transitions(FeedStatus.SYNCING, "crossed by ")
        assert crossed and crossed[0].reason.endswith(" bp")
        await r.live()
        assert r.server.crossed_sent == 1
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_wrong_checksum_resyncs_okx_dialect():
    from obview.venues.okx import OkxAdapter

    server = await start_fault_server(rate=60.0, seed=7)
    adapter = OkxAdapter(
        "BTC-PERP", endpoint=server.url("/ws/v5/public"), rest_endpoint=server.http_url()
    )
    market = WatchedMarket(adapter.default_instrument())
    session = FeedSession(adapter, market, options=options())
    watch = Watch(market, session, stale_limit=STALE_LIMIT).start()  # contracts: no book compare
    task = session.start()
    try:
        async with asyncio.timeout(8):
            while not market.live:
                await asyncio.sleep(0.005)
            sync = session.pipeline.sync
            while sync.checksums_verified < 5:
                await asyncio.sleep(0.005)
            server.faults.corrupt_next("delta")
            while market.stats.checksum_errors < 1 or not market.live:
                await asyncio.sleep(0.005)
            verified = sync.checksums_verified
            while sync.checksums_verified < verified + 5:  # checksums agree again after resync
                await asyncio.sleep(0.005)
        assert server.faults.corrupted == 1
        assert any(
            s.status is FeedStatus.SYNCING and s.reason == "checksum mismatch"
            for s in market.state_log
        )
        assert market.resyncs == 1 and market.stats.gaps == 0
        assert watch.violations == [] and watch.live_checks > 0
    finally:
        await watch.stop()
        await session.stop()
        task.cancel()
        await server.close()


# -- handshake faults -----------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 503])
async def test_refused_handshake_backs_off_then_recovers(status):
    async with rig(start=False) as r:
        r.server.faults.refuse_handshake(status)
        r.task = r.session.start()
        t0 = time.monotonic()
        await r.until(
            lambda: r.state.status is FeedStatus.RECONNECTING and "HTTP" in r.state.reason
        )
        assert r.state.reason.startswith(f"handshake refused: HTTP {status}; retry in ")
        await asyncio.sleep(1.5)
        attempts = r.server.attempts_between(t0)
        assert 3 <= len(attempts) <= 12, len(attempts)
        assert_backoff(attempts)
        assert r.market.state.status is not FeedStatus.LIVE
        r.server.faults.refuse_handshake(None)
        await r.live()
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_refused_handshake_waits_as_long_as_the_venue_asks():
    # backoff here starts at 0.05 s; the venue's Retry-After (1 s) wins
    async with rig(start=False) as r:
        r.server.faults.refuse_handshake(429, retry_after="1")
        r.task = r.session.start()
        t0 = time.monotonic()
        await r.until(lambda: "asks to wait" in r.state.reason)
        assert r.state.reason.startswith("handshake refused: HTTP 429; the venue asks to wait 1.0 s; retry in 1.0 s")
        await asyncio.sleep(1.6)
        attempts = r.server.attempts_between(t0)
        assert 2 <= len(attempts) <= 3, attempts
        assert all(b - a >= 0.95 for a, b in zip(attempts, attempts[1:], strict=False)), attempts
        r.server.faults.refuse_handshake(None)
        await r.live()
        r.assert_never_wrong_while_live()


async def test_upgrade_never_answered_times_out_and_backs_off():
    async with rig(start=False, connect_timeout=0.3) as r:
        r.server.hang_upgrades = True
        r.task = r.session.start()
        t0 = time.monotonic()
        await r.until(
            lambda: r.state.status is FeedStatus.RECONNECTING and "timeout" in r.state.reason
        )
        assert r.state.reason.startswith("connect timeout after 0.3 s; retry in ")
        await asyncio.sleep(1.2)
        attempts = r.server.attempts_between(t0)
        # each attempt costs the 0.3 s timeout plus the backoff
        assert 2 <= len(attempts) <= 5, len(attempts)
        assert all(b - a >= 0.3 for a, b in zip(attempts, attempts[1:], strict=False))
        r.server.hang_upgrades = False
        await r.live()
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


class FastPingDemo(DemoAdapter):
    """The demo adapter pinging every 0.1 s (the real one pings every 10 s)."""

    def streams(self):
        specs = super().streams()
        for s in specs:
            s.ping_interval = 0.1
        return specs


async def test_late_pongs_do_not_disturb_a_flowing_feed():
    async with rig(adapter_cls=FastPingDemo) as r:
        r.server.pong_delay = 0.7
        await asyncio.sleep(1.5)
        assert r.server.pings >= 8
        assert r.market.live and r.market.resyncs == 0 and r.market.stats.bad_frames == 0
        assert len(r.server.attempts) == 1
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


# -- load -----------------------------------------------------------------------------------------
async def test_burst_of_100k_deltas_keeps_book_whole_and_loop_responsive():
    async with rig(rate=20.0) as r:
        frames0 = r.market.stats.frames
        seconds = await r.server.burst(100_000)
        await r.server.drained()
        await r.book_matches_server()
        assert r.market.stats.frames - frames0 >= 100_000
        assert r.market.resyncs == 0 and r.market.stats.gaps == 0 and r.market.stats.bad_frames == 0
        assert len(r.server.attempts) == 1 and r.server.slow_closed == 0
        # the session yields every few frames, so the loop (and a UI on it) keeps running
        assert r.watch.max_gap < 0.5, r.watch.max_gap
        assert r.watch.compared > 1000
        r.assert_never_wrong_while_live()
        print(
            f"burst: 100k deltas in {seconds:.1f} s, max loop stall {r.watch.max_gap * 1000:.0f} ms"
        )


async def test_brief_silence_is_stale_then_live_again_on_the_same_connection():
    async with rig() as r:
        r.server.pause()
        await r.until(lambda: r.state.status is FeedStatus.STALE)
        r.server.resume()  # before stale_after * (1 + grace): no reconnect needed
        await r.live()
        assert len(r.server.attempts) == 1 and r.market.resyncs == 0
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_lost_resync_snapshot_is_requested_again():
    async with rig(sync_timeout=0.5) as r:
        r.server.faults.drop_next("snapshot")  # the venue never answers the first resync
        r.server.faults.drop_next("delta")
        await r.until(lambda: r.market.resyncs == 1)
        await r.live(timeout=5)
        assert r.server.faults.dropped == 2 and len(r.server.attempts) == 1
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_lost_initial_snapshot_is_requested_again():
    async with rig(start=False, sync_timeout=0.5) as r:
        r.server.faults.drop_next("snapshot")
        r.task = r.session.start()
        await r.live(timeout=5)
        assert r.server.faults.dropped == 1
        await r.book_matches_server()
        r.assert_never_wrong_while_live()
