"""Binance USD-M futures dialect, written from ../shared/venues/binance.md.

- WebSocket routes: ``/public`` carries diff depth (``<sym>@depth@100ms``, ``@depth``,
  ``@depth@500ms``), ``/market`` carries ``<sym>@aggTrade`` and ``<sym>@forceOrder``. Each
  route has the combined mode ``/stream?streams=a/b`` (frames wrapped as ``{"stream": name,
  "data": event}``) and the raw mode ``/ws/<stream>[/<stream>...]``. A stream asked on the
  wrong route is accepted and stays silent, as the real venue does since the route split.
- ``{"method":"SUBSCRIBE","params":[...],"id":1}`` -> ``{"result":null,"id":1}``.
- Diff depth events: ``U`` first / ``u`` final update id, ``pu`` = the previous event's ``u``.
  As on the venue, where update ids are shared by all symbols, an event spans several ids and
  ``U`` is never ``pu + 1``: simulator step ``k`` owns the ids ``[k * STRIDE, (k + 1) * STRIDE)``
  and its event takes a range inside them (``update_ids``), so ``U - pu >= 2`` and
  ``u - U >= 2``. Steps that change nothing send nothing (``pu`` still chains).
- No snapshot over WebSocket: ``GET /fapi/v1/depth?symbol=X&limit=N`` answers the book after
  the last step that changed it, with a ``lastUpdateId`` anywhere in that step's ``[U, u]``:
  at ``U``, strictly inside or at ``u`` (``snapshot_id``), as the venue's, taken while an event
  was being gathered, usually is. The client applies that whole event again (sizes are
  absolute), so it must bridge with ``U <= lastUpdateId <= u``, not ``pu == lastUpdateId``.
  As on the venue, a new depth subscriber also gets the event being gathered when it joined:
  the last step that changed the book is sent right after subscribing, so a snapshot fetched
  afterwards always has its bridging event on the socket.
- ``GET /fapi/v1/exchangeInfo``: tickSize / stepSize from the simulator.
- aggTrade: ``m`` is true when the buyer was the maker (the taker sold).
- ``<sym>@forceOrder`` (a ``/market`` stream, in the URL or by SUBSCRIBE): the liquidation
  orders, in the documented shape ``{"e":"forceOrder","E":ms,"o":{"s","S","o":"LIMIT",
  "f":"IOC","q","p","ap","X":"FILLED","l","z","T"}}``. A simulator liquidation is a market
  order's run of fills of kind "liq" in one step (two such orders of one side in one step
  read as one); ``S`` is its side, ``q`` = ``z`` the filled quantity, ``ap`` the average
  fill price, ``p`` its worst fill (the IOC limit that let every fill through), ``l`` the
  last fill, ``T`` the last fill's time. The fills still go out as aggTrades, before it.
  Throttled as the venue documents it ("only the latest one liquidation order within
  1000ms will be pushed as the snapshot"): at most one push per symbol and connection per
  1000 ms of simulator time, the latest liquidation the one pushed. A liquidation with no
  push in the second before it goes out at once; one inside that second is held, a later
  one replaces it (the replaced one is never reported), and the one held goes out at the
  first step a second after the last push, with ``E`` the push time and ``T`` still its own
  (published frames show both an ``E - T`` of a few ms and one of about a second). Which
  edge of the window the venue pushes on is not documented.
- Server pings are WebSocket ping frames (the server library sends them); no JSON heartbeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import parse_qsl, urlsplit

import orjson

from obview.model import Side
from obview.sim.dialects.base import Dialect, Out
from obview.sim.events import liquidation_orders, on_book

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimUpdate

DEPTH_SUFFIXES = ("@depth@100ms", "@depth@500ms", "@depth")
STRIDE = 64  # update ids per simulator step
SNAPSHOT_LIMITS = (5, 10, 20, 50, 100, 500, 1000)
LIQ_INTERVAL = 1.0  # s: at most one forceOrder push per symbol in this time (venue docs)


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _mix(symbol: str, seq: int) -> int:
    """A fixed pseudo-random number per (symbol, step): the same in every process."""
    h = (seq * 0x9E3779B1 + sum(map(ord, symbol)) * 0x85EBCA6B) & 0xFFFFFFFF
    h ^= h >> 15
    return (h * 0x2C1B3C6D) & 0xFFFFFFFF


def update_ids(symbol: str, seq: int) -> tuple[int, int]:
    """``(U, u)`` of the depth event of simulator step ``seq``."""
    h = _mix(symbol, seq)
    half = STRIDE // 2
    base = seq * STRIDE
    return base + 1 + h % (half - 1), base + half + 1 + (h >> 8) % (half - 1)


def snapshot_id(symbol: str, seq: int) -> int:
    """The REST ``lastUpdateId`` of a book as of step ``seq``: one of that event's ids."""
    first, last = update_ids(symbol, seq)
    return first + (_mix(symbol, seq) >> 16) % (last - first + 1)


def book_id(m: SimMarket) -> int:
    """The REST ``lastUpdateId`` of ``m``'s book now: inside the event of the step that last
    changed it, or, before any step did, the final id of the book the market started with."""
    if m.last_book_update is None:
        return update_ids(m.symbol, m.book_seq)[1]
    return snapshot_id(m.symbol, m.book_seq)


def _ms(ts: float) -> int:
    return int(round(ts * 1000))


def _native_map() -> Mapping[str, str]:
    from obview.venues.registry import native_map

    return native_map("binance")


class BinanceDialect(Dialect):
    name: ClassVar[str] = "binance"
    paths: ClassVar[tuple[str, ...]] = ("/public", "/market")

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        super().__init__(markets, path)
        parts = urlsplit(path)
        self.route = "/" + parts.path.strip("/").split("/")[0]  # "/public" or "/market"
        self.combined = "/stream" in parts.path
        self.depth: set[str] = set()  # simulator symbols with a depth stream (name kept below)
        self.trades: set[str] = set()
        self.liqs: set[str] = set()  # simulator symbols with a forceOrder stream
        self.liq_pushed: dict[str, float] = {}  # symbol -> time of its last forceOrder push
        self.liq_held: dict[str, dict] = {}  # symbol -> the latest liquidation not pushed yet
        self.stream_names: dict[tuple[str, str], str] = {}  # (kind, symbol) -> stream name
        self.last_u: dict[str, int] = {}  # symbol -> last u sent on this connection
        names: list[str] = []
        if self.combined:
            names = dict(parse_qsl(parts.query)).get("streams", "").split("/")
        elif "/ws/" in parts.path + "/":
            names = parts.path.split("/ws", 1)[1].strip("/").split("/")
        for n in names:
            if n:
                self._add(n)

    # -- subscriptions ------------------------------------------------------------------------
    def _add(self, stream: str) -> bool:
        """Subscribe ``stream`` (lower-case venue name); False if it names nothing we know."""
        sym_part, _, _ = stream.partition("@")
        symbol = _native_map().get(sym_part.upper())
        if symbol is None or symbol not in self.markets:
            return False
        if any(stream == f"{sym_part}{s}" for s in DEPTH_SUFFIXES):
            if self.route == "/public":  # only the /public route serves book data
                self.depth.add(symbol)
                self.stream_names[("depth", symbol)] = stream
            return True
        if stream == f"{sym_part}@aggTrade":
            if self.route == "/market":
                self.trades.add(symbol)
                self.stream_names[("trade", symbol)] = stream
            return True
        if stream == f"{sym_part}@forceOrder":
            if self.route == "/market":
                self.liqs.add(symbol)
                self.stream_names[("liq", symbol)] = stream
            return True
        return False

    def _remove(self, stream: str) -> None:
        for key, name in list(self.stream_names.items()):
            if name == stream:
                del self.stream_names[key]
                kind, symbol = key
                {"depth": self.depth, "trade": self.trades, "liq": self.liqs}[kind].discard(symbol)
                if kind == "depth":
                    self.last_u.pop(symbol, None)
                elif kind == "liq":
                    self.liq_held.pop(symbol, None)

    def on_message(self, text: str) -> list[Out]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [Out(_dumps({"error": {"code": -32700, "msg": "malformed JSON"}, "id": None}))]
        if not isinstance(msg, dict):
            return [
                Out(
                    _dumps(
                        {
                            "error": {"code": 3, "msg": "Invalid JSON: expected an object"},
                            "id": None,
                        }
                    )
                )
            ]
        req_id = msg.get("id")
        method = msg.get("method")
        params = msg.get("params") or []
        if method == "SUBSCRIBE":
            had = set(self.depth)
            bad = [p for p in params if not isinstance(p, str) or not self._add(p)]
            if bad:
                return [
                    Out(
                        _dumps(
                            {
                                "error": {
                                    "code": 2,
                                    "msg": f"Invalid request: unknown stream {str(bad[0])[:40]}",
                                },
                                "id": req_id,
                            }
                        )
                    )
                ]
            return [Out(_dumps({"result": None, "id": req_id})), *self._joined(self.depth - had)]
        if method == "UNSUBSCRIBE":
            for p in params:
                if isinstance(p, str):
                    self._remove(p)
            return [Out(_dumps({"result": None, "id": req_id}))]
        if method == "LIST_SUBSCRIPTIONS":
            return [Out(_dumps({"result": sorted(self.stream_names.values()), "id": req_id}))]
        return [
            Out(
                _dumps(
                    {
                        "error": {
                            "code": 2,
                            "msg": f"Invalid request: unknown method {str(method)[:40]}",
                        },
                        "id": req_id,
                    }
                )
            )
        ]

    def on_connect(self) -> list[Out]:
        return self._joined(self.depth)

    def _joined(self, symbols: set[str]) -> list[Out]:
        """The event being gathered when these depth streams began (see the module docstring)."""
        out = []
        for symbol in sorted(symbols):
            last = self.markets[symbol].last_book_update
            if last is not None and symbol not in self.last_u:
                out.append(self._depth(symbol, last))
        return out

    # -- frames ---------------------------------------------------------------------------------
    def _depth(self, symbol: str, update: SimUpdate) -> Out:
        prev = self.last_u.get(symbol)
        if prev is None:
            prev = update_ids(symbol, update.prev_book_seq)[1]
        first, last = update_ids(symbol, update.seq)
        self.last_u[symbol] = last
        m = self.markets[symbol]
        fp, fs = m.fmt_price, m.fmt_size
        ts = _ms(update.ts)
        event = {
            "e": "depthUpdate",
            "E": ts,
            "T": ts,
            "s": self._native(symbol),
            "U": first,
            "u": last,
            "pu": prev,
            "b": [[fp(p), fs(s)] for p, s in update.bids],
            "a": [[fp(p), fs(s)] for p, s in update.asks],
        }
        return Out(self._wrap("depth", symbol, event), kind="delta")

    def _wrap(self, kind: str, symbol: str, event: dict) -> str:
        if self.combined:
            return _dumps({"stream": self.stream_names[(kind, symbol)], "data": event})
        return _dumps(event)

    def on_update(self, update: SimUpdate) -> list[Out]:
        symbol = update.symbol
        out: list[Out] = []
        m = self.markets[symbol]
        native = self._native(symbol)
        if symbol in self.depth and (update.bids or update.asks):
            out.append(self._depth(symbol, update))
        if symbol in self.trades:
            fp, fs = m.fmt_price, m.fmt_size
            for t in on_book(update.trades):
                tms = _ms(t.ts)
                event = {
                    "e": "aggTrade",
                    "E": tms,
                    "a": t.trade_id,
                    "s": native,
                    "p": fp(t.price),
                    "q": fs(t.size),
                    "f": t.trade_id,
                    "l": t.trade_id,
                    "T": tms,
                    "m": t.side is Side.SELL,  # buyer is maker <=> the taker sold
                }
                out.append(Out(self._wrap("trade", symbol, event), kind="trade"))
        if symbol in self.liqs:
            out += self._liquidations(symbol, update)
        return out

    def _liquidations(self, symbol: str, update: SimUpdate) -> list[Out]:
        """The forceOrder pushes due at this step (throttled: see the module docstring)."""
        now = update.ts
        orders = self._liquidation_orders(symbol, update)
        latest = orders[-1] if orders else self.liq_held.get(symbol)
        if latest is None:
            return []
        # the latest wins: any earlier one held, or of this step, is never reported
        last = self.liq_pushed.get(symbol)
        if last is not None and now < last + LIQ_INTERVAL:
            self.liq_held[symbol] = latest
            return []
        self.liq_held.pop(symbol, None)
        self.liq_pushed[symbol] = now
        return [self._force_order(symbol, latest, now)]

    def _liquidation_orders(self, symbol: str, update: SimUpdate) -> list[dict]:
        """The liquidation orders of one step: each run of "liq" fills of one side (one market
        order's walk through the book) as a forceOrder ``o`` object."""
        runs = liquidation_orders(update.trades)
        m = self.markets[symbol]
        fp, fs = m.fmt_price, m.fmt_size
        orders = []
        for fills in runs:
            qty = sum(t.size for t in fills)
            avg = sum(t.price * t.size for t in fills) / qty if qty > 0 else fills[-1].price
            sell = fills[0].side is Side.SELL
            worst = min(t.price for t in fills) if sell else max(t.price for t in fills)
            orders.append(
                {
                    "s": self._native(symbol),
                    "S": "SELL" if sell else "BUY",
                    "o": "LIMIT",
                    "f": "IOC",
                    "q": fs(qty),
                    "p": fp(worst),
                    "ap": fp(avg),
                    "X": "FILLED",
                    "l": fs(fills[-1].size),
                    "z": fs(qty),
                    "T": _ms(fills[-1].ts),
                }
            )
        return orders

    def _force_order(self, symbol: str, order: dict, now: float) -> Out:
        event = {"e": "forceOrder", "E": _ms(now), "o": order}
        return Out(self._wrap("liq", symbol, event), kind="trade")

    @staticmethod
    def _native(symbol: str) -> str:
        for native, sym in _native_map().items():
            if sym == symbol:
                return native
        return symbol.replace("-PERP", "USDT")

    # -- REST -------------------------------------------------------------------------------------
    @classmethod
    def http(
        cls, markets: dict[str, SimMarket], path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, bytes] | None:
        path = path.rstrip("/")
        if path == "/fapi/v1/depth":
            symbol = _native_map().get(query.get("symbol", ""))
            if symbol is None or symbol not in markets:
                return 400, orjson.dumps({"code": -1121, "msg": "Invalid symbol."})
            try:
                limit = int(query.get("limit", "500"))
            except ValueError:
                limit = -1
            if limit not in SNAPSHOT_LIMITS:
                return 400, orjson.dumps(
                    {"code": -1130, "msg": "Data sent for paramter 'limit' is not valid."}
                )
            m = markets[symbol]
            bids, asks = m.book.top(limit)
            fp, fs = m.fmt_price, m.fmt_size
            ts = _ms(m.ts)
            return 200, orjson.dumps(
                {
                    "lastUpdateId": book_id(m),
                    "E": ts,
                    "T": ts,
                    "bids": [[fp(p), fs(s)] for p, s in bids],
                    "asks": [[fp(p), fs(s)] for p, s in asks],
                }
            )
        if path == "/fapi/v1/exchangeInfo":
            symbols = []
            for native, symbol in _native_map().items():
                m = markets.get(symbol)
                if m is None:
                    continue
                symbols.append(
                    {
                        "symbol": native,
                        "pair": native,
                        "contractType": "PERPETUAL",
                        "status": "TRADING",
                        "baseAsset": native[: -len("USDT")],
                        "quoteAsset": "USDT",
                        "filters": [
                            {"filterType": "PRICE_FILTER", "tickSize": m.fmt_price(m.tick)},
                            {"filterType": "LOT_SIZE", "stepSize": m.fmt_size(m.lot)},
                        ],
                    }
                )
            return 200, orjson.dumps({"timezone": "UTC", "symbols": symbols})
        return None
