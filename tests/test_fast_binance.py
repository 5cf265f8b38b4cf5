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
