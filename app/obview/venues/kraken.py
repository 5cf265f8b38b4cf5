"""Kraken Futures WebSocket v1: ``book`` (full depth, one level per message) and ``trade``.

One socket, ``wss://futures.kraken.com/ws/v1``; the public feeds need no ``challenge``. The
client sends one ``{"event":"subscribe","feed":...,"product_ids":[...]}`` per feed; the server
greets with ``{"event":"info","version":1}`` and acknowledges each product on its own
(``{"event":"subscribed",...}``), answering product ids in upper case whatever case was sent.

Book rules (fact sheet section 5, checked on the 2021 recording):

- ``book_snapshot`` carries the whole book and ``seq`` = S; it replaces the book;
- each ``book`` message changes one level: ``side`` ``buy`` (bid) / ``sell`` (ask), ``qty`` the
  new absolute size, 0 deletes. Its ``seq`` is the product's previous one plus one: a smaller
  one is a replay (ignored), a larger jump is a gap;
- there is no checksum; a gap or a crossed book unsubscribes and subscribes ``book`` again,
  which makes the venue send a fresh snapshot.

Trades: ``side`` is the taker side; ``trade_snapshot`` (recent history sent on subscribing,
newest first) is not replayed into the tape, since those prints are not live flow.

Fast path: ``parse_fast`` reads ``book`` and ``trade`` messages with a typed decoder (numbers
checked in C); snapshots, heartbeats, control events, other feeds and anything the decoder does
not describe go to ``parse``, which gives the same events for what both read.

Keepalive: the venue drops a connection that has not pinged for 60 s. It defines no JSON ping,
so the WebSocket protocol pings that ``websockets`` sends (every 20 s by default) keep it open;
the ``heartbeat`` feed is subscribed too, so a quiet socket still hears from the venue.

Sizes: ``PF_`` (linear multi-collateral perpetuals) and ``FF_`` count coins; ``PI_`` / ``FI_``
(inverse) count USD contracts of ``contractSize`` USD. Prices and sizes are JSON numbers.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Annotated, ClassVar, Literal

import msgspec

from obview.book import OrderBook
from obview.model import BLOCK, LIQUIDATION, BookDelta, BookSnapshot, Instrument, Level, Side, Trade
from obview.venues.base import (
    APPLIED,
    FULL_DEPTH_MAX_SIZE,
    BookSync,
    Event,
    FastMiss,
    FrameError,
    HttpRequest,
    NextSeqSync,
    Price,
    ResyncMode,
    Size,
    StreamSpec,
    SyncResult,
    VenueAdapter,
    VenueError,
    dumps,
    loads,
    number,
)

WS_PATH = "/ws/v1"
INSTRUMENTS_PATH = "/derivatives/api/v3/instruments"
#: a side longer than this is cut to its best levels (a hostile feed cannot grow the book
#: without bound; real snapshots hold a few hundred levels per side)
MAX_LEVELS = 10_000

#: built-in facts used until /instruments answers: native -> (tickSize, lot step in coins)
DEFAULTS: dict[str, tuple[float, float]] = {
    "PF_XBTUSD": (1.0, 0.0001),
    "PF_ETHUSD": (0.1, 0.001),
    "PF_SOLUSD": (0.01, 0.01),
}
_INVERSE_PREFIXES = ("PI", "FI")
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_KINDS = {"liquidation": LIQUIDATION, "block": BLOCK}


def _kind(kind: object) -> str:
    """A trade's kind from its ``type``; an unknown or odd one reads as a fill."""
    return _KINDS.get(kind, "") if isinstance(kind, str) else ""

# error texts of a venue that will not serve what we asked, however often we ask
_FATAL_ERRORS = ("invalid product",)


def _int(v: object, what: str) -> int:
    if v.__class__ is not int:
        raise FrameError(f"{what} is not an integer")
    return v  # type: ignore[return-value]


def _ms(v: object, what: str) -> float | None:
    """Milliseconds since the epoch -> seconds (None when absent)."""
    if v is None:
        return None
    return number(v, what) / 1000.0


def _levels(rows: object, what: str) -> list[Level]:
    if not isinstance(rows, list):
        raise FrameError(f"{what} is not a list")
    out: list[Level] = []
    for row in rows:
        if not isinstance(row, dict):
            raise FrameError(f"{what} level is not an object")
        out.append((number(row.get("price"), "price"), number(row.get("qty"), "qty")))
    return out


def base_of(product: str) -> str:
    """``PF_XBTUSD`` -> ``BTC``; ``FI_ETHUSD_211231`` -> ``ETH``."""
    parts = product.upper().split("_")
    pair = parts[1] if len(parts) > 1 else parts[0]
    base = pair[:-3] if pair.endswith("USD") and len(pair) > 3 else pair
    return "BTC" if base == "XBT" else base


# -- typed decoders of the hot frames (parse_fast) ----------------------------------------------
# Numbers are JSON numbers at Kraken Futures, so the decoder is strict: a numeric string (which
# ``parse`` reads through ``number``) goes to ``parse``. ``Price`` / ``Size`` refuse what the
# pipeline's number check refuses in ``parse``'s events, so such a frame is ``parse``'s too.
# Times and sequence numbers are integers within int64 (orjson reads integers up to 2**64 - 1,
# and ``parse`` takes a float time too): anything else goes to ``parse``. A null ``timestamp``,
# ``time``, ``uid``, ``type`` or ``seq`` reads as "not sent", as ``msg.get()`` reads it.
#
# Every field is declared and an unknown one sends the frame to ``parse`` (``event`` among
# them: ``parse`` reads a frame with one as a control event): the decoder skips an unknown
# field's value unread where orjson refuses a frame with a number beyond a double or bad text
# in any field. A field Kraken adds later makes its frames slow until declared here, never
# different. A frame naming ``feed`` twice is refused, so orjson's last-wins reading never
# disagrees with the decoder's.

#: an integer within int64 (the decoder's bounds stop there)
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Book(msgspec.Struct, tag_field="feed", tag="book", forbid_unknown_fields=True, gc=False):
    product_id: str
    side: Literal["buy", "sell"]
    seq: _Int64
    price: Price
    qty: Size
    timestamp: _Int64 | None = None


class _Trade(msgspec.Struct, tag_field="feed", tag="trade", forbid_unknown_fields=True, gc=False):
    product_id: str
    side: Literal["buy", "sell"]
    price: Price
    qty: Size
    uid: str | None = None
    type: str | None = None
    seq: _Int64 | None = None  # the trade id when there is no uid
    time: _Int64 | None = None


_decode = msgspec.json.Decoder(_Book | _Trade).decode


class KrakenSync(NextSeqSync):
    """Snapshot replaces; each delta must continue the product's ``seq`` by exactly one."""

    def on_delta(self, delta: BookDelta) -> SyncResult:
        # Every ``book`` message: a synced book, one level, the next seq, no checksum. What
        # NextSeqSync.check_delta, OrderBook.apply_delta and _post_apply do for it, in one pass
        # (no level list walked, no truncate, no is_crossed call on a book within its depth
        # that is neither crossed nor empty; any other book goes on to _post_apply). Anything
        # else (held before the snapshot, behind, a gap, several levels) takes the general path.
        seq = delta.seq
        last = self.last_seq
        if (
            not self.synced
            or last is None
            or seq is None
            or seq != last + 1
            or delta.checksum
            or not self._plain_post
        ):
            return super().on_delta(delta)
        bids, asks = delta.bids, delta.asks
        book = self.book
        if bids:
            if asks or len(bids) != 1:
                return super().on_delta(delta)
            side = book.bids
            ((p, s),) = bids
        elif asks and len(asks) == 1:
            side = book.asks
            ((p, s),) = asks
        else:
            return super().on_delta(delta)
        levels = side.levels
        if s > 0:
            if p not in levels:
                insort(side._keys, p)
            levels[p] = s
        elif p in levels:
            del levels[p]
            keys = side._keys
            del keys[bisect_left(keys, p)]
        self.last_seq = seq
        bk, ak = book.bids._keys, book.asks._keys
        depth = self.depth
        if depth is None or (len(bk) <= depth and len(ak) <= depth):
            if bk and ak:
                if bk[-1] < ak[0]:
                    return APPLIED
            elif bk or ak:
                return APPLIED
        return self._post_apply(None)  # the depth cut, a crossed or an empty book


class KrakenAdapter(VenueAdapter):
    """Kraken Futures perpetuals (public WebSocket v1, no key needed)."""

    name: ClassVar[str] = "kraken"
    title: ClassVar[str] = "Kraken Futures"
    symbols: ClassVar[dict[str, str]] = {
        "BTC-PERP": "PF_XBTUSD",
        "ETH-PERP": "PF_ETHUSD",
        "SOL-PERP": "PF_SOLUSD",
    }
    resync_mode: ClassVar[ResyncMode] = ResyncMode.RESUBSCRIBE
    default_endpoint: ClassVar[str] = "wss://futures.kraken.com"
    ws_path: ClassVar[str] = WS_PATH
    default_rest_endpoint: ClassVar[str] = "https://futures.kraken.com"
    channel: ClassVar[str] = "book (full depth, one level per message) + trade; per-product seq + 1"
    whole_book: ClassVar[bool] = True

    stream_name: ClassVar[str] = "public"

    def __init__(self, symbol: str, **kwargs: str | None) -> None:
        super().__init__(symbol, **kwargs)
        self.product = self.native.upper()  # the venue answers in upper case
        self.heartbeats = 0
        self.last_heartbeat: float | None = None  # venue time (s) of the last heartbeat

    # -- connection -------------------------------------------------------------------------
    def _sub(self, event: str, feed: str) -> str:
        return dumps({"event": event, "feed": feed, "product_ids": [self.native]})

    def streams(self) -> list[StreamSpec]:
        return [
            StreamSpec(
                name=self.stream_name,
                url=self.ws_url(),
                subscribe=[
                    self._sub("subscribe", "book"),
                    self._sub("subscribe", "trade"),
                    dumps({"event": "subscribe", "feed": "heartbeat"}),
                ],
                # a BTC book changes many times a second: 15 s of silence is worth showing (a
                # quiet one stays LIVE while the socket answers the watchdog's pings)
                stale_after=15.0,
                max_size=FULL_DEPTH_MAX_SIZE,  # the snapshot is the whole book
            )
        ]

    def resubscribe_frames(self, stream: str) -> list[str]:
        return [self._sub("unsubscribe", "book"), self._sub("subscribe", "book")]

    # -- parsing ----------------------------------------------------------------------------
    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        # book and trade messages; snapshots, heartbeats, control events, other feeds and
        # whatever the decoder does not describe go to parse()
        try:
            m = _decode(frame)
        except FastMiss:
            return None
        pid = m.product_id
        if pid != self.product and pid.upper() != self.product:
            return []  # another product's: parse() does not read it either
        if m.__class__ is _Book:
            ts = m.timestamp
            level = [(m.price, m.qty)]
            return [
                BookDelta(
                    self.name, self.symbol, level if m.side == "buy" else [],
                    [] if m.side == "buy" else level, m.seq, None, None,
                    None if ts is None else ts / 1000.0, ts_local,
                )
            ]  # fmt: skip
        uid = m.uid
        t = m.time
        return [
            Trade(
                self.name, self.symbol, m.price, m.qty,
                Side.BUY if m.side == "buy" else Side.SELL,
                (uid if uid is not None else str(m.seq))[:64],
                None if t is None else t / 1000.0, ts_local, _kind(m.type),
            )
        ]  # fmt: skip

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        msg = loads(frame)
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        feed = msg.get("feed")
        event = msg.get("event")
        if event is not None:
            return self._control(stream, str(event), msg)
        if feed == "heartbeat":
            self.heartbeats += 1
            self.last_heartbeat = _ms(msg.get("time"), "heartbeat time")
            return []
        if feed is None:
            raise FrameError("neither feed nor event")
        product = msg.get("product_id")
        if not isinstance(product, str) or product.upper() != self.product:
            return []  # another product, or a feed without one that is not ours
        if feed == "book":
            return [self._delta(msg, ts_local)]
        if feed == "book_snapshot":
            return [self._snapshot(msg, ts_local)]
        if feed == "trade":
            return [self._trade(msg, ts_local)]
        return []  # trade_snapshot (history, not live flow), ticker and other feeds

    def _control(self, stream: str, event: str, msg: dict) -> list[Event]:
        if event in ("info", "subscribed", "unsubscribed", "challenge"):
            return []
        reason = str(msg.get("message") or msg.get("error") or event)[:200]
        if event == "error":
            fatal = any(e in reason.lower() for e in _FATAL_ERRORS)
            return [VenueError(stream, f"kraken: {reason}", fatal=fatal)]
        if event in ("subscribed_failed", "unsubscribed_failed"):
            feed = msg.get("feed")
            ids = msg.get("product_ids")
            ours = not isinstance(ids, list) or any(
                isinstance(p, str) and p.upper() == self.product for p in ids
            )
            # refused book or trade subscriptions of our product do not fix themselves
            fatal = event == "subscribed_failed" and feed in ("book", "trade") and ours
            return [VenueError(stream, f"kraken {event} ({str(feed)[:40]}): {reason}", fatal=fatal)]
        if event == "alert":
            return [VenueError(stream, f"kraken alert: {reason}")]
        return []  # other control events carry nothing for the book

    def _snapshot(self, msg: dict, ts_local: float) -> BookSnapshot:
        return BookSnapshot(
            self.name,
            self.symbol,
            _levels(msg.get("bids"), "bids"),
            _levels(msg.get("asks"), "asks"),
            seq=_int(msg.get("seq"), "seq"),
            ts_exchange=_ms(msg.get("timestamp"), "timestamp"),
            ts_local=ts_local,
        )

    def _delta(self, msg: dict, ts_local: float) -> BookDelta:
        side = msg.get("side")
        level = [(number(msg.get("price"), "price"), number(msg.get("qty"), "qty"))]
        if side == "buy":
            bids, asks = level, []
        elif side == "sell":
            bids, asks = [], level
        else:
            raise FrameError(f"unknown book side {str(side)[:20]!r}")
        return BookDelta(
            self.name,
            self.symbol,
            bids,
            asks,
            seq=_int(msg.get("seq"), "seq"),
            ts_exchange=_ms(msg.get("timestamp"), "timestamp"),
            ts_local=ts_local,
        )

    def _trade(self, msg: dict, ts_local: float) -> Trade:
        side = _SIDES.get(msg.get("side"))  # type: ignore[arg-type]
        if side is None:
            raise FrameError(f"unknown trade side {str(msg.get('side'))[:20]!r}")
        uid = msg.get("uid")
        return Trade(
            venue=self.name,
            symbol=self.symbol,
            price=number(msg.get("price"), "price"),
            size=number(msg.get("qty"), "qty"),
            side=side,  # the taker side
            trade_id=str(uid if uid is not None else msg.get("seq"))[:64],
            ts_exchange=_ms(msg.get("time"), "time"),
            ts_local=ts_local,
            # "fill", "liquidation", "termination" or "block"; a termination (a position
            # closed by the venue) is not said to be either, so it reads as a fill
            kind=_kind(msg.get("type")),
        )

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> BookSync:
        return KrakenSync(book, depth=MAX_LEVELS)

    # -- instrument facts -------------------------------------------------------------------
    def _inverse(self) -> bool:
        return self.product.split("_")[0] in _INVERSE_PREFIXES

    def default_instrument(self) -> Instrument:
        base = base_of(self.product)
        if self._inverse():
            # USD contracts of 1 USD each
            tick = 0.5 if base == "BTC" else 0.05
            return Instrument(
                self.name, self.symbol, self.native, tick, 1.0, "quote", 1.0, base, "USD"
            )
        tick, lot = DEFAULTS.get(self.product, (0.01, 0.001))
        return Instrument(self.name, self.symbol, self.native, tick, lot, "base", 1.0, base, "USD")

    def instrument_request(self) -> HttpRequest:
        return HttpRequest(f"{self.rest_endpoint}{INSTRUMENTS_PATH}")

    def parse_instrument(self, body: bytes) -> Instrument:
        msg = loads(body)
        if not isinstance(msg, dict):
            raise FrameError("instruments: expected a JSON object")
        if msg.get("result") != "success":
            raise FrameError(f"instruments: {str(msg.get('error') or msg.get('result'))[:80]}")
        items = msg.get("instruments")
        if not isinstance(items, list):
            raise FrameError("instruments: no instrument list")
        for item in items:
            if not isinstance(item, dict):
                continue
            sym = item.get("symbol")
            if not isinstance(sym, str) or sym.upper() != self.product:
                continue
            return self._instrument(item)
        raise FrameError(f"instruments: {self.product} not listed")

    def _instrument(self, item: dict) -> Instrument:
        fallback = self.default_instrument()
        tick = number(item.get("tickSize", fallback.tick), "tickSize")
        contract = number(item.get("contractSize", 1), "contractSize")
        precision = item.get("contractValueTradePrecision")
        if precision is None:
            lot = fallback.lot
        elif precision.__class__ is int and -12 <= precision <= 12:
            lot = 10.0**-precision
        else:
            raise FrameError("instruments: contractValueTradePrecision out of range")
        base = item.get("base") if isinstance(item.get("base"), str) else fallback.base
        base = "BTC" if base == "XBT" else base
        quote = item.get("quote") if isinstance(item.get("quote"), str) else fallback.quote
        kind = item.get("type")
        inverse = kind == "futures_inverse" if isinstance(kind, str) else self._inverse()
        if inverse:
            # sizes count contracts of ``contractSize`` USD
            return Instrument(
                self.name, self.symbol, self.native, tick, lot, "quote", contract, base, quote
            )
        if contract == 1.0:
            return Instrument(
                self.name, self.symbol, self.native, tick, lot, "base", 1.0, base, quote
            )
        return Instrument(
            self.name, self.symbol, self.native, tick, lot, "contract", contract, base, quote
        )
