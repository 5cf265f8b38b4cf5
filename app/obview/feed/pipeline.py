"""FeedPipeline: the sans-IO path from received frames to the Market.

adapter.parse -> BookSync (sequence / checksum / crossed checks) -> Market, with the feed
state kept honest: the market is LIVE only while the sync says the book is whole. Both the
live ``FeedSession`` and the offline replay drive this same object, so a recording exercises
exactly the logic the app runs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from obview.bus import BOOK, STATE, TRADE, Bus
from obview.market import Market
from obview.model import LIQUIDATION_ORDER, BookDelta, BookSnapshot, FeedStatus, Level, Trade
from obview.text import safe
from obview.venues.base import (
    EMPTIED,
    MAX_NUMBER,
    BookFrameError,
    FrameError,
    Reply,
    Resync,
    SyncStatus,
    VenueAdapter,
    VenueError,
)

log = logging.getLogger("obview.feed")

_APPLIED = SyncStatus.APPLIED
_GAP = SyncStatus.GAP
_LIVE = FeedStatus.LIVE
NOT_FINITE = f"price or size not a finite positive number below {MAX_NUMBER:g}"
#: bad frames are logged at most once per this many seconds per pipeline (the first at once);
#: a venue sending nothing but malformed frames at 50k/s must not fill the log file
BAD_FRAME_LOG_INTERVAL = 10.0


class _LogThrottle:
    """At most one log line per ``BAD_FRAME_LOG_INTERVAL`` (the first at once): ``due`` says
    whether this one is logged, and how many went unlogged since the last."""

    __slots__ = ("_at", "_unlogged")

    def __init__(self) -> None:
        self._at = -BAD_FRAME_LOG_INTERVAL  # monotonic time of the last line
        self._unlogged = 0

    def due(self, force: bool = False) -> int | None:
        """None: skip this one (counted); else log it, saying this many more since the last."""
        now = time.monotonic()
        if not force and now - self._at < BAD_FRAME_LOG_INTERVAL:
            self._unlogged += 1
            return None
        more, self._unlogged, self._at = self._unlogged, 0, now
        return more


def _levels_ok(levels: list[Level]) -> bool:
    # NaN fails every comparison, so it is rejected too (a NaN key would corrupt the sorted book).
    # A plain loop: about half the cost of all() over a generator on this hot path.
    for p, s in levels:  # noqa: SIM110
        if not (0.0 < p < MAX_NUMBER and 0.0 <= s < MAX_NUMBER):
            return False
    return True


def _numbers_ok(ev: object) -> bool:
    if isinstance(ev, (BookDelta, BookSnapshot)):
        return _levels_ok(ev.bids) and _levels_ok(ev.asks)
    if isinstance(ev, Trade):
        return 0.0 < ev.price < MAX_NUMBER and 0.0 <= ev.size < MAX_NUMBER
    return True


@dataclass(slots=True)
class Send:
    """Send ``frame`` on ``stream`` (answer to a venue ping, ...)."""

    stream: str
    frame: str


@dataclass(slots=True)
class NeedResync:
    """The book is broken; the session must resync it (per the adapter's ResyncMode)."""

    reason: str


@dataclass(slots=True)
class Fatal:
    """The venue refused us in a way retrying will not fix (e.g. unknown instrument)."""

    reason: str


Action = Send | NeedResync | Fatal


#: the reason a LIVE book with no orders on either side gives
EMPTY_BOOK = "empty book: no orders on either side"


class FeedPipeline:
    """Routes frames of every stream of one market. Counts what it could not parse."""

    def __init__(self, adapter: VenueAdapter, market: Market, bus: Bus | None = None) -> None:
        self.adapter = adapter
        self.market = market
        self.bus = bus
        self.sync = adapter.make_sync(market.book)
        # the adapter's typed fast path for its hot frames, if it has one (VenueAdapter.parse_fast)
        fast = getattr(type(adapter), "parse_fast", VenueAdapter.parse_fast)
        self._parse_fast = adapter.parse_fast if fast is not VenueAdapter.parse_fast else None
        self.parse_errors = 0
        self.trades = 0
        # book messages that moved the book forward (applied, buffered or a gap; not ignored
        # repeats): the book stream's pulse for the stale watchdog
        self.book_events = 0
        self.resync_pending = False
        # set on a fatal error: the feed is over, and frames still buffered behind the error
        # (or a snapshot in flight) must not bring the state back from FAILED
        self.halted = False
        self._empty = False  # the book was left with no orders (LIVE, EMPTY_BOOK)
        self._bad_log = _LogThrottle()  # bad frames
        # the streams whose books say the book is whole (StreamSpec.book): a book from another
        # (Hyperliquid's fast top of the book) changes the book but neither brings it back to
        # LIVE nor counts as the book stream's pulse; None: every stream does
        try:
            self._book_streams: frozenset[str] | None = frozenset(s.name for s in adapter.streams() if s.book)
        except Exception:  # an adapter without streams (tests, replay of a bare parser)
            self._book_streams = None
        self._err_log = _LogThrottle()  # non-fatal venue errors

    # -- state ------------------------------------------------------------------------------
    def set_state(self, status: FeedStatus, reason: str = "") -> None:
        if self.halted and status is not FeedStatus.FAILED:
            return
        if self.market.set_state(status, reason) and self.bus is not None:
            self.bus.publish(STATE, self.market.venue, self.market.symbol, self.market.state)

    def restore_state(self) -> None:
        """The state the book itself calls for, after a STALE that turned out not to be:
        LIVE (saying so when it is empty) once in sync, SYNCING before."""
        if not self.sync.synced:
            self.set_state(FeedStatus.SYNCING, "awaiting snapshot")
        elif self.market.book.empty:
            self.set_state(FeedStatus.LIVE, EMPTY_BOOK)
        else:
            self.set_state(FeedStatus.LIVE)

    def halt(self, reason: str) -> None:
        """The feed has failed for good: FAILED from now on, and no frame is acted on."""
        self.set_state(FeedStatus.FAILED, reason)
        self.halted = True

    def reset_book(self, status: FeedStatus = FeedStatus.SYNCING, reason: str = "awaiting snapshot") -> None:
        """Forget the book (stream reconnected or resync started)."""
        self.sync.reset()
        self.set_state(status, reason)
        self._book_changed(0.0)

    # -- frames -----------------------------------------------------------------------------
    def on_frame(self, stream: str, data: str | bytes, ts_local: float) -> list[Action]:
        if self.halted:
            return []
        market = self.market
        market.on_frame(ts_local)
        events = None
        if self._parse_fast is not None:
            try:
                events = self._parse_fast(stream, data, ts_local)
            except Exception:  # a fast path that trips over an odd frame: the slow path decides
                events = None
        if events is None:
            try:
                events = self.adapter.parse(stream, data, ts_local)
            except BookFrameError as e:
                # a change to our book was lost and nothing later would show it: resync now
                self._bad_frame(stream, str(e))
                actions: list[Action] = []
                if self.sync.synced:
                    self._gap(f"unreadable book frame: {safe(e)}", actions)
                return actions
            except FrameError as e:
                return self._bad_frame(stream, str(e))
            except (KeyError, IndexError, TypeError, ValueError, AttributeError, ArithmeticError) as e:
                # a frame with the right shape on the outside but not inside (a 400-digit time
                # overflows a float): count it, never crash
                return self._bad_frame(stream, f"unexpected frame ({type(e).__name__}: {e})")
            for ev in events:
                if not _numbers_ok(ev):
                    # the whole frame is dropped; a lost delta then shows up as a gap and resyncs
                    return self._bad_frame(stream, NOT_FINITE)
        actions: list[Action] = []
        streams = self._book_streams
        whole = streams is None or stream in streams
        for ev in events:
            cls = ev.__class__
            if cls is BookDelta or isinstance(ev, BookDelta):
                res = self.sync.on_delta(ev)
                if res.status is _GAP:
                    self.sync.keep_for_repair(ev)  # before the reset the gap brings
                self._on_sync_result(res, ev.ts_exchange, ts_local, actions, whole)
            elif cls is Trade:
                market.add_trade(ev)
                if ev.kind != LIQUIDATION_ORDER:
                    # a liquidation report is no fill (counted as a liquidation) and its time
                    # is the liquidation's, not a push's
                    market.on_exchange_time(ev.ts_exchange, ts_local)
                    self.trades += 1
                if self.bus is not None:
                    self.bus.publish(TRADE, market.venue, market.symbol, ev)
            elif isinstance(ev, BookSnapshot):
                # the first book of a subscription carries the time of the book's last change,
                # seconds old on a quiet market: not a latency (a venue that pushes only whole
                # books, Hyperliquid's, has its later ones counted)
                # (a book made of two streams' pushes: the time of the push that made it)
                ts = getattr(ev, "pushed", ev.ts_exchange) if self.sync.synced else None
                self._on_sync_result(self.sync.on_snapshot(ev), ts, ts_local, actions, whole)
            elif isinstance(ev, Reply):
                actions.append(Send(ev.stream, ev.frame))
            elif isinstance(ev, Resync):
                self._gap(ev.reason, actions)
            elif isinstance(ev, VenueError):
                reason = safe(ev.reason)  # venue text: no terminal escapes in the log or the UI
                market.stats.last_error, market.stats.last_error_at = reason, time.time()
                # (a venue repeating a complaint at 800 a second filled the log)
                more = self._err_log.due(force=ev.fatal)
                if more is not None:
                    log.warning(
                        "%s %s: venue error on %s: %s%s", market.venue, market.symbol, ev.stream, reason,
                        f" (and {more} more venue errors since the last such line)" if more else "",
                    )  # fmt: skip
                if ev.fatal:
                    self.halt(reason)
                    actions.append(Fatal(reason))
                    break  # what the frame says after a fatal error is not acted on
        return actions

    def on_snapshot_body(self, body: bytes, ts_local: float) -> list[Action]:
        """A REST snapshot arrived (ResyncMode.REST venues)."""
        actions: list[Action] = []
        if self.halted:
            return actions
        try:
            snap = self.adapter.parse_snapshot(body, ts_local)
            if not _numbers_ok(snap):
                raise FrameError(NOT_FINITE)
        except (FrameError, KeyError, IndexError, TypeError, ValueError, ArithmeticError) as e:
            self.parse_errors += 1
            self.market.stats.bad_frames += 1
            reason = safe(f"bad snapshot: {e}")  # the venue's text: no terminal escapes
            self.market.stats.last_error, self.market.stats.last_error_at = reason, time.time()
            self.resync_pending = False
            actions.append(NeedResync(reason))
            return actions
        self.resync_pending = False
        # its time is when the venue took it, before the HTTP round trip: not a stream latency
        self._on_sync_result(self.sync.on_snapshot(snap), None, ts_local, actions)
        return actions

    # -- internals --------------------------------------------------------------------------
    def _bad_frame(self, stream: str, reason: str) -> list[Action]:
        reason = safe(reason)
        self.parse_errors += 1
        self.market.stats.bad_frames += 1
        self.market.stats.last_error, self.market.stats.last_error_at = reason, time.time()
        more = self._bad_log.due()
        if more is None:
            return []
        log.warning(
            "%s %s: bad frame on %s: %s%s",
            self.market.venue,
            self.market.symbol,
            stream,
            reason,
            f" (and {more} more bad frames since the last such line)" if more else "",
        )
        return []

    def _on_sync_result(
        self, res, ts_exchange: float | None, ts_local: float, actions: list[Action], whole: bool = True
    ) -> None:
        st = res.status
        if st is _APPLIED:
            market = self.market
            market.on_exchange_time(ts_exchange, ts_local)
            market.on_book_changed(ts_local, ts_exchange)
            if self.bus is not None:
                self.bus.publish(BOOK, market.venue, market.symbol)
            if not whole:
                return  # a stream that does not decide the state (see __init__): the book moved
            self.book_events += 1
            if res is EMPTIED:
                # in sync with a venue whose book has no orders (a deep option, a new listing):
                # live, and saying why there is nothing to show
                self.resync_pending = False
                self._empty = True
                self.set_state(FeedStatus.LIVE, EMPTY_BOOK)
                return
            if self._empty:
                self._empty = False
                if market.state.reason == EMPTY_BOOK:
                    self.set_state(FeedStatus.LIVE)
            if (self.resync_pending or market.state.status is not _LIVE) and self.sync.synced:
                self.resync_pending = False
                if market.state.status is not _LIVE:
                    self.set_state(FeedStatus.LIVE)
            return
        if st is not SyncStatus.IGNORED and whole:
            self.book_events += 1
        if st is SyncStatus.GAP:
            self._gap(res.reason, actions, refresh=res.refresh)

    def _gap(self, reason: str, actions: list[Action], refresh: bool = False) -> None:
        stats = self.market.stats
        if "checksum" in reason:
            stats.checksum_errors += 1
        elif not refresh:
            stats.gaps += 1
        self.market.resyncs += 1
        self.sync.reset()
        self.set_state(FeedStatus.SYNCING, reason)
        self._book_changed(0.0)
        if not self.resync_pending:
            self.resync_pending = True
            actions.append(NeedResync(reason))

    def _book_changed(self, ts_local: float) -> None:
        if ts_local:
            self.market.on_book_changed(ts_local)
        else:
            self.market.version += 1
        if self.bus is not None:
            self.bus.publish(BOOK, self.market.venue, self.market.symbol)
