"""What the simulator emits, before any venue dialect encodes it."""

from __future__ import annotations

from dataclasses import dataclass, field

from obview.model import BLOCK, LIQUIDATION, Level, Side


@dataclass(slots=True)
class SimTrade:
    price: float
    size: float
    side: Side  # taker side
    trade_id: int
    ts: float  # exchange time, seconds
    kind: str = ""  # "" (a fill), "liq" or "block" (obview.model's trade kinds)


def liquidation_orders(trades: list[SimTrade]) -> list[list[SimTrade]]:
    """A step's liquidation fills grouped by the order that made them (what a venue reporting
    liquidations on a channel of its own reports): the engine fills a market order level by
    level, each fill one id after the last and at a worse price."""
    orders: list[list[SimTrade]] = []
    prev: SimTrade | None = None
    for t in trades:
        if t.kind != LIQUIDATION:
            prev = None
            continue
        worse = prev is not None and (t.price > prev.price if t.side is Side.BUY else t.price < prev.price)
        if prev is not None and t.side is prev.side and t.trade_id == prev.trade_id + 1 and worse:
            orders[-1].append(t)
        else:
            orders.append([t])
        prev = t
    return orders


def on_book(trades: list[SimTrade]) -> list[SimTrade]:
    """The trades a venue without block trades in its trade feed prints: not the blocks."""
    return [t for t in trades if t.kind != BLOCK]


@dataclass(slots=True)
class SimUpdate:
    """One simulator step for one symbol: the levels that changed (absolute sizes, 0 = gone)
    and the trades that happened, stamped with the simulator's sequence number after it."""

    symbol: str
    seq: int
    prev_seq: int
    ts: float
    bids: list[Level] = field(default_factory=list)
    asks: list[Level] = field(default_factory=list)
    trades: list[SimTrade] = field(default_factory=list)
    #: seq of the last earlier step that changed a level (venues that number book updates only)
    prev_book_seq: int = -1
