"""The heatmap's time axis: round ages under the columns of that age, labels whole and apart."""

from __future__ import annotations

import re

import pytest

from obview.ui.timeaxis import (
    MIN_GAP,
    NOW,
    PAUSED,
    age_label,
    axis_text,
    tick_interval,
    time_ticks,
)
from obview.ui.timezoom import ZOOMS

SECS = [k * 0.25 for k in ZOOMS]  # 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 s a column
WIDTHS = [1, 3, 6, 9, 12, 20, 37, 52, 63, 100, 149, 229]


def seconds_of(label: str) -> int:
    """'-1m30s' -> 90, '-2h' -> 7200: the age a label names."""
    m = re.fullmatch(r"-(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", label)
    assert m and label != "-", label
    h, mi, s = (int(g) if g else 0 for g in m.groups())
    return h * 3600 + mi * 60 + s


def check(ages, secs: float, width: int, newest: str = NOW) -> list[tuple[int, str]]:
    """Every rule the axis keeps, for one axis; returns its ticks."""
    ticks = time_ticks(ages, secs, width, newest)
    text = axis_text(ages, width, ticks)
    n = min(len(ages), width)
    first = width - n
    assert len(text) == width
    shown = list(ages)[len(ages) - n :]
    if len(newest) <= width and n:
        assert ticks[0] == (width - 1, newest)
        assert text.endswith(newest)
        rest = ticks[1:]
    else:
        assert all(x < width - 1 for x, _ in ticks)
        rest = ticks
    # right to left, each group (label + tick) apart from the one on its right
    left = width - len(newest) if rest is not ticks else width
    for x, label in rest:
        start = x - len(label)
        assert start >= first, (x, label, first)  # whole, over the history, not the pad
        assert x + MIN_GAP < left, (x, label, left)  # never touching the label on its right
        left = start
        # under the column that really is that age
        age_cols = shown[x - first]
        assert seconds_of(label) == pytest.approx(age_cols * secs), (x, label, age_cols)
        assert text[x] == "┴" and text[start:x] == label
    # the pad is hatched up to the history (or the newest label over it)
    end = min(first, width - len(newest)) if ticks and ticks[0][1] == newest else first
    assert text[:end] == "╱" * end
    return ticks


@pytest.mark.parametrize("secs", SECS)
@pytest.mark.parametrize("width", WIDTHS)
def test_ticks_sit_under_their_columns_whole_and_apart_at_every_zoom_and_width(secs, width):
    iv = tick_interval(secs, width)
    for n in sorted({0, 1, 2, 3, 5, width // 3, width - 1, width, width + 50}):
        if n < 0:
            continue
        ticks = check(range(n - 1, -1, -1), secs, width)
        ages = [seconds_of(label) for _, label in ticks[1:]]
        if ages:
            # round: every multiple of one interval that fits, from the newest back
            assert iv is not None and iv >= 1
            assert ages == [iv * (m + 1) for m in range(len(ages))]
            assert all(a % iv == 0 for a in ages)
        if n >= width and iv is not None:
            # a full plot: every multiple of the interval within the width is labelled but
            # (perhaps) one too close to the left edge to fit whole
            assert len(ages) >= (width - 1) // round(iv / secs) - 1
        # paused: the same ticks, only the newest label reads otherwise
        paused = check(range(n - 1, -1, -1), secs, width, PAUSED)
        assert [t for t in paused if t[1] != PAUSED] == [t for t in ticks if t[1] != NOW]


def test_the_interval_is_round_and_follows_the_zoom_not_the_history():
    assert [tick_interval(s, 63) for s in SECS] == [5, 5, 10, 30, 60, 120, 300, 600]
    # wider: the labels grow ("-1m50s"), so do the intervals between them
    assert tick_interval(0.5, 229) == 10 and tick_interval(1, 229) == 15
    assert tick_interval(60, 229) == 900
    # an interval is a whole number of columns: a 0.4 s sampler's column never ticks every
    # 12 columns (4.8 s) as "-5s"
    assert tick_interval(0.4, 63) == 10
    check(range(62, -1, -1), 0.4, 63)
    for s in [*SECS, 0.4, 0.3]:
        for w in WIDTHS:
            iv = tick_interval(s, w)
            assert iv is None or abs(iv / s - round(iv / s)) < 1e-9


def test_a_narrow_heatmap_shows_what_fits_and_nothing_cut():
    # 9 columns (a 20-cell heatmap less its price axis): only the newest label
    for s in SECS:
        assert time_ticks(range(8, -1, -1), s, 9) == [(8, "now")]
    assert axis_text(range(8, -1, -1), 9, [(8, "now")]) == "──────now"
    # 20 columns: at 0.25 s a column the first round age (5 s) is 20 columns back, off the
    # plot; at 0.5 s it is 10 back and fits
    assert time_ticks(range(19, -1, -1), 0.25, 20) == [(19, "now")]
    ticks = time_ticks(range(19, -1, -1), 0.5, 20)
    assert ticks == [(19, "now"), (9, "-5s")]
    assert axis_text(range(19, -1, -1), 20, ticks) == "──────-5s┴───────now"
    # narrower than the label: nothing at all rather than half a word
    assert time_ticks(range(1, -1, -1), 0.25, 2) == []
    assert time_ticks(range(1, -1, -1), 0.25, 6, PAUSED) == [(5, "paused")]
    assert time_ticks(range(1, -1, -1), 0.25, 5, PAUSED) == []


def test_the_axis_row_reads_right_to_left_from_now():
    ages = range(62, -1, -1)
    ticks = time_ticks(ages, 0.25, 63)
    # 5 s is 20 columns: -15s would be at x = 2, its label cut by the left edge
    assert ticks == [(62, "now"), (42, "-5s"), (22, "-10s")]
    assert axis_text(ages, 63, ticks) == (
        "──────────────────-10s┴────────────────-5s┴─────────────────now"
    )
    # the history 30 columns long: the pad hatched, nothing labelled over it
    ages = range(29, -1, -1)
    ticks = time_ticks(ages, 0.25, 63)
    assert ticks == [(62, "now"), (42, "-5s")]
    assert axis_text(ages, 63, ticks) == "╱" * 33 + "──────" + "-5s┴" + "─" * 17 + "now"
    # a tick whose label would reach into the pad is left out, not cut
    ages = range(21, -1, -1)  # the 5 s tick's column is the oldest drawn: no room left of it
    assert time_ticks(ages, 0.25, 63) == [(62, "now")]


def test_time_missing_between_columns_moves_the_ticks_to_the_columns_of_their_age():
    # 60 s a column: columns of ages 65-79, then (an hour asleep) ages 0-9
    ages = list(range(79, 64, -1)) + list(range(9, -1, -1))
    width = 40
    assert tick_interval(60, width) == 600
    ticks = check(ages, 60, width)
    labels = {label: x for x, label in ticks}
    first = width - len(ages)
    assert set(labels) == {"now", "-1h10m"}  # 10 to 60 minutes: no column stands for them
    assert ages[labels["-1h10m"] - first] == 70
    text = axis_text(ages, width, ticks)
    assert text[first + 15] == "≈"  # the first column after the missing hour
    assert text.count("≈") == 1
    # with no time missing the same columns read by their count
    assert "≈" not in axis_text(range(19, -1, -1), width, time_ticks(range(19, -1, -1), 60, width))


def test_labels_name_seconds_minutes_and_hours():
    assert [age_label(s) for s in (5, 45, 60, 90, 125, 600, 3600, 5400, 7200)] == [
        "-5s",
        "-45s",
        "-1m",
        "-1m30s",
        "-2m05s",
        "-10m",
        "-1h",
        "-1h30m",
        "-2h",
    ]
