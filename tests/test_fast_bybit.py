"""Bybit fast path (typed decoder) against the slow path, frame by frame.

No Bybit v5 recording exists (see tests/test_venue_bybit.py): the frames are the simulator's
Bybit dialect, the v5 documentation's examples (../shared/venues/bybit.md section 4) and
variants of them, each also mutated by ``check_all``.
"""

from __future__ import annotations

import random
import re

import orjson
import pytest

from fastpath import BAD, check, check_all, mutations, reference, sim_frames
from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, Side, Trade
from obview.venues.bybit import BybitAdapter

DOC_SNAPSHOT = (
    '{"topic":"orderbook.200.BTCUSDT","type":"snapshot","ts":1672304484978,'
    '"data":{"s":"BTCUSDT","b":[["16493.50","0.006"],["16493.00","0.100"]],'
    '"a":[["16611.00","0.029"],["16612.00","0.213"]],"u":18521288,"seq":7961638724},'
    '"cts":1672304484976}'
)
DOC_DELTA = (
    '{"topic":"orderbook.200.BTCUSDT","type":"delta","ts":1687940967466,'
    '"data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30240.00","0"]],"a":[["30248.70","0"]],'
    '"u":177400507,"seq":66544703342},"cts":1687940967464}'
)
DOC_TRADE = (
    '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,'
    '"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",'
    '"L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617}]}'
)
TRADE_2 = (
    '{"T":1672304486866,"s":"BTCUSDT","S":"Sell","v":"1.250","p":"16578.00",'
    '"L":"MinusTick","i":"30f43950-d8dd-5b31-9112-a178eb6023b0","BT":true,"RPI":true,'
    '"seq":1783284618}'
)
OTHER_SYMBOL_TRADE = TRADE_2.replace('"s":"BTCUSDT"', '"s":"ETHUSDT"')
TWO_TRADES = DOC_TRADE.replace("}]}", "}," + TRADE_2 + "]}")
STRAY_TRADE = DOC_TRADE.replace("}]}", "}," + OTHER_SYMBOL_TRADE + "]}")  # the stray is skipped
NO_TRADES = '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[]}'
RESTART = DOC_DELTA.replace('"u":177400507', '"u":1')  # service restart: a snapshot
NO_TS = DOC_SNAPSHOT.replace(',"ts":1672304484978', "")  # no exchange time

#: frames the fast path must take (and agree on with parse)
OURS = [
    DOC_SNAPSHOT,
    DOC_DELTA,
    DOC_TRADE,
    DOC_TRADE.replace('"S":"Buy"', '"S":"Sell"'),
    TWO_TRADES,
    STRAY_TRADE,
    NO_TRADES,
    RESTART,
    NO_TS,
    DOC_DELTA.replace('"b":[["30247.20","30.028"],["30240.00","0"]]', '"b":[]'),
    DOC_DELTA.replace('"seq":66544703342', '"seq":"x"'),  # fields parse does not read
    DOC_SNAPSHOT.replace('"16493.50"', "16493.5").replace('"0.006"', "6e-3"),  # bare numbers
    # spot's key order (ts before type) and a duplicated key (the last one counts, as in orjson)
    '{"topic":"orderbook.200.BTCUSDT","ts":1672304484978,"type":"delta","data":'
    '{"s":"BTCUSDT","b":[["16493.50","0.006"]],"a":[],"u":18521289,"seq":1},"cts":1}',
    DOC_DELTA.replace('"u":177400507', '"u":5,"u":177400507'),
]

#: frames parse answers with [] (another topic or instrument): the fast path may agree
OTHER_TOPICS = [
    DOC_SNAPSHOT.replace("orderbook.200.", "orderbook.50."),
    DOC_DELTA.replace("BTCUSDT", "ETHUSDT"),
    DOC_TRADE.replace("BTCUSDT", "ETHUSDT"),
]


OVERFLOW = re.compile(r"([:\[,])1e400([,\]}])")  # a bare number no double holds


def adapter(symbol: str = "BTC-PERP") -> BybitAdapter:
    return BybitAdapter(symbol, endpoint="ws://127.0.0.1:9")


@pytest.mark.parametrize("symbol", ["BTC-PERP", "ETH-PERP", "SOL-PERP"])
def test_fast_path_agrees_on_the_simulator_and_takes_every_book_and_trade_frame(symbol):
    frames = sim_frames("bybit", symbol)
    ad = adapter(symbol)
    assert {s for s, _ in frames} == {"public"}
    handled, _ = check_all(ad, "public", [f for _, f in frames])
    book = [f for _, f in frames if '"topic":"orderbook.' in f]
    trades = [f for _, f in frames if '"topic":"publicTrade.' in f]
    assert len(book) > 200 and trades and handled == len(book) + len(trades)
    # every one of them gives events (not None, not []): the fast path did not silently stop
    assert all(ad.parse_fast("public", f, 0.0) for f in book + trades)
    assert all(ad.parse_fast("public", f.encode(), 0.0) for f in book + trades)
    # subscribe answers are not ours
    assert not any(check(ad, "public", f) for _, f in frames if '"success"' in f)


def test_fast_path_agrees_on_the_doc_frames_and_their_variants():
    ad = adapter()
    handled, total = check_all(ad, "public", OURS + OTHER_TOPICS)
    assert handled == total
    for f in OURS:
        assert ad.parse_fast("public", f, 1.5) == ad.parse("public", f, 1.5)
    (snap,) = ad.parse_fast("public", DOC_SNAPSHOT, 2.0)
    assert isinstance(snap, BookSnapshot) and snap.seq == 18521288 and snap.ts_local == 2.0
    assert snap.bids == [(16493.5, 0.006), (16493.0, 0.1)]
    assert snap.ts_exchange == pytest.approx(1672304484.978)
    (d,) = ad.parse_fast("public", DOC_DELTA, 0.0)
    assert d.__class__ is BookDelta and d.asks == [(30248.7, 0.0)] and d.prev_seq is None
    (restart,) = ad.parse_fast("public", RESTART, 0.0)
    assert isinstance(restart, BookSnapshot) and restart.seq == 1
    buy, sell = ad.parse_fast("public", TWO_TRADES, 0.0)
    assert (buy.__class__, buy.side, sell.side, sell.size) == (Trade, Side.BUY, Side.SELL, 1.25)
    assert buy.trade_id == "20f43950-d8dd-5b31-9112-a178eb6023af"
    assert buy.ts_exchange == pytest.approx(1672304486.865)
    assert len(ad.parse_fast("public", STRAY_TRADE, 0.0)) == 1
    assert ad.parse_fast("public", NO_TRADES, 0.0) == []
    assert ad.parse_fast("public", NO_TS, 0.0)[0].ts_exchange is None
    for f in OTHER_TOPICS:
        assert ad.parse_fast("public", f, 0.0) == [] == ad.parse("public", f, 0.0)


def test_mutated_frames_get_the_slow_answer_or_none():
    # stricter than check(): wherever the fast path answers, parse gives the same events (no
    # integer that parse would refuse is read either). One known exception: a bare number that
    # overflows a double (1e400) in a field the fast path does not read (seq, cts, L ...):
    # orjson refuses the whole frame, msgspec skips the field.
    rng = random.Random(7)
    ad = adapter()
    frames = OURS + [f for _, f in sim_frames("bybit", steps=60)]
    answered = skipped_overflow = 0
    for f in frames:
        for m in mutations(f, rng, per_frame=12):
            fast = ad.parse_fast("public", m, 0.0)
            if fast is None:
                continue
            answered += 1
            ref = reference(ad, "public", m)
            if ref is BAD and OVERFLOW.search(m):
                with pytest.raises(orjson.JSONDecodeError, match="infinity"):
                    orjson.loads(m)
                assert fast == ad.parse_fast("public", OVERFLOW.sub(r"\g<1>0\g<2>", m), 0.0)
                skipped_overflow += 1
                continue
            assert ref is not BAD and fast == ref, m
    assert answered > 100 + skipped_overflow


@pytest.mark.parametrize(
    "frame",
    [
        # numbers the book must never hold, in the fields the fast path converts
        DOC_DELTA.replace('"30247.20"', '"NaN"'),
        DOC_DELTA.replace('"30.028"', '"-1"'),
        DOC_DELTA.replace('"30248.70"', '"1e999"'),
        DOC_SNAPSHOT.replace('"16493.00"', '"0"'),
        DOC_TRADE.replace('"16578.50"', '"inf"'),
        DOC_TRADE.replace('"0.001"', '"-0.5"'),
        # numbers parse reads differently from a lax typed decoder: left to parse
        DOC_DELTA.replace('"u":177400507', '"u":"1e3"'),
        DOC_DELTA.replace('"u":177400507', '"u":"177400507"'),
        DOC_DELTA.replace('"u":177400507', '"u":12345678901234567890123'),  # orjson: a float
        DOC_DELTA.replace('"u":177400507', '"u":1.5'),
        DOC_DELTA.replace('"u":177400507', '"u":true'),
        DOC_SNAPSHOT.replace('"ts":1672304484978', '"ts":"1672304484978"'),  # docs: maybe a str
        DOC_SNAPSHOT.replace('"ts":1672304484978', '"ts":"1.0"'),
        DOC_SNAPSHOT.replace('"ts":1672304484978', '"ts":null'),
        DOC_TRADE.replace('"T":1672304486865', '"T":"1672304486865"'),
        DOC_TRADE.replace('"i":"20f43950-d8dd-5b31-9112-a178eb6023af"', '"i":12345'),
        DOC_TRADE.replace('"16578.50"', '" 16578.50"'),
        DOC_TRADE.replace('"16578.50"', '"16_578.50"'),
        DOC_TRADE.replace('"0.001"', "true"),
        # shapes it does not describe: answers, pongs, errors, odd or mixed-up messages
        '{"success":true,"ret_msg":"","op":"subscribe","conn_id":"cejreassvfrsfvb9v1a0-2m"}',
        '{"success":true,"ret_msg":"pong","conn_id":"465772b1","op":"ping"}',
        '{"op":"pong","args":["1672916271846"]}',
        '{"success":false,"ret_msg":"Invalid symbol :[orderbook.200.BTCUSDX]","op":"subscribe"}',
        DOC_SNAPSHOT.replace('"type":"snapshot"', '"type":"weird"'),
        DOC_SNAPSHOT.replace('"type":"snapshot",', ""),
        DOC_SNAPSHOT.replace('"s":"BTCUSDT"', '"s":"ETHUSDT"'),  # parse: wrong symbol in topic
        DOC_SNAPSHOT.replace('"s":"BTCUSDT",', ""),
        DOC_SNAPSHOT.replace('["16493.50","0.006"]', '["16493.50","0.006","1"]'),
        DOC_SNAPSHOT.replace('["16493.50","0.006"]', '"12"'),
        DOC_TRADE.replace('"S":"Buy"', '"S":"buy"'),
        DOC_TRADE.replace("publicTrade.", "orderbook.200."),  # a list where the book belongs
        DOC_SNAPSHOT.replace("orderbook.200.", "publicTrade."),  # an object where trades belong
        DOC_TRADE.replace('"data":[', '"data":[1,'),
        '{"topic":null,"type":"snapshot","data":{}}',
        "[1,2]",
        "not json",
        DOC_SNAPSHOT[:-5],
    ],
)
def test_fast_path_leaves_odd_and_hostile_frames_to_the_slow_path(frame):
    ad = adapter()
    assert ad.parse_fast("public", frame, 0.0) is None
    assert ad.parse_fast("public", frame.encode(), 0.0) is None
    assert not check(ad, "public", frame)


def test_bad_utf8_and_surrogates_go_to_the_slow_path():
    ad = adapter()
    bad_utf8 = DOC_TRADE.encode().replace(b"BTCUSDT", b"BTC\xffUSDT")
    assert ad.parse_fast("public", bad_utf8, 0.0) is None
    assert ad.parse_fast("public", DOC_TRADE.replace("PlusTick", "Plus\ud800"), 0.0) is None


def test_pipeline_takes_the_fast_path():
    ad = adapter()
    pipe = FeedPipeline(ad, Market(ad.default_instrument()))
    assert pipe._parse_fast is not None
    pipe.on_frame("public", DOC_SNAPSHOT, 1.0)
    pipe.on_frame("public", DOC_TRADE, 1.0)
    assert pipe.market.live and pipe.trades == 1 and pipe.parse_errors == 0
