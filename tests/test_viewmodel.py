"""Pure view-model functions: formatting, grouping, colour scaling, tape aggregation."""

from __future__ import annotations

import math

import pytest

from obview.book import OrderBook
from obview.market import Market
from obview.model import Instrument, Side, Trade
from obview.text import safe
from obview.ui.colorscale import ColorScale, auto_scale, interpolate_stops, mark_weight, percentile
from obview.ui.numbers import align_on_point, compact, decimals_for
from obview.ui.tapemodel import (
    aggregate_tape,
    large_trade_tiers,
    sweep_text,
    tier_of,
)
from obview.ui.viewmodel import (
    PriceWindow,
    bar_cells,
    bucket_index,
    dom_grid,
    group_steps,
    heat_layout,
    is_multiple,
    next_step,
    window_origin,
)

INST = Instrument("demo", "BTC-PERP", "BTC-PERP", tick=0.1, lot=0.001)
INVERSE = Instrument(
    "deribit", "BTC-PERP", "BTC-PERPETUAL", tick=0.5, lot=10, size_unit="quote", contract_value=1.0
)


@pytest.mark.parametrize(
    "x,s",
    [
        (0, "0"),
        (0.00123, "0.0012"),
        (0.0123, "0.0123"),
        (0.123, "0.123"),
        (1.234, "1.23"),
        (12.34, "12.3"),
        (123.4, "123"),
        (1234, "1.23k"),
        (12_345, "12.3k"),
        (123_456, "123k"),
        (3_400_000, "3.40M"),
        (999.9, "1.00k"),
        (2.5e9, "2.50B"),
        # a size past the billions: T, then an exponent (it read "100000B")
        (1e14, "100T"),
        (999.4e12, "999T"),
        (999.6e12, "1.0e+15"),
        (-1500, "-1.50k"),
        # below 0.0001: two significant figures, never a non-zero size shown as "0.0000"
        (0.00004, "0.000040"),
        (0.0000123, "0.000012"),
        (0.00009996, "0.0001"),
        (3e-12, "3.0e-12"),
    ],
)
def test_compact(x, s):
    assert compact(x) == s


def test_a_column_of_sizes_shares_one_scale_so_the_larger_reads_larger():
    """741k and 1.14M on the point read as 741 over 1 (a cumulative column going from 850k to
    1.02M looked as if it fell): one scale a column, the smallest keeping four digits."""
    from obview.ui.numbers import compact_column

    vals = [741e3, 1.14e6, 850e3, 1.02e6, 2e3, 150.0, 0.0]
    out = compact_column(vals)
    assert out == ["741k", "1140k", "850k", "1020k", "2.00k", "0.15k", ""]
    aligned = align_on_point(out)
    # the digits before the point grow with the size, whatever it is
    def ints(s: str) -> int:
        return len(s.split(".")[0].rstrip("k").strip())
    ranked = sorted((v, ints(a)) for v, a in zip(vals, aligned, strict=True) if v)
    assert [n for _, n in ranked] == sorted(n for _, n in ranked)
    # past four digits: the next scale for all of them; one too small for it is said so, never
    # a zero (0.000M read as an empty level)
    assert compact_column([12.3e6, 741e3, 4.0]) == ["12.3M", "0.74M", "<0.001M"]
    assert compact_column([1e6, 0.4, 1.0]) == ["1000k", "<0.001k", "0.001k"]
    assert compact_column([float("nan"), 1.0]) == ["nan", "1.00"]
    # under 10000: no suffix, as compact() has it below 1000
    assert compact_column([0.003, 1.5, 1500.0, 800.0]) == ["0.0030", "1.50", "1500", "800"]
    assert compact_column([0.0012, 0.5, 12.0]) == [compact(0.0012), compact(0.5), compact(12.0)]
    assert compact_column([]) == []


def test_align_on_point_lines_up_decimal_points():
    out = align_on_point(["1.23", "12.3", "123", "1.23k", "0.0012"])
    assert len({len(s) for s in out}) == 1
    points = {s.index(".") for s in out if "." in s}
    assert len(points) == 1
    # a number without a point puts its last digit just left of the point column
    assert out[2].index("3") == points.pop() - 1


def test_decimals_and_group_steps():
    assert decimals_for(0.5) == 1 and decimals_for(0.01) == 2 and decimals_for(5) == 0
    assert group_steps(0.1, 7) == [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
    assert group_steps(0.01, 4) == [0.01, 0.02, 0.05, 0.1]
    steps = group_steps(0.1)
    assert next_step(steps, 0.1, 1) == 0.2
    assert next_step(steps, 0.1, -1) == 0.1  # clamps at the finest
    assert next_step(steps, 50.0, -1) == 20.0


def test_percentile_and_auto_scale_clips_a_wall():
    vals = [float(v) for v in range(1, 200)] + [1e6]  # one huge wall
    s = sorted(vals)
    assert percentile(s, 0) == 1.0 and percentile(s, 100) == 1e6
    assert percentile([0.0, 10.0], 50) == 5.0
    sc = auto_scale(vals, 5, 99)
    assert sc.hi < 300  # the wall does not set the top of the scale
    assert sc.index(1e6) == sc.levels  # it saturates
    assert sc.index(0) == 0
    assert 1 < sc.index(50.0) < sc.levels - 2


def test_color_scale_is_logarithmic_and_monotonic():
    sc = ColorScale(1.0, 10_000.0, 33)
    idx = [sc.index(v) for v in (0.5, 1, 10, 100, 1000, 10_000, 1e6)]
    assert idx == sorted(idx)
    assert idx[0] == 1 and idx[-1] == 33
    # equal ratios -> equal steps on a log scale
    assert idx[2] - idx[1] == idx[3] - idx[2] == idx[4] - idx[3]


def test_auto_scale_explicit_cutoffs_win():
    sc = auto_scale([1, 2, 3, 4, 5], low=2.0, high=4.0)
    assert (sc.lo, sc.hi) == (2.0, 4.0)


def test_interpolate_stops_endpoints():
    out = interpolate_stops(["#000000", "#ffffff"], 3)
    assert out == ["#000000", "#808080", "#ffffff"]


def test_mark_weight_grows_with_sqrt_volume():
    assert mark_weight(0, 10) == 0
    assert mark_weight(10, 10, 4) == 3
    # a quarter of the volume is half the linear size: two of four steps
    assert mark_weight(2.5, 10, 4) == 1


def test_bar_cells_eighths():
    assert bar_cells(10, 10, 4) == "████"
    assert bar_cells(5, 10, 4) == "██"
    assert bar_cells(1, 10, 4) in ("▍", "▎")
    assert bar_cells(0, 10, 4) == ""


def test_window_origin_hysteresis():
    o = window_origin(1000, None, 100)
    assert o == 950
    assert window_origin(1010, o, 100) == o  # small move: window stays
    assert window_origin(1040, o, 100) == 990  # leaves the middle band: recentre


def _t(price, size, side, ms, tid="1"):
    return Trade("demo", "BTC-PERP", price, size, side, tid, ms / 1000.0, ms / 1000.0 + 0.01)


def test_aggregate_tape_sweep_in_one_ms():
    trades = [
        _t(100.0, 1.0, Side.SELL, 1000),
        _t(101.0, 1.0, Side.BUY, 2000),  # sweep: three fills of one buy in one ms
        _t(101.5, 2.0, Side.BUY, 2000),
        _t(102.0, 1.0, Side.BUY, 2000),
        _t(102.0, 0.5, Side.SELL, 2000),  # other side in the same ms: its own row
    ]
    rows = aggregate_tape(trades, INST, 10)
    assert [r.side for r in rows] == [Side.SELL, Side.BUY, Side.SELL]
    sweep = rows[1]
    assert (sweep.first, sweep.last, sweep.low, sweep.high, sweep.count) == (
        101.0,
        102.0,
        101.0,
        102.0,
        3,
    )
    assert sweep.base == pytest.approx(4.0)
    assert sweep.vwap == pytest.approx((101 + 203 + 102) / 4)
    assert len(aggregate_tape(trades, INST, 2)) == 2


def test_tape_and_flow_in_base_units_for_inverse_contracts():
    trades = [_t(50_000.0, 100_000.0, Side.BUY, 1000)]  # 100k USD contracts
    rows = aggregate_tape(trades, INVERSE, 5)
    assert rows[0].base == pytest.approx(2.0)
    assert rows[0].quote == pytest.approx(100_000.0)
    m = Market(INVERSE)
    for t in trades:
        m.add_trade(t)
    f = m.flow.summary(now=1.5)
    assert f.buy_base == pytest.approx(2.0) and f.buy_quote == pytest.approx(100_000.0)
    assert f.sell_base == 0 and f.count == 1
    assert m.flow.summary(now=100.0).count == 0  # older than a minute


def test_large_trade_tiers():
    tiers = large_trade_tiers("BTC")
    assert tier_of(50_000, tiers) == 0
    assert tier_of(150_000, tiers) == 1
    assert tier_of(10_000_000, tiers) == 3
    assert large_trade_tiers("DOGE", {"default": [1, 2, 3]}) == (1.0, 2.0, 3.0)


def test_safe_strips_control_characters():
    s = safe("gap\x1b[2J[bold]x[/]\n")
    assert "\x1b" not in s and "\n" not in s
    assert "[bold]x[/]" in s


def test_sweep_text_shows_the_whole_end_price_or_the_move_never_a_cut_number():
    assert sweep_text(96965.2, 96963.9, 4, 1, 20) == " →96963.9"
    assert sweep_text(96965.2, 96963.9, 4, 1, 9) == " →96963.9"
    assert sweep_text(96965.2, 96963.9, 4, 1, 8) == " Δ-1.3"  # no room for the price
    assert sweep_text(96965.2, 96966.0, 2, 1, 8) == " Δ+0.8"
    assert sweep_text(96965.2, 96963.9, 4, 1, 5) == ""  # nothing rather than half a number
    assert sweep_text(100.0, 100.0, 3, 1, 9) == " ×3"
    assert sweep_text(100.0, 101.0, 1, 1, 20) == ""  # a single fill is not a sweep


def test_group_steps_include_the_sampler_bucket_and_stay_multiples_of_the_tick():
    assert group_steps(0.5, 5) == [0.5, 1.0, 2.0, 5.0, 10.0]
    assert group_steps(0.1, 4, extra=0.2) == [0.1, 0.2, 0.5, 1.0]  # already there
    assert group_steps(0.1, 4, extra=0.4) == [0.1, 0.2, 0.4, 0.5, 1.0]
    assert group_steps(0.001, 4, extra=0.05) == [0.001, 0.002, 0.005, 0.01, 0.05]
    assert all(is_multiple(v, 0.25) for v in group_steps(0.25, 8))
    assert is_multiple(0.3, 0.1) and is_multiple(1.0, 1.0) and not is_multiple(0.5, 1.0)
    assert not is_multiple(2.5, 1.0)


def test_heat_layout_shares_the_axis_when_the_grouping_is_a_multiple_of_the_sampler():
    one = heat_layout(1.0, 1.0)
    assert (one.row_step, one.sub, one.k, one.aligned) == (1.0, 1, 1, True)
    ten = heat_layout(10.0, 1.0)  # two half-buckets of 5 sampler buckets each
    assert (ten.row_step, ten.sub, ten.k, ten.aligned) == (10.0, 2, 5, True)
    five = heat_layout(5.0, 1.0)  # odd: the whole bucket in both halves
    assert (five.sub, five.k, five.aligned) == (1, 5, True)
    fine = heat_layout(0.1, 1.0)  # finer than the sampler: own grid, unaligned
    assert (fine.row_step, fine.sub, fine.k, fine.aligned) == (2.0, 2, 1, False)


def test_price_window_follows_with_hysteresis_and_recentres_on_zoom():
    w = PriceWindow()
    o = w.follow(1000.4, 1.0, 40)
    assert o == 980
    assert w.follow(1005.0, 1.0, 40) == o  # inside the middle band: no move
    assert w.follow(1012.0, 1.0, 40) == 992  # left the band: recentre
    assert w.follow(1012.0, 5.0, 40) == bucket_index(1012.0, 5.0) - 20  # zoom: recentre
    assert w.follow(None, 5.0, 40) == bucket_index(1012.0, 5.0) - 20  # no mid: stay


def test_dom_grid_is_continuous_with_empty_rows_and_cumulative_from_the_touch():
    book = OrderBook()
    book.apply_snapshot(
        [(99.5, 1.0), (99.2, 2.0), (97.1, 4.0), (80.0, 100.0)],
        [(99.7, 3.0), (101.3, 5.0), (120.0, 50.0)],
    )
    g = dom_grid(book, INST, False, 96, 6, 1.0)  # buckets 96..101, top first
    assert [r.price for r in g.rows] == [101.0, 100.0, 99.0, 98.0, 97.0, 96.0]
    by = {r.price: r for r in g.rows}
    assert by[99.0].bid == pytest.approx(3.0) and by[99.0].ask == pytest.approx(3.0)  # the touch
    assert by[98.0].bid == 0 and by[98.0].ask == 0  # an empty bucket is still a row
    assert by[97.0].bid_cum == pytest.approx(7.0)
    assert by[101.0].ask_cum == pytest.approx(8.0)
    assert g.best_bid_row == g.best_ask_row == 2
    # a window above the touch still counts the asks below it in the cumulative column
    up = dom_grid(book, INST, False, 101, 3, 1.0)
    assert up.best_ask_row is None and up.rows[-1].ask_cum == pytest.approx(8.0)
    # quote units convert per level
    q = dom_grid(book, INST, True, 96, 6, 1.0)
    assert q.rows[2].bid == pytest.approx(99.5 + 99.2 * 2)


def test_color_scale_bisect_matches_the_log_formula():
    sc = ColorScale(0.13, 33.4, 32)
    llo, lhi = math.log(sc.lo), math.log(sc.hi)
    for v in [0.01, 0.13, 0.2, 0.5, 1.0, 2.7, 9.9, 20.0, 33.4, 1e4]:
        f = (math.log(v) - llo) / (lhi - llo)
        want = 1 if f <= 0 else sc.levels if f >= 1 else 1 + int(f * (sc.levels - 1) + 0.5)
        assert sc.index(v) == want, v
    assert sc.indices([0.0, 0.13, 1e4]) == [0, 1, 32]
    assert sc.close_to(ColorScale(0.131, 34.0, 32))
    assert not sc.close_to(ColorScale(0.2, 33.4, 32)) and not sc.close_to(None)


def test_spans_read_at_a_glance():
    from obview.ui.numbers import format_span

    assert [format_span(x) for x in (0.4, 15.75, 59.6, 150, 3599, 3600, 3900)] == [
        "0s", "16s", "1m00s", "2m30s", "59m59s", "1h00m", "1h05m",
    ]


@pytest.mark.parametrize("tick", [0.3, 0.15, 3.0, 0.075])
def test_grouping_steps_for_a_tick_the_decimal_series_does_not_divide(tick):
    # 0.3 gave [0.3, 0.6, 5e15, 1e16, ...]: float noise passed 5e15 as a multiple of 0.3
    steps = group_steps(tick, extra=tick * 2)
    assert steps[:3] == [tick, round(tick * 2, 6), round(tick * 5, 6)]
    assert all(is_multiple(v, tick) and v <= tick * 1e7 for v in steps)
    assert steps == sorted(set(steps)) and len(steps) >= 14


def test_the_default_grouping_is_in_the_series_of_steps_for_the_canonical_instruments():
    """The default grouping is two sampler buckets: a bucket of 2 ticks made ETH's default
    0.04, an odd step between 0.02 and 0.05."""
    from obview.sampler import HeatmapSampler

    sampler = HeatmapSampler()
    for mid, tick in ((97_000.0, 0.1), (3_700.0, 0.01), (180.0, 0.01), (97_000.0, 0.5), (3_700.0, 0.05), (97_000.0, 1.0)):
        bucket = sampler.choose_step(mid, tick)
        assert is_multiple(bucket, tick)
        assert bucket >= mid * sampler.span_pct / 100 * 2 / sampler.buckets
        assert 2 * bucket in group_steps(tick), (mid, tick, bucket)


def test_decimals_shown_adds_digits_for_values_off_the_tick_never_for_float_noise():
    from obview.ui.numbers import decimals_shown

    assert decimals_shown(0.05, 1) == 2  # a 0.05 spread at a 0.1 tick read "0.1"
    assert decimals_shown(100000.025, 2) == 3
    assert decimals_shown(97005.15 - 97005.1, 1, scale=97005.1) == 2
    assert decimals_shown(20000000.15 - 20000000.1, 1, scale=20000000.1) == 2
    # the noise of the prices a spread is computed from is not a digit, at any price
    assert decimals_shown(97005.3 - 97005.1, 1, scale=97005.2) == 1
    assert decimals_shown(20000000.1 - 20000000.0, 1, scale=20000000.05) == 1
    assert decimals_shown(123456789.12 - 123456789.11, 2, scale=123456789.1) == 2
    assert decimals_shown(0.2, 1, scale=9.871e13) == 1
    # at most ``extra`` more; NaN and infinities keep the tick's
    assert decimals_shown(1 / 3, 1) == 5
    assert decimals_shown(float("nan"), 1) == decimals_shown(float("inf"), 1) == 1
    assert decimals_shown(-0.05, 1) == 2  # a crossed book's negative spread
