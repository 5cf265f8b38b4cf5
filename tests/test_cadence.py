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
    assert a.share(1005.0) is None and a.ordinary_silence(1005.0, 10.0, 300.0) == 10.0
    for s in range(1000, 1100, 10):  # one second in ten
        a.changed(s + 0.5)
    assert a.share(1100.0) == 0.1
    # (1 - 0.1) ** s > 1e-4 while s < 87.4
    assert 87 < a.ordinary_silence(1100.0, 10.0, 300.0) < 88
    assert a.ordinary_silence(1100.0, 10.0, 30.0) == 30.0  # the ceiling
    busy = Activity()
    busy.watching(0.0)
    for s in range(100):
        busy.changed(s + 0.1)
        busy.changed(s + 0.6)  # twice in a second counts once
    assert busy.share(100.0) == 1.0 and busy.ordinary_silence(100.0, 10.0, 300.0) == 10.0
    still = Activity()
    still.watching(0.0)
    assert still.share(50.0) == 0.0 and still.ordinary_silence(50.0, 10.0, 300.0) == 300.0


def test_activity_is_bounded_leaves_outages_out_and_forgets_after_a_stale_close():
    from obview.feed.cadence import Activity

    a = Activity(window=60)
    a.watching(0.0)
    for s in range(10_000):
        a.changed(float(s))
    assert len(a._secs) == 60 and a.share(9_999.0) == 1.0
    # ten minutes between connections: neither quiet nor busy (it read as ten quiet minutes)
    a.paused(10_000.0)
    a.watching(10_600.0)
    a.changed(10_600.5)
    assert a.share(10_600.5) == 1.0 and a.ordinary_silence(10_600.5, 10.0, 300.0) == 10.0
    # the silence being judged is not part of the habit: the share is the one up to the
    # last change (one second in two: about 13 s), however long ago that was
    b = Activity()
    b.watching(0.0)
    for s in range(0, 100, 2):
        b.changed(s + 0.5)
    assert 0.49 < b.share(98.5) < 0.52 and 12.5 < b.ordinary_silence(98.5, 10.0, 300.0) < 14
    # a stale close: start over (a stuck stream's silences would teach it silence)
    b.forget()
    assert b.share(200.0) is None and b.ordinary_silence(200.0, 10.0, 300.0) == 10.0


def test_activity_a_stuck_busy_stream_reconnecting_again_and_again_never_learns_silence():
    """A busy book whose channel hangs while each reconnect brings a snapshot: each cycle's
    silence lowered the share and so stretched the next one, to 300 s of a frozen book LIVE."""
    from obview.feed.cadence import Activity

    a = Activity()
    t = 0.0
    a.watching(t)
    for _ in range(60):  # a minute of a busy book
        a.changed(t)
        t += 1.0
    for _ in range(20):  # then: snapshot, 20 s of silence, stale close, reconnect
        a.changed(t)
        assert a.ordinary_silence(t, 10.0, 300.0) == 10.0
        t += 20.0
        a.forget()
        a.paused(t)
        t += 0.5
        a.watching(t)
