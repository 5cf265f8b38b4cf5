"""OKX v5 public feed: ``books`` (400 levels, snapshot + incremental), ``trades`` and
``liquidation-orders``.

Integrity, per OKX's rules (see the venue notes):
- ``seqId`` / ``prevSeqId`` chain each update to the previous one when present (the snapshot
  carries ``prevSeqId`` -1; a keep-alive repeats ``seqId``; a reset after maintenance still
  links ``prevSeqId`` to the last ``seqId`` even though ``seqId`` goes down). Older data has
  no sequence fields at all, and then the checksum is the only guard.
- ``checksum`` is a signed CRC32 over the top 25 levels of the book *after* the update,
  built from the original price/size strings. Since mid-2026 the live feed sends 0 there:
  0 means "not sent" and never fails a book. The checksum and the sync that keeps those
  strings live in ``okx_book``, the typed decoders of the fast path in ``okx_wire``.

On a gap or a checksum mismatch the book is rebuilt by unsubscribing and subscribing the
``books`` channel again, which makes OKX send a fresh snapshot.

Sizes: SWAP and FUTURES books count contracts (``ctVal`` coins each for linear contracts,
``ctVal`` USD each for inverse ones); SPOT books count coins.

Liquidations (OKX docs, "Liquidation orders channel", URL path /ws/v5/public): subscribed by
instrument type, ``{"channel":"liquidation-orders","instType":"SWAP"}``, so every swap's come
on the socket and ours are picked by the ``instId`` of each ``data`` item. Each ``details`` row
is one liquidation order: ``side`` the order's side (``posSide`` the position's; the docs'
example is a short's ``buy``), ``sz`` in contracts as the trades, ``bkPx`` the bankruptcy price,
``ts`` in ms. OKX shows at most one order per contract a second, and says the channel is not
every liquidation: the fills of all of them still come as trades. The subscription rides in
the same request as the book's; a refusal of it alone is a venue error, never fatal, and a
resync resubscribes ``books`` only.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import quote

import msgspec
import orjson

from obview.book import OrderBook
from obview.model import LIQUIDATION_ORDER, BookSnapshot, Instrument, Side, Trade
from obview.venues.base import (
    BookSync,
    Event,
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
from obview.venues.okx_book import (
    BOOK_DEPTH,
    OkxBookDelta,
    OkxBookSnapshot,
    OkxSync,
    RawText,
)
from obview.venues.okx_wire import (
    FAST_MISS,
    decode_books,
    decode_books_f,
    decode_levels,
    decode_liquidation_items,
    decode_push,
    decode_trades,
    float_levels,
)

WS_PATH = "/ws/v5/public"

# Built-in facts used when /api/v5/public/instruments cannot be reached:
# instId -> (tickSz, lotSz, ctVal). Swap sizes are contracts of ctVal coins.
# (lotSz 0.01 for all three: public instrument replies and client fixtures; the fact sheet's
# 0.1 was one source's.)
DEFAULTS: dict[str, tuple[float, float, float]] = {
    "BTC-USDT-SWAP": (0.1, 0.01, 0.01),
    "ETH-USDT-SWAP": (0.01, 0.01, 0.1),
    "SOL-USDT-SWAP": (0.01, 0.01, 1.0),
}

# Error codes that retrying the same subscription will not fix (unknown instrument/channel).
FATAL_ERRORS = {"60018", "51001"}

#: every swap's (or future's) liquidation orders, subscribed by instType (see the module doc)
LIQUIDATIONS = "liquidation-orders"
#: instTypes whose liquidation rows carry ``side`` and ``bkPx`` and count ``sz`` in contracts
#: (OKX docs: both "only applicable to FUTURES/SWAP"; MARGIN counts base currency)
LIQUIDATION_TYPES = ("SWAP", "FUTURES")


def inst_type(inst_id: str) -> str:
    """OKX instType from the shape of an instId."""
    parts = inst_id.split("-")
    if parts[-1] == "SWAP":
        return "SWAP"
    if len(parts) == 2:
        return "SPOT"
    if len(parts) == 3:
        return "FUTURES"
    return "OPTION"


def _levels(rows: list) -> tuple[list[tuple[float, float]], list[RawText]]:
    floats: list[tuple[float, float]] = []
    raw: list[RawText] = []
    for row in rows:
        px, sz = row[0], row[1]
        if not isinstance(px, str) or not isinstance(sz, str):
            raise FrameError("book level is not [price string, size string, ...]")
        floats.append((float(px), float(sz)))
        raw.append(f"{px}:{sz}")
    return floats, raw


def _seconds(ms: object) -> float:
    """A venue time in ms (a numeric string) -> seconds; FrameError for one no float can hold."""
    try:
        return int(ms) / 1000.0  # type: ignore[call-overload]
    except OverflowError:
        raise FrameError(f"time out of range: {str(ms)[:40]}") from None


def _about_liquidations(msg: dict, native: str) -> bool:
    """Whether an error event is about the liquidation subscription alone. OKX's errors name no
    arg as a rule but quote the request in ``msg`` ("Wrong URL or channel:orders-algo,instType:
    SWAP doesn't exist", "Invalid request: {...}"); some carry ``arg`` too. One quoting our
    instrument as well is about the whole request, the book's subscription with it."""
    arg = msg.get("arg")
    if isinstance(arg, dict):
        return arg.get("channel") == LIQUIDATIONS
    text = msg.get("msg")
    return isinstance(text, str) and LIQUIDATIONS in text and native not in text


def _int_or_none(v: object) -> int | None:
    if v is None or v == "":
        return None
    return int(v)  # type: ignore[arg-type]


class OkxAdapter(VenueAdapter):
    """OKX v5 swap perpetuals (USDT-margined), ``books`` + ``trades`` on one socket."""

    name: ClassVar[str] = "okx"
    title: ClassVar[str] = "OKX swap"
    symbols: ClassVar[dict[str, str]] = {
        "BTC-PERP": "BTC-USDT-SWAP",
        "ETH-PERP": "ETH-USDT-SWAP",
        "SOL-PERP": "SOL-USDT-SWAP",
    }
    resync_mode: ClassVar[ResyncMode] = ResyncMode.RESUBSCRIBE
    ws_snapshot_timeout: ClassVar[float | None] = 3.0
    #: 480 subscribe/unsubscribe/login requests per connection an hour (fact sheet, 2 sources);
    #: a resync spends two, so a feed that gaps every 12 s would pass it
    resubscribe_budget: ClassVar[tuple[int, float] | None] = (480, 3600.0)
    default_endpoint: ClassVar[str] = "wss://ws.okx.com:8443"
    ws_path: ClassVar[str] = WS_PATH
    default_rest_endpoint: ClassVar[str] = "https://www.okx.com"
    channel: ClassVar[str] = "books (400 levels, 100 ms) + trades; seqId chain, CRC32 top 25"

    stream_name: ClassVar[str] = "public"
    ping_interval: ClassVar[float] = 25.0
    _sync: OkxSync | None = None  # the book's sync, once made: it says whether texts are wanted

    # -- connection -------------------------------------------------------------------------
    def _args(self) -> list[dict[str, str]]:
        args = [
            {"channel": "books", "instId": self.native},
            {"channel": "trades", "instId": self.native},
        ]
        kind = inst_type(self.native)
        if kind in LIQUIDATION_TYPES:
            # one request for all three (one of the 480 an hour); OKX answers each arg on its
            # own (an ack, or an error naming the channel)
            args.append({"channel": LIQUIDATIONS, "instType": kind})
        return args

    def streams(self) -> list[StreamSpec]:
        return [
            StreamSpec(
                name=self.stream_name,
                url=self.ws_url(),
                subscribe=[dumps({"op": "subscribe", "args": self._args()})],
                ping_interval=self.ping_interval,
                ping_frame="ping",
                # a BTC book changes every 100 ms: 15 s of silence is worth showing; the pong
                # to our ping clears it, and 30 s with no pong either ends in a reconnect
                stale_after=15.0,
            )
        ]

    def resubscribe_frames(self, stream: str) -> list[str]:
        arg = [{"channel": "books", "instId": self.native}]
        return [dumps({"op": "unsubscribe", "args": arg}), dumps({"op": "subscribe", "args": arg})]

    # -- parsing ----------------------------------------------------------------------------
    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        # books and trades pushes; acks, errors, pongs and odd shapes go to parse()
        try:
            push = decode_push(frame)
            if push.event is not None:
                return None
            arg = push.arg
            channel = arg.channel
            if channel == LIQUIDATIONS:
                # every swap's, a few a second: a push without ours is dropped here, one with
                # ours (at most one a second) goes to parse()
                native = self.native
                if any(item.instId == native for item in decode_liquidation_items(push.data)):
                    return None
                return []
            inst_id = arg.instId
            if inst_id is None:
                return None  # another push without an instId: parse decides
            if inst_id != self.native:
                return []
            if channel == "books":
                action = push.action
                if action != "update" and action != "snapshot":
                    return None
                if action == "update" and not self.texts_wanted():
                    out = self._updates_without_texts(push.data, ts_local)
                    if out is not None:
                        return out
                out: list[Event] = []
                for d in decode_books(push.data):
                    b = float_levels(d.bids)
                    a = float_levels(d.asks)
                    if b is None or a is None:
                        return None
                    bids, raw_bids = b
                    asks, raw_asks = a
                    ts = int(d.ts) / 1000.0
                    if action == "update":
                        out.append(
                            OkxBookDelta(
                                self.name, self.symbol, bids, asks, d.seqId, d.prevSeqId, None,
                                ts, ts_local, d.checksum, raw_bids, raw_asks,
                            )
                        )  # fmt: skip
                    elif bids or asks:  # an empty snapshot is no book (see _parse_book)
                        out.append(
                            OkxBookSnapshot(
                                self.name, self.symbol, bids, asks, d.seqId, ts, ts_local,
                                d.checksum, raw_bids, raw_asks,
                            )
                        )  # fmt: skip
                return out
            if channel == "trades":
                name, symbol = self.name, self.symbol
                return [
                    Trade(
                        name, symbol, t.px, t.sz, Side.BUY if t.side == "buy" else Side.SELL,
                        t.tradeId, int(t.ts) / 1000.0, ts_local,
                    )
                    for t in decode_trades(push.data)
                ]  # fmt: skip
            return []  # tickers and other channels: not ours
        except FAST_MISS:
            return None

    def _updates_without_texts(self, data: msgspec.Raw, ts_local: float) -> list[Event] | None:
        """Updates whose checksums are all 0, levels read as floats in C and no texts kept; None
        when one has a non-zero checksum (its texts are needed) or a level only ``parse`` can
        judge (``FAST_MISS`` raised to the caller)."""
        out: list[Event] = []
        name, symbol = self.name, self.symbol
        for d in decode_books_f(data):
            if d.checksum:
                return None
            bids = [(lv.px, lv.sz) for lv in decode_levels(d.bids)]
            asks = [(lv.px, lv.sz) for lv in decode_levels(d.asks)]
            ts = int(d.ts) / 1000.0
            out.append(
                OkxBookDelta(
                    name, symbol, bids, asks, d.seqId, d.prevSeqId, None, ts, ts_local,
                    d.checksum, None, None,
                )
            )  # fmt: skip
        return out

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        if frame == "pong" or frame == b"pong":
            return []
        msg = loads(frame)
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        event = msg.get("event")
        if event is not None:
            return self._parse_event(stream, event, msg)
        arg = msg.get("arg")
        if not isinstance(arg, dict):
            raise FrameError("push without 'arg'")
        channel = arg.get("channel")
        data = msg.get("data")
        if channel == LIQUIDATIONS:  # by instType: no instId in its arg
            return self._parse_liquidations(data, ts_local)
        if arg.get("instId") != self.native:
            return []
        if channel == "books":
            if not isinstance(data, list):
                raise FrameError("books push without a data list")
            return self._parse_book(msg.get("action"), data, ts_local)
        if channel == "trades":
            if not isinstance(data, list):
                raise FrameError("trades push without a data list")
            return [self._parse_trade(t, ts_local) for t in data]
        return []  # tickers and other channels: not ours

    def _parse_event(self, stream: str, event: str, msg: dict) -> list[Event]:
        if event in ("subscribe", "unsubscribe"):
            return []
        if event == "error":
            code = str(msg.get("code", ""))
            reason = f"OKX error {code}: {msg.get('msg', '')}".strip()
            if _about_liquidations(msg, self.native):
                # liquidations refused (another instType, a channel moved or withdrawn): the
                # book and the trades, subscribed alongside, go on
                return [VenueError(stream, f"{reason} (liquidations not shown)")]
            return [VenueError(stream, reason, fatal=code in FATAL_ERRORS)]
        if event == "notice":
            # e.g. 64008: the server will close this connection soon for an upgrade. Shown as a
            # venue error; the book stays right until then, and the session reconnects (and
            # resyncs) when the close comes. Reconnecting at once would move the gap, not
            # avoid it: that needs a second connection opened before the first one closes.
            return [VenueError(stream, f"OKX notice {msg.get('code', '')}: {msg.get('msg', '')}")]
        return []

    def _parse_book(self, action: object, data: list, ts_local: float) -> list[Event]:
        out: list[Event] = []
        for d in data:
            bids, raw_bids = _levels(d["bids"])
            asks, raw_asks = _levels(d["asks"])
            ts = _seconds(d["ts"])
            checksum = _int_or_none(d.get("checksum"))
            seq = _int_or_none(d.get("seqId"))
            if action == "snapshot":
                if not bids and not asks:
                    # No levels at all: not a book to show as LIVE, whatever its seqId says. OKX's
                    # changelog on removing the websocket snapshot says to ignore the first event
                    # ("action is snapshot") and take the book over REST; an empty one may be
                    # what is left of it. The updates stay buffered and the REST fallback
                    # (``ws_snapshot_timeout``) fetches the book; a market that really has no
                    # orders comes back empty from REST too, and shows as such.
                    continue
                out.append(
                    OkxBookSnapshot(
                        self.name, self.symbol, bids, asks, seq=seq, ts_exchange=ts,
                        ts_local=ts_local, checksum=checksum, raw_bids=raw_bids, raw_asks=raw_asks,
                    )
                )  # fmt: skip
            elif action == "update":
                if not checksum and not self.texts_wanted():
                    raw_bids = raw_asks = None
                out.append(
                    OkxBookDelta(
                        self.name, self.symbol, bids, asks, seq=seq,
                        prev_seq=_int_or_none(d.get("prevSeqId")), ts_exchange=ts,
                        ts_local=ts_local, checksum=checksum, raw_bids=raw_bids, raw_asks=raw_asks,
                    )
                )  # fmt: skip
            else:
                raise FrameError(f"unknown books action {action!r}")
        return out

    def _parse_trade(self, t: dict, ts_local: float) -> Trade:
        side = t["side"]
        if side not in ("buy", "sell"):
            raise FrameError(f"unknown trade side {side!r}")
        return Trade(
            venue=self.name,
            symbol=self.symbol,
            price=float(t["px"]),
            size=float(t["sz"]),
            side=Side.BUY if side == "buy" else Side.SELL,  # taker side
            trade_id=str(t["tradeId"]),
            ts_exchange=_seconds(t["ts"]),
            ts_local=ts_local,
        )

    def _parse_liquidations(self, data: object, ts_local: float) -> list[Event]:
        if not isinstance(data, list):
            raise FrameError("liquidation-orders push without a data list")
        out: list[Event] = []
        native = self.native
        for item in data:
            if not isinstance(item, dict):
                raise FrameError("liquidation-orders item is not an object")
            if item.get("instId") != native:
                continue  # another instrument's
            details = item.get("details")
            if not isinstance(details, list):
                raise FrameError("liquidation-orders item without a details list")
            out += [self._parse_liquidation(d, ts_local) for d in details]
        return out

    def _parse_liquidation(self, d: object, ts_local: float) -> Trade:
        """One ``details`` row: a liquidation order, not a fill (its fills come as trades)."""
        if not isinstance(d, dict):
            raise FrameError("liquidation detail is not an object")
        side = d.get("side")
        if side == "buy" or side == "sell":
            order_side = Side.BUY if side == "buy" else Side.SELL
        elif side is None or side == "":
            # a row without the order's side: the position's says it (a long is sold off)
            pos = d.get("posSide")
            if pos != "long" and pos != "short":
                raise FrameError(f"liquidation without a side (posSide {str(pos)[:20]!r})")
            order_side = Side.SELL if pos == "long" else Side.BUY
        else:
            raise FrameError(f"unknown liquidation side {str(side)[:20]!r}")
        ts = d.get("ts")
        if not isinstance(ts, str) or not (ts.isascii() and ts.isdigit() and len(ts) <= 19):
            raise FrameError(f"liquidation time is not a ms string: {str(ts)[:40]!r}")
        return Trade(
            venue=self.name,
            symbol=self.symbol,
            price=number(d.get("bkPx"), "liquidation bkPx"),  # the bankruptcy price
            size=number(d.get("sz"), "liquidation sz"),  # contracts, as the trades
            side=order_side,
            trade_id=f"liq-{ts}",  # OKX numbers none; at most one a second per contract
            ts_exchange=_seconds(ts),
            ts_local=ts_local,
            kind=LIQUIDATION_ORDER,
        )

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> BookSync:
        self._sync = OkxSync(book)
        return self._sync

    def texts_wanted(self) -> bool:
        """Whether an update with checksum 0 must carry its level texts (``OkxSync``); an
        update with a non-zero checksum and a snapshot always carry them."""
        sync = self._sync
        return sync is None or sync.texts_wanted

    def snapshot_request(self) -> HttpRequest | None:
        """REST book, for when the websocket snapshot is not sent (OKX announced its removal)."""
        return HttpRequest(
            f"{self.rest_endpoint}/api/v5/market/books?instId={quote(self.native)}&sz={BOOK_DEPTH}"
        )

    def parse_snapshot(self, body: bytes, ts_local: float) -> BookSnapshot:
        d = _first_data(body)
        seq = _int_or_none(d.get("seqId"))
        if seq is None:
            # without it the updates buffered meanwhile cannot be told apart (older ones would
            # be replayed onto the newer book): no book rather than a wrong one
            raise FrameError("REST book without a seqId cannot be joined to the updates")
        bids, raw_bids = _levels(d["bids"])
        asks, raw_asks = _levels(d["asks"])
        return OkxBookSnapshot(
            self.name, self.symbol, bids, asks, seq=seq,
            ts_exchange=_seconds(d["ts"]), ts_local=ts_local,
            checksum=_int_or_none(d.get("checksum")), raw_bids=raw_bids, raw_asks=raw_asks,
            rest=True,
        )  # fmt: skip

    # -- instrument facts -------------------------------------------------------------------
    def default_instrument(self) -> Instrument:
        native = self.native
        parts = native.split("-")
        base, quote_ccy = parts[0], (parts[1] if len(parts) > 1 else "USD")
        kind = inst_type(native)
        if native in DEFAULTS:
            tick, lot, ct_val = DEFAULTS[native]
            return Instrument(
                self.name, self.symbol, native, tick, lot, "contract", ct_val, base, quote_ccy
            )
        tick = 0.1 if base == "BTC" else 0.01
        if kind == "SPOT":
            return Instrument(
                self.name, self.symbol, native, tick, 1e-8, "base", 1.0, base, quote_ccy
            )
        if quote_ccy == "USD":  # inverse (coin-margined): contracts of 100 USD (BTC) or 10 USD
            return Instrument(
                self.name,
                self.symbol,
                native,
                tick,
                1.0,
                "quote",
                100.0 if base == "BTC" else 10.0,
                base,
                quote_ccy,
            )
        return Instrument(
            self.name, self.symbol, native, tick, 1.0, "contract", 1.0, base, quote_ccy
        )

    def instrument_request(self) -> HttpRequest | None:
        kind = inst_type(self.native)
        return HttpRequest(
            f"{self.rest_endpoint}/api/v5/public/instruments?instType={kind}&instId={quote(self.native)}"
        )

    def parse_instrument(self, body: bytes) -> Instrument:
        d = _first_data(body)
        if d.get("instId") not in (None, self.native):
            raise FrameError(f"instrument reply for {d.get('instId')!r}, asked {self.native!r}")
        fallback = self.default_instrument()
        tick = float(d.get("tickSz") or fallback.tick)
        lot = float(d.get("lotSz") or fallback.lot)
        base = d.get("baseCcy") or d.get("ctValCcy") or fallback.base
        quote_ccy = d.get("quoteCcy") or d.get("settleCcy") or fallback.quote
        ct_val = d.get("ctVal") or ""
        if d.get("instType") == "SPOT" or (not ct_val and fallback.size_unit == "base"):
            return Instrument(
                self.name, self.symbol, self.native, tick, lot, "base", 1.0, base, quote_ccy
            )
        if not ct_val:
            # a swap's reply without its contract value: sizes are still contracts, so keep the
            # built-in unit and value (base units read 100 BTC contracts as 100 BTC)
            return Instrument(
                self.name, self.symbol, self.native, tick, lot, fallback.size_unit,
                fallback.contract_value, fallback.base, fallback.quote,
            )  # fmt: skip
        ct_val_f = float(ct_val) * float(d.get("ctMult") or 1)
        uly = (d.get("uly") or d.get("instFamily") or self.native).split("-")
        base = uly[0]
        quote_ccy = uly[1] if len(uly) > 1 else fallback.quote
        if d.get("ctType") == "inverse":
            return Instrument(
                self.name, self.symbol, self.native, tick, lot, "quote", ct_val_f, base, quote_ccy
            )
        return Instrument(
            self.name, self.symbol, self.native, tick, lot, "contract", ct_val_f, base, quote_ccy
        )


def _first_data(body: bytes) -> dict:
    try:
        msg = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise FrameError(f"malformed JSON: {e.msg}") from None
    if not isinstance(msg, dict):
        raise FrameError("expected a JSON object")
    if str(msg.get("code", "0")) != "0":
        raise FrameError(f"OKX error {msg.get('code')}: {msg.get('msg', '')}")
    data = msg.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        raise FrameError("reply without data")
    return data[0]
