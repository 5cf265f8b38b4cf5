"""The measured book cadence and the stale time it gives (obview.feed.cadence)."""

import pytest

from obview.feed.cadence import Cadence


def fed(c: Cadence, *gaps: float, start: float = 100.0) -> Cadence:
    t = start
    c.changed(t)
    for g in gaps:
        t += g
        c.changed(t)
    return c


def test_the_fixed_time_stands_until_enough_intervals_are_seen():
    c = fed(Cadence(4.0, 8.0, 60.0), 2.0, 2.0, 2.0, 2.0)
    assert c.typical is None and c.stale_after(20.0) == 20.0
    c.changed(110.0)
    assert c.typical == 2.0 and c.stale_after(20.0) == 8.0


def test_factor_times_the_median_within_floor_and_ceiling():
    assert fed(Cadence(4.0, 8.0, 60.0), *[5.0] * 5).stale_after(20.0) == 20.0
    assert fed(Cadence(4.0, 8.0, 60.0), *[3.0] * 5).stale_after(20.0) == 12.0
    assert fed(Cadence(4.0, 8.0, 60.0), *[0.5] * 5).stale_after(20.0) == 8.0  # the floor
    assert fed(Cadence(4.0, 8.0, 60.0), *[30.0] * 5).stale_after(20.0) == 60.0  # the ceiling


def test_one_late_push_or_one_burst_does_not_move_it():
    c = fed(Cadence(4.0, 1.0, 60.0), 2.0, 2.0, 14.0, 2.0, 0.01, 2.0, 2.0)
    assert c.typical == 2.0 and c.stale_after(20.0) == 8.0


def test_a_changed_cadence_is_followed_and_history_is_bounded():
    c = fed(Cadence(4.0, 1.0, 60.0, keep=8), *[2.0] * 8)
    assert c.stale_after(20.0) == 8.0
    fed(c, *[5.0] * 8, start=1000.0)  # the venue slowed its stream down
    assert c.typical == 5.0 and c.stale_after(20.0) == 20.0
    assert len(c._gaps) == 8


def test_the_gap_across_a_reconnect_is_not_an_interval():
    c = fed(Cadence(4.0, 1.0, 60.0), *[2.0] * 5)
    c.restart()
    c.changed(10_000.0)  # first book on the new connection, long after the last
    assert c.typical == 2.0


def test_time_that_did_not_advance_is_not_an_interval():
    c = fed(Cadence(4.0, 1.0, 60.0, need=1), 0.0, 0.0)
    assert c.typical is None


@pytest.mark.parametrize("args", [(0.0, 1.0, 2.0), (2.0, 0.0, 2.0), (2.0, 3.0, 2.0)])
def test_nonsense_settings_are_refused(args):
    with pytest.raises(ValueError):
        Cadence(*args)
