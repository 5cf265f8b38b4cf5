"""Deribit fast path (typed decoder) against the slow path, frame by frame."""

from __future__ import annotations

import json

import orjson
import pytest

from fastpath import check, check_all, recorded_frames, sim_frames
from obview.feed.pipeline import FeedPipeline, Send
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, Trade
from obview.venues.deribit import DeribitAdapter


def recorded_books() -> list[str]:
    names = set()
    for f in recorded_frames("deribit.jsonl"):
        msg = json.loads(f)
        if msg.get("method") == "subscription" and msg["params"]["channel"].startswith("book."):
            names.add(msg["params"]["channel"].split(".")[1])
    return sorted(names)


def note(channel: str, data) -> str:
    return orjson.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
    ).decode()


def book(kind, bids, asks, change_id=11, prev=10, inst="BTC-PERPETUAL", ts=1700000000500) -> str:
    d = {"type": kind, "timestamp": ts, "instrument_name": inst, "change_id": change_id}
    d |= {"bids": bids, "asks": asks}
    if prev is not None:
        d["prev_change_id"] = prev
    return note(f"book.{inst}.100ms", d)


def trade(**kw) -> dict:
    t = {"trade_seq": 7, "trade_id": "158245455", "timestamp": 1700000000500, "tick_direction": 0,
         "price": 64000.5, "mark_price": 64001.0, "index_price": 64000.9,
         "instrument_name": "BTC-PERPETUAL", "direction": "buy", "amount": 120.0}  # fmt: skip
    t.update(kw)
    return t


def trades(*ts, inst="BTC-PERPETUAL") -> str:
    return note(f"trades.{inst}.100ms", list(ts))


@pytest.mark.parametrize("native", recorded_books() or ["BTC-24SEP21-8000-P"])
def test_fast_path_agrees_on_the_recording(native):
    frames = recorded_frames("deribit.jsonl")
    if not frames:
        pytest.skip("recording not available")
    adapter = DeribitAdapter("BTC-PERP", instrument=native)
    handled, total = check_all(adapter, "ws", frames)
    # book notifications of every instrument take the fast path (ours give events, the others
    # []); ticker notifications and the subscribe answer go to the slow one
    books = [f for f in frames if '"channel":"book.' in f]
    assert books and handled == len(books) < total
    ours = [f for f in books if f'"channel":"book.{native}.raw"' in f]
    assert ours and all(adapter.parse_fast("ws", f, 0.0) for f in ours)


@pytest.mark.parametrize("symbol", ["BTC-PERP", "SOL-PERP"])
def test_fast_path_agrees_on_the_simulator_and_takes_every_book_and_trade_frame(symbol):
    frames = sim_frames("deribit", symbol)
    adapter = DeribitAdapter(symbol, endpoint="ws://127.0.0.1:9")
    by_stream: dict[str, list[str]] = {}
    for stream, f in frames:
        by_stream.setdefault(stream, []).append(f)
    for stream, fs in by_stream.items():
        check_all(adapter, stream, fs)
    snaps = [f for _, f in frames if '"type":"snapshot"' in f]
    changes = [f for _, f in frames if '"type":"change"' in f]
    trade_frames = [f for _, f in frames if '"channel":"trades.' in f]
    assert snaps and len(changes) > 200 and trade_frames
    kinds = {BookSnapshot: snaps, BookDelta: changes, Trade: trade_frames}
    for cls, fs in kinds.items():
        for f in fs:
            events = adapter.parse_fast("ws", f, 0.0)
            assert events and all(type(e) is cls for e in events), f[:200]


def test_fast_path_handles_trades_and_deletes_like_the_slow_path():
    adapter = DeribitAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    frames = [
        trades(trade(), trade(trade_id="158245456", direction="sell", amount="30")),
        # trades of other instruments are skipped, one without a name is ours
        trades(trade(), trade(instrument_name="ETH-PERPETUAL"), {k: v for k, v in trade().items() if k != "instrument_name"}),
        trades(),
        # a delete row gives size 0 whatever amount it carries
        book("change", [["delete", 64000.0, 25.0], ["new", 63999.5, 0]], [["change", "64001", "10"]]),
        book("snapshot", [["new", 64000.0, 10.0]], [["new", 64000.5, 20]], prev=None),
        book("snapshot", [["new", 64000.0, 10.0]], [], prev="not read by the slow path"),
        book("change", [], [], change_id="12", ts="1700000000600"),
        # the channel's interval is not checked by the slow path either
        note("book.BTC-PERPETUAL.raw", json.loads(book("change", [["new", 1, 1]], []))["params"]["data"]),
        note("trades.BTC-PERPETUAL.raw", [trade()]),
    ]  # fmt: skip
    for f in frames:
        assert check(adapter, "ws", f), f
    # a change without its link is parse()'s to refuse
    assert not check(adapter, "ws", book("change", [], [], prev=None))
    (t1, t2) = adapter.parse_fast("ws", frames[0], 0.0)
    assert (t1.trade_id, t1.side.value, t2.side.value, t2.size) == (
        "158245455",
        "buy",
        "sell",
        30.0,
    )
    assert len(adapter.parse_fast("ws", frames[1], 0.0)) == 2
    (d,) = adapter.parse_fast("ws", frames[3], 0.0)
    assert d.bids == [(64000.0, 0.0), (63999.5, 0.0)] and d.asks == [(64001.0, 10.0)]


@pytest.mark.parametrize(
    "frame",
    [
        # numbers the book must never hold, in the fields the fast path converts
        book("change", [["new", "NaN", 1]], []),
        book("change", [["new", 1, -1]], []),
        book("change", [], [["new", 0, 1]]),
        book("change", [["delete", -5, 0]], []),
        book("change", [], [["change", "inf", 1]]),
        book("change", [["new", 1, "1e999"]], []),
        trades(trade(price="Infinity")),
        trades(trade(amount=-1)),
        trades(trade(price=0)),
        # other number formats and shapes: the slow path decides
        book("change", [["new", "1_0", 1]], []),
        book("change", [["new", 1, True]], []),
        book("change", [["new", 1, 1, 1]], []),
        book("change", [["new", 1]], []),
        book("change", [{"new": 1, "1": 1, "2": 1}], []),
        book("change", [["bogus", 1, 1]], []),
        book("partial", [], []),
        book("change", [], [], change_id=2**63),
        book("change", [], [], change_id=1.5),
        book("change", [], [], prev="null"),
        book("change", [], [], prev=None).replace('"asks":[]', '"asks":[],"prev_change_id":null'),
        book("change", [], [], ts=None),
        trades(trade(trade_id=158245455)),
        trades(trade(instrument_name=None)),
        trades(trade(direction="short")),
        trades(trade(instrument_name="ETH-PERPETUAL", price="abc", trade_id=5)),
        trades(trade(timestamp="soon")),
        # the wrong payload for the channel
        note("book.BTC-PERPETUAL.100ms", [trade()]),
        note("trades.BTC-PERPETUAL.100ms", json.loads(book("change", [], []))["params"]["data"]),
        # other channels and messages: heartbeats, test_request, answers, errors
        note("ticker.BTC-PERPETUAL.100ms", {"timestamp": 1, "best_bid_price": 1.0}),
        note("book.BTC-PERPETUAL.none.10.100ms", {"timestamp": 1, "change_id": 1, "bids": [[1, 1]], "asks": []}),
        '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}',
        '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}',
        '{"jsonrpc":"2.0","id":1,"result":"ok"}',
        '{"jsonrpc":"2.0","id":2,"result":["book.BTC-PERPETUAL.100ms","trades.BTC-PERPETUAL.100ms"]}',
        '{"jsonrpc":"2.0","id":2,"error":{"message":"raw_subscriptions_not_available_for_unauthorized","code":13778}}',
        '{"jsonrpc":"2.0","method":"subscription","params":{"data":[]}}',
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":7,"data":[]}}',
        # a repeated type with two values (a decoder and orjson would read different ones)
        book("change", [], []).replace('"type":"change"', '"type":"change","type":"snapshot"'),
        "[]",
        "not json",
        b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.\xff","data":[]}}',
    ],
)  # fmt: skip
def test_fast_path_leaves_odd_and_hostile_frames_to_the_slow_path(frame):
    adapter = DeribitAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    assert adapter.parse_fast("ws", frame, 0.0) is None
    assert not check(adapter, "ws", frame)


def test_test_request_is_still_answered():
    adapter = DeribitAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
    (send,) = pipe.on_frame(
        "ws", '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}', 1.0
    )
    assert isinstance(send, Send) and json.loads(send.frame)["method"] == "public/test"


def test_fast_path_skips_other_instruments_and_channels():
    adapter = DeribitAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    for f in [
        book("change", [["new", 1, 1]], [], inst="ETH-PERPETUAL"),
        trades(trade(instrument_name="ETH-PERPETUAL"), inst="ETH-PERPETUAL"),
        note(
            "book.BTC-PERPETUAL.extra.100ms", json.loads(book("change", [], []))["params"]["data"]
        ),
        note("book.BTC-PERPETUAL", json.loads(book("change", [], []))["params"]["data"]),
        note("chart.BTC-PERPETUAL.1", [trade()]),
    ]:
        assert adapter.parse_fast("ws", f, 0.0) == [] == adapter.parse("ws", f, 0.0), f
    # trades.{instrument}.anything.else is a trades channel to both paths
    f = note("trades.BTC-PERPETUAL.100ms.x", [trade()])
    assert adapter.parse_fast("ws", f, 0.0) == adapter.parse("ws", f, 0.0) != []


def test_channel_memory_is_bounded():
    adapter = DeribitAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    for k in range(500):
        assert adapter.parse_fast("ws", note(f"book.X{k}.100ms", []), 0.0) == []
    assert len(adapter._routes) <= 64
    assert adapter.parse_fast("ws", book("change", [["new", 1, 1]], []), 0.0)
