"""Normalized market events shared by every venue adapter.

Prices and sizes are floats parsed once at the adapter. Sizes are in the venue's native
unit (coins, contracts or USD, see ``Instrument``); the book keeps them as sent so that
replays and checksums can be compared with the raw frames. Times are seconds since the
epoch: ``ts_exchange`` from the venue, ``ts_local`` taken at receive.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

Level = tuple[float, float]  # (price, size)


class Side(enum.Enum):
    """Taker side of a trade."""

    BUY = "buy"
    SELL = "sell"


@dataclass(slots=True)
class BookSnapshot:
    """A whole book (or the top of it) replacing what was there."""

    venue: str
    symbol: str
    bids: list[Level]
    asks: list[Level]
    seq: int | None = None
    ts_exchange: float | None = None
    ts_local: float = 0.0
    checksum: int | None = None


@dataclass(slots=True)
class BookDelta:
    """Changed levels with absolute sizes; size 0 deletes the level.

    ``seq`` / ``prev_seq`` carry the venue's sequence fields (Binance u/pu, OKX seqId/prevSeqId,
    Deribit change_id/prev_change_id ...); ``first_seq`` is set by venues that number the first
    update in the message (Binance U). ``checksum`` is the venue's checksum of the book after
    this delta, or None.
    """

    venue: str
    symbol: str
    bids: list[Level]
    asks: list[Level]
    seq: int | None = None
    prev_seq: int | None = None
    first_seq: int | None = None
    ts_exchange: float | None = None
    ts_local: float = 0.0
    checksum: int | None = None


#: what a trade was, when its venue says so in the trade itself ("" for an ordinary fill)
LIQUIDATION = "liq"  # a liquidated position's order (Deribit, Kraken Futures, dYdX)
DELEVERAGE = "adl"  # auto-deleveraging: a position closed against the liquidation (dYdX)
BLOCK = "block"  # a block trade, agreed off the book and printed (Deribit, Bybit, Kraken)
#: a liquidation order as the venue reports it on a channel of its own (Binance forceOrder,
#: Bybit allLiquidation, OKX liquidation-orders, BitMEX liquidation): not a fill, its fills
#: are among the trades already. ``side`` is the order's (SELL: a long was liquidated), the
#: size and price are the venue's for the order. Shown on the tape and in the minute's
#: liquidations, never in the buy/sell flow, the trade rate, the last price or the heatmap.
LIQUIDATION_ORDER = "liqorder"
#: the tape's tag for each kind, and whether it is forced (counted in the liquidation flow)
TRADE_TAGS: dict[str, str] = {LIQUIDATION: "LIQ", LIQUIDATION_ORDER: "LIQ", DELEVERAGE: "ADL", BLOCK: "BLK"}
FORCED = frozenset((LIQUIDATION, DELEVERAGE))
#: printed at a price agreed away from the book: not the last price, not a mark on the heatmap
OFF_BOOK = frozenset((BLOCK, DELEVERAGE))


@dataclass(slots=True)
class Trade:
    venue: str
    symbol: str
    price: float
    size: float
    side: Side
    trade_id: str
    ts_exchange: float | None
    ts_local: float
    kind: str = ""  # "", LIQUIDATION, DELEVERAGE, BLOCK or LIQUIDATION_ORDER (not a fill)


class FeedStatus(enum.Enum):
    CONNECTING = "CONNECTING"
    SYNCING = "SYNCING"
    LIVE = "LIVE"
    STALE = "STALE"
    RECONNECTING = "RECONNECTING"
    FAILED = "FAILED"

    @property
    def trusted(self) -> bool:
        """Only a LIVE book may be shown (and sampled) as the current book."""
        return self is FeedStatus.LIVE


@dataclass(slots=True, frozen=True)
class FeedState:
    """The feed's status and a reason a user can read ("seq gap 1812->1815")."""

    status: FeedStatus
    reason: str = ""
    since: float = field(default_factory=time.time)

    def __str__(self) -> str:
        return f"{self.status.value} ({self.reason})" if self.reason else self.status.value


@dataclass(slots=True, frozen=True)
class Instrument:
    """Static facts of one instrument.

    ``size_unit`` says what the venue's sizes count: "base" (coins), "contract" (each worth
    ``contract_value`` coins) or "quote" (each worth ``contract_value`` in quote currency,
    as for inverse contracts such as Deribit BTC-PERPETUAL in USD).
    """

    venue: str
    symbol: str  # canonical, e.g. BTC-PERP
    native: str  # venue's name, e.g. BTCUSDT
    tick: float
    lot: float
    size_unit: str = "base"
    contract_value: float = 1.0
    base: str = "BTC"
    quote: str = "USD"

    def to_base(self, price: float, size: float) -> float:
        """Convert a native size at ``price`` to coins."""
        if self.size_unit == "base":
            return size
        if self.size_unit == "contract":
            return size * self.contract_value
        return size * self.contract_value / price if price > 0 else 0.0

    def to_quote(self, price: float, size: float) -> float:
        """Convert a native size at ``price`` to quote notional."""
        if self.size_unit == "quote":
            return size * self.contract_value
        return self.to_base(price, size) * price
