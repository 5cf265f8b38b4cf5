"""Command line: ``obview SYMBOL [--venue V]`` and the helper commands.

    obview BTC-PERP [--venue V] [--endpoint URL] [--rest-endpoint URL] [--seed S]
                    [--print --duration N] [--record FILE] [--config FILE]
    obview venues
    obview demo-server [--host H] [--port P] [--seed S]
    obview replay FILE [--venue NAME] [--symbol S | --instrument NATIVE] --summary

Bad input is one line on stderr naming what is valid, exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import logging.handlers
import math
import os
import sys
from pathlib import Path

from obview import __version__
from obview.printmode import OutputGone, print_mode, say_recording_stopped
from obview.text import shown

EXIT_USAGE = 2
#: the simulator's step rate ceiling (per symbol): a burst test's 20k deltas/s is far below it
MAX_SIM_RATE = 100_000.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _os_reason(e: OSError) -> str:
    """An OSError in a few words (asyncio's bind error repeats the address before them)."""
    reason = e.strerror or str(e)
    if reason.startswith("error while attempting to bind"):
        # Python 3.13 puts "[errno 98]" before the words: take the system's words for the errno
        reason = os.strerror(e.errno).lower() if e.errno else reason.rsplit(": ", 1)[-1]
    return reason


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (as written, or the same file on disk)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.exists() and pb.exists():
            return pa.samefile(pb)
        return pa.resolve() == pb.resolve()
    except OSError:
        return False


def _fail(msg: str) -> int:
    sys.stderr.write(f"obview: error: {msg}\n")
    return EXIT_USAGE


def _main_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="obview",
        description="Terminal order-book visualizer: depth ladder, trade tape and liquidity heatmap.",
        epilog="Other commands: 'obview venues', 'obview demo-server', 'obview replay FILE'. "
        "Use --venue demo for the built-in simulator (works offline).",
    )
    p.add_argument("symbol", nargs="?", help="canonical symbol, e.g. BTC-PERP (default from config)")
    p.add_argument("--venue", "-v", help="venue name (see 'obview venues')")
    p.add_argument("--endpoint", help="WebSocket base URL override (testing, mirrors)")
    p.add_argument("--rest-endpoint", help="REST base URL override for venues with REST snapshots")
    p.add_argument("--seed", type=int, default=1, help="simulator seed for --venue demo (default 1)")
    p.add_argument("--config", help="config file (default: $XDG_CONFIG_HOME/obview/config.toml)")
    p.add_argument("--record", metavar="FILE", help="record raw frames to FILE (JSON lines)")
    p.add_argument("--print", dest="print_mode", action="store_true", help="headless: print one JSON line per second")
    p.add_argument("--duration", type=float, default=None, help="with --print: seconds to run (default: until Ctrl-C)")
    p.add_argument(
        "--compare",
        action="store_true",
        help="every venue side by side: open on the compare view (key x), or with --print one JSON line a second across venues",
    )
    p.add_argument("--log", metavar="FILE", help="write a debug log to FILE")
    p.add_argument("--version", action="version", version=f"obview {__version__}")
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP: unwinds as Ctrl-C does (feeds closed, a recording closed whole)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_terminate(signum: int, _frame: object) -> None:
    raise _Terminated(signum)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    import signal

    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not the main thread: leave it
            signal.signal(sig, _on_terminate)
    try:
        if argv and argv[0] == "venues":
            return cmd_venues(argv[1:])
        if argv and argv[0] == "demo-server":
            return cmd_demo_server(argv[1:])
        if argv and argv[0] == "replay":
            return cmd_replay(argv[1:])
        return cmd_view(argv)
    except _Terminated as e:
        return 128 + e.signum
    except KeyboardInterrupt:
        return 130


def cmd_venues(argv: list[str]) -> int:
    p = _Parser(prog="obview venues", description="List venues and the symbols each maps.")
    p.parse_args(argv)
    from obview.venues.registry import get_adapter, venue_names

    lines = []
    for name in venue_names():
        try:
            cls = get_adapter(name)
        except Exception as e:  # a broken plug-in must not hide the others
            lines.append(f"{name:12s} (unavailable: {e})")
            continue
        syms = ", ".join(f"{k}={v}" for k, v in sorted(cls.symbols.items()))
        lines.append(f"{name:12s} {cls.title or name}: {syms}")
    return _write_out(lines)


def _write_out(lines: list[str]) -> int:
    """Print ``lines`` to stdout: quietly done when the reader has gone (``| head``), one line
    and status 1 when stdout refuses them (a full disk); either was a traceback."""
    from obview.printmode import OutputGone, write_line

    try:
        for line in lines:
            write_line(line)
    except OutputGone as e:
        if e.reason is None:
            return 0
        sys.stderr.write(f"obview: error: {e.reason}\n")
        return 1
    return 0


def cmd_demo_server(argv: list[str]) -> int:
    p = _Parser(prog="obview demo-server", description="Run the market simulator as a local WebSocket server.")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1; anything else is on you)")
    p.add_argument("--port", type=int, default=0, help="port (default: an ephemeral port)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=20.0, help="simulator steps per second per symbol")
    a = p.parse_args(argv)
    if not 0 <= a.port <= 65535:
        return _fail(f"--port {a.port} is out of range 0-65535")
    if not 0 < a.rate <= MAX_SIM_RATE:
        return _fail(f"--rate {a.rate:g}: steps per second must be above 0 and at most {MAX_SIM_RATE:g}")
    from obview.sim.server import run_demo_server

    try:
        run_demo_server(a.host, a.port, a.seed, rate=a.rate)
    except OSError as e:
        return _fail(f"cannot listen on {a.host}:{a.port}: {_os_reason(e)}")
    return 0


def cmd_replay(argv: list[str]) -> int:
    p = _Parser(prog="obview replay", description="Replay a recording through a venue adapter.")
    p.add_argument("file")
    p.add_argument("--venue", help="the venue whose frames to replay (default: the recording's, if it holds one)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--symbol")
    g.add_argument("--instrument", help="venue-native instrument name, e.g. BTC-USDT")
    p.add_argument("--summary", action="store_true", help="print one JSON summary (the only mode for now)")
    a = p.parse_args(argv)
    from obview.venues.base import UnknownSymbol
    from obview.venues.registry import UnknownVenue, get_adapter

    try:
        from obview.replay import ReplayError, recorded_feeds, replay_summary
    except ImportError:
        return _fail("replay is not available in this build")
    if not os.path.isfile(a.file) and os.path.exists(a.file):
        # a pipe or a device: replay reads the file twice (whose connections, then the frames)
        what = "a directory" if os.path.isdir(a.file) else "a pipe or device"
        return _fail(f"{a.file}: replay needs a regular file, not {what}")
    if a.venue is not None:
        try:
            get_adapter(a.venue)
        except UnknownVenue as e:
            return _fail(str(e))
    if a.venue is None or (a.symbol is None and a.instrument is None):
        # what this app's recordings name in their connect lines
        from obview.symbols import normalize
        from obview.text import safe

        want = normalize(a.symbol) if a.symbol is not None else None
        try:
            held = recorded_feeds(a.file)
        except ReplayError as e:
            return _fail(str(e))
        feeds = [
            f for f in held
            if a.venue in (None, f[0]) and want in (None, f[1]) and a.instrument in (None, f[2])
        ]
        if len(feeds) != 1:
            name = os.path.basename(a.file)
            if not held:
                return _fail(
                    f"{name} does not say which feed it holds; choose with --venue and --symbol (or --instrument)"
                )
            listed = ", ".join(f"{safe(v, 20)} {safe(s, 30)}" for v, s, _ in (feeds or held)[:8])
            listed += " …" if len(feeds or held) > 8 else ""
            if not feeds:
                return _fail(f"{name} holds {listed}, none of them the feed asked for")
            return _fail(f"{name} holds {listed}; choose one with --venue and --symbol")
        a.venue = feeds[0][0]
    try:
        cls = get_adapter(a.venue)
    except UnknownVenue as e:
        return _fail(str(e))
    if a.symbol is None and a.instrument is None:
        _, symbol, instrument = feeds[0]
        a.symbol, a.instrument = (symbol, None) if symbol in cls.symbols else (None, instrument)
    symbol = a.symbol
    if symbol is not None:
        from obview.symbols import normalize

        native = {v for v in get_adapter(a.venue).symbols.values()}
        if symbol not in native:
            symbol = normalize(symbol)  # btc-perp, BTC: as the viewer takes them
    # bad frames are counted in the summary (or make the one error line), not logged to stderr
    root = logging.getLogger("obview")
    quiet, propagate = logging.NullHandler(), root.propagate
    root.addHandler(quiet)
    root.propagate = False
    try:
        summary = replay_summary(a.file, a.venue, symbol=symbol, instrument=a.instrument)
    except (ReplayError, UnknownSymbol) as e:
        return _fail(str(e))
    finally:
        root.removeHandler(quiet)
        root.propagate = propagate
    return _write_out([json.dumps(summary)])


def cmd_view(argv: list[str]) -> int:
    a = _main_parser().parse_args(argv)
    from obview.config import ConfigError, load_config, url_problem
    from obview.symbols import normalize
    from obview.venues.registry import UnknownVenue, get_adapter

    try:
        cfg = load_config(a.config)
    except ConfigError as e:
        return _fail(str(e))
    # an empty name given is a name given (a script's unset variable), not the default
    venue = a.venue if a.venue is not None else cfg.default_venue
    try:
        cls = get_adapter(venue)
    except UnknownVenue as e:
        return _fail(str(e))
    given = a.symbol if a.symbol is not None else cfg.default_symbol
    symbol = normalize(given)
    if symbol not in cls.symbols:
        return _fail(f"unknown symbol {shown(given)} for venue {venue}; valid: {', '.join(sorted(cls.symbols))}")
    for flag, url, schemes in (
        ("--endpoint", a.endpoint, ("ws", "wss")),  # the WebSocket feed
        ("--rest-endpoint", a.rest_endpoint, ("http", "https")),
    ):
        # an empty URL given is a mistake (a script's unset variable), not the default feed
        problem = url_problem(url, schemes) if url is not None else None
        if problem:
            return _fail(f"{flag} {shown(url, 80)}: {problem}")
    if a.duration is not None and not 0 < a.duration < math.inf:
        return _fail(f"--duration {a.duration:g}: must be a positive number of seconds")
    if a.duration is not None and not a.print_mode:
        return _fail("--duration needs --print (the viewer runs until q)")
    if a.record is not None and not a.record.strip():
        return _fail("--record needs a file name")  # '' recorded nothing and said nothing
    if a.log and a.record and _same_file(a.log, a.record):
        # log lines written into the recording made it unreadable to replay
        return _fail(f"--log and --record name the same file ({a.record}); give the log its own")
    try:
        _setup_logging(a.log)
    except OSError as e:
        return _fail(f"cannot write the log {a.log}: {_os_reason(e)}")
    endpoints = dict(cfg.endpoints)
    rest = {}
    if a.endpoint:
        endpoints[venue] = a.endpoint
    if a.rest_endpoint:
        rest[venue] = a.rest_endpoint
    recorder = None
    if a.record:
        try:
            from obview.record import Recorder

            recorder = Recorder(a.record)
        except (OSError, ImportError) as e:
            return _fail(f"cannot record to {a.record}: {getattr(e, 'strerror', None) or e}")
    venues = list(cfg.venues)
    if venue not in venues:
        venues.insert(0, venue)
    rc = _view(a, venue, symbol, cfg, endpoints, rest, recorder, venues)
    if rc == 0 and recorder is not None and recorder.full:
        return 1  # asked to record, and the recording stopped early (said on stderr)
    return rc


def _view(a, venue, symbol, cfg, endpoints, rest, recorder, venues) -> int:
    from obview.venues.base import UnknownSymbol

    try:
        if a.print_mode:
            try:
                return asyncio.run(print_mode(venue, symbol, a, endpoints, rest, recorder, venues))
            except OutputGone as e:
                if e.reason is None:
                    return 0  # `obview ... --print | head`: the reader had what it wanted
                sys.stderr.write(f"obview: error: {e.reason}\n")
                return 1
        from obview.feed.manager import FeedManager
        from obview.ui.app import run_app
        from obview.ui.driver import isatty, terminal_fds

        if not all(isatty(fd) for fd in terminal_fds() or [-1]):
            # the screen would go into a file or pipe, and no key could ever end it
            msg = "the viewer needs a terminal (its input or screen is redirected); use --print for lines"
            if not isatty(sys.stderr.fileno()) and isatty(sys.stdout.fileno()):
                # `obview BTC-PERP 2>/dev/null`: the screen is stderr; say so where it is seen
                print(f"obview: error: {msg}", flush=True)
            return _fail(msg)
        manager = FeedManager(venues=venues, endpoints=endpoints, rest_endpoints=rest, seed=a.seed, warm_limit=cfg.warm_venues, recorder=recorder)
        return run_app(manager, venue, symbol, cfg, compare=a.compare)
    except UnknownSymbol as e:
        return _fail(str(e))
    finally:
        if recorder is not None:
            with contextlib.suppress(Exception):
                recorder.close()
            say_recording_stopped(recorder)


#: --log is cut at this size, with one previous file kept beside it (FILE.1)
LOG_MAX_BYTES = 32 * 1024 * 1024


class _LogFile(logging.handlers.RotatingFileHandler):
    """The --log file: bounded (a venue repeating an error at 800 lines a second grew it by
    0.7 GB an hour), and quiet when the disk refuses a write (logging printed a traceback to
    stderr, over the app's screen): logging stops, the app goes on."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        self.failed = True


def _setup_logging(path: str | None) -> None:
    root = logging.getLogger("obview")
    h: logging.Handler = (
        _LogFile(path, maxBytes=LOG_MAX_BYTES, backupCount=1) if path else logging.NullHandler()
    )  # may raise
    root.propagate = False
    if path:
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.DEBUG)
    root.addHandler(h)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
