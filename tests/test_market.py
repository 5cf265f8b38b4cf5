from __future__ import annotations

import pytest

from obview.market import FlowWindow, LatencyWindow, Market, RateCounter
from obview.model import FeedStatus, Instrument, Side, Trade
from obview.sampler import HeatmapSampler

INST = Instrument("demo", "BTC-PERP", "BTC-PERP", tick=0.1, lot=0.001)


def _market(**kw) -> Market:
    m = Market(INST, **kw)
    m.book.apply_snapshot([(100.0 - i * 0.1, 1.0) for i in range(50)], [(100.1 + i * 0.1, 2.0) for i in range(50)])
    return m


def test_rate_counter_counts_full_seconds_only():
    r = RateCounter(window=5)
    for i in range(400):
        r.add(1000.0 + i / 100)  # 100 per second over 4 s
    assert r.rate(1004.5) == 100.0
    assert r.rate(1020.0) == 0.0  # old seconds fall out


def test_a_young_rate_counter_divides_by_its_age_not_the_window():
    # msgs/s read 8, 24, 38 for the first seconds of a 45/s feed: the whole window divided
    r = RateCounter(window=5)
    for i in range(90):
        r.add(2000.0 + i / 45)  # 45 a second for 2 s
    assert r.rate(2000.0 + 89 / 45) == pytest.approx(45, rel=0.03)
    r = RateCounter(window=5)
    for i in range(14):
        r.add(3000.0 + i / 45)
    assert r.rate(3000.3) == pytest.approx(14 / 0.5)  # under half a second: over 0.5 s


def test_a_quiet_markets_first_trade_is_not_a_burst_and_the_young_rate_does_not_dip():
    r = RateCounter(window=5)
    r.begin(1000.0)  # the feed connected; the first trade comes 10 s later
    r.add(1010.0)
    assert r.rate(1010.5) == 0.0 and r.rate(1011.5) == 0.25  # it read 2.0, then 1.0
    # 45 a second from x.9: no dip when the young reading hands over to the window's
    r = RateCounter(window=5)
    t, reads = 2000.9, []
    while t < 2008.0:
        r.add(t)
        t += 1 / 45
        if t > 2002.0:
            reads.append(r.rate(t))
    assert min(reads) > 40, min(reads)
    # reading the counter at an earlier time (a paused screen's) does not wipe it
    r.rate(1999.0)
    assert r.rate(t) > 40


def test_latency_percentiles_over_window():
    w = LatencyWindow(horizon=60)
    for i in range(100):
        w.add(1000.0 + i * 0.1, i / 1000)
    p50, p99 = w.percentiles(1010.0)
    assert p50 == 0.05 and p99 == 0.098  # nearest rank: the 99th of 100 samples
    assert w.percentiles(1010.2) == (0.05, 0.098)  # cached for 0.5 s
    assert w.percentiles(2000.0) == (None, None)  # samples older than the horizon are ignored
    assert LatencyWindow().percentiles(5.0) == (None, None)


def test_behind_measures_a_backlog_not_a_clock_offset():
    w = LatencyWindow(horizon=60)
    # our clock 3 s ahead of the venue's, 50 messages/s arriving promptly (±20 ms jitter)
    t = 1000.0
    for i in range(30 * 50):
        t = 1000.0 + i / 50
        w.add(t, 3.0 + (i % 5) * 0.01)
    assert w.behind(t) < 0.05  # the constant offset cancels out
    assert w.percentiles(t)[0] > 2.9  # (the raw latency still shows it)
    # then the client falls behind: over 1 s each message arrives later, then 2.5 s late
    for i in range(150):
        t += 0.02
        w.add(t, 3.0 + 2.5 * min(1.0, (i + 1) / 50))
    assert 2.45 < w.behind(t + 0.1) < 2.55
    # caught up again
    for _ in range(150):
        t += 0.02
        w.add(t, 3.0)
    assert w.behind(t + 0.5) < 0.05
    # silence: nothing recent to judge (the stale watchdog's business)
    assert w.behind(t + 10.0) is None
    assert LatencyWindow().behind(5.0) is None


def test_latency_window_empty_after_horizon():
    w = LatencyWindow(horizon=60)
    w.add(0.0, 0.01)
    assert w.percentiles(100.0) == (None, None)


def test_latency_covers_the_whole_horizon_at_a_fast_feed():
    w = LatencyWindow(horizon=60, maxlen=6000)
    # 1000 messages/s for 60 s, read twice a second as the stats bar does: 100 ms of latency for
    # 50 s, then 1 ms for the last 10 s
    for i in range(60_000):
        t = 1000.0 + i / 1000
        w.add(t, 0.100 if t < 1050.0 else 0.001)
        if i % 500 == 499:
            w.percentiles(t)
    p50, p99 = w.percentiles(1060.0)
    assert p50 == 0.100  # a 6000-sample ring of every message would hold only the last 6 s
    assert len(w._samples) <= 6000
    oldest = w._samples[0][0]
    assert oldest <= 1005.0  # the kept samples reach back across the horizon
    # the feed slows to 10 messages/s: the stride comes back down and the window fills again
    for i in range(1200):
        t = 1060.0 + i / 10
        w.add(t, 0.002)
        if i % 5 == 4:
            w.percentiles(t)
    assert w._stride == 1
    assert w.percentiles(1180.0) == (0.002, 0.002)


def test_trade_ring_is_bounded():
    m = _market(trade_history=10)
    for i in range(100):
        m.add_trade(Trade("demo", "BTC-PERP", 100.0, 1.0, Side.BUY, str(i), None, 1000.0 + i))
    assert len(m.trades) == 10 and m.trades[-1].trade_id == "99" and m.last_price == 100.0


def test_sampler_fixed_cadence_bounded_history_and_gaps_when_not_live():
    m = Market(INST, sampler=HeatmapSampler(cadence=0.25, history=20, buckets=40))
    m.book.apply_snapshot([(100.0 - i * 0.1, 1.0) for i in range(50)], [(100.1 + i * 0.1, 2.0) for i in range(50)])
    m.set_state(FeedStatus.LIVE)
    t = 1000.0
    cols = []
    for i in range(200):
        col = m.tick(t + i * 0.05)
        if col:
            cols.append(col)
    # 10 s at 0.25 s cadence -> 40 samples, history keeps 20
    assert len(cols) == 40 and len(m.heatmap.columns) == 20
    live = cols[-1]
    assert live.live and live.best_bid == 100.0 and live.best_ask == 100.1
    step = m.heatmap.step
    total = sum(live.sizes)
    window_lo, window_hi = live.start * step, (live.start + len(live.sizes)) * step
    expected = sum(s for p, s in m.book.bids.items() if window_lo <= p < window_hi) + sum(
        s for p, s in m.book.asks.items() if window_lo <= p < window_hi
    )
    assert abs(total - expected) < 1e-3
    # a not-LIVE feed gives an empty gap column, never the last known book
    m.set_state(FeedStatus.SYNCING, "seq gap 1->3")
    gap = m.tick(t + 20.0)
    assert gap is not None and not gap.live and len(gap.sizes) == 0 and gap.best_bid is None


def test_sampler_marks_trades_in_buckets():
    m = _market(sampler=HeatmapSampler(cadence=0.25, buckets=40))
    m.set_state(FeedStatus.LIVE)
    m.tick(1000.0)
    m.add_trade(Trade("demo", "BTC-PERP", 100.05, 2.0, Side.SELL, "1", None, 1000.1))
    m.add_trade(Trade("demo", "BTC-PERP", 100.05, 1.0, Side.SELL, "2", None, 1000.1))
    m.add_trade(Trade("demo", "BTC-PERP", 100.15, 1.5, Side.BUY, "3", None, 1000.1))
    col = m.tick(1000.3)
    assert sum(col.sells.values()) == 3.0 and sum(col.buys.values()) == 1.5
    assert m.tick(1000.6).sells == {}


def test_instrument_conversions():
    inverse = Instrument("deribit", "BTC-PERP", "BTC-PERPETUAL", tick=0.5, lot=10, size_unit="quote", contract_value=1.0)
    assert inverse.to_base(50_000.0, 10_000.0) == 0.2
    assert inverse.to_quote(50_000.0, 10_000.0) == 10_000.0
    swap = Instrument("okx", "BTC-PERP", "BTC-USDT-SWAP", tick=0.1, lot=0.01, size_unit="contract", contract_value=0.01)
    assert swap.to_base(50_000.0, 100.0) == 1.0 and swap.to_quote(50_000.0, 100.0) == 50_000.0


def test_state_changes_bump_version_and_log():
    m = _market()
    v = m.version
    assert m.set_state(FeedStatus.LIVE)
    assert not m.set_state(FeedStatus.LIVE)
    assert m.version == v + 1 and m.state_log[-1].status is FeedStatus.LIVE


def test_sampler_after_a_stall_resumes_the_cadence_without_a_burst():
    m = _market(sampler=HeatmapSampler(cadence=0.25, buckets=40))
    m.set_state(FeedStatus.LIVE)
    assert m.tick(1000.0) is not None
    assert m.tick(1003.0) is not None  # the loop stalled for 3 s: one sample, not twelve
    assert m.tick(1003.05) is None and m.tick(1003.2) is None
    assert m.tick(1003.26) is not None
    # the stalled time is there as gap columns (the book was not seen then): x stays time
    cols = list(m.heatmap.columns)
    assert [c.live for c in cols] == [True] + [False] * 11 + [True, True]
    ts = [c.t for c in cols]
    assert all(0.2 < b - a < 0.3 for a, b in zip(ts, ts[1:], strict=False)), ts


def test_a_short_stall_of_the_app_keeps_the_book_not_a_feed_outage():
    """A busy frame or a time zoom rebuilt under load held the loop past a sample or two: the
    missed samples were hatched as "the feed was not LIVE then" while it was LIVE throughout."""
    m = _market(sampler=HeatmapSampler(cadence=0.25, buckets=40))
    m.set_state(FeedStatus.LIVE)
    first = m.tick(1000.0)
    assert first is not None and first.live
    assert m.tick(1001.0) is not None  # 0.75 s late: three missed samples
    cols = list(m.heatmap.columns)
    assert [c.live for c in cols] == [True] * 5
    held = cols[1:4]
    assert all(c.sizes == first.sizes and c.start == first.start for c in held)
    assert all(not c.buys and not c.sells for c in held)  # its trades stay in their own
    assert [round(c.t - 1000.0, 2) for c in cols] == [0.0, 0.25, 0.5, 0.75, 1.0]
    # not LIVE on one side: the missed time is unknown, a gap
    m.set_state(FeedStatus.STALE, "no data")
    m.tick(1001.8)
    assert [c.live for c in list(m.heatmap.columns)[5:]] == [False, False, False]


def test_sampler_column_keeps_only_the_books_stretch_of_the_window():
    # a BTC-like book (500 levels a side at 0.1) in the default +-1% window of 4000 buckets:
    # the column holds the ~200 buckets the book covers, and in the venue's own units converted
    # at each bucket's own price
    inverse = Instrument("deribit", "BTC-PERP", "BTC-PERPETUAL", tick=0.5, lot=10, size_unit="quote", contract_value=1.0)
    for inst in (Instrument("demo", "BTC-PERP", "BTC-PERP", tick=0.1, lot=0.001), inverse):
        m = Market(inst)
        bids = [(50_000.0 - i * 0.5, 1000.0 + i) for i in range(500)]
        asks = [(50_000.5 + i * 0.5, 2000.0 + i) for i in range(500)]
        m.book.apply_snapshot(bids, asks)
        m.set_state(FeedStatus.LIVE)
        col = m.tick(1000.0)
        step = m.heatmap.step
        assert col.live and m.heatmap.buckets == 4000
        assert len(col.sizes) <= (asks[-1][0] - bids[-1][0]) / step + 2
        # every level lands in its bucket, converted at that bucket's mid price
        want: dict[int, float] = {}
        for p, s in bids + asks:
            b = int(p // step)
            want[b] = want.get(b, 0.0) + inst.to_base((b + 0.5) * step, s)
        got = {col.start + i: v for i, v in enumerate(col.sizes) if v}
        assert got.keys() == want.keys()
        assert all(abs(got[b] - want[b]) <= 1e-6 * want[b] for b in want)


def test_flow_covers_the_whole_minute_when_the_trade_ring_holds_less():
    inst = Instrument("demo", "BTC-PERP", "BTC-PERP", tick=0.1, lot=0.001)
    m = Market(inst, trade_history=2000)
    # a busy minute: 100 fills a second, buys of 1 and sells of 0.5 coin, for 60 s
    for i in range(6000):
        ts = 1000.0 + i / 100
        side = Side.BUY if i % 2 == 0 else Side.SELL
        m.add_trade(Trade("demo", "BTC-PERP", 100.0, 1.0 if side is Side.BUY else 0.5, side, str(i), ts, ts))
    assert len(m.trades) == 2000  # the ring holds the last 20 s only
    f = m.flow.summary(now=1060.0)
    assert f.count == 6000
    assert (f.buy_base, f.sell_base) == (pytest.approx(3000.0), pytest.approx(1500.0))
    assert (f.buy_quote, f.sell_quote) == (pytest.approx(300_000.0), pytest.approx(150_000.0))
    # 30 s later the first half has left the window
    assert m.flow.summary(now=1090.0).count == 3000
    assert m.flow.summary(now=1200.0).count == 0


def test_flow_window_slots_are_bounded_and_late_fills_outside_it_are_dropped():
    w = FlowWindow(horizon=60)
    w.add(100.2, True, 1.0, 100.0)
    w.add(100.9, False, 2.0, 200.0)
    w.add(161.5, True, 4.0, 400.0)  # reuses slot 100's place: second 100 has left the window
    w.add(100.5, True, 8.0, 800.0)  # a fill from second 100 arriving now: too old, dropped
    f = w.summary(now=161.6)
    assert (f.buy_base, f.sell_base, f.count) == (4.0, 0.0, 1)
    assert len(w._secs) == len(w._slots) == 61
    # a fill a little out of order but inside the window counts
    w.add(150.0, False, 1.0, 100.0)
    assert w.summary(now=161.6).sell_base == 1.0


def test_new_instrument_facts_recount_the_flow():
    inst = Instrument("okx", "BTC-PERP", "BTC-USDT-SWAP", 0.1, 0.1, "contract", 1.0)
    m = Market(inst)
    m.add_trade(Trade("okx", "BTC-PERP", 100.0, 10.0, Side.BUY, "1", 5.0, 5.0))
    assert m.flow.summary(now=5.5).buy_base == 10.0  # contracts of 1 coin, the default
    m.set_instrument(Instrument("okx", "BTC-PERP", "BTC-USDT-SWAP", 0.1, 0.1, "contract", 0.01))
    f = m.flow.summary(now=5.5)
    assert f.buy_base == pytest.approx(0.1) and f.buy_quote == pytest.approx(10.0)


def test_a_step_of_the_local_clock_starts_the_latency_window_afresh(monkeypatch):
    import obview.market as m

    offset = [0.0]
    monkeypatch.setattr(m, "_clock_offset", lambda: offset[0])
    w = LatencyWindow(horizon=60)
    t = 1000.0
    for i in range(30 * 50):  # 30 s of prompt messages, 10 ms each
        t = 1000.0 + i / 50
        w.add(t, 0.010)
    assert w.behind(t) < 0.001
    offset[0] = 5.0  # the wall clock jumps 5 s forward: every latency from now on reads 5 s more
    for _ in range(100):
        t += 0.02
        w.add(t + 5.0, 5.010)
    t += 5.0
    # the first read after the step drops every sample (which side of it each was taken on is
    # not known); then the window fills again
    assert w.behind(t + 0.6) is None
    for _ in range(100):
        t += 0.02
        w.add(t, 5.010)
    assert w.behind(t + 0.6) < 0.001  # not "5 s behind": the old baseline is gone
    p50, _ = w.percentiles(t + 1.2)
    assert p50 is not None and 5.0 < p50 < 5.02
    # without a step, the same late messages are a backlog
    w2 = LatencyWindow(horizon=60)
    for i in range(30 * 50):
        w2.add(1000.0 + i / 50, 0.010)
    for i in range(100):
        w2.add(1030.0 + i / 50, 5.010)
    assert w2.behind(1032.1) > 4.9


def test_the_heatmap_keeps_sampling_after_the_clock_is_stepped_back():
    # the next sample was due at a wall time: stepped back an hour, the heatmap froze for one
    m = _market(sampler=HeatmapSampler(cadence=0.25, buckets=40))
    m.set_state(FeedStatus.LIVE)
    assert m.tick(5000.0) is not None
    assert m.tick(5000.1) is None  # not due: early by less than a cadence
    t = 5000.1 - 3600
    assert m.tick(t) is not None
    assert m.tick(t + 0.1) is None and m.tick(t + 0.26) is not None  # the cadence goes on


def test_the_flow_counts_fills_after_the_clock_is_stepped_back(monkeypatch):
    # every slot held a second an hour ahead of the new fills: each was dropped as too old,
    # and the tape's minute read zero for the hour
    import obview.market as market_mod

    offset = [0.0]
    monkeypatch.setattr(market_mod, "_clock_offset", lambda: offset[0])
    w = FlowWindow(horizon=60)
    for i in range(120):
        w.add(5000.0 + i / 2, True, 1.0, 100.0)
    assert w.summary(now=5060.0).count == 120
    offset[0] = -3600.0
    for i in range(10):
        w.add(1460.0 + i / 2, False, 2.0, 200.0)
    f = w.summary(now=1465.0)
    assert (f.buy_base, f.sell_base, f.count) == (0.0, 20.0, 10)
    # with the clock steady, a fill from before the window is still dropped
    w.add(1300.0, True, 8.0, 800.0)
    assert w.summary(now=1465.0).buy_base == 0.0


def test_a_rate_after_the_clock_is_stepped_back_counts_only_new_seconds():
    r = RateCounter(window=5)
    for i in range(400):
        r.add(5000.0 + i / 100)  # 100 per second over 4 s
    for i in range(60):
        r.add(1400.0 + i / 20)  # stepped back an hour: 20 per second from here
    # counted from the step: 60 events in the 3.5 s since (the window is not full yet)
    assert r.rate(1403.5) == pytest.approx(60 / 3.5)
    assert r.rate(1405.5) == 10.0  # then over the window: seconds 1401-1404, 20, 20, 0, 0
    # a stamp a moment older than the newest (the same second or the one before) is no step
    r2 = RateCounter(window=5)
    for i in range(300):
        r2.add(7000.0 + i / 100)
    r2.add(7001.99)
    assert sum(r2._counts) == 301 and r2._counts[7001 % 5] == 101  # not reset


def test_a_venue_time_a_day_or_more_off_is_not_taken_as_a_latency():
    # a garbled or mis-scaled stamp (ms read as s, 1e300) read -1e297 s for the window's minute
    m = Market(Instrument("demo", "BTC-PERP", "BTC", tick=0.1, lot=0.001))
    now = 1_700_000_000.0
    m.on_exchange_time(now - 0.004, now)
    for bad in (1e300, now * 1000, 1.0, now + 90_000):
        m.on_exchange_time(bad, now + 0.001)
    p50, p99 = m.stats.latency.percentiles(now + 0.002)
    assert p50 == pytest.approx(0.004, abs=1e-6) and p99 == pytest.approx(0.004, abs=1e-6)
    m.on_exchange_time(now - 3.0, now + 0.003)  # a clock 3 s off is still a latency
    assert m.stats.latency.percentiles(now + 1.0)[1] > 2.9  # (percentiles are cached 0.5 s)


def test_the_columns_since_the_book_last_moved_can_be_made_gaps_fine_and_coarse():
    """When a silence ends in a stale close, the columns sampled since the book last moved
    drew a book that had stopped: they become gaps (their trades stay), and so do the merged
    periods of the coarse ring (zoomed out, the stopped book still read live)."""
    m = Market(INST, sampler=HeatmapSampler(cadence=0.25, history=200, buckets=40, coarse_every=8))
    m.book.apply_snapshot([(100.0 - i * 0.1, 1.0) for i in range(50)], [(100.1 + i * 0.1, 2.0) for i in range(50)])
    m.set_state(FeedStatus.LIVE)
    t = 1000.0
    for i in range(40):  # 10 s of samples, 2 s periods
        m.tick(t + i * 0.25)
    m.add_trade(Trade("demo", "BTC-PERP", 100.05, 2.0, Side.SELL, "1", None, t + 9.5))
    m.tick(t + 10.0)
    assert m.heatmap.unsee_since(t + 6.0) > 0
    cols = list(m.heatmap.columns)
    assert all(c.live for c in cols if c.t <= t + 6.0)
    after = [c for c in cols if c.t > t + 6.0]
    assert after and not any(c.live or len(c.sizes) for c in after)
    assert sum(sum(c.sells.values()) for c in after) == 2.0  # the trade is still drawn
    assert m.heatmap.pending[-1] is cols[-1]  # the period being gathered merges the gaps
    coarse = list(m.heatmap.coarse)
    assert coarse and all(c.live == (c.t <= t + 6.0) for c in coarse), [(c.t - t, c.live) for c in coarse]


def test_a_column_knows_only_the_books_depth_not_the_whole_window():
    """A venue that sends 20 levels (Hyperliquid) drew 'nothing resting' beyond them, all the
    way to the window's edge; beyond the deepest level nothing is known."""
    m = Market(INST, sampler=HeatmapSampler(cadence=0.25, buckets=400))
    m.book.apply_snapshot([(100.0 - i * 0.1, 1.0) for i in range(20)], [(100.1 + i * 0.1, 2.0) for i in range(20)])
    m.set_state(FeedStatus.LIVE)
    col = m.tick(1000.0)
    step = m.heatmap.step
    from obview.book import bucket_of

    assert col.lo == bucket_of(98.1, step)  # the deepest bid's bucket
    assert col.hi == bucket_of(102.0, step) + 1  # the deepest ask's, included
    assert col.hi - col.lo < m.heatmap.buckets // 4


def test_a_whole_books_column_knows_the_whole_window_past_its_deepest_levels():
    """A venue that sends every level (BitMEX, Deribit, Kraken, dYdX, the simulator) has
    nothing past its deepest level: empty there, not unknown (it was hatched as unknown)."""
    m = Market(INST, sampler=HeatmapSampler(cadence=0.25, buckets=400), whole_book=True)
    m.book.apply_snapshot([(100.0 - i * 0.1, 1.0) for i in range(20)], [(100.1 + i * 0.1, 2.0) for i in range(20)])
    m.set_state(FeedStatus.LIVE)
    col = m.tick(1000.0)
    from obview.book import bucket_of

    start = bucket_of(m.book.mid(), m.heatmap.step) - m.heatmap.buckets // 2
    assert (col.lo, col.hi) == (start, start + m.heatmap.buckets)


def test_a_reported_liquidation_order_is_on_the_tape_and_in_the_liquidations_not_the_flow():
    """Binance, Bybit, OKX and BitMEX report liquidations on a channel of their own; the fills
    come as trades too. The report counts once, as a liquidation: not a second fill in the
    buy/sell flow, the trade rate, the last price or the heatmap."""
    from obview.model import LIQUIDATION_ORDER

    m = Market(Instrument("binance", "BTC-PERP", "BTCUSDT", 0.1, 0.001))
    m.book.apply_snapshot([(99.0, 1.0)], [(101.0, 1.0)])
    m.set_state(FeedStatus.LIVE)
    m.tick(999.9)
    m.add_trade(Trade("binance", "BTC-PERP", 100.0, 2.0, Side.SELL, "1", 1000.0, 1000.0))
    m.add_trade(Trade("binance", "BTC-PERP", 98.0, 2.0, Side.SELL, "", 1000.1, 1000.1, kind=LIQUIDATION_ORDER))
    f = m.flow.summary(now=1001.0)
    assert (f.buy_base, f.sell_base, f.count) == (0.0, 2.0, 1)  # the fill, once
    assert (f.forced_base, f.forced_quote) == (2.0, 196.0)
    assert m.stats.liquidations == 1 and m.stats.trades_seen == 1
    assert m.last_price == 100.0
    assert [t.kind for t in m.trades] == ["", LIQUIDATION_ORDER]  # the tape shows both
    m.tick(1000.2)
    col = m.heatmap.columns[-1]
    assert sum(col.sells.values()) == 2.0  # the fill's dot only
    # a new instrument recounts the flow from the tape the same way
    m.set_instrument(Instrument("binance", "BTC-PERP", "BTCUSDT", 0.1, 0.001))
    f = m.flow.summary(now=1001.0)
    assert (f.sell_base, f.count, f.forced_base) == (2.0, 1, 2.0)


def test_a_fill_through_the_books_touch_is_noted_until_the_book_changes():
    from obview.model import BLOCK, LIQUIDATION_ORDER

    m = Market(Instrument("demo", "BTC-PERP", "X", 0.1, 0.001))
    m.book.apply_snapshot([(100.0, 1.0), (99.9, 1.0)], [(100.1, 1.0), (100.2, 1.0)])
    m.on_book_changed(999.0)

    def fill(price: float, side: Side, kind: str = "", t: float = 1000.0) -> None:
        m.add_trade(Trade("demo", "BTC-PERP", price, 0.5, side, "", t, t, kind=kind))

    fill(100.0, Side.SELL)  # at the touch
    fill(100.1, Side.BUY)
    fill(100.05, Side.SELL)  # inside the spread (a hidden or price-improving order)
    assert not m.stats.through_at
    fill(99.8, Side.SELL, BLOCK)  # off the book: agreed elsewhere
    fill(99.0, Side.SELL, LIQUIDATION_ORDER)  # a report at the bankruptcy price
    assert not m.stats.through_at
    fill(99.9, Side.SELL, t=1001.0)  # the bid at 100.0 should have gone first
    assert m.stats.through_at == 1001.0
    fill(99.8, Side.SELL, t=1002.0)  # the first one counts
    assert m.stats.through_at == 1001.0
    m.on_book_changed(1002.5)
    assert not m.stats.through_at
    fill(100.3, Side.BUY, t=1003.0)
    assert m.stats.through_at == 1003.0
    # a fill no newer than the book (a sweep, then the makers' new quotes, in one step; the
    # trade read after the delta): the book already holds what came after it
    m.on_book_changed(1004.0, 1004.0)
    fill(100.3, Side.BUY, t=1004.0)  # the same read
    m.add_trade(Trade("demo", "BTC-PERP", 100.3, 0.5, Side.BUY, "", 1003.9, 1004.2))  # older
    assert not m.stats.through_at
    m.add_trade(Trade("demo", "BTC-PERP", 100.3, 0.5, Side.BUY, "", 1004.1, 1004.2))  # newer
    assert m.stats.through_at == 1004.2


def test_a_block_trade_is_not_counted_in_the_minute_of_taker_flow():
    # agreed off the book, a block is no taker's pressure on it (an 11 BTC block sell read as
    # most of the minute's selling); liquidations and deleveraging still count
    from obview.model import BLOCK, DELEVERAGE, LIQUIDATION
    from obview.venues.demo import DemoAdapter

    m = Market(DemoAdapter("BTC-PERP").default_instrument())
    for i, (kind, side, size) in enumerate(
        [("", Side.SELL, 1.0), (BLOCK, Side.SELL, 11.0), (LIQUIDATION, Side.BUY, 2.0), (DELEVERAGE, Side.SELL, 0.5)]
    ):
        m.add_trade(Trade("demo", "BTC-PERP", 100.0, size, side, str(i), 1000.0 + i, 1000.0 + i, kind=kind))
    f = m.flow.summary(now=1005.0)
    assert (f.buy_base, f.sell_base, f.count) == (2.0, 1.5, 3)
    assert m.stats.trades_seen == 4 and m.last_price == 100.0
