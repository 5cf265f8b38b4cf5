"""The simulator server end to end on 127.0.0.1 (demo dialect plus a test dialect)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from typing import ClassVar

import orjson
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from obview.book import OrderBook
from obview.sim.dialects import DIALECTS, load_dialects, match_path
from obview.sim.dialects.base import Dialect, Out
from obview.sim.faults import Faults
from obview.sim.server import start_server

T = 10  # seconds allowed for any single wait


def lv(levels):
    return [(float(p), float(s)) for p, s in levels]


async def recv(ws) -> dict:
    return orjson.loads(await ws.recv())


async def next_type(ws, *types: str, symbol: str | None = None) -> dict:
    while True:
        msg = await recv(ws)
        if msg.get("type") in types and (symbol is None or msg.get("symbol") == symbol):
            return msg


def connect(url: str, **kw):
    """A test client that takes in everything the simulator streams. With a bounded queue, a
    client that stopped reading (it has seen what the test needed) pauses the socket, and its
    close then waits out the close timeout (10 s) for the server's answer stuck behind the
    unread deltas."""
    return ws_connect(url, **{"max_queue": None, **kw})


async def subscribe(ws, symbol: str, **extra) -> dict:
    await ws.send(orjson.dumps({"op": "subscribe", "symbol": symbol, **extra}).decode())
    return await next_type(ws, "snapshot", symbol=symbol)


def http_get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.headers.get("Content-Type", ""), e.read()


class EchoDialect(Dialect):
    """A tiny dialect to test routing, HTTP, heartbeats and corruption."""

    name: ClassVar[str] = "echo"
    paths: ClassVar[tuple[str, ...]] = ("/echo",)

    def on_connect(self) -> list[Out]:
        return [Out(orjson.dumps({"type": "hello", "path": self.path}).decode())]

    def on_message(self, text: str) -> list[Out]:
        if text == "boom":
            raise RuntimeError("dialect bug")
        return [Out(text)]

    def on_update(self, update) -> list[Out]:
        if update.symbol != "BTC-PERP":
            return []
        return [
            Out(
                orjson.dumps({"type": "delta", "seq": update.seq}).decode(),
                kind="delta",
                corrupt=orjson.dumps({"type": "delta", "seq": update.seq, "bad": True}).decode(),
            )
        ]

    def heartbeat(self) -> list[Out]:
        return [Out('{"type":"beat"}')]

    @classmethod
    def http(cls, markets, path, query, body):
        if path == "/echo/depth":
            m = markets[query.get("symbol", "")]
            return 200, orjson.dumps({"seq": m.seq, "symbol": query["symbol"]})
        return None


@pytest.fixture
async def server():
    srv = await start_server(rate=100.0)
    srv.dialects["echo"] = EchoDialect
    yield srv
    async with asyncio.timeout(T):
        await srv.close()


def test_registry() -> None:
    assert DIALECTS["demo"] == "obview.sim.dialects.demo:DemoDialect"
    for name in ("binance", "bybit", "okx", "deribit", "hyperliquid", "bitmex", "kraken", "dydx"):
        cap = {"okx": "Okx"}.get(name, name.capitalize())
        assert DIALECTS[name] == f"obview.sim.dialects.{name}:{cap}Dialect"
    loaded = load_dialects()
    assert "demo" in loaded
    assert set(loaded) <= set(DIALECTS)


def test_match_path() -> None:
    class A(Dialect):
        paths = ("/ws", "/stream")

    class B(Dialect):
        paths = ("/ws/private",)

    ds = {"a": A, "b": B}
    assert match_path(ds, "/ws") is A
    assert match_path(ds, "/ws/btcusdt@depth") is A
    assert match_path(ds, "/stream?streams=a/b") is A
    assert match_path(ds, "/ws/private/x") is B
    assert match_path(ds, "/wsx") is None
    assert match_path(ds, "/") is None


def test_faults_unit() -> None:
    f = Faults()
    d = Out("d", kind="delta", corrupt="D")
    t = Out("t", kind="trade")
    assert f.apply(d) == ("d",)
    f.drop_next("delta", 2)
    f.duplicate_next("trade")
    f.corrupt_next("delta")
    assert f.apply(t) == ("t", "t")
    assert f.apply(t) == ("t",)
    assert f.apply(d) == ()
    assert f.apply(d) == ()
    assert f.apply(d) == ("D",)
    assert f.apply(d) == ("d",)
    f.corrupt_next("trade")  # no corrupt variant: waits for a frame that has one
    assert f.apply(t) == ("t",)
    assert (f.dropped, f.duplicated, f.corrupted) == (2, 1, 1)
    f.clear()
    assert f.apply(Out("x", kind="trade", corrupt="X")) == ("x",)


async def test_snapshot_and_deltas_rebuild_the_server_book(server) -> None:
    async with asyncio.timeout(T), connect(server.url()) as ws:
        await ws.send('{"op":"subscribe","symbol":"BTC-PERP","depth":5000}')
        ack = await recv(ws)
        assert ack == {"type": "subscribed", "symbol": "BTC-PERP", "depth": 5000}
        snap = await recv(ws)
        assert snap["type"] == "snapshot" and isinstance(snap["bids"][0][0], str)
        full = OrderBook()
        full.apply_snapshot(lv(snap["bids"]), lv(snap["asks"]))
        last = {"BTC-PERP": snap["seq"]}
        trade_ids: dict[str, list[int]] = {"BTC-PERP": [], "ETH-PERP": []}
        # BTC keeps streaming while ETH's snapshot is on its way: apply those deltas too (a
        # reader that skipped them would see a gap in BTC's chain that the server never made)
        await ws.send('{"op":"subscribe","symbol":"ETH-PERP"}')
        while (eth := await recv(ws))["type"] != "snapshot" or eth["symbol"] != "ETH-PERP":
            if eth["type"] == "delta" and eth["symbol"] == "BTC-PERP":
                assert eth["prev_seq"] == last["BTC-PERP"]
                last["BTC-PERP"] = eth["seq"]
                full.apply_delta(lv(eth["bids"]), lv(eth["asks"]))
            elif eth["type"] == "trade" and eth["symbol"] == "BTC-PERP":
                trade_ids["BTC-PERP"].append(eth["id"])
        assert len(eth["bids"]) == 500 and len(eth["asks"]) == 500
        top = OrderBook()
        top.apply_snapshot(lv(eth["bids"]), lv(eth["asks"]))
        last["ETH-PERP"] = eth["seq"]
        books = {"BTC-PERP": full, "ETH-PERP": top}
        deltas = 0
        while deltas < 60:
            msg = await recv(ws)
            if msg["type"] == "trade":
                assert msg["side"] in ("buy", "sell") and float(msg["size"]) > 0
                trade_ids[msg["symbol"]].append(msg["id"])
                continue
            if msg["type"] != "delta":
                continue
            sym = msg["symbol"]
            assert msg["prev_seq"] == last[sym] and msg["seq"] == last[sym] + 1
            last[sym] = msg["seq"]
            books[sym].apply_delta(lv(msg["bids"]), lv(msg["asks"]))
            assert not books[sym].is_crossed()
            deltas += 1
        for ids in trade_ids.values():  # unique and increasing per symbol
            assert all(b > a for a, b in zip(ids, ids[1:], strict=False))
        # stop stepping, drain, compare at the same seq
        server.set_rate(0)
        m_btc, m_eth = server.markets["BTC-PERP"], server.markets["ETH-PERP"]
        while last["BTC-PERP"] < m_btc.seq or last["ETH-PERP"] < m_eth.seq:
            msg = await recv(ws)
            if msg["type"] == "delta":
                sym = msg["symbol"]
                assert msg["prev_seq"] == last[sym]
                last[sym] = msg["seq"]
                books[sym].apply_delta(lv(msg["bids"]), lv(msg["asks"]))
        assert full.bids == m_btc.book.bids and full.asks == m_btc.book.asks
        assert top.top(100) == m_eth.book.top(100)


async def test_drop_next_makes_a_seq_gap(server) -> None:
    async with asyncio.timeout(T), connect(server.url()) as ws:
        snap = await subscribe(ws, "SOL-PERP")
        last = snap["seq"]
        for _ in range(3):
            d = await next_type(ws, "delta", symbol="SOL-PERP")
            assert d["prev_seq"] == last
            last = d["seq"]
        server.faults.drop_next("delta", 2)
        # deltas the server wrote before the fault was set may still be in flight: they continue
        # the chain; the first one after it skips the two that were dropped
        for _ in range(50):
            d = await next_type(ws, "delta", symbol="SOL-PERP")
            if d["prev_seq"] != last:
                break
            last = d["seq"]
        assert d["prev_seq"] == last + 2  # two deltas never arrived
        assert server.faults.dropped == 2
        # a resync brings a fresh snapshot and the chain continues from it
        await ws.send('{"op":"resync","symbol":"SOL-PERP"}')
        snap = await next_type(ws, "snapshot")
        d = await next_type(ws, "delta", symbol="SOL-PERP")
        assert d["prev_seq"] == snap["seq"]


async def test_duplicate_and_inject(server) -> None:
    async with asyncio.timeout(T), connect(server.url()) as ws:
        await subscribe(ws, "BTC-PERP")
        await next_type(ws, "delta")
        server.faults.duplicate_next("delta")
        # deltas already in flight come first; the duplicated one arrives twice in a row
        b = await next_type(ws, "delta")
        for _ in range(50):
            a, b = b, await next_type(ws, "delta")
            if a == b:
                break
        assert a == b
        assert server.faults.duplicated == 1
        assert server.faults.inject("{garbage") == 1
        seen = [await ws.recv() for _ in range(50)]
        assert "{garbage" in seen


async def test_corrupt_next_heartbeat_http_and_routing(server) -> None:
    async with asyncio.timeout(T), connect(server.url("/echo/abc?x=1")) as ws:
        hello = await recv(ws)
        assert hello == {"type": "hello", "path": "/echo/abc?x=1"}
        await ws.send("boom")  # a dialect exception is logged, the connection lives on
        await ws.send("plain text back")
        while await ws.recv() != "plain text back":  # deltas may come first
            pass
        assert await next_type(ws, "delta")
        server.faults.corrupt_next("delta")
        while not (await recv(ws)).get("bad"):
            pass
        assert server.faults.corrupted == 1
        assert await next_type(ws, "beat") == {"type": "beat"}  # about once a second
    status, ctype, body = await asyncio.to_thread(
        http_get, server.http_url("/echo/depth?symbol=ETH-PERP")
    )
    assert status == 200 and ctype == "application/json"
    assert orjson.loads(body)["symbol"] == "ETH-PERP"


async def test_http_404_and_unknown_ws_path(server) -> None:
    status, _ctype, _body = await asyncio.to_thread(http_get, server.http_url("/nothing/here"))
    assert status == 404
    status, _ctype, _body = await asyncio.to_thread(http_get, server.http_url("/demo"))
    assert status == 404  # the demo dialect has no REST side
    async with asyncio.timeout(T):
        with pytest.raises(InvalidStatus) as exc:
            await connect(server.url("/nothing"))
    assert exc.value.response.status_code == 404


async def test_unknown_symbol_ping_and_errors(server) -> None:
    async with asyncio.timeout(T), connect(server.url()) as ws:
        await ws.send('{"op":"subscribe","symbol":"XRP-PERP"}')
        err = await recv(ws)
        assert err["type"] == "error" and err["reason"].startswith("unknown symbol XRP-PERP")
        await ws.send('{"op":"ping","id":7}')
        assert await recv(ws) == {"type": "pong", "id": 7}
        await ws.send("not json")
        assert (await recv(ws))["reason"] == "malformed JSON"


async def test_refuse_handshake_and_connection_count(server) -> None:
    async with asyncio.timeout(T):
        before = server.connections_total
        server.faults.refuse_handshake(429)
        with pytest.raises(InvalidStatus) as exc:
            await connect(server.url())
        assert exc.value.response.status_code == 429
        server.faults.refuse_handshake(503)
        with pytest.raises(InvalidStatus) as exc:
            await connect(server.url())
        assert exc.value.response.status_code == 503
        server.faults.refuse_handshake(None)
        async with connect(server.url()) as ws:
            await subscribe(ws, "BTC-PERP")
        assert server.connections_total == before + 3


@pytest.mark.parametrize("abrupt", [False, True])
async def test_kick_closes_clients(server, abrupt: bool) -> None:
    async with asyncio.timeout(T):
        a = await connect(server.url())
        b = await connect(server.url())
        await subscribe(a, "BTC-PERP")
        await subscribe(b, "ETH-PERP")
        await server.kick(abrupt=abrupt)
        for ws in (a, b):
            with pytest.raises(ConnectionClosed) as exc:
                while True:
                    await ws.recv()
            if abrupt:
                assert exc.value.rcvd is None  # no close frame: the TCP connection was reset
            else:
                assert exc.value.rcvd.code == 1001
        while server.clients:
            await asyncio.sleep(0.01)
        # new connections are still accepted
        async with connect(server.url()) as ws:
            await subscribe(ws, "BTC-PERP")


async def test_pause_resume_and_rate(server) -> None:
    async with asyncio.timeout(T), connect(server.url()) as ws:
        snap = await subscribe(ws, "BTC-PERP")
        last = snap["seq"]
        server.pause()
        assert server.paused
        # drain what was sent before the pause, then silence
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.6):
                while True:
                    msg = await recv(ws)
                    if msg["type"] == "delta":
                        last = msg["seq"]
        server.resume()
        d = await next_type(ws, "delta")
        assert d["prev_seq"] == last  # nothing lost while silent
        server.set_rate(400)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = 0
        while loop.time() - t0 < 0.5:
            await next_type(ws, "delta")
            n += 1
        assert n > 80  # far above the 100/s default of this fixture


async def test_slow_client_is_closed_without_hurting_others() -> None:
    async with asyncio.timeout(20):
        srv = await start_server(rate=50.0, queue_size=64)
        try:
            good = await connect(srv.url())
            slow = await connect(srv.url(), max_queue=1)
            await subscribe(good, "BTC-PERP")
            await slow.send('{"op":"subscribe","symbol":"BTC-PERP","depth":5000}')
            # ask for far more snapshot bytes than the socket buffers hold, never read them
            for _ in range(1500):
                await slow.send('{"op":"resync","symbol":"BTC-PERP"}')
            last = None
            while srv.slow_closed == 0:
                d = await next_type(good, "delta")
                assert last is None or d["prev_seq"] == last
                last = d["seq"]
            while len(srv.clients) > 1:
                d = await next_type(good, "delta")
                assert d["prev_seq"] == last
                last = d["seq"]
            for _ in range(5):
                d = await next_type(good, "delta")
                assert d["prev_seq"] == last
                last = d["seq"]
            await good.close()
            slow.transport.abort()
        finally:
            await srv.close()


async def test_close_is_clean() -> None:
    async with asyncio.timeout(T):
        srv = await start_server(rate=50.0, symbols=["ETH-PERP"])
        assert list(srv.markets) == ["ETH-PERP"]
        assert srv.url().startswith("ws://127.0.0.1:") and srv.url().endswith("/demo")
        ws = await connect(srv.url())
        await subscribe(ws, "ETH-PERP")
        srv.pause()  # even with writers held
        await srv.close()
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
        assert not srv.clients
        with pytest.raises(OSError):
            await connect(srv.url(), open_timeout=2)
        await srv.close()  # idempotent


def test_run_demo_server_exits_on_ctrl_c() -> None:
    code = "from obview.sim.server import run_demo_server; run_demo_server('127.0.0.1', 0, 3)"
    # Ctrl-C as a terminal sends it, even when this suite runs in the background (a shell
    # starts background jobs with SIGINT ignored, and a child inherits that)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        assert "ws://127.0.0.1:" in line and "/demo" in line
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
