"""The terminal driver: Textual's own, with a screen writer that outlives its terminal.

Textual's writer thread ends on the first write that fails (the terminal closed: EIO); its queue
then fills and the next screen update blocks the event loop for good. The app hung with its
feeds open, and since the loop never turned again, neither SIGHUP nor SIGTERM (handled on the
loop) could end it. Here a failed
write ends the app as a closed terminal's SIGHUP does, and the writer keeps taking (and
dropping) what is queued, so nothing waits on it meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import IO, Any

from textual.drivers import linux_driver
from textual.drivers._writer_thread import WriterThread
from textual.drivers.linux_driver import LinuxDriver

#: the exit status of an app whose terminal went away (as a SIGHUP's: 128 + 1)
TERMINAL_GONE = 129


#: how often the app checks that its terminal is still there (s)
TERMINAL_CHECK = 2.0


def terminal_fds() -> list[int]:
    """The descriptors Textual's terminal driver reads keys from and writes the screen to."""
    out = []
    for stream in (sys.__stdin__, sys.__stderr__):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            out.append(stream.fileno())
    return out


def isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


class SurvivingWriter(WriterThread):
    """``WriterThread`` that, when the terminal stops taking writes, calls ``on_gone`` once
    and then drains its queue without writing until it is stopped."""

    def __init__(self, file: IO[str], on_gone: Any) -> None:
        super().__init__(file)
        self._on_gone = on_gone
        self.gone = False

    def run(self) -> None:
        try:
            super().run()
            return
        except (OSError, ValueError):  # EIO on a closed pty, a closed file
            self.gone = True
            self._on_gone()
        get = self._queue.get
        while get() is not None:
            pass


class ObviewDriver(LinuxDriver):
    """``LinuxDriver`` whose screen writer is a ``SurvivingWriter``."""

    def start_application_mode(self) -> None:
        app = self._app

        def gone() -> None:
            loop = getattr(app, "_loop", None)
            if loop is not None and not loop.is_closed():
                loop.call_soon_threadsafe(lambda: app.exit(return_code=TERMINAL_GONE))

        def writer(file: IO[str]) -> WriterThread:
            return SurvivingWriter(file, gone)

        # the base method makes its writer by this module-level name; swapped only while it
        # runs, under a lock (a suspend and a resume run it again)
        with _SWAP:
            saved = linux_driver.WriterThread
            linux_driver.WriterThread = writer  # type: ignore[misc, assignment]
            try:
                super().start_application_mode()
            finally:
                linux_driver.WriterThread = saved  # type: ignore[misc]


_SWAP = threading.Lock()
