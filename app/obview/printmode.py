"""``obview ... --print``: one JSON line a second on stdout, for scripts (with ``--compare``:
every venue side by side), until ``--duration`` or Ctrl-C; stdout closed (``| head``) or full
ends it quietly or with one line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time

from obview.model import FeedStatus
from obview.text import safe


class OutputGone(Exception):
    """stdout was closed (``| head``) or cannot be written (a full disk)."""

    def __init__(self, reason: str | None) -> None:
        super().__init__(reason)
        self.reason = reason  # None: the reader went away, nothing to say


def _emit(obj: object) -> None:
    """One --print line; OutputGone when stdout cannot take it."""
    write_line(json.dumps(obj))


def write_line(text: str) -> None:
    """One line to stdout, flushed; OutputGone when stdout cannot take it."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # the reader is gone: later flushes (at exit too) must not raise again
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise OutputGone(None) from None
    except OSError as e:
        raise OutputGone(f"cannot write to stdout: {e.strerror or e}") from None


def say_recording_stopped(recorder) -> None:
    """One line on stderr, once, when ``--record`` stopped early (disk full, its size cap)."""
    if recorder.message and not recorder.said:
        recorder.said = True
        lost = f" ({recorder.dropped} frames not recorded)" if recorder.dropped else ""
        print(f"obview: {recorder.message}{lost}", file=sys.stderr, flush=True)


def snapshot_line(market, now: float, recorder=None) -> dict:
    """The --print line: everything a script needs to know about the book right now (and,
    with ``--record``, how the recording goes: the stopped reason the viewer shows as
    ``✕ REC stopped``)."""
    book = market.book
    live = market.live
    bb, ba = (book.best_bid(), book.best_ask()) if live else (None, None)
    p50, p99 = market.stats.latency.percentiles(now)
    behind = market.stats.latency.behind(now)
    line = {
        "t": round(now, 3),
        "venue": market.venue,
        "symbol": market.symbol,
        "state": market.state.status.value,
        "reason": market.state.reason,
        "best_bid": bb[0] if bb else None,
        "best_ask": ba[0] if ba else None,
        "spread": _r(book.spread()) if live else None,
        "mid": _r(book.mid()) if live else None,
        "msgs_per_s": round(market.stats.messages.rate(now), 1),
        "latency_ms_p50": round(p50 * 1000, 2) if p50 is not None else None,
        "latency_ms_p99": round(p99 * 1000, 2) if p99 is not None else None,
        "behind_s": round(behind, 3) if behind is not None else None,
        "trades": market.stats.trades_seen,  # a count, as replay's summary (the ring holds 2000)
        "liquidations": market.stats.liquidations,  # of them, marked liquidation or deleveraging
        "resyncs": market.resyncs,
        "gaps": market.stats.gaps,
        "checksum_errors": market.stats.checksum_errors,
        "bad_frames": market.stats.bad_frames,
        "last_error": market.stats.last_error,
    }
    if recorder is not None:
        line["recording"] = recording_field(recorder)
    return line


def recording_field(recorder) -> dict:
    return {"bytes": recorder.file_bytes, "stopped": recorder.reason or None}


def _r2(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _r(x: float | None) -> float | None:
    """Round away binary float noise (97003.8 - 97003.6 = 0.19999999999708962)."""
    return None if x is None else round(x, 9)


def compare_line(cmp, symbol: str, now: float, errors: dict[str, str]) -> dict:
    """The --print --compare line: every venue's touch, spread and depth, and across venues."""

    def ms(x: float | None) -> float | None:
        return round(x * 1000, 2) if x is not None else None

    return {
        "t": round(now, 3),
        "symbol": symbol,
        "live": cmp.live,
        "best_bid": cmp.best_bid,
        "best_bid_venue": cmp.best_bid_venue or None,
        "best_ask": cmp.best_ask,
        "best_ask_venue": cmp.best_ask_venue or None,
        "cross_spread_bps": _r(cmp.cross_spread_bps),
        "depth_band_bps": cmp.band_bps,
        "venues": [
            {
                "venue": r.venue,
                "state": r.state.status.value if r.state else None,
                "reason": r.state.reason if r.state else errors.get(r.venue, "not open"),
                "bid": r.bid,
                "ask": r.ask,
                "spread_bps": _r(r.spread_bps),
                "bid_depth_quote": round(r.bid_depth, 2) if r.bid_depth is not None else None,
                "ask_depth_quote": round(r.ask_depth, 2) if r.ask_depth is not None else None,
                # where the venue's book ends inside the band: the depth is what it holds
                "bid_depth_reach_bps": _r2(r.bid_reach_bps),
                "ask_depth_reach_bps": _r2(r.ask_reach_bps),
                "vs_mid_bps": _r(r.vs_mid_bps),
                "latency_ms_p50": ms(r.latency),
                "msgs_per_s": round(r.msgs, 1) if r.msgs is not None else None,
            }
            for r in cmp.rows
        ],
    }


async def print_mode(venue, symbol, a, endpoints, rest, recorder, venues) -> int:
    from obview.feed.manager import FeedManager

    manager = FeedManager(venues=venues, endpoints=endpoints, rest_endpoints=rest, seed=a.seed, warm_limit=1, recorder=recorder)
    if a.compare:
        try:
            return await _print_compare(manager, symbol, a, recorder, venues)
        finally:
            await manager.close()
    try:
        market = await manager.open(venue, symbol)
        start = time.time()
        live, seen = False, market.state
        while a.duration is None or time.time() - start < a.duration:
            # a line a second, and the last one when the duration is up (2.5 s ran 3.4 s)
            left = None if a.duration is None else start + a.duration - time.time()
            await asyncio.sleep(1.0 if left is None else max(0.0, min(1.0, left)))
            live = live or went_live(market)
            seen = market.state  # the last state shown (closing the feed sets another)
            _emit(snapshot_line(market, time.time(), recorder))
            if recorder is not None:
                say_recording_stopped(recorder)
    finally:
        await manager.close()
    if not live:
        return say_never_live(f"{venue} {symbol}", a.duration, seen)
    return 0


def went_live(market) -> bool:
    """Whether the feed is LIVE now or was at some point among its last 200 state changes
    (called once a second: a LIVE spell between two lines counts)."""
    return market.live or any(s.status is FeedStatus.LIVE for s in market.state_log)


def say_never_live(what: str, duration: float, state) -> int:
    """A --duration run that never had a live book: one line on stderr and exit status 1, so
    a script does not take lines of nulls for a market (the lines themselves say why)."""
    reason = state.reason.split("; retry in", 1)[0]
    why = f"{state.status.value}: {safe(reason, 120)}" if reason else state.status.value
    print(f"obview: no live book from {what} in {duration:g} s ({why})", file=sys.stderr, flush=True)
    return 1


async def _print_compare(manager, symbol: str, a, recorder, venues: list[str]) -> int:
    from obview.compare import compare

    errors: dict[str, str] = {}
    for v in venues:
        try:
            await manager.open(v, symbol, pin=True)
        except ValueError:  # the venue does not list this symbol
            errors[v] = f"no {symbol}"
    start = time.time()
    live = False
    while a.duration is None or time.time() - start < a.duration:
        left = None if a.duration is None else start + a.duration - time.time()
        await asyncio.sleep(1.0 if left is None else max(0.0, min(1.0, left)))
        now = time.time()
        markets = [manager.get(v, symbol) for v in venues]
        live = live or any(m is not None and went_live(m) for m in markets)
        cmp = compare(venues, markets, now)
        line = compare_line(cmp, symbol, now, errors)
        if recorder is not None:
            line["recording"] = recording_field(recorder)
        _emit(line)
        if recorder is not None:
            say_recording_stopped(recorder)
    if not live:
        print(
            f"obview: no live book from any of {', '.join(venues)} for {symbol} in {a.duration:g} s",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0
