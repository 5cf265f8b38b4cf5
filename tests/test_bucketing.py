"""One bucketing rule for the ladder, the heatmap sampler, its trades and the price axis,
checked against exact decimal arithmetic on the ticks of real instruments. The sampler floored
``(p - lo) / step`` with no tolerance: on ETH's 0.01 and SOL's 0.001 ticks a level on a bucket's
edge landed one bucket off, and the heatmap drew walls a row away from the ladder beside it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from obview.book import OrderBook, bucket_ceil, bucket_floor, bucket_of
from obview.market import Market
from obview.model import FeedStatus, Instrument, Side
from obview.sampler import HeatmapSampler
from obview.ui.heatmap import Heatmap
from obview.ui.viewmodel import PriceWindow, dom_grid, heat_layout

CASES = [  # (tick, mid, bucket step)
    (0.01, 3600.0, 0.02), (0.001, 180.0, 0.001), (0.05, 3600.0, 0.05), (1e-05, 0.5, 1e-05),
    (0.0001, 1.2, 0.0001), (1e-08, 0.0001, 1e-08), (0.1, 97000.0, 0.5), (0.001, 19995.0, 0.001),
]  # fmt: skip


def grid(tick: float, mid: float, n: int) -> list[float]:
    """``n`` prices a side of ``mid`` on the ``tick`` grid, as a venue prints them."""
    t = Decimal(repr(tick))
    d = max(0, -t.as_tuple().exponent)
    k0 = round(mid / tick)
    return [float(f"{(k0 + k) * t:.{d}f}") for k in range(-n, n)]


def exact(p: float, step: float) -> int:
    return int((Decimal(repr(p)) / Decimal(repr(step))).to_integral_value(rounding="ROUND_FLOOR"))


@pytest.mark.parametrize(("tick", "mid", "step"), CASES)
def test_every_bucketing_path_agrees_with_exact_arithmetic(tick, mid, step):
    prices = grid(tick, mid, 1500)
    assert [bucket_of(p, step) for p in prices] == [exact(p, step) for p in prices]
    assert [bucket_floor(p, step) for p in prices] == [float(Decimal(exact(p, step)) * Decimal(repr(step))) for p in prices]
    # the sampler's stored column: each level's size in its exact bucket
    book = OrderBook()
    book.apply_snapshot([(p, 1.0) for p in prices if p < mid], [(p, 1.0) for p in prices if p >= mid])
    start = exact(mid, step) - 1000
    first, sizes = book.bucket_span(start * step, step, 2000)
    want: dict[int, float] = {}
    for p in prices:
        i = exact(p, step) - start
        if 0 <= i < 2000:
            want[i] = want.get(i, 0.0) + 1.0
    got = {first + i: s for i, s in enumerate(sizes) if s}
    assert got == want
    # trades go to the same buckets
    s = HeatmapSampler()
    s.step = step
    for p in prices[::7]:
        s.add_trade(p, 1.0, Side.BUY)
    assert set(s._buys) == {exact(p, step) for p in prices[::7]}


def test_grouping_past_two_to_the_24_does_not_drop_a_level_a_tick():
    # 19995.01 / 0.001 floored to 19995009 with a fixed 1e-9: the best bid shown a tick low,
    # merged with its neighbour
    book = OrderBook()
    book.apply_snapshot([(19995.009, 1.0), (19995.01, 1.0)], [(19995.02, 1.0)])
    assert book.grouped(0.001, 5)[0][:2] == [(19995.01, 1.0, 1.0), (19995.009, 1.0, 2.0)]
    assert bucket_ceil(19995.01, 0.001) == 19995.01


@pytest.mark.parametrize(("symbol", "tick", "mid"), [("BTC-PERP", 0.1, 97000.0), ("ETH-PERP", 0.01, 3600.0), ("SOL-PERP", 0.001, 180.0)])
def test_the_heatmap_column_shows_what_the_ladder_row_beside_it_shows(symbol, tick, mid):
    inst = Instrument("demo", symbol, symbol, tick, 0.01)
    m = Market(inst)
    prices = grid(tick, mid, 400)
    m.book.apply_snapshot([(p, 1.0 + i) for i, p in enumerate(prices) if p < mid], [(p, 1.0 + i) for i, p in enumerate(prices) if p > mid])
    m.set_state(FeedStatus.LIVE)
    m.tick(1000.0)
    m.tick(1000.5)
    step = m.heatmap.step
    group = step * 2  # the default grouping: the ladder's rows are the heatmap's rows
    lay = heat_layout(group, step)
    rows = 60
    origin = PriceWindow().follow(m.book.mid(), group, rows)
    g = dom_grid(m.book, inst, False, origin, rows, group)
    ladder = {rows - 1 - i: r.bid + r.ask for i, r in enumerate(g.rows)}
    e = Heatmap()._column(m.heatmap.columns[-1], lay, origin, rows)
    heat: dict[int, float] = {}
    for i, v in enumerate(e.vals):
        heat[i // lay.sub] = heat.get(i // lay.sub, 0.0) + v
    assert all(abs(ladder[j] - heat.get(j, 0.0)) <= 1e-6 * max(1.0, ladder[j]) for j in range(rows))


def test_a_rows_trade_mark_goes_to_the_side_that_traded_more_over_all_its_buckets():
    # a row of two sampler buckets: buys 3.0 in one, sells 2.0 + 2.0 across both. The sells
    # were summed only while they led, so the row showed a buy mark
    from array import array

    from obview.sampler import HeatmapColumn
    from obview.ui.viewmodel import HeatLayout

    lay = HeatLayout(1.0, 2, 1, True)
    col = HeatmapColumn(t=0, live=True, start=0, sizes=array("f", [0.0] * 20), buys={10: 3.0}, sells={10: 2.0, 11: 2.0})
    assert Heatmap()._column(col, lay, 0, 10).marks == {4: (4.0, False)}
    col = HeatmapColumn(t=0, live=True, start=0, sizes=array("f", [0.0] * 20), buys={10: 3.0, 11: 1.5}, sells={11: 4.0})
    assert Heatmap()._column(col, lay, 0, 10).marks == {4: (4.5, True)}
