"""Demo venue: the local simulator speaking the demo protocol (docs/DEMO_PROTOCOL.md).

Snapshot + deltas chained by ``seq`` / ``prev_seq`` (the default ``BookSync`` rule), trades
with the taker side, ``{"op":"resync"}`` for a fresh snapshot after a gap.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit, urlunsplit

from obview.model import BookDelta, BookSnapshot, Instrument, Level, Side, Trade
from obview.sim.engine import SIM_SYMBOLS
from obview.venues.base import (
    Event,
    FrameError,
    ResyncMode,
    StreamSpec,
    VenueAdapter,
    VenueError,
    dumps,
    loads,
)

STREAM = "demo"
PING = dumps({"op": "ping"})
_QUIET = frozenset({"subscribed", "unsubscribed", "pong", "heartbeat"})


def _levels(raw: object) -> list[Level]:
    if not isinstance(raw, list):
        raise FrameError("levels must be a list")
    return [(float(p), float(s)) for p, s in raw]


class DemoAdapter(VenueAdapter):
    """The built-in simulator (run ``obview demo-server`` or let the app start one)."""

    name: ClassVar[str] = "demo"
    title: ClassVar[str] = "Demo (simulator)"
    symbols: ClassVar[dict[str, str]] = {s: s for s in SIM_SYMBOLS}
    resync_mode: ClassVar[ResyncMode] = ResyncMode.RESUBSCRIBE
    default_endpoint: ClassVar[str] = ""  # the app fills in the local server's URL
    channel: ClassVar[str] = "local simulator: snapshot + seq/prev_seq deltas, trades"

    def stream_url(self) -> str:
        """The endpoint, with ``/demo`` added when it names no path."""
        parts = urlsplit(self.endpoint)
        if parts.path in ("", "/"):
            parts = parts._replace(path="/demo")
        return urlunsplit(parts)

    def streams(self) -> list[StreamSpec]:
        return [
            StreamSpec(
                name=STREAM,
                url=self.stream_url(),
                subscribe=[dumps({"op": "subscribe", "symbol": self.native})],
                ping_interval=10.0,
                ping_frame=PING,
                stale_after=5.0,
            )
        ]

    def resubscribe_frames(self, stream: str) -> list[str]:
        return [dumps({"op": "resync", "symbol": self.native})]

    def parse(self, stream: str, frame: str | bytes, ts_local: float) -> list[Event]:
        msg = loads(frame)
        if not isinstance(msg, dict):
            raise FrameError("expected a JSON object")
        kind = msg.get("type")
        if kind in _QUIET:
            return []
        if kind == "error":
            reason = msg.get("reason")
            if not isinstance(reason, str):
                raise FrameError("error without a reason")
            symbol = msg.get("symbol")
            if symbol is not None and symbol != self.native:
                return []
            return [VenueError(stream, reason, fatal=msg.get("fatal") is True)]
        if kind not in ("snapshot", "delta", "trade"):
            raise FrameError(f"unknown message type {str(kind)[:40]!r}")
        if msg.get("symbol") != self.native:
            return []
        try:
            ts = msg["ts"] / 1000.0
            if kind == "delta":
                return [
                    BookDelta(
                        venue=self.name,
                        symbol=self.symbol,
                        bids=_levels(msg["bids"]),
                        asks=_levels(msg["asks"]),
                        seq=int(msg["seq"]),
                        prev_seq=int(msg["prev_seq"]),
                        ts_exchange=ts,
                        ts_local=ts_local,
                    )
                ]
            if kind == "trade":
                return [
                    Trade(
                        venue=self.name,
                        symbol=self.symbol,
                        price=float(msg["price"]),
                        size=float(msg["size"]),
                        side=Side(msg["side"]),
                        trade_id=str(msg["id"]),
                        ts_exchange=ts,
                        ts_local=ts_local,
                    )
                ]
            return [
                BookSnapshot(
                    venue=self.name,
                    symbol=self.symbol,
                    bids=_levels(msg["bids"]),
                    asks=_levels(msg["asks"]),
                    seq=int(msg["seq"]),
                    ts_exchange=ts,
                    ts_local=ts_local,
                )
            ]
        except FrameError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise FrameError(f"bad {kind} message: {type(e).__name__} {e}") from None

    def default_instrument(self) -> Instrument:
        _mid, tick, lot = SIM_SYMBOLS.get(self.native, SIM_SYMBOLS["BTC-PERP"])
        return Instrument(
            venue=self.name,
            symbol=self.symbol,
            native=self.native,
            tick=tick,
            lot=lot,
            size_unit="base",
            base=self.native.split("-")[0],
            quote="USD",
        )
