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


def test_activity_the_silence_ordinary_for_a_book_follows_its_share_of_active_seconds():
    from obview.feed.cadence import Activity

    a = Activity(window=300)
    a.watching(1000.0)
    a.changed(1000.2)
    assert a.share(1005.0) is None  # too little watched to tell
    for s in range(1000, 1100, 10):  # one second in ten
        a.changed(s + 0.5)
    assert abs(a.share(1100.0) - 0.1) < 0.002
    # (1 - 0.1) ** s > 1e-5 while s < 109.3
    assert 109 < a.ordinary_silence(0.1, 10.0, 300.0) < 110
    assert a.ordinary_silence(0.1, 10.0, 30.0) == 30.0  # the ceiling
    assert a.ordinary_silence(0.9, 5.0, 300.0) == 5.0  # nine seconds in ten: 5 s
    assert a.ordinary_silence(1.0, 5.0, 300.0) == 5.0 and a.ordinary_silence(0.0, 5.0, 300.0) == 300.0
    busy = Activity()
    busy.watching(0.0)
    for s in range(100):
        busy.changed(s + 0.1)
        busy.changed(s + 0.6)  # twice in a second counts once
    assert busy.share(99.6) == 1.0
    still = Activity()
    still.watching(0.0)
    assert still.share(50.0) == 0.0


def test_activity_gives_a_cautious_early_share_before_its_habit_is_known():
    from obview.feed.cadence import Activity

    a = Activity(min_span=10.0)
    a.watching(100.0)
    for s in range(100, 104):
        a.changed(s + 0.3)
    assert a.early_share(102.0) is None  # under 3 s watched: nothing to go on
    # four seconds watched, a change in each: 4 / (4 + 1), not 1.0
    assert a.early_share(103.5) == 0.8 and a.share(103.5) is None
    # (1 - 0.8) ** s > 1e-5 while s < 7.15: a busy young book frozen is wrong after ~7 s
    assert 7.1 < a.ordinary_silence(0.8, 5.0, 15.0) < 7.2
    assert a.early_share(110.5) is None and a.share(110.5) is not None  # the share tells now
    quiet = Activity(min_span=10.0)
    quiet.watching(0.0)
    quiet.changed(0.5)
    assert quiet.early_share(5.0) == 1 / 6  # one second of five: the venue's own time stands
    assert quiet.ordinary_silence(1 / 6, 5.0, 15.0) == 15.0
    # a burst of changes across two second boundaries, then quiet: not three busy seconds
    burst = Activity(min_span=10.0)
    burst.watching(0.0)
    for t in (0.95, 1.5, 2.02):
        burst.changed(t)
    assert burst.early_share(2.02) is None  # 1.07 s of changes: too short to tell
    assert burst.early_share(3.96) == 3 / 5 and burst.ordinary_silence(3 / 5, 5.0, 15.0) > 12


def test_activity_is_bounded_and_leaves_outages_and_stale_silences_out():
    from obview.feed.cadence import Activity

    a = Activity(window=60)
    a.watching(0.0)
    for s in range(10_000):
        a.changed(float(s))
    assert len(a._secs) == 62 and a.share(9_999.0) == 1.0
    # ten minutes between connections: neither quiet nor busy (it read as ten quiet minutes)
    a.paused(10_000.0)
    a.watching(10_600.0)
    a.changed(10_600.5)
    assert a.share(10_600.5) == 1.0
    # the silence being judged is not part of the habit: the share is the one up to the
    # last change (one second in two), however long ago that was
    b = Activity()
    b.watching(0.0)
    for s in range(0, 100, 2):
        b.changed(s + 0.5)
    assert 0.49 < b.share(98.5) < 0.52


def test_activity_a_stuck_busy_stream_reconnecting_again_and_again_never_learns_silence():
    """A busy book whose channel hangs while each reconnect brings a snapshot: each cycle's
    silence lowered the share and so stretched the next one, to 300 s of a frozen book LIVE.
    A silence that ended in a stale close is left out of the watched time."""
    from obview.feed.cadence import Activity

    a = Activity()
    t = 0.0
    a.watching(t)
    for _ in range(60):  # a minute of a busy book
        a.changed(t)
        t += 1.0
    for _ in range(40):  # then: snapshot, 13 s of silence, stale close, reconnect
        a.changed(t)
        assert a.share(t) > 0.95
        last = t
        t += 13.0
        a.paused(last)  # the stale close: the silence since the last change does not count
        t += 0.5
        a.watching(t)
