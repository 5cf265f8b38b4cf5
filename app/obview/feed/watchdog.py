"""The stale watchdog of a FeedSession's streams: silence, measured on the monotonic clock,
turns a stream STALE and then closes it; a snapshot that never comes is asked for again; a
book gone still is probed with a ping, and stays LIVE while its connection answers and the
silence is ordinary for it (``feed.cadence.Activity``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed

from obview.feed.cadence import Activity, Cadence
from obview.model import FeedStatus

if TYPE_CHECKING:
    from obview.feed.session import FeedSession, _Stream

#: the longest a probe of a quiet book's connection waits for its pong (s)
PROBE_TIMEOUT = 2.0
#: the shortest silence that makes a busy book STALE (s): ``Activity`` decides from there
BUSY_STALE = 5.0
#: the least time a fill through the book's touch may stand unanswered by a book change (s):
#: the trade and its book update can come on different sockets, or in different 100 ms batches
THROUGH_GRACE = 2.0
#: how long a stale close waits for the peer's answer before cutting the connection (s)
CLOSE_WAIT = 0.3
#: a check this much later than due (s): this process did not run meanwhile
SUSPENDED = 2.0
#: after such a stop, how long the connection has to be heard from (a frame, or the answer to
#: the ping sent at once) before the stop counts as ours and not the venue's silence too (s)
RESUME_PROOF = PROBE_TIMEOUT


async def watch(session: FeedSession, st: _Stream) -> None:
    """Runs beside one connection of ``st``: STALE after ``stale_after`` s of silence (for the
    book stream, measured from the venue's own cadence where it has one), the connection closed
    after the grace on top of that (the stream then reconnects), and a snapshot asked for again
    when the book has been SYNCING for ``sync_timeout`` s."""
    w = _Watch(session, st)
    try:
        await w.run()
    finally:
        w.end()


class _Watch:
    def __init__(self, session: FeedSession, st: _Stream) -> None:
        self.session, self.st = session, st
        book = st is session.book_stream
        self.is_book = book
        self.default = session.opts.stale_after or st.spec.stale_after
        # a fixed stale time from the options overrides the measured one
        self.cadence: Cadence | None = st.cadence if session.opts.stale_after is None and book else None
        if self.cadence is not None:
            self.cadence.restart()
        self.stale_after = self.cadence.stale_after(self.default) if self.cadence else self.default
        shortest = min(self.default, self.cadence.floor) if self.cadence else self.default
        self.check = min(0.5, shortest / 4, session.opts.sync_timeout / 4)
        # Intervals run on the monotonic clock: the wall clock can be stepped (NTP, a VM
        # restored, a laptop resumed), and silence measured on it hid a dead feed for as long
        # as the step back, or cut a live one after a step forward. Frames carry wall stamps
        # (latency needs them), so a new one is placed by its wall age, kept within the
        # interval since the last look.
        now = time.monotonic()
        self.heard_at = self.checked_at = self.unsynced_since = now
        self.heard_rx = st.last_rx
        # a quiet book on a connection that answers is the market, not a dead feed; a venue
        # pushing whole books on a clock has its cadence instead
        self.activity: Activity | None = st.activity if book and self.cadence is None else None
        if self.activity is not None:
            self.activity.watching(now)
        self.answered_at = self.probed_at = 0.0
        self.quiet = False  # the book's silence is judged as a quiet book's (probe answers count)
        self.snapshot_seen = False  # this connection's first book event has come
        self.changes = 0  # book changes on this connection after its first book
        # the probe runs beside the loop: waiting on its pong held up every other check (a
        # venue that never reads, the snapshot timeout)
        self.probe: asyncio.Task | None = None
        #: the fill through the book's touch being judged: (its wall stamp, its place on the
        #: monotonic clock), placed when first seen as ``_heard`` places frames
        self.through: tuple[float, float] = (0.0, 0.0)
        #: a stop of this process not yet shown to be ours: (its end, its length, wall time)
        self.resumed: tuple[float, float, float] | None = None

    def end(self) -> None:
        if self.probe is not None:
            self.probe.cancel()
        if self.activity is not None:
            self.activity.paused(time.monotonic())

    async def run(self) -> None:
        session, st = self.session, self.st
        while True:
            await asyncio.sleep(self.check)
            now = time.monotonic()
            late = now - self.checked_at - self.check
            if late > SUSPENDED:
                self._suspended(now - late, now)
            ws = st.ws
            if ws is not None and _unsent(ws) > session.opts.max_send_buffer:
                st.close_reason = f"venue not reading (over {session.opts.max_send_buffer / 2**20:g} MiB unsent)"
                ws.transport.abort()  # a close frame would only queue behind the rest
                return
            if st is session.book_stream:
                self._snapshot_timeout(now)
            self._heard(now)
            self.checked_at = now
            if self.resumed is not None:
                self._proof(now)
            silent, why = self._silence(now)
            if silent >= self.stale_after * (1 + session.opts.stale_grace):
                if ws is not None:
                    st.close_reason = why
                    if self.activity is not None:
                        # a silence that ended this badly teaches nothing of the book's habit;
                        # a quiet book's, vouched for by its connection's answers, was the market
                        self.activity.paused(now if self.quiet and self.answered_at > self.heard_at else self.heard_at)
                    if st is session.book_stream:
                        self._unsee()
                    await _close(ws, "stale")
                return
            self._show(silent, why)

    def _suspended(self, start: float, end: float) -> None:
        """This process did not run from ``start`` to ``end`` (ctrl+z, a stalled loop): not
        the venue's silence until shown to be (every feed read STALE and reconnected on ``fg``,
        the built-in simulator's too, which had stopped with it). The connection is pinged at
        once; heard from within RESUME_PROOF (``_proof``), the stop was ours; not heard from,
        the silence counts whole again (a venue that died meanwhile read LIVE for a whole
        stale time more). A stop while the last one is unproven is silence at once."""
        if self.resumed is not None:
            return
        gap = end - start
        self.heard_at += gap
        # a frame read before the stop is placed at the stop's end, not by its wall age
        self.checked_at = end
        self.unsynced_since += gap
        if self.answered_at:
            self.answered_at += gap
        if self.probed_at:
            self.probed_at += gap
        if self.activity is not None:
            self.activity.paused(start)
            self.activity.watching(end)
        self.resumed = (end, gap, time.time())
        ws = self.st.ws
        if ws is not None and (self.probe is None or self.probe.done()):
            self.probed_at = end
            self.probe = asyncio.ensure_future(_probe(ws, RESUME_PROOF))
            self.probe.add_done_callback(self._on_answer)

    def _proof(self, now: float) -> None:
        """After a stop: heard from since (a frame read, or the ping answered), the stop was
        ours; not within RESUME_PROOF, the silence is the venue's too and counts whole."""
        end, gap, wall = self.resumed  # type: ignore[misc]
        if self.st.last_rx > wall or self.answered_at > end:
            self.resumed = None
        elif now - end >= RESUME_PROOF:
            self.resumed = None
            self.heard_at -= gap

    def _unsee(self) -> None:
        """The heatmap columns since the book (or, for a quiet one, its connection) was last
        heard from drew a book that had stopped: gaps. Only on a stale close: a book that
        resumes on the same connection was right all along (its sequence shows nothing was
        missed)."""
        market = self.session.market
        cut = market.stats.last_book_at
        if self.quiet and self.answered_at > self.heard_at:
            # a quiet book's stillness was vouched for by its answers (a busy one's was not)
            cut = max(cut, time.time() - (time.monotonic() - self.answered_at))
        if cut:
            market.heatmap.unsee_since(cut)

    def _snapshot_timeout(self, now: float) -> None:
        # a snapshot that never comes (lost, or the venue ignored the request) would leave the
        # book SYNCING forever while deltas keep the stream busy: ask again
        session = self.session
        if session.pipeline.sync.synced:
            self.unsynced_since = now
        elif now - self.unsynced_since >= session.opts.sync_timeout and not session.repair.busy:
            self.unsynced_since = now
            session.repair.request(f"no snapshot for {session.opts.sync_timeout:g} s")

    def _heard(self, now: float) -> None:
        st = self.st
        if st.last_rx == self.heard_rx:
            return
        self.heard_rx = st.last_rx
        self.heard_at = now - min(max(time.time() - st.last_rx, 0.0), now - self.checked_at)
        if self.cadence is not None:
            self.cadence.changed(self.heard_at)
            self.stale_after = self.cadence.stale_after(self.default)
            self.session.market.stats.book_every = self.cadence.typical
        if self.activity is not None:
            # the connection's first book is its snapshot, not the market moving: counted, a
            # book silent for good turned busy reconnect after reconnect
            if self.snapshot_seen:
                self.activity.changed(self.heard_at)
                self.changes += 1
            self.snapshot_seen = True

    def _silence(self, now: float) -> tuple[float, str]:
        """How long the stream counts as silent, on the scale of ``stale_after`` (STALE there,
        the close at the grace on top), and how to say so."""
        silent = now - self.heard_at
        stale_after, act, ws = self.stale_after, self.activity, self.st.ws
        if act is not None and ws is not None:
            # what silence is ordinary for this book, from its habit up to its last change: a
            # busy one (changing in most seconds) gone still for a few seconds is already wrong,
            # sooner than the venue's fixed stale time (a frozen BTC book read LIVE for 10 s); a
            # quiet one may be still far longer while its connection answers
            p = act.share(self.heard_at)
            if p is None and self.changes == 0 and self.session.pipeline.sync.synced and self.st.got_frame:
                # still since its first book: quiet from the start, and only the silence so far
                # to go on (a book that changed and then froze, or one that never sent a book,
                # gets the venue's stale time until its habit is known; so does a book taken
                # from REST on a socket that has sent nothing: Binance's read LIVE for 300 s)
                p = act.share(now)
            ordinary = (
                stale_after if p is None
                else act.ordinary_silence(p, min(BUSY_STALE, stale_after), self.session.opts.quiet_max)
            )  # fmt: skip
            if p is None and self.changes:
                # a young feed (its habit not known yet) that has been busy from the start: its
                # first seconds may shorten the venue's stale time, never lengthen it (a book
                # frozen 4 s after a switch read LIVE for the venue's 10-20 s)
                early = act.early_share(self.heard_at)
                if early is not None:
                    ordinary = act.ordinary_silence(early, min(BUSY_STALE, stale_after), stale_after)
            first = min(ordinary, stale_after)
            due = now - max(self.answered_at, self.probed_at) >= first / 2
            if first / 2 <= silent < max(ordinary, stale_after) and due and (self.probe is None or self.probe.done()):
                # does the connection still answer? (an answer counts as data only within the
                # ordinary silence; it also says which silence this is)
                self.probed_at = now
                self.probe = asyncio.ensure_future(_probe(ws, min(PROBE_TIMEOUT, first / 2)))
                self.probe.add_done_callback(self._on_answer)
            self.quiet = ordinary > stale_after
            if ordinary < stale_after:
                silent += stale_after - ordinary  # STALE at the ordinary silence
            elif self.answered_at > self.heard_at:
                # silent as long as the connection has not answered; once the book's silence
                # is past the ordinary, STALE and the reconnect follow as for any silence
                silent = now - self.answered_at if silent < ordinary else silent - ordinary + stale_after
        # a book gone still while its connection answers: the stream is stuck
        what = "no book data" if self.answered_at > self.heard_at else "no data"
        why = f"{what} for {now - self.heard_at:.1f} s"
        if self.is_book:
            silent, why = self._through(now, silent, why)
        return silent, why

    def _through(self, now: float, silent: float, why: str) -> tuple[float, str]:
        """A fill through the book's touch that no book change has answered since: the book
        is behind the venue's however its connection answers (a quiet book's allowance kept
        a book frozen from its first snapshot LIVE for 300 s while trades printed through it).
        STALE once it stands longer than the grace (2 s; for a venue pushing whole books on a
        clock, half as long again as its longest recent push interval), the close a stale time
        after. Placed on the monotonic clock as frames are."""
        stats = self.session.market.stats
        through = stats.through_at
        if not through or not self.session.pipeline.sync.synced:
            return silent, why
        if self.through[0] != through:
            # placed on the monotonic clock by its wall age, within the interval since the
            # last look: a step of the wall clock neither closes a sound feed nor hides a
            # frozen one
            self.through = (through, now - min(max(time.time() - through, 0.0), 2 * self.check))
        age = now - self.through[1]
        grace = THROUGH_GRACE
        if self.st.spec.stale_cadence is not None:
            # whole books on a clock (Hyperliquid's every 2-5 s, irregularly): a fill runs
            # ahead of the book until the next push; judged only once the pushes' longest
            # recent interval is known, and given half as long again
            longest = self.cadence.longest if self.cadence is not None else None
            if longest is None:
                return silent, why
            grace = max(grace, 1.5 * longest)
        if age <= grace:
            return silent, why
        over = self.stale_after + age - grace
        if over <= silent:
            return silent, why
        return over, f"trades print through the book, no book change for {age:.1f} s"

    def _on_answer(self, t: asyncio.Task) -> None:
        if not t.cancelled() and t.result():
            self.answered_at = time.monotonic()

    def _show(self, silent: float, why: str) -> None:
        session, st = self.session, self.st
        if silent >= self.stale_after and not st.stale:
            st.stale = True
            session._stream_state(st, FeedStatus.STALE, why)
            if session.recorder is not None and st.conn:
                session.recorder.stale(why, st.conn)
        elif st.stale and silent < self.stale_after:
            # its connection answered and the silence turned out ordinary for this book
            st.stale = False
            if st is session.book_stream:
                st.status, st.reason = FeedStatus.LIVE, ""
                session.pipeline.restore_state()
                session._publish_state()
                if session.recorder is not None and st.conn:
                    session.recorder.resumed("the connection answers", st.conn)
            else:
                session._stream_state(st, FeedStatus.LIVE, "")
        elif st.stale:
            session._stream_state(st, FeedStatus.STALE, why)


async def _close(ws, reason: str) -> None:
    """Close ``ws``, or cut it off when its peer does not answer the close within CLOSE_WAIT:
    a stopped venue reads nothing, and the handshake's wait (2 s) held STALE, its count
    standing still, before RECONNECTING."""
    try:
        await asyncio.wait_for(ws.close(1000, reason), CLOSE_WAIT)
    except (TimeoutError, ConnectionClosed, RuntimeError, OSError):
        with contextlib.suppress(AttributeError, RuntimeError):
            ws.transport.abort()


async def _probe(ws, timeout: float) -> bool:
    """Whether the connection answers a ping within ``timeout`` s (a WebSocket control ping:
    every venue's server answers it, whatever its own heartbeat)."""
    try:
        waiter = await ws.ping()
        await asyncio.wait_for(waiter, timeout)
    except (ConnectionClosed, TimeoutError, RuntimeError, OSError):
        return False
    return True


def _unsent(ws) -> int:
    with contextlib.suppress(AttributeError, RuntimeError):
        return ws.transport.get_write_buffer_size()
    return 0
