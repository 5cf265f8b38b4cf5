"""OKX v5 public feed: ``books`` (400 levels, snapshot + incremental) and ``trades``.

Integrity, per OKX's rules (see the venue notes):
- ``seqId`` / ``prevSeqId`` chain each update to the previous one when present (the snapshot
  carries ``prevSeqId`` -1; a keep-alive repeats ``seqId``; a reset after maintenance still
  links ``prevSeqId`` to the last ``seqId`` even though ``seqId`` goes down). Older data has
  no sequence fields at all, and then the checksum is the only guard.
- ``checksum`` is a signed CRC32 over the top 25 levels of the book *after* the update,
  built from the original price/size strings. Since mid-2026 the live feed sends 0 there:
  0 means "not sent" and never fails a book.

On a gap or a checksum mismatch the book is rebuilt by unsubscribing and subscribing the
``books`` channel again, which makes OKX send a fresh snapshot.

Sizes: SWAP and FUTURES books count contracts (``ctVal`` coins each for linear contracts,
``ctVal`` USD each for inverse ones); SPOT books count coins.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import quote, urlsplit

import orjson

from obview.book import OrderBook
from obview.model import BookDelta, BookSnapshot, Instrument, Side, Trade
from obview.venues.base import (
    APPLIED,
    IGNORED,
    BookSync,
    Event,
    FrameError,
    HttpRequest,
    ResyncMode,
    StreamSpec,
    SyncResult,
    SyncStatus,
    VenueAdapter,
    VenueError,
    dumps,
    loads,
)

WS_PATH = "/ws/v5/public"
BOOK_DEPTH = 400
CHECKSUM_LEVELS = 25

RawLevel = tuple[str, str]  # (price, size) exactly as sent

# Built-in facts used when /api/v5/public/instruments cannot be reached:
# instId -> (tickSz, lotSz, ctVal). Swap sizes are contracts of ctVal coins.
DEFAULTS: dict[str, tuple[float, float, float]] = {
    "BTC-USDT-SWAP": (0.1, 0.1, 0.01),
    "ETH-USDT-SWAP": (0.01, 0.1, 0.1),
    "SOL-USDT-SWAP": (0.01, 0.1, 1.0),
}

# Error codes that retrying the same subscription will not fix (unknown instrument/channel).
FATAL_ERRORS = {"60018", "51001"}


def okx_checksum(bids: list[RawLevel], asks: list[RawLevel]) -> int:
    """OKX book checksum: CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:bid2px:...`` over the best 25
    levels per side (the longer side's remaining levels appended alone), as a signed int32.

    ``bids`` best (highest) first, ``asks`` best (lowest) first, strings as received."""
    parts: list[str] = []
    nb = min(len(bids), CHECKSUM_LEVELS)
    na = min(len(asks), CHECKSUM_LEVELS)
    for i in range(max(nb, na)):
        if i < nb:
            parts.append(bids[i][0])
            parts.append(bids[i][1])
        if i < na:
            parts.append(asks[i][0])
            parts.append(asks[i][1])
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


@dataclass(slots=True)
class OkxBookSnapshot(BookSnapshot):
    """A snapshot that also keeps the original strings the checksum is computed from."""

    raw_bids: list[RawLevel] = field(default_factory=list)
    raw_asks: list[RawLevel] = field(default_factory=list)


@dataclass(slots=True)
class OkxBookDelta(BookDelta):
    raw_bids: list[RawLevel] = field(default_factory=list)
    raw_asks: list[RawLevel] = field(default_factory=list)


class OkxSync(BookSync):
    """seqId/prevSeqId chain (base rules) plus the CRC32 check over the original strings.

    Keeps price -> (price string, size string) per side next to the float book.
    """

    def __init__(self, book: OrderBook, depth: int | None = BOOK_DEPTH) -> None:
        super().__init__(book, depth)
        self.bid_str: dict[float, RawLevel] = {}
        self.ask_str: dict[float, RawLevel] = {}
        self.checksums_verified = 0
        self.checksums_skipped = 0  # checksum 0 or absent: nothing to verify
        self.first_pending = False

    def reset(self) -> None:
        super().reset()
        self.bid_str.clear()
        self.ask_str.clear()
        self.first_pending = False

    def on_snapshot(self, snap: BookSnapshot) -> SyncResult:
        self.bid_str = {}
        self.ask_str = {}
        if isinstance(snap, OkxBookSnapshot):
            _remember(self.bid_str, snap.raw_bids)
            _remember(self.ask_str, snap.raw_asks)
        return super().on_snapshot(snap)

    def after_snapshot(self, snap: BookSnapshot) -> SyncResult:
        # Updates held before a websocket snapshot belong to the previous subscription;
        # without a seqId there is no way to tell which of them follow it, so drop those.
        self.buffer = [d for d in self.buffer if d.seq is not None]
        # The first update after a snapshot must bridge it: prevSeqId <= S < seqId. Over the
        # websocket prevSeqId == S exactly; a REST snapshot (the path once the websocket
        # snapshot is gone) usually lands inside an update's range.
        self.first_pending = snap.seq is not None
        return super().after_snapshot(snap)

    def check_delta(self, delta: BookDelta) -> SyncResult:
        last = self.last_seq
        if self.first_pending and last is not None and delta.seq is not None and delta.prev_seq is not None and delta.prev_seq != last:
            if delta.seq <= last:
                return IGNORED  # already in the snapshot
            if not delta.prev_seq <= last < delta.seq:
                return SyncResult(SyncStatus.GAP, f"snapshot {last} does not bridge update {delta.prev_seq}\u2192{delta.seq}")
            self.first_pending = False
            res = APPLIED
        else:
            self.first_pending = False
            res = super().check_delta(delta)
        if res.status is SyncStatus.APPLIED and isinstance(delta, OkxBookDelta):
            # the base class applies the floats right after this; keep the strings in step
            _remember(self.bid_str, delta.raw_bids)
            _remember(self.ask_str, delta.raw_asks)
        return res

    def verify(self, checksum: int) -> bool:
        bids, asks = self.book.top(CHECKSUM_LEVELS)
        try:
            raw_bids = [self.bid_str[p] for p, _ in bids]
            raw_asks = [self.ask_str[p] for p, _ in asks]
        except KeyError:
            return False
        self._prune()
        ok = okx_checksum(raw_bids, raw_asks) == checksum
        if ok:
            self.checksums_verified += 1
        return ok

    def _post_apply(self, checksum: int | None) -> SyncResult:
        if not checksum:
            self.checksums_skipped += 1
        return super()._post_apply(checksum)

    def _prune(self) -> None:
        """Drop strings of levels the depth limit cut off (bounded memory)."""
        limit = 2 * (self.depth or BOOK_DEPTH)
        if len(self.bid_str) > limit:
            self.bid_str = {p: self.bid_str[p] for p in self.book.bids if p in self.bid_str}
        if len(self.ask_str) > limit:
            self.ask_str = {p: self.ask_str[p] for p in self.book.asks if p in self.ask_str}


def _remember(side: dict[float, RawLevel], raw: list[RawLevel]) -> None:
    for px, sz in raw:
        p = float(px)
        if float(sz) > 0:
            side[p] = (px, sz)
        else:
            side.pop(p, None)


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


def _levels(rows: list) -> tuple[list[tuple[float, float]], list[RawLevel]]:
    floats: list[tuple[float, float]] = []
    raw: list[RawLevel] = []
    for row in rows:
        px, sz = row[0], row[1]
        if not isinstance(px, str) or not isinstance(sz, str):
            raise FrameError("book level is not [price string, size string, ...]")
        floats.append((float(px), float(sz)))
        raw.append((px, sz))
    return floats, raw


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
    default_endpoint: ClassVar[str] = "wss://ws.okx.com:8443"
    default_rest_endpoint: ClassVar[str] = "https://www.okx.com"
    channel: ClassVar[str] = "books (400 levels, 100 ms) + trades; seqId chain, CRC32 top 25"

    stream_name: ClassVar[str] = "public"
    ping_interval: ClassVar[float] = 25.0

    # -- connection -------------------------------------------------------------------------
    def ws_url(self) -> str:
        """The endpoint as given when it carries a path, else the endpoint + /ws/v5/public."""
        if urlsplit(self.endpoint).path not in ("", "/"):
            return self.endpoint
        return self.endpoint + WS_PATH

    def _args(self) -> list[dict[str, str]]:
        return [
            {"channel": "books", "instId": self.native},
            {"channel": "trades", "instId": self.native},
        ]

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
        if arg.get("instId") != self.native:
            return []
        channel = arg.get("channel")
        data = msg.get("data")
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
            return [VenueError(stream, reason, fatal=code in FATAL_ERRORS)]
        if event == "notice":
            # e.g. 64008: the server will close soon for an upgrade; the session reconnects
            return [VenueError(stream, f"OKX notice {msg.get('code', '')}: {msg.get('msg', '')}")]
        return []

    def _parse_book(self, action: object, data: list, ts_local: float) -> list[Event]:
        out: list[Event] = []
        for d in data:
            bids, raw_bids = _levels(d["bids"])
            asks, raw_asks = _levels(d["asks"])
            ts = int(d["ts"]) / 1000.0
            checksum = _int_or_none(d.get("checksum"))
            seq = _int_or_none(d.get("seqId"))
            if action == "snapshot":
                out.append(
                    OkxBookSnapshot(
                        self.name, self.symbol, bids, asks, seq=seq, ts_exchange=ts,
                        ts_local=ts_local, checksum=checksum, raw_bids=raw_bids, raw_asks=raw_asks,
                    )
                )  # fmt: skip
            elif action == "update":
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
            ts_exchange=int(t["ts"]) / 1000.0,
            ts_local=ts_local,
        )

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> BookSync:
        return OkxSync(book)

    def snapshot_request(self) -> HttpRequest | None:
        """REST book, for when the websocket snapshot is not sent (OKX announced its removal)."""
        return HttpRequest(
            f"{self.rest_endpoint}/api/v5/market/books?instId={quote(self.native)}&sz={BOOK_DEPTH}"
        )

    def parse_snapshot(self, body: bytes, ts_local: float) -> BookSnapshot:
        d = _first_data(body)
        bids, raw_bids = _levels(d["bids"])
        asks, raw_asks = _levels(d["asks"])
        return OkxBookSnapshot(
            self.name, self.symbol, bids, asks, seq=_int_or_none(d.get("seqId")),
            ts_exchange=int(d["ts"]) / 1000.0, ts_local=ts_local,
            checksum=_int_or_none(d.get("checksum")), raw_bids=raw_bids, raw_asks=raw_asks,
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
        if d.get("instType") == "SPOT" or not ct_val:
            return Instrument(
                self.name, self.symbol, self.native, tick, lot, "base", 1.0, base, quote_ccy
            )
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
