"""Market: the state of one (venue, symbol), kept outside the UI.

Holds the order book, a bounded ring of recent trades, feed statistics, the feed state and
the heatmap sampler. The feed session writes to it; widgets read from it at frame rate.
Nothing here knows about sockets or terminals, so all of it is unit-testable.
"""

from __future__ import annotations

import copy
import itertools
import math
import time
from collections import deque
from dataclasses import dataclass, field

from obview.book import OrderBook
from obview.model import (
    BLOCK,
    FORCED,
    LIQUIDATION_ORDER,
    OFF_BOOK,
    FeedState,
    FeedStatus,
    Instrument,
    Side,
    Trade,
)
from obview.sampler import HeatmapColumn, HeatmapSampler


class RateCounter:
    """Events per second over a sliding window of whole seconds (bounded: ``window`` slots)."""

    __slots__ = ("window", "_counts", "_sec", "_t0")

    def __init__(self, window: int = 5) -> None:
        self.window = window
        self._counts = [0] * window
        self._sec = 0
        # when counting began (``begin``, else the first event): a young counter divides by its age
        self._t0: float | None = None

    def begin(self, now: float) -> None:
        """Counting starts now (a feed connecting): a young counter's age is measured from
        here, so a quiet market's first trade does not read as two a second."""
        if self._t0 is None:
            self._t0 = now

    def add(self, now: float, n: int = 1) -> None:
        sec = int(now)
        if sec != self._sec:
            self._advance(sec)
        if self._t0 is None or self._t0 > now:
            self._t0 = now
        self._counts[sec % self.window] += n

    def _advance(self, sec: int) -> None:
        if sec < self._sec - 1:  # the wall clock was stepped back: the slots hold its future
            self._counts = [0] * self.window
            self._t0 = None
        elif sec < self._sec:
            return  # a stamp from the second before the newest: counted in its own slot
        elif sec - self._sec >= self.window:
            self._counts = [0] * self.window
        else:
            for s in range(self._sec + 1, sec + 1):
                self._counts[s % self.window] = 0
        self._sec = sec

    def rate(self, now: float) -> float:
        """Mean rate over the last full seconds (the current partial second excluded)."""
        sec = int(now)
        if sec > self._sec:
            self._advance(sec)  # a read never steps the counter back (only a new event does)
        full = self.window - 1
        t0 = self._t0
        if t0 is not None and t0 <= now and sec - full < math.ceil(t0):
            # younger than the window (a connect, a switch): everything so far over its age,
            # not over the whole window (45 msgs/s read 8 in the first second); young until the
            # window holds only seconds counted whole
            return sum(self._counts) / max(now - t0, 0.5)
        total = sum(self._counts[(sec - i) % self.window] for i in range(1, full + 1))
        return total / full


def _clock_offset() -> float:
    """The wall clock less the monotonic one: constant until the wall clock is stepped."""
    return time.time() - time.monotonic()


class LatencyWindow:
    """Recent latency samples: bounded ring, percentiles over the last ``horizon`` s.

    The ring holds at most ``maxlen`` samples. When messages come faster than ``maxlen`` per
    horizon, only every ``stride``-th one is kept; the stride is re-estimated from the kept
    samples each time the percentiles are read, so the figures cover the whole horizon at any
    message rate, at a fixed memory cost, for one counter on the hot path."""

    __slots__ = ("horizon", "_samples", "_cache", "_cache_at", "_stride", "_skip", "_behind", "_offset")

    MAX_STRIDE = 4096
    #: ``behind`` reads the latency of the messages of the last this many seconds
    RECENT = 2.0
    #: a wall-clock step larger than this (seconds) starts the window afresh
    CLOCK_STEP = 0.25

    def __init__(self, horizon: float = 60.0, maxlen: int = 6000) -> None:
        self.horizon = horizon
        # (time, latency, stride when kept): a sample stands for ``stride`` messages
        self._samples: deque[tuple[float, float, int]] = deque(maxlen=maxlen)
        self._cache: tuple[float | None, float | None] = (None, None)
        self._cache_at = -1.0
        self._stride = 1
        self._skip = 0
        self._behind: float | None = None
        self._offset = _clock_offset()

    def add(self, now: float, latency: float) -> None:
        skip = self._skip + 1
        if skip < self._stride:
            self._skip = skip
            return
        self._skip = 0
        self._samples.append((now, latency, self._stride))

    def _retune(self, now: float) -> None:
        """Drop samples past the horizon, then pick the stride that spreads ``maxlen`` samples
        over the horizon at the message rate the kept samples show."""
        samples = self._samples
        cutoff = now - self.horizon
        while samples and samples[0][0] < cutoff:
            samples.popleft()
        if not samples:
            self._stride = 1
            return
        span = max(now - samples[0][0], 1.0)
        rate = sum(k for _, _, k in samples) / span
        want = math.ceil(rate * self.horizon / (samples.maxlen or 1))
        self._stride = max(1, min(want, self.MAX_STRIDE))

    def percentiles(self, now: float) -> tuple[float | None, float | None]:
        """(p50, p99) in seconds, recomputed at most every 0.5 s."""
        if now - self._cache_at < 0.5:
            return self._cache
        offset = _clock_offset()
        if abs(offset - self._offset) > self.CLOCK_STEP:
            # the local clock was stepped (NTP, a resumed laptop): latencies taken before the
            # step are off by its size, and would read as a backlog (or hide one) for a minute
            self._samples.clear()
            self._stride, self._skip = 1, 0
        self._offset = offset
        self._retune(now)
        samples = self._samples
        vals = sorted(lat for _, lat, _ in samples)
        if not vals:
            res: tuple[float | None, float | None] = (None, None)
            self._behind = None
        else:
            res = (vals[len(vals) // 2], vals[min(len(vals) - 1, int(math.ceil(len(vals) * 0.99)) - 1)])
            recent_from = now - self.RECENT
            recent = sorted(
                x[1] for x in itertools.takewhile(lambda x: x[0] >= recent_from, reversed(samples))
            )
            self._behind = recent[len(recent) // 2] - vals[0] if recent else None
        self._cache, self._cache_at = res, now
        return res

    def behind(self, now: float) -> float | None:
        """How much later than usual the messages of the last ``RECENT`` seconds arrive, in
        seconds: their median latency less the least latency of the horizon. A constant
        offset between the venue's clock and ours cancels out; what remains is a backlog (this
        client, its network or the venue falling behind the market). None without recent
        messages (silence is the stale watchdog's business)."""
        self.percentiles(now)
        return self._behind


@dataclass(slots=True, frozen=True)
class FlowSummary:
    """Taker volume by side over a window: coins, quote notional, and the number of fills;
    and of it, what liquidations and deleveraging forced (coins, quote notional)."""

    buy_base: float
    sell_base: float
    buy_quote: float
    sell_quote: float
    count: int
    forced_base: float = 0.0
    forced_quote: float = 0.0


class FlowWindow:
    """Taker buy and sell volume of the last ``horizon`` seconds, kept in whole-second slots.

    O(1) a trade and O(horizon) a read, with memory fixed whatever the trade rate; the window
    covers every trade of the last ``horizon`` seconds (and at most one second more, the
    oldest slot being whole). Summing the trade ring instead would cover less than the window
    whenever the ring holds less than it: 2000 trades are 20-40 s of a busy BTC perpetual."""

    __slots__ = ("horizon", "_secs", "_slots", "_offset")

    def __init__(self, horizon: int = 60) -> None:
        self.horizon = horizon
        n = horizon + 1
        self._secs = [-1] * n  # the second each slot holds (-1: none yet)
        self._slots = [[0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0] for _ in range(n)]
        self._offset = _clock_offset()

    def _slot(self, ts: float) -> list | None:
        """The slot of second ``ts``, emptied if it held an older second; None when ``ts`` is
        older than the window."""
        sec = int(ts)
        i = sec % len(self._secs)
        held = self._secs[i]
        slot = self._slots[i]
        if held != sec:
            if held > sec:
                offset = _clock_offset()
                if abs(offset - self._offset) < 1.0:
                    return None  # older than the window
                # the wall clock was stepped back: the window holds seconds of its future,
                # which would drop every new fill as too old until the clock caught up
                self._offset = offset
                self._secs = [-1] * len(self._secs)
            self._secs[i] = sec
            slot[:] = (0.0, 0.0, 0.0, 0.0, 0, 0.0, 0.0)
        return slot

    def add(self, ts: float, buy: bool, base: float, quote: float, forced: bool = False) -> None:
        slot = self._slot(ts)
        if slot is None:
            return
        if buy:
            slot[0] += base
            slot[2] += quote
        else:
            slot[1] += base
            slot[3] += quote
        slot[4] += 1
        if forced:
            slot[5] += base
            slot[6] += quote

    def add_forced(self, ts: float, base: float, quote: float) -> None:
        """A liquidation reported apart from the fills (which ``add`` counted as fills)."""
        slot = self._slot(ts)
        if slot is not None:
            slot[5] += base
            slot[6] += quote

    def summary(self, now: float) -> FlowSummary:
        """The slots overlapping (now - horizon, now]."""
        lo = now - self.horizon
        bb = sb = bq = sq = fb = fq = 0.0
        n = 0
        for sec, slot in zip(self._secs, self._slots, strict=True):
            if sec >= 0 and lo < sec + 1 and sec <= now:
                bb += slot[0]
                sb += slot[1]
                bq += slot[2]
                sq += slot[3]
                n += slot[4]
                fb += slot[5]
                fq += slot[6]
        return FlowSummary(bb, sb, bq, sq, n, fb, fq)


#: venue and local clocks further apart than this (s) are a bad stamp, not a latency
MAX_CLOCK_OFFSET = 86_400.0


@dataclass(slots=True)
class FeedStats:
    messages: RateCounter = field(default_factory=RateCounter)
    trades: RateCounter = field(default_factory=RateCounter)
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    frames: int = 0
    trades_seen: int = 0  # every trade, not only the ring's
    liquidations: int = 0  # of them, fills the venue marked as liquidations or deleveraging
    bad_frames: int = 0
    gaps: int = 0
    checksum_errors: int = 0
    last_frame_at: float = 0.0  # local time of the last frame
    last_book_at: float = 0.0  # local time of the last applied book change
    #: local time of the first fill through the book's touch since the book last changed (0:
    #: none): the book shown is behind the venue's (``Market._check_through``)
    through_at: float = 0.0
    #: the venue's time of the last applied book change (0: not known)
    book_exchange_at: float = 0.0
    book_every: float | None = None  # measured interval between book pushes (snapshot venues)
    last_error: str = ""  # the last bad frame's or venue error's reason
    last_error_at: float = 0.0  # its local time


class Market:
    """One (venue, symbol): book, trades, stats, state and heatmap history."""

    def __init__(
        self,
        instrument: Instrument,
        *,
        trade_history: int = 2000,
        sampler: HeatmapSampler | None = None,
        whole_book: bool = False,
    ) -> None:
        self.instrument = instrument
        #: the venue sends its whole depth (see ``VenueAdapter.whole_book``): past the book's
        #: deepest level nothing rests, rather than nothing is known
        self.whole_book = whole_book
        self.venue = instrument.venue
        self.symbol = instrument.symbol
        self.book = OrderBook()
        self.trades: deque[Trade] = deque(maxlen=trade_history)
        self.flow = FlowWindow()  # the tape's one-minute buy/sell volume
        self.stats = FeedStats()
        self.heatmap = sampler or HeatmapSampler()
        self.state = FeedState(FeedStatus.CONNECTING, "starting")
        self.resyncs = 0
        self.version = 0  # bumped on every visible change: the UI's dirty check
        self.last_price: float | None = None
        self.state_log: deque[FeedState] = deque(maxlen=200)

    # -- writers (feed side) ------------------------------------------------------------------
    def frozen(self) -> Market:
        """A still copy of what the panels draw: the book, the tape, the minute's flow and the
        heatmap history as they are now. Pause shows it, so a regrouping or a units switch
        while paused redraws this moment, not the live feed."""
        f = copy.copy(self)
        f.book = self.book.copy()
        f.trades = deque(self.trades, maxlen=self.trades.maxlen)
        f.flow = copy.deepcopy(self.flow)
        f.stats = copy.copy(self.stats)
        f.stats.trades = copy.deepcopy(self.stats.trades)
        f.heatmap = self.heatmap.frozen()
        f.state_log = deque(maxlen=1)
        return f

    def set_state(self, status: FeedStatus, reason: str = "") -> bool:
        """Change the feed state; returns True when it changed."""
        if self.state.status is status and self.state.reason == reason:
            return False
        self.state = FeedState(status, reason)
        self.state_log.append(self.state)
        self.version += 1
        return True

    def on_frame(self, ts_local: float) -> None:
        self.stats.frames += 1
        self.stats.last_frame_at = ts_local
        self.stats.messages.add(ts_local)

    def on_exchange_time(self, ts_exchange: float | None, ts_local: float) -> None:
        if ts_exchange:
            lat = ts_local - ts_exchange
            # a venue time a day or more off is not a latency (a garbled or mis-scaled stamp
            # read -1e297 s for the minute the window keeps it)
            if -MAX_CLOCK_OFFSET < lat < MAX_CLOCK_OFFSET:
                self.stats.latency.add(ts_local, lat)

    def on_book_changed(self, ts_local: float, ts_exchange: float | None = None) -> None:
        stats = self.stats
        stats.last_book_at = ts_local
        stats.book_exchange_at = ts_exchange or 0.0
        stats.through_at = 0.0
        self.version += 1

    def set_instrument(self, instrument: Instrument) -> None:
        """New instrument facts (the venue's, once fetched): sizes already counted in the flow
        are counted again from the trade ring with them."""
        self.instrument = instrument
        self.flow = FlowWindow(self.flow.horizon)
        for t in self.trades:
            self._count_flow(t)
        self.version += 1

    def _add_liquidation_order(self, order: Trade) -> None:
        """A liquidation the venue reported apart from its trades: on the tape and in the
        minute's liquidations; its fills came (or come) as trades, counted there once."""
        self.trades.append(order)
        self.stats.liquidations += 1
        self._count_flow(order)
        self.version += 1

    def _count_flow(self, trade: Trade) -> float:
        """Add ``trade`` to the flow; returns its size in coins. A block trade, agreed off the
        book, is no taker's pressure on it: one 11 BTC block read as a minute of selling."""
        inst = self.instrument
        base = inst.to_base(trade.price, trade.size)
        if trade.kind == BLOCK:
            return base
        if trade.kind == LIQUIDATION_ORDER:  # its fills are counted as fills
            self.flow.add_forced(trade.ts_local, base, inst.to_quote(trade.price, trade.size))
            return base
        self.flow.add(
            trade.ts_local,
            trade.side is Side.BUY,
            base,
            inst.to_quote(trade.price, trade.size),
            trade.kind in FORCED,
        )
        return base

    def add_trade(self, trade: Trade) -> None:
        if trade.kind == LIQUIDATION_ORDER:
            self._add_liquidation_order(trade)
            return
        self.trades.append(trade)
        off_book = trade.kind in OFF_BOOK
        if not off_book:  # a block's or deleveraging's negotiated price is not the market's
            self.last_price = trade.price
        stats = self.stats
        stats.trades_seen += 1
        if trade.kind in FORCED:
            stats.liquidations += 1
        stats.trades.add(trade.ts_local)
        base = self._count_flow(trade)
        if not off_book:  # agreed off the book, it took nothing there
            self.heatmap.add_trade(trade.price, base, trade.side)
            if not stats.through_at:
                self._check_through(trade)
        self.version += 1

    def _check_through(self, trade: Trade) -> None:
        """A fill through the book's touch (a taker sell below the best bid, a buy above the
        best ask) says the book shown is not the venue's: the bids above a sell's price were
        taken before it. Noted until the book next changes; the watchdog calls the book
        STALE once it stays so (a book frozen from its first snapshot, trades flowing, read
        LIVE for the quiet book's 300 s)."""
        stats = self.stats
        # a fill no newer than the book (the venue's time, else the same read): the book
        # already has what came after it (a sweep, then the makers' new quotes, in one step)
        if trade.ts_local <= stats.last_book_at:
            return
        if trade.ts_exchange is not None and trade.ts_exchange <= stats.book_exchange_at:
            return
        book = self.book
        half = self.instrument.tick / 2
        if trade.side is Side.SELL:
            keys = book.bids._keys
            through = bool(keys) and trade.price < keys[-1] - half
        else:
            keys = book.asks._keys
            through = bool(keys) and trade.price > keys[0] + half
        if through:
            stats.through_at = trade.ts_local

    def tick(self, now: float | None = None) -> HeatmapColumn | None:
        """Take a heatmap sample if one is due. Non-LIVE time becomes a gap column."""
        now = time.time() if now is None else now
        col = self.heatmap.sample(
            now, self.book, self.state.status is FeedStatus.LIVE, self.instrument, whole=self.whole_book
        )
        if col is not None:
            self.version += 1
        return col

    # -- readers (UI side) --------------------------------------------------------------------
    @property
    def live(self) -> bool:
        return self.state.status is FeedStatus.LIVE

    def book_age(self, now: float | None = None) -> float | None:
        if not self.stats.last_book_at:
            return None
        return (time.time() if now is None else now) - self.stats.last_book_at
