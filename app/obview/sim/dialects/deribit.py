"""Deribit JSON-RPC WebSocket dialect, written from the venue notes (shared/venues/deribit.md).

``/ws/api/v2`` takes JSON-RPC 2.0 requests: ``public/subscribe`` / ``public/unsubscribe``
(result: the channels affected), ``public/set_heartbeat`` (then a ``test_request`` heartbeat
every ``interval`` seconds, which the client answers with ``public/test``), ``public/test``.
``book.{instrument}.100ms`` sends a full snapshot, then ``change`` notifications chained by
``prev_change_id``; rows are ``[new|change|delete, price, amount]``. ``raw`` channels are
refused (code 13778) as for an unauthenticated connection. ``trades.{instrument}.100ms``
sends lists of trades with the taker ``direction``.

Amounts: inverse perpetuals (BTC-PERPETUAL, ETH-PERPETUAL) count USD in multiples of the
contract size (10 and 1 USD); every resting simulator level becomes at least one contract,
so the level set equals the simulator's and the amounts are what this dialect remembers
having sent. Linear USDC perpetuals count coins. REST: ``/api/v2/public/get_instrument``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

import orjson

from obview.model import BLOCK, LIQUIDATION
from obview.sim.dialects.base import Dialect, Out

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimUpdate

# instrument -> (USD contract size for inverse ones, or None for linear: amounts in coins)
CONTRACT_USD: dict[str, float | None] = {
    "BTC-PERPETUAL": 10.0,
    "ETH-PERPETUAL": 1.0,
    "SOL_USDC-PERPETUAL": None,
}


def _kind_fields(t) -> dict:
    """A trade's optional fields: ``liquidation`` ("T": the taker's position) on a liquidation,
    ``block_trade_id`` on a block trade."""
    if t.kind == LIQUIDATION:
        return {"liquidation": "T"}
    if t.kind == BLOCK:
        return {"block_trade_id": f"BLOCK-{t.trade_id}"}
    return {}


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _us() -> int:
    return int(time.time() * 1e6)


class _Book:
    __slots__ = ("bids", "asks", "change_id")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.change_id = 0


class DeribitDialect(Dialect):
    name: ClassVar[str] = "deribit"
    paths: ClassVar[tuple[str, ...]] = ("/ws/api/v2",)

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        super().__init__(markets, path)
        self.books: dict[str, _Book] = {}  # instrument -> what this client was sent
        self.trades: set[str] = set()
        self.native_of: dict[str, str] = {}  # symbol -> instrument
        self.heartbeat_interval: int | None = None
        self._beat_count = 0
        self.test_requests = 0
        self.tests_answered = 0

    # -- conversions ------------------------------------------------------------------------------
    @staticmethod
    def amount(m: SimMarket, instrument: str, price: float, coins: float) -> float:
        if coins <= 0:
            return 0.0
        cs = CONTRACT_USD.get(instrument)
        if cs is None:
            return float(m.fmt_size(coins))
        return max(1, round(coins * price / cs)) * cs

    def _encode(self, m: SimMarket, instrument: str, levels) -> dict[float, float]:
        return {float(m.fmt_price(p)): self.amount(m, instrument, p, s) for p, s in levels}

    # -- frames -----------------------------------------------------------------------------------
    @staticmethod
    def _note(channel: str, data: object) -> str:
        return _dumps(
            {
                "jsonrpc": "2.0",
                "method": "subscription",
                "params": {"channel": channel, "data": data},
            }
        )

    @staticmethod
    def _result(id_: object, result: object) -> Out:
        us = _us()
        return Out(
            _dumps(
                {
                    "jsonrpc": "2.0",
                    "id": id_,
                    "result": result,
                    "usIn": us,
                    "usOut": us,
                    "usDiff": 0,
                    "testnet": False,
                }
            )
        )

    @staticmethod
    def _error(id_: object, code: int, message: str) -> Out:
        return Out(
            _dumps(
                {
                    "jsonrpc": "2.0",
                    "id": id_,
                    "error": {"message": message, "code": code},
                    "usIn": _us(),
                    "usOut": _us(),
                }
            )
        )

    def snapshot(self, instrument: str) -> Out:
        m = self.markets[self.native_to_symbol(instrument)]  # type: ignore[index]
        bids, asks = m.book.top(len(m.book))
        book = _Book()
        book.bids = self._encode(m, instrument, bids)
        book.asks = self._encode(m, instrument, asks)
        book.change_id = m.seq
        self.books[instrument] = book
        data = {
            "type": "snapshot",
            "timestamp": int(round(m.ts * 1000)),
            "instrument_name": instrument,
            "change_id": m.seq,
            "bids": [["new", p, a] for p, a in sorted(book.bids.items(), reverse=True)],
            "asks": [["new", p, a] for p, a in sorted(book.asks.items())],
        }
        return Out(self._note(f"book.{instrument}.100ms", data), kind="snapshot")

    def _change(self, instrument: str, m: SimMarket, update: SimUpdate) -> Out | None:
        book = self.books[instrument]
        rows: dict[str, list[list]] = {"bids": [], "asks": []}
        for name, side, levels in (
            ("bids", book.bids, update.bids),
            ("asks", book.asks, update.asks),
        ):
            for p, s in levels:
                price = float(m.fmt_price(p))
                amount = self.amount(m, instrument, price, s)
                old = side.get(price)
                if amount <= 0:
                    if old is not None:
                        del side[price]
                        rows[name].append(["delete", price, 0.0])
                elif old is None:
                    side[price] = amount
                    rows[name].append(["new", price, amount])
                elif old != amount:
                    side[price] = amount
                    rows[name].append(["change", price, amount])
        if not rows["bids"] and not rows["asks"]:
            return None
        prev, book.change_id = book.change_id, update.seq
        data = {
            "type": "change",
            "timestamp": int(round(update.ts * 1000)),
            "prev_change_id": prev,
            "instrument_name": instrument,
            "change_id": update.seq,
            "bids": rows["bids"],
            "asks": rows["asks"],
        }
        return Out(self._note(f"book.{instrument}.100ms", data), kind="delta")

    # -- hooks ------------------------------------------------------------------------------------
    def on_message(self, text: str) -> list[Out]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._error(None, -32700, "Parse error")]
        if not isinstance(msg, dict):
            return [self._error(None, -32600, "Invalid Request")]
        id_ = msg.get("id")
        method = msg.get("method")
        params = msg.get("params") or {}
        if method == "public/test":
            self.tests_answered += 1
            return [self._result(id_, {"version": "sim"})]
        if method == "public/set_heartbeat":
            interval = params.get("interval")
            if not isinstance(interval, (int, float)) or interval < 10:
                return [self._error(id_, -32602, "Invalid params")]
            self.heartbeat_interval = int(interval)
            self._beat_count = 0
            return [self._result(id_, "ok")]
        if method in ("public/subscribe", "public/unsubscribe"):
            channels = params.get("channels")
            if not isinstance(channels, list):
                return [self._error(id_, -32602, "Invalid params")]
            return self._subscribe(id_, channels, method == "public/subscribe")
        return [self._error(id_, -32601, "Method not found")]

    def _subscribe(self, id_: object, channels: list, subscribe: bool) -> list[Out]:
        done: list[str] = []
        after: list[Out] = []
        for ch in channels:
            parts = str(ch).split(".")
            if len(parts) != 3 or parts[0] not in ("book", "trades"):
                continue
            kind, instrument, interval = parts
            if interval == "raw":
                return [self._error(id_, 13778, "raw_subscriptions_not_available_for_unauthorized")]
            symbol = self.native_to_symbol(instrument)
            if interval != "100ms" or symbol is None or symbol not in self.markets:
                continue  # not served: left out of the result
            self.native_of[symbol] = instrument
            done.append(ch)
            if kind == "book":
                if subscribe:
                    after.append(self.snapshot(instrument))
                else:
                    self.books.pop(instrument, None)
            elif subscribe:
                self.trades.add(instrument)
            else:
                self.trades.discard(instrument)
        return [self._result(id_, done), *after]

    def on_update(self, update: SimUpdate) -> list[Out]:
        instrument = self.native_of.get(update.symbol)
        if instrument is None:
            return []
        m = self.markets[update.symbol]
        out: list[Out] = []
        if instrument in self.books:
            o = self._change(instrument, m, update)
            if o is not None:
                out.append(o)
        if instrument in self.trades and update.trades:
            data = [
                {
                    "trade_seq": t.trade_id,
                    "trade_id": str(t.trade_id),
                    "timestamp": int(round(t.ts * 1000)),
                    "tick_direction": 0 if t.side.value == "buy" else 2,
                    "price": float(m.fmt_price(t.price)),
                    "mark_price": float(m.fmt_price(t.price)),
                    "index_price": float(m.fmt_price(t.price)),
                    "instrument_name": instrument,
                    "direction": t.side.value,
                    "amount": self.amount(m, instrument, t.price, t.size),
                    **_kind_fields(t),
                }
                for t in update.trades
            ]
            out.append(Out(self._note(f"trades.{instrument}.100ms", data), kind="trade"))
        return out

    def heartbeat(self) -> list[Out]:
        if self.heartbeat_interval is None:
            return []
        self._beat_count += 1
        if self._beat_count < self.heartbeat_interval:
            return []
        self._beat_count = 0
        self.test_requests += 1
        return [
            Out(
                _dumps(
                    {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
                )
            )
        ]

    # -- REST -------------------------------------------------------------------------------------
    @classmethod
    def http(
        cls, markets: dict[str, SimMarket], path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, bytes] | None:
        from obview.venues.registry import native_map

        if path != "/api/v2/public/get_instrument":
            return None
        instrument = query.get("instrument_name", "")
        symbol = native_map(cls.name).get(instrument)
        if symbol is None or symbol not in markets:
            err = {"jsonrpc": "2.0", "error": {"message": "instrument_not_found", "code": 13020}}
            return 400, orjson.dumps(err)
        m = markets[symbol]
        cs = CONTRACT_USD.get(instrument)
        base = instrument.split("-")[0].split("_")[0]
        if cs is not None:
            facts = {"contract_size": cs, "min_trade_amount": cs, "instrument_type": "reversed",
                     "quote_currency": "USD", "counter_currency": "USD", "settlement_currency": base}  # fmt: skip
        else:
            facts = {"contract_size": 1.0, "min_trade_amount": m.lot, "instrument_type": "linear",
                     "quote_currency": "USDC", "counter_currency": "USDC", "settlement_currency": "USDC"}  # fmt: skip
        result = {
            "instrument_name": instrument, "kind": "future", "settlement_period": "perpetual",
            "tick_size": m.tick, "base_currency": base, "is_active": True,
            "future_type": facts["instrument_type"], **facts,
        }  # fmt: skip
        return 200, orjson.dumps(
            {"jsonrpc": "2.0", "result": result, "usIn": _us(), "usOut": _us(), "usDiff": 0}
        )
