"""Trade tape view model: fills aggregated per taker order, large-trade tiers and the text of
a sweep (the flow of the last minute is ``Market.flow``). Pure functions, unit-tested without a
terminal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from obview.model import Instrument, Side, Trade
from obview.ui.numbers import format_price


@dataclass(slots=True)
class TapeRow:
    """Fills of one taker side and kind in one millisecond, aggregated."""

    ts: float
    side: Side
    first: float
    last: float
    low: float
    high: float
    base: float
    quote: float
    count: int
    kind: str = ""  # "" fills, or the kind the venue marked them (obview.model.TRADE_TAGS)

    @property
    def vwap(self) -> float:
        return self.quote / self.base if self.base > 0 else self.last


def trade_ms(t: Trade) -> int:
    ts = t.ts_exchange if t.ts_exchange else t.ts_local
    return int(round(ts * 1000))


def aggregate_tape(trades: Sequence[Trade], inst: Instrument, limit: int) -> list[TapeRow]:
    """Newest first; consecutive fills of one side and kind in the same millisecond become one
    row (a liquidation's fills stay apart from the fills beside it)."""
    rows: list[TapeRow] = []
    cur: TapeRow | None = None
    cur_ms = -1
    # walk newest -> oldest; "first" of a sweep is the oldest fill, so it is updated last
    for i in range(len(trades) - 1, -1, -1):
        t = trades[i]
        ms = trade_ms(t)
        base = inst.to_base(t.price, t.size)
        quote = inst.to_quote(t.price, t.size)
        if cur is not None and ms == cur_ms and t.side is cur.side and t.kind == cur.kind:
            cur.first = t.price
            cur.low = min(cur.low, t.price)
            cur.high = max(cur.high, t.price)
            cur.base += base
            cur.quote += quote
            cur.count += 1
            continue
        if len(rows) >= limit:
            break
        cur = TapeRow(
            ms / 1000.0, t.side, t.price, t.price, t.price, t.price, base, quote, 1, t.kind
        )
        cur_ms = ms
        rows.append(cur)
    return rows


DEFAULT_TIERS: dict[str, tuple[float, float, float]] = {
    "BTC": (100_000.0, 1_000_000.0, 5_000_000.0),
    "ETH": (50_000.0, 500_000.0, 2_000_000.0),
}
OTHER_TIERS = (10_000.0, 100_000.0, 1_000_000.0)


def large_trade_tiers(base: str, overrides: dict | None = None) -> tuple[float, float, float]:
    """Quote-notional thresholds of the three large-trade tiers, per base coin."""
    if overrides:
        v = overrides.get(base) or overrides.get(base.upper()) or overrides.get("default")
        if v and len(v) == 3:
            return tuple(float(x) for x in v)  # type: ignore[return-value]
    return DEFAULT_TIERS.get(base.upper(), OTHER_TIERS)


def tier_of(notional: float, tiers: Sequence[float]) -> int:
    """0 (ordinary) .. len(tiers) for the largest tier reached."""
    k = 0
    for i, th in enumerate(tiers):
        if notional >= th:
            k = i + 1
    return k


def sweep_text(first: float, last: float, count: int, decimals: int, room: int) -> str:
    """What a tape row shows after its first price for a sweep of ``count`` fills, in at most
    ``room`` cells: the whole end price (" →96963.9") when it fits, else the signed move
    (" Δ-1.3"), else nothing; a number is never cut."""
    if count <= 1:
        return ""
    if last == first:
        options = [f" ×{count}"]
    else:
        options = [f" →{format_price(last, decimals)}", f" Δ{last - first:+.{decimals}f}"]
    for text in options:
        if len(text) <= room:
            return text
    return ""
