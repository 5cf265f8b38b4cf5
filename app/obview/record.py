"""Record raw venue frames to JSON lines.

Recording format (one JSON object per line, time-ordered, as in the shared recordings):

    {"t": 1626992740.17, "connect": "wss://..."}     a WebSocket connection was opened
                                                       (this app adds "venue", "symbol" and
                                                       "instrument": the feed it was for)
    {"t": ..., "sent": "<text>"}                       a frame the client sent
    {"t": ..., "raw": "<text>"}                        a frame received, exactly as it arrived
    {"t": ..., "http": "https://...", "raw": "<body>"} an HTTP response body and its URL
    {"t": ..., "stale": "<why>"}                       the connection went silent (STALE)
    {"t": ..., "resumed": "<why>"}                     ... and its silence turned out ordinary
    {"t": ..., "close": "<why>"}                       the connection ended, and why

``t`` is the local time in seconds. ``stale`` and ``close`` lines are this app's own (the
shared recordings have none): without them a replay could not tell a feed that went silent or
dropped (a frame over the size cap, a refused connect) from one that was live to the end. Files
written by ``Recorder`` add an optional ``"c"``
(connection number) to ``connect`` lines and to the frames of that connection, because one
app session records several venues' connections into one file and their frames interleave;
replay uses it to follow only the connections of the chosen venue. Readers that do not know
``c`` simply ignore it.

Replay (``obview.replay``) reads this format back.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gzip
import logging
import os
import stat
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from typing import IO, Any

import orjson

log = logging.getLogger("obview.record")

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
#: seconds between sync flushes of a ``.gz`` recording
GZ_FLUSH_EVERY = 1.0


# -- appending ------------------------------------------------------------------------------
def _check_append(path: str) -> None:
    """Refuse a file a run cannot be appended to, and make a torn one whole.

    A pipe or a socket would block the open (waiting for a reader) or take frames nobody keeps;
    a ``.gz`` that a killed run left cut short made the whole file unreadable once a new run's
    gzip member followed it (the frames up to its last flush still replay, so it is refused,
    not touched). A plain file's torn last line (a crash, a full disk) is cut off, so the new
    run starts on a line of its own instead of being glued to it.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        raise OSError(errno.EINVAL, "a pipe or socket, not a file")
    if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
        return
    if path.endswith(".gz"):
        if not _gzip_whole(path):
            raise OSError(
                errno.EINVAL,
                "it ends cut short (a run stopped while recording): its frames still replay;"
                " record to a new file",
            )
        return
    with open(path, "rb+") as fh:
        end = st.st_size
        fh.seek(end - 1)
        if fh.read(1) == b"\n":
            return
        pos = end
        while pos > 0:  # back to the last whole line
            step = min(pos, 1 << 16)
            pos -= step
            fh.seek(pos)
            nl = fh.read(step).rfind(b"\n")
            if nl >= 0:
                fh.truncate(pos + nl + 1)
                return
        fh.truncate(0)


def _gzip_whole(path: str) -> bool:
    """Whether every gzip member of ``path`` ends properly (decompressed in bounded pieces)."""
    try:
        with open(path, "rb") as fh:
            d = zlib.decompressobj(31)
            started = False
            while chunk := fh.read(1 << 20):
                while chunk:
                    started = True
                    d.decompress(chunk, 1 << 20)
                    chunk = d.unconsumed_tail
                    if d.eof:
                        chunk, d, started = d.unused_data, zlib.decompressobj(31), False
            return not started or d.eof
    except (OSError, zlib.error):
        return False


# -- recording ------------------------------------------------------------------------------
class Recorder:
    """Appends frames to ``path`` in the recordings' JSON-lines format.

    Writes are line-buffered (a crash loses at most the line being written) and bounded: once
    the file would grow past ``max_bytes`` recording stops, ``full`` turns True and ``message``
    says why. A write error (disk full, file removed) also stops recording instead of breaking
    the feed; nothing here ever raises into the session. A ``.gz`` path is written gzip
    compressed, sync-flushed once a second so a killed process leaves a readable file (the cap
    counts uncompressed bytes).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = os.fspath(path)
        self.max_bytes = max_bytes
        self.clock = clock
        self._lock = threading.Lock()
        self._fh: IO[str] | None
        self._flushed_at = clock()
        _check_append(self.path)
        if self.path.endswith(".gz"):
            self._fh = gzip.open(self.path, "at", encoding="utf-8")  # noqa: SIM115
            # a file appended to: what it holds already counts (compressed, so a little under
            # its frames), or one file grew by the cap on every run
            try:
                self.written = os.path.getsize(self.path)
            except OSError:
                self.written = 0
        else:
            self._fh = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            self.written = os.fstat(self._fh.fileno()).st_size
        self.lines = 0
        self.dropped = 0
        self.full = False
        self.message = ""  # why recording stopped, for the log and the exit line
        self.reason = ""  # the same, short, for the stats bar
        self.said = False  # the command line has told the user
        self._next_conn = 0
        self._conn_of_task: weakref.WeakKeyDictionary[asyncio.Task, int] = (
            weakref.WeakKeyDictionary()
        )

    # -- the session's calls ----------------------------------------------------------------
    def connect(self, url: str, feed: dict[str, str] | None = None) -> int:
        """Note a new connection; returns its number for ``sent`` / ``received``. ``feed``
        (venue, symbol, instrument) lets a replay find what the file holds without being told."""
        self._next_conn += 1
        task = _current_task()
        if task is not None:
            self._conn_of_task[task] = self._next_conn
        rec: dict[str, Any] = {"t": self.clock(), "connect": url, "c": self._next_conn}
        if feed:
            rec.update(feed)
        self._write(rec)
        return self._next_conn

    def sent(self, text: str | bytes, conn: int | None = None) -> None:
        self._write(self._tag({"t": self.clock(), "sent": _text(text)}, conn))

    def received(self, text: str | bytes, conn: int | None = None) -> None:
        self._write(self._tag({"t": self.clock(), "raw": _text(text)}, conn))

    def stale(self, why: str, conn: int | None = None) -> None:
        self._write(self._tag({"t": self.clock(), "stale": why}, conn))

    def resumed(self, why: str, conn: int | None = None) -> None:
        self._write(self._tag({"t": self.clock(), "resumed": why}, conn))

    def ended(self, why: str, conn: int | None = None) -> None:
        self._write(self._tag({"t": self.clock(), "close": why}, conn))

    def http(self, url: str, body: str | bytes) -> None:
        self._write({"t": self.clock(), "http": url, "raw": _text(body)})

    # -- file -------------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            fh, self._fh = self._fh, None
            if fh is not None:
                try:
                    fh.close()
                except OSError as e:
                    why = f"failed on close: {e.strerror or e}"
                    self._stop(f"recording to {self.path} {why}", why)

    @property
    def _gz(self) -> bool:
        return self.path.endswith(".gz")

    @property
    def closed(self) -> bool:
        return self._fh is None

    @property
    def file_bytes(self) -> int:
        """The recording's size on disk as far as written out: ``written`` for a plain file;
        for a ``.gz`` one the compressed file's size (a few buffers behind), as the stats bar
        shows it (``written`` counts uncompressed bytes, which the cap limits)."""
        fh = self._fh
        if fh is None or not self.path.endswith(".gz"):
            return self.written
        try:
            return os.fstat(fh.fileno()).st_size
        except (OSError, ValueError):
            return self.written

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------
    def _tag(self, rec: dict[str, Any], conn: int | None) -> dict[str, Any]:
        if conn is not None:
            rec["c"] = conn
            return rec
        # otherwise the task that opened the connection names it
        task = _current_task()
        if task is not None:
            conn = self._conn_of_task.get(task)
            if conn is not None:
                rec["c"] = conn
        return rec

    def _write(self, rec: dict[str, Any]) -> None:
        line = orjson.dumps(rec).decode() + "\n"
        size = len(line.encode())  # orjson output is ASCII-safe JSON text, bytes == chars mostly
        with self._lock:
            if self._fh is None:
                self.dropped += 1
                return
            if self.written + size > self.max_bytes:
                self.dropped += 1
                self._stop(
                    f"recording stopped: {self.path} reached its size cap of {mib_text(self.max_bytes)}",
                    f"size cap of {mib_text(self.max_bytes)} reached",
                )
                self._drop_file()
                return
            try:
                self._fh.write(line)
            except OSError as e:
                self.dropped += 1
                why = str(e.strerror or e)
                self._stop(f"recording to {self.path} stopped: {why}", why)
                self._drop_file()
                return
            self.written += size
            self.lines += 1
            if self._gz:
                # gzip holds its output until close: a process killed meanwhile left an empty
                # file. A sync flush a second makes everything before it readable (replay
                # takes a cut-off stream up to its last flush)
                now = self.clock()
                if not 0 <= now - self._flushed_at < GZ_FLUSH_EVERY:
                    self._flushed_at = now
                    try:
                        self._fh.flush()
                    except OSError as e:
                        why = str(e.strerror or e)
                        self._stop(f"recording to {self.path} stopped: {why}", why)
                        self._drop_file()

    def _drop_file(self) -> None:
        """Close the file after a stop. Its buffer may hold part of a line the disk refused:
        closing fails to flush it, and left to the collector that failure is printed to stderr
        with a traceback (Python 3.13 does), over the app's screen."""
        fh, self._fh = self._fh, None
        if fh is not None:
            with contextlib.suppress(OSError, ValueError):
                fh.close()

    def _stop(self, message: str, reason: str) -> None:
        self.full = True
        if not self.message:
            self.message = message
            self.reason = reason
            log.warning("%s", message)


def _current_task() -> asyncio.Task | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop (plain threads, tests)
        return None


def _text(x: str | bytes) -> str:
    return x if isinstance(x, str) else x.decode("utf-8", "replace")


def mib_text(n: int) -> str:
    return f"{n / 1024 / 1024:g} MiB" if n >= 1024 * 1024 else f"{n} bytes"
