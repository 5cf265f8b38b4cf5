"""One test per feed fault, against the fault-injecting simulator (tests/faultserver.py): the
connection, handshake and load faults here, bad frames and sequencing in test_faults_data.py.

Each test asserts what the user sees: the FeedState transition and its reason, recovery to LIVE
with the server's book, bad frames counted and logged (never raised), reconnects and resyncs
backing off, and, checked continuously by ``Watch`` at every visible change and every few ms,
no moment where a gapped, crossed, empty, stale or wrong book is shown as LIVE.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from faultrig import STALE_AFTER, STALE_LIMIT, assert_backoff, rig
from obview.model import FeedStatus
from obview.venues.demo import DemoAdapter


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
        # the socket still answers pings (the server process is alive): the stream is stuck
        assert r.state.reason.startswith("no book data for ")
        assert STALE_AFTER * 0.8 <= stale_at <= STALE_LIMIT + 0.2, stale_at
        await r.until(lambda: r.state.status is FeedStatus.RECONNECTING)
        assert r.state.reason.startswith("no book data for ") and "; retry in " in r.state.reason
        await asyncio.sleep(1.5)  # still silent after reconnecting: STALE again, never LIVE
        assert r.state.status is not FeedStatus.LIVE
        r.server.resume()
        await r.live()
        await r.book_matches_server()
        r.assert_never_wrong_while_live()


async def test_a_stopped_venue_is_stale_counting_then_reconnecting_without_a_close_wait():
    """A venue process that stops (SIGSTOP) neither sends nor reads. STALE's "no data for N s"
    stood still for the 2 s the close handshake waited on it before RECONNECTING; the close
    now gives up on a peer that does not answer within a fraction of a second."""
    async with rig() as r:
        assert r.server.freeze() == 1
        t0 = time.monotonic()
        await r.until(lambda: r.state.status is FeedStatus.STALE)
        assert r.state.reason.startswith("no data for ")  # the socket does not answer either
        reasons = set()
        while r.state.status is FeedStatus.STALE:
            reasons.add(r.state.reason)
            await asyncio.sleep(0.05)
        reconnecting_at = time.monotonic() - t0
        # the state after STALE (the log's: the retry may already be under way when looked at)
        log = list(r.market.state_log)
        last_stale = max(i for i, s in enumerate(log) if s.status is FeedStatus.STALE)
        assert log[last_stale + 1].status is FeedStatus.RECONNECTING, log[last_stale:]
        assert reconnecting_at <= STALE_LIMIT + 0.8, reconnecting_at  # not + the 2 s close wait
        assert len(reasons) >= 3, reasons  # the count moved while STALE


async def test_a_suspended_process_is_not_a_silent_venue():
    """ctrl+z then fg (or a stalled loop): the built-in simulator stopped with the app, yet on
    fg every feed read STALE and reconnected. Time the process did not run is nobody's silence;
    a venue that is really gone still goes STALE after it."""
    async with rig() as r:
        states = []
        r.market.state_log.clear()
        time.sleep(2.6)  # the whole process stops (server, feed, watchdog) past the close limit
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            states.append(r.state.status)
            await asyncio.sleep(0.02)
        assert set(states) == {FeedStatus.LIVE}, list(r.market.state_log)[:3]
        assert len(r.server.attempts) == 1, r.server.attempts  # no reconnect
        assert not [s for s in r.market.state_log if s.status is not FeedStatus.LIVE]


async def test_a_venue_that_died_while_the_process_was_stopped_is_not_live_a_stale_time_more():
    """The stop is taken for ours only once the connection is heard from after it: a venue
    that died meanwhile read LIVE for a whole stale time after the resume (10-20 s live)."""
    async with rig(stale_after=4.0) as r:
        await asyncio.sleep(0.3)
        r.server.freeze()
        time.sleep(4.5)  # stopped past the stale time: the venue froze meanwhile
        t0 = time.monotonic()
        await r.until(lambda: r.state.status is not FeedStatus.LIVE, timeout=10.0)
        # the proof's 2 s (and a check), not the stale time's 4 after the resume
        assert time.monotonic() - t0 <= 3.2, time.monotonic() - t0


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


# -- handshake faults -----------------------------------------------------------------------------
@pytest.mark.parametrize("status", [429, 451, 503])
async def test_refused_handshake_backs_off_then_recovers(status):
    async with rig(start=False) as r:
        r.server.faults.refuse_handshake(status)
        r.task = r.session.start()
        t0 = time.monotonic()
        await r.until(
            lambda: r.state.status is FeedStatus.RECONNECTING and "HTTP" in r.state.reason
        )
        meaning = {429: "too many requests", 451: "not served in this location", 503: "venue unavailable: maintenance?"}[status]
        assert r.state.reason.startswith(f"handshake refused: HTTP {status} ({meaning}); retry in ")
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
        assert r.state.reason.startswith("handshake refused: HTTP 429 (too many requests); the venue asks to wait 1.0 s; retry in 1.0 s")
        await asyncio.sleep(1.6)
        attempts = r.server.attempts_between(t0)
        assert 2 <= len(attempts) <= 3, attempts
        assert all(b - a >= 0.95 for a, b in zip(attempts, attempts[1:], strict=False)), attempts
        r.server.faults.refuse_handshake(None)
        await r.live()
        r.assert_never_wrong_while_live()


async def test_the_user_cannot_cut_short_a_wait_the_venue_asked_for():
    # a rate limit's Retry-After is the venue's: pressing the venue's key does not shorten it,
    # and the key is not offered for it
    async with rig(start=False) as r:
        r.server.faults.refuse_handshake(429, retry_after="3")
        r.task = r.session.start()
        await r.until(lambda: "asks to wait 3.0 s; retry in 2" in r.state.reason)
        t0 = time.monotonic()
        r.server.faults.refuse_handshake(None)
        await asyncio.sleep(0.2)
        assert not r.session.can_retry_now() and not r.session.retry_now()
        logged = len(r.market.state_log)
        await asyncio.sleep(1.3)
        assert len(r.server.attempts_between(t0)) == 0  # still waiting, as asked
        # the countdown once a second (it woke every 50 ms, each tenth a new state logged)
        assert len(r.market.state_log) - logged <= 2, list(r.market.state_log)[logged:]
        await r.live()


async def test_a_short_wait_the_venue_asked_for_leaves_the_rest_of_a_long_backoff_cuttable():
    async with rig(start=False, backoff_base=20.0, backoff_max=20.0) as r:
        r.server.faults.refuse_handshake(429, retry_after="1")
        r.task = r.session.start()
        await r.until(lambda: "asks to wait 1.0 s; retry in" in r.state.reason)
        t0 = time.monotonic()
        r.server.faults.refuse_handshake(None)
        assert r.session.retry_now()  # honoured once the venue's second is over
        await asyncio.sleep(0.3)
        assert not r.server.attempts_between(t0)
        await r.live(timeout=3)


async def test_the_wait_before_a_retry_counts_down():
    # "retry in 4.1 s" stayed on screen, unchanged, for the whole wait
    import re

    async with rig(start=False) as r:
        r.server.faults.refuse_handshake(429, retry_after="3")
        r.task = r.session.start()
        await r.until(lambda: "retry in 1." in r.state.reason)
        waits = [
            float(m.group(1))
            for s in r.market.state_log
            if (m := re.search(r"asks to wait 3.0 s; retry in ([0-9.]+) s$", s.reason))
        ]
        assert waits[0] == 3.0 and len(waits) >= 3 and waits == sorted(waits, reverse=True), waits
        r.server.faults.refuse_handshake(None)
        await r.live()


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


def _sparse_history(r, share: float = 0.1, span: int = 100) -> None:
    """The book's habit so far: it changed in ``share`` of the last ``span`` seconds (an
    illiquid market), as the stream's Activity keeps it across connections."""
    act = r.session.book_stream.activity
    now = time.monotonic()
    act._secs.clear()
    act._since = float(int(now) - span + 1)  # watched since the first of those seconds
    n = int(span * share)
    for k in range(n):  # the last of them this very second
        act._secs.append(int(now) - int((n - 1 - k) / share))


async def test_a_quiet_book_whose_connection_answers_stays_live_within_its_habit():
    """An illiquid book (BitMEX SOLUSDT can go 20 s without a change) on a connection that
    answers pings is the market, not a dead feed: it was STALE after stale_after and its
    connection torn down at twice that, every quiet spell (and on BitMEX each reconnect
    spends the hourly connection allowance). A silence beyond the book's habit (quiet_max
    here) is still STALE, and then a reconnect."""
    async with rig(quiet_max=2.5) as r:
        _sparse_history(r)
        seen = set()
        r.server.pause()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:  # four times stale_after
            seen.add(r.state.status)
            await asyncio.sleep(0.01)
        assert seen == {FeedStatus.LIVE} and len(r.server.attempts) == 1
        await r.until(lambda: r.state.status is FeedStatus.STALE, timeout=3)
        assert time.monotonic() - t0 >= 2.4 and r.state.reason.startswith("no book data for 2.")
        await r.until(lambda: r.state.status is FeedStatus.RECONNECTING, timeout=3)
        r.server.resume()
        await r.live()
        await r.book_matches_server()


async def test_a_quiet_book_whose_connection_does_not_answer_is_stale_as_before(monkeypatch):
    from obview.feed import watchdog

    async def unanswered(ws, timeout):
        await asyncio.sleep(timeout)
        return False

    monkeypatch.setattr(watchdog, "_probe", unanswered)
    async with rig() as r:
        _sparse_history(r)
        r.server.pause()
        t0 = time.monotonic()
        await r.until(lambda: r.state.status is FeedStatus.STALE)
        assert time.monotonic() - t0 <= STALE_LIMIT + 0.3
        assert r.state.reason.startswith("no data for ")


async def test_a_busy_book_gone_still_is_stale_though_its_connection_answers():
    """A book that changed in most seconds and stops while pongs still come is a stuck
    stream (a venue's channel that hangs on a live socket): STALE at stale_after."""
    async with rig(quiet_max=60.0) as r:
        _sparse_history(r, share=1.0)
        r.server.pause()
        t0 = time.monotonic()
        await r.until(lambda: r.state.status is FeedStatus.STALE)
        assert time.monotonic() - t0 <= STALE_LIMIT + 0.3
        assert r.state.reason.startswith("no book data for ")


async def test_a_busy_book_gone_still_is_stale_in_seconds_not_the_venues_fixed_time():
    """A book that changed in every second of the last minutes and stops is wrong after a few
    seconds: with a venue's fixed 10 s it read LIVE, frozen, for 10 s (the compare view took
    its touch as the best bid meanwhile)."""
    async with rig(stale_after=10.0) as r:
        _sparse_history(r, share=1.0)
        r.server.pause()
        t0 = time.monotonic()
        await r.until(lambda: r.state.status is FeedStatus.STALE, timeout=9)
        assert 4.5 <= time.monotonic() - t0 <= 6.5
        live_before = sum(c.live for c in r.market.heatmap.columns)
        r.server.resume()
        await r.live()
        assert len(r.server.attempts) == 1  # back on the same connection, no reconnect
        # and its sequence shows nothing was missed: the silence drew the right book, kept
        assert sum(c.live for c in r.market.heatmap.columns) >= live_before


async def test_a_book_quiet_from_the_start_on_an_answering_connection_stays_live():
    """With no habit learnt yet, a book still from its first snapshot went STALE at the
    busy floor and reconnected every stale time plus grace, forever: each close started it
    over with nothing learnt."""
    async with rig(stale_after=2.0, quiet_max=60.0, start=False) as r:
        r.session.book_stream.activity.min_span = 1.0
        r.server.set_rate(0)  # a snapshot, then nothing; pings still answered
        r.task = r.session.start()
        await r.live()
        seen = set()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 6.0:  # three stale times
            seen.add(r.state.status)
            await asyncio.sleep(0.02)
        assert seen == {FeedStatus.LIVE} and len(r.server.attempts) == 1


async def test_a_book_frozen_from_its_first_snapshot_while_trades_print_through_it_is_stale():
    """The book's deltas never came after its snapshot while the trades flowed: judged a quiet
    book from the start on an answering connection, it read LIVE for quiet_max (300 s), the
    tape printing sells below its best bid (and --compare showing a cross against it)."""
    async with rig(stale_after=2.0, quiet_max=60.0, start=False) as r:
        r.session.book_stream.activity.min_span = 1.0  # as a quiet book from the start is told
        r.server.faults.drop_next("delta", 10**9)  # the snapshot, then trades only
        r.task = r.session.start()
        await r.live()
        t0 = time.monotonic()
        await r.until(lambda: r.state.status is FeedStatus.STALE, timeout=8)
        assert "trades print through the book" in r.state.reason, r.state
        stats = r.market.stats
        assert stats.through_at and stats.through_at > stats.last_book_at
        assert time.monotonic() - t0 < 7.0
        # a stale time on: reconnected, a new snapshot (and STALE again, the deltas still gone)
        await r.until(lambda: len(r.server.attempts) >= 2, timeout=10)


async def test_a_live_book_with_trades_at_its_touch_stays_live():
    # the same rule on a sound feed: trades at the touch, the book moving with them
    async with rig(stale_after=2.0, quiet_max=60.0) as r:
        seen = set()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4.0:
            seen.add(r.state.status)
            await asyncio.sleep(0.02)
        assert seen == {FeedStatus.LIVE} and len(r.server.attempts) == 1
        assert r.market.stats.trades_seen > 20


async def test_a_silence_that_ends_in_a_stale_close_leaves_gaps_in_the_heatmap():
    async with rig() as r:
        await r.until(lambda: len(r.market.heatmap.columns) > 8)
        r.server.pause()
        await r.until(lambda: r.state.status is FeedStatus.RECONNECTING)
        stopped = r.market.stats.last_book_at
        after = [c for c in r.market.heatmap.columns if c.t > stopped]
        assert after and not any(c.live for c in after)
        assert any(c.live for c in r.market.heatmap.columns if c.t <= stopped)


async def test_a_busy_book_frozen_before_its_habit_is_known_is_stale_at_the_stale_time():
    """A book that changed many times, then froze before min_span was watched, was judged by
    the share over its own silence: a share that fell as fast as the silence grew, LIVE for
    up to quiet_max, on every reconnect."""
    async with rig(stale_after=2.0, quiet_max=30.0, start=False) as r:
        r.session.book_stream.activity.min_span = 3.0
        r.task = r.session.start()
        await r.live()
        await asyncio.sleep(1.5)  # changes, many a second, for less than min_span
        r.server.pause()
        t0 = time.monotonic()
        await r.until(lambda: r.state.status is FeedStatus.STALE, timeout=6)
        assert time.monotonic() - t0 <= 2.0 + 0.8


async def test_a_busy_book_frozen_in_its_first_seconds_is_stale_before_the_venues_time():
    """A feed a few seconds old (just switched to, or the compare view just opened) whose busy
    book froze read LIVE for the venue's whole stale time, 10 to 20 s: its habit is told only
    after 10 s watched. Its first seconds now shorten that (never lengthen it)."""
    async with rig(stale_after=15.0) as r:
        await r.live()
        await asyncio.sleep(4.5)  # a change in every second so far (3 s of them at least)
        r.server.pause()
        t0 = time.monotonic()
        await r.until(lambda: r.state.status is FeedStatus.STALE, timeout=14)
        assert 4.5 <= time.monotonic() - t0 <= 9.5, time.monotonic() - t0  # ~7 s, not 15
        assert r.state.reason.startswith("no ")


async def test_a_loop_late_again_and_again_does_not_keep_a_dead_feed_live():
    """Each late check re-based the silence: a loop late by over 2 s at every check kept a dead
    feed LIVE until the socket's own keepalive gave up (78 s). A stop while the last one is not
    yet shown to be ours counts as silence."""
    async with rig(stale_after=4.0) as r:
        await asyncio.sleep(0.3)
        r.server.freeze()
        t0 = time.monotonic()
        while r.state.status is FeedStatus.LIVE and time.monotonic() - t0 < 20:
            time.sleep(2.6)  # the loop stalls past every check
            await asyncio.sleep(0.2)
        assert r.state.status is not FeedStatus.LIVE
        assert time.monotonic() - t0 <= 4.0 + 2 * 2.8, time.monotonic() - t0
