"""Binance USD-M futures: diff depth on ``/public``, aggTrade and forceOrder on ``/market``, REST snapshot.

Since the 2026 route split the book streams live on ``wss://fstream.binance.com/public`` and
everything else public (trades) on ``/market``; a stream asked for on the wrong route is
accepted but stays silent, which only the per-stream stale watchdog can notice. The book is
synced with the venue's buffered procedure (fact sheet section 5):

1. buffer ``depthUpdate`` events from the moment the socket is open;
2. fetch ``/fapi/v1/depth?limit=1000`` -> ``lastUpdateId`` L;
3. drop buffered events with ``u < L``;
4. the first applied event must satisfy ``U <= L <= u``; if the earliest remaining one has
   ``U > L`` the snapshot is too old: fetch again (keeping the buffer);
5. afterwards every event's ``pu`` must equal the previous event's ``u``, else it is a gap:
   a new REST snapshot, the socket stays up.

One addition to step 4: an event whose ``pu == L`` also bridges the snapshot (the snapshot was
taken exactly at an event boundary, as the recorded AKROUSDT snapshot was), which saves a
needless re-fetch when the snapshot arrives before the next event.

Binance sends no checksum; a crossed book after an update is treated as a gap.

Liquidations: ``<symbol>@forceOrder`` (Binance docs, "Liquidation Order Streams") pushes a
snapshot of a liquidation order, at most the latest one per symbol per 1000 ms, so some
liquidations are never reported; their fills still come as aggTrades. It is a ``/market``
stream (the route table: everything public but the book). It is asked for with a SUBSCRIBE
on the trade socket, not in its URL: a refusal then comes back as an in-band error
(``{"error":{"code":2,"msg":...},"id":7}``) on a socket that goes on carrying the trades,
where a combined URL the venue does not accept costs the handshake (HTTP 400) and with it
the trades. The book has its own socket either way.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
import orjson

from obview.book import OrderBook
from obview.model import LIQUIDATION_ORDER, BookDelta, BookSnapshot, Instrument, Side, Trade
from obview.venues.base import (
    APPLIED,
    DEPTH_REFRESH,
    IGNORED,
    BookSync,
    Event,
    FastMiss,
    FrameError,
    HttpRequest,
    Int,
    Price,
    PriceSize,
    ResyncMode,
    Size,
    StreamSpec,
    SyncResult,
    SyncStatus,
    VenueAdapter,
    VenueError,
    fmt_seq_gap,
    loads,
)

#: built-in instrument facts (tick, lot) used until exchangeInfo answers
DEFAULTS: dict[str, tuple[float, float]] = {
    "BTCUSDT": (0.1, 0.001),
    "ETHUSDT": (0.01, 0.001),
    "SOLUSDT": (0.01, 0.01),
}
_FALLBACK = (0.0001, 0.001)  # unknown instrument (replays of other symbols)

#: combined-stream events we receive on purpose but do not use (other subscriptions)
SKIPPED_EVENTS = frozenset(
    {
        "bookTicker",
        "kline",
        "markPriceUpdate",
        "24hrTicker",
        "24hrMiniTicker",
        "trade",
    }
)

#: our request id of the forceOrder SUBSCRIBE: the venue echoes it in the ack or the error
LIQ_SUBSCRIBE_ID = 7
#: forceOrder ``o.S``: the liquidation order's side (SELL: a long position was liquidated)
_LIQ_SIDES = {"SELL": Side.SELL, "BUY": Side.BUY}


def _levels(raw: list) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q in raw]


# -- typed decoders of the hot frames (parse_fast) ----------------------------------------------
class _Depth(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    E: Int
    s: str
    U: Int
    u: Int
    pu: Int
    b: list[PriceSize]
    a: list[PriceSize]


class _AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade"):
    E: Int
    s: str
    a: Int | float  # the trade id, a label: parse() writes it with str()
    p: Price
    q: Size
    T: Int
    m: bool | str  # a string goes to parse()


class _Combined(msgspec.Struct):
    data: _Depth | _AggTrade


_decode_combined = msgspec.json.Decoder(_Combined, strict=False).decode


class BinanceSync(BookSync):
    """U/u/pu rules of the USD-M diff depth stream (see the module docstring).

    The depth window: the REST snapshot holds the best ``snapshot_limit`` levels a side, and
    the diff stream only reports levels that change, so a price beyond the snapshot's deepest
    bid or ask is known only if it changed since (cryptofeed #604: a book that shows isolated
    far levels and misses the rest). A side the snapshot filled to the limit bounds the book:
    levels outside [deepest bid, deepest ask] are dropped. When the market has moved so far
    that fewer than ``edge_levels`` (a tenth of the limit) remain between the touch and that
    edge, the book is refreshed with a new snapshot (SYNCING, then LIVE: a resync, not counted
    as a gap).
    """

    def __init__(
        self,
        book: OrderBook,
        depth: int | None = None,
        *,
        snapshot_limit: int = 1000,
        edge_levels: int | None = None,
    ) -> None:
        super().__init__(book, depth)
        self.first_pending = False  # snapshot applied, bridging event not seen yet
        self.snapshot_too_old = 0
        self._stash: list[BookDelta] | None = None
        self.snapshot_limit = snapshot_limit
        self.edge_levels = max(1, snapshot_limit // 10) if edge_levels is None else edge_levels
        #: prices known from the last snapshot: (deepest bid or None, deepest ask or None)
        self.window: tuple[float | None, float | None] = (None, None)

    def reset(self) -> None:
        # After a "snapshot too old" the buffered events are still good for the next snapshot:
        # keep them across the reset that the pipeline does before it asks for a re-fetch.
        stash, self._stash = self._stash, None
        super().reset()
        self.first_pending = False
        if stash:
            self.buffer = stash

    def after_snapshot(self, snap: BookSnapshot) -> SyncResult:
        last_id = snap.seq
        if last_id is None:
            return SyncResult(SyncStatus.GAP, "snapshot without lastUpdateId")
        limit = self.snapshot_limit
        bids = [p for p, s in snap.bids if s > 0]
        asks = [p for p, s in snap.asks if s > 0]
        self.window = (
            min(bids) if len(bids) >= limit else None,
            max(asks) if len(asks) >= limit else None,
        )
        buffered, self.buffer = self.buffer, []
        pending = [d for d in buffered if d.seq is not None and d.seq >= last_id]  # drop u < L
        if pending and not self._bridges(pending[0], last_id):
            self.snapshot_too_old += 1
            self._stash = pending
            return SyncResult(
                SyncStatus.GAP,
                f"snapshot too old: lastUpdateId {last_id} < first buffered update {pending[0].first_seq}",
            )
        self.first_pending = True
        for i, d in enumerate(pending):
            res = self.on_delta(d)
            if res.status is SyncStatus.GAP:
                self._stash = pending[i:]  # still good events for the next snapshot
                return res
        return APPLIED

    def on_delta(self, delta: BookDelta) -> SyncResult:
        # Every event of a synced stream: it links (pu == the last u), carries no checksum, and
        # leaves a book that is not crossed, not empty and within its window with at least
        # ``edge_levels`` a side before the window's edge. What BookSync.on_delta, check_delta
        # and _post_apply do for it, in one pass: one bound comparison per side instead of the
        # trimming loops, and no is_crossed / empty calls. Anything else (before the snapshot,
        # the bridging event, a duplicate, a gap, a depth cut, a book that needs trimming or a
        # refresh) takes the general path, which re-checks the book already updated here.
        # (A NaN price would break the sorted keys these bounds read; none gets here: the
        # pipeline refuses such a frame before the sync.)
        last = self.last_seq
        seq = delta.seq
        if (
            last is None
            or delta.prev_seq != last
            or seq is None
            or self.first_pending
            or not self.synced
            or self.depth is not None
            or delta.checksum
        ):
            return super().on_delta(delta)
        book = self.book
        book.apply_delta(delta.bids, delta.asks)
        self.last_seq = seq
        bk, ak = book.bids._keys, book.asks._keys
        if bk and ak and bk[-1] < ak[0]:
            lo, hi = self.window
            if (lo is None or (bk[0] >= lo and len(bk) >= self.edge_levels)) and (
                hi is None or (ak[-1] <= hi and len(ak) >= self.edge_levels)
            ):
                return APPLIED
        return self._post_apply(delta.checksum)

    def keep_for_repair(self, delta: BookDelta) -> None:
        # The event is sound; the book it met was not (a break in pu, a depth refresh, a
        # cross). The snapshot fetched next is often taken while this very event was being
        # gathered (U <= lastUpdateId <= u): keep it for that snapshot, or the event after it
        # cannot bridge and the repair itself reads as another gap. (Called by the pipeline
        # on a GAP only, so the hot path pays nothing for it.)
        if delta.seq is not None and self._stash is None:
            self._stash = [delta]

    def _post_apply(self, checksum: int | None) -> SyncResult:
        lo, hi = self.window
        if lo is not None or hi is not None:
            book = self.book
            for side in (book.bids, book.asks):
                keys = side._keys
                if lo is not None:
                    while keys and keys[0] < lo:
                        side.popitem(0)
                if hi is not None:
                    while keys and keys[-1] > hi:
                        side.popitem(-1)
            edge = self.edge_levels
            for known, n in ((lo, len(book.bids._keys)), (hi, len(book.asks._keys))):
                if known is not None and n < edge:
                    return self._fail(
                        SyncResult(
                            SyncStatus.GAP,
                            f"{DEPTH_REFRESH}: {n} of the snapshot's {self.snapshot_limit} levels left"
                            " between the touch and its edge",
                            refresh=True,
                        )
                    )
        return super()._post_apply(checksum)

    @staticmethod
    def _bridges(d: BookDelta, last_id: int) -> bool:
        first = d.first_seq if d.first_seq is not None else d.seq
        return (first <= last_id <= d.seq) or d.prev_seq == last_id

    def check_delta(self, delta: BookDelta) -> SyncResult:
        last = self.last_seq
        if last is None or delta.seq is None:
            return APPLIED
        if self.first_pending:
            if delta.seq < last:
                return IGNORED  # older than the snapshot
            if not self._bridges(delta, last):
                return SyncResult(SyncStatus.GAP, fmt_seq_gap(last, delta.first_seq))
            self.first_pending = False
            return APPLIED
        if delta.prev_seq == last:
            return APPLIED
        if delta.seq <= last:
            return IGNORED  # duplicate or replayed event
        return SyncResult(SyncStatus.GAP, fmt_seq_gap(last, delta.prev_seq))


class BinanceAdapter(VenueAdapter):
    """Binance USD-M perpetual futures (public market data, no key needed)."""

    name = "binance"
    title = "Binance USD-M"
    symbols: ClassVar[dict[str, str]] = {
        "BTC-PERP": "BTCUSDT",
        "ETH-PERP": "ETHUSDT",
        "SOL-PERP": "SOLUSDT",
    }
    resync_mode = ResyncMode.REST
    native_upper = True  # BTCUSDT; the streams' names are their lower case
    default_endpoint = "wss://fstream.binance.com"
    default_rest_endpoint = "https://fapi.binance.com"
    channel = (
        "<sym>@depth@100ms (/public) + <sym>@aggTrade, <sym>@forceOrder (/market), REST snapshot; U/u/pu"
    )

    depth_stream = "depth"
    trade_stream = "trades"
    snapshot_limit = 1000

    # -- connection -------------------------------------------------------------------------
    def streams(self) -> list[StreamSpec]:
        s = self.native.lower()
        return [
            StreamSpec(
                name=self.depth_stream,
                url=f"{self.endpoint}/public/stream?streams={s}@depth@100ms",
                book=True,
                trades=False,
                stale_after=10.0,
            ),
            StreamSpec(
                name=self.trade_stream,
                url=f"{self.endpoint}/market/stream?streams={s}@aggTrade",
                # liquidations on the same socket, asked apart (see the module docstring)
                subscribe=[
                    orjson.dumps(
                        {"method": "SUBSCRIBE", "params": [f"{s}@forceOrder"], "id": LIQ_SUBSCRIBE_ID}
                    ).decode()
                ],
                book=False,
                trades=True,
                stale_after=30.0,  # trades can pause on a quiet market; still catches a dead route
            ),
        ]

    # -- parsing ----------------------------------------------------------------------------
    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        # combined-stream depth and aggTrade events; everything else goes to parse(), among
        # them forceOrder (at most one a second: not worth a decoder of its own)
        try:
            d = _decode_combined(frame).data
        except FastMiss:
            return None
        if d.s != self.native:
            return []
        if d.__class__ is _Depth:
            u, pu, first, e = d.u, d.pu, d.U, d.E
            if u.__class__ is not int or pu.__class__ is not int or first.__class__ is not int or e.__class__ is not int:
                return None  # numbers written as strings: parse() reads them its way
            return [BookDelta(self.name, self.symbol, d.b, d.a, u, pu, first, e / 1000.0, ts_local)]
        if d.a.__class__ is not int or d.T.__class__ is not int or d.m.__class__ is not bool:
            return None
        return [
            Trade(
                venue=self.name,
                symbol=self.symbol,
                price=d.p,
                size=d.q,
                side=Side.SELL if d.m else Side.BUY,
                trade_id=str(d.a),
                ts_exchange=d.T / 1000.0,
                ts_local=ts_local,
            )
        ]

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        msg = loads(frame)
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        data = msg.get("data")
        if data is None:
            if "error" in msg:
                err = msg["error"]
                reason = str(err.get("msg", err) if isinstance(err, dict) else err)[:200]
                if msg.get("id") == LIQ_SUBSCRIBE_ID:
                    # the liquidations are refused, not the book or the trades: say so, go on
                    return [VenueError(stream, f"binance: liquidation stream (forceOrder) refused: {reason}")]
                return [VenueError(stream, f"binance: {reason}")]
            if "result" in msg and "id" in msg:
                return []  # SUBSCRIBE / LIST_SUBSCRIPTIONS answer
            data = msg  # raw (/ws) stream: the payload itself
        if not isinstance(data, dict):
            raise FrameError("expected an event object")
        kind = data.get("e")
        if kind == "depthUpdate":
            if data["s"] != self.native:
                return []
            return [
                BookDelta(
                    venue=self.name,
                    symbol=self.symbol,
                    bids=_levels(data["b"]),
                    asks=_levels(data["a"]),
                    seq=int(data["u"]),
                    prev_seq=int(data["pu"]),
                    first_seq=int(data["U"]),
                    ts_exchange=data["E"] / 1000.0,
                    ts_local=ts_local,
                )
            ]
        if kind == "aggTrade":
            if data["s"] != self.native:
                return []
            return [
                Trade(
                    venue=self.name,
                    symbol=self.symbol,
                    price=float(data["p"]),
                    size=float(data["q"]),
                    # m: buyer is the maker, so the taker sold
                    side=Side.SELL if data["m"] else Side.BUY,
                    trade_id=str(data["a"]),
                    ts_exchange=data["T"] / 1000.0,
                    ts_local=ts_local,
                )
            ]
        if kind == "forceOrder":
            return self._force_order(data, ts_local)
        if kind in SKIPPED_EVENTS:
            return []
        raise FrameError(f"unknown event type {kind!r}")

    def _force_order(self, data: dict, ts_local: float) -> list[Event]:
        """One forceOrder report as a LIQUIDATION_ORDER trade (a plain FrameError when it cannot
        be read: it never touched the book).

        The documented fields of ``o``: ``S`` side, ``q`` original quantity, ``p`` order price,
        ``ap`` average fill price, ``X`` status, ``l`` last filled, ``z`` accumulated filled
        quantity, ``T`` order trade time (ms); quantities in coins, as aggTrade's ``q``. We
        report what was filled at the price it filled at (``z`` at ``ap``): the notional that
        reached the market, as the aggTrades show it. ``p`` is the order's limit, beyond
        every fill (for a SELL 0.06606 against an ``ap`` of 0.06669 in a published frame), and
        ``q`` counts what an order that expired did not fill. Only an order with nothing
        filled is reported as the order itself (``q`` at ``p``)."""
        o = data.get("o")
        if not isinstance(o, dict):
            raise FrameError("forceOrder without its order object")
        if o.get("s") != self.native:
            return []
        raw_side = o.get("S")
        side = _LIQ_SIDES.get(raw_side) if isinstance(raw_side, str) else None
        if side is None:
            raise FrameError(f"forceOrder: unknown side {str(o.get('S'))[:20]!r}")
        t = o.get("T")
        if t.__class__ is not int or not 0 <= t < 2**63:
            raise FrameError("forceOrder: order trade time T is not a time in ms")
        try:
            filled = float(o["z"])
            price, size = (float(o["ap"]), filled) if filled > 0 else (float(o["p"]), float(o["q"]))
        except (KeyError, TypeError, ValueError) as e:
            raise FrameError(f"forceOrder: unreadable price or quantity ({type(e).__name__})") from None
        return [
            Trade(
                venue=self.name,
                symbol=self.symbol,
                price=price,
                size=size,
                side=side,
                trade_id=f"liq-{t}",  # the report carries no order id: its trade time labels it
                ts_exchange=t / 1000.0,  # when it traded, not the (throttled) push time E
                ts_local=ts_local,
                kind=LIQUIDATION_ORDER,
            )
        ]

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> BookSync:
        return BinanceSync(book, snapshot_limit=self.snapshot_limit)

    def snapshot_request(self) -> HttpRequest:
        return HttpRequest(
            f"{self.rest_endpoint}/fapi/v1/depth?symbol={self.native}&limit={self.snapshot_limit}"
        )

    def parse_snapshot(self, body: bytes, ts_local: float) -> BookSnapshot:
        msg = loads(body)
        if not isinstance(msg, dict):
            raise FrameError("depth snapshot: expected a JSON object")
        if "lastUpdateId" not in msg:
            raise FrameError(f"depth snapshot without lastUpdateId: {str(msg.get('msg', ''))[:80]}")
        ts = msg.get("E") or msg.get("T")
        return BookSnapshot(
            venue=self.name,
            symbol=self.symbol,
            bids=_levels(msg["bids"]),
            asks=_levels(msg["asks"]),
            seq=int(msg["lastUpdateId"]),
            ts_exchange=ts / 1000.0 if ts else None,
            ts_local=ts_local,
        )

    # -- instrument facts ---------------------------------------------------------------------
    def _base_quote(self) -> tuple[str, str]:
        for q in ("USDT", "USDC", "BUSD"):
            if self.native.endswith(q) and len(self.native) > len(q):
                return self.native[: -len(q)], q
        return self.native, "USDT"

    def default_instrument(self) -> Instrument:
        tick, lot = DEFAULTS.get(self.native, _FALLBACK)
        return self.coin_instrument(tick, lot, *self._base_quote())

    def instrument_request(self) -> HttpRequest:
        return HttpRequest(f"{self.rest_endpoint}/fapi/v1/exchangeInfo")

    def parse_instrument(self, body: bytes) -> Instrument:
        msg = loads(body)
        if not isinstance(msg, dict) or not isinstance(msg.get("symbols"), list):
            raise FrameError("exchangeInfo: no symbols list")
        for s in msg["symbols"]:
            if s.get("symbol") != self.native:
                continue
            filters = {f.get("filterType"): f for f in s.get("filters", [])}
            tick = float(filters["PRICE_FILTER"]["tickSize"])
            lot = float(filters["LOT_SIZE"]["stepSize"])
            dbase, dquote = self._base_quote()
            return self.coin_instrument(
                tick, lot, s.get("baseAsset", dbase), s.get("quoteAsset", dquote), "exchangeInfo"
            )
        raise FrameError(f"exchangeInfo: {self.native} not listed")
