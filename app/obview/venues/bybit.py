"""Bybit v5 linear (USDT perpetuals): ``orderbook.200`` snapshot/delta, ``publicTrade`` and
``allLiquidation``.

One socket, ``wss://stream.bybit.com/v5/public/linear``; the book and trade topics are
subscribed with one ``{"op":"subscribe"}`` frame, the liquidation topic with another, and the
client pings with ``{"op":"ping"}`` every 20 s (the venue drops sockets that neither ping nor
receive). The book comes over the socket:

- ``type: "snapshot"`` replaces the book (the first message, and whenever Bybit resends one);
- ``u == 1`` means the venue's book service restarted: the message is a fresh snapshot;
- ``type: "delta"`` carries absolute sizes (0 deletes); its ``u`` should be the previous ``u``
  plus one. A smaller ``u`` is a replay and is ignored; a larger jump is a gap. The English v5
  docs promise consecutive ``u`` only for the newer full-book stream; Bybit's v3 orderbook page
  (its Traditional Chinese edition, same topic and fields) says ``u`` is consecutive in general,
  the ``u = 1`` full book after a restart being the exception, and third-party clients count on
  it for the fixed-depth streams too; the simulator dialect follows it;
- the book keeps the best 200 levels per side (the subscribed depth), truncated after every
  update, since the docs do not say whether levels pushed out of the window are deleted.

A gap resubscribes the book topic (a new snapshot follows); no REST is needed.

Liquidations come on ``allLiquidation.{symbol}`` (Bybit's docs, ``v5/websocket/public/
all-liquidation``: every liquidation of the symbol, pushed every 500 ms, ``data`` a list of
``{T, s, S, v, p}``; the older ``liquidation.{symbol}``, at most one per second per symbol, is
marked deprecated in later editions of the docs). Each entry becomes one ``LIQUIDATION_ORDER``
trade; its fills come on ``publicTrade`` as well. ``S`` is the liquidated *position's* side ("a
Buy update means a long position has been liquidated"), so the order that closed it went the
other way: ``Buy`` is a SELL order. ``v`` is the executed size in coins (the trade feed's unit),
``p`` the position's bankruptcy price, not a fill price. The topic has a subscribe request (and
``req_id``) of its own because Bybit refuses a whole request when one of its topics is refused;
a refusal of it, told by that ``req_id`` or by the topic in ``ret_msg``, is logged and the book
and the trades go on.

Book and trade frames also have a typed decoder (``parse_fast``). Its ``type`` field does not
tell the data's shape (trade frames are ``"snapshot"`` too), so one struct reads both and the
data's JSON shape decides: an object is a book message, a list holds trades.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from obview.book import OrderBook
from obview.model import (
    BLOCK,
    LIQUIDATION_ORDER,
    BookDelta,
    BookSnapshot,
    Instrument,
    Side,
    Trade,
)
from obview.venues.base import (
    BookSync,
    Event,
    FastMiss,
    FrameError,
    HttpRequest,
    NextSeqSync,
    Price,
    PriceSize,
    ResyncMode,
    Size,
    StreamSpec,
    VenueAdapter,
    VenueError,
    dumps,
    loads,
)

DEPTH = 200
WS_PATH = "/v5/public/linear"  # the linear (USDT perpetual) public stream

#: built-in instrument facts (tick, qty step) used until instruments-info answers
DEFAULTS: dict[str, tuple[float, float]] = {
    "BTCUSDT": (0.1, 0.001),
    "ETHUSDT": (0.01, 0.01),
    "SOLUSDT": (0.01, 0.1),
}
_FALLBACK = (0.0001, 0.001)

_SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
#: allLiquidation's ``S`` (the liquidated position's side) -> the side of the order closing it
_LIQ_SIDES = {"Buy": Side.SELL, "Sell": Side.BUY}
#: the liquidation subscription's req_id: Bybit echoes it in the ack, refusal included
LIQ_REQ_ID = "obview-liq"


def _levels(raw: list) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q in raw]


def _ms(value: object) -> float:
    # the docs show ``ts`` once as a string; the parameter table says number: accept both
    return int(value) / 1000.0  # type: ignore[call-overload]


def _liq_number(item: dict, key: str) -> float:
    """A price or size of a liquidation entry: a decimal string (as documented) or a number;
    anything else (true, null, a list) makes the frame a bad one, not a liquidation of 1."""
    value = item[key]
    if value.__class__ not in (str, int, float):
        raise FrameError(f"allLiquidation: {key} is not a number")
    return float(value)


# -- typed decoders of the hot frames (parse_fast) ----------------------------------------------
#: an integer the slow path reads the same: orjson reads larger ones as floats (and msgspec
#: bounds stop at int64). A numeric string stays a ``str`` so that ``parse_fast`` can leave it
#: to ``parse`` (whose ``int()`` refuses "1e3" and "1.0", which a lax decoder would accept).
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _BookData(msgspec.Struct):
    s: str
    b: list[PriceSize]
    a: list[PriceSize]
    u: _Int | str


class _TradeData(msgspec.Struct):
    T: _Int | str
    s: str
    S: Literal["Buy", "Sell"]
    v: Size
    p: Price
    i: str  # kept as sent; another type goes to parse (str() of it)
    BT: object = False  # a block trade when it is true (as sent: lax decoding reads "true")


class _Msg(msgspec.Struct):
    topic: str
    type: str
    data: _BookData | list[_TradeData]
    ts: _Int | str | msgspec.UnsetType = msgspec.UNSET


_decode_msg = msgspec.json.Decoder(_Msg, strict=False).decode


class BybitSync(NextSeqSync):
    """Snapshot replaces; deltas must continue ``u`` by exactly one."""


class BybitAdapter(VenueAdapter):
    """Bybit v5 public linear market data (no key needed)."""

    name = "bybit"
    title = "Bybit linear"
    symbols: ClassVar[dict[str, str]] = {
        "BTC-PERP": "BTCUSDT",
        "ETH-PERP": "ETHUSDT",
        "SOL-PERP": "SOLUSDT",
    }
    resync_mode = ResyncMode.RESUBSCRIBE
    default_endpoint = "wss://stream.bybit.com/v5/public/linear"
    ws_path = WS_PATH
    default_rest_endpoint = "https://api.bybit.com"
    channel = "orderbook.200.<sym> (snapshot/delta, u+1) + publicTrade.<sym> + allLiquidation.<sym>"

    stream_name = "public"
    depth = DEPTH
    ping_interval = 20.0

    def __init__(self, symbol: str, **kwargs: str | None) -> None:
        super().__init__(symbol, **kwargs)
        # compared on every frame by parse_fast
        self._book_topic = self.book_topic
        self._trade_topic = self.trade_topic
        #: our topics that ``parse`` reads (the fast path leaves liquidations to it)
        self._slow_topics = (self.book_topic, self.trade_topic, self.liquidation_topic)

    @property
    def book_topic(self) -> str:
        return f"orderbook.{self.depth}.{self.native}"

    @property
    def trade_topic(self) -> str:
        return f"publicTrade.{self.native}"

    @property
    def liquidation_topic(self) -> str:
        return f"allLiquidation.{self.native}"

    # -- connection -------------------------------------------------------------------------
    def streams(self) -> list[StreamSpec]:
        sub = dumps(
            {"req_id": "obview-sub", "op": "subscribe", "args": [self.book_topic, self.trade_topic]}
        )
        # a request of its own: a refused topic fails its whole request (ccxt/ccxt#30284)
        liq = dumps({"req_id": LIQ_REQ_ID, "op": "subscribe", "args": [self.liquidation_topic]})
        return [
            StreamSpec(
                name=self.stream_name,
                url=self.ws_url(),
                subscribe=[sub, liq],
                book=True,
                trades=True,
                ping_interval=self.ping_interval,
                ping_frame='{"op":"ping"}',
                stale_after=10.0,
            )
        ]

    def resubscribe_frames(self, stream: str) -> list[str]:
        return [
            dumps({"req_id": "obview-unsub", "op": "unsubscribe", "args": [self.book_topic]}),
            dumps({"req_id": "obview-resub", "op": "subscribe", "args": [self.book_topic]}),
        ]

    # -- parsing ----------------------------------------------------------------------------
    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        # our book topic's snapshots/deltas and our trade topic; everything else goes to parse()
        try:
            m = _decode_msg(frame)
        except FastMiss:
            return None
        d = m.data
        topic = m.topic
        if d.__class__ is _BookData:
            if topic != self._book_topic:
                return None if topic in self._slow_topics else []
            ts = m.ts
            u = d.u
            if u.__class__ is str or ts.__class__ is str or d.s != self.native:
                return None
            ts_exchange = None if ts is msgspec.UNSET else ts / 1000.0
            kind = m.type
            if kind == "snapshot" or u == 1:  # u == 1: the book service restarted
                return [BookSnapshot(self.name, self.symbol, d.b, d.a, u, ts_exchange, ts_local)]
            if kind != "delta":
                return None
            return [
                BookDelta(self.name, self.symbol, d.b, d.a, u, None, None, ts_exchange, ts_local)
            ]
        if topic != self._trade_topic:
            return None if topic in self._slow_topics else []
        out: list[Event] = []
        native, name, symbol = self.native, self.name, self.symbol
        for t in d:
            if t.s != native:
                continue
            T = t.T
            if T.__class__ is str:
                return None
            kind = BLOCK if t.BT is True else ""
            out.append(Trade(name, symbol, t.p, t.v, _SIDES[t.S], t.i, T / 1000.0, ts_local, kind))
        return out

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        msg = loads(frame)
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        topic = msg.get("topic")
        if topic is None:
            return self._control(stream, msg)
        if topic == self.book_topic:
            return [self._book(msg, ts_local)]
        if topic == self.trade_topic:
            return self._trades(msg, ts_local)
        if topic == self.liquidation_topic:
            return self._liquidations(msg, ts_local)
        return []  # another instrument or topic on a shared socket

    def _control(self, stream: str, msg: dict) -> list[Event]:
        op = msg.get("op")
        if op is None and "success" not in msg:
            raise FrameError("neither topic nor op")
        if msg.get("success") is False:
            reason = str(msg.get("ret_msg") or "request refused")
            if op == "subscribe" and (
                msg.get("req_id") == LIQ_REQ_ID or self.liquidation_topic in reason
            ):
                # liquidations are extra: the book and the trades (another request) go on
                return [VenueError(stream, f"bybit liquidations not subscribed: {reason[:200]}")]
            # a refused subscription (unknown symbol or topic) will not fix itself; "already
            # subscribed" (a resync's subscribe overtaking its unsubscribe) is no such refusal:
            # the sync timeout asks again
            fatal = op == "subscribe" and "already subscribed" not in reason.lower()
            return [VenueError(stream, f"bybit {op or 'request'}: {reason}", fatal=fatal)]
        return []  # subscribe/unsubscribe ack, pong (either documented shape)

    def _book(self, msg: dict, ts_local: float) -> BookSnapshot | BookDelta:
        data = msg["data"]
        if data.get("s", self.native) != self.native:
            raise FrameError(f"book topic {msg['topic']} carries symbol {data.get('s')!r}")
        kind = msg["type"]
        u = int(data["u"])
        ts = _ms(msg["ts"]) if "ts" in msg else None
        bids, asks = _levels(data["b"]), _levels(data["a"])
        if kind == "snapshot" or u == 1:  # u == 1: the book service restarted
            return BookSnapshot(
                self.name, self.symbol, bids, asks, seq=u, ts_exchange=ts, ts_local=ts_local
            )
        if kind != "delta":
            raise FrameError(f"unknown book message type {kind!r}")
        return BookDelta(
            self.name, self.symbol, bids, asks, seq=u, ts_exchange=ts, ts_local=ts_local
        )

    def _trades(self, msg: dict, ts_local: float) -> list[Event]:
        out: list[Event] = []
        for t in msg["data"]:
            if t.get("s", self.native) != self.native:
                continue
            out.append(
                Trade(
                    venue=self.name,
                    symbol=self.symbol,
                    price=float(t["p"]),
                    size=float(t["v"]),
                    side=_SIDES[t["S"]],  # S is the taker side
                    trade_id=str(t["i"]),
                    ts_exchange=_ms(t["T"]),
                    ts_local=ts_local,
                    kind=BLOCK if t.get("BT") is True else "",  # BT: a block trade
                )
            )
        return out

    def _liquidations(self, msg: dict, ts_local: float) -> list[Event]:
        data = msg["data"]
        if not isinstance(data, list):  # the deprecated liquidation.{symbol} sent one object
            raise FrameError("allLiquidation: data is not a list")
        out: list[Event] = []
        for item in data:
            if not isinstance(item, dict):
                raise FrameError("allLiquidation: an entry is not an object")
            if item.get("s", self.native) != self.native:
                continue
            position = item.get("S")
            side = _LIQ_SIDES.get(position) if isinstance(position, str) else None
            if side is None:
                raise FrameError(f"allLiquidation: unknown side {str(position)[:20]!r}")
            when = item["T"]
            if when.__class__ not in (int, str):  # ms, a number (or its string, as ts may be)
                raise FrameError("allLiquidation: T is not a time")
            out.append(
                Trade(
                    venue=self.name,
                    symbol=self.symbol,
                    price=_liq_number(item, "p"),  # the position's bankruptcy price
                    size=_liq_number(item, "v"),  # executed size, coins
                    side=side,  # the closing order's: S is the liquidated position's side
                    trade_id="",  # the topic numbers nothing
                    ts_exchange=_ms(when),
                    ts_local=ts_local,
                    kind=LIQUIDATION_ORDER,
                )
            )
        return out

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> BookSync:
        return BybitSync(book, depth=self.depth)

    # -- instrument facts ---------------------------------------------------------------------
    def _base_quote(self) -> tuple[str, str]:
        for q in ("USDT", "USDC", "PERP"):
            if self.native.endswith(q) and len(self.native) > len(q):
                return self.native[: -len(q)], "USDC" if q == "PERP" else q
        return self.native, "USDT"

    def default_instrument(self) -> Instrument:
        tick, lot = DEFAULTS.get(self.native, _FALLBACK)
        return self.coin_instrument(tick, lot, *self._base_quote())

    def instrument_request(self) -> HttpRequest:
        return HttpRequest(
            f"{self.rest_endpoint}/v5/market/instruments-info?category=linear&symbol={self.native}"
        )

    def parse_instrument(self, body: bytes) -> Instrument:
        msg = loads(body)
        if not isinstance(msg, dict):
            raise FrameError("instruments-info: expected a JSON object")
        if msg.get("retCode", 0) != 0:
            raise FrameError(f"instruments-info: {str(msg.get('retMsg', ''))[:80]}")
        for item in (msg.get("result") or {}).get("list") or []:
            if item.get("symbol") != self.native:
                continue
            tick = float(item["priceFilter"]["tickSize"])
            lot = float(item["lotSizeFilter"]["qtyStep"])
            dbase, dquote = self._base_quote()
            return self.coin_instrument(
                tick, lot, item.get("baseCoin") or dbase, item.get("quoteCoin") or dquote, "instruments-info"
            )
        raise FrameError(f"instruments-info: {self.native} not listed")
