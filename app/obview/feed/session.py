"""FeedSession: runs any venue adapter over ``websockets``.

One task per stream the adapter declares: connect (with timeout), subscribe, heartbeat,
receive into the ``FeedPipeline``, stale watchdog (feed/watchdog.py), reconnect with capped
exponential backoff and jitter. Broken books are rebuilt by ``BookRepair`` (feed/repair.py):
backed off, as the venue allows, per the adapter's ResyncMode (REST snapshot, resubscribe,
reconnect).
Every transition is written to the Market (and the Bus) with a reason a user can read
(feed/reasons.py words why a connection ended).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidURI

from obview.bus import Bus
from obview.feed.cadence import Activity, Cadence
from obview.feed.http import fetch, format_wait
from obview.feed.pipeline import Fatal, FeedPipeline, NeedResync, Send
from obview.feed.reasons import (
    EXPECTED,
    PROXY_UNUSABLE,
    describe_close,
    describe_failure,
    proxy_for,
)
from obview.feed.repair import BookRepair
from obview.feed.watchdog import watch
from obview.feed.wsconn import SinkConnection, sink_connection_factory
from obview.market import Market
from obview.model import FeedStatus, Instrument
from obview.text import safe
from obview.venues.base import HttpRequest, ResyncMode, StreamSpec, VenueAdapter

log = logging.getLogger("obview.feed")

Fetcher = Callable[[HttpRequest], Awaitable[bytes]]

#: a backoff the user may cut short (the venue's key) only once this much of it has passed (s):
#: a held or repeated key connects at most about once a second
RETRY_NOW_AFTER = 1.0


@dataclass(slots=True)
class SessionOptions:
    connect_timeout: float = 10.0
    max_size: int = 4 * 1024 * 1024  # bytes per frame; bigger frames close the connection
    max_queue: int = 64  # control frames buffered by websockets (data goes straight to the pipeline)
    max_outbox: int = 256  # frames waiting to be sent per stream (answers to venue pings, ...)
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 5.0  # a connection up this long resets the backoff
    stale_after: float | None = None  # overrides each StreamSpec.stale_after
    stale_grace: float = 1.0  # STALE shown for stale_after * grace more before reconnecting
    resync_min_interval: float = 0.5
    resync_max_interval: float = 30.0
    sync_timeout: float = 10.0  # book stream connected but no whole book this long: resync again
    # the longest a book may stay still while its connection answers pings, for a book that
    # changes rarely (feed/cadence.py Activity); a busy book gone still is STALE at stale_after
    quiet_max: float = 300.0
    # bytes waiting to be sent before the connection is given up: the answers to a server's
    # pings are written whether or not it reads them, so one that floods pings and never reads
    # grew this process's memory without end
    max_send_buffer: int = 8 * 1024 * 1024
    sample_interval: float = 0.05


class _Stream:
    __slots__ = ("spec", "ws", "last_rx", "up_since", "attempt", "status", "reason", "stale", "connects", "close_reason", "outbox", "wake", "conn", "cadence", "activity", "wait_end", "cut_from", "got_frame")

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.ws: SinkConnection | None = None
        # frames to send, written from the receive path and sent by the stream's task in order
        self.outbox: collections.deque[tuple[_Stream, str]] = collections.deque()
        self.wake: asyncio.Future | None = None
        self.conn: int | None = None  # the recorder's number for the current connection
        self.last_rx = 0.0
        self.up_since = 0.0
        self.attempt = 0
        self.status = FeedStatus.CONNECTING
        self.reason = "connecting"
        self.stale = False
        self.connects = 0
        self.close_reason = ""
        # the book's measured cadence, kept across reconnects (the venue's clock, not ours)
        self.cadence = Cadence(*spec.stale_cadence) if spec.stale_cadence else None
        self.activity = Activity()  # how often the book changes, kept across reconnects too
        # a backoff under way (monotonic): when it ends, and from when the user may cut it
        # short (after its first second and after any wait the venue asked for)
        self.wait_end = 0.0
        self.cut_from = 0.0
        # a frame has come on the current connection (a book taken from REST on a socket that
        # never sent one is no quiet book's: nothing vouches for the socket)
        self.got_frame = False


class FeedSession:
    """Keeps one Market fed from one venue. ``start()`` it, ``await stop()`` it."""

    def __init__(
        self,
        adapter: VenueAdapter,
        market: Market,
        bus: Bus | None = None,
        *,
        options: SessionOptions | None = None,
        fetcher: Fetcher | None = None,
        recorder=None,
    ) -> None:
        self.adapter = adapter
        self.market = market
        self.bus = bus
        self.opts = options or SessionOptions()
        self.fetch = fetcher or fetch
        self.recorder = recorder
        self.pipeline = FeedPipeline(adapter, market, bus)
        self.streams = {s.name: _Stream(s) for s in adapter.streams()}
        self.book_stream = next((s for s in self.streams.values() if s.spec.book), None)
        self._tasks: list[asyncio.Task] = []
        self.repair = BookRepair(self)
        self._stopping = False
        self.failed: str | None = None
        self.connect_attempts = 0
        #: set when the user asks to retry now (``retry_now``), then replaced: each backoff
        #: waits on the one current when it began, so a press is never lost to another
        #: stream's backoff starting (a shared event cleared at each start lost it)
        self._retry = asyncio.Event()

    def retry_now(self) -> bool:
        """The user asked to reconnect now: streams waiting out a backoff stop waiting (after
        ``RETRY_NOW_AFTER`` s of it, and never inside a wait the venue asked for). True when
        one waits in a backoff that can be cut."""
        if not self.can_retry_now():
            return False
        pressed, self._retry = self._retry, asyncio.Event()
        pressed.set()
        return True

    def can_retry_now(self) -> bool:
        """Whether a stream waits out a backoff the user may cut short (now or at its first
        second's end): what the status line offers a key for."""
        now = time.monotonic()
        return any(st.wait_end > now and st.cut_from < st.wait_end for st in self.streams.values())

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> asyncio.Task:
        self._stopping = False
        main = asyncio.create_task(self.run(), name=f"feed {self.market.venue} {self.market.symbol}")
        return main

    async def run(self) -> None:
        now = time.time()
        self.market.stats.messages.begin(now)  # rates count from here, not from a first event
        self.market.stats.trades.begin(now)
        streams = [asyncio.create_task(self._run_stream(st), name=f"stream {st.spec.name}") for st in self.streams.values()]
        self._tasks = [*streams, asyncio.create_task(self._sampler(), name="sampler"), asyncio.create_task(self._instrument(), name="instrument")]
        try:
            # streams only end on stop() or a fatal error; then the helpers go too
            await asyncio.gather(*streams)
        except asyncio.CancelledError:
            pass
        except Exception as e:
            # a defect of this code, not the venue's: the feed would sit in its last state with
            # nothing behind it; it says FAILED (the venue's key tries again) and is logged
            log.exception("feed %s %s failed", self.market.venue, self.market.symbol)
            self._fail(f"internal error: {safe(e)}")
        finally:
            await self._cancel_all()

    async def stop(self) -> None:
        self._stopping = True
        await self._cancel_all()

    async def _cancel_all(self) -> None:
        tasks = [t for t in self._tasks if not t.done()]
        if self.repair.busy:
            tasks.append(self.repair.task)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for st in self.streams.values():
            if st.ws is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(st.ws.close(), 1.0)
                st.ws = None

    # -- state ------------------------------------------------------------------------------
    def _stream_state(self, st: _Stream, status: FeedStatus, reason: str) -> None:
        st.status, st.reason = status, reason
        self._publish_state()

    def _publish_state(self) -> None:
        """One FeedState for the market: the book stream decides; other streams' trouble is
        appended to the reason, since the book itself is still right."""
        if self.failed is not None:
            self.pipeline.set_state(FeedStatus.FAILED, self.failed)
            return
        book = self.book_stream
        others = [s for s in self.streams.values() if s is not book and s.status in (FeedStatus.RECONNECTING, FeedStatus.STALE, FeedStatus.CONNECTING)]
        if book is None:
            return
        if book.status in (FeedStatus.CONNECTING, FeedStatus.RECONNECTING, FeedStatus.STALE, FeedStatus.FAILED):
            self.pipeline.set_state(book.status, book.reason)
            return
        # book stream connected: LIVE / SYNCING come from the pipeline
        cur = self.market.state
        if others and cur.status is FeedStatus.LIVE:
            o = others[0]
            self.pipeline.set_state(FeedStatus.LIVE, f"{o.spec.name}: {o.status.value.lower()} ({o.reason})")
        elif not others and cur.status is FeedStatus.LIVE and cur.reason:
            self.pipeline.set_state(FeedStatus.LIVE)

    # -- streams ----------------------------------------------------------------------------
    def _backoff(self, st: _Stream) -> float:
        base = min(self.opts.backoff_max, self.opts.backoff_base * (2 ** min(st.attempt, 16)))
        return base * random.uniform(0.5, 1.0)

    async def _run_stream(self, st: _Stream) -> None:
        spec = st.spec
        try:
            urlsplit(spec.url).port  # noqa: B018 (a port past 65535 raised inside every connect)
        except ValueError as e:
            self._fail(f"bad URL {safe(spec.url)}: {e}")
            return
        while not self._stopping and self.failed is None:
            reason = ""
            asked = None  # seconds the venue asked us to wait (Retry-After on a refused upgrade)
            self.connect_attempts += 1
            st.connects += 1
            st.close_reason = ""
            try:
                await self._connect_and_read(st)
                reason = "connection closed"
            except asyncio.CancelledError:
                raise
            except InvalidURI as e:
                self._fail(f"bad URL {safe(spec.url)}: {e}")
                return
            except PROXY_UNUSABLE as e:  # a setting: retrying cannot help
                self._fail(f"proxy {proxy_for(spec.url) or 'setting'} unusable: {safe(e, 120)}")
                return
            except Exception as e:  # never let one bad stream kill the app
                if not isinstance(e, EXPECTED):
                    log.exception("stream %s failed", spec.name)
                reason, asked = describe_failure(e, self.opts.connect_timeout)
                proxy = proxy_for(spec.url) if isinstance(e, OSError) else None
                if proxy:
                    reason += f" (through the proxy {proxy})"
            finally:
                st.ws = None
            if st.close_reason:
                reason = st.close_reason
            if self.recorder is not None and st.conn and not self._stopping:
                # a replay tells a dropped feed from one live to the end by this (a feed the
                # app stops is cancelled and leaves no line: it was live as far as it went)
                self.recorder.ended(self.failed or reason, st.conn)
            if self._stopping or self.failed is not None:
                return
            if st.up_since and time.monotonic() - st.up_since >= self.opts.stable_after:
                st.attempt = 0
            st.up_since = 0.0
            delay = max(self._backoff(st), asked or 0.0)
            st.attempt += 1
            if st is self.book_stream:
                self.pipeline.sync.reset()
                # a snapshot fetched for the lost connection must not land on the next one's
                # book (or set LIVE while there is no connection at all)
                self.repair.cancel()
            # the wait counts down on screen, a second at a time; the user may cut it short
            # (``retry_now``) once its first second has passed, and never the part the venue
            # asked for (Retry-After: a rate limit)
            start = time.monotonic()
            st.wait_end = end = start + delay
            st.cut_from = start + max(RETRY_NOW_AFTER, asked or 0.0)
            pressed = self._retry
            try:
                while (left := end - time.monotonic()) > 0:
                    self._stream_state(st, FeedStatus.RECONNECTING, f"{reason}; retry in {format_wait(left)}")
                    now = time.monotonic()
                    if now < st.cut_from:
                        await asyncio.sleep(min(1.0, left, st.cut_from - now))
                        continue
                    if pressed.is_set():
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(pressed.wait(), min(1.0, left))
                        break
            finally:
                st.wait_end = st.cut_from = 0.0

    async def _connect_and_read(self, st: _Stream) -> None:
        spec = st.spec
        opts = self.opts
        host = urlsplit(spec.url).hostname or ""
        local = host in ("127.0.0.1", "localhost", "::1")
        if st.attempt:
            self._stream_state(st, FeedStatus.RECONNECTING, f"connecting (attempt {st.attempt + 1})")
        else:
            self._stream_state(st, FeedStatus.CONNECTING, f"connecting to {urlsplit(spec.url).netloc}")
        if self.recorder is not None:
            feed = {"venue": self.adapter.name, "symbol": self.adapter.symbol, "instrument": self.adapter.native}
            st.conn = self.recorder.connect(spec.url, feed)
        ws = await connect(
            spec.url,
            open_timeout=opts.connect_timeout,
            max_size=spec.max_size or opts.max_size,
            max_queue=opts.max_queue,
            close_timeout=2,
            compression=None,
            proxy=None if local else True,
            create_connection=sink_connection_factory,
        )
        if self._stopping or self.failed is not None:  # ended while the handshake ran
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)
            return
        st.ws = ws
        st.last_rx = time.time()
        st.got_frame = False
        st.up_since = time.monotonic()
        st.stale = False
        watchdog = asyncio.create_task(watch(self, st))
        fallback = None
        if st is self.book_stream and self.adapter.ws_snapshot_timeout and self.adapter.resync_mode is not ResyncMode.REST:
            fallback = asyncio.create_task(self.repair.snapshot_fallback(st, self.adapter.ws_snapshot_timeout))
        pinger = asyncio.create_task(self._pinger(st)) if spec.ping_interval and spec.ping_frame else None
        try:
            if st is self.book_stream:
                self.pipeline.reset_book(FeedStatus.SYNCING, "awaiting snapshot")
                st.status, st.reason = FeedStatus.SYNCING, "awaiting snapshot"
            else:
                self._stream_state(st, FeedStatus.LIVE, "")
            for frame in spec.subscribe:
                await self._send(st, frame)
            if st is self.book_stream and self.adapter.resync_mode is ResyncMode.REST:
                self.repair.request("initial snapshot", initial=True)
            await self._read(st, ws)
            # a clean close (1000/1001) ends the iteration without raising: keep its code and reason
            if not st.close_reason:
                with contextlib.suppress(Exception):
                    st.close_reason = describe_close(ws.protocol.close_exc)
        finally:
            watchdog.cancel()
            if fallback is not None:
                fallback.cancel()
            if pinger is not None:
                pinger.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 1.0)

    async def _read(self, st: _Stream, ws: SinkConnection) -> None:
        """Feed every message of ``ws`` to the pipeline until the connection closes; meanwhile
        send what the receive path queued (answers to venue pings) in order."""
        st.outbox.clear()
        ws.attach(self._make_sink(st, ws))
        closed = asyncio.ensure_future(ws.wait_closed())
        loop = asyncio.get_running_loop()
        try:
            while not closed.done():
                if st.outbox:
                    target, frame = st.outbox.popleft()
                    if target.ws is not None:
                        await self._send(target, frame)
                    continue
                st.wake = loop.create_future()
                await asyncio.wait((closed, st.wake), return_when=asyncio.FIRST_COMPLETED)
                st.wake = None
        finally:
            closed.cancel()
            st.wake = None

    def _make_sink(self, st: _Stream, ws: SinkConnection):
        """The per-message receive path of ``st``: runs inside the socket read (wsconn)."""
        pipeline = self.pipeline
        on_frame = pipeline.on_frame
        name = st.spec.name
        recorder = self.recorder
        is_book = st is self.book_stream
        market = self.market
        state = [pipeline.book_events]
        live = FeedStatus.LIVE

        def sink(data: bytes, ts: float) -> None:
            try:
                st.got_frame = True
                if not is_book:
                    st.last_rx = ts
                if recorder is not None:
                    recorder.received(data.decode("utf-8", "replace"), st.conn)
                actions = on_frame(name, data, ts)
                if is_book and pipeline.book_events != state[0]:
                    # only book messages keep the book stream fresh: pongs and trades flowing
                    # while the book is stuck must still read as STALE
                    state[0] = pipeline.book_events
                    st.last_rx = ts
                if actions:
                    self._act_now(st, actions)
                if st.stale and st.last_rx == ts:
                    st.stale = False
                    if not is_book:
                        self._stream_state(st, live, "")
                    else:
                        st.status = live
                if is_book and st.status is not live and market.state.status is live:
                    st.status, st.reason = live, ""
                    self._publish_state()
            except Exception as e:  # a bug on the receive path must not kill the socket's reader
                log.exception("receive path failed on %s", name)
                st.close_reason = f"error: {safe(e)}"
                ws.transport.abort()

        return sink

    def _act_now(self, st: _Stream, actions) -> None:
        """Actions from the receive path: sends go to the stream's outbox (bounded, oldest
        dropped), the rest is done at once."""
        for a in actions:
            if isinstance(a, Send):
                target = self.streams.get(a.stream, st)
                box = target.outbox
                if len(box) >= self.opts.max_outbox:
                    box.popleft()
                box.append((target, a.frame))
                if target.wake is not None and not target.wake.done():
                    target.wake.set_result(None)
            elif isinstance(a, NeedResync):
                if st is self.book_stream:
                    st.status, st.reason = FeedStatus.SYNCING, a.reason
                self.repair.request(a.reason)
            elif isinstance(a, Fatal):
                self._fail(a.reason)

    async def _act(self, st: _Stream, actions) -> None:
        for a in actions:
            if isinstance(a, Send):
                target = self.streams.get(a.stream, st)
                await self._send(target, a.frame)
            elif isinstance(a, NeedResync):
                if st is self.book_stream:
                    st.status, st.reason = FeedStatus.SYNCING, a.reason
                self.repair.request(a.reason)
            elif isinstance(a, Fatal):
                self._fail(a.reason)

    async def _send(self, st: _Stream, frame: str) -> None:
        ws = st.ws
        if ws is None:
            return
        if self.recorder is not None:
            self.recorder.sent(frame, st.conn)
        await ws.send(frame)

    def _fail(self, reason: str) -> None:
        self.failed = safe(reason)
        self.pipeline.halt(self.failed)
        for st in self.streams.values():
            if st.ws is not None:
                asyncio.ensure_future(st.ws.close())
        # a stream still in its handshake or its backoff would connect afterwards and read
        # forever, and the session (which a retry waits on) would never end
        me = asyncio.current_task()
        for t in self._tasks:
            if t is not me:
                t.cancel()
        if self.repair.busy:
            self.repair.task.cancel()

    # -- timers -----------------------------------------------------------------------------
    async def _pinger(self, st: _Stream) -> None:
        while True:
            await asyncio.sleep(st.spec.ping_interval)
            with contextlib.suppress(ConnectionClosed):
                await self._send(st, st.spec.ping_frame)

    async def _sampler(self) -> None:
        interval = self.opts.sample_interval
        market = self.market
        while True:
            try:
                market.tick()
            except Exception:  # one bad sample must not stop the heatmap for good
                log.exception("heatmap sample failed for %s %s", market.venue, market.symbol)
            await asyncio.sleep(interval)

    async def _instrument(self) -> None:
        req = self.adapter.instrument_request()
        if req is None:
            return
        try:
            body = await self.fetch(req)
            inst = self.adapter.parse_instrument(body)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # built-in defaults stay in place
            log.info("instrument facts for %s %s unavailable: %s", self.market.venue, self.market.symbol, e)
            return
        checked = checked_instrument(inst)
        if checked is None:
            log.warning("instrument facts for %s %s rejected (tick, lot or contract value not a finite positive number)", self.market.venue, self.market.symbol)
            return
        self.market.set_instrument(checked)


def checked_instrument(inst: Instrument) -> Instrument | None:
    """Instrument facts from the network made safe to use: None when a number is unusable (a NaN
    tick would hang the grouping and heatmap step search), names without terminal controls."""
    for x in (inst.tick, inst.lot, inst.contract_value):
        if not isinstance(x, (int, float)) or not 0.0 < x < float("inf"):
            return None
    return dataclasses.replace(inst, native=safe(inst.native, 40), base=safe(inst.base, 16), quote=safe(inst.quote, 16))
