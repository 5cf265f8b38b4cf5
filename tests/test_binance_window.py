"""Binance's depth window: the REST snapshot holds the best 1000 levels a side and the diff
stream reports only levels that change, so beyond the snapshot's deepest prices the book is
unknown (cryptofeed #604). The book is kept within that window and refreshed from a new snapshot
when the market nears its edge."""

from __future__ import annotations

from obview.book import OrderBook
from obview.feed.pipeline import FeedPipeline, NeedResync
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus
from obview.venues.base import DEPTH_REFRESH, SyncStatus
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
