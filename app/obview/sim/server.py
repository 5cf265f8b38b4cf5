"""Local WebSocket + HTTP server for the simulator.

One port serves every dialect: each WebSocket upgrade is given to the dialect whose path prefix
matches the request path, plain HTTP GETs go to that dialect's ``http`` (REST snapshots,
instrument facts). One stepping task advances every market at the configured rate and fans
each update out to all connections; each connection has a bounded send queue drained by its
own writer task, so a slow client is closed (1008) instead of slowing the others down or
growing memory.

``Faults`` (obview.sim.faults) injects the failures the rest of the project must survive:
dropped, corrupted and duplicated frames, garbage frames, refused handshakes; ``kick``, ``pause``
and ``set_rate`` cover disconnects, silent feeds and bursts.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from obview.sim.dialects import load_dialects, match_path
from obview.sim.dialects.base import Dialect, Out
from obview.sim.engine import SIM_SYMBOLS, SimMarket
from obview.sim.events import SimUpdate
from obview.sim.faults import Faults

log = logging.getLogger(__name__)

DEFAULT_RATE = 20.0
MAX_STEPS_PER_TICK = 500  # steps per stepping tick at most, whatever the rate


@dataclass(eq=False)
class Client:
    """One accepted connection: its dialect and bounded send queue."""

    ws: ServerConnection
    dialect: Dialect
    queue: asyncio.Queue[str]
    writer: asyncio.Task[None] | None = None
    closing: bool = False
    sent: int = 0
    opened: float = field(default_factory=time.time)


class SimServer:
    """The running simulator server (create with ``start_server``)."""

    host: str
    port: int

    def __init__(
        self,
        host: str,
        seed: int,
        symbols: Iterable[str] | None,
        rate: float,
        max_size: int,
        queue_size: int = 4096,
    ) -> None:
        start = time.time()
        self.host = host
        self.port = 0
        self.seed = seed
        self.max_size = max_size
        self.queue_size = queue_size
        self.markets: dict[str, SimMarket] = {
            s: SimMarket(s, seed=seed, start_time=start) for s in (symbols or SIM_SYMBOLS)
        }
        self.faults = Faults()
        self.faults._broadcast = self._broadcast
        self.dialects = load_dialects()
        self.clients: set[Client] = set()
        self.connections_total = 0  # WebSocket upgrade attempts, refused ones included
        self.slow_closed = 0  # clients closed because their send queue overflowed
        self.steps = 0
        self.rate = rate
        self._running = asyncio.Event()
        self._running.set()
        self._server: Server | None = None
        self._stepper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- public API -------------------------------------------------------------------------------
    def url(self, path: str = "/demo") -> str:
        return f"ws://{self._netloc()}{path}"

    def http_url(self, path: str = "") -> str:
        return f"http://{self._netloc()}{path}"

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def set_rate(self, updates_per_s: float) -> None:
        """Simulator steps per second per symbol (0 stops stepping but keeps heartbeats)."""
        self.rate = max(0.0, float(updates_per_s))

    def pause(self) -> None:
        """Go silent: no steps, no heartbeats, nothing sent; sockets stay open."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    async def kick(self, abrupt: bool = False, path: str | None = None) -> None:
        """Close every client connection (only those on a path starting with ``path``, when
        given): a clean close (1001), or a TCP abort."""
        clients = [c for c in self.clients if path is None or c.dialect.path.startswith(path)]
        if abrupt:
            for c in clients:
                c.closing = True
                c.ws.transport.abort()
            return
        await asyncio.gather(
            *(self._close_client(c, 1001, "kicked") for c in clients), return_exceptions=True
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._stepper is not None:
            self._stepper.cancel()
            await asyncio.gather(self._stepper, return_exceptions=True)
        self._running.set()  # let paused writers finish
        if self._server is not None:
            self._server.close()
            try:
                async with asyncio.timeout(5):
                    await self._server.wait_closed()
            except TimeoutError:
                for c in list(self.clients):
                    c.ws.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> SimServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- startup ----------------------------------------------------------------------------------
    async def _start(self, port: int) -> None:
        self._server = await serve(
            self._handle,
            self.host,
            port,
            process_request=self._process_request,
            max_size=self.max_size,
            close_timeout=2,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._stepper = asyncio.create_task(self._step_loop(), name="sim-stepper")

    # -- HTTP side ----------------------------------------------------------------------------------
    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        target = urlsplit(request.path)
        if upgrade:
            self.connections_total += 1
            if self.faults.refuse_status is not None:
                res = connection.respond(self.faults.refuse_status, "refused (fault injection)\n")
                if self.faults.refuse_retry_after is not None:
                    res.headers["Retry-After"] = self.faults.refuse_retry_after
                return res
            if self._closed:
                return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, "shutting down\n")
            if match_path(self.dialects, target.path) is None:
                return connection.respond(
                    http.HTTPStatus.NOT_FOUND, "no dialect serves this path\n"
                )
            return None
        query = dict(parse_qsl(target.query))
        best = match_path(self.dialects, target.path)
        order = [best] if best is not None else []
        order += [d for d in self.dialects.values() if d is not best]
        for cls in order:
            try:
                res = cls.http(self.markets, target.path, query, b"")
            except Exception:
                log.exception("simulator dialect %s failed on HTTP %s", cls.name, target.path)
                return connection.respond(http.HTTPStatus.INTERNAL_SERVER_ERROR, "dialect error\n")
            if res is not None:
                return self._http_response(connection, *res)
        return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")

    @staticmethod
    def _http_response(connection: ServerConnection, status: int, body: bytes) -> Response:
        resp = connection.respond(status, "")
        resp.body = body
        del resp.headers["Content-Length"]
        del resp.headers["Content-Type"]
        resp.headers["Content-Length"] = str(len(body))
        is_json = body[:1] in (b"{", b"[")
        resp.headers["Content-Type"] = (
            "application/json" if is_json else "text/plain; charset=utf-8"
        )
        return resp

    # -- WebSocket side ---------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        cls = match_path(self.dialects, path)
        if cls is None:  # process_request already refused these
            return
        client = Client(ws, cls(self.markets, path), asyncio.Queue(self.queue_size))
        client.writer = asyncio.create_task(self._writer(client), name="sim-writer")
        self.clients.add(client)
        try:
            self._call(client, client.dialect.on_connect)
            async for msg in ws:
                if client.closing:
                    continue  # being dropped: read until the close completes, answer nothing
                if isinstance(msg, bytes):
                    msg = msg.decode("utf-8", "replace")
                self._call(client, client.dialect.on_message, msg)
                await asyncio.sleep(0)  # a client flooding us must not starve the others
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)
            client.closing = True
            client.writer.cancel()
            await asyncio.gather(client.writer, return_exceptions=True)

    def _call(self, client: Client, fn: Callable[..., list[Out]], *args: object) -> None:
        try:
            outs = fn(*args)
        except Exception:
            log.exception("simulator dialect %s failed", client.dialect.name)
            return
        if outs:
            self._send(client, outs)

    def _send(self, client: Client, outs: list[Out]) -> None:
        if client.closing:
            return
        put = client.queue.put_nowait
        apply = self.faults.apply
        try:
            for out in outs:
                for text in apply(out):
                    put(text)
        except asyncio.QueueFull:
            self._drop_slow(client)

    def _broadcast(self, text: str) -> int:
        n = 0
        for c in list(self.clients):
            if c.closing:
                continue
            try:
                c.queue.put_nowait(text)
                n += 1
            except asyncio.QueueFull:
                self._drop_slow(c)
        return n

    def _drop_slow(self, client: Client) -> None:
        """Close a client whose send queue overflowed (it reads slower than we send)."""
        if client.closing:
            return
        client.closing = True
        self.slow_closed += 1
        log.warning("simulator client too slow (send queue overflow): closing it")
        self._spawn(self._close_client(client, 1008, "send queue overflow"))

    async def _writer(self, client: Client) -> None:
        ws, queue, running = client.ws, client.queue, self._running
        try:
            while True:
                text = await queue.get()
                if not running.is_set():
                    await running.wait()
                await ws.send(text)
                client.sent += 1
        except ConnectionClosed:
            pass

    async def _close_client(self, client: Client, code: int, reason: str) -> None:
        client.closing = True
        if client.writer is not None:
            client.writer.cancel()
        try:
            async with asyncio.timeout(2):
                await client.ws.close(code, reason)
        except TimeoutError:
            client.ws.transport.abort()
        except Exception:
            client.ws.transport.abort()

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- stepping ---------------------------------------------------------------------------------
    def step_all(self, now: float | None = None) -> list[SimUpdate]:
        """Advance every market once and fan the updates out (the stepping task calls this)."""
        now = time.time() if now is None else now
        updates = []
        for m in self.markets.values():
            update = m.step(now)
            updates.append(update)
            for c in list(self.clients):
                if not c.closing:
                    self._call(c, c.dialect.on_update, update)
        self.steps += 1
        return updates

    async def _step_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        owed = 0.0
        next_beat = last + 1.0
        while True:
            rate = self.rate
            interval = 1.0 / rate if rate > 0 else 0.1
            await asyncio.sleep(min(max(interval, 0.002), 0.1))
            now = loop.time()
            if not self._running.is_set():
                await self._running.wait()
                last = now = loop.time()
                owed = 0.0
                next_beat = now + 1.0
                continue
            owed += (now - last) * self.rate
            last = now
            n = int(owed)
            owed -= n
            # after a stall, catch up at most a quarter second of steps (the market's own
            # clock still jumps to now) rather than flooding every client at once
            cap = min(MAX_STEPS_PER_TICK, max(1, int(self.rate * 0.25)))
            if n > cap:
                n, owed = cap, 0.0
            if n:
                wall = time.time()
                for k in range(n):
                    try:
                        self.step_all(wall - (n - 1 - k) / self.rate)
                    except Exception:
                        log.exception("simulator step failed")
                # let writers run between batches
                await asyncio.sleep(0)
            if now >= next_beat:
                next_beat = now + 1.0
                for c in list(self.clients):
                    if not c.closing:
                        self._call(c, c.dialect.heartbeat)


async def start_server(
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 1,
    symbols: Iterable[str] | None = None,
    rate: float = DEFAULT_RATE,
    max_size: int = 2**20,
    queue_size: int = 4096,
) -> SimServer:
    """Start the simulator server (port 0: an ephemeral port, see ``server.port``)."""
    server = SimServer(host, seed, symbols, rate, max_size, queue_size)
    await server._start(port)
    return server


def run_demo_server(
    host: str = "127.0.0.1", port: int = 8765, seed: int = 1, rate: float = DEFAULT_RATE
) -> None:
    """Run the server until Ctrl-C (the ``obview demo-server`` command)."""

    async def main() -> None:
        server = await start_server(host, port, seed, rate=rate)  # OSError: the caller says it
        try:
            print(f"obview demo server on {server.url('/demo')} (seed {seed})", flush=True)
            for name, cls in server.dialects.items():
                paths = ", ".join(server.url(p) for p in cls.paths)
                print(f"  {name:<12} {paths}", flush=True)
            print("Ctrl-C to stop.", flush=True)
            await asyncio.Future()
        finally:
            await server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
