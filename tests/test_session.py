"""FeedSession state machine against a scripted local WebSocket server and a fake adapter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest
from websockets.asyncio.server import serve

from obview.feed.session import FeedSession, SessionOptions
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus, Instrument, Side, Trade
from obview.venues.base import (
    HttpRequest,
    Reply,
    ResyncMode,
    StreamSpec,
    VenueAdapter,
    VenueError,
    loads,
)


class FakeAdapter(VenueAdapter):
    name = "fake"
    symbols = {"BTC-PERP": "BTC"}
    resync_mode = ResyncMode.RESUBSCRIBE

    def __init__(self, symbol, *, stale_after=1.0, mode=ResyncMode.RESUBSCRIBE, stale_cadence=None, **kw):
        super().__init__(symbol, **kw)
        self.stale_after = stale_after
        self.stale_cadence = stale_cadence
        self.resync_mode = mode

    def streams(self):
        return [StreamSpec("book", self.endpoint + "/ws", ['{"op":"sub"}'], ping_interval=0.2, ping_frame='{"op":"ping"}', stale_after=self.stale_after, stale_cadence=self.stale_cadence)]

    def resubscribe_frames(self, stream):
        return ['{"op":"sub"}']

    def parse(self, stream, frame, ts_local):
        m = loads(frame)
        t = m.get("t")
        if t == "snap":
            return [BookSnapshot("fake", self.symbol, [tuple(x) for x in m["b"]], [tuple(x) for x in m["a"]], seq=m["s"], ts_exchange=m["ts"], ts_local=ts_local)]
        if t == "delta":
            return [BookDelta("fake", self.symbol, [tuple(x) for x in m["b"]], [tuple(x) for x in m["a"]], seq=m["s"], prev_seq=m["p"], ts_exchange=m["ts"], ts_local=ts_local)]
        if t == "trade":
            return [Trade("fake", self.symbol, m["px"], m["sz"], Side(m["side"]), str(m["id"]), m["ts"], ts_local)]
        if t == "ping":
            return [Reply(stream, '{"op":"pong"}')]
        if t == "error":
            return [VenueError(stream, m["reason"], fatal=m.get("fatal", False))]
        return []

    def default_instrument(self):
        return Instrument("fake", self.symbol, "BTC", tick=1.0, lot=0.1)

    def snapshot_request(self):
        return HttpRequest(self.rest_endpoint + "/snap")

    def parse_snapshot(self, body, ts_local):
        m = loads(body)
        return BookSnapshot("fake", self.symbol, [tuple(x) for x in m["b"]], [tuple(x) for x in m["a"]], seq=m["s"], ts_local=ts_local)


class Script:
    """A scripted venue: snapshot on subscribe, then deltas from ``seq`` on; knobs for faults."""

    def __init__(self):
        self.seq = 10
        self.bid, self.ask = 100.0, 101.0
        self.connections = 0
        self.received: list[str] = []
        self.silent = False
        self.book_silent = False
        self.skip_next = False
        self.crossed_next = False
        self.conns = set()

    def snap(self):
        return json.dumps({"t": "snap", "s": self.seq, "ts": time.time(), "b": [[self.bid, 1.0], [self.bid - 1, 2.0]], "a": [[self.ask, 1.0], [self.ask + 1, 2.0]]})

    def delta(self):
        prev = self.seq
        self.seq += 1
        if self.skip_next:
            self.skip_next = False
            prev, self.seq = self.seq, self.seq + 1
        b = [[self.bid, float(self.seq % 7 + 1)]]
        a = [[self.ask, 1.5]]
        if self.crossed_next:
            self.crossed_next = False
            b = [[self.ask + 5, 1.0]]
        return json.dumps({"t": "delta", "s": self.seq, "p": prev, "ts": time.time(), "b": b, "a": a})

    async def handler(self, ws):
        self.connections += 1
        self.conns.add(ws)
        try:
            async def reader():
                async for msg in ws:
                    self.received.append(msg)
                    if json.loads(msg).get("op") == "sub":
                        await ws.send(self.snap())

            rt = asyncio.create_task(reader())
            try:
                while not rt.done():  # the reader ends with the connection, a silent venue too
                    await asyncio.sleep(0.02)
                    if self.book_silent:
                        await ws.send(json.dumps({"t": "trade", "px": self.bid, "sz": 0.1, "side": "buy", "id": self.seq, "ts": time.time()}))
                    elif not self.silent:
                        await ws.send(self.delta())
            finally:
                rt.cancel()
        except Exception:
            pass
        finally:
            self.conns.discard(ws)


@pytest.fixture
async def venue():
    script = Script()
    async with serve(script.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        script.url = f"ws://127.0.0.1:{port}"
        yield script


@pytest.fixture
def wall_clock(monkeypatch):
    """Steps the wall clock (``time.time``) as NTP, a VM restore or a resumed laptop does; the
    monotonic clock runs on untouched."""
    real = time.time
    offset = [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + offset[0])

    def step(seconds: float) -> None:
        offset[0] += seconds

    return step


def opts(**kw):
    base = dict(backoff_base=0.05, backoff_max=0.2, connect_timeout=2.0, resync_min_interval=0.05)
    base.update(kw)
    return SessionOptions(**base)


@contextlib.asynccontextmanager
async def running(url, options=None, fetcher=None, **adapter_kw):
    """A FeedSession with the fake adapter on ``url``; stopped however the test ends."""
    adapter = FakeAdapter("BTC-PERP", endpoint=url, **adapter_kw)
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=options or opts(), fetcher=fetcher)
    task = session.start()
    try:
        yield market, session, task
    finally:
        await session.stop()
        task.cancel()


async def wait_for(pred, timeout=5.0, history=None, market=None):
    async with asyncio.timeout(timeout):
        while not pred():
            if history is not None and market is not None:
                history.append((market.state.status, market.book.is_crossed()))
            await asyncio.sleep(0.01)


async def test_reaches_live_and_follows_deltas(venue):
    async with running(venue.url, opts()) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        await wait_for(lambda: market.stats.frames > 10)
        assert market.book.best_bid()[0] == 100.0 and market.book.best_ask()[0] == 101.0
        assert market.stats.latency.percentiles(time.time())[0] is not None
        await wait_for(lambda: any('"ping"' in r for r in venue.received))  # heartbeat sent
        await wait_for(lambda: len(market.heatmap.columns) >= 2)  # the sampler runs


async def test_gap_goes_syncing_with_reason_and_resyncs_to_live(venue):
    async with running(venue.url, opts()) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        venue.skip_next = True
        await wait_for(lambda: market.resyncs == 1 and market.state.status is FeedStatus.LIVE)
        syncing = [s for s in market.state_log if s.status is FeedStatus.SYNCING and s.reason.startswith("seq gap ")]
        assert syncing, list(market.state_log)
        # after the gap, nothing was LIVE until the fresh snapshot arrived
        log = list(market.state_log)
        i = log.index(syncing[0])
        assert log[i + 1].status is not FeedStatus.LIVE or log[i + 1].reason == ""
        assert market.resyncs == 1 and market.stats.gaps == 1
        assert venue.received.count('{"op":"sub"}') == 2  # resubscribed, same connection
        assert venue.connections == 1


async def test_a_resync_whose_connection_is_lost_leaves_it_to_the_reconnect(venue):
    # the connection drops as the resubscribe goes out: the repair task ends quietly (it raised
    # ConnectionClosedError into a task nobody awaits) and the reconnect brings the book back
    from websockets.exceptions import ConnectionClosedError

    async with running(venue.url, opts()) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        ws = session.book_stream.ws

        async def lost(frame):
            ws.transport.abort()
            raise ConnectionClosedError(None, None)

        ws.send = lost
        venue.skip_next = True
        # the repair ends quietly: it finished, or the lost connection cancelled it
        await wait_for(lambda: session.book_stream.ws is not ws)
        t = session.repair.task
        assert t is None or (t.done() and (t.cancelled() or t.exception() is None))
        await wait_for(lambda: venue.connections == 2 and market.state.status is FeedStatus.LIVE)


async def test_crossed_book_is_never_live(venue):
    seen = []
    async with running(venue.url, opts()) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        venue.crossed_next = True
        await wait_for(lambda: market.resyncs == 1 and market.state.status is FeedStatus.LIVE, history=seen, market=market)
        assert any(s.status is FeedStatus.SYNCING and s.reason.startswith("crossed by ") for s in market.state_log)
        assert not any(st is FeedStatus.LIVE and crossed for st, crossed in seen)


async def test_silent_feed_goes_stale_then_reconnects(venue):
    async with running(venue.url, opts(), stale_after=0.4) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        venue.silent = True
        await wait_for(lambda: market.state.status is FeedStatus.STALE)
        # the socket still answers pings: the book has stopped, not the connection
        assert market.state.reason.startswith("no book data for ")
        await wait_for(lambda: market.state.status is FeedStatus.RECONNECTING)
        assert "no book data for" in market.state.reason
        venue.silent = False
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        assert venue.connections >= 2


async def test_refused_connection_backs_off_without_storm():
    # a port nobody listens on: bind, note the port, close
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    adapter = FakeAdapter("BTC-PERP", endpoint=f"ws://127.0.0.1:{port}")
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=opts(backoff_base=0.1, backoff_max=0.4))
    task = session.start()
    try:
        await wait_for(lambda: market.state.status is FeedStatus.RECONNECTING and "refused" in market.state.reason)
        await asyncio.sleep(1.5)
        # base 0.1 doubling to a 0.4 cap with jitter >= 0.5: at most ~1.5/0.05 + few attempts
        # without backoff there would be hundreds
        assert 2 <= session.connect_attempts <= 12, session.connect_attempts
        assert market.state.reason.startswith("connection refused; retry in ")
    finally:
        await session.stop()
        task.cancel()


async def test_server_restart_reconnects_to_live():
    script = Script()
    server = await serve(script.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = FakeAdapter("BTC-PERP", endpoint=f"ws://127.0.0.1:{port}")
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=opts())
    task = session.start()
    try:
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        server.close()
        await server.wait_closed()
        await wait_for(lambda: market.state.status is FeedStatus.RECONNECTING)
        assert market.book.empty
        server = await serve(script.handler, "127.0.0.1", port)
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
    finally:
        await session.stop()
        task.cancel()
        server.close()
        await server.wait_closed()


async def test_the_user_cuts_a_long_reconnect_wait_short_but_not_one_the_venue_asked_for():
    """The venue came back while the feed waited out a 20 s backoff: only waiting was left (the
    current venue's key now reconnects at once)."""
    script = Script()
    server = await serve(script.handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    adapter = FakeAdapter("BTC-PERP", endpoint=f"ws://127.0.0.1:{port}")
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=opts(backoff_base=40.0, backoff_max=40.0))
    task = session.start()
    try:
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        assert not session.retry_now()  # nothing waits
        server.close()
        await server.wait_closed()
        await wait_for(lambda: "retry in" in market.state.reason)
        server = await serve(script.handler, "127.0.0.1", port)
        attempts = session.connect_attempts
        assert session.retry_now()  # within its first second: the wait goes on to that second
        await asyncio.sleep(0.5)
        assert session.connect_attempts == attempts
        await wait_for(lambda: market.state.status is FeedStatus.LIVE, timeout=3)
        assert session.connect_attempts == attempts + 1
    finally:
        await session.stop()
        task.cancel()
        server.close()
        await server.wait_closed()


async def test_a_press_is_not_lost_when_another_streams_backoff_begins():
    """The retry signal was one event that every backoff cleared as it began: a press cut one
    stream's wait, that stream failed again at once and began a new wait, and the other stream,
    still in its first second when the key was pressed, never saw the press."""
    import socket

    # trades: a closed port (refused at once); book: a listener that never answers the upgrade
    # (it fails at the open timeout, so its waits start 0.3 s after the trades')
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused = closed.getsockname()[1]
    closed.close()
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)
    silent = hang.getsockname()[1]

    class TwoStreams(FakeAdapter):
        def streams(self):
            book = StreamSpec("book", f"ws://127.0.0.1:{silent}/ws", ['{"op":"sub"}'], stale_after=5.0)
            trades = StreamSpec("trades", f"ws://127.0.0.1:{refused}/ws", ['{"op":"sub"}'], book=False, stale_after=5.0)
            return [book, trades]

    adapter = TwoStreams("BTC-PERP", endpoint="ws://127.0.0.1:9")
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=opts(backoff_base=40.0, backoff_max=40.0, connect_timeout=0.3))
    task = session.start()
    book, trades = session.streams["book"], session.streams["trades"]
    try:
        await wait_for(lambda: book.wait_end > 0 and trades.wait_end > 0)
        await asyncio.sleep(0.1)  # the book 0.1 s into its wait, the trades about 0.4 s
        connects = book.connects
        assert session.retry_now()
        # the trades stream goes at its 1 s mark, fails and waits again; the book goes at its own
        await wait_for(lambda: book.connects > connects, timeout=3)
    finally:
        await session.stop()
        task.cancel()
        hang.close()


async def test_rest_resync_mode_fetches_snapshot(venue):
    fetched = []

    async def fetcher(req):
        fetched.append(req.url)
        return json.dumps({"s": venue.seq, "b": [[venue.bid, 1.0]], "a": [[venue.ask, 1.0]]}).encode()

    async with running(venue.url, opts(), fetcher=fetcher, rest_endpoint="http://127.0.0.1:9", mode=ResyncMode.REST) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        assert fetched and fetched[0] == "http://127.0.0.1:9/snap"
        venue.skip_next = True
        await wait_for(lambda: len(fetched) >= 2 and market.state.status is FeedStatus.LIVE)


@pytest.mark.parametrize("step", [0.0, -3600.0], ids=["steady clock", "wall clock stepped back"])
async def test_rest_snapshot_waits_as_long_as_the_venue_asks(venue, wall_clock, step):
    # Binance answers a REST burst with 429 and a Retry-After; asking again sooner gets the IP
    # banned (418, minutes to days). The session's own backoff here would retry in 0.05 s. The
    # wait is an interval: a wall clock stepped back an hour meanwhile must not add that hour.
    from obview.feed.http import HttpError

    fetched: list[float] = []

    async def fetcher(req):
        fetched.append(time.monotonic())
        if len(fetched) == 2:
            wall_clock(step)
            raise HttpError("HTTP 429 from http://127.0.0.1:9/snap; the venue asks to wait 1 s", 429, 0.8)
        return json.dumps({"s": venue.seq, "b": [[venue.bid, 1.0]], "a": [[venue.ask, 1.0]]}).encode()

    async with running(venue.url, opts(), fetcher=fetcher, rest_endpoint="http://127.0.0.1:9", mode=ResyncMode.REST) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE and len(fetched) == 1)
        venue.skip_next = True  # a gap: the book needs a new REST snapshot
        await wait_for(lambda: len(fetched) == 2)
        await wait_for(lambda: "asks to wait" in market.state.reason)
        assert market.state.status is FeedStatus.SYNCING
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        assert len(fetched) == 3 and fetched[2] - fetched[1] >= 0.75


async def test_oversized_frame_reconnects_with_reason(venue):
    async with running(venue.url, opts(max_size=4096)) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        big = json.dumps({"t": "noise", "x": "a" * 10_000})
        for ws in list(venue.conns):
            await ws.send(big)
        await wait_for(lambda: market.state.status is FeedStatus.RECONNECTING)
        assert "size limit" in market.state.reason
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)


async def test_malformed_frames_are_counted_not_raised(venue):
    async with running(venue.url, opts()) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        for ws in list(venue.conns):
            await ws.send("{not json")
            await ws.send(json.dumps({"t": "delta"}))  # right type, missing fields
            await ws.send(b"\x00\x01binary")
        await wait_for(lambda: market.stats.bad_frames >= 3)
        assert market.state.status is FeedStatus.LIVE


async def test_fatal_venue_error_fails_with_reason(venue):
    async with running(venue.url, opts()) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        for ws in list(venue.conns):
            await ws.send(json.dumps({"t": "error", "reason": "instrument [red]gone[/]", "fatal": True}))
        await wait_for(lambda: market.state.status is FeedStatus.FAILED)
        assert market.state.reason == "instrument [red]gone[/]"
        async with asyncio.timeout(3):
            await task  # the session ends by itself


async def test_fatal_venue_error_stays_failed_when_deltas_follow_it(venue):
    """Frames the venue wrote after its fatal error (read in the same burst) must not bring
    the state back to LIVE."""
    async with running(venue.url, opts()) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        for ws in list(venue.conns):
            burst = [json.dumps({"t": "error", "reason": "gone", "fatal": True})]
            burst += [venue.delta() for _ in range(20)]
            await asyncio.gather(*(ws.send(m) for m in burst))
        async with asyncio.timeout(3):
            await task
        assert market.state.status is FeedStatus.FAILED and market.state.reason == "gone"


def test_pipeline_acts_on_nothing_after_a_fatal_error():
    from obview.feed.pipeline import Fatal, FeedPipeline

    class ErrorThenDelta(FakeAdapter):
        def parse(self, stream, frame, ts_local):
            events = super().parse(stream, frame, ts_local)
            if events and isinstance(events[0], VenueError):  # the delta after it in one frame
                return [*events, *super().parse(stream, Script().delta(), ts_local)]
            return events

    adapter = ErrorThenDelta("BTC-PERP", endpoint="ws://127.0.0.1:9")
    market = Market(adapter.default_instrument())
    pipeline = FeedPipeline(adapter, market)
    script = Script()
    pipeline.on_frame("book", script.snap(), time.time())
    assert market.state.status is FeedStatus.LIVE
    applied = pipeline.book_events
    actions = pipeline.on_frame("book", json.dumps({"t": "error", "reason": "gone", "fatal": True}), time.time())
    assert [type(a) for a in actions] == [Fatal]
    assert pipeline.book_events == applied  # the delta behind the error in that frame: ignored
    assert pipeline.on_frame("book", script.delta(), time.time()) == []
    assert pipeline.on_snapshot_body(script.snap().encode(), time.time()) == []
    pipeline.set_state(FeedStatus.LIVE)
    assert market.state.status is FeedStatus.FAILED and market.state.reason == "gone"
    assert pipeline.book_events == applied


async def test_a_stream_with_a_measured_cadence_is_stale_after_a_few_of_its_intervals(venue):
    # fixed, the stale time is 3 s; the book changes every 20 ms, so with the cadence measured
    # (3x the median interval, at least 0.2 s) a stopped book reads STALE within a fraction of it
    async with running(venue.url, opts(), stale_after=3.0, stale_cadence=(3.0, 0.2, 5.0)) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        await wait_for(lambda: market.stats.book_every is not None)
        assert 0 < market.stats.book_every < 0.2
        venue.book_silent = True  # trades and pongs still flow
        t0 = time.monotonic()
        await wait_for(lambda: market.state.status is FeedStatus.STALE, timeout=2.5)
        assert time.monotonic() - t0 < 2.5 < 3.0
        assert market.state.reason.startswith(("no data for 0.", "no book data for 0."))
        venue.book_silent = False
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)


async def test_a_fixed_stale_time_in_the_options_overrides_the_measured_cadence(venue):
    async with running(venue.url, opts(stale_after=3.0), stale_after=3.0, stale_cadence=(3.0, 0.2, 5.0)) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        seen = []
        venue.book_silent = True
        with contextlib.suppress(TimeoutError):
            await wait_for(lambda: False, timeout=1.0, history=seen, market=market)
        assert {s for s, _ in seen} == {FeedStatus.LIVE}
        assert market.stats.book_every is None


async def test_stuck_book_with_trades_flowing_is_stale(venue):
    async with running(venue.url, opts(), stale_after=0.4) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        venue.book_silent = True  # trades keep coming, the book does not move
        await wait_for(lambda: market.state.status is FeedStatus.STALE)
        n = len(market.trades)
        await wait_for(lambda: len(market.trades) > n)
        assert market.state.status in (FeedStatus.STALE, FeedStatus.RECONNECTING, FeedStatus.SYNCING)
        venue.book_silent = False
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)


async def test_a_wall_clock_stepped_back_does_not_hide_a_silent_feed(venue, wall_clock):
    # silence was measured on the wall clock: stepped back an hour, a dead feed read as an hour
    # short of stale and stayed LIVE
    async with running(venue.url, opts(), stale_after=0.4) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        wall_clock(-3600)
        venue.silent = True
        await wait_for(lambda: market.state.status is FeedStatus.STALE, timeout=3)
        assert market.state.reason.startswith("no book data for 0.")
        await wait_for(lambda: market.state.status is FeedStatus.RECONNECTING, timeout=3)
        venue.silent = False
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)


async def test_a_wall_clock_stepped_forward_does_not_cut_a_live_feed(venue, wall_clock):
    # stepped forward an hour, a flowing feed read as an hour silent: STALE and a reconnect
    async with running(venue.url, opts(), stale_after=0.4) as (market, session, task):
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        seen = []
        venue.silent = True  # a pause well short of stale_after, the step within it
        with contextlib.suppress(TimeoutError):
            await wait_for(lambda: False, timeout=0.1, history=seen, market=market)
        wall_clock(3600)
        with contextlib.suppress(TimeoutError):
            await wait_for(lambda: False, timeout=0.15, history=seen, market=market)
        venue.silent = False
        with contextlib.suppress(TimeoutError):
            await wait_for(lambda: False, timeout=1.0, history=seen, market=market)
        assert {s for s, _ in seen} == {FeedStatus.LIVE}
        assert venue.connections == 1
