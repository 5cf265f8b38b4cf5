"""OrderBook against a plain-dict reference model (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from obview.book import BookSide, OrderBook, bucket_ceil, bucket_floor, bucket_of
from obview.model import BookDelta, BookSnapshot

TICK = 0.5
prices = st.integers(min_value=1, max_value=400).map(lambda i: i * TICK)
sizes = st.one_of(st.just(0.0), st.floats(min_value=0.001, max_value=1000, allow_nan=False))
levels = st.lists(st.tuples(prices, sizes), max_size=30)
ops = st.lists(st.tuples(st.booleans(), levels, levels), max_size=40)


class RefBook:
    def __init__(self):
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def snapshot(self, bids, asks):
        self.bids = {p: s for p, s in bids if s > 0}
        self.asks = {p: s for p, s in asks if s > 0}

    def delta(self, bids, asks):
        for side, lv in ((self.bids, bids), (self.asks, asks)):
            for p, s in lv:
                if s > 0:
                    side[p] = s
                else:
                    side.pop(p, None)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_book_matches_reference(operations):
    book, ref = OrderBook(), RefBook()
    for is_snap, bids, asks in operations:
        if is_snap:
            book.apply_snapshot(bids, asks)
            ref.snapshot(bids, asks)
        else:
            book.apply_delta(bids, asks)
            ref.delta(bids, asks)
        assert dict(book.bids) == ref.bids
        assert dict(book.asks) == ref.asks
        # the sorted price lists stay in step with the maps
        assert book.bids.keys() == sorted(ref.bids) and book.asks.keys() == sorted(ref.asks)
        bb = max(ref.bids) if ref.bids else None
        ba = min(ref.asks) if ref.asks else None
        assert (book.best_bid() or (None,))[0] == bb
        assert (book.best_ask() or (None,))[0] == ba
        if bb is not None and ba is not None:
            assert book.spread() == ba - bb
            assert book.mid() == (ba + bb) / 2
            assert book.is_crossed() == (bb >= ba)
        else:
            assert book.spread() is None and book.mid() is None and not book.is_crossed()
        top_b, top_a = book.top(5)
        assert top_b == sorted(ref.bids.items(), reverse=True)[:5]
        assert top_a == sorted(ref.asks.items())[:5]


@settings(max_examples=200, deadline=None)
@given(levels, levels, st.sampled_from([0.5, 1.0, 2.5, 5.0, 10.0, 50.0]))
def test_grouping_conserves_size_and_orders_buckets(bids, asks, tick):
    book = OrderBook()
    book.apply_snapshot(bids, asks)
    gb, ga = book.grouped(tick, 10_000)
    assert math.isclose(sum(s for _, s, _ in gb), sum(book.bids.values()), rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(sum(s for _, s, _ in ga), sum(book.asks.values()), rel_tol=1e-9, abs_tol=1e-9)
    # bids descend, asks ascend, buckets on the grid, cumulative sums grow
    assert [p for p, _, _ in gb] == sorted((p for p, _, _ in gb), reverse=True)
    assert [p for p, _, _ in ga] == sorted(p for p, _, _ in ga)
    for p, _, _ in gb + ga:
        assert math.isclose(p / tick, round(p / tick), abs_tol=1e-6)
    for side in (gb, ga):
        cum = 0.0
        for _, s, c in side:
            cum += s
            assert math.isclose(c, cum, rel_tol=1e-9)
    # every raw level sits in its bucket: bids round down, asks round up
    for p in book.bids:
        assert any(b <= p < b + tick + 1e-9 for b, _, _ in gb)
    for p in book.asks:
        assert any(b - tick - 1e-9 < p <= b for b, _, _ in ga)


def test_grouped_limits_bucket_count():
    book = OrderBook()
    book.apply_snapshot([(100 - i * 0.1, 1.0) for i in range(100)], [(100.1 + i * 0.1, 2.0) for i in range(100)])
    gb, ga = book.grouped(1.0, 3)
    assert len(gb) == 3 and len(ga) == 3
    assert gb[0][0] == 100.0 and gb[0][1] == 1.0  # only 100.0 itself in [100, 101)
    assert gb[1][0] == 99.0 and math.isclose(gb[1][1], 10.0)
    assert ga[0][0] == 101.0 and math.isclose(ga[0][1], 20.0)  # 100.1 .. 101.0


def test_bucket_helpers_are_robust_to_float_noise():
    assert bucket_floor(0.3, 0.1) == 0.3
    assert bucket_ceil(0.3, 0.1) == 0.3
    assert bucket_floor(97000.05, 0.1) == 97000.0
    assert bucket_ceil(97000.05, 0.1) == 97000.1


def test_depth_imbalance_and_crossed():
    book = OrderBook()
    book.apply_snapshot([(99.0, 3.0), (98.0, 1.0), (90.0, 100.0)], [(101.0, 1.0), (102.0, 1.0)])
    assert book.depth_within(2.0) == (4.0, 2.0)  # 90 is outside ±2% of 100
    assert book.imbalance(2) == (4.0 - 2.0) / 6.0
    assert not book.is_crossed()
    book.apply_delta([(101.5, 1.0)], [])
    assert book.is_crossed()
    assert book.crossed_bps() > 0
    assert book.spread_bps() < 0


def test_size_zero_deletes_and_missing_delete_is_ignored():
    book = OrderBook()
    book.apply_snapshot([(1.0, 1.0)], [(2.0, 1.0)])
    book.apply_delta([(1.0, 0.0), (0.5, 0.0)], [(3.0, 0.0)])
    assert book.best_bid() is None and book.best_ask() == (2.0, 1.0)


def test_bucket_sizes_and_truncate():
    book = OrderBook()
    book.apply_snapshot([(99.0, 1.0), (99.4, 2.0)], [(100.2, 3.0), (101.9, 4.0)])
    assert book.bucket_sizes(99.0, 1.0, 3) == [3.0, 3.0, 4.0]
    book.truncate(1)
    assert list(book.bids) == [99.4] and list(book.asks) == [100.2]


@settings(max_examples=300, deadline=None)
@given(levels, levels, st.integers(min_value=-50, max_value=450), st.sampled_from([0.5, 1.0, 2.5, 0.3]), st.integers(min_value=1, max_value=120))
def test_bucket_span_is_the_occupied_stretch_of_the_window(bids, asks, lo_ticks, step, count):
    book = OrderBook()
    book.apply_snapshot(bids, asks)
    lo = lo_ticks * step  # a bucket edge, as the sampler's windows are
    # reference: every level, bucketed by the one rule (bucket_of, checked against exact
    # arithmetic in test_bucketing), no cut
    full = [0.0] * count
    for p, s in list(book.bids.items()) + list(book.asks.items()):
        i = bucket_of(p, step) - lo_ticks
        if 0 <= i < count:
            full[i] += s
    first, span = book.bucket_span(lo, step, count)
    assert book.bucket_sizes(lo, step, count) == full
    if not any(full):
        assert span == [] or not any(span)
        return
    nz = [i for i, v in enumerate(full) if v]
    # the span starts and ends on occupied buckets and holds every occupied one
    assert first <= nz[0] and first + len(span) - 1 >= nz[-1]
    assert span[0] and span[-1]
    assert full[first : first + len(span)] == span


def test_bucket_span_of_a_narrow_book_in_a_wide_window():
    book = OrderBook()
    book.apply_snapshot([(100.0 - i * 0.1, 1.0) for i in range(20)], [(100.1 + i * 0.1, 2.0) for i in range(20)])
    first, span = book.bucket_span(0.0, 0.5, 4000)  # buckets 0..4000 cover 0 to 2000
    assert first == int(98.1 / 0.5) and len(span) == int(102.0 / 0.5) - first + 1
    assert math.isclose(sum(span), 20 * 1.0 + 20 * 2.0)
    assert OrderBook().bucket_span(0.0, 0.5, 4000) == (0, [])
    assert book.bucket_span(500.0, 0.5, 10) == (0, [])  # book outside the window


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(prices, sizes), max_size=60), prices, prices, st.booleans(), st.booleans())
def test_book_side_sorted_map_helpers(ops, a, b, inc_lo, inc_hi):
    side = BookSide()
    ref: dict[float, float] = {}
    for p, s in ops:
        if s > 0:
            side[p] = s
            ref[p] = s
        else:
            assert side.pop(p, None) == ref.pop(p, None)
    assert list(side) == sorted(ref) and list(reversed(side)) == sorted(ref, reverse=True)
    assert side.items() == sorted(ref.items()) and side.values() == [ref[k] for k in sorted(ref)]
    lo, hi = min(a, b), max(a, b)
    want = [k for k in sorted(ref) if (lo < k or (inc_lo and k == lo)) and (k < hi or (inc_hi and k == hi))]
    assert list(side.irange(lo, hi, inclusive=(inc_lo, inc_hi))) == want
    assert list(side.irange(None, hi)) == [k for k in sorted(ref) if k <= hi]
    assert list(side.irange(lo, None)) == [k for k in sorted(ref) if k >= lo]
    if ref:
        assert side.peekitem(0) == min(ref.items()) and side.peekitem() == max(ref.items())
        k, v = side.popitem(0)
        assert (k, v) == min(ref.items()) and k not in side and side.keys() == sorted(ref)[1:]
        if side:
            del side[side.keys()[-1]]
        assert len(side) == len(side.keys()) == max(0, len(ref) - 2)
    side.clear()
    assert not side and side.keys() == []


odd_sizes = st.one_of(sizes, st.just(float("nan")), st.just(-1.0), st.just(-0.0))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(prices, odd_sizes), max_size=40), st.booleans())
def test_snapshot_keeps_positive_sizes_last_spelling_wins_like_a_filter(levels, as_generator):
    # the reference: a Python filter over the levels, then a dict (a later level of the same
    # price replaces an earlier one only if its own size is > 0)
    want = dict((p, s) for p, s in levels if s > 0)
    book = OrderBook()
    book.apply_snapshot((lv for lv in levels) if as_generator else levels, list(levels))
    for side in (book.bids, book.asks):
        assert side.levels == want and side.keys() == sorted(want)
        assert all(s > 0 for s in side.levels.values())


def _grouped_reference(side_items, tick, n, is_bid):
    """Grouping as the ladder defines it: each level to bucket_floor (bids) / bucket_ceil (asks),
    buckets best first, sizes summed, cumulative sizes; the first ``n`` buckets."""
    items = sorted(side_items, reverse=is_bid)
    buckets: dict[float, float] = {}
    for p, s in items:
        b = bucket_floor(p, tick) if is_bid else bucket_ceil(p, tick)
        buckets[b] = buckets.get(b, 0.0) + s
    out, cum = [], 0.0
    for b, s in buckets.items():
        cum += s
        out.append((b, s, cum))
    return out[:n]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 3000), st.floats(0.001, 100)), max_size=80),
    st.lists(st.tuples(st.integers(1, 3000), st.floats(0.001, 100)), max_size=80),
    st.sampled_from([(0.1, 0.1), (0.1, 1.0), (0.1, 0.5), (0.01, 0.05), (0.5, 2.5), (0.001, 0.01), (1.0, 10.0)]),
    st.integers(1, 60),
)
def test_grouped_equals_the_per_level_bucket_reference(bids, asks, ticks, n):
    tick, group = ticks
    book = OrderBook()
    book.apply_snapshot([(round(i * tick, 6), s) for i, s in bids], [(round(i * tick, 6), s) for i, s in asks])
    gb, ga = book.grouped(group, n)
    assert gb == _grouped_reference(book.bids.items(), group, n, True)
    assert ga == _grouped_reference(book.asks.items(), group, n, False)


def test_a_book_left_empty_says_so_and_a_one_sided_one_is_plainly_live():
    """A snapshot with no levels (or deltas that take every level away) was LIVE with nothing
    in it and nothing said. It is a valid book (BitMEX sends an empty partial for a book
    without orders, a deep option may have none), so it stays in sync and LIVE with the reason
    'empty book', which goes once orders come; a book with one side gone can be real (a wiped
    side) and is shown one-sided."""
    from obview.feed.pipeline import EMPTY_BOOK, FeedPipeline
    from obview.market import Market
    from obview.model import FeedStatus
    from obview.venues.demo import DemoAdapter

    adapter = DemoAdapter("BTC-PERP")
    market = Market(adapter.default_instrument())
    pipe = FeedPipeline(adapter, market)
    sync = pipe.sync

    def feed(res, t):
        pipe._on_sync_result(res, None, t, [])
        return market.state

    state = feed(sync.on_snapshot(BookSnapshot("demo", "BTC-PERP", [], [], seq=1)), 1.0)
    assert sync.synced and (state.status, state.reason) == (FeedStatus.LIVE, EMPTY_BOOK)
    state = feed(sync.on_delta(BookDelta("demo", "BTC-PERP", [(99.0, 1.0)], [(101.0, 1.0)], seq=2, prev_seq=1)), 1.1)
    assert (state.status, state.reason) == (FeedStatus.LIVE, "")
    state = feed(sync.on_delta(BookDelta("demo", "BTC-PERP", [], [(101.0, 0.0)], seq=3, prev_seq=2)), 1.2)
    assert (state.status, state.reason) == (FeedStatus.LIVE, "") and market.book.best_ask() is None
    state = feed(sync.on_delta(BookDelta("demo", "BTC-PERP", [(99.0, 0.0)], [], seq=4, prev_seq=3)), 1.3)
    assert sync.synced and (state.status, state.reason) == (FeedStatus.LIVE, EMPTY_BOOK)
    assert market.resyncs == 0


def test_after_a_stale_that_was_not_the_state_is_the_books_own():
    """A STALE ended by the connection's answer set LIVE on an empty book (or one not in
    sync); it is now the state the book calls for."""
    from obview.feed.pipeline import EMPTY_BOOK, FeedPipeline
    from obview.market import Market
    from obview.model import FeedStatus
    from obview.venues.demo import DemoAdapter

    adapter = DemoAdapter("BTC-PERP")
    market = Market(adapter.default_instrument())
    pipe = FeedPipeline(adapter, market)
    pipe.restore_state()
    assert market.state.status is FeedStatus.SYNCING
    pipe.sync.on_snapshot(BookSnapshot("demo", "BTC-PERP", [], [], seq=1))
    pipe.set_state(FeedStatus.STALE, "no book data for 9 s")
    pipe.restore_state()
    assert (market.state.status, market.state.reason) == (FeedStatus.LIVE, EMPTY_BOOK)
    pipe.sync.on_snapshot(BookSnapshot("demo", "BTC-PERP", [(99.0, 1.0)], [(101.0, 1.0)], seq=2))
    pipe.set_state(FeedStatus.STALE, "no book data for 9 s")
    pipe.restore_state()
    assert (market.state.status, market.state.reason) == (FeedStatus.LIVE, "")


def test_a_synced_book_with_a_depth_is_cut_to_it_and_checked_the_same_on_the_quick_path():
    """The quick path after a delta now covers books with a depth (Bybit's 200) while they are
    within it; over it, crossed or emptied, the full rules still apply."""
    from obview.venues.base import BookSync, SyncStatus

    book = OrderBook()
    sync = BookSync(book, depth=3)
    snap = BookSnapshot("v", "S", [(99.0, 1.0), (98.0, 1.0)], [(101.0, 1.0), (102.0, 1.0)], seq=1)
    assert sync.on_snapshot(snap).status is SyncStatus.APPLIED

    def delta(seq, bids=(), asks=()):
        return sync.on_delta(BookDelta("v", "S", list(bids), list(asks), seq=seq, prev_seq=seq - 1))

    assert delta(2, bids=[(97.0, 1.0)]).status is SyncStatus.APPLIED  # 3 bids: at the depth
    assert delta(3, bids=[(96.0, 1.0)]).status is SyncStatus.APPLIED  # 4: cut back to 3
    assert book.bids.keys() == [97.0, 98.0, 99.0]
    assert delta(4, asks=[(100.0, 2.0), (99.5, 1.0)]).status is SyncStatus.APPLIED
    assert book.asks.keys() == [99.5, 100.0, 101.0]  # the worst ask went
    res = delta(5, bids=[(99.6, 1.0)])  # within the depth but crossed
    assert res.status is SyncStatus.GAP and res.reason.startswith("crossed by")
