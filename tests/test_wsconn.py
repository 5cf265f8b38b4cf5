"""SinkConnection: messages straight from the parser to a callback, in order, bounded."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import random

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.protocol import State

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


# -- the fast frame cutter, against a raw server that writes exact bytes in odd chunks ----------
def _frame(payload: bytes, op: int = 1, fin: bool = True, rsv: int = 0, mask: bool = False) -> bytes:
    b0 = (0x80 if fin else 0) | rsv | op
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, m | 127]) + n.to_bytes(8, "big")
    if mask:
        key = b"\x01\x02\x03\x04"
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
        head += key
    return head + payload


class RawServer:
    """Answers the handshake, then writes ``script`` (bytes) in chunks of random sizes and keeps
    what the client sends (its frames, unparsed)."""

    def __init__(self, script: bytes, seed: int = 3, max_chunk: int = 3000) -> None:
        self.script = script
        self.rng = random.Random(seed)
        self.max_chunk = max_chunk
        self.got = bytearray()

    async def handle(self, reader, writer) -> None:
        try:
            req = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in req.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            await asyncio.sleep(0.2)  # the client attaches before the frames come
            data, i = self.script, 0
            while i < len(data):
                k = self.rng.randint(1, self.max_chunk)
                writer.write(data[i : i + k])
                await writer.drain()
                await asyncio.sleep(0)
                i += k
            while True:  # keep what the client answers; close once it has been quiet a while
                try:
                    more = await asyncio.wait_for(reader.read(65536), 0.5)
                except TimeoutError:
                    break
                if not more:
                    break
                self.got += more
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _run_raw(script: bytes, max_size: int = 2**20, until_n: int | None = None, **kw):
    srv = RawServer(script, **kw)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    got: list[bytes] = []
    try:
        async with asyncio.timeout(15):
            ws = await connect(
                f"ws://127.0.0.1:{port}", compression=None, max_size=max_size,
                create_connection=sink_connection_factory,
            )  # fmt: skip
            ws.attach(lambda data, at: got.append(data))
            if until_n is not None:
                await wait_for(lambda: len(got) >= until_n or ws.protocol.state is State.CLOSED, timeout=10)
            else:
                await ws.wait_closed()
            await asyncio.sleep(0.05)
            return ws, got, srv
    finally:
        server.close()


async def test_frames_of_every_length_split_anywhere_arrive_whole_and_in_order():
    rng = random.Random(5)
    payloads = []
    for i in range(400):
        n = rng.choice([0, 1, 125, 126, 127, 200, 65535, 65536, 70000, rng.randint(2, 3000)])
        payloads.append(f"{i:05d}".encode() + bytes([65 + i % 26]) * n)
    script = b"".join(_frame(p, op=1 if i % 3 else 2) for i, p in enumerate(payloads))
    ws, got, _ = await _run_raw(script, until_n=len(payloads))
    assert got == payloads and not ws._slow
    await ws.close()


async def test_control_frames_in_between_are_answered_by_websockets():
    script = _frame(b"a") + _frame(b"are you there", op=9) + _frame(b"b") + _frame(b"\x03\xe8bye", op=8)
    ws, got, srv = await _run_raw(script)
    assert got == [b"a", b"b"] and not ws._slow
    assert ws.protocol.close_exc.rcvd.code == 1000 and ws.protocol.close_exc.rcvd.reason == "bye"
    # the client answered the ping with its payload (masked, as a client must) and the close
    assert srv.got[0] == 0x8A and srv.got[1] == 0x80 | len(b"are you there")


async def test_a_fragmented_message_hands_the_connection_to_websockets_and_still_arrives():
    script = (
        _frame(b"one")
        + _frame(b"fr", fin=False)
        + _frame(b"ag", op=0, fin=False)
        + _frame(b"ment", op=0)
        + _frame(b"two")
    )
    ws, got, _ = await _run_raw(script, until_n=3)
    assert got == [b"one", b"fragment", b"two"] and ws._slow
    await ws.close()


@pytest.mark.parametrize(
    "bad, code",
    [
        (_frame(b"x" * 5000), 1009),  # over max_size
        (_frame(b"masked", mask=True), 1002),  # a server must not mask
        (_frame(b"rsv", rsv=0x40), 1002),  # extension bits with no extension
        (_frame(b"op", op=3), 1002),  # reserved opcode
        (_frame(b"c", op=0), 1002),  # a continuation with nothing to continue
        (_frame(b"p" * 126, op=9), 1002),  # control frame over 125 bytes
    ],
    ids=["oversized", "masked", "rsv", "opcode", "stray-cont", "long-ping"],
)
async def test_what_the_cutter_does_not_know_is_refused_by_websockets(bad, code):
    ws, got, _ = await _run_raw(_frame(b"ok") + bad + _frame(b"never"), max_size=4096)
    assert got == [b"ok"]
    assert ws.protocol.close_exc.sent.code == code


@contextlib.asynccontextmanager
async def _one_write(script: bytes):
    """A SinkConnection to a raw server that writes ``script`` in one go, so that the client's
    reads come big."""
    srv = RawServer(script)
    srv.rng.randint = lambda a, b: len(script)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    try:
        yield await connect(
            f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}", compression=None,
            create_connection=sink_connection_factory,
        )  # fmt: skip
    finally:
        server.close()


async def test_a_burst_in_one_read_is_delivered_in_slices_with_the_loop_free_between_them(monkeypatch):
    # every frame slower than the slice: the cutter hands back to the loop every 32 frames
    monkeypatch.setattr(SinkConnection, "slice_seconds", 0.0, raising=False)
    payloads = [f"{i:05d}".encode() + b"x" * 100 for i in range(2000)]
    script = b"".join(_frame(p) for p in payloads)
    turns = 0
    stop = False

    async def ticker():
        nonlocal turns
        while not stop:
            turns += 1
            await asyncio.sleep(0)

    tick = asyncio.create_task(ticker())
    got_turns: list[int] = []
    got: list[bytes] = []
    try:
        async with asyncio.timeout(15), _one_write(script) as ws:
            ws.attach(lambda data, at: (got.append(data), got_turns.append(turns)))
            await wait_for(lambda: len(got) >= len(payloads), timeout=10)
            await ws.close()
    finally:
        stop = True
        await tick
    assert got == payloads  # whole, in order
    # the other task ran between slices: at least one turn per 32 frames of the biggest read
    runs = [len(list(g)) for _, g in itertools.groupby(got_turns)]
    assert max(runs) <= 32 and len(runs) >= len(payloads) // 32


async def test_a_sink_that_raises_on_a_later_slice_ends_the_connection_not_a_silent_pause(monkeypatch):
    monkeypatch.setattr(SinkConnection, "slice_seconds", 0.0)
    errors: list[dict] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    script = b"".join(_frame(f"{i:05d}".encode() + b"x" * 100) for i in range(2000))
    got: list[bytes] = []

    def sink(data: bytes, at: float) -> None:
        got.append(data)
        if len(got) == 100:  # past the first slice of 32
            raise RuntimeError("boom in a later slice")

    try:
        async with asyncio.timeout(15), _one_write(script) as ws:
            ws.attach(sink)
            await ws.wait_closed()
    finally:
        loop.set_exception_handler(None)
    assert len(got) == 100 and ws.transport.is_closing()
    assert any("boom in a later slice" in str(e.get("exception")) for e in errors)
