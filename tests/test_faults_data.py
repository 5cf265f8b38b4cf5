"""Feed faults in the data: bad frames (malformed, binary, unknown, wrong shape, truncated, over
the size limit) and sequencing (skipped, duplicated, reordered, persistent gaps, a crossed book,
a wrong checksum). As in test_faults.py, each test asserts what the user sees and that no wrong
book is ever shown as LIVE."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from faultrig import STALE_LIMIT, Rig, options, rig
from faultserver import Watch, WatchedMarket, start_fault_server
from obview.feed.session import FeedSession
from obview.model import FeedStatus


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



# -- bad frames -----------------------------------------------------------------------------------
async def _bad_frame_case(r: Rig, log, send, expect: str) -> None:
    resyncs, frames = r.market.resyncs, r.market.stats.bad_frames
    send()
    await r.until(lambda: r.market.stats.bad_frames == frames + 1)
    assert expect in r.market.stats.last_error
    assert 0 <= time.time() - r.market.stats.last_error_at < 5  # the stats bar shows it a while
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
            '{"type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1,"bids":7,"asks":[]}'
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




async def test_a_stream_that_sends_its_whole_depth_in_one_frame_has_a_larger_cap():
    """BitMEX's partial (and Deribit's, Kraken's and dYdX's first book) is the venue's whole
    depth in one frame; past the session's cap it closed the connection on every subscribe."""
    import dataclasses

    from obview.venues.base import FULL_DEPTH_MAX_SIZE
    from obview.venues.bitmex import BitmexAdapter
    from obview.venues.demo import DemoAdapter

    assert all(
        s.max_size == FULL_DEPTH_MAX_SIZE for s in BitmexAdapter("BTC-PERP").streams() if s.book
    )

    class WholeDepth(DemoAdapter):
        def streams(self):
            return [dataclasses.replace(s, max_size=1024 * 1024) for s in super().streams()]

    async with rig(WholeDepth, max_size=64 * 1024) as r:
        r.server.oversize(200_000)  # over the session's cap, under the stream's
        await asyncio.sleep(0.5)
        assert r.state.status is FeedStatus.LIVE and len(r.server.attempts) == 1
