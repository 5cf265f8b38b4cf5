"""Binance's depth window: the REST snapshot holds the best 1000 levels a side and the diff
stream reports only levels that change, so beyond the snapshot's deepest prices the book is
unknown (cryptofeed #604). The book is kept within that window and refreshed from a new snapshot
when the market nears its edge."""

from __future__ import annotations

import random

import pytest

from obview.book import OrderBook
from obview.feed.pipeline import FeedPipeline, NeedResync
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus
from obview.venues.base import DEPTH_REFRESH, BookSync, SyncStatus
from obview.venues.binance import BinanceAdapter, BinanceSync


def snap(n_bids: int = 5, n_asks: int = 5, seq: int = 10) -> BookSnapshot:
    return BookSnapshot(
        "binance",
        "BTC-PERP",
        [(100.0 - i, 1.0) for i in range(n_bids)],
        [(101.0 + i, 1.0) for i in range(n_asks)],
        seq=seq,
    )


def delta(bids, asks, u: int, pu: int) -> BookDelta:
    return BookDelta("binance", "BTC-PERP", bids, asks, seq=u, prev_seq=pu, first_seq=pu + 1)


def synced(**kw) -> BinanceSync:
    sync = BinanceSync(OrderBook(), snapshot_limit=5, **kw)
    assert sync.on_snapshot(snap()).status is SyncStatus.APPLIED
    assert sync.on_delta(delta([], [], 11, 9)).status is SyncStatus.APPLIED  # the bridge
    return sync


def test_levels_beyond_a_full_snapshot_are_not_shown():
    sync = synced(edge_levels=2)
    assert sync.window == (96.0, 105.0)
    # a far bid and a far ask that changed: known to have changed, but their neighbours are
    # not, so the book would show isolated levels and miss the rest
    res = sync.on_delta(delta([(90.0, 7.0), (99.5, 2.0)], [(110.0, 7.0), (102.5, 2.0)], 12, 11))
    assert res.status is SyncStatus.APPLIED
    assert 90.0 not in sync.book.bids and 110.0 not in sync.book.asks
    assert sync.book.bids[99.5] == 2.0 and sync.book.asks[102.5] == 2.0
    assert min(sync.book.bids) == 96.0 and max(sync.book.asks) == 105.0


def test_a_side_the_snapshot_did_not_fill_is_whole_and_not_bounded():
    sync = BinanceSync(OrderBook(), snapshot_limit=5, edge_levels=2)
    sync.on_snapshot(snap(n_bids=3, n_asks=5))
    sync.on_delta(delta([(50.0, 1.0)], [(200.0, 1.0)], 11, 9))
    assert sync.window == (None, 105.0)
    assert 50.0 in sync.book.bids and 200.0 not in sync.book.asks


def test_the_market_nearing_the_edge_refreshes_the_book_without_counting_a_gap():
    adapter = BinanceAdapter("BTC-PERP")
    market = Market(adapter.default_instrument())
    pipe = FeedPipeline(adapter, market)
    pipe.sync = sync = BinanceSync(market.book, snapshot_limit=5, edge_levels=2)
    pipe.on_snapshot_body(
        b'{"lastUpdateId":10,"bids":[["100","1"],["99","1"],["98","1"],["97","1"],["96","1"]],'
        b'"asks":[["101","1"],["102","1"],["103","1"],["104","1"],["105","1"]]}',
        0.0,
    )
    pipe.on_frame(
        "depth",
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT",'
        b'"U":10,"u":11,"pu":9,"b":[],"a":[]}}',
        0.0,
    )
    assert market.state.status is FeedStatus.LIVE
    # the price falls through the bids: two are left, still enough
    sync.on_delta(delta([(100.0, 0.0), (99.0, 0.0), (98.0, 0.0)], [], 12, 11))
    assert sync.synced and len(market.book.bids) == 2
    # one more gone: fewer than edge_levels between the touch and the window's edge
    frame = (
        b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":2,"T":2,"s":"BTCUSDT",'
        b'"U":13,"u":13,"pu":12,"b":[["97","0"]],"a":[]}}'
    )
    actions = pipe.on_frame("depth", frame, 0.0)
    assert [type(a) for a in actions] == [NeedResync]
    assert market.state.status is FeedStatus.SYNCING
    assert market.state.reason.startswith(DEPTH_REFRESH)
    assert market.resyncs == 1 and market.stats.gaps == 0


# -- end to end: the simulator speaking the Binance dialect, its snapshots cut to a few levels ---
async def test_e2e_the_book_stays_within_a_short_snapshots_window_and_refreshes_at_its_edge():
    from e2e import until, venue_feed
    from obview.feed.session import SessionOptions

    class ShortSnapshots(BinanceAdapter):
        snapshot_limit = 10  # (a limit Binance takes) the simulator's ~600 levels: the window binds

    opts = SessionOptions(
        backoff_base=0.05, backoff_max=0.2, connect_timeout=2.0, resync_min_interval=0.05
    )
    feed = venue_feed(ShortSnapshots, "BTC-PERP", "", seed=11, rate=60, options=opts)
    async with feed as (server, _adapter, market, session):
        sim = server.markets["BTC-PERP"]
        sync = session.pipeline.sync
        assert (sync.snapshot_limit, sync.edge_levels) == (10, 1)
        await until(lambda: market.live)
        outside: list = []

        def check() -> bool:
            lo, hi = sync.window
            if market.live and lo is not None and hi is not None:
                b, a = market.book.bids.keys(), market.book.asks.keys()
                if (b and b[0] < lo) or (a and a[-1] > hi):
                    outside.append((lo, hi, b[:1], a[-1:]))
            return market.resyncs >= 2 and market.live

        # the touch wanders past the 10 levels a side within seconds: each time a new snapshot
        await until(check, timeout=20)
        assert not outside
        assert market.stats.gaps == 0
        assert any(s.reason.startswith(DEPTH_REFRESH) for s in market.state_log)
        # frozen, the book is the simulator's within the window
        server.set_rate(0)
        await until(
            lambda: (
                market.live
                and sync.last_seq is not None
                and sync.last_seq
                >= max(
                    (
                        c.dialect.last_u.get("BTC-PERP", 0)
                        for c in server.clients
                        if c.dialect.depth
                    ),
                    default=0,
                )
            )
        )
        lo, hi = sync.window
        want_b = {p: s for p, s in sim.book.bids.items() if p >= lo}
        want_a = {p: s for p, s in sim.book.asks.items() if p <= hi}
        assert {round(p, 8): round(s, 8) for p, s in market.book.bids.items()} == {
            round(p, 8): round(s, 8) for p, s in want_b.items()
        }
        assert {round(p, 8): round(s, 8) for p, s in market.book.asks.items()} == {
            round(p, 8): round(s, 8) for p, s in want_a.items()
        }


# -- the one-pass sync (BinanceSync.on_delta) against the general path --------------------------
class _GeneralSync(BinanceSync):
    """BinanceSync without its one-pass case: every event through BookSync.on_delta, its
    check_delta and _post_apply."""

    def on_delta(self, delta: BookDelta):
        return BookSync.on_delta(self, delta)


def _random_run(seed: int, steps: int = 400) -> list:
    """Events a hostile Binance stream might send: mostly linked updates near the touch, with
    far levels outside the window, levels crossing the touch, sweeps that empty a side or reach
    the window's edge, duplicates, gaps, a stale bridge and repeated snapshots."""
    rng = random.Random(seed)
    events: list = []
    u = 100
    mid = 1000.0

    def snapshot(n_b: int, n_a: int) -> BookSnapshot:
        return BookSnapshot(
            "binance",
            "BTC-PERP",
            [(mid - 1 - i, float(rng.randint(1, 9))) for i in range(n_b)],
            [(mid + 1 + i, float(rng.randint(1, 9))) for i in range(n_a)],
            seq=u,
        )

    events.append(snapshot(rng.randint(0, 12), rng.randint(0, 12)))
    for _ in range(steps):
        r = rng.random()
        if r < 0.03:
            u += rng.randint(1, 5)
            events.append(snapshot(rng.randint(0, 12), rng.randint(0, 12)))
            continue
        bids, asks = [], []
        for _ in range(rng.randint(0, 4)):
            side = bids if rng.random() < 0.5 else asks
            sign = -1 if side is bids else 1
            reach = rng.choice((1, 2, 3, 6, 15, 40))
            p = mid + sign * rng.randint(-2 if rng.random() < 0.1 else 1, reach)
            size = 0.0 if rng.random() < 0.35 else float(rng.randint(1, 9))
            side.append((float(p), size))
        if rng.random() < 0.05:  # a sweep: a run of one side's levels deleted
            side, sign = (bids, -1) if rng.random() < 0.5 else (asks, 1)
            side += [(mid + sign * k, 0.0) for k in range(1, rng.randint(3, 13))]
        if rng.random() < 0.05:
            mid += rng.choice((-3.0, 3.0))
        kind = rng.random()
        if kind < 0.04:  # a duplicate
            first, last, prev = max(u - 1, 1), u, u - 1
        elif kind < 0.07:  # a gap
            first, last, prev = u + 3, u + 4, u + 2
            u = last
        else:
            first, last, prev = u + 1, u + rng.randint(1, 3), u
            u = last
        events.append(
            BookDelta("binance", "BTC-PERP", bids, asks, seq=last, prev_seq=prev, first_seq=first)
        )
    return events


def _replay(sync: BinanceSync, events: list) -> list:
    out = []
    for ev in events:
        res = sync.on_snapshot(ev) if isinstance(ev, BookSnapshot) else sync.on_delta(ev)
        book = sync.book
        out.append(
            (res, sync.synced, sync.last_seq, sync.first_pending, book.bids.items(), book.asks.items())
        )
    return out


@pytest.mark.parametrize("seed", range(60))
@pytest.mark.parametrize("limit,edge,depth", [(1000, None, None), (8, 2, None), (5, 1, None), (12, 4, None), (12, 2, 6)])
def test_one_pass_sync_matches_the_general_path_step_by_step(seed, limit, edge, depth):
    events = _random_run(seed)
    fast = _replay(BinanceSync(OrderBook(), depth, snapshot_limit=limit, edge_levels=edge), events)
    slow = _replay(_GeneralSync(OrderBook(), depth, snapshot_limit=limit, edge_levels=edge), events)
    assert fast == slow
    # the run went through what the one-pass case must leave to the general path
    statuses = {(r[0].status, r[0].refresh) for r in fast}
    assert (SyncStatus.APPLIED, False) in statuses
    if limit < 1000 and seed < 10:
        assert any(r[0].status is SyncStatus.GAP for r in fast)


def test_the_random_runs_reach_trims_refreshes_crosses_and_empty_sides():
    seen: set[str] = set()
    for seed in range(60):
        sync = BinanceSync(OrderBook(), snapshot_limit=8, edge_levels=2)
        for ev in _random_run(seed):
            if isinstance(ev, BookSnapshot):
                sync.on_snapshot(ev)
                continue
            lo_before = sync.window[0]
            far = lo_before is not None and any(p < lo_before and s > 0 for p, s in ev.bids)
            res = sync.on_delta(ev)
            if res.status is SyncStatus.APPLIED and far and sync.synced:
                seen.add("trimmed")
            if res.status is SyncStatus.GAP:
                seen.add("refresh" if res.refresh else res.reason.split(" ")[0])
            if res.status is SyncStatus.APPLIED and res.reason:
                seen.add("emptied")
            if res.status is SyncStatus.APPLIED and sync.synced and (not sync.book.bids or not sync.book.asks):
                seen.add("one-sided")
    assert {"trimmed", "refresh", "crossed", "one-sided"} <= seen, seen
