"""BitMEX realtime dialect, written from the venue notes (shared/venues/bitmex.md).

- Path ``/realtime``. A welcome (``info``, ``version``, ``timestamp``, ``limit``) on connect;
  topics come as ``{"op":"subscribe","args":["orderBookL2:XBTUSD","trade:XBTUSD"]}`` or in the URL
  (``/realtime?subscribe=orderBookL2:XBTUSD,trade:XBTUSD``). Each topic gets its own ack
  ``{"success":true,"subscribe":topic,"request":...}``; refusals are
  ``{"status":400,"error":...,"meta":{},"request":...}`` (unknown symbol or table, already
  subscribed, not subscribed). The text ``ping`` is answered with ``pong``; the venue sends no
  pings of its own.
- ``orderBookL2`` (every level) and ``orderBookL2_25`` (the best 25 a side; levels leaving the
  window are deleted, levels entering it inserted): a ``partial`` of the book, then per step at
  most three frames, ``delete``, ``insert``, ``update`` in that order (so the book a client holds
  after each frame is never crossed). Rows are keyed by ``id`` and ``side``.
  Today's protocol (default): every row carries ``price``, ``timestamp`` and ``transactTime``;
  an id is a fresh number per inserted level and says nothing about the price. ``legacy = True`` speaks the
  protocol of the 2021 recording instead: ids encode the price
  (``id = 1e8 * index - price / unit``), update/delete rows carry no price, no row timestamps.
- ``trade``: a ``partial`` (the last trade, if any) then ``insert`` rows with the taker ``side``.
- ``liquidation`` (``liquidation:XBTUSD``, or ``liquidation`` for every instrument): a ``partial``
  of the liquidation orders open at subscription (keys ``orderID``; the simulator's fill at once,
  so it is empty), then per liquidation order an ``insert`` row ``orderID, symbol, side, price,
  leavesQty`` (no time) before its fills go out on ``trade`` and a ``delete`` of the same row
  after them (BitMEX sends ``update`` rows with a smaller leavesQty while an order rests
  partly filled; the simulator's never rest). ``side`` is the order's (Sell: a long
  liquidated, the taker side of its fills), ``leavesQty`` its contracts, ``price`` its limit:
  the venue's is the bankruptcy price; the simulator, without positions, uses the deepest price
  its fills reached. One liquidation order is a run of consecutive liquidation fills of one side
  in a step (the engine's liquidating market order). No throttling: BitMEX documents none, and
  the 2020 capture shows each order's insert, update and delete.
- No sequence numbers, no checksums (frames are marked for fault injection all the same).
- REST: ``GET /api/v1/instrument?symbol=X`` and ``/api/v1/instrument/active``.

Sizes are contracts. XBTUSD counts USD in lots of 100 (every resting simulator level becomes
at least one lot, so the level set is the simulator's); the linear USDT perpetuals count
contracts of ``1 / underlyingToPositionMultiplier`` coins, which the simulator's lots divide
exactly.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import parse_qs, urlsplit

import orjson

from obview.model import Side
from obview.sim.dialects.base import Dialect, Out
from obview.sim.events import liquidation_orders, on_book

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimUpdate

BOOK_TABLES = {"orderBookL2": None, "orderBookL2_25": 25}
INVERSE_LOT = 100.0  # XBTUSD: USD contracts, traded in lots of 100
#: symbol -> underlyingToPositionMultiplier (contracts per coin) of the linear perpetuals
PER_COIN: dict[str, float] = {"ETHUSDT": 1e5, "SOLUSDT": 1e4}
#: legacy ids: symbol -> (instrument index, price unit)
LEGACY_IDS: dict[str, tuple[int, float]] = {
    "XBTUSD": (88, 0.01),
    "ETHUSDT": (297, 0.01),
    "SOLUSDT": (343, 0.001),
}
_KEYS = ["symbol", "id", "side"]
_TYPES = {"symbol": "symbol", "id": "long", "side": "symbol", "size": "long", "price": "float",
          "timestamp": "timestamp"}  # fmt: skip
_id_seed = itertools.count(1)
LIQUIDATION_TABLE = "liquidation"
#: the liquidation partial's column types, as the venue's (2026 capture)
_LIQ_TYPES = {"orderID": "guid", "symbol": "symbol", "side": "symbol", "price": "float",
              "leavesQty": "long"}  # fmt: skip


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Book:
    """What one connection was sent for one book topic: (is_bid, price) -> (id, contracts)."""

    __slots__ = ("depth", "levels")

    def __init__(self, depth: int | None) -> None:
        self.depth = depth
        self.levels: dict[tuple[bool, float], tuple[int, float]] = {}


class BitmexDialect(Dialect):
    name: ClassVar[str] = "bitmex"
    paths: ClassVar[tuple[str, ...]] = ("/realtime",)
    #: speak the protocol of 2021 (price-encoding ids, no price on update/delete rows)
    legacy: ClassVar[bool] = False

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        super().__init__(markets, path)
        self.books: dict[tuple[str, str], _Book] = {}  # (table, native) -> what was sent
        self.trades: set[str] = set()  # natives with a trade subscription
        #: natives with a liquidation subscription ("": every instrument's)
        self.liquidations: set[str] = set()
        self.pings = 0
        # arbitrary ids, different per connection (as the venue's are since 2023)
        self._next_id = 10**9 * (1 + next(_id_seed) % 997)

    # -- conversions ------------------------------------------------------------------------------
    @staticmethod
    def contracts(native: str, price: float, coins: float) -> float:
        if coins <= 0:
            return 0.0
        per_coin = PER_COIN.get(native)
        if per_coin is None:  # inverse: USD, whole lots, at least one
            return max(1, round(coins * price / INVERSE_LOT)) * INVERSE_LOT
        return float(round(coins * per_coin))

    def _id(self, native: str, price: float) -> int:
        if self.legacy:
            index, unit = LEGACY_IDS.get(native, (99, 0.01))
            return index * 10**8 - round(price / unit)
        self._next_id += 1
        return self._next_id

    def _native(self, symbol: str) -> str | None:
        from obview.venues.registry import native_map

        return next((n for n, s in native_map(self.name).items() if s == symbol), None)

    def _symbol(self, native: str) -> str | None:
        symbol = self.native_to_symbol(native)
        return symbol if symbol in self.markets else None

    # -- frames -----------------------------------------------------------------------------------
    @staticmethod
    def _error(text: str, request: object, status: int = 400) -> Out:
        return Out(_dumps({"status": status, "error": text, "meta": {}, "request": request}))

    def _row(self, native: str, id_: int, is_bid: bool, price: float, size: float | None,
             ts: str, full: bool) -> dict:  # fmt: skip
        row: dict[str, object] = {"symbol": native, "id": id_, "side": "Buy" if is_bid else "Sell"}
        if size is not None:
            row["size"] = int(size) if size == int(size) else size
        if full or not self.legacy:
            row["price"] = price
        if not self.legacy:
            row["timestamp"] = ts
            row["transactTime"] = ts  # rows carry the matching engine's time too (2024 on)
        return row

    def _partial(self, table: str, native: str) -> Out:
        m = self.markets[self._symbol(native)]  # type: ignore[index]
        state = self.books[(table, native)]
        state.levels.clear()
        ts = _iso(m.ts)
        rows = []
        bids, asks = m.book.top(state.depth or len(m.book))
        # the venue lists sells then buys, each from the highest price down
        for is_bid, levels in ((False, reversed(asks)), (True, bids)):
            for p, s in levels:
                size = self.contracts(native, p, s)
                id_ = self._id(native, p)
                state.levels[(is_bid, p)] = (id_, size)
                rows.append(self._row(native, id_, is_bid, p, size, ts, True))
        body = {"table": table, "action": "partial", "keys": _KEYS, "types": _TYPES,
                "foreignKeys": {"symbol": "instrument", "side": "side"},
                "attributes": {"symbol": "parted", "id": "sorted"},
                "filter": {"symbol": native}, "data": rows}  # fmt: skip
        return Out(_dumps(body), kind="snapshot")

    def _deltas(self, table: str, native: str, m: SimMarket, update: SimUpdate) -> list[Out]:
        state = self.books[(table, native)]
        target: dict[tuple[bool, float], float] = {}
        if state.depth is None:
            for is_bid, levels in ((True, update.bids), (False, update.asks)):
                for p, s in levels:
                    target[(is_bid, p)] = self.contracts(native, p, s)
        else:
            bids, asks = m.book.top(state.depth)
            window = {(True, p): s for p, s in bids} | {(False, p): s for p, s in asks}
            for key in state.levels:
                if key not in window:
                    target[key] = 0.0
            for key, s in window.items():
                target[key] = self.contracts(native, key[1], s)
        ts = _iso(update.ts)
        rows: dict[str, list[dict]] = {"delete": [], "insert": [], "update": []}
        for (is_bid, p), size in sorted(target.items(), key=lambda kv: (not kv[0][0], -kv[0][1])):
            old = state.levels.get((is_bid, p))
            if size <= 0:
                if old is not None:
                    del state.levels[(is_bid, p)]
                    rows["delete"].append(self._row(native, old[0], is_bid, p, None, ts, False))
            elif old is None:
                id_ = self._id(native, p)
                state.levels[(is_bid, p)] = (id_, size)
                rows["insert"].append(self._row(native, id_, is_bid, p, size, ts, True))
            elif old[1] != size:
                state.levels[(is_bid, p)] = (old[0], size)
                rows["update"].append(self._row(native, old[0], is_bid, p, size, ts, False))
        return [
            Out(_dumps({"table": table, "action": action, "data": data}), kind="delta")
            for action, data in rows.items()
            if data
        ]

    def _trade_rows(self, native: str, m: SimMarket, trades) -> list[dict]:  # type: ignore[no-untyped-def]
        out = []
        for t in trades:
            size = self.contracts(native, t.price, t.size)
            per_coin = PER_COIN.get(native)
            home = size / t.price if per_coin is None else size / per_coin
            out.append({
                "timestamp": _iso(t.ts), "symbol": native,
                "side": "Buy" if t.side is Side.BUY else "Sell",
                "size": int(size), "price": float(m.fmt_price(t.price)),
                "tickDirection": "PlusTick" if t.side is Side.BUY else "MinusTick",
                "trdMatchID": f"00000000-0000-0000-0000-{t.trade_id:012d}",
                "grossValue": round(home * 1e8), "homeNotional": home,
                "foreignNotional": home * t.price, "trdType": "Regular",
            })  # fmt: skip
        return out

    def _liquidation_frames(self, native: str, m: SimMarket, trades) -> tuple[list[Out], list[Out]]:  # type: ignore[no-untyped-def]
        """(inserts, deletes) of the liquidation orders among ``trades``: a run of consecutive
        liquidation fills of one side is one order (the engine's liquidating market order)."""
        runs = liquidation_orders(trades)
        inserts: list[Out] = []
        deletes: list[Out] = []
        for run in runs:
            first, deepest = run[0], run[-1]
            row = {
                # the shape of the venue's ids (00000000-0063-1000-0000-00000004155c, 2026)
                "orderID": f"00000000-0063-1000-0000-{first.trade_id:012x}",
                "symbol": native,
                "side": "Buy" if first.side is Side.BUY else "Sell",
                "price": float(m.fmt_price(deepest.price)),
                "leavesQty": int(sum(self.contracts(native, t.price, t.size) for t in run)),
            }
            for action, out in (("insert", inserts), ("delete", deletes)):
                body = {"table": LIQUIDATION_TABLE, "action": action, "data": [row]}
                out.append(Out(_dumps(body), kind="trade"))
        return inserts, deletes

    # -- hooks ------------------------------------------------------------------------------------
    def on_connect(self) -> list[Out]:
        now = time.time()
        welcome = {"info": "Welcome to the BitMEX Realtime API.", "version": "sim",
                   "timestamp": _iso(now), "docs": "https://www.bitmex.com/app/wsAPI",
                   "limit": {"remaining": 39}}  # fmt: skip
        out = [Out(_dumps(welcome))]
        query = parse_qs(urlsplit(self.path).query)
        topics = [t for v in query.get("subscribe", []) for t in v.split(",") if t]
        if topics:
            out += self._subscribe(topics, {"op": "subscribe", "args": topics})
        return out

    def on_message(self, text: str) -> list[Out]:
        if text == "ping":
            self.pings += 1
            return [Out("pong")]
        if text == "help":
            return [
                Out(
                    _dumps(
                        {
                            "info": "See https://www.bitmex.com/app/wsAPI",
                            "tables": list(BOOK_TABLES) + ["trade", LIQUIDATION_TABLE],
                        }
                    )
                )
            ]
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._error("Unable to parse request.", text[:200])]
        if not isinstance(msg, dict) or not isinstance(msg.get("args", []), list):
            return [self._error("Invalid request.", msg)]
        op = msg.get("op")
        args = [a for a in msg.get("args", []) if isinstance(a, str)]
        if op == "subscribe":
            return self._subscribe(args, msg)
        if op == "unsubscribe":
            return self._unsubscribe(args, msg)
        return [self._error(f"Unknown op: {str(op)[:40]}", msg)]

    def _subscribe(self, topics: list[str], request: object) -> list[Out]:
        out: list[Out] = []
        for topic in topics:
            table, _, native = topic.partition(":")
            if table not in BOOK_TABLES and table not in ("trade", LIQUIDATION_TABLE):
                out.append(self._error(f"Unknown table: {table[:40]}", request))
                continue
            if table == LIQUIDATION_TABLE:
                out += self._subscribe_liquidations(topic, native, request)
                continue
            if self._symbol(native) is None:
                out.append(self._error("Unknown or expired symbol.", request))
                continue
            if (table, native) in self.books or (table == "trade" and native in self.trades):
                out.append(
                    self._error(f"You are already subscribed to this topic: {topic}", request)
                )
                continue
            out.append(Out(_dumps({"success": True, "subscribe": topic, "request": request})))
            if table == "trade":
                self.trades.add(native)
                # as the venue's: the partial holds the last trade, however old (history)
                m = self.markets[self._symbol(native)]
                last = on_book(list(m.recent_trades))[-1:]
                body = {"table": "trade", "action": "partial", "keys": [],
                        "filter": {"symbol": native}, "data": self._trade_rows(native, m, last)}  # fmt: skip
                out.append(Out(_dumps(body)))
            else:
                self.books[(table, native)] = _Book(BOOK_TABLES[table])
                out.append(self._partial(table, native))
        return out

    def _subscribe_liquidations(self, topic: str, native: str, request: object) -> list[Out]:
        """``liquidation`` (every instrument) or ``liquidation:<symbol>``: the ack, then the
        partial of the orders open now (none: the simulator's fill at once)."""
        if native and self._symbol(native) is None:
            return [self._error("Unknown or expired symbol.", request)]
        if native in self.liquidations:
            return [self._error(f"You are already subscribed to this topic: {topic}", request)]
        self.liquidations.add(native)
        body = {"table": LIQUIDATION_TABLE, "action": "partial", "keys": ["orderID"],
                "types": _LIQ_TYPES, "filter": {"symbol": native} if native else {},
                "data": []}  # fmt: skip
        ack = {"success": True, "subscribe": topic, "request": request}
        return [Out(_dumps(ack)), Out(_dumps(body))]

    def _unsubscribe(self, topics: list[str], request: object) -> list[Out]:
        out: list[Out] = []
        for topic in topics:
            table, _, native = topic.partition(":")
            if table == LIQUIDATION_TABLE:
                if native not in self.liquidations:
                    out.append(
                        self._error(f"You are not subscribed to this topic: {topic}", request)
                    )
                    continue
                self.liquidations.discard(native)
            elif self.books.pop((table, native), None) is None and not (
                table == "trade" and native in self.trades
            ):
                out.append(self._error(f"You are not subscribed to this topic: {topic}", request))
                continue
            if table == "trade":
                self.trades.discard(native)
            out.append(Out(_dumps({"success": True, "unsubscribe": topic, "request": request})))
        return out

    def on_update(self, update: SimUpdate) -> list[Out]:
        m = self.markets[update.symbol]
        out: list[Out] = []
        for table, native in list(self.books):
            if self._symbol(native) == update.symbol:
                out += self._deltas(table, native, m, update)
        trades = on_book(update.trades)
        if not trades:
            return out
        deletes: list[Out] = []
        if self.liquidations:
            native = self._native(update.symbol)
            if native is not None and {native, ""} & self.liquidations:
                # the order is entered (insert), its fills print, then it is done (delete)
                inserts, deletes = self._liquidation_frames(native, m, trades)
                out += inserts
        for native in self.trades:
            if self._symbol(native) == update.symbol:
                rows = self._trade_rows(native, m, trades)
                body = {"table": "trade", "action": "insert", "data": rows}
                out.append(Out(_dumps(body), kind="trade"))
        return out + deletes

    # -- REST -------------------------------------------------------------------------------------
    @classmethod
    def http(
        cls, markets: dict[str, SimMarket], path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, bytes] | None:
        from obview.venues.registry import native_map

        path = path.rstrip("/")
        if path not in ("/api/v1/instrument", "/api/v1/instrument/active"):
            return None
        wanted = query.get("symbol")
        items = []
        for native, symbol in native_map(cls.name).items():
            m = markets.get(symbol)
            if m is None or (wanted is not None and wanted != native):
                continue
            per_coin = PER_COIN.get(native)
            item = {"symbol": native, "state": "Open", "typ": "FFWCSX", "tickSize": m.tick}
            if per_coin is None:
                item |= {"rootSymbol": "XBT", "underlying": "XBT", "quoteCurrency": "USD",
                         "positionCurrency": "USD", "settlCurrency": "XBt", "lotSize": INVERSE_LOT,
                         "multiplier": -100000000, "underlyingToPositionMultiplier": None,
                         "underlyingToSettleMultiplier": -100000000, "isQuanto": False,
                         "isInverse": True}  # fmt: skip
            else:
                base = native[: -len("USDT")]
                item |= {"rootSymbol": base, "underlying": base, "quoteCurrency": "USDT",
                         "positionCurrency": base, "settlCurrency": "USDt",
                         "lotSize": round(m.lot * per_coin), "multiplier": 1,
                         "underlyingToPositionMultiplier": per_coin,
                         "underlyingToSettleMultiplier": None, "isQuanto": False,
                         "isInverse": False}  # fmt: skip
            items.append(item)
        return 200, orjson.dumps(items)
