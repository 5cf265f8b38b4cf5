"""The demo protocol (docs/DEMO_PROTOCOL.md): the simulator's own, venue-like wire format.

Snapshot with a sequence number, then one delta per simulator step whose ``prev_seq`` is the
previous delta's ``seq``; prices and sizes as decimal strings like real venues send them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

import orjson

from obview.sim.dialects.base import Dialect, Out

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimUpdate

DEFAULT_DEPTH = 500
MAX_DEPTH = 5000


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _ms(ts: float) -> int:
    return int(round(ts * 1000))


class DemoDialect(Dialect):
    name: ClassVar[str] = "demo"
    paths: ClassVar[tuple[str, ...]] = ("/demo",)

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        super().__init__(markets, path)
        self.subs: dict[str, int] = {}  # symbol -> snapshot depth

    def native_to_symbol(self, native: str) -> str | None:
        return native if native in self.markets else None

    # -- frames ---------------------------------------------------------------------------------
    def snapshot(self, symbol: str) -> Out:
        m = self.markets[symbol]
        bids, asks = m.book.top(self.subs.get(symbol, DEFAULT_DEPTH))
        fp, fs = m.fmt_price, m.fmt_size
        return Out(
            _dumps(
                {
                    "type": "snapshot",
                    "symbol": symbol,
                    "seq": m.seq,
                    "ts": _ms(m.ts),
                    "bids": [[fp(p), fs(s)] for p, s in bids],
                    "asks": [[fp(p), fs(s)] for p, s in asks],
                }
            ),
            kind="snapshot",
        )

    @staticmethod
    def error(reason: str, fatal: bool = False, **extra: object) -> Out:
        msg: dict[str, object] = {"type": "error", "reason": reason}
        if fatal:
            msg["fatal"] = True
        msg.update(extra)
        return Out(_dumps(msg))

    # -- dialect hooks ----------------------------------------------------------------------------
    def on_message(self, text: str) -> list[Out]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self.error("malformed JSON")]
        if not isinstance(msg, dict):
            return [self.error("expected a JSON object")]
        op = msg.get("op")
        if op == "ping":
            pong: dict[str, object] = {"type": "pong"}
            if "id" in msg:
                pong["id"] = msg["id"]
            return [Out(_dumps(pong))]
        if op not in ("subscribe", "unsubscribe", "resync"):
            return [self.error(f"unknown op {str(op)[:40]!r}")]
        symbol = msg.get("symbol")
        if not isinstance(symbol, str) or symbol not in self.markets:
            valid = ", ".join(self.markets)
            shown = str(symbol)[:40]
            return [self.error(f"unknown symbol {shown}; valid: {valid}", fatal=True, symbol=shown)]
        if op == "subscribe":
            depth = msg.get("depth", DEFAULT_DEPTH)
            if not isinstance(depth, int) or isinstance(depth, bool) or depth <= 0:
                return [self.error("depth must be a positive integer", symbol=symbol)]
            self.subs[symbol] = min(depth, MAX_DEPTH)
            ack = Out(_dumps({"type": "subscribed", "symbol": symbol, "depth": self.subs[symbol]}))
            return [ack, self.snapshot(symbol)]
        if op == "unsubscribe":
            self.subs.pop(symbol, None)
            return [Out(_dumps({"type": "unsubscribed", "symbol": symbol}))]
        # resync
        if symbol not in self.subs:
            return [self.error(f"not subscribed to {symbol}", symbol=symbol)]
        return [self.snapshot(symbol)]

    def on_update(self, update: SimUpdate) -> list[Out]:
        symbol = update.symbol
        if symbol not in self.subs:
            return []
        m = self.markets[symbol]
        fp, fs = m.fmt_price, m.fmt_size
        ts = _ms(update.ts)
        out = [
            Out(
                _dumps(
                    {
                        "type": "delta",
                        "symbol": symbol,
                        "seq": update.seq,
                        "prev_seq": update.prev_seq,
                        "ts": ts,
                        "bids": [[fp(p), fs(s)] for p, s in update.bids],
                        "asks": [[fp(p), fs(s)] for p, s in update.asks],
                    }
                ),
                kind="delta",
            )
        ]
        for t in update.trades:
            out.append(
                Out(
                    _dumps(
                        {
                            "type": "trade",
                            "symbol": symbol,
                            "id": t.trade_id,
                            "price": fp(t.price),
                            "size": fs(t.size),
                            "side": t.side.value,
                            "ts": _ms(t.ts),
                            **({"kind": t.kind} if t.kind else {}),
                        }
                    ),
                    kind="trade",
                )
            )
        return out

    def heartbeat(self) -> list[Out]:
        if not self.subs:
            return []
        return [Out(_dumps({"type": "heartbeat", "ts": _ms(time.time())}))]
