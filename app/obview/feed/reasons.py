"""Why a feed's connection ended, in the words the status line shows.

``describe_failure`` turns what ending a connection raised into that line and, for a refused
upgrade, the wait the venue asked for (Retry-After); ``describe_close`` reads a close frame.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidProxy, InvalidStatus

from obview.feed.http import describe_os_error, format_wait, retry_after_seconds, status_meaning
from obview.text import safe

#: what a connection's end is expected to raise; anything else is a bug worth a traceback
EXPECTED = (ConnectionClosed, InvalidHandshake, OSError, TimeoutError)
#: a proxy setting that no retry can fix: a SOCKS proxy without python-socks, a bad proxy URL
PROXY_UNUSABLE = (ImportError, InvalidProxy)


def proxy_for(url: str) -> str | None:
    """The proxy the environment (``https_proxy``, ``all_proxy``, ``no_proxy``) names for ``url``,
    as host:port, or None; never one for a local address (the session connects those direct)."""
    host = urlsplit(url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        return None
    try:
        from websockets.proxy import get_proxy
        from websockets.uri import parse_uri

        proxy = get_proxy(parse_uri(url))
    except Exception:  # an unparsable URL or setting: the connect attempt says what is wrong
        return None
    if not proxy:
        return None
    parts = urlsplit(proxy)
    return safe(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}", 80)  # no credentials


def describe_failure(e: BaseException, connect_timeout: float) -> tuple[str, float | None]:
    """(reason, seconds the venue asked to wait or None) for what ending a connection raised."""
    if isinstance(e, ConnectionClosed):
        return describe_close(e), None
    if isinstance(e, InvalidStatus):
        code = e.response.status_code
        meaning = status_meaning(code)
        reason = f"handshake refused: HTTP {code}" + (f" ({meaning})" if meaning else "")
        asked = retry_after_seconds(e.response.headers.get("Retry-After"))
        if asked:
            reason += f"; the venue asks to wait {format_wait(asked)}"
        return reason, asked
    if isinstance(e, InvalidHandshake):
        return f"handshake failed: {safe(e)}", None
    if isinstance(e, TimeoutError):
        return f"connect timeout after {connect_timeout:g} s", None
    if isinstance(e, OSError):
        return describe_os_error(e), None
    return f"error: {safe(e)}", None


def describe_close(e: ConnectionClosed) -> str:
    rcvd = e.rcvd
    if e.sent is not None and e.sent.code == 1009:
        return "frame over size limit"
    sent = e.sent
    if sent is not None and sent.code not in (1000, 1001) and (rcvd is None or rcvd.code == sent.code):
        # we closed it: the server broke the protocol (reserved bits, a masked frame, bad UTF-8)
        return f"protocol error: {safe(sent.reason, 80) or sent.code}"
    if rcvd is None:
        return "connection lost (no close frame)"
    if rcvd.code == 1009:
        return "frame over size limit"
    reason = safe(rcvd.reason, 80) if rcvd.reason else ""
    return f"closed by server ({rcvd.code}{': ' + reason if reason else ''})"
