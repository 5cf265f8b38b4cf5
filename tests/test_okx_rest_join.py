"""OKX's REST book joined to the updates buffered on the subscription (the path once the
websocket snapshot is gone): one older than those updates is fetched again, the updates kept."""

from __future__ import annotations

import json

from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.model import FeedStatus
from obview.venues.okx import OkxAdapter


def update(prev: int, seq: int, px: float) -> str:
    data = {"asks": [[f"{px + 10:.1f}", "5", "0", "1"]], "bids": [[f"{px:.1f}", "5", "0", "1"]],
            "ts": "1700000000000", "checksum": 0, "prevSeqId": prev, "seqId": seq}  # fmt: skip
    return json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT-SWAP"}, "action": "update", "data": [data]})


def rest(seq: int) -> bytes:
    data = {"asks": [["30020.0", "3", "0", "1"]], "bids": [["29990.0", "3", "0", "1"]], "ts": "1700000000000", "seqId": seq}
    return json.dumps({"code": "0", "msg": "", "data": [data]}).encode()


def test_a_rest_book_older_than_the_buffered_updates_is_fetched_again_and_they_are_kept():
    # it was a gap: the buffer dropped, unsubscribe + subscribe (2 of OKX's 480 an hour), then
    # the websocket snapshot's timeout waited out again before the next REST fetch
    adapter = OkxAdapter("BTC-PERP")
    market = Market(adapter.default_instrument())
    pipe = FeedPipeline(adapter, market)
    pipe.set_state(FeedStatus.SYNCING, "awaiting snapshot")
    for prev, seq, px in ((100, 110, 30000.0), (110, 120, 30000.5), (120, 130, 30001.0)):
        assert pipe.on_frame("public", update(prev, seq, px), 0.0) == []
    assert len(pipe.sync.buffer) == 3
    assert pipe.on_snapshot_body(rest(95), 0.0) == []  # older than 100: no resubscribe
    assert len(pipe.sync.buffer) == 3 and market.book.empty and not market.live
    assert market.resyncs == 0 and market.stats.gaps == 0 and pipe.sync.rest_too_old == 1
    # the next fetch lands inside the chain: joined, the later updates applied, LIVE
    assert pipe.on_snapshot_body(rest(115), 0.0) == []
    assert market.live and pipe.sync.last_seq == 130
    assert market.book.best_bid() == (30001.0, 5.0)


def test_a_websocket_snapshot_is_not_held_to_the_rest_rule():
    # a websocket snapshot that does not bridge the held updates is a gap, as before
    from obview.feed.pipeline import NeedResync

    adapter = OkxAdapter("BTC-PERP")
    market = Market(adapter.default_instrument())
    pipe = FeedPipeline(adapter, market)
    pipe.on_frame("public", update(100, 110, 30000.0), 0.0)
    snap = {"asks": [["30010.0", "3", "0", "1"]], "bids": [["29990.0", "3", "0", "1"]],
            "ts": "1700000000000", "checksum": 0, "prevSeqId": -1, "seqId": 95}  # fmt: skip
    frame = json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT-SWAP"}, "action": "snapshot", "data": [snap]})
    actions = pipe.on_frame("public", frame, 0.0)
    assert [type(a) for a in actions] == [NeedResync] and "does not bridge" in actions[0].reason
    assert pipe.sync.rest_too_old == 0
