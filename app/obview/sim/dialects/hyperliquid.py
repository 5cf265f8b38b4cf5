"""Hyperliquid dialect: the simulator as ``wss://api.hyperliquid.xyz/ws``.

Written from the venue fact sheet: after the handshake the server greets with the plain text
``Websocket connection established.``; ``{"method":"subscribe","subscription":{"type":"l2Book",
"coin":"BTC"}}`` is acked with a ``subscriptionResponse`` echoing the subscription (optional
fields filled in) and the book follows; every ``l2Book`` message is a full snapshot of the top
20 levels per side, bids then asks, best first, ``px``/``sz`` as decimal strings, ``n`` the
order count, ``time`` in ms (5 levels a side for a subscription with ``"fast": true``).
``trades`` messages carry a list of prints with ``side`` = the
aggressing side (``B`` buy, ``A`` sell); the first one, right after the subscription's ack,
repeats the market's recent prints (the fact sheet's "may contain recent trades"). ``{"method":"ping"}`` is answered with
``{"channel":"pong"}``; errors are ``{"channel":"error","data":"<text>"}``.

Prices on Hyperliquid have at most 5 significant figures (integers always allowed), while the
simulator quotes finer ticks: levels are aggregated into 5-significant-figure buckets, bids
rounded down and asks up so the book never crosses, sizes summed. The encoded book of the
last message per coin is kept in ``sent_books`` so tests can compare what the client shows.
The info endpoint is POST-only and the simulator serves GET, so instrument facts fall back
to the adapter's defaults against the simulator.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, ClassVar

import orjson

from obview.model import Level, Side
from obview.sim.dialects.base import Dialect, Out
from obview.sim.events import SimUpdate, on_book

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket

GREETING = "Websocket connection established."
LEVELS = 20
FAST_LEVELS = 5  # an l2Book subscription with "fast": true
RECENT = 10  # past prints repeated by the first trades push
SIG_FIGS = 5
_ONE = Decimal(1)


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _ms(ts: float) -> int:
    return int(round(ts * 1000))


def round_sig(price: Decimal, rounding: str) -> Decimal:
    """``price`` to 5 significant figures, but never coarser than a whole unit."""
    exp = min(price.adjusted() - (SIG_FIGS - 1), 0)
    return price.quantize(_ONE.scaleb(exp), rounding=rounding)


def fmt_px(price: Decimal) -> str:
    s = f"{price:f}"
    return s if "." in s else s + ".0"


class HyperliquidDialect(Dialect):
    name: ClassVar[str] = "hyperliquid"
    paths: ClassVar[tuple[str, ...]] = ("/ws",)

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        super().__init__(markets, path)
        self.books: dict[str, str] = {}  # symbol -> coin, l2Book subscribed
        self.fast: set[str] = set()  # symbols whose l2Book subscription asked for "fast": true
        self.trades: dict[str, str] = {}  # symbol -> coin, trades subscribed
        #: coin -> (time ms, bids, asks) of the last l2Book sent, as floats
        self.sent_books: dict[str, tuple[int, list[Level], list[Level]]] = {}

    # -- encoding ---------------------------------------------------------------------------
    def encode_book(self, symbol: str, coin: str, ts: float) -> Out:
        m = self.markets[symbol]
        n = FAST_LEVELS if symbol in self.fast else LEVELS
        bids = self._side(m, True, n)
        asks = self._side(m, False, n)
        t = _ms(ts)
        self.sent_books[coin] = (
            t,
            [(float(p), float(s)) for p, s, _ in bids],
            [(float(p), float(s)) for p, s, _ in asks],
        )
        levels = [
            [{"px": fmt_px(p), "sz": s, "n": n} for p, s, n in bids],
            [{"px": fmt_px(p), "sz": s, "n": n} for p, s, n in asks],
        ]
        msg = {"channel": "l2Book", "data": {"coin": coin, "time": t, "levels": levels}}
        return Out(_dumps(msg), kind="snapshot")

    @staticmethod
    def _side(m: SimMarket, is_bid: bool, levels: int = 0) -> list[tuple[Decimal, str, int]]:
        """Top ``levels`` (``LEVELS``) 5-significant-figure buckets of one side: (px, sz text,
        count)."""
        levels = levels or LEVELS
        side = m.book.bids if is_bid else m.book.asks
        keys = reversed(side.keys()) if is_bid else iter(side.keys())
        rounding = ROUND_FLOOR if is_bid else ROUND_CEILING
        lot = Decimal(m.fmt_size(m.lot))
        out: list[tuple[Decimal, str, int]] = []
        cur: Decimal | None = None
        lots = 0
        n = 0
        for p in keys:
            b = round_sig(Decimal(m.fmt_price(p)), rounding)
            if b != cur:
                if cur is not None:
                    out.append((cur, m.fmt_size(float(lots * lot)), n))
                    if len(out) >= levels:
                        return out
                cur, lots, n = b, 0, 0
            lots += round(side[p] / m.lot)
            n += 1
        if cur is not None:
            out.append((cur, m.fmt_size(float(lots * lot)), n))
        return out

    def encode_trades(self, symbol: str, coin: str, update: SimUpdate) -> Out | None:
        trades = on_book(update.trades)
        if not trades:
            return None
        m = self.markets[symbol]
        data = []
        for t in trades:
            # a taker buy lifted asks (bucketed up), a taker sell hit bids (bucketed down)
            rounding = ROUND_CEILING if t.side is Side.BUY else ROUND_FLOOR
            px = round_sig(Decimal(m.fmt_price(t.price)), rounding)
            data.append(
                {
                    "coin": coin,
                    "side": "B" if t.side is Side.BUY else "A",
                    "px": fmt_px(px),
                    "sz": m.fmt_size(t.size),
                    "time": _ms(t.ts),
                    "hash": f"0x{t.trade_id:064x}",
                    "tid": t.trade_id,
                    "users": ["0x" + "0" * 40, "0x" + "0" * 40],
                }
            )
        return Out(_dumps({"channel": "trades", "data": data}), kind="trade")

    @staticmethod
    def error(text: str) -> Out:
        return Out(_dumps({"channel": "error", "data": text}))

    # -- dialect hooks ----------------------------------------------------------------------
    def on_connect(self) -> list[Out]:
        return [Out(GREETING)]

    def on_message(self, text: str) -> list[Out]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self.error(f"Invalid message: {text[:60]}")]
        if not isinstance(msg, dict):
            return [self.error(f"Invalid message: {text[:60]}")]
        method = msg.get("method")
        if method == "ping":
            return [Out('{"channel":"pong"}')]
        if method not in ("subscribe", "unsubscribe"):
            return [self.error(f"Unknown method: {str(method)[:40]}")]
        sub = msg.get("subscription")
        if not isinstance(sub, dict) or sub.get("type") not in ("l2Book", "trades"):
            return [self.error(f"Invalid subscription {_dumps(sub)[:200]}")]
        coin = sub.get("coin")
        symbol = self.native_to_symbol(coin) if isinstance(coin, str) else None
        if symbol is None or symbol not in self.markets:
            return [self.error(f"Invalid subscription {_dumps(sub)[:200]}")]
        kind = sub["type"]
        table = self.books if kind == "l2Book" else self.trades
        echo: dict[str, object] = {"type": kind, "coin": coin}
        if kind == "l2Book":
            echo.update(nSigFigs=sub.get("nSigFigs"), mantissa=sub.get("mantissa"))
            if sub.get("fast"):
                echo["fast"] = True
        if method == "subscribe":
            if symbol in table:
                return [self.error(f"Already subscribed: {_dumps({'type': kind, 'coin': coin})}")]
            table[symbol] = coin
            if kind == "l2Book" and sub.get("fast"):
                self.fast.add(symbol)  # 5 levels a side (pushed every 0.5 s by the venue)
            ack = Out(
                _dumps(
                    {
                        "channel": "subscriptionResponse",
                        "data": {"method": "subscribe", "subscription": echo},
                    }
                )
            )
            if kind == "l2Book":
                return [ack, self.encode_book(symbol, coin, self.markets[symbol].ts)]
            # the venue's first trades push after subscribing repeats recent prints
            m = self.markets[symbol]
            past = SimUpdate(symbol, m.seq, m.seq, m.ts, trades=list(m.recent_trades)[-RECENT:])
            first = self.encode_trades(symbol, coin, past)
            return [ack] if first is None else [ack, first]
        if symbol not in table:
            return [self.error(f"Already unsubscribed: {_dumps({'type': kind, 'coin': coin})}")]
        del table[symbol]
        if kind == "l2Book":
            self.fast.discard(symbol)
        return [
            Out(
                _dumps(
                    {
                        "channel": "subscriptionResponse",
                        "data": {"method": "unsubscribe", "subscription": echo},
                    }
                )
            )
        ]

    def on_update(self, update: SimUpdate) -> list[Out]:
        symbol = update.symbol
        out: list[Out] = []
        coin = self.trades.get(symbol)
        if coin is not None:
            tr = self.encode_trades(symbol, coin, update)
            if tr is not None:
                out.append(tr)
        coin = self.books.get(symbol)
        if coin is not None:
            out.append(self.encode_book(symbol, coin, update.ts))
        return out
