"""Kraken Futures WebSocket v1 dialect, written from ../shared/venues/kraken.md and the 2021
recording (../shared/recordings/kraken_futures.jsonl).

- Path ``/ws/v1``. On connect: ``{"event":"info","version":1}``. Client frames
  ``{"event":"subscribe"|"unsubscribe","feed":...,"product_ids":[...]}``; product ids are
  matched case-insensitively and answered in upper case, one ack per product. An unknown
  product gets ``{"event":"error","message":"Invalid product id"}``, an unknown feed
  ``Invalid feed``, a frame that is not a JSON object ``Json Error``.
- ``book``: a ``book_snapshot`` of the whole book with ``seq`` S, then one ``book`` message
  per changed level (``side`` buy/sell, ``qty`` the new size, 0 deletes), ``seq`` S+1, S+2, ...
  The counter is per product and connection and keeps counting across a resubscribe. Within one
  simulator step the deletes go first, so no intermediate book is ever crossed.
- ``trade``: a ``trade_snapshot`` (recent trades seen on this connection, newest first), then
  one ``trade`` message per fill with the taker ``side``.
- ``heartbeat``: ``{"feed":"heartbeat","time":ms}`` every ``heartbeat_every`` seconds.
- REST ``GET /derivatives/api/v3/instruments``: tickSize, contractSize 1 and
  ``contractValueTradePrecision`` from the simulator's lot (sizes are coins, as on PF_ perps).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import orjson

from obview.model import BLOCK, LIQUIDATION
from obview.sim.dialects.base import Dialect, Out

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimUpdate

FEEDS = ("book", "trade", "heartbeat")
RECENT_TRADES = 50
_KRAKEN_TYPES = {LIQUIDATION: "liquidation", BLOCK: "block"}  # trade kind -> "type"


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _ms(ts: float) -> int:
    return int(round(ts * 1000))


def _native_map() -> Mapping[str, str]:
    from obview.venues.registry import native_map

    return native_map("kraken")


class _Book:
    """What one subscribed product's client was sent."""

    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}


class KrakenDialect(Dialect):
    name: ClassVar[str] = "kraken"
    paths: ClassVar[tuple[str, ...]] = ("/ws/v1",)

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        super().__init__(markets, path)
        self.books: dict[str, _Book] = {}  # product -> what was sent
        self.trade_products: set[str] = set()
        self.product_of: dict[str, str] = {}  # symbol -> product
        self.seq: dict[str, int] = {}  # product -> last book seq sent
        self.recent: dict[str, deque[dict]] = {}  # product -> recent trades, oldest first
        self.heartbeat_on = False
        self.heartbeat_every = 5  # seconds (the venue does not document its interval)
        self._beat_count = 0
        self.heartbeats_sent = 0

    # -- client frames ------------------------------------------------------------------------
    @staticmethod
    def _error(message: str) -> Out:
        return Out(_dumps({"event": "error", "message": message}))

    def _product(self, pid: object) -> str | None:
        if not isinstance(pid, str):
            return None
        product = pid.upper()
        symbol = _native_map().get(product)
        if symbol is None or symbol not in self.markets:
            return None
        self.product_of[symbol] = product
        return product

    def on_connect(self) -> list[Out]:
        return [Out(_dumps({"event": "info", "version": 1}))]

    def on_message(self, text: str) -> list[Out]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._error("Json Error")]
        if not isinstance(msg, dict):
            return [self._error("Json Error")]
        event = msg.get("event")
        feed = msg.get("feed")
        if event not in ("subscribe", "unsubscribe"):
            return [self._error("Json Error")]
        if feed not in FEEDS:
            return [self._error("Invalid feed")]
        subscribe = event == "subscribe"
        done = "subscribed" if subscribe else "unsubscribed"
        if feed == "heartbeat":
            self.heartbeat_on = subscribe
            self._beat_count = 0
            return [Out(_dumps({"event": done, "feed": "heartbeat"}))]
        ids = msg.get("product_ids")
        if not isinstance(ids, list) or not ids:
            return [self._error("Json Error")]
        products = [self._product(p) for p in ids]
        if None in products:
            return [self._error("Invalid product id")]
        out: list[Out] = []
        for product in products:
            assert product is not None
            out.append(Out(_dumps({"event": done, "feed": feed, "product_ids": [product]})))
            if feed == "book":
                if subscribe:
                    out.append(self.snapshot(product))
                else:
                    self.books.pop(product, None)
            elif subscribe:
                self.trade_products.add(product)
                recent = list(reversed(self.recent.get(product, ())))
                out.append(
                    Out(_dumps({"feed": "trade_snapshot", "product_id": product, "trades": recent}))
                )
            else:
                self.trade_products.discard(product)
        return out

    # -- frames ---------------------------------------------------------------------------------
    def _market(self, product: str) -> SimMarket:
        return self.markets[_native_map()[product]]

    def snapshot(self, product: str) -> Out:
        m = self._market(product)
        bids, asks = m.book.top(len(m.book))
        book = _Book()
        book.bids = {float(m.fmt_price(p)): float(m.fmt_size(s)) for p, s in bids}
        book.asks = {float(m.fmt_price(p)): float(m.fmt_size(s)) for p, s in asks}
        self.books[product] = book
        seq = self.seq.setdefault(product, m.seq)
        frame = {
            "feed": "book_snapshot",
            "product_id": product,
            "timestamp": _ms(m.ts),
            "seq": seq,
            "tickSize": None,
            "bids": [{"price": p, "qty": q} for p, q in sorted(book.bids.items(), reverse=True)],
            "asks": [{"price": p, "qty": q} for p, q in sorted(book.asks.items())],
        }
        return Out(_dumps(frame), kind="snapshot")

    def _deltas(self, product: str, m: SimMarket, update: SimUpdate) -> list[Out]:
        book = self.books[product]
        deletes: list[tuple[str, float, float]] = []
        changes: list[tuple[str, float, float]] = []
        for side_name, side, levels in (
            ("buy", book.bids, update.bids),
            ("sell", book.asks, update.asks),
        ):
            for p, s in levels:
                price = float(m.fmt_price(p))
                qty = float(m.fmt_size(s)) if s > 0 else 0.0
                old = side.get(price)
                if qty <= 0:
                    if old is not None:
                        del side[price]
                        deletes.append((side_name, price, 0.0))
                elif old != qty:
                    side[price] = qty
                    changes.append((side_name, price, qty))
        out: list[Out] = []
        ts = _ms(update.ts)
        seq = self.seq[product]
        for side_name, price, qty in deletes + changes:
            seq += 1
            frame = {
                "feed": "book",
                "product_id": product,
                "side": side_name,
                "seq": seq,
                "price": price,
                "qty": qty,
                "timestamp": ts,
            }
            out.append(Out(_dumps(frame), kind="delta"))
        self.seq[product] = seq
        return out

    def on_update(self, update: SimUpdate) -> list[Out]:
        product = self.product_of.get(update.symbol)
        if product is None:
            return []
        m = self.markets[update.symbol]
        out: list[Out] = []
        if product in self.books:
            out.extend(self._deltas(product, m, update))
        if update.trades:
            recent = self.recent.setdefault(product, deque(maxlen=RECENT_TRADES))
            for t in update.trades:
                frame = {
                    "feed": "trade",
                    "product_id": product,
                    "uid": f"sim-{t.trade_id}",
                    "side": t.side.value,
                    "type": _KRAKEN_TYPES.get(t.kind, "fill"),
                    "seq": t.trade_id,
                    "time": _ms(t.ts),
                    "qty": float(m.fmt_size(t.size)),
                    "price": float(m.fmt_price(t.price)),
                }
                recent.append(frame)
                if product in self.trade_products:
                    out.append(Out(_dumps(frame), kind="trade"))
        return out

    def heartbeat(self) -> list[Out]:
        if not self.heartbeat_on:
            return []
        self._beat_count += 1
        if self._beat_count < self.heartbeat_every:
            return []
        self._beat_count = 0
        self.heartbeats_sent += 1
        return [Out(_dumps({"feed": "heartbeat", "time": _ms(time.time())}))]

    # -- REST -------------------------------------------------------------------------------------
    @classmethod
    def http(
        cls, markets: dict[str, SimMarket], path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, bytes] | None:
        if path.rstrip("/") != "/derivatives/api/v3/instruments":
            return None
        items = []
        for product, symbol in _native_map().items():
            m = markets.get(symbol)
            if m is None:
                continue
            base = product.split("_")[1][: -len("USD")]
            items.append(
                {
                    "symbol": product,
                    "type": "flexible_futures",
                    "tickSize": m.tick,
                    "contractSize": 1,
                    "tradeable": True,
                    "contractValueTradePrecision": m.size_decimals,
                    "postOnly": False,
                    "base": "BTC" if base == "XBT" else base,
                    "quote": "USD",
                    "pair": f"{'BTC' if base == 'XBT' else base}:USD",
                }
            )
        server_time = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
        return 200, orjson.dumps(
            {"result": "success", "instruments": items, "serverTime": server_time}
        )
