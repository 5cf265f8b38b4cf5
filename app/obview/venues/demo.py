"""Demo venue: the local simulator speaking the demo protocol (docs/DEMO_PROTOCOL.md).

Snapshot + deltas chained by ``seq`` / ``prev_seq`` (the default ``BookSync`` rule), trades
with the taker side, ``{"op":"resync"}`` for a fresh snapshot after a gap.

``parse_fast`` reads snapshot, delta and trade messages with a typed decoder (prices and sizes
converted and checked in C); every other message, and any integer ``parse`` would read
differently (a numeric string, a value outside orjson's integer range, a float trade id), goes
to ``parse``.
"""

from __future__ import annotations

from typing import Annotated, ClassVar
from urllib.parse import urlsplit, urlunsplit

import msgspec

from obview.book import OrderBook
from obview.model import TRADE_TAGS, BookDelta, BookSnapshot, Instrument, Level, Side, Trade
from obview.sim.engine import SIM_SYMBOLS
from obview.venues.base import (
    DEPTH_REFRESH,
    BookSync,
    Event,
    FastMiss,
    FrameError,
    Price,
    PriceSize,
    ResyncMode,
    Size,
    StreamSpec,
    SyncResult,
    SyncStatus,
    VenueAdapter,
    VenueError,
    dumps,
    loads,
    number,
)

STREAM = "demo"
#: levels a side the snapshots are asked for: the protocol's most, more than the simulator's
#: whole book holds (about 600-800 a side), so the book is whole at every depth
DEPTH = 5000
PING = dumps({"op": "ping"})
_QUIET = frozenset({"subscribed", "unsubscribed", "pong", "heartbeat"})


# -- typed decoders of the hot frames (parse_fast) ----------------------------------------------
#: an integer the slow path's orjson also reads as an integer (larger ones it reads as floats);
#: ``| str`` keeps a numeric string a string (strict=False would convert it): parse_fast then
#: leaves the frame to ``parse``
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Snapshot(msgspec.Struct, tag_field="type", tag="snapshot", gc=False):
    symbol: str
    seq: _Int | str
    ts: _Int | float | str  # ms; parse divides a float as it comes (sub-ms stamps)
    bids: list[PriceSize]
    asks: list[PriceSize]


class _Delta(msgspec.Struct, tag_field="type", tag="delta", gc=False):
    symbol: str
    seq: _Int | str
    prev_seq: _Int | str
    ts: _Int | float | str  # ms; parse divides a float as it comes (sub-ms stamps)
    bids: list[PriceSize]
    asks: list[PriceSize]


class _Trade(msgspec.Struct, tag_field="type", tag="trade", gc=False):
    symbol: str
    id: _Int | float | str  # a float stays one: parse prints 5.0 as "5.0", not "5"
    price: Price
    size: Size
    side: Side
    ts: _Int | float | str  # ms; parse divides a float as it comes (sub-ms stamps)
    kind: str = ""  # "liq", "adl" or "block"; absent on an ordinary fill


def _kind(kind: object) -> str:
    """A trade's ``kind`` ("liq", "adl", "block"); anything else is an ordinary fill."""
    return kind if isinstance(kind, str) and kind in TRADE_TAGS else ""


_decode = msgspec.json.Decoder(_Delta | _Trade | _Snapshot, strict=False).decode


def _levels(raw: object) -> list[Level]:
    if not isinstance(raw, list):
        raise FrameError("levels must be a list")
    # a bool is not a price (float(True) read as 1.0)
    return [(number(p, "price"), number(s, "size")) for p, s in raw]


def _seq(v: object, what: str) -> int:
    if v.__class__ is not int:  # 2.9 was cut to 2, True read as 1
        raise FrameError(f"{what} is not an integer")
    return v  # type: ignore[return-value]


class DemoSync(BookSync):
    """seq/prev_seq (the base rules) within what the snapshot knows. A delta may name a level
    beyond the snapshot's depth (the protocol leaves keeping it to the client), so where a
    snapshot side is full (``limit`` levels) only prices up to its deepest level are known:
    levels beyond are dropped, and when fewer than a tenth of ``limit`` remain before that edge
    the book is refreshed (SYNCING, then LIVE; a resync, not a gap). Kept, they read as a book
    that thins out with depth: a partial sum at every price past the snapshot's edge."""

    def __init__(self, book: OrderBook, limit: int = DEPTH) -> None:
        super().__init__(book)
        self.limit = limit
        self.edge = max(1, limit // 10)
        self.window: tuple[float | None, float | None] = (None, None)
        self._plain_post = True  # nothing to trim while no snapshot side was full

    def after_snapshot(self, snap: BookSnapshot) -> SyncResult:
        full = self.limit
        bids = [p for p, s in snap.bids if s > 0]
        asks = [p for p, s in snap.asks if s > 0]
        self.window = (
            min(bids) if len(bids) >= full else None,
            max(asks) if len(asks) >= full else None,
        )
        self._plain_post = self.window == (None, None)
        return super().after_snapshot(snap)

    def _post_apply(self, checksum: int | None) -> SyncResult:
        lo, hi = self.window
        bids, asks = self.book.bids, self.book.asks
        if lo is not None:
            while bids._keys and bids._keys[0] < lo:
                bids.popitem(0)
        if hi is not None:
            while asks._keys and asks._keys[-1] > hi:
                asks.popitem(-1)
        for known, n in ((lo, len(bids._keys)), (hi, len(asks._keys))):
            if known is not None and n < self.edge:
                return self._fail(
                    SyncResult(
                        SyncStatus.GAP,
                        f"{DEPTH_REFRESH}: {n} of the snapshot's {self.limit} levels left"
                        " between the touch and its edge",
                        refresh=True,
                    )
                )
        return super()._post_apply(checksum)


class DemoAdapter(VenueAdapter):
    """The built-in simulator (run ``obview demo-server`` or let the app start one)."""

    name: ClassVar[str] = "demo"
    title: ClassVar[str] = "Demo (simulator)"
    symbols: ClassVar[dict[str, str]] = {s: s for s in SIM_SYMBOLS}
    resync_mode: ClassVar[ResyncMode] = ResyncMode.RESUBSCRIBE
    default_endpoint: ClassVar[str] = ""  # the app fills in the local server's URL
    channel: ClassVar[str] = "local simulator: snapshot + seq/prev_seq deltas, trades"
    whole_book: ClassVar[bool] = True  # it asks for more levels than the simulator holds

    def stream_url(self) -> str:
        """The endpoint, with ``/demo`` added when it names no path."""
        parts = urlsplit(self.endpoint)
        if parts.path in ("", "/"):
            parts = parts._replace(path="/demo")
        return urlunsplit(parts)

    def streams(self) -> list[StreamSpec]:
        return [
            StreamSpec(
                name=STREAM,
                url=self.stream_url(),
                subscribe=[dumps({"op": "subscribe", "symbol": self.native, "depth": DEPTH})],
                ping_interval=10.0,
                ping_frame=PING,
                stale_after=3.0,  # the server beats once a second
            )
        ]

    def make_sync(self, book: OrderBook) -> BookSync:
        self._sync = DemoSync(book)
        return self._sync

    def resubscribe_frames(self, stream: str) -> list[str]:
        return [dumps({"op": "resync", "symbol": self.native})]

    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        # delta, trade and snapshot messages; acks, pongs, heartbeats and errors go to parse()
        try:
            m = _decode(frame)
        except FastMiss:
            return None
        if m.symbol != self.native:
            return []
        ts = m.ts
        if ts.__class__ is str:
            return None
        cls = m.__class__
        if cls is _Delta:
            seq, prev = m.seq, m.prev_seq
            if seq.__class__ is not int or prev.__class__ is not int or seq != prev + 1:
                return None  # the slow path says what is wrong
            return [
                BookDelta(
                    self.name, self.symbol, m.bids, m.asks, seq, prev, None, ts / 1000.0, ts_local
                )
            ]
        if cls is _Trade:
            tid = m.id
            if tid.__class__ is float:
                return None
            return [
                Trade(
                    self.name,
                    self.symbol,
                    m.price,
                    m.size,
                    m.side,
                    str(tid),
                    ts / 1000.0,
                    ts_local,
                    _kind(m.kind),
                )
            ]
        seq = m.seq
        if seq.__class__ is not int:
            return None
        return [BookSnapshot(self.name, self.symbol, m.bids, m.asks, seq, ts / 1000.0, ts_local)]

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        msg = loads(frame)
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        kind = msg.get("type")
        if kind in _QUIET:
            depth = msg.get("depth")
            sync = getattr(self, "_sync", None)
            if (
                kind == "subscribed" and msg.get("symbol") == self.native and sync is not None
                and isinstance(depth, int) and not isinstance(depth, bool) and depth > 0
            ):  # fmt: skip
                # the depth the server grants (it may cap what was asked): a snapshot side
                # that holds it is full, and bounds what the book knows
                sync.limit, sync.edge = depth, max(1, depth // 10)
            return []
        if kind == "error":
            reason = msg.get("reason")
            if not isinstance(reason, str):
                raise FrameError("error without a reason")
            symbol = msg.get("symbol")
            if symbol is not None and symbol != self.native:
                return []
            return [VenueError(stream, reason, fatal=msg.get("fatal") is True)]
        if kind not in ("snapshot", "delta", "trade"):
            raise FrameError(f"unknown message type {str(kind)[:40]!r}")
        if msg.get("symbol") != self.native:
            return []
        try:
            ts = msg["ts"] / 1000.0
            if kind == "delta":
                seq, prev = _seq(msg["seq"], "seq"), _seq(msg["prev_seq"], "prev_seq")
                if seq != prev + 1:
                    # the protocol numbers each step once (a seq that goes back restarted the
                    # chain where it did not link)
                    raise FrameError(f"seq {seq} does not follow prev_seq {prev}")
                return [
                    BookDelta(
                        venue=self.name,
                        symbol=self.symbol,
                        bids=_levels(msg["bids"]),
                        asks=_levels(msg["asks"]),
                        seq=seq,
                        prev_seq=prev,
                        ts_exchange=ts,
                        ts_local=ts_local,
                    )
                ]
            if kind == "trade":
                return [
                    Trade(
                        venue=self.name,
                        symbol=self.symbol,
                        price=float(msg["price"]),
                        size=float(msg["size"]),
                        side=Side(msg["side"]),
                        trade_id=str(msg["id"]),
                        ts_exchange=ts,
                        ts_local=ts_local,
                        kind=_kind(msg.get("kind")),
                    )
                ]
            return [
                BookSnapshot(
                    venue=self.name,
                    symbol=self.symbol,
                    bids=_levels(msg["bids"]),
                    asks=_levels(msg["asks"]),
                    seq=_seq(msg["seq"], "seq"),
                    ts_exchange=ts,
                    ts_local=ts_local,
                )
            ]
        except FrameError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise FrameError(f"bad {kind} message: {type(e).__name__} {e}") from None

    def default_instrument(self) -> Instrument:
        _mid, tick, lot = SIM_SYMBOLS.get(self.native, SIM_SYMBOLS["BTC-PERP"])
        return Instrument(
            venue=self.name,
            symbol=self.symbol,
            native=self.native,
            tick=tick,
            lot=lot,
            size_unit="base",
            base=self.native.split("-")[0],
            quote="USD",
        )
