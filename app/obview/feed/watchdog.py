"""The stale watchdog of a FeedSession's streams: silence, measured on the monotonic clock,
turns a stream STALE and then closes it; a snapshot that never comes is asked for again."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

from obview.model import FeedStatus

if TYPE_CHECKING:
    from obview.feed.session import FeedSession, _Stream


async def watch(session: FeedSession, st: _Stream) -> None:
    """Runs beside one connection of ``st``: STALE after ``stale_after`` s of silence (for the
    book stream, measured from the venue's own cadence where it has one), the connection closed
    after the grace on top of that (the stream then reconnects), and a snapshot asked for again
    when the book has been SYNCING for ``sync_timeout`` s."""
    default = session.opts.stale_after or st.spec.stale_after
    # a fixed stale time from the options overrides the measured one
    cadence = st.cadence if session.opts.stale_after is None and st is session.book_stream else None
    if cadence is not None:
        cadence.restart()
    stale_after = cadence.stale_after(default) if cadence is not None else default
    shortest = min(default, cadence.floor) if cadence is not None else default
    check = min(0.5, shortest / 4, session.opts.sync_timeout / 4)
    # Intervals run on the monotonic clock: the wall clock can be stepped (NTP, a VM
    # restored, a laptop resumed), and silence measured on it hid a dead feed for as long
    # as the step back, or cut a live one after a step forward. Frames carry wall stamps
    # (latency needs them), so a new one is placed by its wall age, kept within the
    # interval since the last look.
    unsynced_since = checked_at = heard_at = time.monotonic()
    heard_rx = st.last_rx
    # a quiet book on a connection that answers is the market, not a dead feed (see _probe)
    activity = st.activity if st is session.book_stream and cadence is None else None
    if activity is not None:
        activity.watching(heard_at)
    answered_at = probed_at = 0.0
    while True:
        await asyncio.sleep(check)
        now = time.monotonic()
        ws = st.ws
        if ws is not None and _unsent(ws) > session.opts.max_send_buffer:
            st.close_reason = f"venue not reading (over {session.opts.max_send_buffer / 2**20:g} MiB unsent)"
            ws.transport.abort()  # a close frame would only queue behind the rest
            return
        if st is session.book_stream:
            # a snapshot that never comes (lost, or the venue ignored the request) would
            # leave the book SYNCING forever while deltas keep the stream busy: ask again
            if session.pipeline.sync.synced:
                unsynced_since = now
            elif now - unsynced_since >= session.opts.sync_timeout and not session.repair.busy:
                unsynced_since = now
                session.repair.request(f"no snapshot for {session.opts.sync_timeout:g} s")
        if st.last_rx != heard_rx:
            heard_rx = st.last_rx
            heard_at = now - min(max(time.time() - heard_rx, 0.0), now - checked_at)
            if cadence is not None:
                cadence.changed(heard_at)
                stale_after = cadence.stale_after(default)
                session.market.stats.book_every = cadence.typical
            if activity is not None:
                activity.changed(heard_at)
        checked_at = now
        silent = now - heard_at
        if activity is not None and silent >= stale_after / 2 and st.ws is not None:
            # the book has been still a while: does the connection still answer? For as long
            # as the silence is ordinary for this book, an answer counts as data; past that
            # (a busy book gone still: a stuck stream) only the book's own messages do
            ordinary = activity.ordinary_silence(now, stale_after, session.opts.quiet_max)
            if silent < ordinary and now - max(answered_at, probed_at) >= stale_after / 2:
                probed_at = now
                if await _probe(st.ws, min(PROBE_TIMEOUT, stale_after / 2)):
                    answered_at = time.monotonic()
                now = time.monotonic()
                silent = now - heard_at
            if answered_at > heard_at:
                # silent as long as the connection has not answered; once the book's silence
                # is past the ordinary, STALE and the reconnect follow as for any silence
                silent = now - answered_at if silent < ordinary else silent - ordinary + stale_after
        # a busy book gone still while its connection answers: the stream is stuck
        what = "no book data" if answered_at > heard_at else "no data"
        why = f"{what} for {now - heard_at:.1f} s"
        if silent >= stale_after * (1 + session.opts.stale_grace):
            ws = st.ws
            if ws is not None:
                st.close_reason = why
                await ws.close(1000, "stale")
            return
        if silent >= stale_after and not st.stale:
            st.stale = True
            session._stream_state(st, FeedStatus.STALE, why)
            if session.recorder is not None and st.conn:
                session.recorder.stale(why, st.conn)
        elif st.stale and silent < stale_after:
            # its connection answered and the silence turned out ordinary for this book
            st.stale = False
            if st is session.book_stream:
                st.status, st.reason = FeedStatus.LIVE, ""
                if session.pipeline.sync.synced:
                    session.pipeline.set_state(FeedStatus.LIVE)
                session._publish_state()
            else:
                session._stream_state(st, FeedStatus.LIVE, "")
        elif st.stale:
            session._stream_state(st, FeedStatus.STALE, why)


#: the longest a probe of a quiet book's connection waits for its pong (s)
PROBE_TIMEOUT = 2.0


async def _probe(ws, timeout: float) -> bool:
    """Whether the connection answers a ping within ``timeout`` s (a WebSocket control ping:
    every venue's server answers it, whatever its own heartbeat)."""
    try:
        waiter = await ws.ping()
        await asyncio.wait_for(waiter, timeout)
    except (ConnectionClosed, TimeoutError, RuntimeError, OSError):
        return False
    return True


def _unsent(ws) -> int:
    try:
        return ws.transport.get_write_buffer_size()
    except (AttributeError, RuntimeError):
        return 0
