"""The heatmap's time axis: where its tick labels go, at round ages of the drawn columns.

Columns are drawn right-aligned, the newest at the right edge. Each drawn column has an age in
columns: how many columns of time before the newest one it stands for (``n - 1 - i`` for column
``i`` of ``n`` when no time is missing between them; see ``TimeZoom.ages``). A tick of age ``a``
seconds goes under the column whose age is ``a / seconds-per-column``: the sample taken ``a``
seconds before the newest one, or, zoomed out, the aligned period holding that instant.

The axis row reads, right-aligned to the newest column::

    ╱╱╱╱╱╱╱╱╱╱╱╱─────-15s┴─────-10s┴──────-5s┴───────now      (0.5 s a column, 20 s drawn)

the hatch where no history is drawn yet (as the plot above it), a baseline under the history,
each label left of its tick (``┴``, under the column of that age), and the newest column's
label (``now``, ``paused``, or ``ended`` when the samples stopped) ending under the newest
column. A ``≈`` marks where time is
missing between two adjacent columns.

Nothing here knows about terminals or styles: ``time_ticks`` and ``axis_text`` are pure.
"""

from __future__ import annotations

from collections.abc import Sequence

#: tick intervals (s) the axis chooses from: round numbers of seconds, minutes and hours
NICE = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600)
#: cells of baseline at least between two labels (a tick counts with its label)
MIN_GAP = 4
PAD = "╱"
BASE = "─"
TICK = "┴"
BREAK = "≈"
NOW = "now"
PAUSED = "paused"
#: the newest column's label when the samples stopped coming (a FAILED feed): the ticks count
#: back from that moment, as they do from the paused one (no longer than ``PAUSED``)
ENDED = "ended"


def age_label(seconds: float) -> str:
    """A tick's label: "-5s", "-1m30s", "-2m", "-1h", "-1h30m"."""
    s = int(round(seconds))
    if s < 60:
        return f"-{s}s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"-{m}m" if not r else f"-{m}m{r:02d}s"
    h, r = divmod(s, 3600)
    return f"-{h}h" if r < 60 else f"-{h}h{r // 60:02d}m"


def tick_interval(secs: float, width: int) -> float | None:
    """The smallest round interval (s) that is a whole number of columns of ``secs`` seconds
    and leaves room between the labels of a ``width``-column axis; None when none does.

    It depends on the width and the zoom only, not on how much history there is or whether
    the newest label reads ``now`` or ``paused``: the ticks stay where they are while the
    history fills the width and when the screen is paused."""
    if secs <= 0 or width <= 0:
        return None
    for iv in NICE:
        cols = iv / secs
        step = round(cols)
        if step < 1 or abs(cols - step) > 1e-6:
            continue
        widest = max(
            (len(age_label(m * iv)) for m in range(1, (width - 1) // step + 1)), default=0
        )
        if step >= max(widest + 1, len(PAUSED)) + MIN_GAP:
            return iv
    return None


def _whole(ages: Sequence[int]) -> bool:
    """No time missing between the columns: the column of age ``j`` is ``n - 1 - j``."""
    return isinstance(ages, range) and ages.step == -1


def time_ticks(
    ages: Sequence[int], secs: float, width: int, newest: str = NOW
) -> list[tuple[int, str]]:
    """Where the labels go under ``width`` cells whose right part draws ``len(ages)`` columns
    (oldest first; ``ages[i]`` is column ``i``'s age in columns, the newest 0).

    Returns ``(x, label)`` pairs, right to left: the newest column's label ``newest`` ending at
    ``x = width - 1``, then one pair per round age whose column is drawn, its tick at ``x`` and
    the label in the cells just left of it. A label never covers the hatched pad left of the
    history (the newest one excepted, when the history is narrower than it), never overlaps
    another and is never cut: one that would not fit whole is left out."""
    n = min(len(ages), width)
    if n <= 0:
        return []
    ages = ages[len(ages) - n :]
    first = width - n  # x of the oldest drawn column
    out: list[tuple[int, str]] = []
    left = width  # the leftmost cell taken by a label so far
    if newest and len(newest) <= width:
        out.append((width - 1, newest))
        left = width - len(newest)
    iv = tick_interval(secs, width)
    if iv is None:
        return out
    step = round(iv / secs)
    oldest = ages[0]
    at = None if _whole(ages) else {a: i for i, a in enumerate(ages)}
    j = step
    while j <= oldest:
        i = n - 1 - j if at is None else at.get(j)
        if i is not None:
            x = first + i
            label = age_label(j * secs)
            start = x - len(label)
            if start >= first and x + MIN_GAP < left:
                out.append((x, label))
                left = start
        j += step
    return out


def axis_text(ages: Sequence[int], width: int, ticks: list[tuple[int, str]]) -> str:
    """The axis row as text: the pad, the baseline, a break mark where time is missing between
    two columns, the ticks and labels (``time_ticks``'s)."""
    n = min(len(ages), width)
    if width <= 0:
        return ""
    first = width - n
    cells = [PAD] * first + [BASE] * n
    if n > 1 and not _whole(ages):
        shown = ages[len(ages) - n :]
        for i in range(1, n):
            if shown[i - 1] - shown[i] > 1:
                cells[first + i] = BREAK
    for x, label in ticks:
        if x == width - 1:  # the newest column's: it ends there, no tick (the edge is one)
            cells[x + 1 - len(label) : x + 1] = label
        else:
            cells[x] = TICK
            cells[x - len(label) : x] = label
    return "".join(cells)
