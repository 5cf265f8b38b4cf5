"""OKX v5 public WebSocket dialect, written from the venue notes (shared/venues/okx.md).

``/ws/v5/public``: ``{"op":"subscribe","args":[{"channel":"books","instId":...}, ...]}`` gets one
ack per arg; ``books`` starts with a 400-level snapshot (``prevSeqId`` -1) and then pushes
updates of the 400-level window whenever it changed, each with ``seqId`` / ``prevSeqId`` and a
signed CRC32 checksum over the top 25 levels of the book after the update (pre-2026 style; set
``send_checksum = False`` to send 0 as the live feed does now). ``trades`` pushes fills with the
taker side. Text ``ping`` is answered with ``pong``. Numbers are written as OKX writes them,
without trailing zeros ("97000", "4", "0.5"): the checksum is over those strings.

``{"channel":"liquidation-orders","instType":"SWAP"}`` (OKX docs, "Liquidation orders
channel") takes every simulated swap's liquidations, whichever instruments the connection
subscribed: each simulated liquidation (a run of fills of kind "liq" on one side in one step)
is also pushed there as one order, ``side`` the order's (a long's is a ``sell``, ``posSide``
``long``), ``sz`` its fills' total in contracts, ``bkPx`` its worst fill (the simulator keeps
no margin: a liquidation filled right at its bankruptcy price, ``bkLoss`` "0"). OKX shows at
most one order per contract a one-second period: a second one in the same second is not
pushed (its fills still are, as trades). No snapshot on subscribing. ``liquidations = False``
acts out a server that refuses the channel (code 60018, as for a channel that does not exist).

Sizes are contracts: the simulator's coin sizes divided by ``ctVal``; the simulator's lot is
a whole multiple of the contract lot, so every size converts exactly and the book this
dialect sent is the simulator's book at the same sequence, seen through a 400-level window.
REST: ``/api/v5/public/instruments`` and ``/api/v5/market/books``.
"""

from __future__ import annotations

import itertools
import time
import zlib
from typing import TYPE_CHECKING, ClassVar

import orjson

from obview.model import Side
from obview.sim.dialects.base import Dialect, Out
from obview.sim.events import liquidation_orders, on_book

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimTrade, SimUpdate

DEPTH = 400
LIQUIDATIONS = "liquidation-orders"
#: instTypes the liquidation channel takes (OKX docs, its request parameters)
LIQUIDATION_TYPES = ("SWAP", "FUTURES", "MARGIN", "OPTION")
CHECKSUM_LEVELS = 25
# instId -> contract value in coins (USDT-margined linear swaps)
CT_VAL: dict[str, float] = {"BTC-USDT-SWAP": 0.01, "ETH-USDT-SWAP": 0.1, "SOL-USDT-SWAP": 1.0}

_conn_ids = itertools.count(0xA4D3AE55)


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def _decimals(step: float) -> int:
    d = 0
    while d < 12 and abs(round(step, d) - step) > 1e-12:
        d += 1
    return d


def crc32_signed(text: str) -> int:
    c = zlib.crc32(text.encode())
    return c - (1 << 32) if c >= (1 << 31) else c


def book_checksum(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """Top 25 per side, interleaved bid then ask ("px:sz"), longer side's rest appended."""
    parts: list[str] = []
    for i in range(CHECKSUM_LEVELS):
        if i < len(bids):
            parts += bids[i]
        if i < len(asks):
            parts += asks[i]
    return crc32_signed(":".join(parts))



def _bare(num: str) -> str:
    """A number as OKX writes it: no trailing zeros, no trailing point ("97000", "0.5"); the
    checksum is computed over these very strings."""
    if "." in num:
        num = num.rstrip("0").rstrip(".")
    return num

class _Book:
    """What one connection was sent for one instrument: price string -> size string."""

    __slots__ = ("bids", "asks", "seq")

    def __init__(self) -> None:
        self.bids: dict[float, tuple[str, str]] = {}
        self.asks: dict[float, tuple[str, str]] = {}
        self.seq = -1

    def top(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)[:CHECKSUM_LEVELS]]
        asks = [self.asks[p] for p in sorted(self.asks)[:CHECKSUM_LEVELS]]
        return bids, asks


class OkxDialect(Dialect):
    name: ClassVar[str] = "okx"
    paths: ClassVar[tuple[str, ...]] = ("/ws/v5/public",)
    send_checksum: ClassVar[bool] = True
    #: False acts out OKX's announced removal of the websocket snapshot: subscribing starts
    #: the update stream from the current book without sending it (clients take it over REST);
    #: ``"empty"`` sends a ``snapshot`` push with no levels in its place (a form the removal
    #: might take: the changelog's procedure says to ignore the first event, "action is snapshot")
    send_snapshot: ClassVar[bool | str] = True
    #: False: the liquidation channel is refused (60018), as by a server without it
    liquidations: ClassVar[bool] = True

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        super().__init__(markets, path)
        self.conn_id = f"{next(_conn_ids) & 0xFFFFFFFF:08x}"
        self.books: dict[str, _Book] = {}  # instId -> what this client was sent
        self.trades: set[str] = set()  # instIds with a trades subscription
        self.native_of: dict[str, str] = {}  # symbol -> instId
        self.liq_types: set[str] = set()  # instTypes with a liquidation-orders subscription
        self.liq_second: dict[str, int] = {}  # instId -> the second of its last order pushed

    # -- conversions ------------------------------------------------------------------------------
    @staticmethod
    def ct_val(inst_id: str) -> float:
        return CT_VAL.get(inst_id, 1.0)

    def _size_fmt(self, m: SimMarket, inst_id: str):
        ct = self.ct_val(inst_id)
        d = _decimals(round(m.lot / ct, 12))

        def fmt(coins: float) -> str:
            return _bare(f"{coins / ct:.{d}f}")

        return fmt

    @staticmethod
    def _price_fmt(m: SimMarket):
        fp = m.fmt_price
        return lambda p: _bare(fp(p))

    def _window(self, m: SimMarket, inst_id: str) -> tuple[dict, dict]:
        fp, fs = self._price_fmt(m), self._size_fmt(m, inst_id)
        bids, asks = m.book.top(DEPTH)
        return ({p: (fp(p), fs(s)) for p, s in bids}, {p: (fp(p), fs(s)) for p, s in asks})

    # -- frames -----------------------------------------------------------------------------------
    def _push(self, inst_id: str, action: str, data: dict) -> str:
        return _dumps(
            {"arg": {"channel": "books", "instId": inst_id}, "action": action, "data": [data]}
        )

    def snapshot(self, inst_id: str) -> Out:
        symbol = self.native_to_symbol(inst_id)
        m = self.markets[symbol]  # type: ignore[index]
        book = _Book()
        book.bids, book.asks = self._window(m, inst_id)
        book.seq = m.seq
        self.books[inst_id] = book
        bids, asks = book.top()
        data = {
            "asks": [[*book.asks[p], "0", "1"] for p in sorted(book.asks)],
            "bids": [[*book.bids[p], "0", "1"] for p in sorted(book.bids, reverse=True)],
            "ts": str(int(round(m.ts * 1000))),
            "checksum": book_checksum(bids, asks) if self.send_checksum else 0,
            "prevSeqId": -1,
            "seqId": m.seq,
        }
        return Out(self._push(inst_id, "snapshot", data), kind="snapshot")

    def _empty_snapshot(self, inst_id: str, snap: Out) -> Out:
        data = orjson.loads(snap.text)["data"][0]
        data.update(asks=[], bids=[], checksum=0)
        return Out(self._push(inst_id, "snapshot", data), kind="snapshot")

    def _update(self, inst_id: str, m: SimMarket, update: SimUpdate) -> Out | None:
        book = self.books[inst_id]
        new_bids, new_asks = self._window(m, inst_id)
        rows: dict[str, list[list[str]]] = {}
        for name, old, new, rev in (
            ("bids", book.bids, new_bids, True),
            ("asks", book.asks, new_asks, False),
        ):
            changed = [p for p, v in new.items() if old.get(p) != v]
            gone = [p for p in old if p not in new]
            out = [[*new[p], "0", "1"] for p in changed]
            out += [[old[p][0], "0", "0", "0"] for p in gone]
            out.sort(key=lambda r: float(r[0]), reverse=rev)
            rows[name] = out
        if not rows["bids"] and not rows["asks"]:
            return None  # OKX pushes books only when the window changed
        book.bids, book.asks = new_bids, new_asks
        prev, book.seq = book.seq, update.seq
        bids, asks = book.top()
        checksum = book_checksum(bids, asks) if self.send_checksum else 0
        data = {
            "asks": rows["asks"],
            "bids": rows["bids"],
            "ts": str(int(round(update.ts * 1000))),
            "checksum": checksum,
            "prevSeqId": prev,
            "seqId": update.seq,
        }
        text = self._push(inst_id, "update", data)
        corrupt = None
        if checksum:
            bad = checksum ^ 1 or 3  # any other non-zero value
            corrupt = self._push(inst_id, "update", {**data, "checksum": bad})
        return Out(text, kind="delta", corrupt=corrupt)

    def _error(self, code: str, msg: str) -> Out:
        return Out(_dumps({"event": "error", "code": code, "msg": msg, "connId": self.conn_id}))

    def _liquidation_op(self, op: str, arg: dict) -> Out:
        kind = arg.get("instType")
        if not self.liquidations or kind not in LIQUIDATION_TYPES:
            return self._error(
                "60018",
                f"Wrong URL or channel:{LIQUIDATIONS},instType:{str(kind)[:20]} doesn't exist. "
                "Please use the correct URL, channel and parameters referring to API document.",
            )
        if op == "subscribe":
            self.liq_types.add(kind)
        else:
            self.liq_types.discard(kind)
        return Out(
            _dumps(
                {
                    "event": op,
                    "arg": {"channel": LIQUIDATIONS, "instType": kind},
                    "connId": self.conn_id,
                }
            )
        )

    def _inst_id(self, symbol: str) -> str | None:
        """The instId of a simulated market, subscribed here or not (None: not an OKX one)."""
        from obview.venues.registry import get_adapter

        return self.native_of.get(symbol) or get_adapter(self.name).symbols.get(symbol)

    def _liquidation(self, m: SimMarket, symbol: str, trades: list[SimTrade]) -> Out | None:
        """The step's first liquidation as OKX pushes it, if its contract has had none pushed
        in this one-second period."""
        from obview.venues.okx import inst_type

        orders = liquidation_orders(trades)
        if not orders:
            return None
        run = orders[0]  # one order per contract a second: the step's first
        inst_id = self._inst_id(symbol)
        if inst_id is None:
            return None
        kind = inst_type(inst_id)
        if kind not in self.liq_types:
            return None
        ms = int(round(run[0].ts * 1000))
        if self.liq_second.get(inst_id) == ms // 1000:
            return None  # one order per contract a one-second period
        self.liq_second[inst_id] = ms // 1000
        sell = run[0].side is Side.SELL  # a long's order sells
        worst = min(t.price for t in run) if sell else max(t.price for t in run)
        family = inst_id.removesuffix("-SWAP")
        detail = {
            "bkLoss": "0",
            "bkPx": _bare(m.fmt_price(worst)),
            "ccy": "",
            "posSide": "long" if sell else "short",
            "side": "sell" if sell else "buy",
            "sz": self._size_fmt(m, inst_id)(sum(t.size for t in run)),
            "ts": str(ms),
        }
        item = {"details": [detail], "instFamily": family, "instId": inst_id, "instType": kind, "uly": family}
        push = {"arg": {"channel": LIQUIDATIONS, "instType": kind}, "data": [item]}
        return Out(_dumps(push), kind="trade")

    # -- hooks ------------------------------------------------------------------------------------
    def on_message(self, text: str) -> list[Out]:
        if text == "ping":
            return [Out("pong")]
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._error("60012", f"Invalid request: {text[:60]}")]
        if not isinstance(msg, dict) or msg.get("op") not in ("subscribe", "unsubscribe"):
            return [self._error("60012", f"Invalid request: {text[:60]}")]
        op = msg["op"]
        args = msg.get("args")
        if not isinstance(args, list) or not args:
            return [self._error("60012", "Invalid request: args")]
        out: list[Out] = []
        for arg in args:
            if not isinstance(arg, dict):
                out.append(self._error("60012", "Invalid request: arg"))
                continue
            channel, inst_id = arg.get("channel"), arg.get("instId")
            if channel == LIQUIDATIONS:
                out.append(self._liquidation_op(op, arg))
                continue
            symbol = self.native_to_symbol(inst_id) if isinstance(inst_id, str) else None
            if channel not in ("books", "trades"):
                out.append(
                    self._error("60018", f"Wrong URL or channel:{str(channel)[:40]} doesn't exist.")
                )
                continue
            if symbol is None or symbol not in self.markets:
                out.append(
                    self._error(
                        "60018",
                        f"Wrong URL or channel:{channel},instId:{str(inst_id)[:40]} doesn't exist.",
                    )
                )
                continue
            self.native_of[symbol] = inst_id
            ack = Out(
                _dumps(
                    {
                        "event": op,
                        "arg": {"channel": channel, "instId": inst_id},
                        "connId": self.conn_id,
                    }
                )
            )
            out.append(ack)
            if op == "subscribe":
                if channel == "books":
                    snap = self.snapshot(inst_id)  # also the base the updates are diffed from
                    if self.send_snapshot == "empty":
                        out.append(self._empty_snapshot(inst_id, snap))
                    elif self.send_snapshot:
                        out.append(snap)
                else:
                    self.trades.add(inst_id)
            elif channel == "books":
                self.books.pop(inst_id, None)
            else:
                self.trades.discard(inst_id)
        return out

    def on_update(self, update: SimUpdate) -> list[Out]:
        m = self.markets[update.symbol]
        out: list[Out] = []
        inst_id = self.native_of.get(update.symbol)
        if inst_id is not None:
            self._instrument_update(inst_id, m, update, out)
        if self.liq_types and update.trades:
            liq = self._liquidation(m, update.symbol, update.trades)
            if liq is not None:
                out.append(liq)
        return out

    def _instrument_update(self, inst_id: str, m: SimMarket, update: SimUpdate, out: list[Out]) -> None:
        """The book and trades pushes of an instrument this connection subscribed."""
        if inst_id in self.books:
            o = self._update(inst_id, m, update)
            if o is not None:
                out.append(o)
        trades = on_book(update.trades)
        if inst_id in self.trades and trades:
            fs = self._size_fmt(m, inst_id)
            data = [
                {
                    "instId": inst_id,
                    "tradeId": str(t.trade_id),
                    "px": _bare(m.fmt_price(t.price)),
                    "sz": fs(t.size),
                    "side": t.side.value,
                    "ts": str(int(round(t.ts * 1000))),
                    "count": "1",
                }
                for t in trades
            ]
            out.append(
                Out(
                    _dumps({"arg": {"channel": "trades", "instId": inst_id}, "data": data}),
                    kind="trade",
                )
            )

    # -- REST -------------------------------------------------------------------------------------
    @classmethod
    def http(
        cls, markets: dict[str, SimMarket], path: str, query: dict[str, str], body: bytes
    ) -> tuple[int, bytes] | None:
        from obview.venues.registry import native_map

        if path not in ("/api/v5/public/instruments", "/api/v5/market/books"):
            return None
        inst_id = query.get("instId", "")
        symbol = native_map(cls.name).get(inst_id)
        if symbol is None or symbol not in markets:
            err = {"code": "51001", "msg": "Instrument ID does not exist", "data": []}
            return 200, orjson.dumps(err)
        m = markets[symbol]
        ct = cls.ct_val(inst_id)
        if path == "/api/v5/public/instruments":
            base, quote_ccy = inst_id.split("-")[:2]
            lot = _bare(f"{m.lot / ct:.{_decimals(round(m.lot / ct, 12))}f}")
            data = {
                "instType": "SWAP", "instId": inst_id, "uly": f"{base}-{quote_ccy}",
                "instFamily": f"{base}-{quote_ccy}", "baseCcy": "", "quoteCcy": "", "settleCcy": quote_ccy,
                "ctVal": repr(ct), "ctMult": "1", "ctValCcy": base, "ctType": "linear",
                "tickSz": _bare(m.fmt_price(m.tick)), "lotSz": lot, "minSz": lot, "state": "live",
            }  # fmt: skip
            return 200, orjson.dumps({"code": "0", "msg": "", "data": [data]})
        depth = min(int(query.get("sz", "1") or 1), DEPTH)
        dialect = cls(markets, "/rest")
        fs = dialect._size_fmt(m, inst_id)
        bids, asks = m.book.top(depth)
        data = {
            "asks": [[_bare(m.fmt_price(p)), fs(s), "0", "1"] for p, s in asks],
            "bids": [[_bare(m.fmt_price(p)), fs(s), "0", "1"] for p, s in bids],
            "ts": str(int(round(time.time() * 1000))),
            "seqId": m.seq,
        }
        return 200, orjson.dumps({"code": "0", "msg": "", "data": [data]})
