"""What the simulator emits, before any venue dialect encodes it."""

from __future__ import annotations

from dataclasses import dataclass, field

from obview.model import BLOCK, Level, Side


@dataclass(slots=True)
class SimTrade:
    price: float
    size: float
    side: Side  # taker side
    trade_id: int
    ts: float  # exchange time, seconds
    kind: str = ""  # "" (a fill), "liq" or "block" (obview.model's trade kinds)


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
