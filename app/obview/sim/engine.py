"""SimMarket: a small limit-order-book simulator that is worth watching.

The hidden "fair" price follows a random walk whose variance clusters (a log-variance that
mean-reverts, kicked by large moves, plus bursts of much higher activity). The visible book
follows it: when fair crosses the touch, the crossed levels are taken (trades) or faded
(cancels) and new quotes arrive behind them. On top of that, each step draws a few order-flow
events: limit orders near the touch with heavy-tailed sizes, cancels, far-from-touch quotes that
keep the book a few percent deep, market orders that sweep levels, and walls (large orders at
round prices) that sit for a while and are then pulled.

Prices are kept as integer tick indices and sizes as integer lots internally, so the book is
always on the grid and never drifts; ``book`` mirrors them as floats. Each ``step`` returns a
``SimUpdate`` whose levels are exactly the diff from the previous book.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from dataclasses import dataclass

from obview.book import OrderBook
from obview.model import BLOCK, LIQUIDATION, Side
from obview.sim.events import SimTrade, SimUpdate

RECENT_TRADES = 50  # trades a market keeps for venues that send past prints on subscribe
#: canonical symbol -> (start mid, tick, lot)
SIM_SYMBOLS: dict[str, tuple[float, float, float]] = {
    "BTC-PERP": (97000.0, 0.1, 0.001),
    "ETH-PERP": (3600.0, 0.01, 0.01),
    "SOL-PERP": (180.0, 0.001, 0.1),
}

_TYPICAL_NOTIONAL = 30_000.0  # median order, quote currency
_CALM_VOL = 2.5e-5  # relative volatility per sqrt(second) at variance multiplier 1
_VAR_TAU = 25.0  # s, mean reversion of the log-variance
_VAR_ETA = 0.18  # log-variance noise per sqrt(second)
_RANGE = 0.02  # far quotes are placed within this fraction of the mid
_TRIM = 0.035  # levels further than this fraction from the mid are removed
_TARGET_LEVELS = 600  # per side
_MAX_WALLS = 5
_WALL_RATE = 0.12  # new walls per second of simulated time
_BURST_RATE = 1 / 45  # bursts per second of simulated time
_LIQUIDATIONS = (0.03, 0.25)  # share of market orders that are liquidations: calm, burst
_BLOCK_RATE = 1 / 120  # block trades (printed off the book) per second of simulated time


def _decimals(step: float) -> int:
    """Digits after the point needed to print multiples of ``step`` exactly."""
    d = 0
    while d < 12 and abs(round(step, d) - step) > 1e-12:
        d += 1
    return d


@dataclass(slots=True)
class Wall:
    """A large resting order the simulator will pull at ``until``."""

    is_bid: bool
    index: int  # price tick index
    lots: int
    until: float
    placed: float


class SimMarket:
    """Simulated market of one canonical symbol.

    ``step(now)`` advances the simulation to exchange time ``now`` (seconds) and returns what
    changed. Deterministic for a given seed, ``start_time`` and sequence of ``now`` values.
    """

    def __init__(
        self,
        symbol: str,
        seed: int = 1,
        mid: float | None = None,
        start_time: float | None = None,
    ) -> None:
        if symbol not in SIM_SYMBOLS:
            valid = ", ".join(SIM_SYMBOLS)
            raise ValueError(f"unknown simulator symbol {symbol!r}; valid: {valid}")
        start_mid, tick, lot = SIM_SYMBOLS[symbol]
        self.symbol = symbol
        self.tick = tick
        self.lot = lot
        self.price_decimals = _decimals(tick)
        self.size_decimals = _decimals(lot)
        self.book = OrderBook()
        self.rng = rng = random.Random(f"{seed}:{symbol}")
        # what kind a trade is draws from its own generator: the book's stream is the same
        # with or without them
        self._kinds = random.Random(f"{seed}:{symbol}:kinds")
        self.seq = 1_000_000 + rng.randrange(1_000_000)
        self.book_seq = self.seq  # seq of the last step that changed a level
        self.last_book_update: SimUpdate | None = None  # and that step
        self.recent_trades: deque[SimTrade] = deque(maxlen=RECENT_TRADES)  # newest last
        self.trade_id = 10_000_000 + rng.randrange(10_000_000)
        self.ts = start_time if start_time is not None else time.time()
        self._last = start_time  # None: the first step uses a nominal interval
        self.walls: list[Wall] = []
        self.walls_placed = 0
        self.walls_pulled = 0
        self.burst_until = -math.inf
        self.bursts = 0

        m = mid if mid is not None else start_mid
        self._fair = m / tick  # fair price in ticks (float)
        self._logvar = 0.0
        self._median_lots = max(1.0, _TYPICAL_NOTIONAL / m / lot)
        self._near = max(3.0, 0.5e-4 * m / tick)  # ticks: scale of near-touch activity
        self._width = max(50, int(_RANGE * m / tick))  # ticks: far-quote range
        self._round = self._round_unit(m, tick)  # ticks between "round" prices
        # integer mirror of the book: tick index -> lots
        self._bl: dict[int, int] = {}
        self._al: dict[int, int] = {}
        self._cb: dict[float, float] = {}
        self._ca: dict[float, float] = {}
        self._trades: list[SimTrade] = []
        self._seed_book()
        self._cb.clear()
        self._ca.clear()

    # -- formatting helpers for dialects ------------------------------------------------------
    def fmt_price(self, price: float) -> str:
        return f"{price:.{self.price_decimals}f}"

    def fmt_size(self, size: float) -> str:
        return f"{size:.{self.size_decimals}f}"

    @property
    def mid(self) -> float:
        m = self.book.mid()
        return m if m is not None else self._fair * self.tick

    @property
    def bursting(self) -> bool:
        return self.ts < self.burst_until

    # -- setup ----------------------------------------------------------------------------------
    @staticmethod
    def _round_unit(mid: float, tick: float) -> int:
        unit = 10 ** (math.floor(math.log10(mid)) - 2)  # BTC 100, ETH 10, SOL 1
        return max(1, round(unit / tick))

    def _seed_book(self) -> None:
        rng = self.rng
        center = self._fair
        bb = math.floor(center - 0.5)
        ba = bb + 1
        near = int(self._near)
        for d in range(near):
            fill = 0.95 if d < near // 3 else 0.6
            if rng.random() < fill:
                self._set(True, bb - d, self._limit_lots(d))
            if rng.random() < fill:
                self._set(False, ba + d, self._limit_lots(d))
        for is_bid in (True, False):
            side = self._bl if is_bid else self._al
            while len(side) < _TARGET_LEVELS:
                d = near + int(rng.random() * (self._width - near))
                self._set(is_bid, bb - d if is_bid else ba + d, self._limit_lots(d))

    # -- primitives -------------------------------------------------------------------------------
    def _set(self, is_bid: bool, index: int, lots: int) -> None:
        """Set one level to ``lots`` and record the change."""
        tick = self.tick
        price = round(index * tick, self.price_decimals)
        if is_bid:
            side, book, changed = self._bl, self.book.bids, self._cb
        else:
            side, book, changed = self._al, self.book.asks, self._ca
        if lots > 0:
            side[index] = lots
            size = round(lots * self.lot, self.size_decimals)
            book[price] = size
            changed[price] = size
        elif index in side:
            del side[index]
            del book[price]
            changed[price] = 0.0

    def _best(self, is_bid: bool) -> int | None:
        book = self.book.bids if is_bid else self.book.asks
        if not book:
            return None
        p = book.keys()[-1] if is_bid else book.keys()[0]
        return round(p / self.tick)

    def _nth(self, is_bid: bool, k: int) -> int | None:
        """Tick index of the k-th level from the touch (0 = best)."""
        book = self.book.bids if is_bid else self.book.asks
        n = len(book)
        if n == 0:
            return None
        k = min(k, n - 1)
        p = book.keys()[-1 - k] if is_bid else book.keys()[k]
        return round(p / self.tick)

    def _limit_lots(self, distance: float) -> int:
        """Heavy-tailed order size (lognormal body, Pareto tail); deeper levels are larger."""
        rng = self.rng
        lots = self._median_lots * math.exp(rng.gauss(0.0, 1.0))
        if rng.random() < 0.05:
            lots *= rng.paretovariate(1.5)
        lots *= 1.0 + 2.0 * min(1.0, distance / self._width)
        return max(1, int(lots))

    def _trade(self, is_buy: bool, index: int, lots: int, now: float, kind: str = "") -> None:
        self.trade_id += 1
        self._trades.append(
            SimTrade(
                price=round(index * self.tick, self.price_decimals),
                size=round(lots * self.lot, self.size_decimals),
                side=Side.BUY if is_buy else Side.SELL,
                trade_id=self.trade_id,
                ts=now,
                kind=kind,
            )
        )

    # -- step -------------------------------------------------------------------------------------
    def step(self, now: float) -> SimUpdate:
        """Advance to ``now`` and return the changed levels and trades of this step."""
        rng = self.rng
        if self._last is None:
            dt = 0.05
            self.ts = now
        else:
            dt = min(max(now - self._last, 0.0), 5.0)
            self.ts = max(now, self.ts)  # exchange time never runs backwards
        self._last = now
        self._cb = {}
        self._ca = {}
        self._trades = []

        # bursts and the variance process
        if now >= self.burst_until and rng.random() < _BURST_RATE * dt:
            self.burst_until = now + rng.uniform(3.0, 10.0)
            self.bursts += 1
        burst = now < self.burst_until
        z = rng.gauss(0.0, 1.0)
        decay = math.exp(-dt / _VAR_TAU)
        self._logvar = (
            self._logvar * decay
            + _VAR_ETA * math.sqrt(dt) * rng.gauss(0.0, 1.0)
            + 0.04 * (abs(z) - 0.8) * min(dt * 20.0, 1.0)
        )
        self._logvar = min(max(self._logvar, -1.5), 2.0)
        sigma = _CALM_VOL * math.exp(self._logvar / 2.0) * (2.0 if burst else 1.0)
        self._fair += self._fair * sigma * math.sqrt(dt) * z
        self._follow_fair(now)

        # order flow
        lam = 7.0 if burst else 2.5
        n = 1 + self._poisson(lam)
        p_market = 0.12 if burst else 0.05
        for _ in range(n):
            r = rng.random()
            if r < 0.48:
                self._add_near()
            elif r < 0.78:
                self._cancel_near()
            elif r < 0.86:
                self._add_far()
            elif r < 1.0 - p_market:
                self._cancel_far()
            else:
                self._market_order(rng.random() < 0.5, now, burst)

        self._walls(now, dt)
        self._maintain_depth()
        if not self._cb and not self._ca and not self._trades:
            self._add_near()
        if self._kinds.random() < _BLOCK_RATE * dt:
            # a block trade: agreed off the book, printed near fair, a large size
            lots = int(self._median_lots * 20 * self._kinds.uniform(0.5, 3.0))
            self._trade(self._kinds.random() < 0.5, round(self._fair), max(1, lots), now, BLOCK)

        return self.finish_step()

    def finish_step(self) -> SimUpdate:
        """Number the step whose changes ``_cb`` / ``_ca`` / ``_trades`` hold and return it."""
        prev, prev_book = self.seq, self.book_seq
        self.seq = prev + 1
        update = SimUpdate(
            symbol=self.symbol,
            seq=self.seq,
            prev_seq=prev,
            ts=self.ts,
            bids=list(self._cb.items()),
            asks=list(self._ca.items()),
            trades=self._trades,
            prev_book_seq=prev_book,
        )
        if self._cb or self._ca:
            self.book_seq = self.seq
            self.last_book_update = update
        self.recent_trades.extend(self._trades)
        return update

    def _poisson(self, lam: float) -> int:
        limit = math.exp(-lam)
        k = 0
        p = self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k

    def _follow_fair(self, now: float) -> None:
        """Take or fade the levels that fair crossed, so the touch brackets fair again, then
        requote behind the move (market makers follow the price)."""
        rng = self.rng
        fair = self._fair
        up = 0
        for _ in range(400):
            ba = self._best(False)
            if ba is None or ba > fair:
                break
            if rng.random() < 0.5:
                self._trade(True, ba, self._al[ba], now)
            self._set(False, ba, 0)
            up += 1
        else:
            self._fair = self._best(False) - 0.5
        fair = self._fair
        down = 0
        for _ in range(400):
            bb = self._best(True)
            if bb is None or bb < fair:
                break
            if rng.random() < 0.5:
                self._trade(False, bb, self._bl[bb], now)
            self._set(True, bb, 0)
            down += 1
        else:
            self._fair = self._best(True) + 0.5
        if up:
            self._requote(True, up)
        if down:
            self._requote(False, down)
        # quotes step into a wide spread
        for is_bid in (True, False):
            if rng.random() < 0.6:
                bb, ba = self._best(True), self._best(False)
                if bb is not None and ba is not None and ba - bb > 2:
                    i = self._anchor(is_bid)
                    self._set(is_bid, i, self._limit_lots(0))

    def _requote(self, is_bid: bool, n: int) -> None:
        """Place up to ``n`` quotes on consecutive-ish ticks behind the new touch."""
        rng = self.rng
        a = self._anchor(is_bid)
        side = self._bl if is_bid else self._al
        d = 0
        for _ in range(min(n, 12)):
            i = a - d if is_bid else a + d
            self._set(is_bid, i, side.get(i, 0) + self._limit_lots(d))
            d += 1 + int(rng.expovariate(1.5))

    def _anchor(self, is_bid: bool) -> int:
        """Best price a new quote on this side may take without crossing."""
        if is_bid:
            ba = self._best(False)
            a = math.floor(self._fair)
            return a if ba is None else min(a, ba - 1)
        bb = self._best(True)
        a = math.ceil(self._fair)
        return a if bb is None else max(a, bb + 1)

    def _add_near(self) -> None:
        rng = self.rng
        is_bid = rng.random() < 0.5
        d = int(rng.expovariate(3.0 / self._near))
        i = self._anchor(is_bid)
        i = i - d if is_bid else i + d
        side = self._bl if is_bid else self._al
        self._set(is_bid, i, side.get(i, 0) + self._limit_lots(d))

    def _cancel_near(self) -> None:
        rng = self.rng
        is_bid = rng.random() < 0.5
        i = self._nth(is_bid, int(rng.expovariate(1.0 / 6.0)))
        if i is None:
            return
        side = self._bl if is_bid else self._al
        lots = side[i]
        if rng.random() < 0.5:
            self._set(is_bid, i, 0)
        else:
            self._set(is_bid, i, int(lots * rng.uniform(0.1, 0.9)))

    def _add_far(self, is_bid: bool | None = None) -> None:
        rng = self.rng
        if is_bid is None:
            is_bid = rng.random() < 0.5
        d = int(self._near + rng.random() * (self._width - self._near))
        i = self._anchor(is_bid)
        i = i - d if is_bid else i + d
        side = self._bl if is_bid else self._al
        self._set(is_bid, i, side.get(i, 0) + self._limit_lots(d))

    def _cancel_far(self, is_bid: bool | None = None) -> None:
        rng = self.rng
        if is_bid is None:
            is_bid = rng.random() < 0.5
        book = self.book.bids if is_bid else self.book.asks
        n = len(book)
        if n < 20:
            return
        i = round(book.keys()[rng.randrange(n)] / self.tick)
        if any(w.index == i and w.is_bid == is_bid for w in self.walls):
            return
        self._set(is_bid, i, 0)

    def _market_order(self, is_buy: bool, now: float, burst: bool) -> None:
        rng = self.rng
        want = max(1, int(self._median_lots * rng.paretovariate(1.3 if burst else 1.6) * 0.5))
        levels = 0
        first = self._best(not is_buy)
        kind = LIQUIDATION if self._kinds.random() < _LIQUIDATIONS[burst] else ""
        while want > 0 and levels < 20:
            i = self._best(not is_buy)
            if i is None or abs(i - first) > self._near:
                break
            side = self._al if is_buy else self._bl
            lots = side[i]
            take = min(lots, want)
            self._trade(is_buy, i, take, now, kind)
            self._set(not is_buy, i, lots - take)
            want -= take
            levels += 1
        # impact: fair leans toward the new touch
        i = self._best(not is_buy)
        if i is not None and levels > 1:
            target = i - 0.5 if is_buy else i + 0.5
            self._fair += 0.3 * (target - self._fair)
        bb, ba = self._best(True), self._best(False)
        if bb is not None and self._fair <= bb:
            self._fair = bb + 0.5
        if ba is not None and self._fair >= ba:
            self._fair = ba - 0.5

    def _walls(self, now: float, dt: float) -> None:
        rng = self.rng
        keep = []
        for w in self.walls:
            if now >= w.until:
                side = self._bl if w.is_bid else self._al
                cur = side.get(w.index, 0)
                self._set(w.is_bid, w.index, cur - min(cur, w.lots))
                self.walls_pulled += 1
            else:
                keep.append(w)
        self.walls = keep
        if len(self.walls) < _MAX_WALLS and rng.random() < _WALL_RATE * dt:
            is_bid = rng.random() < 0.5
            dist = self._fair * rng.uniform(0.002, 0.015)
            unit = self._round * rng.choice((1, 1, 2, 5))
            if is_bid:
                i = math.floor((self._fair - dist) / unit) * unit
                ok = i < self._anchor(True)
            else:
                i = math.ceil((self._fair + dist) / unit) * unit
                ok = i > self._anchor(False)
            if ok and not any(w.index == i and w.is_bid == is_bid for w in self.walls):
                lots = int(self._median_lots * rng.uniform(30, 150))
                side = self._bl if is_bid else self._al
                self._set(is_bid, i, side.get(i, 0) + lots)
                self.walls.append(Wall(is_bid, i, lots, now + rng.uniform(5.0, 60.0), now))
                self.walls_placed += 1

    def _maintain_depth(self) -> None:
        """Keep roughly the target number of levels a side and none too far from fair."""
        fair = self._fair
        lo = fair * (1 - _TRIM)
        hi = fair * (1 + _TRIM)
        bids, asks = self.book.bids, self.book.asks
        tick = self.tick
        for _ in range(4):
            if bids and bids.keys()[0] / tick < lo:
                self._set(True, round(bids.keys()[0] / tick), 0)
            if asks and asks.keys()[-1] / tick > hi:
                self._set(False, round(asks.keys()[-1] / tick), 0)
        for is_bid, book in ((True, bids), (False, asks)):
            n = len(book)
            if n < _TARGET_LEVELS:
                self._add_far(is_bid)
            elif n > _TARGET_LEVELS * 1.3:
                self._cancel_far(is_bid)
