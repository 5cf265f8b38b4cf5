"""A dialect makes the simulator speak one venue's wire protocol.

The server (``obview.sim.server``) owns one ``SimMarket`` per canonical symbol and, for each
accepted WebSocket connection, creates the dialect that claims the request path. The dialect
keeps that connection's subscriptions and turns simulator updates into the venue's frames:
subscribe acks, an initial snapshot, sequenced deltas (with checksums where the venue has
them), trades and heartbeat replies. REST requests (Binance depth snapshot, instrument
endpoints) are answered by ``http``.

Fault injection for tests goes through ``Faults``: the server consults it before sending, so
every dialect gets dropped deltas, corrupted checksums and so on for free where the dialect
marks frames with ``Out(kind=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from obview.sim.engine import SimMarket
    from obview.sim.events import SimUpdate


@dataclass(slots=True)
class Out:
    """A frame to send. ``kind`` is "delta", "snapshot", "trade" or "control"; faults act on it.
    ``corrupt`` is an alternative text with a wrong checksum (if the dialect has checksums)."""

    text: str
    kind: str = "control"
    corrupt: str | None = None


class Dialect:
    """Base class: one instance per connection."""

    name: ClassVar[str] = ""
    #: URL path prefixes this dialect serves, e.g. ("/public", "/market") for Binance
    paths: ClassVar[tuple[str, ...]] = ()

    def __init__(self, markets: dict[str, SimMarket], path: str) -> None:
        self.markets = markets  # canonical symbol -> SimMarket
        self.path = path

    def native_to_symbol(self, native: str) -> str | None:
        """Map a venue instrument name to a simulator symbol (None if unknown)."""
        from obview.venues.registry import native_map

        return native_map(self.name).get(native)

    def on_connect(self) -> list[Out]:
        """Frames sent right after the handshake (and subscriptions carried in the URL)."""
        return []

    def on_message(self, text: str) -> list[Out]:
        """Answer a client frame (subscribe, ping ...). Subscribing usually answers with an ack
        and, for venues that send one over WS, a snapshot of the market's current book."""
        return []

    def on_update(self, update: SimUpdate) -> list[Out]:
        """Encode one simulator step for the symbols this connection subscribed to."""
        return []

    def heartbeat(self) -> list[Out]:
        """Called about once a second: server-initiated pings where the venue sends them."""
        return []

    @classmethod
    def http(cls, markets: dict[str, SimMarket], path: str, query: dict[str, str], body: bytes) -> tuple[int, bytes] | None:
        """Answer a REST request under this dialect's paths, or None if not ours."""
        return None
