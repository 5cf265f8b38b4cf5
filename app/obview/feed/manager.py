"""FeedManager: the feeds the app has open, bounded to a few warm ones.

Switching back to a recently viewed venue is instant because its session is still running;
the least recently viewed session beyond ``warm_limit`` is stopped. The demo venue's
simulator server is started in-process on 127.0.0.1 the first time it is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict

from obview.bus import Bus
from obview.feed.session import FeedSession, SessionOptions
from obview.market import Market
from obview.model import FeedState, FeedStatus
from obview.symbols import normalize
from obview.text import shown
from obview.venues.registry import get_adapter, venue_names


class _Open:
    __slots__ = ("session", "market", "task")

    def __init__(self, session: FeedSession, market: Market, task: asyncio.Task) -> None:
        self.session, self.market, self.task = session, market, task


class FeedManager:
    def __init__(
        self,
        *,
        bus: Bus | None = None,
        venues: list[str] | None = None,
        endpoints: dict[str, str] | None = None,
        rest_endpoints: dict[str, str] | None = None,
        seed: int = 1,
        warm_limit: int = 3,
        options: SessionOptions | None = None,
        recorder=None,
        demo_rate: float = 20.0,
    ) -> None:
        self.bus = bus or Bus()
        self.venues = list(venues) if venues else venue_names()
        self.endpoints = dict(endpoints or {})
        self.rest_endpoints = dict(rest_endpoints or {})
        self.seed = seed
        self.warm_limit = max(1, warm_limit)
        self.options = options
        self.recorder = recorder
        self.demo_rate = demo_rate
        self._open: OrderedDict[tuple[str, str], _Open] = OrderedDict()
        self._pinned: set[tuple[str, str]] = set()  # held open by the compare view
        self._demo_server = None
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task] = set()  # feeds being closed outside the lock
        self._closed = False

    def validate(self, venue: str, symbol: str) -> tuple[str, str]:
        """Raise ValueError with one line naming the valid choices."""
        cls = get_adapter(venue)
        sym = normalize(symbol)
        if sym not in cls.symbols:
            raise ValueError(f"unknown symbol {shown(symbol)} for venue {venue}; valid: {', '.join(sorted(cls.symbols))}")
        return venue, sym

    async def open(self, venue: str, symbol: str, *, pin: bool = False) -> Market:
        """The market of (venue, symbol), its feed started if it is not open yet.

        ``pin`` opens it for a look alongside the one on screen (the compare view): it is kept
        past the warm limit until ``unpin``, and a feed opened that way is the first to go then,
        since it was never viewed.
        """
        venue, symbol = self.validate(venue, symbol)
        gone: list[_Open] = []
        async with self._lock:
            if self._closed:
                # an open still waiting for the lock when the manager closed would start a feed
                # nobody ends
                raise RuntimeError("feed manager closed")
            key = (venue, symbol)
            if key in self._open:
                o = self._open[key]
                if not o.task.done() or pin:
                    # a look alongside takes the feed as it is, a FAILED one included: a new
                    # market for it there would not be the one on screen, and its place in
                    # the order would make it the first closed afterwards
                    if pin:
                        self._pinned.add(key)
                    else:
                        self._open.move_to_end(key)
                    return o.market
                # the session has ended (a fatal venue error): asking again tries again
                del self._open[key]
                await _end(o)
            adapter = await self._make_adapter(venue, symbol)
            market = Market(adapter.default_instrument(), whole_book=adapter.whole_book)
            session = FeedSession(adapter, market, self.bus, options=self.options, recorder=self.recorder)
            task = session.start()
            self._open[key] = _Open(session, market, task)
            if pin:
                # an extra, on top of the warm ones (the one on screen among them): nothing is
                # closed for it
                self._pinned.add(key)
                self._open.move_to_end(key, last=False)
            else:
                gone = self._evict(keep=key)
        await self._close(gone)
        return market

    async def unpin(self) -> None:
        """End the compare view's hold: feeds beyond the warm limit are closed, the ones never
        viewed first."""
        async with self._lock:
            self._pinned.clear()
            gone = self._evict()
        await self._close(gone)

    def _evict(self, keep: tuple[str, str] | None = None) -> list[_Open]:
        """Take out the least recently viewed feeds beyond the warm limit (never a pinned one,
        nor ``keep``, the one just asked for); the caller closes them."""
        gone = []
        while len(self._open) > self.warm_limit:
            key = next((k for k in self._open if k not in self._pinned and k != keep), None)
            if key is None:
                break
            gone.append(self._open.pop(key))
        return gone

    async def _close(self, gone: list[_Open]) -> None:
        """Close feeds together, outside the lock: a switch to a cold venue pressed meanwhile
        does not wait for each close handshake in turn. The closes are tasks of their own, so a
        switch cancelled while they run leaves none of them half done."""
        if not gone:
            return
        tasks = [asyncio.ensure_future(_end(o)) for o in gone]
        self._closing.update(tasks)
        for t in tasks:
            t.add_done_callback(self._closing.discard)
        await asyncio.shield(asyncio.gather(*tasks, return_exceptions=True))

    async def _make_adapter(self, venue: str, symbol: str):
        cls = get_adapter(venue)
        endpoint = self.endpoints.get(venue)
        if venue == "demo" and not endpoint:
            if self._demo_server is None:
                from obview.sim.server import start_server

                self._demo_server = await start_server(seed=self.seed, rate=self.demo_rate)
            endpoint = self._demo_server.url("/demo")
        return cls(symbol, endpoint=endpoint, rest_endpoint=self.rest_endpoints.get(venue))

    def get(self, venue: str, symbol: str) -> Market | None:
        o = self._open.get((venue, normalize(symbol)))
        return o.market if o else None

    def state(self, venue: str, symbol: str) -> FeedState | None:
        m = self.get(venue, symbol)
        return m.state if m else None

    def retry_now(self, venue: str, symbol: str) -> bool:
        """Reconnect the feed now if it waits out a backoff (the user's key); True if it was."""
        session = self.session(venue, symbol)
        return session is not None and session.retry_now()

    def can_retry_now(self, venue: str, symbol: str) -> bool:
        """Whether the feed waits out a backoff the user may cut short."""
        session = self.session(venue, symbol)
        return session is not None and session.can_retry_now()

    def session(self, venue: str, symbol: str) -> FeedSession | None:
        o = self._open.get((venue, normalize(symbol)))
        return o.session if o else None

    @property
    def demo_server(self):
        return self._demo_server

    async def close(self) -> None:
        # under the lock: an open in flight finishes first, and its feed is closed with the rest
        async with self._lock:
            self._closed = True
            opened, self._open = list(self._open.values()), OrderedDict()
            self._pinned.clear()
        await self._close(opened)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._demo_server is not None:
            server, self._demo_server = self._demo_server, None
            await server.close()


async def _end(o: _Open) -> None:
    """Stop a session and wait for its task, so none outlives its place in the manager."""
    await o.session.stop()
    o.task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await o.task
    # nothing feeds it any more: should it still be on screen somewhere, it must not say LIVE
    o.market.set_state(FeedStatus.FAILED, "feed closed")
