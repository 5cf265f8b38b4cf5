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

Messages that arrive before the session is ready (with the handshake answer, say) are held, up
to ``early_max``; past that the socket is not read until ``attach`` takes them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode

Sink = Callable[[bytes, float], None]

_TEXT, _BINARY, _CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT


class SinkConnection(ClientConnection):
    """``ClientConnection`` delivering data messages to a sink (see the module docstring)."""

    early_max = 256

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sink: Sink | None = None
        self._rx_at = 0.0
        self._frags: list[bytes] | None = None
        self._early: list[tuple[bytes, float]] = []
        self._paused = False

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
        self._rx_at = time.time()
        super().data_received(data)

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
