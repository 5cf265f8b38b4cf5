"""BitMEX realtime feed: ``orderBookL2`` (full depth, partial + insert/update/delete), ``trade``
and ``liquidation``.

One socket, ``wss://ws.bitmex.com/realtime``; the book and trade topics go in one
``{"op":"subscribe"}`` frame and the venue answers with one ack per topic, then a ``partial`` (the
whole book of the symbol) followed by ``insert`` / ``update`` / ``delete`` rows keyed by level
``id`` (with ``side``). ``liquidation:<symbol>`` goes in a subscribe frame of its own, so that a
refusal of it (its request names that topic alone) is told apart from the book's: the book and
trades go on without liquidations, where a refused book topic fails the feed.

There are no sequence numbers and no checksum, so a lost message shows only through the
rows that follow it. ``BitmexSync`` keeps ``id -> (side, price)`` beside the book and calls a
gap (then resubscribes the book topic, which brings a fresh ``partial``) when:

- an update or delete names an id the book does not hold;
- an insert names an id already held, or a price already held under another id;
- a row's side or price disagrees with what its id was inserted with;
- an insert or update carries size 0, or the book ends up crossed.

Rows sent before the 2023 protocol change carry no ``price`` on update/delete (the recording
of 2021 is such): the price then comes from the map. Today's rows carry ``price`` (and a
``timestamp``) on every row and ids no longer encode the price, so prices are never computed
from ids. Rows before the symbol's ``partial`` are dropped: the partial already holds them.

Fast path: ``parse_fast`` reads the book's ``insert`` / ``update`` / ``delete`` frames and trade
frames with a typed decoder (numbers checked in C, rows of either protocol: with or without
``price`` and ``timestamp``); the partial, acks, errors, other tables and anything the decoder
does not describe go to ``parse``, which gives the same events for what both read.

Liquidations (``liquidation`` table, a public topic of the wsAPI's list: "Liquidation orders as
they're entered into the book"): rows ``orderID, symbol, side, price, leavesQty`` and no time
(nautilus_trader's BitmexLiquidationMsg and test data, cryptofeed, BitMEX's support page of the
/liquidation fields, frames captured in 2020 and 2026). ``side`` is the liquidation order's (a
long is liquidated by a Sell: BitMEX's liquidation examples), ``price`` its limit price (the
engine places it at the position's bankruptcy price), ``leavesQty`` its quantity not yet
filled, in contracts as the book's sizes. Keyed by ``orderID``: ``insert`` is a new order and is
reported once (as a LIQUIDATION_ORDER trade; its fills come on ``trade`` as ordinary trades);
``update`` (leavesQty shrinking as it fills) and ``delete`` (done) report nothing new, nor does
the ``partial`` (orders open before we subscribed). Nothing on the table touches the book: a bad
liquidation frame is a bad frame, never a resync. The fast path leaves the table to ``parse``.

Heartbeat: the client sends the text ``ping`` and the venue answers ``pong``; the venue sends
no pings of its own.

Sizes are contracts. XBTUSD is inverse: one contract is one USD. The USDT-margined linear
perpetuals (ETHUSDT, SOLUSDT) count contracts of ``1 / underlyingToPositionMultiplier`` coins.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

from obview.book import OrderBook
from obview.model import Instrument, Side, Trade
from obview.venues.base import (
    FULL_DEPTH_MAX_SIZE,
    BookFrameError,
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
from obview.venues.bitmex_book import (
    DELETE,
    INSERT,
    UPDATE,
    BitmexBookDelta,
    BitmexBookSnapshot,
    BitmexSync,
    PartialRow,
    Row,
)
from obview.venues.bitmex_fast import TRADE_TABLE, fast_decoder
from obview.venues.bitmex_rows import (
    LIQUIDATION_TABLE,
    liquidation_trades,
    liquidations_only,
)
from obview.venues.bitmex_rows import (
    SIDES as _SIDES,
)
from obview.venues.bitmex_rows import (
    iso_time as _iso,
)
from obview.venues.bitmex_rows import (
    level_id as _level_id,
)
from obview.venues.bitmex_rows import (
    price_of as _price,
)
from obview.venues.bitmex_rows import (
    side_of as _side,
)
from obview.venues.bitmex_rows import (
    size_of as _size,
)

WS_PATH = "/realtime"
BOOK_TABLE = "orderBookL2"

_ACTIONS = {"insert": INSERT, "update": UPDATE, "delete": DELETE}

#: built-in facts used until the instrument endpoint answers:
#: symbol -> (tick, lot in contracts, size_unit, contract_value, base, quote)
DEFAULTS: dict[str, tuple[float, float, str, float, str, str]] = {
    "XBTUSD": (0.1, 100.0, "quote", 1.0, "BTC", "USD"),
    "ETHUSDT": (0.01, 1000.0, "contract", 1e-5, "ETH", "USDT"),
    "SOLUSDT": (0.001, 1000.0, "contract", 1e-4, "SOL", "USDT"),
}
_CURRENCIES = {"XBT": "BTC", "XBt": "BTC", "USDt": "USDT"}

class BitmexAdapter(VenueAdapter):
    """BitMEX perpetuals: XBTUSD (inverse, USD contracts) and USDT-margined linear ones."""

    name: ClassVar[str] = "bitmex"
    title: ClassVar[str] = "BitMEX"
    symbols: ClassVar[dict[str, str]] = {
        "BTC-PERP": "XBTUSD",
        "ETH-PERP": "ETHUSDT",
        "SOL-PERP": "SOLUSDT",
    }
    resync_mode: ClassVar[ResyncMode] = ResyncMode.RESUBSCRIBE
    default_endpoint: ClassVar[str] = "wss://ws.bitmex.com/realtime"
    ws_path: ClassVar[str] = WS_PATH
    default_rest_endpoint: ClassVar[str] = "https://www.bitmex.com"
    channel: ClassVar[str] = (
        "orderBookL2 (full depth, id-keyed rows) + trade + liquidation; no seq/checksum"
    )
    whole_book: ClassVar[bool] = True

    stream_name: ClassVar[str] = "realtime"
    #: the book topic: "orderBookL2" (full depth, unthrottled) or "orderBookL2_25" (top 25,
    #: throttled); both speak the same partial/insert/update/delete protocol
    book_table: ClassVar[str] = BOOK_TABLE
    #: the venue asks for a ``ping`` after 5 s without a message; a fixed cadence does the same
    ping_interval: ClassVar[float] = 5.0

    def __init_subclass__(cls, **kwargs: object) -> None:
        # the typed decoder of a subclass's own book table (``orderBookL2_25``)
        super().__init_subclass__(**kwargs)
        cls._book_frame, cls._decode = fast_decoder(cls.book_table)

    # -- connection -------------------------------------------------------------------------
    @property
    def book_topic(self) -> str:
        return f"{self.book_table}:{self.native}"

    @property
    def trade_topic(self) -> str:
        return f"{TRADE_TABLE}:{self.native}"

    @property
    def liquidation_topic(self) -> str:
        return f"{LIQUIDATION_TABLE}:{self.native}"

    def streams(self) -> list[StreamSpec]:
        return [
            StreamSpec(
                name=self.stream_name,
                url=self.ws_url(),
                subscribe=[
                    dumps({"op": "subscribe", "args": [self.book_topic, self.trade_topic]}),
                    # alone in its frame: a refusal names it alone and is not the book's
                    dumps({"op": "subscribe", "args": [self.liquidation_topic]}),
                ],
                ping_interval=self.ping_interval,
                ping_frame="ping",
                # a quiet book (SOLUSDT can go 20 s without a row) stays LIVE while the socket
                # answers the watchdog's pings; a busy one still for 10 s is STALE
                stale_after=10.0,
                max_size=FULL_DEPTH_MAX_SIZE,  # the partial is the whole book
            )
        ]

    def resubscribe_frames(self, stream: str) -> list[str]:
        args = [self.book_topic]
        return [
            dumps({"op": "unsubscribe", "args": args}),
            dumps({"op": "subscribe", "args": args}),
        ]

    # -- parsing ----------------------------------------------------------------------------
    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        # insert / update / delete rows of the book and trade inserts; partials, acks, errors,
        # pongs, other tables and whatever the decoder does not describe go to parse()
        try:
            msg = self._decode(frame)
        except FastMiss:
            return None
        native = self.native
        if msg.__class__ is self._book_frame:
            code = _ACTIONS.get(msg.action)
            if code is None:
                return None  # the partial, or an action parse() refuses
            rows: list[Row] = []
            last = None
            for r in msg.data:
                if r.symbol != native:
                    continue  # another instrument's row: parse() does not read it either
                price = r.price
                if code == DELETE:
                    size = 0.0
                else:
                    size = r.size
                    if size is None or (price is None and code == INSERT):
                        return None  # parse() refuses the frame
                rows.append((code, r.id, r.side == "Buy", price, size))
                last = r
            if last is None:
                return []
            ts = last.timestamp
            ts_exchange = None
            if ts is not None:
                try:
                    ts_exchange = _iso(ts)
                except FrameError:
                    return None
            return [
                BitmexBookDelta(
                    self.name, self.symbol, [], [], None, None, None, ts_exchange, ts_local,
                    None, rows,
                )
            ]  # fmt: skip
        if msg.action != "insert":
            return []  # the partial repeats past trades: not live flow
        out: list[Event] = []
        for t in msg.data:
            if t.symbol != native:
                continue
            try:
                ts = _iso(t.timestamp)
            except FrameError:
                return None
            out.append(
                Trade(
                    self.name,
                    self.symbol,
                    t.price,
                    t.size,
                    Side.BUY if t.side == "Buy" else Side.SELL,
                    t.trdMatchID[:64],
                    ts,
                    ts_local,
                )
            )
        return out

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        if frame == "pong" or frame == b"pong":
            return []
        try:
            msg = loads(frame)
        except FrameError as e:
            text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
            if self.book_table in text:
                # our book's frame, cut or garbled (only our symbol's book is subscribed): its
                # rows are lost, and without sequence numbers nothing later would say so
                raise BookFrameError(str(e)) from None
            raise
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        table = msg.get("table")
        if table is None:
            if "data" in msg or "action" in msg:
                # rows without their table's name: they may be our book's, and lost
                raise BookFrameError("table rows without a table name")
            return self._control(stream, msg)
        if table == self.book_table:
            return self._book(msg, ts_local)
        if table == TRADE_TABLE:
            return self._trades(msg, ts_local)
        if table == LIQUIDATION_TABLE:
            return liquidation_trades(msg, self.native, self.name, self.symbol, ts_local)
        return []  # quote, instrument and other tables: not ours

    def _control(self, stream: str, msg: dict) -> list[Event]:
        if "error" in msg:
            text = str(msg.get("error"))[:200]
            status = msg.get("status")
            request = msg.get("request")
            op = request.get("op") if isinstance(request, dict) else None
            # a refused subscription (unknown symbol or table) will not fix itself; rate limits
            # and "already subscribed" (a resync racing its own unsubscribe) will
            fatal = op == "subscribe" and status == 400 and "already subscribed" not in text.lower()
            if liquidations_only(request):
                # the liquidation topic, subscribed on its own: without it the book and the
                # trades are whole, only the liquidation reports are missing
                return [VenueError(stream, f"BitMEX {status or 'error'} (liquidations): {text}")]
            return [VenueError(stream, f"BitMEX {status or 'error'}: {text}", fatal=fatal)]
        if "success" in msg:
            if msg["success"] is True:
                return []  # subscribe / unsubscribe ack
            return [VenueError(stream, f"BitMEX request refused: {str(msg)[:200]}")]
        if "info" in msg:
            return []  # the welcome message
        raise FrameError("neither table, ack, error nor welcome")

    def _book(self, msg: dict, ts_local: float) -> list[Event]:
        action = msg.get("action")
        data = msg.get("data")
        if not isinstance(data, list):
            raise FrameError(f"{self.book_table} frame without a data list")
        native = self.native
        if action == "partial":
            filt = msg.get("filter")
            symbol = filt.get("symbol") if isinstance(filt, dict) else None
            mine = [r for r in data if isinstance(r, dict) and r.get("symbol") == native]
            if symbol != native and not mine:
                return []  # another instrument's partial (or one that names none)
            if len(mine) != len(data):
                self._poison_and_raise("partial holds rows of another instrument")
            return [self._partial(mine, ts_local)]
        code = _ACTIONS.get(action)  # type: ignore[arg-type]
        if code is None:
            raise FrameError(f"unknown {self.book_table} action {str(action)[:20]!r}")
        mine = [r for r in data if isinstance(r, dict) and r.get("symbol") == native]
        if len(mine) != len(data):
            if any(not isinstance(r, dict) for r in data):
                self._poison_and_raise("book row is not an object")
            # a row naming no instrument is a garbled one of ours (the subscription is ours
            # alone): skipped, its level was lost without a trace (BitMEX has no sequence)
            if any(not isinstance(r.get("symbol"), str) for r in data):
                self._poison_and_raise("book row without a symbol")
        if not mine:
            return []
        try:
            rows: list[Row] = []
            for r in mine:
                price = r.get("price")
                rows.append(
                    (
                        code,
                        _level_id(r),
                        _side(r),
                        None if price is None and code != INSERT else _price(price),
                        0.0 if code == DELETE else _size(r.get("size")),
                    )
                )
            ts = mine[-1].get("timestamp")
            ts_exchange = _iso(ts) if ts is not None else None
        except FrameError as e:
            self._poison_and_raise(str(e))
        return [
            BitmexBookDelta(
                self.name,
                self.symbol,
                [],
                [],
                ts_exchange=ts_exchange,
                ts_local=ts_local,
                rows=rows,
            )
        ]

    def _partial(self, data: list[dict], ts_local: float) -> BitmexBookSnapshot:
        rows: list[PartialRow] = []
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        ts_exchange = None
        try:
            for r in data:
                is_bid = _side(r)
                price, size = _price(r.get("price")), _size(r.get("size"))
                rows.append((_level_id(r), is_bid, price, size))
                (bids if is_bid else asks).append((price, size))
                ts = r.get("timestamp")
                if ts is not None:
                    t = _iso(ts)
                    ts_exchange = t if ts_exchange is None else max(ts_exchange, t)
        except FrameError as e:
            self._poison_and_raise(f"partial: {e}")
        return BitmexBookSnapshot(
            self.name,
            self.symbol,
            bids,
            asks,
            ts_exchange=ts_exchange,
            ts_local=ts_local,
            rows=rows,
        )

    def _poison_and_raise(self, reason: str):  # type: ignore[no-untyped-def]
        """A frame of our book that cannot be read: the pipeline resyncs at once."""
        raise BookFrameError(reason)

    def _trades(self, msg: dict, ts_local: float) -> list[Event]:
        action = msg.get("action")
        data = msg.get("data")
        if not isinstance(data, list):
            raise FrameError("trade frame without a data list")
        if action != "insert":
            return []  # the partial repeats past trades: not live flow
        out: list[Event] = []
        native = self.native
        for t in data:
            if not isinstance(t, dict):
                raise FrameError("trade row is not an object")
            if t.get("symbol") != native:
                continue
            side = t.get("side")
            if not isinstance(side, str) or side not in _SIDES:
                raise FrameError(f"unknown trade side {str(side)[:20]!r}")
            out.append(
                Trade(
                    venue=self.name,
                    symbol=self.symbol,
                    price=_price(t.get("price")),
                    size=_size(t.get("size")),
                    side=Side.BUY if side == "Buy" else Side.SELL,  # the taker's side
                    trade_id=str(t.get("trdMatchID", ""))[:64],
                    ts_exchange=_iso(t.get("timestamp")),
                    ts_local=ts_local,
                )
            )
        return out

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> BookSync:
        return BitmexSync(book)

    # -- instrument facts -------------------------------------------------------------------
    def default_instrument(self) -> Instrument:
        native = self.native
        if native in DEFAULTS:
            tick, lot, unit, cv, base, quote_ccy = DEFAULTS[native]
            return Instrument(self.name, self.symbol, native, tick, lot, unit, cv, base, quote_ccy)
        if native.endswith("USD") and native.startswith("XBT"):  # inverse: USD contracts
            # 0.1 as XBTUSD's since 31 Jul 2024 (0.5 before); the instrument reply decides
            return Instrument(
                self.name, self.symbol, native, 0.1, 100.0, "quote", 1.0, "BTC", "USD"
            )
        base = native[:-4] if native.endswith("USDT") else native[:3]
        quote_ccy = "USDT" if native.endswith("USDT") else "USD"
        return Instrument(
            self.name, self.symbol, native, 0.0001, 1.0, "contract", 1.0, _ccy(base), quote_ccy
        )

    def instrument_request(self) -> HttpRequest:
        return HttpRequest(f"{self.rest_endpoint}/api/v1/instrument?symbol={quote(self.native)}")

    def parse_instrument(self, body: bytes) -> Instrument:
        doc = loads(body)
        if isinstance(doc, dict):
            err = doc.get("error")
            text = err.get("message") if isinstance(err, dict) else err
            raise FrameError(f"instrument: {str(text)[:80]}")
        if not isinstance(doc, list):
            raise FrameError("instrument: expected a list")
        for item in doc:
            if not isinstance(item, dict) or item.get("symbol") != self.native:
                continue
            tick = _price(item.get("tickSize"))
            lot = _price(item.get("lotSize") or 1)
            fallback = self.default_instrument()
            base = _ccy(str(item.get("underlying") or fallback.base))
            quote_ccy = _ccy(str(item.get("quoteCurrency") or fallback.quote))
            if item.get("isInverse"):
                # value per contract in quote currency: |multiplier| / |underlyingToSettle|
                mult, to_settle = item.get("multiplier"), item.get("underlyingToSettleMultiplier")
                cv = 1.0
                if mult and to_settle:
                    m = number(mult, "multiplier", strings=False)
                    cv = abs(m) / abs(number(to_settle, "multiplier", strings=False))
                return Instrument(
                    self.name, self.symbol, self.native, tick, lot, "quote", cv, base, quote_ccy
                )
            per_coin = item.get("underlyingToPositionMultiplier")
            cv = 1.0 / _price(per_coin) if per_coin else 1.0
            return Instrument(
                self.name, self.symbol, self.native, tick, lot, "contract", cv, base, quote_ccy
            )
        raise FrameError(f"instrument: {self.native} not listed")


BitmexAdapter._book_frame, BitmexAdapter._decode = fast_decoder(BitmexAdapter.book_table)


def _ccy(code: str) -> str:
    return _CURRENCIES.get(code, code.upper())
