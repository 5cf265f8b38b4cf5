"""Bybit v5 public linear dialect, written from ../shared/venues/bybit.md.

- Path ``/v5/public/linear``. Client frames: ``{"op":"subscribe","args":[...]}``,
  ``{"op":"unsubscribe",...}``, ``{"op":"ping"}``; each answered with
  ``{"success":..,"ret_msg":..,"conn_id":..,"op":..}`` (``req_id`` echoed when given).
- ``orderbook.{1|50|200|1000}.{SYMBOL}``: a ``snapshot`` of the best ``depth`` levels right
  after subscribing, then a ``delta`` whenever those levels change: absolute sizes, ``"0"``
  deletes, and levels that fall out of the depth window are deleted explicitly, levels that
  come into it are inserted, so the client's top-``depth`` book equals the one encoded here.
  ``u`` goes up by one per message of the topic and continues across a resubscribe; ``seq`` is
  the simulator's sequence number. ``restart()`` emulates a service restart: the next book
  message of every topic is a snapshot with ``u = 1``. A subscribe to a topic this connection
  already has is refused (``error:already subscribed,topic:...``) and sends no snapshot.
- ``publicTrade.{SYMBOL}``: ``data`` is a list of fills, ``S`` the taker side.
- ``allLiquidation.{SYMBOL}``: each simulated liquidation (a market order whose fills are
  marked ``LIQUIDATION``) is reported once as ``{T, s, S, v, p}``: ``S`` the liquidated
  position's side (the opposite of the order's: a selling liquidation reports ``Buy``, a long),
  ``v`` the order's executed size (its fills' sum), ``p`` its bankruptcy price, for which the
  simulator, having no positions, takes the order's worst fill price (the real one is at least
  that bad: the fills are at it or better). Bybit pushes the topic every 500 ms, so the reports
  wait and go out together, at most one frame per 500 ms of exchange time per symbol, after
  that step's trades; the fills themselves still go out on ``publicTrade``. Fills of one order
  are told apart as a run of liquidation fills of one side, consecutive ids and each at a worse
  price than the last (two such orders back to back in one step may read as one).
- ``GET /v5/market/instruments-info?category=linear&symbol=X``: tickSize / qtyStep.
- Sizes are coins (the simulator's unit), so nothing is converted.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import orjson

from obview.model import BLOCK, Side
from obview.sim.dialects.base import Dialect, Out
from obview.sim.events import liquidation_orders

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimUpdate

DEPTHS = (1, 50, 200, 1000)
LIQUIDATION_PUSH = 0.5  # s: allLiquidation's documented push frequency
MAX_PENDING = 1000  # liquidation reports kept waiting for their push (bounded; oldest go)
_conn_ids = itertools.count(1)


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _ms(ts: float) -> int:
    return int(round(ts * 1000))


def _native_map() -> Mapping[str, str]:
    from obview.venues.registry import native_map

    return native_map("bybit")


class _BookTopic:
    """One subscribed ``orderbook.{depth}.{symbol}``: what the client was last sent."""

    __slots__ = ("depth", "bids", "asks")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}


class BybitDialect(Dialect):
    name: ClassVar[str] = "bybit"
    paths: ClassVar[tuple[str, ...]] = ("/v5/public/linear",)

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        super().__init__(markets, path)
        self.conn_id = f"sim-{next(_conn_ids)}"
        self.books: dict[tuple[str, str], _BookTopic] = {}  # (topic, symbol) -> state
        self.trades: dict[str, str] = {}  # symbol -> topic
        self.liquidations: dict[str, str] = {}  # symbol -> allLiquidation topic
        self._liq_pending: dict[str, list[dict]] = {}  # symbol -> reports awaiting their push
        self._liq_due: dict[str, float] = {}  # symbol -> exchange time of the next push
        self.u: dict[str, int] = {}  # topic -> last u sent (kept across resubscribes)
        self._restart: set[tuple[str, str]] = set()  # book topics owing a u = 1 snapshot

    # -- client frames --------------------------------------------------------------------------
    def _ack(self, op: str, ok: bool, msg: str, req_id: object) -> Out:
        body: dict[str, object] = {"success": ok, "ret_msg": msg, "conn_id": self.conn_id, "op": op}
        if req_id is not None:
            body["req_id"] = req_id
        return Out(_dumps(body))

    def on_message(self, text: str) -> list[Out]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._ack("", False, "Invalid JSON", None)]
        if not isinstance(msg, dict):
            return [self._ack("", False, "Invalid request", None)]
        op = str(msg.get("op", ""))
        req_id = msg.get("req_id")
        if op == "ping":
            return [self._ack("ping", True, "pong", req_id)]
        args = msg.get("args") or []
        if op == "subscribe":
            parsed = []
            for a in args:
                p = self._parse_topic(a)
                if p is None:
                    return [
                        self._ack("subscribe", False, f"Invalid symbol :[{str(a)[:60]}]", req_id)
                    ]
                parsed.append(p)
            for topic, _kind, symbol, _depth in parsed:
                if (
                    (topic, symbol) in self.books
                    or self.trades.get(symbol) == topic
                    or self.liquidations.get(symbol) == topic
                ):
                    reason = f"error:already subscribed,topic:{topic}"
                    return [self._ack("subscribe", False, reason, req_id)]
            out = [self._ack("subscribe", True, "", req_id)]
            for topic, kind, symbol, depth in parsed:
                if kind == "book":
                    state = _BookTopic(depth)
                    self.books[(topic, symbol)] = state
                    out.append(self._snapshot(topic, symbol, state))
                elif kind == "liq":
                    self.liquidations[symbol] = topic
                else:
                    self.trades[symbol] = topic
            return out
        if op == "unsubscribe":
            for a in args:
                for key in [k for k in self.books if k[0] == a]:
                    del self.books[key]
                    self._restart.discard(key)
                for sym in [s for s, t in self.trades.items() if t == a]:
                    del self.trades[sym]
                for sym in [s for s, t in self.liquidations.items() if t == a]:
                    del self.liquidations[sym]
                    self._liq_pending.pop(sym, None)
            return [self._ack("unsubscribe", True, "", req_id)]
        return [self._ack(op[:40], False, f"Invalid op {op[:40]}", req_id)]

    def _parse_topic(self, topic: object) -> tuple[str, str, str, int] | None:
        if not isinstance(topic, str):
            return None
        parts = topic.split(".")
        if (
            len(parts) == 3
            and parts[0] == "orderbook"
            and parts[1].isdigit()
            and int(parts[1]) in DEPTHS
        ):
            symbol = _native_map().get(parts[2])
            if symbol in self.markets:
                return topic, "book", symbol, int(parts[1])
        if len(parts) == 2 and parts[0] in ("publicTrade", "allLiquidation"):
            symbol = _native_map().get(parts[1])
            if symbol in self.markets:
                return topic, "trade" if parts[0] == "publicTrade" else "liq", symbol, 0
        return None

    def restart(self) -> None:
        """Emulate a restart of the venue's book service: the next book message of every topic
        subscribed now is a snapshot with u = 1."""
        self._restart.update(self.books)

    # -- frames -----------------------------------------------------------------------------------
    def _book_msg(self, topic: str, symbol: str, kind: str, u: int, bids, asks) -> str:
        m = self.markets[symbol]
        fp, fs = m.fmt_price, m.fmt_size
        ts = _ms(m.ts)
        return _dumps(
            {
                "topic": topic,
                "type": kind,
                "ts": ts,
                "data": {
                    "s": topic.rsplit(".", 1)[1],
                    "b": [[fp(p), fs(s)] for p, s in bids],
                    "a": [[fp(p), fs(s)] for p, s in asks],
                    "u": u,
                    "seq": m.seq,
                },
                "cts": ts,
            }
        )

    def _snapshot(self, topic: str, symbol: str, state: _BookTopic, u: int | None = None) -> Out:
        m = self.markets[symbol]
        bids, asks = m.book.top(state.depth)
        state.bids, state.asks = dict(bids), dict(asks)
        if u is None:
            u = self.u.get(topic, m.seq) + 1
        self.u[topic] = u
        return Out(self._book_msg(topic, symbol, "snapshot", u, bids, asks), kind="snapshot")

    @staticmethod
    def _diff(old: dict[float, float], new: dict[float, float]) -> list[tuple[float, float]]:
        changes = [(p, s) for p, s in new.items() if old.get(p) != s]
        changes += [(p, 0.0) for p in old if p not in new]
        return changes

    def on_update(self, update: SimUpdate) -> list[Out]:
        symbol = update.symbol
        out: list[Out] = []
        for (topic, sym), state in self.books.items():
            if sym != symbol:
                continue
            if (topic, sym) in self._restart:
                self._restart.discard((topic, sym))
                out.append(self._snapshot(topic, sym, state, u=1))
                continue
            bids, asks = self.markets[sym].book.top(state.depth)
            nb, na = dict(bids), dict(asks)
            db, da = self._diff(state.bids, nb), self._diff(state.asks, na)
            if not db and not da:
                continue
            state.bids, state.asks = nb, na
            u = self.u[topic] + 1
            self.u[topic] = u
            db.sort(reverse=True)
            da.sort()
            out.append(Out(self._book_msg(topic, sym, "delta", u, db, da), kind="delta"))
        topic = self.trades.get(symbol)
        if topic is not None and update.trades:
            m = self.markets[symbol]
            fp, fs = m.fmt_price, m.fmt_size
            native = topic.split(".", 1)[1]
            data = [
                {
                    "T": _ms(t.ts),
                    "s": native,
                    "S": "Buy" if t.side is Side.BUY else "Sell",
                    "v": fs(t.size),
                    "p": fp(t.price),
                    "L": "ZeroPlusTick",
                    "i": f"sim-{t.trade_id}",
                    "BT": t.kind == BLOCK,
                    "seq": update.seq,
                }
                for t in update.trades
            ]
            out.append(
                Out(
                    _dumps(
                        {"topic": topic, "type": "snapshot", "ts": _ms(update.ts), "data": data}
                    ),
                    kind="trade",
                )
            )
        topic = self.liquidations.get(symbol)
        if topic is not None:
            liq = self._liquidation(topic, symbol, update)
            if liq is not None:
                out.append(liq)
        return out

    def _liquidation(self, topic: str, symbol: str, update: SimUpdate) -> Out | None:
        """Queue this step's liquidation orders; the allLiquidation frame if a push is due."""
        m = self.markets[symbol]
        native = topic.split(".", 1)[1]
        pending = self._liq_pending.setdefault(symbol, [])
        for order in liquidation_orders(update.trades):
            first, last = order[0], order[-1]
            pending.append(
                {
                    "T": _ms(first.ts),
                    "s": native,
                    # the liquidated position's side: a selling order closed a long
                    "S": "Buy" if first.side is Side.SELL else "Sell",
                    "v": m.fmt_size(sum(t.size for t in order)),
                    "p": m.fmt_price(last.price),  # the worst fill: the bankruptcy price's stand-in
                }
            )
        del pending[:-MAX_PENDING]
        if not pending or update.ts < self._liq_due.get(symbol, float("-inf")):
            return None
        self._liq_due[symbol] = update.ts + LIQUIDATION_PUSH
        data = pending[:]
        pending.clear()
        frame = {"topic": topic, "type": "snapshot", "ts": _ms(update.ts), "data": data}
        return Out(_dumps(frame), kind="trade")

    # -- REST -------------------------------------------------------------------------------------
    @classmethod
    def http(
        cls, markets: dict[str, SimMarket], path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, bytes] | None:
        if path.rstrip("/") != "/v5/market/instruments-info":
            return None
        if query.get("category") != "linear":
            return 200, orjson.dumps(
                {"retCode": 10001, "retMsg": "params error: category", "result": {}}
            )
        items = []
        for native, symbol in _native_map().items():
            m = markets.get(symbol)
            if m is None or query.get("symbol", native) != native:
                continue
            items.append(
                {
                    "symbol": native,
                    "contractType": "LinearPerpetual",
                    "status": "Trading",
                    "baseCoin": native[: -len("USDT")],
                    "quoteCoin": "USDT",
                    "priceScale": str(m.price_decimals),
                    "priceFilter": {"tickSize": m.fmt_price(m.tick)},
                    "lotSizeFilter": {
                        "qtyStep": m.fmt_size(m.lot),
                        "minOrderQty": m.fmt_size(m.lot),
                    },
                }
            )
        return 200, orjson.dumps(
            {
                "retCode": 0,
                "retMsg": "OK",
                "result": {"category": "linear", "list": items, "nextPageCursor": ""},
            }
        )
