"""BookRepair: when and how a FeedSession rebuilds a broken book.

A gap, a checksum mismatch, a crossed book or a snapshot that never came all end here as a
request. Requests back off (consecutive ones wait 0.5 s doubling to 30 s, so a broken feed cannot
cause a storm), a venue's Retry-After is obeyed (asking Binance again sooner after a 429 gets the
IP banned for minutes to days), and the repair follows the adapter's ``ResyncMode``: a REST
snapshot on the same socket, a resubscribe, or a reconnect. Venues whose websocket snapshot may
not come (OKX announced its removal) also get a REST fallback.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import time
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

from obview.feed.http import HttpError
from obview.model import FeedStatus
from obview.venues.base import ResyncMode

if TYPE_CHECKING:
    from obview.feed.session import FeedSession, _Stream


class BookRepair:
    """One per FeedSession; at most one repair runs at a time (``task``)."""

    def __init__(self, session: FeedSession) -> None:
        self.session = session
        self.task: asyncio.Task | None = None
        self._delay = session.opts.resync_min_interval
        self._last_at = 0.0
        self._not_before = 0.0  # a venue's Retry-After: no REST snapshot before this
        # subscribe/unsubscribe requests sent on one connection (``resubscribe_budget``): the
        # connection counted, and the monotonic times of the requests within the window
        self._ops_ws: object = None
        self._ops: collections.deque[float] = collections.deque()

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def cancel(self) -> None:
        """Drop the repair under way (its connection is gone; the next one starts afresh)."""
        if self.busy:
            self.task.cancel()
        self.task = None

    def request(self, reason: str, initial: bool = False, not_before: float = 0.0) -> None:
        """Repair the book soon (a request while one runs is already being served);
        ``not_before`` is a ``time.monotonic()`` time."""
        if self.busy:
            return
        opts = self.session.opts
        now = time.monotonic()  # intervals: the wall clock may be stepped
        self._not_before = max(self._not_before, not_before)
        if initial:
            self._delay = opts.resync_min_interval
            wait = 0.0
        else:
            # bounded: consecutive resyncs back off, so a broken feed cannot cause a storm
            since = now - self._last_at
            if since > self._delay * 4 + 10:
                self._delay = opts.resync_min_interval
            wait = max(0.0, self._last_at + self._delay - now)
            self._delay = min(opts.resync_max_interval, self._delay * 2)
        wait = max(wait, self._not_before - now)
        self.task = asyncio.create_task(self._run(reason, wait))

    async def snapshot_fallback(self, st: _Stream, timeout: float) -> None:
        """For venues whose websocket snapshot may not come: when the book has been SYNCING
        for ``timeout`` s with updates buffered, take the snapshot over REST instead."""
        session = self.session
        sync = session.pipeline.sync
        seen, seen_at = None, 0.0
        while True:
            await asyncio.sleep(min(0.25, timeout / 4))
            state = session.market.state
            now = time.monotonic()
            if state is not seen:  # each change of state is a new FeedState
                seen, seen_at = state, now
            if (
                state.status is FeedStatus.SYNCING
                and not sync.synced
                and sync.buffer
                and now - seen_at >= timeout
                and not self.busy
                and st.ws is not None
                and now >= self._not_before
            ):
                self.task = asyncio.create_task(self.rest_snapshot(st))
                await self.task

    async def rest_snapshot(self, st: _Stream) -> None:
        """Fetch the REST snapshot into the book. Runs as the repair task: it clears that slot
        before acting, so a failure or a snapshot that does not fit schedules the next
        (backed-off) repair instead of being dropped."""
        session = self.session
        req = session.adapter.snapshot_request()
        if req is None:
            return
        req = dataclasses.replace(req, book=True)
        ws = st.ws
        try:
            body = await session.fetch(req)
        except HttpError as e:
            session.pipeline.set_state(FeedStatus.SYNCING, f"snapshot failed: {e}")
            self.task = None
            self.request(str(e), not_before=time.monotonic() + (e.retry_after or 0.0))
            return
        if ws is None or st.ws is not ws:
            # the connection it was for has gone: its deltas went with it, and a new one asks
            # for its own snapshot
            self.task = None
            return
        if session.recorder is not None:
            session.recorder.http(req.url, body.decode("utf-8", "replace"))
        actions = session.pipeline.on_snapshot_body(body, time.time())
        self.task = None
        if actions:
            with contextlib.suppress(ConnectionClosed):  # the stream reconnects and resyncs
                await session._act(st, actions)

    def _may_send(self, st: _Stream, n: int) -> bool:
        """Whether ``n`` more subscribe requests fit the venue's per-connection limit (counting
        the connection's own subscribes at its start, and keeping a tenth of it spare); if so
        they are counted as sent."""
        budget = self.session.adapter.resubscribe_budget
        if budget is None:
            return True
        limit, window = budget
        ops, now = self._ops, time.monotonic()
        if self._ops_ws is not st.ws:
            self._ops_ws = st.ws
            ops.clear()
            ops.extend([st.up_since] * len(st.spec.subscribe))
        while ops and ops[0] <= now - window:
            ops.popleft()
        if len(ops) + n > limit - limit // 10:
            return False
        ops.extend([now] * n)
        return True

    async def _run(self, reason: str, wait: float) -> None:
        if wait:
            await asyncio.sleep(wait)
        self._last_at = time.monotonic()
        session = self.session
        mode = session.adapter.resync_mode
        st = session.book_stream
        if st is None or st.ws is None:
            return
        if mode is ResyncMode.REST:
            await self.rest_snapshot(st)
        elif mode is ResyncMode.RESUBSCRIBE:
            frames = session.adapter.resubscribe_frames(st.spec.name)
            if not self._may_send(st, len(frames)):
                st.close_reason = f"resync: {reason} (resubscribe limit of the connection reached)"
                with contextlib.suppress(Exception):
                    await st.ws.close(1000, "resync")
                return
            session.pipeline.reset_book(FeedStatus.SYNCING, reason)
            # a connection lost meanwhile is the stream's to handle: it reconnects, and a new
            # connection subscribes afresh (this raised in a task nobody awaits)
            with contextlib.suppress(ConnectionClosed):
                for frame in frames:
                    await session._send(st, frame)
        elif mode is ResyncMode.RECONNECT:
            st.close_reason = f"resync: {reason}"
            with contextlib.suppress(Exception):
                await st.ws.close(1000, "resync")
        # NONE: the next full snapshot repairs the book
