"""Replay a recording (``obview.record``'s JSON lines) through a venue's adapter.

Replay runs every frame through ``FeedPipeline`` (adapter parse, book sync, checksums), the
exact path the live app uses, at full speed and with no UI.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.model import FeedStatus, Instrument
from obview.record import mib_text
from obview.text import safe
from obview.venues.base import VenueAdapter
from obview.venues.registry import get_adapter

# the longest record a replay reads: a frame at the largest cap a stream has (32 MiB, a
# venue's whole-depth first book), its quotes escaped in the recording, stays well below it
MAX_LINE = 160 * 1024 * 1024
SUMMARY_LEVELS = 20


class ReplayError(Exception):
    """The recording cannot be read or is not JSON lines. The message is one line."""


def replay_frames(path: str | os.PathLike[str], torn: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """Yield the records of a recording in order (``.gz`` read through gzip).

    Raises ReplayError for a missing or unreadable file and for a line that is not a JSON
    object; blank lines are skipped, and so is a last line cut short by a crash or a full
    disk (no trailing newline): its number is appended to ``torn`` when given. Records of
    unknown kinds are passed through.
    """
    name = os.fspath(path)
    try:
        fh = gzip.open(name, "rb") if name.endswith(".gz") else open(name, "rb")  # noqa: SIM115
    except OSError as e:
        raise ReplayError(f"cannot read {name}: {e.strerror or e}") from None
    with fh:
        n = 0
        try:
            while raw := fh.readline(MAX_LINE + 1):
                n += 1
                if len(raw) > MAX_LINE:
                    # /dev/zero, a disk image: a line read whole would take all the memory
                    raise ReplayError(
                        f"{name}:{n}: not a JSON-lines recording (a line over {mib_text(MAX_LINE)})"
                    )
                line = raw.strip()
                if not line:
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    if n > 1 and not raw.endswith(b"\n"):
                        if torn is not None:
                            torn.append(n)
                        return  # a last line torn by a crash or a full disk
                    _bad_line(name, n, line)
                if not isinstance(rec, dict):
                    _bad_line(name, n, line)
                c = rec.get("c")
                if c is not None and (c.__class__ is not int):
                    raise ReplayError(f"{name}:{n}: not a recording (connection number {str(c)[:20]!r})")
                yield rec
        except EOFError as e:
            if name.endswith(".gz") and n > 0:
                if torn is not None:
                    torn.append(n + 1)  # said in the summary, as a plain file's torn line is
                return  # a gzip stream cut off by a killed process: read up to its last flush
            raise ReplayError(f"cannot read {name}: {e}") from None
        except (OSError, zlib.error) as e:
            raise ReplayError(f"cannot read {name}: {getattr(e, 'strerror', None) or e}") from None


def recorded_feeds(path: str | os.PathLike[str]) -> list[tuple[str, str, str]]:
    """The feeds (venue, symbol, instrument) this app's recording names in its connect lines,
    in the order first seen; empty for a recording that names none (the shared ones)."""
    seen: dict[tuple[str, str, str], None] = {}
    for rec in replay_frames(path):
        if "connect" in rec:
            feed = (rec.get("venue"), rec.get("symbol"), rec.get("instrument"))
            if all(isinstance(x, str) and x for x in feed):
                seen.setdefault(feed, None)  # type: ignore[arg-type]
    return list(seen)


def _bad_line(name: str, n: int, line: bytes) -> None:
    shown = line[:60].decode("utf-8", "replace")
    raise ReplayError(f"{name}:{n}: not a JSON-lines recording (line starts {shown!r})")


# -- replay ---------------------------------------------------------------------------------
def replay_summary(
    path: str | os.PathLike[str],
    venue: str,
    symbol: str | None = None,
    instrument: str | None = None,
) -> dict[str, Any]:
    """Replay ``path`` through ``venue``'s adapter for one instrument; return a summary.

    ``symbol`` is a canonical symbol (BTC-PERP) or, failing that, a venue-native name that the
    venue maps; ``instrument`` is any venue-native name (e.g. an instrument of a recording
    that the app does not list). The summary's sizes are in the venue's native units.
    """
    replay = Replay(venue, symbol=symbol, instrument=instrument)
    replay.run(path)
    replay.check(path)
    return replay.summary()


class Replay:
    """One replay: adapter + market + pipeline, fed record by record."""

    def __init__(
        self, venue: str, symbol: str | None = None, instrument: str | None = None
    ) -> None:
        cls = get_adapter(venue)
        if symbol is None and instrument is None:
            raise ReplayError(
                f"choose a symbol ({', '.join(sorted(cls.symbols))}) or a venue-native instrument"
            )
        if symbol is not None and instrument is None and symbol not in cls.symbols:
            native_to_canonical = {v: k for k, v in cls.symbols.items()}
            if symbol in native_to_canonical:  # a native name given as --symbol
                symbol, instrument = native_to_canonical[symbol], symbol
        label = symbol or instrument
        assert label is not None
        self.adapter: VenueAdapter = cls(label, instrument=instrument)
        self.market = Market(_instrument(self.adapter), whole_book=self.adapter.whole_book)
        self.pipeline = FeedPipeline(self.adapter, self.market)
        self.specs = self.adapter.streams()
        self.book_spec = next((s for s in self.specs if s.book), self.specs[0])
        self.frames = 0
        self.snapshot_errors = 0  # REST snapshots that did not parse (not frames)
        self.foreign = False
        self.torn: list[int] = []  # the number of a last line cut short, if the file ends in one
        self.skipped_connections = 0
        #: the feeds other than this one that the file's connect lines name, in order
        self.other_feeds: dict[str, None] = {}
        self.disconnects = 0  # book connections that ended (``close`` lines), after data or not
        self.stale = 0  # times the book connection went silent (``stale`` lines)
        self.sessions = 0  # runs of obview recorded into the file (``--record`` appends)
        snap = self.adapter.snapshot_request()
        self._snapshot_url = snap.url if snap is not None else None

    # -- routing ----------------------------------------------------------------------------
    def stream_for(self, url: str) -> str | None:
        """The adapter stream a connection URL belongs to, or None when it is another venue's.

        Exact URL, then host and path, then path alone (the simulator serves every venue on
        one host), then host alone (same venue, another route or stream list)."""
        try:
            u = urlsplit(url)
        except ValueError:  # not a URL (a hostile or damaged recording): nobody's
            return None
        for s in self.specs:
            if s.url == url:
                return s.name
        for s in self.specs:
            su = urlsplit(s.url)
            if (su.netloc, su.path.rstrip("/")) == (u.netloc, u.path.rstrip("/")):
                return s.name
        for s in self.specs:
            if urlsplit(s.url).path.rstrip("/") == u.path.rstrip("/") and u.path.strip("/"):
                return s.name
        hosts = {urlsplit(s.url).netloc for s in self.specs} | {
            urlsplit(self.adapter.default_endpoint).netloc
        }
        if u.netloc in hosts:
            return self.book_spec.name
        return None

    def _other_feed(self, rec: dict[str, Any]) -> bool:
        """Whether a ``connect`` line names a feed other than this one. The app's recordings
        name each connection's venue and instrument: two symbols of one venue share its URL,
        so by URL alone the other symbol's connections were this feed's (each reset its book:
        a feed LIVE to the end replayed as SYNCING). Lines that name none (older and shared
        recordings) are told apart by URL only."""
        venue, native = rec.get("venue"), rec.get("instrument")
        if not isinstance(venue, str) or not isinstance(native, str):
            return False
        return venue != self.adapter.name or native.lower() != self.adapter.native.lower()

    def _shared(self, name: str | None) -> bool:
        """Whether stream ``name`` shares its URL with another of the adapter's streams."""
        urls = [s.url for s in self.specs]
        return any(s.name == name and urls.count(s.url) > 1 for s in self.specs)

    def _stream_of_subscribe(self, text: object) -> str | None:
        """The stream whose subscribe frame ``text`` is, if it is one of them."""
        for s in self.specs:
            if text in s.subscribe:
                return s.name
        return None

    def _new_book_connection(self) -> None:
        # a new session of the recording's, after a fatal error too: as the live session does
        # on (re)connect
        self.pipeline.halted = False
        self.pipeline.reset_book()

    def _snapshot_is_ours(self, url: str) -> bool:
        if self._snapshot_url is None:
            return False
        want = urlsplit(self._snapshot_url)
        try:
            got = urlsplit(url)
        except ValueError:
            return False
        if want.path.rstrip("/").rsplit("/", 1)[-1] != got.path.rstrip("/").rsplit("/", 1)[-1]:
            return False
        native = self.adapter.native.lower()
        names = [v.lower() for _, v in parse_qsl(got.query)] + [
            p.lower() for p in got.path.split("/")
        ]
        return native in names

    # -- running ----------------------------------------------------------------------------
    def run(self, path: str | os.PathLike[str]) -> None:
        # first pass: which connections are this venue's (if none match, follow them all)
        urls = [str(rec["connect"]) for rec in replay_frames(path) if isinstance(rec.get("connect"), str)]
        follow_all = not any(self.stream_for(u) is not None for u in urls)
        self.foreign = bool(urls) and follow_all  # it names connections, none of them this venue's
        current = self.book_spec.name
        # connection numbers start at 1 in every session a file holds (runs appended to one
        # recording): a number seen again in a connect line opens a new session, so a frame
        # goes to its own session's connection, not to another venue's of a later run
        streams: dict[Any, str | None] = {}
        undecided: set[Any] = set()  # connections on a URL several streams share
        pipeline = self.pipeline
        book = self.book_spec.name
        self.torn.clear()
        for rec in replay_frames(path, self.torn):
            t = rec.get("t")
            ts = float(t) if isinstance(t, (int, float)) else 0.0
            if "connect" in rec:
                url = str(rec["connect"])
                other = self._other_feed(rec)
                if other and len(self.other_feeds) < 64:
                    self.other_feeds.setdefault(f"{rec['venue']} {rec.get('symbol') or rec['instrument']}", None)
                name = None if other else self.stream_for(url)
                if name is None and follow_all and not other:
                    name = self.book_spec.name
                c = rec.get("c")
                # a connection number seen again: obview started again on this file (a file of
                # the older format, without numbers, tells no runs apart: one)
                if (c is not None and c in streams) or not self.sessions:
                    self.sessions += 1
                if c in streams:
                    streams = {}  # a new session of the file
                    undecided = set()
                streams[c] = name
                current = name
                if name is None:
                    self.skipped_connections += 1
                elif self._shared(name):
                    # streams on one URL (dYdX's book and trades): the subscribe sent on it
                    # says which this is; until then it resets nothing (a trades socket's
                    # reconnect wiped the book and left the replay SYNCING)
                    undecided.add(c)
                elif name == self.book_spec.name:
                    self._new_book_connection()
            elif "sent" in rec and rec.get("c") in undecided:
                c = rec.get("c")  # None in a file of the older format (no connection numbers)
                undecided.discard(c)
                name = self._stream_of_subscribe(rec["sent"]) or streams.get(c)
                streams[c] = name
                if c is None:
                    current = name
                if name == self.book_spec.name:
                    self._new_book_connection()
            elif "http" in rec:
                if self._snapshot_is_ours(str(rec["http"])):
                    body = rec.get("raw", "")
                    before = pipeline.parse_errors
                    pipeline.on_snapshot_body(body.encode() if isinstance(body, str) else b"", ts)
                    self.snapshot_errors += pipeline.parse_errors - before
            elif "raw" in rec:
                name = streams.get(rec["c"], current) if "c" in rec else current
                if name is None:
                    continue  # another venue's connection in a shared recording
                raw = rec["raw"]
                if not isinstance(raw, str):
                    raw = orjson.dumps(raw).decode()
                self.frames += 1
                events = pipeline.book_events
                pipeline.on_frame(name, raw, ts)
                if self.market.state.status is FeedStatus.STALE and pipeline.book_events != events:
                    # as in the app, only the book's own messages end a silence (pongs,
                    # heartbeats and trades do not)
                    pipeline.restore_state()
            elif "close" in rec or "stale" in rec or "resumed" in rec:
                name = streams.get(rec["c"], current) if "c" in rec else current
                if name == book and rec.get("c") not in undecided:
                    self._book_event(rec)

    def _book_event(self, rec: dict[str, Any]) -> None:
        """A ``stale`` or ``close`` line of the book's connection: the state the app showed."""
        if self.pipeline.halted:
            return
        if "resumed" in rec:
            # a silence the connection's answers showed to be the book's own: as the app did
            if self.market.state.status is FeedStatus.STALE:
                self.pipeline.restore_state()
            return
        if "close" in rec:
            self.disconnects += 1
            why = safe(rec["close"], 200)
            # until the recording's next connect (which resets the book), it was not live
            self.pipeline.reset_book(FeedStatus.RECONNECTING, why or "connection closed")
        else:
            self.stale += 1
            if self.market.state.status is FeedStatus.LIVE:
                self.pipeline.set_state(FeedStatus.STALE, safe(rec["stale"], 200) or "no data")

    def check(self, path: str | os.PathLike[str]) -> None:
        """Raise ReplayError when the recording cannot be what the user meant: no frame of it
        parses as this venue's (the wrong ``--venue``), or none carries this instrument's book."""
        name = os.path.basename(os.fspath(path))
        pipe, venue = self.pipeline, self.adapter.name
        if not self.frames and self.other_feeds and not self.torn:
            held = ", ".join(safe(f, 60) for f in list(self.other_feeds)[:8])
            raise ReplayError(
                f"{name} holds no frames of {venue} {safe(self.adapter.native, 40)}: it holds {held};"
                " choose one with --venue and --symbol"
            )
        if not self.frames and not self.torn:
            raise ReplayError(f"{name} holds no received frames to replay")
        if self.frames and pipe.parse_errors - self.snapshot_errors == self.frames:
            raise ReplayError(
                f"none of the {self.frames} frames of {name} parse as {venue} frames "
                f"(the last: {self.market.stats.last_error}); is --venue right?"
            )
        if not pipe.book_events and not self.market.book and self.foreign:
            raise ReplayError(
                f"no {venue} book frames among the {self.frames} frames of {name}, and none of its "
                f"connections is to {venue}; is --venue right?"
            )
        if not pipe.book_events and not self.market.book and self.torn:
            raise ReplayError(
                f"{name} ends in a line cut short (line {self.torn[0]}), before any {venue} book "
                f"of {safe(self.adapter.native, 40)}: a copy cut short, or a recording stopped by a full disk?"
            )
        if not pipe.book_events and not self.market.book:
            said = self.market.stats.last_error
            raise ReplayError(
                f"no {venue} book frames of {safe(self.adapter.native, 40)} among the {self.frames} frames "
                f"of {name}"
                + (f" (the last error: {said})" if said else "")
                + "; pass --instrument with the name the recording subscribed to (see its "
                "'connect' and 'sent' lines)"
            )

    def summary(self) -> dict[str, Any]:
        m = self.market
        bids, asks = m.book.top(SUMMARY_LEVELS)
        bb, ba = m.book.best_bid(), m.book.best_ask()
        return {
            "venue": self.adapter.name,
            "symbol": self.adapter.symbol,
            "frames": self.frames,
            "parse_errors": self.pipeline.parse_errors,
            "gaps": m.stats.gaps,
            "checksum_errors": m.stats.checksum_errors,
            "resyncs": m.resyncs,
            "trades": self.pipeline.trades,
            "liquidations": m.stats.liquidations,
            "state": m.state.status.value,
            "reason": m.state.reason,
            "disconnects": self.disconnects,
            "sessions": self.sessions,
            "stale": self.stale,
            # the number of a last line cut short (skipped), or None: the file ends whole
            "cut_short_at_line": self.torn[0] if self.torn else None,
            "best_bid": bb[0] if bb else None,
            "best_ask": ba[0] if ba else None,
            "bids": [[p, s] for p, s in bids],
            "asks": [[p, s] for p, s in asks],
        }


def _instrument(adapter: VenueAdapter) -> Instrument:
    """The adapter's built-in facts, or neutral ones for an instrument it has no defaults for."""
    try:
        return adapter.default_instrument()
    except Exception:  # a venue-native instrument outside the adapter's table
        return Instrument(
            venue=adapter.name, symbol=adapter.symbol, native=adapter.native, tick=0.0, lot=0.0
        )


__all__ = ["Replay", "ReplayError", "recorded_feeds", "replay_frames", "replay_summary"]
