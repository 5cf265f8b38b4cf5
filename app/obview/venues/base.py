"""The venue adapter protocol: sans-IO, bytes in, events out.

An adapter is created per (venue, symbol). It never touches a socket: ``FeedSession``
opens the streams it declares, sends its subscribe / heartbeat frames, hands every received
frame to ``parse`` and routes the resulting events. Book events go through the adapter's
``BookSync``, which owns the sequencing rules (snapshot + contiguous deltas, checksums) and
says whether the book is whole.

Adding a venue: subclass ``VenueAdapter``, fill ``name``, ``symbols`` and the methods, and
register it in ``obview.venues.registry``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Annotated, ClassVar
from urllib.parse import urlsplit

import msgspec
import orjson

from obview.book import OrderBook
from obview.model import BookDelta, BookSnapshot, Instrument, Trade
from obview.text import shown

# the sync rules live in their own module; their names stay importable from here
from obview.venues.sync import (  # noqa: F401
    APPLIED,
    BUFFERED,
    DEPTH_REFRESH,
    EMPTIED,
    IGNORED,
    BookSync,
    NextSeqSync,
    SnapshotOnlySync,
    SyncResult,
    SyncStatus,
    bp_text,
    fmt_seq_gap,
)

#: Prices and sizes at or above this are refused as bad frames, as NaN and infinities are: no
#: real book comes near it (a price of 1e15, a size of 1e15 coins or contracts), while the
#: arithmetic a book shown needs (a mid of 1e308 + 1.5e308, a price over a tick) overflows
#: for finite numbers far below the float limit.
MAX_NUMBER = 1e15

#: Number types for the typed decoders of the fast paths (``VenueAdapter.parse_fast``): the
#: decoder converts a venue's numeric strings in C and rejects what the book must never hold
#: (NaN, infinities, a price <= 0, a negative size), so a frame it accepts needs no further
#: check. Decoders run with ``strict=False``, which reads ``"64000.1"`` as a float.
Price = Annotated[float, msgspec.Meta(gt=0.0, lt=MAX_NUMBER)]
Size = Annotated[float, msgspec.Meta(ge=0.0, lt=MAX_NUMBER)]
PriceSize = tuple[Price, Size]
#: an integer field (sequence number, time, id) as ``parse`` reads it only when it is a JSON
#: integer within int64 (orjson reads longer ones as floats); a fast path sends a string to
#: ``parse`` (``int()`` and the decoder disagree on strings such as "1e3")
Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)] | str
#: what a typed decoder raises on a frame it does not describe: another shape, malformed JSON,
#: bad UTF-8, nesting too deep (the slow path then decides what the frame is)
FastMiss = (msgspec.MsgspecError, RecursionError, ValueError, TypeError)


class FrameError(ValueError):
    """A frame that cannot be understood. Counted and logged by the session, never fatal."""


class BookFrameError(FrameError):
    """A frame of this market's book that cannot be read: whatever it changed is lost, so the
    book is no longer whole. For venues whose next frame would not show the loss (no sequence
    numbers); the pipeline counts it and resyncs at once."""


class UnknownSymbol(ValueError):
    """The canonical symbol is not mapped by this venue."""


@dataclass(slots=True)
class Reply:
    """A frame the session must send back on the same stream (e.g. answer a server ping)."""

    stream: str
    frame: str


@dataclass(slots=True)
class VenueError:
    """The venue reported an error in-band (subscription refused, ...)."""

    stream: str
    reason: str
    fatal: bool = False


@dataclass(slots=True)
class Resync:
    """The venue itself asked for a resync (e.g. a reset marker or a new snapshot cycle)."""

    reason: str


Event = BookSnapshot | BookDelta | Trade | Reply | VenueError | Resync


@dataclass(slots=True)
class StreamSpec:
    """One WebSocket connection the adapter needs.

    ``book`` / ``trades`` say what the stream carries, so the session knows which stream to
    resync and the market knows what a silent stream means. ``stale_after`` is the no-data
    time (s) after which the stream is STALE and then reconnected. ``stale_cadence`` =
    (factor, floor, ceiling) makes it follow the book's measured cadence instead, once known:
    ``factor`` times the median interval between book changes, within [floor, ceiling] (for
    venues that push whole books on a clock the venue changes; see ``feed.cadence``).
    """

    name: str
    url: str
    subscribe: list[str] = field(default_factory=list)
    book: bool = True
    trades: bool = True
    ping_interval: float | None = None  # s between application-level pings (None: none)
    ping_frame: str | None = None
    stale_after: float = 10.0
    stale_cadence: tuple[float, float, float] | None = None
    # the largest frame this stream may send (None: the session's cap, 4 MiB). A venue whose
    # first book is the whole depth in one frame needs more: BitMEX's XBTUSD partial was 0.7 MB
    # in 2021 at a 0.5 tick; at today's 0.1 tick, with a timestamp on every row, it can pass
    # 4 MiB, and a frame over the cap closes the connection every time it is sent
    max_size: int | None = None


#: the frame cap for streams whose first book is the venue's whole depth in one frame
FULL_DEPTH_MAX_SIZE = 32 * 1024 * 1024


@dataclass(slots=True)
class HttpRequest:
    """A REST request the session runs for the adapter (GET unless ``body`` is set)."""

    url: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    #: a book snapshot someone is waiting on (its own threads: never queued behind facts)
    book: bool = False


class ResyncMode(enum.Enum):
    REST = "rest"  # fetch ``snapshot_request()`` and feed it to ``BookSync.on_snapshot``
    RESUBSCRIBE = "resubscribe"  # send ``resubscribe_frames()`` on the book stream
    RECONNECT = "reconnect"  # drop the book stream and reconnect
    NONE = "none"  # every book message is a full snapshot: wait for the next one




class VenueAdapter:
    """Base class of venue adapters. One instance per (venue, symbol).

    Class attributes:
      ``name``: registry key ("binance"); ``title``: display name ("Binance USD-M");
      ``symbols``: canonical symbol -> native instrument; ``resync_mode``;
      ``default_endpoint`` / ``default_rest_endpoint``: the real venue's base URLs.

    ``endpoint`` / ``rest_endpoint`` override the base URLs (tests, mirrors, the simulator).
    ``native_upper``: the venue names instruments in upper case only, so a given
    ``instrument`` is taken in upper case (Binance answered a lower-case REST snapshot but its
    stream events named the instrument in upper case: a replay showed the snapshot, skipping
    every event).
    ``instrument`` lets a caller follow a venue-native instrument not in ``symbols``
    (replay of recordings); the canonical ``symbol`` is then used only as a label.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    symbols: ClassVar[dict[str, str]] = {}
    resync_mode: ClassVar[ResyncMode] = ResyncMode.RECONNECT
    native_upper: ClassVar[bool] = False
    default_endpoint: ClassVar[str] = ""
    default_rest_endpoint: ClassVar[str] = ""
    #: one-line description for the venues table / `obview venues`
    channel: ClassVar[str] = ""
    #: RESUBSCRIBE venues whose websocket snapshot may never come (OKX announced its removal):
    #: after this many seconds of SYNCING with deltas buffered, fetch ``snapshot_request()``
    ws_snapshot_timeout: ClassVar[float | None] = None
    #: RESUBSCRIBE venues that limit subscribe/unsubscribe requests per connection: (requests,
    #: seconds). A repair that would pass the limit reconnects instead (a new connection starts
    #: a new count); past it the venue refuses the resubscribe and the book would stay SYNCING
    resubscribe_budget: ClassVar[tuple[int, float] | None] = None
    #: the venue's WebSocket path, added to an endpoint given without one (``--endpoint
    #: ws://host:port`` reaches the same stream as the venue's own URL)
    ws_path: ClassVar[str] = ""
    #: the venue sends its whole book, every level (BitMEX orderBookL2, Deribit's raw book,
    #: Kraken Futures, dYdX, the simulator): past the deepest level nothing rests. False for a
    #: venue sending its best N levels (Binance, Bybit, OKX, Hyperliquid), where what lies past
    #: them is not known; the ladder and the heatmap hatch it so
    whole_book: ClassVar[bool] = False

    def __init__(
        self,
        symbol: str,
        *,
        endpoint: str | None = None,
        rest_endpoint: str | None = None,
        instrument: str | None = None,
    ) -> None:
        if instrument is None:
            if symbol not in self.symbols:
                valid = ", ".join(sorted(self.symbols))
                raise UnknownSymbol(f"unknown symbol {shown(symbol)} for venue {self.name}; valid: {valid}")
            instrument = self.symbols[symbol]
        elif self.native_upper:
            instrument = instrument.upper()
        self.symbol = symbol
        self.native = instrument
        self.endpoint = (endpoint or self.default_endpoint).rstrip("/")
        if not rest_endpoint and endpoint and urlsplit(endpoint).netloc != urlsplit(self.default_endpoint).netloc:
            # a mirror or the local simulator serves REST on the host it serves WebSockets on
            rest_endpoint = http_base(endpoint)
        self.rest_endpoint = (rest_endpoint or self.default_rest_endpoint or self.endpoint).rstrip("/")

    # -- connection -------------------------------------------------------------------------
    def ws_url(self) -> str:
        """The endpoint as given when it carries a path, else the endpoint + ``ws_path``."""
        if not self.ws_path or urlsplit(self.endpoint).path not in ("", "/"):
            return self.endpoint
        return self.endpoint + self.ws_path

    def streams(self) -> list[StreamSpec]:
        raise NotImplementedError

    def resubscribe_frames(self, stream: str) -> list[str]:
        """Frames that make the venue send a fresh snapshot on ``stream`` (RESUBSCRIBE mode)."""
        return []

    # -- parsing ----------------------------------------------------------------------------
    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        """Turn one received frame into events. Raise ``FrameError`` for a frame that cannot be
        understood; return [] for frames that carry nothing for this market (acks, pongs,
        other instruments, channels we do not use)."""
        raise NotImplementedError

    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        """Optional fast path for the venue's hot frames (depth updates, trades): the same events
        ``parse`` returns for the frame, or None to let ``parse`` decide.

        Events returned here must already hold only finite numbers, prices > 0 and sizes >= 0
        (the ``Price`` / ``Size`` decoder types check that in C); the pipeline checks the
        events of ``parse`` itself. A frame the fast path does not fully describe (another
        event type, an error, an odd number format) must give None, never a different answer:
        each venue's tests compare both paths on recorded and simulated frames.
        """
        return None

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> BookSync:
        return BookSync(book)

    def snapshot_request(self) -> HttpRequest | None:
        """REST snapshot for ResyncMode.REST venues."""
        return None

    def parse_snapshot(self, body: bytes, ts_local: float) -> BookSnapshot:
        raise NotImplementedError

    # -- instrument facts ---------------------------------------------------------------------
    def default_instrument(self) -> Instrument:
        """Built-in facts used until (or when) the instrument endpoint cannot be reached."""
        raise NotImplementedError

    def instrument_request(self) -> HttpRequest | None:
        return None

    def coin_instrument(self, tick: float, lot: float, base: str, quote: str, source: str = "") -> Instrument:
        """Facts of a linear instrument whose sizes count coins (USDT/USDC perpetuals)."""
        if not (tick > 0 and lot > 0):
            raise FrameError(f"{source or self.native}: non-positive tick or lot step")
        return Instrument(self.name, self.symbol, self.native, tick, lot, "base", 1.0, base, quote)

    def parse_instrument(self, body: bytes) -> Instrument:
        raise NotImplementedError


def http_base(ws_url: str) -> str:
    """``ws://host:port/any/path`` -> ``http://host:port`` (wss -> https)."""
    u = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(u.scheme, u.scheme)
    return f"{scheme}://{u.netloc}"


def number(v: object, what: str, *, strings: bool = True) -> float:
    """A finite float from a JSON number (never a bool) or, for venues that quote their numbers,
    a numeric string; anything else is a ``FrameError`` naming ``what``."""
    cls = v.__class__
    try:
        if cls is float or cls is int or strings and cls is str:
            x = float(v)  # type: ignore[arg-type]
        else:
            raise FrameError(f"{what} is not a number")
    except (ValueError, OverflowError):
        raise FrameError(f"{what} is not a number: {str(v)[:40]!r}") from None
    if not math.isfinite(x):
        raise FrameError(f"{what} is not finite")
    return x


def loads(frame: str | bytes) -> object:
    """orjson.loads that raises FrameError with a short reason."""
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError as e:
        raise FrameError(f"malformed JSON: {e.msg}") from None


def dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()
