"""A ``websockets`` client connection that hands each message to a callback as it is parsed.

``websockets`` parses frames inside ``data_received`` and then queues every message for
``recv()``: a future, a queue round trip and an ``await`` per message. A market-data feed does
the same small amount of work for each message, in order, and keeps nothing, so here each
complete message goes straight from the parser to ``sink(payload, received_at)`` while the
read that carried it is still being processed. Everything else is ``websockets``' own: the
handshake, TLS, proxies, the frame parser and its limits (``max_size``), pings and pongs, the
close handshake and ``close_exc``.

Flow control falls out of it: a batch of frames is processed before the next read from the
socket, so a client that cannot keep up leaves the data in the kernel's buffers and TCP slows
the sender; nothing queues up in the process. ``received_at`` is the time the read returned
(one stamp per read).

One read can carry a thousand frames when a feed bursts (asyncio reads up to 256 KiB at a time),
and their processing would hold the event loop for that long: keys and paints wait behind it. So
the cutter works in slices of at most ``slice_seconds``: past that, the rest of the read waits
for the next turn of the loop (``call_soon``, with the socket not read meanwhile, so order and
flow control hold), and whatever else is ready runs first.

Messages that arrive before the session is ready (with the handshake answer, say) are held, up
to ``early_max``; past that the socket is not read until ``attach`` takes them.

Once attached, and while the connection is open, the common frame (a server's unmasked,
unfragmented text or binary frame without extension bits, within ``max_size``) is cut out of
the received bytes here, which costs a fraction of the general parser. Every other frame goes
to ``websockets`` whole: control frames (ping, pong, close) one at a time, so its parser is
always at a frame boundary; anything unusual (a fragment, reserved bits, a mask, an oversized
length) switches the connection to ``websockets``' parser for good, from that frame on, so
errors are detected and answered (1002, 1009 ...) exactly as ``websockets`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

Sink = Callable[[bytes, float], None]

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT
_OPEN = State.OPEN


class SinkConnection(ClientConnection):
    """``ClientConnection`` delivering data messages to a sink (see the module docstring)."""

    early_max = 256
    slice_seconds = 0.002  # longest run of frames delivered in one turn of the event loop

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sink: Sink | None = None
        self._rx_at = 0.0
        self._frags: list[bytes] | None = None
        self._early: list[tuple[bytes, float]] = []
        self._paused = False
        # fast frame cutting (see the module docstring); it needs to see websockets' size limit
        # and whether its parser holds part of a frame, else websockets parses everything
        proto = self.protocol
        self._limit: int | None = getattr(proto, "max_message_size", getattr(proto, "max_size", -1))
        self._slow = self._limit == -1 or not isinstance(getattr(getattr(proto, "reader", None), "buffer", None), bytearray)
        self._parts: list[bytes] = []  # received bytes not yet cut into frames
        self._have = 0  # their total length
        self._need = 0  # bytes the frame at their head needs (0: header not complete yet)
        self._backlog: bytes | None = None  # the rest of a read past its slice, for the next turn

    def attach(self, sink: Sink) -> None:
        """Start delivering to ``sink``: first the messages held so far, in order."""
        early, self._early = self._early, []
        for data, at in early:
            sink(data, at)
        self.sink = sink
        if self._paused:
            self._paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._backlog is not None:
            # reading is paused while a backlog waits; should bytes come anyway, they queue
            self._backlog += data
            return
        self._rx_at = time.time()
        if (
            self.sink is None
            or self._slow
            or self.protocol.state is not _OPEN
            or self.protocol.reader.buffer  # websockets holds part of a frame: let it finish
            or getattr(self.protocol, "current_size", None) is not None  # or a fragmented message
        ):
            super().data_received(data)
            return
        if self._parts:
            self._have += len(data)
            self._parts.append(data)
            if self._have < self._need:
                return  # a long frame still arriving: join once it is whole
            data = b"".join(self._parts)
            self._parts.clear()
            self._have = self._need = 0
        self._cut(data)

    def _cut(self, buf: bytes) -> None:
        """Deliver the whole frames at the start of ``buf``; keep the rest for the next read."""
        sink = self.sink
        at = self._rx_at
        limit = self._limit
        n = len(buf)
        i = 0
        count = 0
        deadline = time.perf_counter() + self.slice_seconds
        while n - i >= 2:
            b0 = buf[i]
            b1 = buf[i + 1]
            size = b1 & 0x7F
            head = 2
            if size == 126:
                if n - i < 4:
                    break
                size = (buf[i + 2] << 8) | buf[i + 3]
                head = 4
            elif size == 127:
                if n - i < 10:
                    break
                size = int.from_bytes(buf[i + 2 : i + 10], "big")
                head = 10
            op = b0 & 0x0F
            if (
                b0 & 0xF0 != 0x80  # not FIN, or extension bits set
                or b1 & 0x80  # masked: a server must not mask
                or (limit is not None and size > limit)
                or (op != 1 and op != 2 and (op < 8 or size > 125))  # a fragment, a bad opcode or control frame
            ):
                self._slow = True
                super().data_received(buf[i:])
                return
            end = i + head + size
            if end > n:
                break
            if op <= 2:
                sink(buf[i + head : end], at)
                count += 1
                if not count & 31 and end < n and time.perf_counter() > deadline:
                    self._defer(buf[end:])
                    return
            else:
                super().data_received(buf[i:end])  # ping, pong or close: websockets answers it
                if self.protocol.state is not _OPEN:
                    if end < n:
                        super().data_received(buf[end:])
                    return
                sink = self.sink
            i = end
        if i < n:
            rest = buf[i:]
            self._parts.append(rest)
            self._have = len(rest)
            self._need = self._head_and_size(rest)

    def _defer(self, rest: bytes) -> None:
        """Keep ``rest`` for the next turn of the loop and stop reading the socket until then."""
        self._backlog = rest
        self.transport.pause_reading()
        self.loop.call_soon(self._drain)

    def _drain(self) -> None:
        rest, self._backlog = self._backlog, None
        transport = self.transport
        if rest is None or transport.is_closing():
            return  # closed meanwhile: the session resyncs whatever book these frames were for
        try:
            if self.protocol.state is not _OPEN:
                super().data_received(rest)  # closing: websockets' parser, from this frame boundary
            else:
                self._cut(rest)
        except Exception:
            # as asyncio does when data_received raises: the connection ends (and the session
            # reconnects), rather than staying paused with nobody to resume it
            transport.abort()
            raise
        if self._backlog is None and not self._paused:
            transport.resume_reading()

    @staticmethod
    def _head_and_size(part: bytes) -> int:
        """Bytes the frame starting ``part`` needs in all, or 0 if its header is not complete."""
        if len(part) < 2:
            return 0
        size = part[1] & 0x7F
        if size == 126:
            return 4 + int.from_bytes(part[2:4], "big") if len(part) >= 4 else 0
        if size == 127:
            return 10 + int.from_bytes(part[2:10], "big") if len(part) >= 10 else 0
        return 2 + size

    def process_event(self, event) -> None:
        if self.response is None or event.__class__ is not Frame:
            super().process_event(event)  # the handshake answer
            return
        op = event.opcode
        if op is _TEXT or op is _BINARY:
            if not event.fin:
                self._frags = [event.data]
                return
            data = bytes(event.data)  # the parser hands out bytearrays
        elif op is _CONT:
            if self._frags is None:
                return  # the parser rejects a stray continuation before we see it
            self._frags.append(event.data)
            if not event.fin:
                return
            # bounded: the parser refuses a message whose frames add up to more than max_size
            data, self._frags = b"".join(self._frags), None
        else:
            super().process_event(event)  # ping, pong, close
            return
        sink = self.sink
        if sink is not None:
            sink(data, self._rx_at)
            return
        self._early.append((data, self._rx_at))
        if len(self._early) >= self.early_max and not self._paused:
            self._paused = True
            self.transport.pause_reading()


def sink_connection_factory(*args, **kwargs) -> SinkConnection:
    """``create_connection`` for ``websockets.asyncio.client.connect``."""
    return SinkConnection(*args, **kwargs)
