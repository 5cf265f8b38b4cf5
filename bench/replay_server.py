"""A purpose-built depth-frame server for the ingest and peer benchmarks (run as its own process).

    python -m bench.replay_server [--port 0] [--steps 4000] [--seed 3]

It prints ``PORT <n>`` once listening. The simulator's own stepping is too slow to offer tens of
thousands of frames per second, so this server steps ``SimMarket`` ahead of time and replays the
result: a cycle of the forward diffs followed by their inverses (back to the start), so every
book the client sees is a real simulator book and the cycle can repeat without crossing. Only
the sequence numbers and the send-time stamp are filled in per frame.

WebSocket (RFC 6455, no extensions), written directly on asyncio streams so the server side
costs far less than the client under test:

- ``/demo[?rate=R&count=N]``: the demo protocol. ``{"op":"subscribe"}`` gets an ack and a
  snapshot, then ``count`` deltas at ``rate`` frames/s (0: as fast as the client reads; TCP flow
  control applies). ``ts`` is the send time in milliseconds with a microsecond fraction.
- ``/public/stream?streams=btcusdt@depth...`` (combined) or ``/ws`` + ``SUBSCRIBE`` (raw): the
  Binance USD-M diff-depth dialect, ``U``/``u``/``pu`` chained.
- HTTP ``GET /fapi/v1/depth`` (Binance REST snapshot of the book at the current update id),
  ``GET /ctl?rate=R&count=N`` (defaults for the next streams; answers the first sequence
  number every stream starts after), anything else 404.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import struct
import time
from urllib.parse import parse_qsl, urlsplit

import orjson

from obview.sim.engine import SimMarket

SYMBOL = "BTC-PERP"
NATIVE = "BTCUSDT"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HOLD_AFTER = 20  # Binance: events sent before the stream waits for the REST snapshot


class Cycle:
    """Pre-encoded level arrays of a palindromic simulator run."""

    def __init__(self, steps: int, seed: int) -> None:
        t0 = 1_700_000_000.0
        m = SimMarket(SYMBOL, seed=seed, start_time=t0)
        fp, fs = m.fmt_price, m.fmt_size
        self.start_seq = m.seq
        bids = {fp(p): fs(s) for p, s in m.book.bids.items()}
        asks = {fp(p): fs(s) for p, s in m.book.asks.items()}
        self.bids0, self.asks0 = dict(bids), dict(asks)
        fwd: list[tuple[list, list]] = []
        inv: list[tuple[list, list]] = []
        zero = fs(0.0)
        k = 0
        while len(fwd) < steps:
            k += 1
            u = m.step(t0 + 0.01 * k)
            if not u.bids and not u.asks:
                continue
            fb = [[fp(p), fs(s)] for p, s in u.bids]
            fa = [[fp(p), fs(s)] for p, s in u.asks]
            ib = [[p, bids.get(p, zero)] for p, _ in fb]
            ia = [[p, asks.get(p, zero)] for p, _ in fa]
            for side, levels in ((bids, fb), (asks, fa)):
                for p, s in levels:
                    if float(s) > 0:
                        side[p] = s
                    else:
                        side.pop(p, None)
            fwd.append((fb, fa))
            inv.append((ib, ia))
        # (bids, asks, bids json, asks json) in send order
        self.frames = [
            (b, a, orjson.dumps(b).decode(), orjson.dumps(a).decode()) for b, a in fwd + inv[::-1]
        ]


class Stream:
    """Per-connection state: dialect, sequence and the live book (for Binance snapshots)."""

    def __init__(self, server: ReplayServer, dialect: str, combined: bool) -> None:
        self.server = server
        self.dialect = dialect
        self.combined = combined
        self.pos = 0
        self.seq = server.cycle.start_seq
        self.bids = dict(server.cycle.bids0)
        self.asks = dict(server.cycle.asks0)
        # Binance: after a few events the stream waits for the client's REST snapshot, so the
        # snapshot never lands far ahead of what the client has read (at full speed the socket
        # buffers hold thousands of frames, which the client would then skip, not apply)
        self.snapshot_taken = asyncio.Event()

    def next_frame(self, track: bool) -> str:
        cyc = self.server.cycle.frames
        b, a, bj, aj = cyc[self.pos]
        self.pos = (self.pos + 1) % len(cyc)
        prev = self.seq
        self.seq = seq = prev + 1
        if track:
            for side, levels in ((self.bids, b), (self.asks, a)):
                for p, s in levels:
                    if float(s) > 0:
                        side[p] = s
                    else:
                        side.pop(p, None)
        now = time.time()
        if self.dialect == "demo":
            return f'{{"type":"delta","symbol":"{SYMBOL}","seq":{seq},"prev_seq":{prev},"ts":{now * 1000:.3f},"bids":{bj},"asks":{aj}}}'
        ms = int(now * 1000)
        ev = f'{{"e":"depthUpdate","E":{ms},"T":{ms},"s":"{NATIVE}","U":{seq},"u":{seq},"pu":{prev},"b":{bj},"a":{aj}}}'
        if self.combined:
            return f'{{"stream":"btcusdt@depth@100ms","data":{ev}}}'
        return ev

    def snapshot_doc(self, limit: int) -> dict:
        bids = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda kv: float(kv[0]))[:limit]
        return {"seq": self.seq, "bids": [list(x) for x in bids], "asks": [list(x) for x in asks]}


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


class ReplayServer:
    def __init__(self, steps: int, seed: int) -> None:
        self.cycle = Cycle(steps, seed)
        self.rate = 0.0
        self.count = 100_000
        self.latest: Stream | None = None  # the Binance REST snapshot answers for this stream

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        }
        url = urlsplit(target)
        query = dict(parse_qsl(url.query))
        if headers.get("upgrade", "").lower() != "websocket":
            await self.http(writer, url.path, query)
            return
        accept = base64.b64encode(
            hashlib.sha1(headers.get("sec-websocket-key", "").encode() + GUID).digest()
        ).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        writer.transport.set_write_buffer_limits(high=256 * 1024)
        rate = float(query.get("rate", self.rate))
        count = int(query.get("count", self.count))
        dialect = "demo" if url.path.startswith("/demo") else "binance"
        st = Stream(self, dialect, combined="/stream" in url.path)
        start = asyncio.Event()
        depth_route = not url.path.startswith(
            "/market"
        )  # /market carries trades only: stays silent
        if dialect == "binance" and depth_route:
            self.latest = st
            if "@depth" in query.get("streams", ""):
                start.set()
        sender = asyncio.create_task(self.send(writer, st, rate, count, start))
        try:
            await self.read(reader, writer, st, start)
        finally:
            sender.cancel()
            writer.close()

    async def read(self, reader, writer, st: Stream, start: asyncio.Event) -> None:
        try:
            while True:
                b0, b1 = await reader.readexactly(2)
                op = b0 & 0x0F
                n = b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await reader.readexactly(8))
                mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
                data = bytearray(await reader.readexactly(n))
                for i in range(n):
                    data[i] ^= mask[i & 3]
                if op == 0x8:  # close
                    writer.write(_frame(0x8, bytes(data[:2])))
                    return
                if op == 0x9:  # ping
                    writer.write(_frame(0xA, bytes(data)))
                elif op == 0x1:
                    msg = orjson.loads(bytes(data))
                    if st.dialect == "demo" and msg.get("op") == "subscribe":
                        writer.write(
                            _frame(
                                0x1,
                                orjson.dumps(
                                    {"type": "subscribed", "symbol": SYMBOL, "depth": 500}
                                ),
                            )
                        )
                        snap = st.snapshot_doc(500)
                        doc = {
                            "type": "snapshot",
                            "symbol": SYMBOL,
                            "seq": snap["seq"],
                            "ts": time.time() * 1000,
                            "bids": snap["bids"],
                            "asks": snap["asks"],
                        }
                        writer.write(_frame(0x1, orjson.dumps(doc)))
                        start.set()
                    elif st.dialect == "demo" and msg.get("op") == "ping":
                        writer.write(_frame(0x1, b'{"type":"pong"}'))
                    elif st.dialect == "binance" and msg.get("method") in (
                        "SUBSCRIBE",
                        "UNSUBSCRIBE",
                        "LIST_SUBSCRIPTIONS",
                    ):
                        writer.write(
                            _frame(0x1, orjson.dumps({"result": None, "id": msg.get("id")}))
                        )
                        if msg.get("method") == "SUBSCRIBE" and any(
                            "@depth" in str(x) for x in msg.get("params") or []
                        ):
                            start.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    async def send(
        self,
        writer: asyncio.StreamWriter,
        st: Stream,
        rate: float,
        count: int,
        start: asyncio.Event,
    ) -> None:
        await start.wait()
        track = st.dialect == "binance"
        nxt = st.next_frame
        sent = 0
        t0 = time.perf_counter()
        try:
            while sent < count:
                if rate > 0:
                    due = min(count, int((time.perf_counter() - t0) * rate) + 1)
                    if due <= sent:
                        await asyncio.sleep(
                            max(0.0, (sent + 1) / rate - (time.perf_counter() - t0))
                        )
                        continue
                    batch = due - sent
                else:
                    batch = min(64, count - sent)
                if track and not st.snapshot_taken.is_set():
                    batch = min(batch, HOLD_AFTER - sent) if sent < HOLD_AFTER else 0
                    if not batch:
                        try:
                            await asyncio.wait_for(st.snapshot_taken.wait(), 5.0)
                        except TimeoutError:
                            st.snapshot_taken.set()
                        continue
                writer.write(b"".join(_frame(0x1, nxt(track).encode()) for _ in range(batch)))
                sent += batch
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return

    async def http(self, writer: asyncio.StreamWriter, path: str, query: dict) -> None:
        status, body = 404, b"not found\n"
        if path == "/ctl":
            self.rate = float(query.get("rate", self.rate))
            self.count = int(query.get("count", self.count))
            status, body = (
                200,
                orjson.dumps(
                    {"start_seq": self.cycle.start_seq, "rate": self.rate, "count": self.count}
                ),
            )
        elif path == "/fapi/v1/depth" and self.latest is not None:
            snap = self.latest.snapshot_doc(int(query.get("limit", "1000")))
            self.latest.snapshot_taken.set()
            ms = int(time.time() * 1000)
            status, body = (
                200,
                orjson.dumps(
                    {
                        "lastUpdateId": snap["seq"],
                        "E": ms,
                        "T": ms,
                        "bids": snap["bids"],
                        "asks": snap["asks"],
                    }
                ),
            )
        reason = "OK" if status == 200 else "Not Found"
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        try:
            await writer.drain()
        finally:
            writer.close()


async def main(port: int, steps: int, seed: int, lifetime: float) -> None:
    srv = ReplayServer(steps, seed)
    server = await asyncio.start_server(srv.handle, "127.0.0.1", port)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        # stops by itself, so a benchmark that dies never leaves it behind
        await asyncio.wait_for(server.serve_forever(), lifetime)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m bench.replay_server")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--lifetime", type=float, default=300.0, help="seconds before exiting")
    a = ap.parse_args()
    try:
        asyncio.run(main(a.port, a.steps, a.seed, a.lifetime))
    except (KeyboardInterrupt, TimeoutError):
        pass
