"""Hyperliquid perps: ``l2Book`` full-book snapshots and ``trades`` on one WebSocket.

Protocol (see the venue fact sheet): every ``l2Book`` message is the whole top of the book
(up to 20 levels per side by default, bids then asks, best first, prices and sizes as decimal
strings, ``time`` in ms). There are no deltas, sequence numbers or checksums, so nothing can
be resynced: a missed message heals with the next one (ResyncMode.NONE). A message older than
the last applied one is dropped so a reordered frame never overwrites a newer book.

Trades carry ``side`` = the aggressing side: ``B`` taker buy, ``A`` taker sell. The first
``trades`` message after (re)subscribing may repeat recent prints, so trades are de-duplicated
on ``(time, coin, tid)``, and a push within ``HISTORY_WINDOW`` of the subscription's ack is
history: remembered, not shown as live flow (at worst a second of real prints is missed on
subscribing, never a burst of old ones counted in the minute's buy/sell volume).

Heartbeat: the server closes a connection it has not written to for 60 s; the client sends
``{"method":"ping"}`` (answered with ``{"channel":"pong"}``) during quiet periods. The default
book stream is slow (about 2-5 s between pushes in 2026, and it has changed), so the stale
watchdog follows the cadence it measures: STALE after 4x the typical interval between books
(8-60 s), and 20 s until that is known.

Two book streams: since mid-2026 the default ``l2Book`` pushes 20 levels every 2-5 s, and
``"fast": true`` 5 levels every 0.5 s (the venue's announcement, several SDKs, a live check by
one of them). A message does not say which subscription produced it, so the fast one has a
connection of its own (stream ``fast``). The book shown is the newest of the two: the fast
levels, with the default book's levels beyond the fifth, unless the default book is the newer
or no fast push came for ``FAST_MAX_AGE`` s; a default book more than ``SLOW_MAX_LAG`` s behind
the fast one is not shown beyond them (``TwoBooks`` in ``hyperliquid_book``). Only the default
stream decides that the book is whole (its ``StreamSpec.book``). A venue that refuses the flag
leaves the default book alone: the fast stream's pongs keep it quiet, its error is shown.

Fast path: ``parse_fast`` reads ``l2Book`` and ``trades`` messages with a typed decoder (prices
and sizes converted and checked in C); anything else, and any integer ``parse`` would read
differently (a numeric string, a value outside orjson's integer range), goes to ``parse``.

Tick: Hyperliquid has no fixed tick. A price may have at most 5 significant figures and at
most ``6 - szDecimals`` decimals (integer prices are always allowed), so the tick depends on
the price magnitude; ``price_tick`` computes it and the instrument request
(``metaAndAssetCtxs``) supplies both ``szDecimals`` and the current mark price.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Annotated, ClassVar, Literal

import msgspec

from obview.book import OrderBook
from obview.model import BookSnapshot, Instrument, Side, Trade
from obview.venues.base import (
    MAX_NUMBER,
    Event,
    FastMiss,
    FrameError,
    HttpRequest,
    Price,
    ResyncMode,
    Size,
    StreamSpec,
    VenueAdapter,
    VenueError,
    dumps,
    loads,
)
from obview.venues.hyperliquid_book import (  # noqa: F401 (the merge's limits, re-exported)
    FAST,
    FAST_LEVELS,
    FAST_MAX_AGE,
    SLOW_MAX_LAG,
    HlBook,
    HyperliquidSync,
    TwoBooks,
)

GREETING = "Websocket connection established"
PING = '{"method":"ping"}'
SIG_FIGS = 5
PERP_MAX_DECIMALS = 6

# Built-in facts used when the info endpoint cannot be reached: szDecimals from the venue's
# ``meta`` (BTC 5 per the docs' example; ETH 4, SOL 2) and a reference price that only sets
# the magnitude of the tick until a real price is known.
DEFAULTS: dict[str, tuple[int, float]] = {
    "BTC": (5, 100_000.0),
    "ETH": (4, 3_000.0),
    "SOL": (2, 150.0),
}


def price_decimals(price: float, sz_decimals: int, max_decimals: int = PERP_MAX_DECIMALS) -> int:
    """Decimals allowed at ``price``: 5 significant figures, at most ``max - szDecimals``."""
    limit = max(max_decimals - sz_decimals, 0)
    if price <= 0 or not math.isfinite(price):
        return limit
    exp = math.floor(math.log10(price))
    if 10.0 ** (exp + 1) <= price:  # log10 rounding just below a power of ten
        exp += 1
    return min(max(SIG_FIGS - 1 - exp, 0), limit)


def price_tick(price: float, sz_decimals: int, max_decimals: int = PERP_MAX_DECIMALS) -> float:
    """Smallest price step at ``price`` (1 whenever the integer part has 5+ digits)."""
    d = price_decimals(price, sz_decimals, max_decimals)
    return round(10.0**-d, d)


# -- typed decoders of the hot frames (parse_fast) ----------------------------------------------
#: an integer the slow path's orjson also reads as an integer (larger ones it reads as floats)
_Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


#: a trades push within this many seconds of the trades subscription's ack repeats recent prints
HISTORY_WINDOW = 1.0

class _Level(msgspec.Struct, gc=False):
    px: Price
    sz: Size


class _Book(msgspec.Struct, gc=False):
    coin: str
    time: _Int | str  # a string stays one: ``parse`` refuses it, so parse_fast leaves it there
    levels: tuple[list[_Level], list[_Level]]


class _BookMsg(msgspec.Struct, tag_field="channel", tag="l2Book", gc=False):
    data: _Book


class _Trade(msgspec.Struct, gc=False):
    coin: str
    side: Literal["B", "A"]
    px: Price
    sz: Size
    time: _Int | str
    tid: _Int | float | str  # a float stays one: parse prints 5.0 as "5.0", not "5"


class _TradesMsg(msgspec.Struct, tag_field="channel", tag="trades", gc=False):
    data: list[_Trade]


_decode = msgspec.json.Decoder(_BookMsg | _TradesMsg, strict=False).decode


class HyperliquidAdapter(VenueAdapter):
    """Hyperliquid perpetuals (USDC-margined, sizes in coins)."""

    name = "hyperliquid"
    title = "Hyperliquid"
    symbols: ClassVar[dict[str, str]] = {"BTC-PERP": "BTC", "ETH-PERP": "ETH", "SOL-PERP": "SOL"}
    resync_mode = ResyncMode.NONE
    default_endpoint = "wss://api.hyperliquid.xyz"
    default_rest_endpoint = "https://api.hyperliquid.xyz"
    ws_path = "/ws"
    channel: ClassVar[str] = "l2Book full snapshots (20 levels, ~2-5 s; the top 5 every 0.5 s) + trades; no seq/checksum"

    #: levels per side in a default l2Book message
    depth: ClassVar[int] = 20
    #: no book for this long (s) = STALE until the cadence is measured: well above the slow
    #: default cadence (up to 5 s)
    stale_after: ClassVar[float] = 20.0
    #: then 4x the measured median interval between books, within 8-60 s (the cadence has
    #: changed twice in 2026: 0.5 s, 2 s, up to 5 s; ``fast`` books come every 0.5 s)
    stale_cadence: ClassVar[tuple[float, float, float]] = (4.0, 8.0, 60.0)
    #: client ping cadence (s); the server drops connections silent for 60 s
    ping_interval: ClassVar[float] = 25.0
    trade_memory: ClassVar[int] = 2000

    def __init__(
        self,
        symbol: str,
        *,
        endpoint: str | None = None,
        rest_endpoint: str | None = None,
        instrument: str | None = None,
    ) -> None:
        # (an overridden endpoint also moves the REST base: VenueAdapter derives it)
        super().__init__(
            symbol, endpoint=endpoint, rest_endpoint=rest_endpoint, instrument=instrument
        )
        self._seen_trades: set[tuple[int, str, int]] = set()
        #: a trades push before this local time is the one that follows the subscription: past
        self._history_until: float | None = None
        self._seen_order: deque[tuple[int, str, int]] = deque()
        #: the last book of each stream, the default (20 levels) and the fast one (5), merged
        self._books = TwoBooks(self.name, self.symbol)

    # -- connection -------------------------------------------------------------------------
    def _sub(self, kind: str, method: str = "subscribe", **extra: object) -> str:
        return dumps({"method": method, "subscription": {"type": kind, "coin": self.native, **extra}})

    def streams(self) -> list[StreamSpec]:
        return [
            StreamSpec(
                name="ws",
                url=self.ws_url(),
                subscribe=[self._sub("l2Book"), self._sub("trades")],
                book=True,
                trades=True,
                ping_interval=self.ping_interval,
                ping_frame=PING,
                stale_after=self.stale_after,
                stale_cadence=self.stale_cadence,
            ),
            # the fast top of the book: its pushes only make the book newer, never decide that
            # it is whole (the default stream does), and its pongs keep it quiet where the venue
            # refuses the flag, so it is reconnected only when it stops answering altogether
            StreamSpec(
                name=FAST,
                url=self.ws_url(),
                subscribe=[self._sub("l2Book", fast=True)],
                book=False,
                trades=False,
                ping_interval=self.ping_interval,
                ping_frame=PING,
                stale_after=60.0,
            ),
        ]

    def merged(self, stream: str, snap: BookSnapshot) -> BookSnapshot:
        """The book to show after ``snap`` came on ``stream`` (``TwoBooks.merged``)."""
        return self._books.merged(stream, snap)

    def resubscribe_frames(self, stream: str) -> list[str]:
        # unsubscribe first: a second subscribe to the same book is refused ("Already subscribed")
        return [self._sub("l2Book", "unsubscribe"), self._sub("l2Book")]

    # -- parsing ----------------------------------------------------------------------------
    def parse_fast(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event] | None:
        # l2Book and trades messages; the greeting, acks, pongs and errors go to parse()
        try:
            msg = _decode(frame)
        except FastMiss:
            return None
        data = msg.data
        native = self.native
        if msg.__class__ is _BookMsg:
            if data.coin != native:
                return []
            t = data.time
            if t.__class__ is not int:
                return None
            bids, asks = data.levels
            snap = BookSnapshot(
                self.name,
                self.symbol,
                [(lv.px, lv.sz) for lv in bids],
                [(lv.px, lv.sz) for lv in asks],
                None,
                t / 1000.0,
                ts_local,
            )
            return [self.merged(stream, snap)]
        # decide everything before the first trade is remembered: a None must leave the
        # de-duplication memory as it was, for parse() to see the frame afresh
        for tr in data:
            if tr.time.__class__ is not int or tr.tid.__class__ is not int:
                return None
        past = self._past(ts_local)
        out: list[Event] = []
        for tr in data:
            if tr.coin != native or not self._remember((tr.time, native, tr.tid)) or past:
                continue
            out.append(
                Trade(
                    self.name,
                    self.symbol,
                    tr.px,
                    tr.sz,
                    Side.BUY if tr.side == "B" else Side.SELL,
                    str(tr.tid),
                    tr.time / 1000.0,
                    ts_local,
                )
            )
        return out

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        head = (
            frame[:64].lstrip()
            if isinstance(frame, str)
            else frame[:64].lstrip().decode("utf-8", "replace")
        )
        if head.startswith(GREETING):
            return []
        msg = loads(frame)
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        ch = msg.get("channel")
        data = msg.get("data")
        if ch == "l2Book":
            return [self.merged(stream, snap) for snap in self._book(data, ts_local)]
        if ch == "trades":
            return self._trades(data, ts_local)
        if ch == "subscriptionResponse":
            sub = data.get("subscription") if isinstance(data, dict) else None
            if isinstance(sub, dict) and sub.get("type") == "trades" and data.get("method") == "subscribe":
                self._history_until = ts_local + HISTORY_WINDOW
            return []
        if ch == "pong":
            return []
        if ch == "error":
            return [VenueError(stream, str(data))]
        if ch is None:
            raise FrameError("frame without channel")
        return []  # channels this market does not use

    def _book(self, data: dict, ts_local: float) -> list[Event]:
        if data["coin"] != self.native:
            return []
        levels = data["levels"]
        if len(levels) != 2:
            raise FrameError(f"l2Book levels has {len(levels)} sides")
        bids = [(float(lv["px"]), float(lv["sz"])) for lv in levels[0]]
        asks = [(float(lv["px"]), float(lv["sz"])) for lv in levels[1]]
        for p, sz in (*bids, *asks):
            # refused here, not only by the pipeline after it: ``merged`` keeps a stream's last
            # book to complete the other's, and a NaN or infinite level kept there reached the
            # book shown with the next good push
            if not (0.0 < p < MAX_NUMBER and 0.0 <= sz < MAX_NUMBER):
                raise FrameError(f"price or size not a finite positive number below {MAX_NUMBER:g}")
        return [
            BookSnapshot(
                self.name,
                self.symbol,
                bids,
                asks,
                ts_exchange=data["time"] / 1000.0,
                ts_local=ts_local,
            )
        ]

    def _past(self, ts_local: float) -> bool:
        """Whether this trades push is the one right after subscribing: recent prints repeated,
        remembered (so none shows twice) but not shown as live flow."""
        until = self._history_until
        if until is None:
            return False
        self._history_until = None
        return ts_local <= until

    def _trades(self, data: list, ts_local: float) -> list[Event]:
        if not isinstance(data, list):
            raise FrameError("trades data is not a list")
        past = self._past(ts_local)
        out: list[Event] = []
        for t in data:
            if t["coin"] != self.native:
                continue
            side = t["side"]
            if side == "B":
                taker = Side.BUY
            elif side == "A":
                taker = Side.SELL
            else:
                raise FrameError(f"unknown trade side {side!r}")
            key = (int(t["time"]), t["coin"], int(t.get("tid", 0)))
            if (t.get("tid") is not None and not self._remember(key)) or past:
                continue
            out.append(
                Trade(
                    self.name,
                    self.symbol,
                    float(t["px"]),
                    float(t["sz"]),
                    taker,
                    str(t.get("tid", "")),
                    t["time"] / 1000.0,
                    ts_local,
                )
            )
        return out

    def _remember(self, key: tuple[int, str, int]) -> bool:
        """True when the trade is new; bounded memory of recent ids."""
        if key in self._seen_trades:
            return False
        self._seen_trades.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > self.trade_memory:
            self._seen_trades.discard(self._seen_order.popleft())
        return True

    # -- book sync --------------------------------------------------------------------------
    def make_sync(self, book: OrderBook) -> HyperliquidSync:
        sync = HyperliquidSync(book)
        sync.on_reset = self.forget_books
        return sync

    def forget_books(self) -> None:
        """Forget both streams' last books (the book shown was reset)."""
        self._books.forget()

    # -- instrument facts -------------------------------------------------------------------
    def instrument_for(self, sz_decimals: int, price: float) -> Instrument:
        """Facts for this coin with the tick that applies at ``price``."""
        return Instrument(
            venue=self.name,
            symbol=self.symbol,
            native=self.native,
            tick=price_tick(price, sz_decimals),
            lot=round(10.0**-sz_decimals, sz_decimals),
            size_unit="base",
            base=self.native.split(":")[-1],
            quote="USDC",
        )

    def default_instrument(self) -> Instrument:
        sz_decimals, ref_price = DEFAULTS.get(self.native, (2, 100.0))
        return self.instrument_for(sz_decimals, ref_price)

    def instrument_request(self) -> HttpRequest:
        # metaAndAssetCtxs = [meta, assetCtxs]: szDecimals and the mark price in one call
        return HttpRequest(self.rest_endpoint + "/info", body=b'{"type":"metaAndAssetCtxs"}')

    def parse_instrument(self, body: bytes) -> Instrument:
        """Accept ``metaAndAssetCtxs`` ([meta, ctxs]) or a bare ``meta`` object."""
        doc = loads(body)
        ctxs: list = []
        if isinstance(doc, list):
            if not doc or not isinstance(doc[0], dict):
                raise FrameError("metaAndAssetCtxs: unexpected shape")
            meta = doc[0]
            ctxs = doc[1] if len(doc) > 1 and isinstance(doc[1], list) else []
        elif isinstance(doc, dict):
            meta = doc
        else:
            raise FrameError("meta: unexpected shape")
        universe = meta.get("universe")
        if not isinstance(universe, list):
            raise FrameError("meta without universe")
        for i, asset in enumerate(universe):
            if asset.get("name") != self.native:
                continue
            sz_decimals = int(asset["szDecimals"])
            price = 0.0
            if i < len(ctxs) and isinstance(ctxs[i], dict):
                for key in ("midPx", "markPx", "oraclePx"):
                    if ctxs[i].get(key):
                        price = float(ctxs[i][key])
                        break
            if price <= 0:
                price = DEFAULTS.get(self.native, (sz_decimals, 100.0))[1]
            return self.instrument_for(sz_decimals, price)
        raise FrameError(f"{self.native} not in the venue's perp universe")
