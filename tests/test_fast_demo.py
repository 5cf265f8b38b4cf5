"""Demo fast path (typed decoder) against the slow path, frame by frame: the frames of
docs/DEMO_PROTOCOL.md, the simulator's demo dialect for every symbol, and their mutations."""

from __future__ import annotations

import pytest

from fastpath import check, check_all, sim_frames
from obview.model import Side
from obview.sim.engine import SIM_SYMBOLS
from obview.venues.demo import DemoAdapter

# the examples of docs/DEMO_PROTOCOL.md
DOC_SNAPSHOT = (
    '{"type":"snapshot","symbol":"BTC-PERP","seq":1382606,"ts":1764050953048,'
    '"bids":[["96999.8","0.220"],["96999.7","0.316"]],'
    '"asks":[["97000.0","0.656"],["97000.1","0.624"]]}'
)
DOC_DELTA = (
    '{"type":"delta","symbol":"BTC-PERP","seq":1382607,"prev_seq":1382606,"ts":1764050953079,'
    '"bids":[["96996.5","1.543"]],"asks":[["97000.0","0.000"]]}'
)
DOC_TRADE = (
    '{"type":"trade","symbol":"BTC-PERP","id":16148790,"price":"97000.0","size":"0.656",'
    '"side":"buy","ts":1764050953079}'
)
DOC_OTHER = [
    '{"type":"subscribed","symbol":"BTC-PERP","depth":500}',
    '{"type":"pong"}',
    '{"type":"heartbeat","ts":1764050954000}',
    '{"type":"unsubscribed","symbol":"BTC-PERP"}',
    '{"type":"error","reason":"unknown symbol XRP-PERP; valid: BTC-PERP, ETH-PERP, SOL-PERP",'
    '"fatal":true,"symbol":"XRP-PERP"}',
]


def make(symbol: str = "BTC-PERP") -> DemoAdapter:
    return DemoAdapter(symbol, endpoint="ws://127.0.0.1:9")


def hot(frames: list[str]) -> list[str]:
    return [
        f
        for f in frames
        if f.startswith(('{"type":"snapshot"', '{"type":"delta"', '{"type":"trade"'))
    ]


def test_fast_path_agrees_on_the_documented_examples():
    ad = make()
    assert check_all(ad, "demo", [DOC_SNAPSHOT, DOC_DELTA, DOC_TRADE]) == (3, 3)
    (t,) = ad.parse_fast("demo", DOC_TRADE, 1.0)
    assert (t.side, t.trade_id, t.ts_local) == (Side.BUY, "16148790", 1.0)
    for f in DOC_OTHER:
        assert ad.parse_fast("demo", f, 0.0) is None


@pytest.mark.parametrize("symbol", sorted(SIM_SYMBOLS))
def test_fast_path_agrees_on_the_simulator_and_takes_every_book_and_trade_frame(symbol):
    frames = [f for _, f in sim_frames("demo", symbol=symbol)]
    ad = make(symbol)
    handled, total = check_all(ad, "demo", frames)
    ours = hot(frames)
    deltas = [f for f in ours if f.startswith('{"type":"delta"')]
    trades = [f for f in ours if f.startswith('{"type":"trade"')]
    snaps = [f for f in ours if f.startswith('{"type":"snapshot"')]
    assert len(deltas) > 200 and trades and snaps
    # only the subscription answer goes to the slow path
    assert handled == len(ours) == total - 1
    assert all(ad.parse_fast("demo", f, 0.0) for f in ours)


def test_fast_path_skips_other_symbols():
    ad = make("ETH-PERP")
    for f in (DOC_SNAPSHOT, DOC_DELTA, DOC_TRADE):
        assert ad.parse_fast("demo", f, 0.0) == [] == ad.parse("demo", f, 0.0)


def test_numbers_parse_reads_the_same_way_take_the_fast_path():
    ad = make()
    for frame in (
        DOC_DELTA.replace('"ts":1764050953079', '"ts":1764050953079.0'),
        DOC_DELTA.replace('"ts":1764050953079', '"ts":1764050953079.123'),  # sub-ms stamps
        DOC_TRADE.replace('"ts":1764050953079', '"ts":1764050953079.5'),
        DOC_SNAPSHOT.replace('"ts":1764050953048', '"ts":1.764050953048e12'),
        DOC_DELTA.replace('"seq":1382607', '"seq":1382607.0'),
        DOC_SNAPSHOT.replace('"seq":1382606', '"seq":1.382606e6'),
        DOC_DELTA.replace('["96996.5","1.543"]', "[96996.5,1.543]"),
        DOC_DELTA.replace('"bids":[["96996.5","1.543"]]', '"bids":[]'),
        DOC_TRADE.replace('"id":16148790', '"id":"a-16148790"'),  # a label, kept as sent
        DOC_TRADE.replace('"buy"', '"sell"'),
        DOC_TRADE.replace('"size":"0.656"', '"size":"0"'),
        DOC_TRADE.replace("}", ',"extra":[1,2,{"x":null}]}'),
    ):
        assert check(ad, "demo", frame), frame


def _swap(doc: str, old: str, new: str) -> str:
    assert old in doc
    return doc.replace(old, new, 1)


@pytest.mark.parametrize(
    "frame",
    [
        # numbers the book must never hold, in the fields the fast path converts
        _swap(DOC_DELTA, '"96996.5"', '"NaN"'),
        _swap(DOC_DELTA, '"1.543"', '"-1"'),
        _swap(DOC_DELTA, '"96996.5"', '"0"'),
        _swap(DOC_SNAPSHOT, '"97000.1"', '"1e999"'),
        _swap(DOC_SNAPSHOT, '"97000.1"', "1" + "0" * 400),
        _swap(DOC_TRADE, '"97000.0"', '"inf"'),
        _swap(DOC_TRADE, '"0.656"', '"-0.5"'),
        _swap(DOC_TRADE, '"97000.0"', "true"),
        # integers parse() reads otherwise (or refuses): strings, fractions, out of range
        _swap(DOC_DELTA, "1382607", '"1382607"'),
        _swap(DOC_DELTA, "1382606", '"1e3"'),
        _swap(DOC_DELTA, "1382607", "1382607.5"),
        _swap(DOC_DELTA, "1382607", "true"),
        _swap(DOC_DELTA, "1382607", str(2**64)),
        _swap(DOC_SNAPSHOT, "1382606", '"1382606"'),
        _swap(DOC_SNAPSHOT, "1764050953048", '"1764050953048"'),
        _swap(DOC_SNAPSHOT, "1764050953048", "1" + "0" * 400),
        _swap(DOC_TRADE, "16148790", "16148790.0"),
        _swap(DOC_TRADE, "16148790", "1e15"),
        _swap(DOC_TRADE, "16148790", "null"),
        _swap(DOC_TRADE, "16148790", "true"),
        _swap(DOC_TRADE, "16148790", "1" + "0" * 30),
        # shapes it does not describe
        _swap(DOC_TRADE, '"buy"', '"BUY"'),
        _swap(DOC_TRADE, '"buy"', '"b"'),
        _swap(DOC_DELTA, '["96996.5","1.543"]', '["96996.5","1.543","1"]'),
        _swap(DOC_DELTA, '["96996.5","1.543"]', '"12"'),
        _swap(DOC_DELTA, '["96996.5","1.543"]', '{"96996.5":"1.543"}'),
        _swap(DOC_DELTA, '[["96996.5","1.543"]]', '{"a":1,"b":2}'),
        _swap(DOC_DELTA, ',"prev_seq":1382606', ""),
        _swap(DOC_DELTA, '"symbol":"BTC-PERP",', ""),
        _swap(DOC_TRADE, '"trade"', '"snapshot"'),
        '{"type":"pong","type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1,"bids":[],"asks":[]}',
        '{"type":"delta","symbol":"BTC-PERP","seq":2,"prev_seq":1,"ts":1,"bids":[],"asks":[],"type":"pong"}',
        # control frames, errors, garbage
        *DOC_OTHER,
        '{"type":"error","reason":"x"}',
        '{"type":"resync"}',
        '{"type":["delta"]}',
        "[1,2]",
        "not json",
        "",
        b'{"type":"delta","symbol":"\xff","seq":2,"prev_seq":1,"ts":1,"bids":[],"asks":[]}',
    ],
)
def test_fast_path_leaves_odd_and_hostile_frames_to_the_slow_path(frame):
    ad = make()
    assert ad.parse_fast("demo", frame, 0.0) is None
    assert not check(ad, "demo", frame)
