"""The stale watchdog of a FeedSession's streams: silence, measured on the monotonic clock,
turns a stream STALE and then closes it; a snapshot that never comes is asked for again."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

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
    while True:
        await asyncio.sleep(check)
        now = time.monotonic()
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
        checked_at = now
        silent = now - heard_at
        if silent >= stale_after * (1 + session.opts.stale_grace):
            ws = st.ws
            if ws is not None:
                st.close_reason = f"no data for {silent:.1f} s"
                await ws.close(1000, "stale")
            return
        if silent >= stale_after and not st.stale:
            st.stale = True
            session._stream_state(st, FeedStatus.STALE, f"no data for {silent:.1f} s")
            if session.recorder is not None and st.conn:
                session.recorder.stale(f"no data for {silent:.1f} s", st.conn)
        elif st.stale:
            session._stream_state(st, FeedStatus.STALE, f"no data for {silent:.1f} s")
