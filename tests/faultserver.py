"""A fault-injecting local venue for the reliability tests, the soak and the UI bench.

``FaultServer`` is the simulator server (``obview.sim.server.SimServer``: every dialect, the
bounded per-client send queues, ``Faults`` for dropped / duplicated / corrupted frames, ``kick``,
``pause``, ``refuse_handshake``) plus the failures a real venue also produces:

=========================  ===================================================================
``kick()``                 clean close (1001) of every client, mid-stream
``reset()``                abrupt TCP reset (SO_LINGER 0 + abort: the peer gets an RST)
``pause()``/``resume()``   silence with the socket left open (no data, no heartbeats)
``freeze()``               a stopped process: silence, and nothing read (no pong, no close reply)
``inject(text)``           any text frame: malformed JSON, unknown message types, ...
``send_binary(data)``      a binary frame
``truncate_next()``        the next delta cut in half (a truncated frame; its seq is lost)
``oversize(n)``            one frame of ``n`` bytes (above the client's ``max_size``)
``faults.drop_next``       skip sequence numbers (SimServer)
``faults.duplicate_next``  duplicate a delta (SimServer)
``reorder_next()``         the next two deltas swapped
``faults.corrupt_next``    wrong checksum (dialects with checksums: OKX)
``cross_next()``           a delta, correctly sequenced, that crosses the book (demo dialect)
``refuse_handshake(429)``  HTTP status instead of the upgrade, optionally with Retry-After (SimServer)
``hang_upgrades = True``   accept TCP, read the upgrade request, never answer it
``pong_delay = s``         answer application pings ``s`` seconds late (demo dialect)
``burst(n)``               ``n`` deltas as fast as the socket allows (back-pressured)
``rest_fault = ...``       REST answers (snapshots, instrument facts): ``"error"`` (503),
                           ``"429"``, ``"slow"`` (0.2-1.5 s late), ``"stale"`` (the last good
                           answer again: an old snapshot), ``"broken"`` (cut short), None
=========================  ===================================================================

It also remembers, per symbol, the best bid and ask (with sizes) after every sequence number it
produced (``bests``), so a watcher can check at any moment that a client's LIVE book is the
server's book at the client's sequence number, and it timestamps every upgrade attempt
(``attempts``) so tests can check reconnect backoff.

``Watch`` is that watcher: it hooks ``Market.version`` (bumped on every visible change) and
also samples every few milliseconds, recording every moment a LIVE book was gapped, crossed,
empty, stale or different from the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import orjson

from obview.market import Market
from obview.model import FeedStatus
from obview.sim.dialects.base import Out
from obview.sim.events import SimUpdate
from obview.sim.server import Client, SimServer

BESTS_KEPT = 50_000  # per symbol; clients never lag the server by more than a few thousand


class FaultServer(SimServer):
    """SimServer with the extra faults listed in the module docstring (start with ``start``)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.attempts: list[float] = []  # monotonic time of each upgrade request
        self.hang_upgrades = False
        self.hung = 0
        self.rest_fault: str | None = None
        self.rest_answers: dict[str, object] = {}  # path -> the last good REST answer
        self.rest_faulted = 0
        self._unhang = asyncio.Event()
        self.pong_delay = 0.0
        self.pings = 0
        self._reorder = 0
        self._held: dict[Client, Out] = {}
        self._cross = 0
        self._truncate = 0
        self.crossed_sent = 0
        self.truncated_sent = 0
        self.bests: dict[str, OrderedDict[int, tuple]] = {s: OrderedDict() for s in self.markets}
        for m in self.markets.values():
            self._remember(m.symbol)

    # -- bookkeeping ------------------------------------------------------------------------------
    def _remember(self, symbol: str) -> None:
        m = self.markets[symbol]
        kept = self.bests[symbol]
        kept[m.seq] = (m.book.best_bid(), m.book.best_ask())
        if len(kept) > BESTS_KEPT:
            kept.popitem(last=False)

    def best_at(self, symbol: str, seq: int | None) -> tuple | None:
        """(best bid, best ask) of the server's book right after ``seq`` (None: not kept)."""
        if seq is None:
            return None
        return self.bests[symbol].get(seq)

    def step_all(self, now: float | None = None) -> list[SimUpdate]:
        updates = super().step_all(now)
        for u in updates:
            self._remember(u.symbol)
        return updates

    # -- handshake faults -----------------------------------------------------------------------
    async def _process_request(self, connection, request):  # type: ignore[override]
        if "websocket" in request.headers.get("Upgrade", "").lower():
            self.attempts.append(time.monotonic())
            if self.hang_upgrades:
                self.hung += 1
                await self._unhang.wait()  # the server's open_timeout or close() ends it
            return super()._process_request(connection, request)
        fault = self.rest_fault
        if fault is not None:
            self.rest_faulted += 1
        if fault == "error":
            return connection.respond(503, "busy\n")
        if fault == "429":
            return connection.respond(429, "too many requests\n")
        if fault == "broken":  # a status line and a promise of 100 kB, then the socket closes
            connection.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{\"a\":")
            connection.transport.close()
            return None
        if fault == "slow":
            await asyncio.sleep(0.2 + 1.3 * (len(self.attempts) % 7) / 6)
        if fault == "stale" and request.path in self.rest_answers:
            return self.rest_answers[request.path]
        res = super()._process_request(connection, request)
        if res is not None and res.status_code == 200:
            self.rest_answers[request.path] = res
        return res

    def attempts_between(self, t0: float, t1: float | None = None) -> list[float]:
        t1 = time.monotonic() if t1 is None else t1
        return [t for t in self.attempts if t0 <= t <= t1]

    # -- frame faults ---------------------------------------------------------------------------
    def reorder_next(self, n: int = 1) -> None:
        """Hold the next delta and send it after the one that follows it (``n`` times)."""
        self._reorder += n

    def cross_next(self, n: int = 1) -> None:
        """Add a bid above the best ask to the next ``n`` deltas (demo dialect), keeping their
        sequence numbers: only the crossed-book check can catch it."""
        self._cross += n

    def truncate_next(self, n: int = 1) -> None:
        """Send only the first half of the next ``n`` deltas."""
        self._truncate += n

    def inject(self, text: str) -> int:
        """Send a raw text frame to every client now (returns how many got it queued)."""
        return self._broadcast(text)

    def send_binary(self, data: bytes) -> int:
        """Send a binary frame to every client now."""
        n = 0
        for c in list(self.clients):
            if not c.closing:
                with contextlib.suppress(asyncio.QueueFull):
                    c.queue.put_nowait(data)  # type: ignore[arg-type]  # the writer sends bytes as binary
                    n += 1
        return n

    def oversize(self, nbytes: int) -> int:
        """One valid JSON text frame of about ``nbytes`` bytes."""
        return self.inject('{"type":"heartbeat","pad":"' + "x" * nbytes + '"}')

    def _send(self, client: Client, outs: list[Out]) -> None:
        if self._reorder or self._cross or self._truncate or client in self._held:
            outs = self._rewrite(client, outs)
        super()._send(client, outs)

    def _rewrite(self, client: Client, outs: list[Out]) -> list[Out]:
        res: list[Out] = []
        for out in outs:
            if out.kind != "delta":
                res.append(out)
                continue
            if self._cross and client.dialect.name == "demo":
                self._cross -= 1
                self.crossed_sent += 1
                out = Out(self._crossed(out.text), kind="delta")
            elif self._truncate:
                self._truncate -= 1
                self.truncated_sent += 1
                out = Out(out.text[: len(out.text) // 2], kind="garbage")
            held = self._held.pop(client, None)
            if held is not None:
                res += [out, held]
            elif self._reorder:
                self._reorder -= 1
                self._held[client] = out
            else:
                res.append(out)
        return res

    def _crossed(self, text: str) -> str:
        msg = orjson.loads(text)
        m = self.markets[msg["symbol"]]
        ask = m.book.best_ask()
        price = (ask[0] if ask else m.mid) + 10 * m.tick
        msg["bids"] = [*msg["bids"], [m.fmt_price(price), m.fmt_size(m.lot)]]
        return orjson.dumps(msg).decode()

    # -- late pongs -------------------------------------------------------------------------------
    def _call(self, client: Client, fn: Callable[..., list[Out]], *args: object) -> None:
        if self.pong_delay and args and fn == client.dialect.on_message and _is_ping(args[0]):
            self.pings += 1
            self._spawn(self._late(client, fn, args, self.pong_delay))
            return
        super()._call(client, fn, *args)

    async def _late(self, client: Client, fn, args, delay: float) -> None:
        await asyncio.sleep(delay)
        if not client.closing:
            super()._call(client, fn, *args)

    # -- connection faults ------------------------------------------------------------------------
    def freeze(self) -> int:
        """Every client connection stops as if its process were stopped (SIGSTOP): nothing sent,
        nothing read, so no pong and no answer to a close."""
        self.pause()
        n = 0
        for c in list(self.clients):
            c.ws.transport.pause_reading()
            n += 1
        return n

    def reset(self) -> int:
        """Abort every client connection with a TCP RST (no close frame, no FIN)."""
        n = 0
        for c in list(self.clients):
            c.closing = True
            sock = c.ws.transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.ws.transport.abort()
            n += 1
        return n

    # -- bursts -----------------------------------------------------------------------------------
    async def burst(self, n: int, symbol: str = "BTC-PERP", chunk: int = 256) -> float:
        """Produce ``n`` deltas of ``symbol`` as fast as the clients read them; returns seconds.

        Each delta changes the size of one of the 20 best levels (a cheap, valid step of the
        simulator's own book), so the book stays realistic and the server's book stays the
        reference. The send queues are drained between chunks: back-pressure, not overflow.
        """
        m = self.markets[symbol]
        rng = m.rng
        high_water = max(chunk, self.queue_size // 2)
        t0 = time.perf_counter()
        for i in range(n):
            is_bid = rng.random() < 0.5
            index = m._nth(is_bid, rng.randrange(20))
            m._cb, m._ca, m._trades = {}, {}, []
            if index is not None:
                m._set(is_bid, index, 1 + rng.randrange(200))
            m.ts = max(m.ts, time.time())
            update = m.finish_step()
            self._remember(symbol)
            for c in list(self.clients):
                if not c.closing:
                    self._call(c, c.dialect.on_update, update)
            if i % chunk == chunk - 1:
                while any(c.queue.qsize() > high_water for c in self.clients if not c.closing):
                    await asyncio.sleep(0.001)
                await asyncio.sleep(0)
        return time.perf_counter() - t0

    async def drained(self, timeout: float = 10.0) -> None:
        """Wait until every client's send queue is empty."""
        async with asyncio.timeout(timeout):
            while any(c.queue.qsize() for c in self.clients if not c.closing):
                await asyncio.sleep(0.005)

    async def close(self) -> None:
        self.hang_upgrades = False
        self._unhang.set()
        await super().close()


def _is_ping(msg: object) -> bool:
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return isinstance(msg, str) and (msg == "ping" or '"ping"' in msg[:40])


async def start_fault_server(
    *,
    seed: int = 1,
    rate: float = 50.0,
    symbols: Iterable[str] | None = ("BTC-PERP",),
    host: str = "127.0.0.1",
    port: int = 0,
    max_size: int = 2**20,
    queue_size: int = 8192,
) -> FaultServer:
    """Start a FaultServer on 127.0.0.1 (an ephemeral port unless ``port`` is given)."""
    server = FaultServer(host, seed, list(symbols) if symbols else None, rate, max_size, queue_size)
    await server._start(port)
    return server


# -- the watcher ----------------------------------------------------------------------------------
class WatchedMarket(Market):
    """A Market that calls ``on_change`` whenever ``version`` is bumped (every visible change:
    state, book, trades, heatmap column), i.e. at every moment a reader could look."""

    on_change: Callable[[], None] | None = None

    @property
    def version(self) -> int:
        return self._version

    @version.setter
    def version(self, v: int) -> None:
        self._version = v
        hook = self.on_change
        if hook is not None:
            hook()


class Watch:
    """Checks a market continuously: while it says LIVE, its book must be synced (no gap),
    uncrossed, non-empty, fresh (a frame within ``stale_limit`` s) and, when ``server`` is given,
    equal at the top to the server's book at the client's sequence number.

    ``violations`` lists every breach with the state at that moment; ``live_checks`` counts the
    LIVE moments examined (a test asserts it is non-zero, so the watcher cannot pass vacuously).
    """

    def __init__(
        self,
        market: WatchedMarket,
        session,
        *,
        stale_limit: float,
        server: FaultServer | None = None,
        interval: float = 0.003,
        sizes: bool = True,
        sim_seq=None,
    ) -> None:
        self.market = market
        self.session = session
        self.stale_limit = stale_limit
        self.server = server
        self.interval = interval
        self.sizes = sizes  # False: compare prices only (a venue quoting contracts or USD)
        self.sim_seq = sim_seq  # the client's sequence number -> the simulator's (None: same)
        self.violations: list[str] = []
        self.live_checks = 0
        self.compared = 0
        self.states: list[FeedStatus] = []
        self.max_gap = 0.0  # longest the sampling task waited for the event loop
        self._task: asyncio.Task | None = None
        market.on_change = self.check

    def check(self) -> None:
        m = self.market
        st = m.state.status
        if not self.states or self.states[-1] is not st:
            self.states.append(st)
        if st is not FeedStatus.LIVE:
            return
        self.live_checks += 1
        book = m.book
        sync = self.session.pipeline.sync
        problem = ""
        if not sync.synced:
            problem = "gapped (sync not whole)"
        elif book.empty:
            problem = "empty"
        elif book.is_crossed():
            problem = f"crossed {book.best_bid()} >= {book.best_ask()}"
        elif m.stats.last_frame_at and time.time() - m.stats.last_frame_at > self.stale_limit:
            problem = f"stale: no frame for {time.time() - m.stats.last_frame_at:.2f} s"
        elif self.server is not None:
            seq = sync.last_seq
            if seq is not None and self.sim_seq is not None:
                seq = self.sim_seq(seq)
            ref = self.server.best_at(m.symbol, seq)
            if ref is not None:
                self.compared += 1
                mine = (book.best_bid(), book.best_ask())
                if not self.sizes:
                    mine = tuple(x and x[0] for x in mine)
                    ref = tuple(x and x[0] for x in ref)
                if mine != ref:
                    problem = f"book differs from server at seq {sync.last_seq}: {mine} != {ref}"
        if problem and len(self.violations) < 50:
            self.violations.append(f"LIVE but {problem} (reason {m.state.reason!r})")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.max_gap = max(self.max_gap, now - last)
            last = now
            self.check()

    def start(self) -> Watch:
        self._task = asyncio.create_task(self._run(), name="watch")
        return self

    async def stop(self) -> None:
        self.market.on_change = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
