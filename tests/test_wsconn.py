"""SinkConnection: messages straight from the parser to a callback, in order, bounded."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from obview.feed.session import FeedSession
from obview.feed.wsconn import SinkConnection, sink_connection_factory
from obview.market import Market
from test_session import FakeAdapter, opts, wait_for
from test_session import venue as venue  # noqa: F401  (the scripted venue fixture)


async def _server(handler):
    server = await serve(handler, "127.0.0.1", 0, compression=None, max_size=None)
    return server, f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_messages_before_attach_are_held_then_delivered_in_order_with_fragments_joined():
    async def handler(ws):
        await ws.send("first")  # arrives with (or right after) the handshake answer
        await ws.send(["frag-", "men", "ted"])  # one message in three frames
        await ws.send(b"\x00binary")
        await ws.ping()
        await ws.send("last")
        await ws.wait_closed()

    server, url = await _server(handler)
    try:
        async with asyncio.timeout(10):
            ws = await connect(url, compression=None, create_connection=sink_connection_factory)
            assert isinstance(ws, SinkConnection)
            await asyncio.sleep(0.2)  # everything is in before the sink is attached
            got: list[tuple[bytes, float]] = []
            ws.attach(lambda data, at: got.append((data, at)))
            assert [d for d, _ in got] == [b"first", b"frag-mented", b"\x00binary", b"last"]
            assert all(type(d) is bytes and at > 0 for d, at in got)
            await ws.send("after")  # the connection still works both ways
            await ws.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_client_that_has_not_attached_stops_reading_the_socket():
    class Small(SinkConnection):
        early_max = 4

    async def handler(ws):
        for i in range(2000):
            await ws.send(f"{i:06d}" + "x" * 200)
        await ws.wait_closed()

    server, url = await _server(handler)
    try:
        async with asyncio.timeout(10):
            ws = await connect(url, compression=None, create_connection=Small)
            await asyncio.sleep(0.3)
            # bounded: paused after the read that passed early_max, the rest stays in the kernel
            assert ws._paused and 4 <= len(ws._early) < 2000
            got: list[bytes] = []
            ws.attach(lambda data, at: got.append(data))
            await wait_for(lambda: len(got) == 2000)
            assert [int(g[:6]) for g in got] == list(range(2000))
            await ws.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_fragmented_message_over_max_size_closes_with_1009():
    async def handler(ws):
        await ws.send(["a" * 600, "b" * 600, "c" * 600])
        await ws.wait_closed()

    server, url = await _server(handler)
    try:
        async with asyncio.timeout(10):
            ws = await connect(url, compression=None, max_size=1000, create_connection=sink_connection_factory)
            got: list[bytes] = []
            ws.attach(lambda data, at: got.append(data))
            await ws.wait_closed()
            assert got == [] and ws.protocol.close_exc.sent.code == 1009
    finally:
        server.close()
        await server.wait_closed()


class Exploding(FakeAdapter):
    def parse(self, stream, frame, ts_local):
        if b'"delta"' in frame:
            raise RuntimeError("boom in the receive path")
        return super().parse(stream, frame, ts_local)


@pytest.mark.filterwarnings("ignore")
async def test_a_bug_on_the_receive_path_reconnects_with_a_reason_not_a_crash(venue):
    adapter = Exploding("BTC-PERP", endpoint=venue.url)
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=opts())
    seen: list[str] = []
    task = session.start()
    try:
        await wait_for(lambda: seen.append(market.state.reason) or venue.connections >= 3)
        assert any("boom in the receive path" in r for r in seen)
        assert not task.done()
    finally:
        await session.stop()
        task.cancel()
