"""Failure injection for the simulator server: every frame it sends is passed through
``Faults.apply``, which may drop, corrupt (a wrong checksum, for dialects that have one) or
duplicate it; ``inject`` sends any text, and ``refuse_handshake`` answers upgrades with an HTTP
status (and optionally a Retry-After)."""

from __future__ import annotations

from collections.abc import Callable

from obview.sim.dialects.base import Out


class Faults:
    """Failure injection, consulted for every frame the server sends.

    Counters are global (not per connection): ``drop_next("delta", 2)`` drops the next two
    delta frames sent to any client.
    """

    def __init__(self) -> None:
        self._drop: dict[str, int] = {}
        self._corrupt: dict[str, int] = {}
        self._dup: dict[str, int] = {}
        self.refuse_status: int | None = None
        self.refuse_retry_after: str | None = None
        self.dropped = 0
        self.corrupted = 0
        self.duplicated = 0
        self._broadcast: Callable[[str], int] | None = None
        self._armed = False

    def drop_next(self, kind: str = "delta", n: int = 1) -> None:
        """Skip the next ``n`` frames of ``kind`` (the client sees a sequence gap)."""
        self._drop[kind] = self._drop.get(kind, 0) + n
        self._armed = True

    def corrupt_next(self, kind: str = "delta", n: int = 1) -> None:
        """Send the dialect's corrupted variant (bad checksum) of the next ``n`` frames of
        ``kind`` that have one."""
        self._corrupt[kind] = self._corrupt.get(kind, 0) + n
        self._armed = True

    def duplicate_next(self, kind: str = "delta", n: int = 1) -> None:
        """Send each of the next ``n`` frames of ``kind`` twice."""
        self._dup[kind] = self._dup.get(kind, 0) + n
        self._armed = True

    def inject(self, text: str) -> int:
        """Send a raw text frame to every client now; returns how many got it queued."""
        if self._broadcast is None:
            return 0
        return self._broadcast(text)

    def refuse_handshake(self, status: int | None = 503, retry_after: str | None = None) -> None:
        """Answer WebSocket upgrades with HTTP ``status`` (and a Retry-After header when
        ``retry_after`` is given) until called with None."""
        self.refuse_status = status
        self.refuse_retry_after = retry_after

    def clear(self) -> None:
        self._drop.clear()
        self._corrupt.clear()
        self._dup.clear()
        self.refuse_status = None
        self._armed = False

    def pending(self, kind: str) -> int:
        """Frames of ``kind`` still to be dropped."""
        return self._drop.get(kind, 0)

    def apply(self, out: Out) -> tuple[str, ...]:
        """The texts to actually send for ``out`` (none, one or two)."""
        if not self._armed:
            return (out.text,)
        kind = out.kind
        if self._drop.get(kind, 0) > 0:
            self._drop[kind] -= 1
            self.dropped += 1
            self._rearm()
            return ()
        text = out.text
        if out.corrupt is not None and self._corrupt.get(kind, 0) > 0:
            self._corrupt[kind] -= 1
            self.corrupted += 1
            text = out.corrupt
        if self._dup.get(kind, 0) > 0:
            self._dup[kind] -= 1
            self.duplicated += 1
            self._rearm()
            return (text, text)
        self._rearm()
        return (text,)

    def _rearm(self) -> None:
        self._armed = (
            any(self._drop.values()) or any(self._corrupt.values()) or any(self._dup.values())
        )
