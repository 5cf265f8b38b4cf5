"""Binance fast path (typed decoder) against the slow path, frame by frame."""

from __future__ import annotations

import pytest

from fastpath import check, check_all, recorded_frames, sim_frames
from obview.venues.binance import BinanceAdapter

INSTRUMENTS = ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")


@pytest.mark.parametrize("native", INSTRUMENTS)
def test_fast_path_agrees_on_the_recording(native):
    frames = recorded_frames("binance.jsonl")
    if not frames:
        pytest.skip("recording not available")
    adapter = BinanceAdapter("BTC-PERP", instrument=native)
    handled, total = check_all(adapter, "depth", frames)
    # depth and aggTrade events of every symbol take the fast path; kline, bookTicker and
    # subscription answers go to the slow one
    ours = [f for f in frames if '"e":"depthUpdate"' in f or '"e":"aggTrade"' in f]
    assert ours and handled == len(ours)


def test_fast_path_agrees_on_the_simulator_and_takes_every_depth_frame():
    frames = sim_frames("binance")
    adapter = BinanceAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    by_stream: dict[str, list[str]] = {}
    for stream, f in frames:
        by_stream.setdefault(stream, []).append(f)
    for stream, fs in by_stream.items():
        check_all(adapter, stream, fs)
    depth = [f for _, f in frames if '"depthUpdate"' in f]
    trades = [f for _, f in frames if '"aggTrade"' in f]
    assert len(depth) > 200 and trades
    assert all(adapter.parse_fast("depth", f, 0.0) for f in depth + trades)


@pytest.mark.parametrize(
    "frame",
    [
        # numbers the book must never hold, in the fields the fast path converts
        '{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["NaN","1"]],"a":[]}}',
        '{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1","-1"]],"a":[]}}',
        '{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[],"a":[["1e999","1"]]}}',
        '{"stream":"x","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"inf","q":"1","T":1,"m":true}}',
        # shapes it does not describe: answers, errors, other events, raw-route events
        '{"result":null,"id":1}',
        '{"error":{"code":2,"msg":"Invalid request"},"id":1}',
        '{"stream":"x","data":{"e":"bookTicker","s":"BTCUSDT"}}',
        '{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[],"a":[]}',
        '{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["1","1","1"]],"a":[]}}',
        "not json",
    ],
)
def test_fast_path_leaves_odd_and_hostile_frames_to_the_slow_path(frame):
    adapter = BinanceAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    assert adapter.parse_fast("depth", frame, 0.0) is None
    assert not check(adapter, "depth", frame)


def test_fast_path_skips_other_symbols():
    adapter = BinanceAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    f = '{"stream":"x","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"pu":0,"b":[["1","1"]],"a":[]}}'
    assert adapter.parse_fast("depth", f, 0.0) == [] == adapter.parse("depth", f, 0.0)


def test_integers_the_slow_path_reads_differently_go_to_it():
    adapter = BinanceAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    base = '{"stream":"x","data":{"e":"depthUpdate","E":%s,"s":"BTCUSDT","U":1,"u":%s,"pu":0,"b":[],"a":[]}}'
    for e, u in [("9" * 400, "2"), ("1", '"1e3"'), ("1", '"2"'), ("1", "18446744073709551616")]:
        assert adapter.parse_fast("depth", base % (e, u), 0.0) is None
    trade = '{"stream":"x","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":%s,"p":"1","q":"1","T":1,"m":%s}}'
    for a, m in [("12.0", "false"), ("12", '"false"'), ('"12"', "true")]:
        f = trade % (a, m)
        fast = adapter.parse_fast("depth", f, 0.0)
        assert fast is None or fast == adapter.parse("depth", f, 0.0)


def test_the_pipeline_falls_back_when_a_fast_path_trips():
    from obview.feed.pipeline import FeedPipeline
    from obview.market import Market

    class Tripping(BinanceAdapter):
        def parse_fast(self, stream, frame, ts_local):
            raise OverflowError("odd number")

    adapter = Tripping("BTC-PERP", endpoint="ws://127.0.0.1:9")
    pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
    f = '{"stream":"x","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"10","q":"2","T":1,"m":false}}'
    assert pipe.on_frame("trades", f, 0.0) == [] and pipe.trades == 1 and pipe.parse_errors == 0


def test_a_time_too_long_for_a_float_is_a_bad_frame_not_a_crash():
    from obview.feed.pipeline import FeedPipeline
    from obview.market import Market

    adapter = BinanceAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
    f = '{"stream":"x","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"10","q":"2","T":%s,"m":false}}'
    assert pipe.on_frame("trades", f % ("9" * 400), 0.0) == []
    assert pipe.parse_errors == 1 and pipe.trades == 0
