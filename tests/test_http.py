"""The REST client against a real local HTTP server: statuses, Retry-After, size and time
limits, refused connections. Every failure is an HttpError with a short reason."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from obview.feed.http import MAX_RETRY_AFTER, HttpError, fetch, format_wait, retry_after_seconds
from obview.venues.base import HttpRequest


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes, float]] = {}

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        path = self.path.split("?")[0]
        status, headers, body, delay = self.routes.get(path, (404, {}, b"{}", 0.0))
        if delay:
            time.sleep(delay)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", _Handler.routes
    finally:
        srv.shutdown()
        srv.server_close()
        _Handler.routes = {}


async def test_ok_body(server):
    base, routes = server
    routes["/depth"] = (200, {}, b'{"lastUpdateId":1}', 0.0)
    assert await fetch(HttpRequest(f"{base}/depth?symbol=BTCUSDT")) == b'{"lastUpdateId":1}'


@pytest.mark.parametrize(
    "status, headers, wait",
    [(429, {"Retry-After": "7"}, 7.0), (418, {"Retry-After": "120"}, 120.0), (503, {}, None)],
)
async def test_status_and_retry_after_reach_the_caller(server, status, headers, wait):
    base, routes = server
    routes["/depth"] = (status, headers, b'{"code":-1003,"msg":"Way too many requests"}', 0.0)
    with pytest.raises(HttpError) as e:
        await fetch(HttpRequest(f"{base}/depth?symbol=BTCUSDT"))
    assert e.value.status == status and e.value.retry_after == wait
    # what the status means, where from (no query string) and the venue's own words
    meaning = {429: "too many requests", 418: "IP banned a while", 503: "venue unavailable"}[status]
    assert str(e.value).startswith(f"HTTP {status} ({meaning}")
    assert f") from {base}/depth: \"Way too many requests\"" in str(e.value)
    said = {7.0: "; the venue asks to wait 7.0 s", 120.0: "; the venue asks to wait 2 min"}
    assert str(e.value).endswith(said.get(wait, '"Way too many requests"'))


@pytest.mark.parametrize(
    "body, words",
    [
        # Binance from a restricted country (the text it sends with 451)
        (b'{"code":0,"msg":"Service unavailable from a restricted location according to \'b. Eligibility\'"}', "Service unavailable from a restricted location"),
        (b'{"retCode":10001,"retMsg":"params error"}', "params error"),
        (b'{"error":{"message":"Invalid params","code":-32602}}', "Invalid params"),
        (b'<html>blocked</html>', None),
        (rb'{"msg":"\u001b[31mred\u001b[0m"}', " [31mred [0m"),  # escape codes never reach the screen
        (b'{"msg":"' + b"x" * 5000 + b'"}', None),  # too long to read: cut, so not JSON
    ],
)
async def test_a_refusal_says_what_it_means_and_quotes_the_venue(server, body, words):
    base, routes = server
    routes["/depth"] = (451, {}, body, 0.0)
    with pytest.raises(HttpError) as e:
        await fetch(HttpRequest(f"{base}/depth"))
    msg = str(e.value)
    assert msg.startswith("HTTP 451 (not served in this location)")
    assert (f': "{words}' in msg) if words else msg.endswith("/depth")
    assert msg.isprintable()


async def test_a_body_over_the_limit_is_refused(server):
    base, routes = server
    routes["/big"] = (200, {}, b"x" * 5000, 0.0)
    with pytest.raises(HttpError, match="response over 4096 bytes"):
        await fetch(HttpRequest(f"{base}/big"), max_body=4096)


async def test_a_slow_answer_times_out(server):
    base, routes = server
    routes["/slow"] = (200, {}, b"{}", 1.5)
    t0 = time.monotonic()
    with pytest.raises(HttpError, match="timed out|timeout after"):
        await fetch(HttpRequest(f"{base}/slow", timeout=0.3))
    assert time.monotonic() - t0 < 1.4


async def test_a_refused_connection_says_so():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(HttpError, match="connection refused") as e:
        await fetch(HttpRequest(f"http://127.0.0.1:{port}/x", timeout=2.0))
    assert e.value.status is None and e.value.retry_after is None


@pytest.mark.parametrize(
    "answer, reason",
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"lastUpdateId\":1", "cut short (17 of 1000 bytes)"),
        (b"<html>captive portal</html>\r\n\r\n", "bad HTTP answer from {base}/x (BadStatusLine)"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n{}", "bad HTTP answer from {base}/x (LineTooLong)"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: a\r\n" * 200 + b"\r\n{}", "bad HTTP answer from {base}/x (HTTPException)"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nab\r\n", "bad HTTP answer from {base}/x (IncompleteRead)"),
    ],
    ids=["cut-short", "not-http", "long-header", "many-headers", "bad-chunk"],
)
async def test_a_broken_answer_is_an_http_error(answer: bytes, reason: str):
    # each of these escaped as an http.client exception, which ended the resync task that
    # asked for the snapshot (the book waited out the 10 s sync timeout, saying nothing)
    async def answer_once(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(answer_once, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}"
    try:
        async with asyncio.timeout(10):
            with pytest.raises(HttpError) as e:
                await fetch(HttpRequest(f"{base}/x?symbol=BTCUSDT", timeout=3.0))
    finally:
        srv.close()
    assert str(e.value).endswith(reason.format(base=base)), str(e.value)


def test_retry_after_forms():
    now = 1_800_000_000.0
    assert retry_after_seconds("30") == 30.0
    assert retry_after_seconds(" 2.5 ") == 2.5
    assert retry_after_seconds(email.utils.formatdate(now + 90, usegmt=True), now=now) == 90.0
    assert retry_after_seconds(email.utils.formatdate(now - 90, usegmt=True), now=now) == 0.0
    assert retry_after_seconds("-5") == 0.0
    assert retry_after_seconds("1e12") == MAX_RETRY_AFTER
    for bad in (None, "", "soon", "nan", "Mon, 99 Foo 2026"):
        assert retry_after_seconds(bad) is None


def test_waits_read_as_a_person_reads_them():
    assert [format_wait(x) for x in (0.44, 9.96, 45.2, 119, 720, 9000, 259200)] == [
        "0.4 s", "10.0 s", "45 s", "119 s", "12 min", "2.5 h", "3.0 d"
    ]


async def test_hosts_that_never_answer_hold_neither_snapshots_nor_name_lookups(server):
    # a request to a host that accepts and never answers holds its thread for its whole
    # timeout, even after its feed is gone; in the loop's default pool ten of them made every
    # venue's snapshot and websocket name lookup wait their turn (10 s to connect)
    base, routes = server
    routes["/depth"] = (200, {}, b'{"lastUpdateId":1}', 0.0)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(32)  # accepts (the kernel's backlog) and never answers
    try:
        port = silent.getsockname()[1]
        async with asyncio.timeout(20):
            facts = [
                asyncio.ensure_future(fetch(HttpRequest(f"http://127.0.0.1:{port}/info", timeout=3.0)))
                for _ in range(10)
            ]
            await asyncio.sleep(0.1)
            book = await fetch(HttpRequest(f"{base}/depth", book=True))
            lookup = await asyncio.get_running_loop().getaddrinfo("localhost", 80)
            # both answered while every facts request was still waiting on the silent host
            assert book == b'{"lastUpdateId":1}' and lookup
            assert not any(f.done() for f in facts)
            for f in facts:
                with pytest.raises(HttpError, match="timeout"):
                    await f
    finally:
        silent.close()


async def test_one_silent_host_holds_one_thread_however_often_it_is_asked(server):
    # cancelled snapshot fetches to a host that never answers each kept a thread for its whole
    # timeout: a venue retrying through its backoff took every snapshot thread from the others
    base, routes = server
    routes["/depth"] = (200, {}, b'{"lastUpdateId":2}', 0.0)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(32)
    try:
        port = silent.getsockname()[1]
        async with asyncio.timeout(20):
            for _ in range(8):  # a repair cancelled and asked again, eight times
                f = asyncio.ensure_future(fetch(HttpRequest(f"http://127.0.0.1:{port}/d", timeout=3.0, book=True)))
                await asyncio.sleep(0.02)
                f.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await f
            book = await fetch(HttpRequest(f"{base}/depth", book=True))
            assert book == b'{"lastUpdateId":2}'
            # one thread went to the silent host, not one per ask
            silent.setblocking(False)
            conns = []
            with contextlib.suppress(BlockingIOError):
                while True:
                    conns.append(silent.accept()[0])
            for c in conns:
                c.close()
            assert len(conns) == 1, len(conns)
    finally:
        silent.close()
