"""dYdX v4 Indexer dialect (``wss://indexer.dydx.trade/v4/ws``), written from
../shared/venues/dydx.md and the indexer's ``socks`` service.

- Path ``/v4/ws``. On connect: ``{"type":"connected","connection_id":..,"message_id":0}``.
- ``message_id`` is one counter per connection, raised by one for every subscribe or
  unsubscribe that passes validation (a channel, a known channel, a string id) and for every
  data message sent; a ping or an invalid message leaves it alone, as in the indexer's
  ``socks`` service. ``subscribed`` / ``unsubscribed`` / ``error`` carry the counter as it
  stands (a ``subscribed`` the value its ``subscribe`` set).
- ``{"type":"subscribe","channel":"v4_orderbook"|"v4_trades","id":"BTC-USD","batched":b}``
  is answered by ``subscribed`` with the snapshot in ``contents``: the whole book as
  ``{"price","size"}`` objects, or the recent trades (newest first). Updates follow as
  ``channel_data`` (levels ``[price, size]``, absolute sizes, ``"0"`` deletes) or, batched,
  as ``channel_batch_data`` whose ``contents`` lists the updates of about 250 ms (simulated
  time; also flushed by the once-a-second heartbeat, so a stopped simulator still delivers).
- Refusals, with the indexer's texts: an unknown channel, an id that is no market, a
  second subscribe to the same channel and id. ``{"type":"ping"}`` gets no answer (the
  indexer handles it "by doing nothing"); the venue's liveness check is the WebSocket ping
  the server sends itself (``websockets``), which the client's library answers.
- Trades: ``side`` is the taker's, ``createdAt`` ISO-8601 with milliseconds, ``id`` 24 hex
  digits, ``createdAtHeight`` a block height (one block per second here).
- REST: ``GET /v4/perpetualMarkets[?ticker=]`` (tickSize / stepSize) and
  ``GET /v4/orderbooks/perpetualMarket/{ticker}`` (the book as objects).
- Sizes are coins, as the simulator's, so nothing is converted. Book data frames are marked
  ``delta`` (a dropped one leaves a hole in ``message_id``), ``subscribed`` books ``snapshot``.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

import orjson

from obview.model import LIQUIDATION, Side
from obview.sim.dialects.base import Dialect, Out
from obview.sim.events import on_book

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimTrade, SimUpdate

BOOK = "v4_orderbook"
TRADES = "v4_trades"
CHANNELS = (BOOK, TRADES, "v4_markets", "v4_candles", "v4_subaccounts", "v4_parent_subaccounts")
VERSIONS = {BOOK: "1.0.0", TRADES: "1.1.0"}
BATCH_INTERVAL = 0.25  # s
RECENT_TRADES = 100
#: clobPairId of the markets the simulator serves
CLOB_PAIR = {"BTC-USD": "0", "ETH-USD": "1", "SOL-USD": "5"}


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _native_map() -> Mapping[str, str]:
    from obview.venues.registry import native_map

    return native_map("dydx")


class _Sub:
    """One subscription of this connection: its batching state and last data message id."""

    __slots__ = ("channel", "ticker", "symbol", "batched", "buffer", "flushed", "last_id")

    def __init__(self, channel: str, ticker: str, symbol: str, batched: bool) -> None:
        self.channel = channel
        self.ticker = ticker
        self.symbol = symbol
        self.batched = batched
        self.buffer: list[dict] = []
        self.flushed = 0.0
        self.last_id: int | None = None  # message_id of the last data message sent


class DydxDialect(Dialect):
    name: ClassVar[str] = "dydx"
    paths: ClassVar[tuple[str, ...]] = ("/v4/ws",)

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        super().__init__(markets, path)
        self.connection_id = str(uuid.uuid4())
        self.message_id = 0
        self.subs: dict[tuple[str, str], _Sub] = {}  # (channel, ticker) -> subscription
        self.recent: dict[str, deque[dict]] = {}  # symbol -> trades seen on this connection
        self.pings = 0

    # -- frames -----------------------------------------------------------------------------------
    def _envelope(self, kind: str, **fields: object) -> dict:
        return {
            "type": kind,
            "connection_id": self.connection_id,
            "message_id": self.message_id,
            **fields,
        }

    def _error(self, message: str) -> Out:
        return Out(_dumps(self._envelope("error", message=message)))

    def _snapshot(self, sub: _Sub) -> dict:
        m = self.markets[sub.symbol]
        if sub.channel == BOOK:
            bids, asks = m.book.top(len(m.book))
            fp, fs = m.fmt_price, m.fmt_size
            return {
                "bids": [{"price": fp(p), "size": fs(s)} for p, s in bids],
                "asks": [{"price": fp(p), "size": fs(s)} for p, s in asks],
            }
        return {"trades": list(reversed(self.recent.get(sub.symbol, ())))}

    def _data(self, sub: _Sub, contents: object, batch: bool) -> Out:
        self.message_id += 1
        sub.last_id = self.message_id
        text = _dumps(
            self._envelope(
                "channel_batch_data" if batch else "channel_data",
                id=sub.ticker,
                channel=sub.channel,
                version=VERSIONS[sub.channel],
                contents=contents,
            )
        )
        return Out(text, kind="delta" if sub.channel == BOOK else "trade")

    # -- client frames ----------------------------------------------------------------------------
    def on_connect(self) -> list[Out]:
        return [Out(_dumps(self._envelope("connected")))]

    def on_message(self, text: str) -> list[Out]:
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._error("Invalid message: could not parse")]
        if not isinstance(msg, dict) or not msg.get("type"):
            return [self._error("Invalid message: type is required")]
        kind = msg["type"]
        if kind == "ping":
            self.pings += 1
            return []
        if kind not in ("subscribe", "unsubscribe"):
            return [self._error(f"Invalid message type: {str(kind)[:40]}")]
        channel, ticker = msg.get("channel"), msg.get("id")
        if not channel:
            return [self._error("Invalid subscribe message: channel is required")]
        if channel not in CHANNELS:
            return [self._error(f"Invalid channel: {str(channel)[:40]}")]
        if not isinstance(ticker, str):
            return [self._error(f"Invalid id: {str(ticker)[:40]}")]
        self.message_id += 1  # a valid subscribe or unsubscribe takes a number
        if kind == "unsubscribe":
            self.subs.pop((channel, ticker), None)
            unsub = self._envelope("unsubscribed", channel=channel, id=ticker)
            return [Out(_dumps(unsub))]
        symbol = _native_map().get(ticker)
        if channel not in (BOOK, TRADES) or symbol is None or symbol not in self.markets:
            return [self._error(f"Invalid subscription id for channel: ({channel}-{ticker[:40]})")]
        if (channel, ticker) in self.subs:
            return [
                self._error(f"Invalid subscribe message: already subscribed ({channel}-{ticker})")
            ]
        sub = _Sub(channel, ticker, symbol, bool(msg.get("batched")))
        sub.flushed = self.markets[symbol].ts
        self.subs[(channel, ticker)] = sub
        subscribed = _dumps(
            self._envelope("subscribed", channel=channel, id=ticker, contents=self._snapshot(sub))
        )
        return [Out(subscribed, kind="snapshot" if channel == BOOK else "control")]

    # -- simulator updates ------------------------------------------------------------------------
    def _trade(self, m: SimMarket, t: SimTrade) -> dict:
        return {
            "id": f"{t.trade_id:024x}",
            "side": "BUY" if t.side is Side.BUY else "SELL",
            "size": m.fmt_size(t.size),
            "price": m.fmt_price(t.price),
            "type": "LIQUIDATED" if t.kind == LIQUIDATION else "LIMIT",
            "createdAt": _iso(t.ts),
            "createdAtHeight": str(int(t.ts)),
        }

    def on_update(self, update: SimUpdate) -> list[Out]:
        symbol = update.symbol
        m = self.markets[symbol]
        trades = [self._trade(m, t) for t in on_book(update.trades)]
        if trades:
            self.recent.setdefault(symbol, deque(maxlen=RECENT_TRADES)).extend(trades)
        out: list[Out] = []
        for sub in self.subs.values():
            if sub.symbol != symbol:
                continue
            contents: dict | None = None
            if sub.channel == BOOK:
                fp, fs = m.fmt_price, m.fmt_size
                book: dict[str, list] = {}
                if update.bids:
                    book["bids"] = [[fp(p), fs(s) if s > 0 else "0"] for p, s in update.bids]
                if update.asks:
                    book["asks"] = [[fp(p), fs(s) if s > 0 else "0"] for p, s in update.asks]
                contents = book or None
            elif trades:
                contents = {"trades": trades}
            if contents is None:
                continue
            if not sub.batched:
                out.append(self._data(sub, contents, batch=False))
                continue
            sub.buffer.append(contents)
            if update.ts - sub.flushed >= BATCH_INTERVAL:
                out.extend(self._flush(sub, update.ts))
        return out

    def _flush(self, sub: _Sub, now: float) -> list[Out]:
        sub.flushed = now
        if not sub.buffer:
            return []
        contents, sub.buffer = sub.buffer, []
        return [self._data(sub, contents, batch=True)]

    def heartbeat(self) -> list[Out]:
        out: list[Out] = []
        for sub in self.subs.values():
            if sub.buffer:
                out.extend(self._flush(sub, self.markets[sub.symbol].ts))
        return out

    # -- REST -------------------------------------------------------------------------------------
    @classmethod
    def http(
        cls, markets: dict[str, SimMarket], path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, bytes] | None:
        path = path.rstrip("/")
        served = {t: s for t, s in _native_map().items() if s in markets}
        if path == "/v4/perpetualMarkets":
            ticker = query.get("ticker")
            if ticker is not None and ticker not in served:
                err = {"errors": [{"msg": "ticker must be a valid ticker", "param": "ticker"}]}
                return 400, orjson.dumps(err)
            out = {}
            for t, s in served.items():
                if ticker is not None and t != ticker:
                    continue
                m = markets[s]
                out[t] = {
                    "clobPairId": CLOB_PAIR.get(t, "0"),
                    "ticker": t,
                    "status": "ACTIVE",
                    "oraclePrice": m.fmt_price(m.mid),
                    "tickSize": m.fmt_price(m.tick),
                    "stepSize": m.fmt_size(m.lot),
                    "marketType": "CROSS",
                }
            return 200, orjson.dumps({"markets": out})
        prefix = "/v4/orderbooks/perpetualMarket/"
        if path.startswith(prefix):
            symbol = served.get(path[len(prefix) :])
            if symbol is None:
                return 404, orjson.dumps({"errors": [{"msg": "No perpetual market found"}]})
            m = markets[symbol]
            bids, asks = m.book.top(len(m.book))
            fp, fs = m.fmt_price, m.fmt_size
            book = {
                "bids": [{"price": fp(p), "size": fs(s)} for p, s in bids],
                "asks": [{"price": fp(p), "size": fs(s)} for p, s in asks],
            }
            return 200, orjson.dumps(book)
        return None
