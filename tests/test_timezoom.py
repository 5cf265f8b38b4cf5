"""Heatmap time zoom: sampler columns merged per aligned period, stable while on screen."""

from __future__ import annotations

from array import array
from types import SimpleNamespace

import pytest

from obview.model import FeedStatus
from obview.sampler import HeatmapColumn, HeatmapSampler, merge_columns
from obview.ui.timezoom import ZOOMS, TimeZoom


def col(t, start=100, sizes=(1.0, 2.0), live=True, bid=10.0, ask=10.5, buys=None, sells=None):
    if not live:
        return HeatmapColumn(t=t, live=False, buys=buys or {}, sells=sells or {})
    return HeatmapColumn(
        t=t, live=True, start=start, sizes=array("f", sizes), best_bid=bid, best_ask=ask,
        buys=buys or {}, sells=sells or {},
    )


def source(cols, coarse=(), pending=(), cadence=0.25):
    return SimpleNamespace(
        columns=list(cols), coarse=list(coarse), pending=list(pending), cadence=cadence,
        coarse_every=40, crop_period=lambda c: c,
    )


def test_a_merged_column_is_the_mean_of_its_live_samples_and_the_sum_of_their_trades():
    a = col(0.0, start=100, sizes=(4.0, 2.0), bid=10.0, buys={100: 1.0})
    b = col(0.25, start=101, sizes=(6.0, 8.0), bid=10.1, ask=10.6, buys={100: 2.0}, sells={102: 5.0})
    gap = col(0.5, live=False, sells={102: 1.0})
    m = merge_columns([a, b, gap])
    assert m.live and m.t == 0.5
    # union span 100..102, each bucket the mean over the two LIVE samples
    assert m.start == 100 and list(m.sizes) == [2.0, 4.0, 4.0]
    assert (m.best_bid, m.best_ask) == (10.1, 10.6)  # the last live sample's
    assert m.buys == {100: 3.0} and m.sells == {102: 6.0}  # every trade counts, the gap's too
    assert (a.buys, gap.sells) == ({100: 1.0}, {102: 1.0})  # the samples are left as they were
    # no live sample: a gap
    g = merge_columns([col(0.0, live=False), col(0.25, live=False, buys={5: 1.0})])
    assert merge_columns([a]) is a  # one sample stands for itself
    assert not g.live and len(g.sizes) == 0 and g.buys == {5: 1.0}
    # the window known in a merged column is where any live sample looked, each bucket the
    # mean over the samples that looked at it (where every sample looked shrank to nothing as
    # the mid drifted over a 20-level book)
    w1 = col(0.0, start=100, sizes=(1.0, 3.0))
    w2 = col(0.25, start=101, sizes=(5.0, 7.0))
    w1.lo, w1.hi, w2.lo, w2.hi = 90, 102, 101, 140
    m2 = merge_columns([w1, w2])
    assert (m2.lo, m2.hi) == (90, 140)
    assert m2.start == 100 and list(m2.sizes) == [1.0, 4.0, 7.0]  # 100 and 102 seen once
    # mostly not LIVE: a gap too (one live sample drew a whole period as a known book)
    assert not merge_columns([a, col(0.25, live=False), col(0.5, live=False)]).live
    assert merge_columns([a, b, gap]).live  # mostly LIVE: the mean of the live ones


def test_at_1x_the_view_is_the_samples_themselves():
    z = TimeZoom()
    cols = [col(i * 0.25) for i in range(10)]
    assert z.view(source(cols), 4) == cols[-4:]
    assert all(v is c for v, c in zip(z.view(source(cols), 4), cols[-4:], strict=True))
    assert z.view(source(cols), 0) == []


def test_periods_are_aligned_and_a_column_keeps_its_object_until_it_leaves_the_screen():
    z = TimeZoom()
    assert z.step(1) and z.k == 2 and z.step(1) and z.k == 4  # 4 samples (1 s) a column
    cadence = 0.25
    cols = [col(100.0 + i * cadence, sizes=(float(i), 1.0)) for i in range(18)]  # 100.0 .. 104.25
    v1 = z.view(source(cols), 10)
    # periods [100, 101), [101, 102) ... by sample time; the newest one still filling
    assert [round(c.t, 2) for c in v1] == [100.75, 101.75, 102.75, 103.75, 104.25]
    assert list(v1[0].sizes) == [1.5, 1.0]  # mean of samples 0..3
    cols.append(col(104.5, sizes=(18.0, 1.0)))
    v2 = z.view(source(cols), 10)
    assert all(a is b for a, b in zip(v1[:4], v2[:4], strict=True))  # complete periods: same objects
    assert v2[4] is not v1[4] and list(v2[4].sizes) == [17.0, 1.0]  # the filling one, merged again
    # narrower than the periods held: the newest ones, and the memo holds only those
    v3 = z.view(source(cols), 2)
    assert v3 == v2[-2:] and len(z._memo) == 2


def test_a_long_history_costs_only_the_columns_on_screen():
    z = TimeZoom()
    while z.step(1):
        pass
    assert z.k == ZOOMS[-1] and not z.step(1)
    coarse = [col(i * 10.0 + 9.75) for i in range(360)]  # an hour of 10 s periods
    view = z.view(source([], coarse, [col(3600.0), col(3600.25)]), 30)
    assert len(view) == 30 and len(z._memo) == 30  # a minute each: the last half hour
    assert view[-1].t == 3600.25 and view[-2].t == 3599.75
    while z.step(-1):
        pass
    assert z.k == 1 and not z.step(-1) and z._memo == {}


@pytest.mark.parametrize("k", [k for k in ZOOMS if k < 20])
def test_every_sample_lands_in_exactly_one_column(k):
    z = TimeZoom()
    while z.k != k:
        z.step(1)
    cadence = 0.25
    # samples 0.25 s apart with a stall (the loop was late: the next sample came 1.3 s after)
    times = [i * cadence for i in range(40)] + [10.0 + 1.3 + i * cadence for i in range(40)]
    cols = [col(t, buys={1: 1.0}) for t in times]
    view = z.view(source(cols), 1000)
    assert sum(c.buys[1] for c in view) == len(cols)
    assert all(b.t > a.t for a, b in zip(view, view[1:], strict=False))


def test_the_sampler_keeps_merged_periods_beside_the_samples():
    from test_market import _market

    # periods of 20 samples (5 s) here, to see several in 25 s; the app's are 10 s
    m = _market(sampler=HeatmapSampler(cadence=0.25, buckets=40, history=40, coarse_every=20, coarse_history=3))
    m.set_state(FeedStatus.LIVE)
    t0 = 1000.0
    at: dict[int, float] = {}  # resting size of the best bid's bucket, per sample
    for i in range(100):  # 25 s of samples
        c = m.tick(t0 + i * 0.25)
        at[i] = c.sizes[round(100.0 / m.heatmap.step) - c.start]
        if i == 30:
            m.book.apply_delta([(100.0, 9.0)], [])  # the size at the best bid changes in period 1
    hs = m.heatmap
    assert len(hs.columns) == 40  # the samples' ring is full
    # 5 s periods from 1000: four are over (the ring keeps the last three), the fifth is filling
    assert len(hs.coarse) == 3 and len(hs.pending) == 20
    p1, p2 = hs.coarse[0], hs.coarse[1]  # [1005, 1010) and [1010, 1015)
    assert (p1.t, p2.t) == (t0 + 39 * 0.25, t0 + 59 * 0.25) and p1.live and p2.live
    step = hs.step
    before, after = at[30], at[31]
    assert after == before + 8.0
    assert p1.sizes[round(100.0 / step) - p1.start] == pytest.approx((11 * before + 9 * after) / 20)
    assert p2.sizes[round(100.0 / step) - p2.start] == after  # all its samples after the change
    # the ring of periods is what the deepest zooms draw, with the filling period last
    z = TimeZoom()
    while z.k < 40:
        z.step(1)
    view = z.view(hs, 10)
    # 10 s columns: [1000, 1010) holds only p1 now, [1010, 1020) p2 and p3, then the filling one
    assert [round(c.t, 2) for c in view] == [1009.75, 1019.75, 1024.75]
    assert view[0] is p1


def test_a_period_of_one_sample_and_the_filling_period_cost_nothing_twice():
    hs = source([], [col(9.75)], [col(10.0), col(10.25)])
    z = TimeZoom()
    while z.k < 40:
        z.step(1)
    v1 = z.view(hs, 5)
    assert v1[0] is hs.coarse[0]  # 10 s a column: the sampler's own period columns
    v2 = z.view(hs, 5)
    assert v2[1] is v1[1]  # the filling period, merged once until it grows
    hs.pending.append(col(10.5))
    assert z.view(hs, 5)[1] is not v1[1]


def test_a_period_keeps_half_the_window_around_its_mid_and_leaves_the_samples_whole():
    from test_market import _market

    m = _market(sampler=HeatmapSampler(cadence=0.25, buckets=40))  # the window: 40 buckets
    m.set_state(FeedStatus.LIVE)
    hs = m.heatmap
    for i in range(41):  # the period [1000, 1010) sampled whole, then the next one begins
        m.tick(1000.0 + i * 0.25)
    sample, period = hs.columns[0], hs.coarse[0]
    whole = len(sample.sizes)
    assert whole > 20 and len(period.sizes) == 20  # a quarter of the window each side of the mid
    mid = int((period.best_bid + period.best_ask) / 2 // hs.step)
    assert mid - period.start == 10
    assert list(period.sizes) == list(sample.sizes[period.start - sample.start :][:20])
    assert period is not sample and len(sample.sizes) == whole  # the sample itself is left whole


def test_the_zoomed_view_follows_columns_made_gaps_after_the_fact():
    """Its memo keyed a merged group by its first and last samples: a group whose middle was
    made gaps at a stale close (its first sample before the cut, its last already STALE) still
    drew the stopped book."""
    from obview.market import Market
    from obview.model import FeedStatus, Instrument
    from obview.sampler import HeatmapSampler
    from obview.ui.timezoom import TimeZoom

    m = Market(Instrument("demo", "BTC-PERP", "X", 0.1, 0.001), sampler=HeatmapSampler(cadence=0.25, buckets=40))
    m.book.apply_snapshot([(100.0 - i * 0.1, 1.0) for i in range(50)], [(100.1 + i * 0.1, 2.0) for i in range(50)])
    z = TimeZoom()
    z.step(1)
    z.step(1)
    z.step(1)
    k = z.k
    assert k == 10
    m.set_state(FeedStatus.LIVE)
    n = 20 * k
    for i in range(n):
        if i == n - k + k // 2 + 2:  # STALE in the last period's second half
            m.set_state(FeedStatus.STALE, "no data")
        m.tick(1000.0 + i * 0.25)
    before = [c.live for c in z.view(m.heatmap, 200)]
    assert before[-1]  # the last period: mostly live, so drawn live
    m.heatmap.unsee_since(1000.0 + (n - k) * 0.25 + 0.1)  # all but its first sample
    after = [c.live for c in z.view(m.heatmap, 200)]
    other = TimeZoom()
    for _ in range(3):
        other.step(1)
    assert after == [c.live for c in other.view(m.heatmap, 200)]
    assert not after[-1]


def test_a_column_s_age_counts_the_periods_before_the_newest_even_across_missing_time():
    z = TimeZoom()
    cols = [col(100.0 + i * 0.25) for i in range(12)]
    assert z.ages(z.view(source(cols), 5), 0.25) == range(4, -1, -1)  # 1x: a sample a column
    while z.k < 240:
        z.step(1)
    # the hour of 10 s periods: 20 minutes, an hour of sleep (the samples' ring refilled with
    # 3 minutes of gaps, the periods before them gone), 5 minutes
    coarse = [col(t * 10.0 + 9.75) for t in range(0, 120)] + [col(t * 10.0 + 9.75) for t in range(480, 510)]
    view = z.view(source([], coarse, [col(5100.0)]), 100)
    ages = z.ages(view, 0.25)
    assert len(ages) == len(view) == 20 + 6
    assert list(ages)[-6:] == [5, 4, 3, 2, 1, 0]  # [4800, 4860) ... [5100, 5160)
    assert list(ages)[:20] == list(range(85, 65, -1))  # the first 20 minutes: 85 to 66 ago
    # no time missing: the count, as a range (the time axis keeps its line by its length)
    view = z.view(source([], coarse[-30:], [col(5100.0)]), 100)
    assert z.ages(view, 0.25) == range(len(view) - 1, -1, -1)
    # a clock stepped back: times that do not order the columns, so the count again
    back = [col(5000.0 + i * 60) for i in range(5)] + [col(1000.0 + i * 60) for i in range(5)]
    assert z.ages(back, 0.25) == range(9, -1, -1)


def test_the_history_drawn_begins_at_its_first_sample_not_at_its_first_period():
    """A minute a column over 30 s of samples: the title said "(1m)", a whole column's time,
    for half a minute of history."""
    from obview.market import Market
    from obview.model import Instrument

    m = Market(Instrument("demo", "BTC-PERP", "X", 0.1, 0.001), sampler=HeatmapSampler(cadence=0.25, buckets=40))
    m.book.apply_snapshot([(100.0 - i * 0.1, 1.0) for i in range(50)], [(100.1 + i * 0.1, 2.0) for i in range(50)])
    m.set_state(FeedStatus.LIVE)
    t0 = 6000.0 + 15.0  # a quarter into a minute
    for i in range(121):
        m.tick(t0 + i * 0.25)
    hs = m.heatmap
    assert hs.began == t0
    z = TimeZoom()
    cols = z.view(hs, 200)
    assert len(cols) == 121 and z.since == t0 - 0.25  # 1x: the first sample's tick
    while z.k < 240:
        z.step(1)
    cols = z.view(hs, 50)  # 10 s periods: [6010, 6020), [6020, 6030) ... in one minute
    assert len(cols) == 1
    assert cols[-1].t - z.since == pytest.approx(30.25)  # from the first sample, not from 6000
    while z.k > 10:
        z.step(-1)
    cols = z.view(hs, 50)  # 2.5 s from the samples: the first period [6015, 6017.5)
    assert cols[-1].t - z.since == pytest.approx(30.25)
    cols = z.view(hs, 5)  # narrower: the last 5 periods, from the first one's start
    assert cols[-1].t - z.since == pytest.approx(5 * 2.5 - 2.25)
