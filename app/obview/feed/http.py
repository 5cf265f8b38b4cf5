"""Tiny HTTP client for the rare REST calls (instrument facts, book snapshots).

Standard library in a worker thread with a timeout and a bounded body: these calls happen
at start and on resync only, so a dependency is not worth its weight.

The threads are this module's own, not the event loop's default executor: a request to a
host that never answers holds its thread for the whole timeout even after its feed is gone
(a thread cannot be cancelled), and in the default pool those threads starved every
websocket's name lookup (``getaddrinfo`` runs there) and every other venue's snapshot.
Book snapshots, which a SYNCING book waits on, have threads of their own, apart from
instrument facts, which only refine the built-in defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import http.client
import ssl
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit

import orjson

from obview.text import safe
from obview.venues.base import HttpRequest

MAX_BODY = 32 * 1024 * 1024
_BOOK_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="obview-http-book")
_FACT_THREADS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="obview-http-facts")
#: (book?, host) -> the request running there: at most one thread per host and kind
_INFLIGHT: dict[tuple[bool, str], Future] = {}
#: the longest wait a venue's Retry-After is taken at (Binance bans an IP for up to 3 days)
MAX_RETRY_AFTER = 3 * 24 * 3600.0


class HttpError(OSError):
    """A failed request. ``status`` is the HTTP status if one came back; ``retry_after`` the
    seconds the venue asked us to wait (its Retry-After header), if it said."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


# What a refusal means to someone watching a book, for the statuses venues answer with
# (Binance 451 "restricted location" and 418 "IP banned", Bybit's CDN 403 by country).
_STATUS_MEANING = {
    400: "bad request",
    401: "needs a key",
    403: "forbidden: address or country blocked?",
    404: "not found: wrong URL?",
    418: "IP banned a while for too many requests",
    429: "too many requests",
    451: "not served in this location",
    500: "venue error",
    502: "venue unreachable behind its gateway",
    503: "venue unavailable: maintenance?",
    504: "venue timed out behind its gateway",
}


def status_meaning(code: int) -> str:
    """A few words on an HTTP status a venue refused with ("" when there is nothing to add)."""
    return _STATUS_MEANING.get(code, "")


def venue_message(body: bytes) -> str:
    """The venue's own words in an error body, if it is JSON with a message: Binance's
    ``msg``, Bybit's ``retMsg``, OKX's ``msg``, Deribit's ``error.message``."""
    try:
        doc = orjson.loads(body[:4096])
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(doc, dict):
        return ""
    err = doc.get("error")
    for v in (doc.get("msg"), doc.get("retMsg"), doc.get("message"), err.get("message") if isinstance(err, dict) else err):
        if isinstance(v, str) and v.strip():
            return safe(v.strip(), 120)
    return ""


def format_wait(seconds: float) -> str:
    """A wait as a person reads it: "0.4 s", "45 s", "12 min", "2.5 h", "3.0 d"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header as seconds from now: delta-seconds or an HTTP date (RFC 9110);
    None when absent or unreadable. Binance sends it with 429 (wait this long to avoid a ban)
    and 418 (the IP is banned until then)."""
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if secs != secs:  # NaN
        return None
    return min(max(secs, 0.0), MAX_RETRY_AFTER)


def _fetch_sync(req: HttpRequest, max_body: int) -> bytes:
    headers = {"User-Agent": "obview", "Accept": "application/json", **req.headers}
    if req.body is not None:
        headers.setdefault("Content-Type", "application/json")
    r = urllib.request.Request(req.url, data=req.body, headers=headers, method="POST" if req.body is not None else "GET")
    ctx = ssl.create_default_context() if req.url.startswith("https:") else None
    url = req.url.split("?")[0]
    try:
        with urllib.request.urlopen(r, timeout=req.timeout, context=ctx) as resp:
            body = resp.read(max_body + 1)
            short = resp.length  # bytes its Content-Length promised that did not come
    except urllib.error.HTTPError as e:
        wait = retry_after_seconds(e.headers.get("Retry-After") if e.headers else None)
        said = f"; the venue asks to wait {format_wait(wait)}" if wait else ""
        meaning = status_meaning(e.code)
        try:
            words = venue_message(e.read(4096))
        except (OSError, http.client.HTTPException):
            words = ""
        why = f" ({meaning})" if meaning else ""
        quoted = f': "{words}"' if words else ""
        raise HttpError(f"HTTP {e.code}{why} from {url}{quoted}{said}", e.code, wait) from None
    except urllib.error.URLError as e:
        raise HttpError(f"{describe_os_error(e.reason)} ({req.url.split('?')[0]})") from None
    except TimeoutError:
        raise HttpError(f"timeout after {req.timeout:g} s ({url})") from None
    except http.client.HTTPException as e:
        # not HTTP, a header line over 64 KB, more than 100 headers, a broken chunk: a proxy or a
        # captive portal answering, or a connection cut mid-answer (these are not OSErrors)
        raise HttpError(f"bad HTTP answer from {url} ({type(e).__name__})") from None
    if len(body) > max_body:
        raise HttpError(f"response over {max_body} bytes from {url}")
    if short:
        raise HttpError(f"answer from {url} cut short ({len(body)} of {len(body) + short} bytes)")
    return body


async def fetch(req: HttpRequest, max_body: int = MAX_BODY) -> bytes:
    """GET (or POST when ``req.body`` is set) ``req.url``; raises HttpError with a short reason."""
    try:
        async with asyncio.timeout(req.timeout + 2):
            pool = _BOOK_THREADS if req.book else _FACT_THREADS
            key = (req.book, urlsplit(req.url).netloc)
            prev = _INFLIGHT.get(key)
            if prev is not None and not prev.done():
                # a thread still waiting on this host (its caller may be long gone: a thread
                # cannot be cancelled): one host that never answers holds one thread, not all
                with contextlib.suppress(Exception):
                    await asyncio.shield(asyncio.wrap_future(prev))
            job = pool.submit(_fetch_sync, req, max_body)
            _INFLIGHT[key] = job
            job.add_done_callback(functools.partial(_forget, key))
            return await asyncio.wrap_future(job)
    except TimeoutError:
        raise HttpError(f"timeout after {req.timeout:g} s ({req.url.split('?')[0]})") from None
    except OSError as e:
        if isinstance(e, HttpError):
            raise
        raise HttpError(describe_os_error(e)) from None


def _forget(key: tuple[bool, str], job: Future) -> None:
    """A request has ended: its host is free (unless a newer request already holds it)."""
    if _INFLIGHT.get(key) is job:
        del _INFLIGHT[key]


def describe_os_error(e: object) -> str:
    """A short reason a user can read for a network error."""
    import socket

    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.gaierror):
        return "no network: cannot resolve host"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS certificate rejected: {e.verify_message}"
    if isinstance(e, ssl.SSLError):
        return f"TLS error: {e.reason or e}"
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return "timed out"
    if isinstance(e, ConnectionResetError):
        return "connection reset"
    if isinstance(e, OSError):
        msg = e.strerror or str(e)
        if "Connect call failed" in str(e) or e.errno == 111:
            return "connection refused"
        if e.errno in (101, 113):  # ENETUNREACH, EHOSTUNREACH
            return f"no network: {msg.lower()}"
        return msg
    return str(e)
