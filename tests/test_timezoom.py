"""Heatmap time zoom: sampler columns merged per aligned period, stable while on screen."""

from __future__ import annotations

from array import array

import pytest

from obview.market import HeatmapColumn
from obview.ui.timezoom import ZOOMS, TimeZoom, merge


def col(t, start=100, sizes=(1.0, 2.0), live=True, bid=10.0, ask=10.5, buys=None, sells=None):
    if not live:
        return HeatmapColumn(t=t, live=False, buys=buys or {}, sells=sells or {})
    return HeatmapColumn(
        t=t, live=True, start=start, sizes=array("f", sizes), best_bid=bid, best_ask=ask,
        buys=buys or {}, sells=sells or {},
    )


def test_a_merged_column_is_the_mean_of_its_live_samples_and_the_sum_of_their_trades():
    a = col(0.0, start=100, sizes=(4.0, 2.0), bid=10.0, buys={100: 1.0})
    b = col(0.25, start=101, sizes=(6.0, 8.0), bid=10.1, ask=10.6, buys={100: 2.0}, sells={102: 5.0})
    gap = col(0.5, live=False, sells={102: 1.0})
    m = merge([a, b, gap])
    assert m.live and m.t == 0.5
    # union span 100..102, each bucket the mean over the two LIVE samples
    assert m.start == 100 and list(m.sizes) == [2.0, 4.0, 4.0]
    assert (m.best_bid, m.best_ask) == (10.1, 10.6)  # the last live sample's
    assert m.buys == {100: 3.0} and m.sells == {102: 6.0}  # every trade counts, the gap's too
    assert (a.buys, gap.sells) == ({100: 1.0}, {102: 1.0})  # the samples are left as they were
    # no live sample: a gap
    g = merge([col(0.0, live=False), col(0.25, live=False, buys={5: 1.0})])
    assert not g.live and len(g.sizes) == 0 and g.buys == {5: 1.0}


def test_at_1x_the_view_is_the_samples_themselves():
    z = TimeZoom()
    cols = [col(i * 0.25) for i in range(10)]
    assert z.view(cols, 4, 0.25) == cols[-4:]
    assert all(v is c for v, c in zip(z.view(cols, 4, 0.25), cols[-4:], strict=True))
    assert z.view(cols, 0, 0.25) == []


def test_periods_are_aligned_and_a_column_keeps_its_object_until_it_leaves_the_screen():
    z = TimeZoom()
    assert z.step(1) and z.k == 2 and z.step(1) and z.k == 4  # 4 samples (1 s) a column
    cadence = 0.25
    cols = [col(100.0 + i * cadence, sizes=(float(i), 1.0)) for i in range(18)]  # 100.0 .. 104.25
    v1 = z.view(cols, 10, cadence)
    # periods [100, 101), [101, 102) ... by sample time; the newest one still filling
    assert [round(c.t, 2) for c in v1] == [100.75, 101.75, 102.75, 103.75, 104.25]
    assert list(v1[0].sizes) == [1.5, 1.0]  # mean of samples 0..3
    cols.append(col(104.5, sizes=(18.0, 1.0)))
    v2 = z.view(cols, 10, cadence)
    assert all(a is b for a, b in zip(v1[:4], v2[:4], strict=True))  # complete periods: same objects
    assert v2[4] is not v1[4] and list(v2[4].sizes) == [17.0, 1.0]  # the filling one, merged again
    # narrower than the periods held: the newest ones, and the memo holds only those
    v3 = z.view(cols, 2, cadence)
    assert v3 == v2[-2:] and len(z._memo) == 2


def test_a_long_history_costs_only_the_columns_on_screen():
    z = TimeZoom()
    while z.step(1):
        pass
    assert z.k == ZOOMS[-1] and not z.step(1)
    cols = [col(i * 0.25) for i in range(720)]
    view = z.view(cols, 30, 0.25)
    assert len(view) == 30 and len(z._memo) == 30
    while z.step(-1):
        pass
    assert z.k == 1 and not z.step(-1) and z._memo == {}


@pytest.mark.parametrize("k", ZOOMS)
def test_every_sample_lands_in_exactly_one_column(k):
    z = TimeZoom()
    while z.k != k:
        z.step(1)
    cadence = 0.25
    # samples 0.25 s apart with a stall (the loop was late: the next sample came 1.3 s after)
    times = [i * cadence for i in range(40)] + [10.0 + 1.3 + i * cadence for i in range(40)]
    cols = [col(t, buys={1: 1.0}) for t in times]
    view = z.view(cols, 1000, cadence)
    assert sum(c.buys[1] for c in view) == len(cols)
    assert all(b.t > a.t for a, b in zip(view, view[1:], strict=False))
