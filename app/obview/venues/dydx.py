"""dYdX v4 Indexer WebSocket: ``v4_orderbook`` and ``v4_trades`` (``wss://indexer.dydx.trade/v4/ws``).

Protocol (see the venue fact sheet and the indexer's ``socks`` service):

- The server greets with ``connected`` (``message_id`` 0). ``subscribe`` is answered by
  ``subscribed``, whose ``contents`` is the snapshot: the whole book as ``{"price","size"}``
  objects, or the recent trades. Updates come as ``channel_data`` (``contents`` one update,
  levels as ``[price, size]`` arrays, absolute sizes, ``"0"`` deletes) or, when subscribed with
  ``batched: true``, as ``channel_batch_data`` (``contents`` a list of updates, applied in
  order, about every 250 ms). Both level shapes are read in every message.
- Book messages carry no sequence number or timestamp of their own, only the envelope's
  ``message_id``: one counter per connection, raised by one for every valid subscribe or
  unsubscribe and for every data message sent (a ping or an invalid message leaves it alone);
  ``subscribed`` carries the value set by its ``subscribe``.
  So the book gets a connection of its own with exactly one client message: ``subscribed``
  is ``1`` and each book message after it is the previous one plus one. A jump is a lost
  message (a GAP); a repeat is a duplicate. The trades take a second connection, whose
  subscribe would otherwise bump the book connection's counter at an unknown moment.
- A gap is repaired by reconnecting the book stream (ResyncMode.RECONNECT): a new
  connection restarts the counter and a new ``subscribed`` brings a fresh snapshot, with no
  unsubscribe/subscribe pair racing the venue's subscribe rate limit (2 per second per
  channel and id, a third closes the socket) or a snapshot fetch still in flight.
- Crossed books: the indexer's book is known to cross (no global book exists; the snapshot
  comes from a read replica that may lag, so deletions published meanwhile are missed).
  The venue's documented remedy, also used by dYdX's own front end, is applied by
  ``DydxSync``: every level remembers the message (and batch element) that last set it, and
  while the book is crossed the older of the two touching levels is removed (equal age: both
  are reduced by the smaller size). These corrections are counted and bounded: beyond
  ``max_drops_per_update`` per message or ``max_drops_per_window`` per ``window`` seconds the
  book is declared a GAP ("crossed ...") and rebuilt from a fresh snapshot.
- Trades: ``side`` is the taker's (the trade id is the taker fill's); ``createdAt`` is ISO-8601
  UTC. Trades in ``subscribed`` are history: their ids are remembered (so a repeat is not shown
  twice) but they are not emitted as new prints. Trade ids are de-duplicated over a bounded
  window.
- Heartbeats: the server sends WebSocket pings every 30 s (``websockets`` answers them) and
  no application heartbeats; the book changes with every block (about a second apart on the
  major markets), so the book stream is stale after 20 s without a message.
- Sizes count coins (stepSize is in the base asset), prices are USD (settled in USDC).

Fast path: ``parse_fast`` reads ``channel_data`` / ``channel_batch_data`` messages of the book
and of the trades with typed decoders (``venues.dydx_fast``; the book's numeric strings
converted and checked in C); ``subscribed`` snapshots, the greeting, errors, other markets,
channels or streams, and anything the decoders do not describe go to ``parse``, which gives the
same events for what both read.
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import quote

from obview.book import OrderBook
from obview.model import DELEVERAGE, LIQUIDATION, BookSnapshot, Instrument, Level, Side, Trade
from obview.venues.base import (
    FULL_DEPTH_MAX_SIZE,
    MAX_NUMBER,
    BookSync,
    Event,
    FastMiss,
    FrameError,
    HttpRequest,
    ResyncMode,
    StreamSpec,
    VenueAdapter,
    VenueError,
    dumps,
    loads,
    number,
)
from obview.venues.dydx_book import DydxDelta, DydxSync
from obview.venues.dydx_fast import TradeRow, decode_book, decode_trades

log = logging.getLogger(__name__)

WS_PATH = "/v4/ws"
BOOK_CHANNEL = "v4_orderbook"
TRADES_CHANNEL = "v4_trades"

#: built-in facts (tickSize, stepSize) until /v4/perpetualMarkets answers (Dec 2025 values)
DEFAULTS: dict[str, tuple[float, float]] = {
    "BTC-USD": (1.0, 0.0001),
    "ETH-USD": (0.1, 0.001),
    "SOL-USD": (0.01, 0.1),
}
_FALLBACK = (0.0001, 0.001)

_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
_KINDS = {"LIQUIDATED": LIQUIDATION, "DELEVERAGED": DELEVERAGE}


def _kind(kind: object, liquidation: object) -> str:
    """A trade's kind: ``type`` LIQUIDATED or DELEVERAGED (LIMIT, MARKET ... are fills), or in
    older payloads ``liquidation: true``."""
    if isinstance(kind, str):
        return _KINDS.get(kind, "")
    return LIQUIDATION if liquidation is True else ""

#: contents versions this adapter was written against; another major version is logged once
_KNOWN_MAJORS = {"0", "1"}
_MAX_INT = 2**63 - 1
#: error texts of a subscription the venue will never accept (unknown market or channel)
_REFUSALS = ("invalid subscription id", "invalid id", "invalid channel")


def _level(raw: object) -> Level:
    if isinstance(raw, dict):
        price, size = raw.get("price"), raw.get("size")
    elif isinstance(raw, list) and len(raw) >= 2:
        # [price, size] (a third element, the "offset" of older samples, is not used)
        price, size = raw[0], raw[1]
    else:
        raise FrameError("book level is neither [price, size] nor {price, size}")
    p = number(price, "price")
    s = number(size, "size")
    if p <= 0:
        raise FrameError("price not positive")
    if s < 0:
        raise FrameError("size negative")
    return p, s


def _levels(raw: object) -> list[Level]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise FrameError("bids/asks is not a list")
    return [_level(x) for x in raw]


def _message_id(msg: dict) -> int:
    mid = msg.get("message_id")
    if isinstance(mid, bool) or not isinstance(mid, int) or not 0 <= mid <= _MAX_INT:
        raise FrameError("book message without an integer message_id")
    return mid


def _iso_seconds(value: object) -> float:
    if not isinstance(value, str):
        raise FrameError("trade createdAt is not a string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise FrameError("trade createdAt is not ISO-8601") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


class DydxAdapter(VenueAdapter):
    """dYdX v4 perpetuals from the public Indexer (no key needed)."""

    name: ClassVar[str] = "dydx"
    title: ClassVar[str] = "dYdX v4"
    symbols: ClassVar[dict[str, str]] = {
        "BTC-PERP": "BTC-USD",
        "ETH-PERP": "ETH-USD",
        "SOL-PERP": "SOL-USD",
    }
    resync_mode: ClassVar[ResyncMode] = ResyncMode.RECONNECT
    default_endpoint: ClassVar[str] = "wss://indexer.dydx.trade/v4/ws"
    ws_path: ClassVar[str] = WS_PATH
    default_rest_endpoint: ClassVar[str] = "https://indexer.dydx.trade"
    channel: ClassVar[str] = "v4_orderbook (batched, full depth) + v4_trades; message_id +1"
    whole_book: ClassVar[bool] = True

    book_stream: ClassVar[str] = "book"
    trade_stream: ClassVar[str] = "trades"
    batched: ClassVar[bool] = True
    max_seen_trades: ClassVar[int] = 4096

    def __init__(self, symbol: str, **kwargs: str | None) -> None:
        super().__init__(symbol, **kwargs)
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._versions: set[str] = set()

    # -- connection -------------------------------------------------------------------------
    def _subscribe(self, channel: str, batched: bool) -> str:
        return dumps(
            {"type": "subscribe", "channel": channel, "id": self.native, "batched": batched}
        )

    def streams(self) -> list[StreamSpec]:
        url = self.ws_url()
        return [
            StreamSpec(
                name=self.book_stream,
                url=url,
                subscribe=[self._subscribe(BOOK_CHANNEL, self.batched)],
                book=True,
                trades=False,
                # only book messages keep a busy book fresh (the server's pings do not): a
                # major market's book changes with every block, about a second apart, so 20 s
                # without a message is a stuck feed (a quiet market's book stays LIVE while the
                # socket answers the watchdog's pings)
                stale_after=20.0,
                max_size=FULL_DEPTH_MAX_SIZE,  # the subscribed message is the whole book
            ),
            StreamSpec(
                name=self.trade_stream,
                url=url,
                subscribe=[self._subscribe(TRADES_CHANNEL, False)],
                book=False,
                trades=True,
                stale_after=120.0,  # a quiet market may not trade for minutes
            ),
        ]

    # -- parsing ----------------------------------------------------------------------------
    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        # book and trade updates of this market; the rest goes to parse() (see dydx_fast)
        try:
            m = decode_book(frame)
        except FastMiss:
            return self._trades_fast(frame, ts_local)
        seq = m.message_id
        if (
            m.id != self.native
            or m.channel != BOOK_CHANNEL
            or stream != self.book_stream
            or not isinstance(seq, int)
            or seq < 0
        ):
            return None  # another market, channel or stream ([] in parse()), or a bad message_id
        version = m.version
        if version is not None and version not in self._versions:
            self._note_version(version)
        name, symbol = self.name, self.symbol
        updates = m.contents if isinstance(m.contents, list) else [m.contents]
        if not updates:
            # an empty batch still takes a message_id: keep the sequence moving
            return [DydxDelta(name, symbol, [], [], seq, None, None, None, ts_local)]
        return [
            DydxDelta(name, symbol, u.bids, u.asks, seq, None, None, None, ts_local, None, part)
            for part, u in enumerate(updates)
        ]

    def _trades_fast(self, frame: str | bytes, ts_local: float) -> list[Event] | None:
        try:
            m = decode_trades(frame)
        except FastMiss:
            return None
        if m.id != self.native or m.channel != TRADES_CHANNEL:
            return None
        contents = m.contents if isinstance(m.contents, list) else [m.contents]
        # every print is read before the first is remembered: a None leaves the de-duplication
        # memory as it was, for parse() to read the frame afresh
        parsed: list[Trade] = []
        for c in contents:
            for row in c.trades:
                t = self._trade_row(row, ts_local)
                if t is None:
                    return None
                parsed.append(t)
        return [t for t in parsed if self._remember(t.trade_id)]

    def _trade_row(self, t: TradeRow, ts_local: float) -> Trade | None:
        """A print as ``_trade`` reads it (its own number and time functions), or None where
        ``_trade`` or the pipeline's number check would refuse it."""
        try:
            price = number(t.price, "price")
            size = number(t.size, "size")
            ts = _iso_seconds(t.createdAt)
        except (ValueError, ArithmeticError):  # FrameError among them
            return None
        if not (0.0 < price < MAX_NUMBER and 0.0 <= size < MAX_NUMBER):
            return None
        return Trade(
            self.name,
            self.symbol,
            price,
            size,
            Side.BUY if t.side == "BUY" else Side.SELL,
            t.id,
            ts,
            ts_local,
            _kind(t.type, t.liquidation),
        )

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        msg = loads(frame)
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        kind = msg.get("type")
        if not isinstance(kind, str):
            raise FrameError("message without a type")
        if kind in ("channel_data", "channel_batch_data", "subscribed"):
            if msg.get("id") != self.native:
                return []  # another market (or the markets channel)
            channel = msg.get("channel")
            if channel == BOOK_CHANNEL:
                if stream != self.book_stream:
                    return []  # the book is sequenced on its own connection only
                return self._book(kind, msg, ts_local)
            if channel == TRADES_CHANNEL:
                return self._trades(kind, msg, ts_local)
            return []  # candles and other channels
        if kind == "error":
            return [self._error(stream, msg)]
        if kind in ("connected", "unsubscribed", "pong"):
            return []
        raise FrameError(f"unknown message type {kind[:40]!r}")

    def _error(self, stream: str, msg: dict) -> VenueError:
        text = msg.get("message")
        text = str(text)[:200] if text is not None else "error without a message"
        # an unknown market or channel is refused for good; "already subscribed", rate limits
        # and "could not fetch data" are not
        fatal = any(r in text.lower() for r in _REFUSALS)
        return VenueError(stream, f"dydx: {text}", fatal=fatal)

    def _note_version(self, version: object) -> None:
        if not isinstance(version, str) or version in self._versions or len(self._versions) >= 16:
            return
        self._versions.add(version)
        if version.split(".", 1)[0] not in _KNOWN_MAJORS:
            log.info("dydx %s: unknown contents version %.20s", self.native, version)

    def _book(self, kind: str, msg: dict, ts_local: float) -> list[Event]:
        seq = _message_id(msg)
        contents = msg.get("contents")
        if kind == "subscribed":
            if not isinstance(contents, dict):
                raise FrameError("orderbook snapshot without an object")
            bids = [lv for lv in _levels(contents.get("bids")) if lv[1] > 0]
            asks = [lv for lv in _levels(contents.get("asks")) if lv[1] > 0]
            return [BookSnapshot(self.name, self.symbol, bids, asks, seq=seq, ts_local=ts_local)]
        self._note_version(msg.get("version"))
        if isinstance(contents, dict):
            updates = [contents]
        elif isinstance(contents, list):
            updates = contents
        else:
            raise FrameError("orderbook update without contents")
        out: list[Event] = []
        for part, update in enumerate(updates):
            if not isinstance(update, dict):
                raise FrameError("orderbook batch element is not an object")
            out.append(
                DydxDelta(
                    self.name,
                    self.symbol,
                    _levels(update.get("bids")),
                    _levels(update.get("asks")),
                    seq=seq,
                    ts_local=ts_local,
                    part=part,
                )
            )
        if not out:
            # an empty batch still takes a message_id: keep the sequence moving
            out.append(DydxDelta(self.name, self.symbol, [], [], seq=seq, ts_local=ts_local))
        return out

    def _remember(self, trade_id: str) -> bool:
        """True when ``trade_id`` is new (and remember it, within a bounded window)."""
        if trade_id in self._seen:
            return False
        self._seen.add(trade_id)
        self._seen_order.append(trade_id)
        if len(self._seen_order) > self.max_seen_trades:
            self._seen.discard(self._seen_order.popleft())
        return True

    def _trades(self, kind: str, msg: dict, ts_local: float) -> list[Event]:
        contents = msg.get("contents")
        items: list = []
        for c in contents if isinstance(contents, list) else [contents]:
            trades = c.get("trades") if isinstance(c, dict) else None
            if not isinstance(trades, list):
                raise FrameError("trades message without a trades list")
            items.extend(trades)
        if kind == "subscribed":
            # recent history, newest first: remembered so a repeat is not shown, not emitted
            for t in reversed(items):
                if isinstance(t, dict) and isinstance(t.get("id"), (str, int)):
                    self._remember(str(t["id"]))
            return []
        parsed = [self._trade(t, ts_local) for t in items]
        return [t for t in parsed if self._remember(t.trade_id)]

    def _trade(self, t: object, ts_local: float) -> Trade:
        if not isinstance(t, dict):
            raise FrameError("trade is not an object")
        side = _SIDES.get(t.get("side"))  # type: ignore[arg-type]
        if side is None:
            raise FrameError(f"unknown trade side {str(t.get('side'))[:10]!r}")
        tid = t.get("id")
        if isinstance(tid, bool) or not isinstance(tid, (str, int)):
            raise FrameError("trade without an id")
        price = number(t.get("price"), "price")
        size = number(t.get("size"), "size")
        if price <= 0 or size < 0:
            raise FrameError("trade price or size out of range")
        return Trade(
            venue=self.name,
            symbol=self.symbol,
            price=price,
            size=size,
            side=side,  # the taker's: a trade is the taker fill
            trade_id=str(tid),
            ts_exchange=_iso_seconds(t.get("createdAt")),
            ts_local=ts_local,
            kind=_kind(t.get("type"), t.get("liquidation")),
        )

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> BookSync:
        return DydxSync(book)

    # -- instrument facts ---------------------------------------------------------------------
    def _base(self) -> str:
        return self.native.split("-", 1)[0]

    def default_instrument(self) -> Instrument:
        tick, lot = DEFAULTS.get(self.native, _FALLBACK)
        return self.coin_instrument(tick, lot, self._base(), "USD")

    def instrument_request(self) -> HttpRequest:
        return HttpRequest(f"{self.rest_endpoint}/v4/perpetualMarkets?ticker={quote(self.native)}")

    def parse_instrument(self, body: bytes) -> Instrument:
        msg = loads(body)
        if not isinstance(msg, dict):
            raise FrameError("perpetualMarkets: expected a JSON object")
        markets = msg.get("markets")
        if markets is None and isinstance(msg.get("result"), dict):
            markets = msg["result"].get("markets")
        if not isinstance(markets, dict):
            errors = msg.get("errors")
            raise FrameError(
                f"perpetualMarkets: no markets in reply {str(errors)[:80] if errors else ''}"
            )
        m = markets.get(self.native)
        if not isinstance(m, dict):
            raise FrameError(f"perpetualMarkets: {self.native} not listed")
        tick = number(m.get("tickSize"), "tickSize")
        lot = number(m.get("stepSize"), "stepSize")
        return self.coin_instrument(tick, lot, self._base(), "USD", "perpetualMarkets")
