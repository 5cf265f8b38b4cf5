"""FeedSession races between a connection ending and work begun for it: a REST snapshot still
in flight when the book stream drops, and a fatal venue error while another stream is still in
its handshake."""

from __future__ import annotations

import asyncio
import json
import time

from websockets.asyncio.server import serve

from obview.feed.session import FeedSession
from obview.market import Market
from obview.model import FeedStatus
from obview.venues.base import ResyncMode, StreamSpec
from test_session import FakeAdapter, opts, running, wait_for
from test_session import venue as venue  # noqa: F401  (the scripted venue fixture)


async def test_a_rest_snapshot_fetched_for_a_lost_connection_is_not_applied(venue):
    # the fetch outlived the connection: applied, it set LIVE during the reconnect backoff with
    # no connection at all (a frozen book shown LIVE for up to the backoff), or landed on the
    # next connection's deltas
    venue.snap = lambda: json.dumps({"t": "noop"})  # a REST venue: no websocket snapshot
    release = asyncio.Event()
    calls: list[float] = []

    async def fetcher(req):
        calls.append(time.monotonic())
        if len(calls) == 1:
            await release.wait()  # a slow answer (Binance: up to the request timeout)
        return json.dumps({"s": venue.seq, "b": [[venue.bid, 1.0]], "a": [[venue.ask, 1.0]]}).encode()

    o = opts(backoff_base=1.6, backoff_max=1.6)  # the reconnect waits 0.8-1.6 s
    async with running(venue.url, o, fetcher=fetcher, rest_endpoint="http://127.0.0.1:9", mode=ResyncMode.REST) as (market, session, task):
        await wait_for(lambda: len(calls) == 1)
        for ws in list(venue.conns):  # the venue drops the connection
            await ws.close()
        await wait_for(lambda: market.state.status is FeedStatus.RECONNECTING)
        seen: list = []
        release.set()  # the old answer arrives now, or would have
        await wait_for(lambda: session.book_stream.ws is not None, history=seen, market=market)
        assert FeedStatus.LIVE not in {s for s, _ in seen}
        # the new connection asked for its own snapshot and went LIVE on it
        await wait_for(lambda: market.state.status is FeedStatus.LIVE)
        assert len(calls) == 2 and venue.connections == 2


class TwoStreams(FakeAdapter):
    trades_url = ""

    def streams(self):
        return [
            StreamSpec("book", self.endpoint + "/ws", ['{"op":"sub"}'], stale_after=30),
            StreamSpec("trades", self.trades_url, ['{"op":"subt"}'], book=False, stale_after=30),
        ]


async def test_a_fatal_error_ends_the_session_while_another_stream_is_in_its_handshake():
    # the other stream finished connecting after the error, read forever, and the session
    # never ended: a FAILED market a retry could not replace
    async def book_handler(ws):
        await ws.recv()
        await asyncio.sleep(0.2)
        await ws.send(json.dumps({"t": "error", "reason": "unknown instrument", "fatal": True}))
        await ws.wait_closed()

    trades_conns: list = []

    async def trades_handler(ws):
        trades_conns.append(ws)
        await ws.wait_closed()

    async def slow_handshake(conn, req):  # answers the upgrade after the error
        await asyncio.sleep(1.0)

    async with (
        serve(book_handler, "127.0.0.1", 0) as s1,
        serve(trades_handler, "127.0.0.1", 0, process_request=slow_handshake) as s2,
    ):
        ad = TwoStreams("BTC-PERP", endpoint=f"ws://127.0.0.1:{s1.sockets[0].getsockname()[1]}")
        ad.trades_url = f"ws://127.0.0.1:{s2.sockets[0].getsockname()[1]}/t"
        market = Market(ad.default_instrument())
        session = FeedSession(ad, market, options=opts())
        task = session.start()
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(task)
            assert market.state.status is FeedStatus.FAILED
            assert market.state.reason == "unknown instrument"
            assert all(st.ws is None for st in session.streams.values())
            await asyncio.sleep(1.2)  # past the slow handshake: nothing connects afterwards
            assert all(ws.state.name == "CLOSED" for ws in trades_conns)
        finally:
            await session.stop()
            task.cancel()


async def test_a_fatal_error_ends_the_session_while_another_stream_waits_to_reconnect(venue):
    # the other stream, in its backoff when the error came, would have connected once more
    async def book_handler(ws):
        await ws.recv()
        await asyncio.sleep(0.3)
        await ws.send(json.dumps({"t": "error", "reason": "unknown instrument", "fatal": True}))
        await ws.wait_closed()

    async with serve(book_handler, "127.0.0.1", 0) as s1:
        ad = TwoStreams("BTC-PERP", endpoint=f"ws://127.0.0.1:{s1.sockets[0].getsockname()[1]}")
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ad.trades_url = f"ws://127.0.0.1:{s.getsockname()[1]}/t"  # refused: backs off
        s.close()
        market = Market(ad.default_instrument())
        session = FeedSession(ad, market, options=opts(backoff_base=5.0, backoff_max=5.0))
        task = session.start()
        try:
            async with asyncio.timeout(3):  # well short of the 2.5-5 s backoff
                await asyncio.shield(task)
            assert market.state.status is FeedStatus.FAILED
        finally:
            await session.stop()
            task.cancel()


async def test_a_defect_in_the_feed_code_reads_failed_not_frozen(monkeypatch):
    """An exception the stream loop does not expect ends the session: the market says FAILED
    and why, instead of keeping its last state with nothing behind it."""
    from faultrig import rig

    async with asyncio.timeout(20), rig() as r:
        def broken(st):
            raise TypeError("a defect")

        monkeypatch.setattr(r.session, "_backoff", broken)
        await r.server.kick()
        await r.until(lambda: r.state.status is FeedStatus.FAILED)
        assert r.state.reason == "internal error: a defect"
        assert r.task.done() and r.task.exception() is None


async def test_a_server_that_floods_pings_and_never_reads_is_dropped_with_memory_bounded():
    """Each ping is answered with a pong written whether or not the server reads: one that
    floods pings and never reads grew the process by megabytes a second, LIVE throughout."""
    ping = b"\x89\x7d" + b"p" * 125  # a ping with the largest payload, unmasked (server side)

    done = asyncio.Event()  # the handler's end: the server's close waited 30 s for it

    async def handler(ws):
        ws.transport.pause_reading()
        for _ in range(60):  # far more than the socket buffers hold
            ws.transport.write(ping * 2000)
            await asyncio.sleep(0.01)
        await done.wait()
        ws.transport.abort()

    async with serve(handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            async with asyncio.timeout(20), running(url, opts(max_send_buffer=256 * 1024)) as (market, session, task):
                await wait_for(
                    lambda: market.state.status is FeedStatus.RECONNECTING
                    and market.state.reason.startswith("venue not reading (over 0.25 MiB unsent)"),
                    timeout=15,
                )
        finally:
            done.set()


async def test_a_protocol_error_on_a_socket_the_server_keeps_open_says_so_within_the_close_timeout():
    """A frame with reserved bits set: the connection ends within the close timeout, and the
    reason is the server's protocol error (it read 'connection lost (no close frame)')."""

    done = asyncio.Event()  # the handler's end: the server's close waited 30 s for it

    async def handler(ws):
        ws.transport.write(b"\xc1\x02hi")  # FIN + RSV1 on a text frame, no extension agreed
        ws.transport.pause_reading()
        await done.wait()
        ws.transport.abort()  # not a close handshake the paused reading would wait 10 s on

    async with serve(handler, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            async with asyncio.timeout(20), running(url, opts(), stale_after=30.0) as (market, session, task):
                t0 = time.monotonic()
                await wait_for(lambda: market.state.status is FeedStatus.RECONNECTING, timeout=10)
                assert time.monotonic() - t0 < 5  # the close timeout is 2 s
                assert market.state.reason.startswith("protocol error: reserved bits must be 0"), market.state.reason
        finally:
            done.set()
