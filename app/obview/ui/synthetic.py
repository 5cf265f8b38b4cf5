"""A seeded, clock-free market for screenshots, snapshot tests and frame benchmarks.

``build_market`` plays a random-walk book with persistent walls, trades and sweeps through the
real ``Market`` writers on a fake clock, including a STALE stretch so the heatmap shows an
honest gap. ``StaticManager`` serves such markets behind the FeedManager interface.
"""

from __future__ import annotations

import math
import random

from obview.market import Market
from obview.model import BLOCK, LIQUIDATION, FeedState, FeedStatus, Instrument, Side, Trade
from obview.symbols import normalize

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: a fixed clock for deterministic pictures


def demo_instrument(
    venue: str = "demo", symbol: str = "BTC-PERP", price: float = 100_000.0
) -> Instrument:
    base = symbol.split("-")[0]
    tick = 0.5 if price > 10_000 else 0.05 if price > 500 else 0.01
    return Instrument(
        venue=venue, symbol=symbol, native=symbol, tick=tick, lot=0.001, base=base, quote="USD"
    )


def build_market(
    seed: int = 7,
    seconds: float = 60.0,
    *,
    venue: str = "demo",
    symbol: str = "BTC-PERP",
    price: float = 100_000.0,
    dt: float = 0.05,
    depth: int = 500,
    gap: tuple[float, float] | None = (0.80, 0.86),
    t0: float = T0,
) -> tuple[Market, float]:
    """Returns the market and the fake "now" at the end of the run."""
    rng = random.Random(seed)
    inst = demo_instrument(venue, symbol, price)
    tick = inst.tick
    m = Market(inst)
    mid = price
    vel = 0.0
    walls = {
        round(price + k * tick * 40 * rng.choice((1, 2, 3)), 6)
        for k in range(-12, 13)
        if rng.random() < 0.5
    }
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}

    def level_size(p: float, dist: int) -> float:
        s = rng.lognormvariate(-0.6, 0.9) * (0.4 if dist < 3 else 1.0)
        if round(p, 6) in walls:
            s *= rng.uniform(8, 20)
        return round(s, 3)

    m.set_state(FeedStatus.LIVE)
    steps = int(seconds / dt)
    trade_id = 0
    now = t0
    for i in range(steps):
        now = t0 + i * dt
        frac = i / steps
        if gap and gap[0] <= frac < gap[1]:
            if m.state.status is FeedStatus.LIVE:
                m.set_state(FeedStatus.STALE, "no data for 4.2 s")
            elif frac > (gap[0] + gap[1]) / 2 and m.state.status is FeedStatus.STALE:
                m.set_state(FeedStatus.SYNCING, "seq gap 1812→1815")
            m.tick(now)
            continue
        if m.state.status is not FeedStatus.LIVE:
            m.resyncs += 1
            m.set_state(FeedStatus.LIVE)
        vel = 0.96 * vel + rng.gauss(0, 0.35)
        mid += vel * tick
        bb = math.floor(mid / tick) * tick
        ba = bb + tick * (1 if rng.random() < 0.85 else 2)
        changed_b: list[tuple[float, float]] = []
        changed_a: list[tuple[float, float]] = []
        for p in [p for p in bids if p > bb or p < bb - depth * tick]:
            del bids[p]
            changed_b.append((p, 0.0))
        for p in [p for p in asks if p < ba or p > ba + depth * tick]:
            del asks[p]
            changed_a.append((p, 0.0))
        for k in range(depth):
            p = round(bb - k * tick, 6)
            if p not in bids:
                bids[p] = level_size(p, k)
                changed_b.append((p, bids[p]))
            p = round(ba + k * tick, 6)
            if p not in asks:
                asks[p] = level_size(p, k)
                changed_a.append((p, asks[p]))
        for _ in range(12):
            k = min(depth - 1, int(rng.expovariate(1 / 25)))
            side, ref, sign, out = (
                (bids, bb, -1, changed_b) if rng.random() < 0.5 else (asks, ba, 1, changed_a)
            )
            p = round(ref + sign * k * tick, 6)
            if p in side:
                side[p] = round(max(0.001, side[p] * rng.uniform(0.6, 1.5)), 3)
                out.append((p, side[p]))
        m.book.apply_delta(changed_b, changed_a)
        m.on_frame(now)
        m.on_exchange_time(now - 0.003 - rng.random() * 0.01, now)
        m.on_book_changed(now)
        r = rng.random()
        if r < 0.35:
            buy = vel > 0 if rng.random() < 0.7 else vel <= 0
            fills = 1 if rng.random() > 0.08 else rng.randint(3, 7)
            # some sweeps are liquidations, now and then a print is a block trade (chosen by
            # the trade's number, so the market is the same draw for draw as without them)
            kind = LIQUIDATION if fills > 1 and trade_id % 3 == 0 else ""
            if fills == 1 and trade_id % 61 == 0:
                kind = BLOCK
            for f in range(fills):
                trade_id += 1
                px = (ba + f * tick) if buy else (bb - f * tick)
                size = round(rng.lognormvariate(-2.5, 1.3) * (3 if fills > 1 else 1), 4)
                if kind == BLOCK:
                    size = round(size * 40, 4)
                m.add_trade(
                    Trade(
                        venue,
                        symbol,
                        px,
                        size,
                        Side.BUY if buy else Side.SELL,
                        str(trade_id),
                        now - 0.002,
                        now,
                        kind,
                    )
                )
        m.tick(now)
    return m, now


class StaticManager:
    """FeedManager look-alike serving prepared markets (tests, screenshots, benches)."""

    def __init__(
        self, markets: dict[tuple[str, str], Market], venues: list[str] | None = None
    ) -> None:
        self.markets = markets
        self.venues = venues or sorted({v for v, _ in markets})
        self.opened: list[tuple[str, str]] = []
        self.pinned: set[tuple[str, str]] = set()
        self.closed = False

    def validate(self, venue: str, symbol: str) -> tuple[str, str]:
        if venue not in self.venues:
            raise ValueError(f"unknown venue {venue!r}; valid: {', '.join(self.venues)}")
        sym = normalize(symbol)
        if (venue, sym) not in self.markets and any(v == venue for v, _ in self.markets):
            valid = sorted(s for v, s in self.markets if v == venue)
            raise ValueError(f"unknown symbol {symbol!r} on {venue}; valid: {', '.join(valid)}")
        return venue, sym

    async def open(self, venue: str, symbol: str, *, pin: bool = False) -> Market:
        if venue not in self.venues:
            raise ValueError(f"unknown venue {venue!r}; valid: {', '.join(self.venues)}")
        m = self.markets.get((venue, symbol))
        if m is None:
            valid = sorted(s for v, s in self.markets if v == venue)
            raise ValueError(f"unknown symbol {symbol!r} on {venue}; valid: {', '.join(valid)}")
        self.opened.append((venue, symbol))
        if pin:
            self.pinned.add((venue, symbol))
        return m

    async def unpin(self) -> None:
        self.pinned.clear()

    def get(self, venue: str, symbol: str) -> Market | None:
        return self.markets.get((venue, symbol))

    def state(self, venue: str, symbol: str) -> FeedState | None:
        m = self.markets.get((venue, symbol))
        return m.state if m else None

    async def close(self) -> None:
        self.closed = True
