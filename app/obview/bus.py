"""Bus: notifications from feeds to viewers, never blocking, never unbounded.

Topics are (kind, venue, symbol). Book and state topics are *conflated*: a subscriber sees
only that something changed and the latest payload, however many publishes happened. Trade
topics are *buffered*: each subscriber has a bounded ring and a count of what it dropped
because it was too slow. Publishing is a synchronous call from the event loop thread.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

BOOK = "book"
STATE = "state"
TRADE = "trade"

Topic = tuple[str, str, str]


class ConflatedSubscription:
    """Latest-value-wins: ``dirty`` is set on publish and cleared by ``take``."""

    __slots__ = ("topic", "latest", "dirty", "published", "_event")

    def __init__(self, topic: Topic) -> None:
        self.topic = topic
        self.latest: Any = None
        self.dirty = False
        self.published = 0
        self._event = asyncio.Event()

    def _push(self, payload: Any) -> None:
        self.latest = payload
        self.dirty = True
        self.published += 1
        self._event.set()

    def take(self) -> tuple[bool, Any]:
        """(was dirty, latest payload); clears the dirty mark."""
        was = self.dirty
        self.dirty = False
        self._event.clear()
        return was, self.latest

    async def wait(self) -> Any:
        await self._event.wait()
        return self.take()[1]


class BufferedSubscription:
    """Bounded FIFO; when full, the oldest item is dropped and counted."""

    __slots__ = ("topic", "items", "dropped", "_event")

    def __init__(self, topic: Topic, maxlen: int) -> None:
        self.topic = topic
        self.items: deque[Any] = deque(maxlen=maxlen)
        self.dropped = 0
        self._event = asyncio.Event()

    def _push(self, payload: Any) -> None:
        if len(self.items) == self.items.maxlen:
            self.dropped += 1
        self.items.append(payload)
        self._event.set()

    def drain(self, limit: int | None = None) -> list[Any]:
        out = []
        items = self.items
        n = len(items) if limit is None else min(limit, len(items))
        for _ in range(n):
            out.append(items.popleft())
        if not items:
            self._event.clear()
        return out

    async def wait(self) -> list[Any]:
        await self._event.wait()
        return self.drain()


class Bus:
    """Topic registry. ``publish`` costs O(subscribers) and never awaits."""

    def __init__(self, default_buffer: int = 4096) -> None:
        self.default_buffer = default_buffer
        self._subs: dict[Topic, list[ConflatedSubscription | BufferedSubscription]] = {}

    def subscribe(self, kind: str, venue: str, symbol: str, maxlen: int | None = None):
        topic = (kind, venue, symbol)
        sub: ConflatedSubscription | BufferedSubscription
        if kind == TRADE:
            sub = BufferedSubscription(topic, maxlen or self.default_buffer)
        else:
            sub = ConflatedSubscription(topic)
        self._subs.setdefault(topic, []).append(sub)
        return sub

    def unsubscribe(self, sub: ConflatedSubscription | BufferedSubscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.topic]

    def publish(self, kind: str, venue: str, symbol: str, payload: Any = None) -> int:
        """Deliver to every subscriber of the topic; returns how many got it."""
        subs = self._subs.get((kind, venue, symbol))
        if not subs:
            return 0
        for s in subs:
            s._push(payload)
        return len(subs)

    def subscriber_count(self) -> int:
        return sum(len(v) for v in self._subs.values())
