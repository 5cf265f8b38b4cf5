"""Deribit JSON-RPC WebSocket feed: ``book.{instrument}.100ms`` and ``trades.{instrument}.100ms``.

The ``raw`` channels need a login, so obview uses ``100ms``: a full snapshot first, then
changes chained by ``prev_change_id`` == the previous ``change_id``; a broken link is a gap,
repaired by unsubscribing and subscribing the book channel again (a new snapshot follows).
Rows are ``[action, price, amount]`` with action ``new`` / ``change`` / ``delete``.

Heartbeats: the client asks for them with ``public/set_heartbeat``; the server then sends
``heartbeat`` notifications and, now and then, a ``test_request`` that must be answered with
``public/test`` or the connection is closed.

Sizes: inverse contracts (BTC-PERPETUAL, ETH-PERPETUAL, dated futures) count USD; linear
USDC contracts (SOL_USDC-PERPETUAL) and options count coins.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import quote

import msgspec
import orjson

from obview.book import OrderBook
from obview.model import BLOCK, LIQUIDATION, BookDelta, BookSnapshot, Instrument, Level, Side, Trade
from obview.venues.base import (
    FULL_DEPTH_MAX_SIZE,
    BookSync,
    Event,
    FastMiss,
    FrameError,
    HttpRequest,
    Price,
    Reply,
    ResyncMode,
    Size,
    StreamSpec,
    VenueAdapter,
    VenueError,
    dumps,
    loads,
)

WS_PATH = "/ws/api/v2"
HEARTBEAT_INTERVAL = 10  # s, Deribit's minimum: a quiet socket still speaks well within stale_after

# JSON-RPC ids of our own requests (replies are matched on them)
ID_HEARTBEAT = 1
ID_SUBSCRIBE = 2
ID_UNSUBSCRIBE_BOOK = 3
ID_SUBSCRIBE_BOOK = 4
ID_TEST_BASE = 1000  # answers to test_request count up from here

TOO_MANY_REQUESTS = 10028

# Built-in facts used when public/get_instrument cannot be reached:
# name -> (tick_size, lot, size_unit, contract_value, base, quote)
DEFAULTS: dict[str, tuple[float, float, str, float, str, str]] = {
    "BTC-PERPETUAL": (0.5, 10.0, "quote", 1.0, "BTC", "USD"),
    "ETH-PERPETUAL": (0.05, 1.0, "quote", 1.0, "ETH", "USD"),
    "SOL_USDC-PERPETUAL": (0.01, 0.1, "base", 1.0, "SOL", "USDC"),
}

_ACTIONS = {"new", "change", "delete"}


def _kind(liquidation: object, block_trade_id: object) -> str:
    """A trade's kind: ``liquidation`` ("M", "T" or "MT": the maker's, the taker's or both
    positions were liquidated) is there only on a liquidation; ``block_trade_id`` only on a
    block trade. A row of the tape is the taker's: tagged LIQ when the taker was liquidated
    ("T", "MT"). "M" alone (a resting order of the liquidated position was hit) would read as
    the taker's side forced, the opposite of what was: it stays an ordinary fill."""
    if isinstance(liquidation, str) and "T" in liquidation:
        return LIQUIDATION
    if block_trade_id:
        return BLOCK
    return ""


def _rows(rows: list) -> list[Level]:
    out: list[Level] = []
    for row in rows:
        action, price, amount = row
        if action not in _ACTIONS:
            raise FrameError(f"unknown book action {action!r}")
        out.append((float(price), 0.0 if action == "delete" else float(amount)))
    return out


# -- typed decoders of the hot frames (parse_fast) ----------------------------------------------
#: an integer orjson reads exactly (beyond 64 bits it reads a float, which int() in parse()
#: would round differently); a larger one is left to parse()
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Row = tuple[Literal["new", "change", "delete"], Price, Size]


class _Snapshot(msgspec.Struct, tag_field="type", tag="snapshot"):
    timestamp: _Int
    change_id: _Int
    bids: list[_Row]
    asks: list[_Row]


class _Change(msgspec.Struct, tag_field="type", tag="change"):
    timestamp: _Int
    change_id: _Int
    bids: list[_Row]
    asks: list[_Row]
    # not ``_Int | None``: strict=False would read the string "null" as None (an unchained
    # change), where parse() refuses the frame; a JSON null goes to parse() too
    prev_change_id: _Int | msgspec.UnsetType = msgspec.UNSET


class _Trade(msgspec.Struct):
    trade_id: str  # a string at Deribit; any other type goes to parse(), which str()s it
    timestamp: _Int
    price: Price
    amount: Size
    direction: Literal["buy", "sell"]
    # absent: ours (as parse() reads it); null or another name: not ours, or parse() decides
    instrument_name: str | msgspec.UnsetType = msgspec.UNSET
    liquidation: str | None = None  # "M", "T" or "MT": whose position was liquidated
    block_trade_id: str | None = None


class _Params(msgspec.Struct):
    channel: str
    data: _Snapshot | _Change | list[_Trade]


class _Notification(msgspec.Struct, tag_field="method", tag="subscription"):
    params: _Params


_decode_notification = msgspec.json.Decoder(_Notification, strict=False).decode
_UNSET = msgspec.UNSET

# what a notification channel is to this adapter (the rules of _parse_notification)
_OTHER, _BOOK, _TRADES = 0, 1, 2
_MAX_ROUTES = 64  # channel names remembered per adapter (a hostile feed may invent any number)


def _fast_rows(rows: list) -> list[Level]:
    return [(p, s) if a != "delete" else (p, 0.0) for a, p, s in rows]


class DeribitAdapter(VenueAdapter):
    """Deribit perpetuals over one JSON-RPC WebSocket."""

    name: ClassVar[str] = "deribit"
    title: ClassVar[str] = "Deribit"
    symbols: ClassVar[dict[str, str]] = {
        "BTC-PERP": "BTC-PERPETUAL",
        "ETH-PERP": "ETH-PERPETUAL",
        "SOL-PERP": "SOL_USDC-PERPETUAL",
    }
    resync_mode: ClassVar[ResyncMode] = ResyncMode.RESUBSCRIBE
    default_endpoint: ClassVar[str] = "wss://www.deribit.com"
    ws_path: ClassVar[str] = WS_PATH
    default_rest_endpoint: ClassVar[str] = "https://www.deribit.com"
    channel: ClassVar[str] = "book.{instrument}.100ms (full depth) + trades; change_id chain"
    whole_book: ClassVar[bool] = True

    stream_name: ClassVar[str] = "ws"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._test_id = ID_TEST_BASE
        self._routes: dict[str, int] = {}

    @property
    def book_channel(self) -> str:
        return f"book.{self.native}.100ms"

    @property
    def trades_channel(self) -> str:
        return f"trades.{self.native}.100ms"

    # -- connection -------------------------------------------------------------------------
    @staticmethod
    def _rpc(id_: int, method: str, params: dict) -> str:
        return dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})

    def streams(self) -> list[StreamSpec]:
        return [
            StreamSpec(
                name=self.stream_name,
                url=self.ws_url(),
                subscribe=[
                    self._rpc(
                        ID_HEARTBEAT, "public/set_heartbeat", {"interval": HEARTBEAT_INTERVAL}
                    ),
                    self._rpc(
                        ID_SUBSCRIBE,
                        "public/subscribe",
                        {"channels": [self.book_channel, self.trades_channel]},
                    ),
                ],
                # a quiet book stays LIVE while the socket answers the watchdog's pings (and
                # the server's heartbeats keep it talking); a busy one still for 15 s is STALE
                stale_after=15.0,
                max_size=FULL_DEPTH_MAX_SIZE,  # the first notification is the whole book
            )
        ]

    def resubscribe_frames(self, stream: str) -> list[str]:
        channels = {"channels": [self.book_channel]}
        return [
            self._rpc(ID_UNSUBSCRIBE_BOOK, "public/unsubscribe", channels),
            self._rpc(ID_SUBSCRIBE_BOOK, "public/subscribe", channels),
        ]

    # -- parsing ----------------------------------------------------------------------------
    def _route(self, channel: str) -> int:
        route = self._routes.get(channel)
        if route is None:
            parts = channel.split(".")
            if len(parts) < 3 or parts[1] != self.native:
                route = _OTHER
            elif parts[0] == "book":
                route = _BOOK if len(parts) == 3 else _OTHER
            else:
                route = _TRADES if parts[0] == "trades" else _OTHER
            if len(self._routes) < _MAX_ROUTES:
                self._routes[channel] = route
        return route

    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        # book and trades notifications; heartbeats, test_request, RPC answers and anything the
        # decoder does not describe go to parse()
        try:
            params = _decode_notification(frame).params
        except FastMiss:
            return None
        route = self._route(params.channel)
        d = params.data
        cls = d.__class__
        if route == _BOOK:
            if cls is _Change:
                if d.prev_change_id is _UNSET:
                    return None  # parse() refuses an unchained change
                return [
                    BookDelta(
                        self.name,
                        self.symbol,
                        _fast_rows(d.bids),
                        _fast_rows(d.asks),
                        d.change_id,
                        d.prev_change_id,
                        None,
                        d.timestamp / 1000.0,
                        ts_local,
                    )
                ]
            if cls is _Snapshot:
                return [
                    BookSnapshot(
                        self.name,
                        self.symbol,
                        _fast_rows(d.bids),
                        _fast_rows(d.asks),
                        d.change_id,
                        d.timestamp / 1000.0,
                        ts_local,
                    )
                ]
            return None  # a list on the book channel: parse() refuses it
        if route == _TRADES:
            if cls is not list:
                return None  # an object on the trades channel: parse() refuses it
            native = self.native
            return [
                Trade(
                    self.name,
                    self.symbol,
                    t.price,
                    t.amount,
                    Side.BUY if t.direction == "buy" else Side.SELL,
                    t.trade_id,
                    t.timestamp / 1000.0,
                    ts_local,
                    _kind(t.liquidation, t.block_trade_id),
                )
                for t in d
                if t.instrument_name is _UNSET or t.instrument_name == native
            ]
        return []  # another instrument or channel

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        msg = loads(frame)
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        method = msg.get("method")
        if method == "subscription":
            params = msg["params"]
            return self._parse_notification(params["channel"], params["data"], ts_local)
        if method == "heartbeat":
            if msg.get("params", {}).get("type") == "test_request":
                self._test_id += 1
                return [Reply(stream, self._rpc(self._test_id, "public/test", {}))]
            return []
        if "error" in msg:
            return [self._rpc_error(stream, msg)]
        if "result" in msg:
            return self._rpc_result(stream, msg)
        # counted and shown, as every venue's unknown shapes are (it was dropped unseen: a
        # server that answered {"type":"error",...} left the book SYNCING with no reason)
        if method is not None:
            raise FrameError(f"unknown method {str(method)[:40]!r}")
        raise FrameError("neither a notification, a heartbeat nor an answer")

    def _rpc_error(self, stream: str, msg: dict) -> VenueError:
        err = msg["error"] if isinstance(msg["error"], dict) else {"message": str(msg["error"])}
        code = err.get("code")
        reason = f"Deribit error {code}: {err.get('message', '')}"
        data = err.get("data")
        if isinstance(data, dict) and data.get("reason"):
            reason += f" ({data['reason']})"
        # a refused subscription does not fix itself; running out of credits does
        fatal = msg.get("id") in (ID_SUBSCRIBE, ID_SUBSCRIBE_BOOK) and code != TOO_MANY_REQUESTS
        return VenueError(stream, reason, fatal=fatal)

    def _rpc_result(self, stream: str, msg: dict) -> list[Event]:
        if msg.get("id") in (ID_SUBSCRIBE, ID_SUBSCRIBE_BOOK):
            result = msg["result"]
            if isinstance(result, list) and self.book_channel not in result:
                # Deribit leaves out channels it cannot serve (e.g. an unknown instrument)
                return [VenueError(stream, f"not subscribed to {self.book_channel}", fatal=True)]
        return []

    def _parse_notification(self, channel: str, data: object, ts_local: float) -> list[Event]:
        parts = channel.split(".")
        if len(parts) < 3 or parts[1] != self.native:
            return []
        kind = parts[0]
        if kind == "book" and len(parts) == 3:
            if not isinstance(data, dict):
                raise FrameError("book notification without an object")
            return [self._parse_book(data, ts_local)]
        if kind == "trades":
            if not isinstance(data, list):
                raise FrameError("trades notification without a list")
            return [
                self._parse_trade(t, ts_local)
                for t in data
                if t.get("instrument_name", self.native) == self.native
            ]
        return []  # ticker, grouped book and other channels: not ours

    def _parse_book(self, d: dict, ts_local: float) -> BookSnapshot | BookDelta:
        bids = _rows(d["bids"])
        asks = _rows(d["asks"])
        ts = int(d["timestamp"]) / 1000.0
        change_id = int(d["change_id"])
        kind = d.get("type")
        if kind == "snapshot":
            return BookSnapshot(
                self.name, self.symbol, bids, asks, seq=change_id, ts_exchange=ts, ts_local=ts_local
            )
        if kind == "change":
            prev = d.get("prev_change_id")
            if not isinstance(prev, int) or isinstance(prev, bool):
                # unchained, it could not be checked against the book it must follow
                raise FrameError(f"change {change_id} without an integer prev_change_id: {prev!r}")
            return BookDelta(
                self.name,
                self.symbol,
                bids,
                asks,
                seq=change_id,
                prev_seq=prev,
                ts_exchange=ts,
                ts_local=ts_local,
            )
        raise FrameError(f"unknown book message type {kind!r}")

    def _parse_trade(self, t: dict, ts_local: float) -> Trade:
        direction = t["direction"]
        if direction not in ("buy", "sell"):
            raise FrameError(f"unknown trade direction {direction!r}")
        return Trade(
            venue=self.name,
            symbol=self.symbol,
            price=float(t["price"]),
            size=float(t["amount"]),
            side=Side.BUY if direction == "buy" else Side.SELL,  # taker side
            trade_id=str(t["trade_id"]),
            ts_exchange=int(t["timestamp"]) / 1000.0,
            ts_local=ts_local,
            kind=_kind(t.get("liquidation"), t.get("block_trade_id")),
        )

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> BookSync:
        # the base rules are Deribit's: snapshot, then prev_change_id == last change_id
        return BookSync(book)

    # -- instrument facts -------------------------------------------------------------------
    def default_instrument(self) -> Instrument:
        native = self.native
        if native in DEFAULTS:
            tick, lot, unit, cv, base, quote_ccy = DEFAULTS[native]
            return Instrument(self.name, self.symbol, native, tick, lot, unit, cv, base, quote_ccy)
        head = native.split("-")[0]
        base, _, settle = head.partition("_")
        if native.endswith(("-C", "-P")):  # options: amounts in coins, prices in coin
            return Instrument(self.name, self.symbol, native, 0.0005, 0.1, "base", 1.0, base, base)
        if settle:  # linear (USDC) perpetuals and futures: amounts in coins
            return Instrument(self.name, self.symbol, native, 0.01, 0.1, "base", 1.0, base, settle)
        # inverse futures: amounts in USD
        return Instrument(
            self.name,
            self.symbol,
            native,
            0.5 if base == "BTC" else 0.05,
            1.0,
            "quote",
            1.0,
            base,
            "USD",
        )

    def instrument_request(self) -> HttpRequest | None:
        return HttpRequest(
            f"{self.rest_endpoint}/api/v2/public/get_instrument?instrument_name={quote(self.native)}"
        )

    def parse_instrument(self, body: bytes) -> Instrument:
        try:
            msg = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise FrameError(f"malformed JSON: {e.msg}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("result"), dict):
            err = msg.get("error") if isinstance(msg, dict) else None
            raise FrameError(f"no instrument in reply: {err!r}")
        r = msg["result"]
        if r.get("instrument_name") not in (None, self.native):
            raise FrameError(
                f"instrument reply for {r.get('instrument_name')!r}, asked {self.native!r}"
            )
        fallback = self.default_instrument()
        tick = float(r.get("tick_size") or fallback.tick)
        lot = float(r.get("min_trade_amount") or r.get("contract_size") or fallback.lot)
        base = r.get("base_currency") or fallback.base
        kind = r.get("kind")
        linearity = r.get("instrument_type") or r.get("future_type")
        reversed_ = (
            linearity == "reversed"
            if linearity
            else kind == "future" and fallback.size_unit == "quote"
        )
        if kind == "future" and reversed_:
            # amounts are USD; contract_size is the USD step, not a per-unit value
            return Instrument(
                self.name, self.symbol, self.native, tick, lot, "quote", 1.0, base, "USD"
            )
        quote_ccy = r.get("counter_currency") or r.get("quote_currency") or fallback.quote
        return Instrument(
            self.name, self.symbol, self.native, tick, lot, "base", 1.0, base, quote_ccy
        )
