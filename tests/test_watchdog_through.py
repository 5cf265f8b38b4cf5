"""The watchdog's judgement of a fill through the book's touch (``_Watch._through``): on the
monotonic clock, and for a venue pushing whole books on a clock, against its pushes' interval."""

from __future__ import annotations

import time
import types

import orjson

import obview.feed.watchdog as wd
from obview.feed.pipeline import FeedPipeline
from obview.feed.session import SessionOptions, _Stream
from obview.market import Market
from obview.model import BookSnapshot, Side, Trade
from obview.venues.bybit import BybitAdapter
from obview.venues.hyperliquid import HyperliquidAdapter


def _watch(adapter, market, pipeline, last_rx: float) -> wd._Watch:
    spec = next(s for s in adapter.streams() if s.book)
    st = _Stream(spec)
    st.got_frame, st.last_rx, st.ws = True, last_rx, None
    session = types.SimpleNamespace(book_stream=st, opts=SessionOptions(), market=market, pipeline=pipeline)
    return wd._Watch(session, st)


def _bybit_with_a_fill_through(age: float):
    ad = BybitAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9", rest_endpoint="http://127.0.0.1:9")
    m = Market(ad.default_instrument())
    p = FeedPipeline(ad, m)
    now = time.time()
    snap = BookSnapshot("bybit", "BTC-PERP", [(100.0, 1.0)], [(100.1, 1.0)], 1, now - 1.0, now - 1.0)
    p._on_sync_result(p.sync.on_snapshot(snap), None, now - 1.0, [])
    m.add_trade(Trade("bybit", "BTC-PERP", 99.9, 1.0, Side.SELL, "1", now - age, now - age))
    assert m.stats.through_at
    return ad, m, p, now


def test_a_fill_through_the_touch_is_stale_after_its_grace_on_the_monotonic_clock():
    ad, m, p, now = _bybit_with_a_fill_through(0.05)
    w = _watch(ad, m, p, now)
    mono = time.monotonic()
    silent, why = w._silence(mono)
    assert silent < w.stale_after  # its book change may be in the next 100 ms batch
    silent, why = w._silence(mono + wd.THROUGH_GRACE + 0.5)
    assert silent >= w.stale_after and "trades print through the book" in why, (silent, why)
    # a book change answers it
    m.on_book_changed(time.time())
    silent, why = w._silence(mono + wd.THROUGH_GRACE + 0.6)
    assert "through" not in why


def test_a_step_of_the_wall_clock_neither_closes_a_sound_feed_nor_hides_a_frozen_one(monkeypatch):
    # a fill 50 ms old, its book change due, then NTP steps the wall clock 30 s forward: read
    # as 30 s old it closed the connection at once
    ad, m, p, now = _bybit_with_a_fill_through(0.05)
    w = _watch(ad, m, p, now)
    real = time.time
    monkeypatch.setattr(wd, "time", types.SimpleNamespace(time=lambda: real() + 30.0, monotonic=time.monotonic))
    mono = time.monotonic()
    silent, why = w._silence(mono)
    assert silent < w.stale_after and "through" not in why, (silent, why)
    # stepped back instead: still judged by the monotonic time it has stood
    monkeypatch.setattr(wd, "time", types.SimpleNamespace(time=lambda: real() - 30.0, monotonic=time.monotonic))
    silent, why = w._silence(mono + wd.THROUGH_GRACE + 0.5)
    assert silent >= w.stale_after and "through" in why, (silent, why)


def _hl_push(t: float) -> bytes:
    return orjson.dumps({"channel": "l2Book", "data": {"coin": "BTC", "time": int(t * 1000), "levels": [
        [{"px": "100000.0", "sz": "1.0", "n": 1}, {"px": "99999.0", "sz": "1.0", "n": 1}],
        [{"px": "100001.0", "sz": "1.0", "n": 1}],
    ]}})  # fmt: skip


def test_whole_books_on_a_clock_are_judged_against_their_longest_recent_interval():
    """Hyperliquid's default book comes every 2-5 s: a fill runs ahead of it until the next
    push. With the grace at 2 s (its interval not known yet, or twice a median below a 5 s gap),
    a healthy feed without its fast stream read STALE."""
    ad = HyperliquidAdapter("BTC-PERP")
    m = Market(ad.default_instrument(), whole_book=ad.whole_book)
    p = FeedPipeline(ad, m)
    now = time.time()
    p.on_frame("ws", _hl_push(now - 2.6), now - 2.6)
    trade = {"coin": "BTC", "side": "A", "px": "99998.0", "sz": "0.1", "time": int((now - 2.5) * 1000), "hash": "0x", "tid": 1}
    p.on_frame("ws", orjson.dumps({"channel": "trades", "data": [trade]}), now - 2.5)
    assert m.stats.through_at
    w = _watch(ad, m, p, now - 2.6)
    mono = time.monotonic()
    silent, why = w._silence(mono)
    assert "through" not in why and silent < w.stale_after, (silent, why)  # its interval unknown
    t = mono - 20.0
    w.cadence.restart()
    for gap in (0.0, 2.0, 5.0, 3.0, 2.0, 4.0):  # the pushes, 2-5 s apart, measured
        t += gap
        w.cadence.changed(t)
    assert w.cadence.longest == 5.0
    silent, why = w._silence(mono + 4.0)  # within 1.5 x the longest (7.5 s)
    assert "through" not in why, (silent, why)
    silent, why = w._silence(mono + 8.0)
    assert silent >= w.stale_after and "through" in why, (silent, why)
