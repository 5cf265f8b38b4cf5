"""Hyperliquid fast path (typed decoder) against the slow path, frame by frame.

There is no Hyperliquid recording, so the frames are the documented examples (fact sheet),
the simulator's Hyperliquid dialect and their mutations. Trades are de-duplicated on
(time, coin, tid), which makes the adapter stateful: the frame-by-frame checks run on an
adapter that forgets its trades before each call, and the de-duplication itself is checked
on whole frame sequences (fast-then-slow, as the pipeline runs, against slow only).
"""

from __future__ import annotations

import random

import pytest

from fastpath import BAD, check, check_all, mutations, reference, sim_frames
from obview.feed.pipeline import _numbers_ok
from obview.venues.hyperliquid import HyperliquidAdapter

DOC_BOOK = (
    '{"channel":"l2Book","data":{"coin":"BTC","time":1710131872708,'
    '"levels":[[{"px":"68674.0","sz":"0.97139","n":4},{"px":"68673.0","sz":"0.5","n":2}],'
    '[{"px":"68675.0","sz":"0.04396","n":1}]]}}'
)
DOC_TRADES = (
    '{"channel":"trades","data":[{"coin":"BTC","side":"A","px":"68517.0","sz":"0.005",'
    '"time":1710125266669,"hash":"0xc872e959","tid":981894269203506,'
    '"users":["0xbuyer","0xseller"]}]}'
)


class Forgetful(HyperliquidAdapter):
    """Each call starts with an empty trade memory, so both paths see every frame as new;
    a None from the fast path must leave the memory as it found it."""

    def _forget(self) -> None:
        self._seen_trades.clear()
        self._seen_order.clear()

    def parse_fast(self, stream, frame, ts_local):
        self._forget()
        self._remember((0, "sentinel", 0))
        out = super().parse_fast(stream, frame, ts_local)
        if out is None:
            assert list(self._seen_order) == [(0, "sentinel", 0)]
            assert self._seen_trades == {(0, "sentinel", 0)}
        return out

    def parse(self, stream, frame, ts_local):
        self._forget()
        self._remember((0, "sentinel", 0))
        return super().parse(stream, frame, ts_local)


def make(cls=Forgetful, symbol: str = "BTC-PERP") -> HyperliquidAdapter:
    return cls(symbol, endpoint="ws://127.0.0.1:9")


def hot(frames: list[str]) -> list[str]:
    return [f for f in frames if f.startswith(('{"channel":"l2Book"', '{"channel":"trades"'))]


def test_fast_path_agrees_on_the_documented_examples():
    ad = make()
    for f in (DOC_BOOK, DOC_TRADES):
        assert check(ad, "ws", f)
        assert check(ad, "ws", f.encode())
    assert check_all(ad, "ws", [DOC_BOOK, DOC_TRADES]) == (2, 2)
    # fields the fact sheet says to ignore, levels without an order count
    extra = DOC_BOOK.replace('"time"', '"spread":"1.0","time"').replace(',"n":4', "")
    assert check(ad, "ws", extra)


def test_fast_path_agrees_on_the_simulator_and_takes_every_book_and_trade_frame():
    pairs = sim_frames("hyperliquid")
    frames = [f for s, f in pairs if s == "ws"]
    # the fast book's stream: the same shapes, 5 levels a side
    fast = [f for s, f in pairs if s == "fast"]
    handled, total = check_all(make(), "fast", fast)
    assert handled == total - 2 > 200  # its greeting and subscription answer: the slow path
    ad = make()
    handled, total = check_all(ad, "ws", frames)
    ours = hot(frames)
    books = [f for f in ours if '"l2Book"' in f[:20]]
    trades = [f for f in ours if '"trades"' in f[:20]]
    assert len(books) > 200 and len(trades) > 50
    # the greeting and the subscription answers go to the slow path, nothing else
    assert handled == len(ours) == total - 3
    fresh = make()
    assert all(fresh.parse_fast("ws", f, 0.0) for f in books + trades)


def test_fast_path_agrees_for_another_coin():
    frames = [f for _, f in sim_frames("hyperliquid", symbol="ETH-PERP", steps=100)]
    handled, _ = check_all(make(symbol="ETH-PERP"), "ws", frames, seed=2)
    assert handled == len(hot(frames))
    # BTC's frames carry nothing for an ETH market, on either path
    btc = hot([f for _, f in sim_frames("hyperliquid", steps=30)])
    eth = make(symbol="ETH-PERP")
    assert all(eth.parse_fast("ws", f, 0.0) == [] == eth.parse("ws", f, 0.0) for f in btc)


def _run(ad: HyperliquidAdapter, frames: list[str], fast: bool) -> list:
    """What the pipeline gets from each frame: fast path first (when ``fast``), else parse."""
    out = []
    for f in frames:
        events = ad.parse_fast("ws", f, 0.0) if fast else None
        out.append(reference(ad, "ws", f) if events is None else events)
    return out


def test_trade_deduplication_is_the_same_on_both_paths():
    rng = random.Random(5)
    trades = [
        f for f in hot([f for _, f in sim_frames("hyperliquid", steps=200)]) if '"trades"' in f[:20]
    ]
    # replays (the first message after a resubscribe repeats recent prints), mutations, and
    # frames with one print changed so a frame mixes new and known trades
    stream: list[str] = []
    for i, f in enumerate(trades):
        stream.append(f)
        stream += mutations(f, rng, 2)
        if i % 7 == 0:
            stream += rng.sample(trades[: i + 1], min(3, i + 1))
        if i % 11 == 0:
            stream.append(f.replace('"tid":', '"tid":1', 1))
    small = {"trade_memory": 50}  # short memory: forgetting is exercised too
    fast_ad = type("Small", (HyperliquidAdapter,), small)("BTC-PERP")
    slow_ad = type("Small", (HyperliquidAdapter,), small)("BTC-PERP")
    got, want = _run(fast_ad, stream, True), _run(slow_ad, stream, False)
    assert got == want
    assert fast_ad._seen_order == slow_ad._seen_order
    assert fast_ad._seen_trades == slow_ad._seen_trades
    assert sum(1 for g in got if g == []) > 50  # duplicates were actually dropped
    assert all(g is BAD or all(_numbers_ok(e) for e in g) for g in got)


def test_a_miss_leaves_the_trade_memory_alone():
    ad = HyperliquidAdapter("BTC-PERP")
    t1 = '{"coin":"BTC","side":"B","px":"1.0","sz":"1","time":5,"tid":1}'
    t2 = '{"coin":"BTC","side":"B","px":"1.0","sz":"1","time":5,"tid":"2"}'  # parse's business
    frame = '{"channel":"trades","data":[' + t1 + "," + t2 + "]}"
    assert ad.parse_fast("ws", frame, 0.0) is None
    assert not ad._seen_trades
    # so the slow path still sees both prints as new
    assert [t.trade_id for t in ad.parse("ws", frame, 0.0)] == ["1", "2"]


BOOK = '{"channel":"l2Book","data":{"coin":"BTC","time":%s,"levels":[[%s],[%s]]}}'
LV = '{"px":"68674.0","sz":"0.5","n":1}'
TRADE = (
    '{"channel":"trades","data":[{"coin":"BTC","side":%s,"px":%s,"sz":"0.005",'
    '"time":%s,"hash":"0x0","tid":%s}]}'
)


def book(time="1710131872708", bids=LV, asks=LV.replace("68674.0", "68675.0")) -> str:
    return BOOK % (time, bids, asks)


def trade(side='"A"', px='"68517.0"', time="1710125266669", tid="981894269203506") -> str:
    return TRADE % (side, px, time, tid)


@pytest.mark.parametrize(
    "frame",
    [
        # numbers the book must never hold, in the fields the fast path converts
        book(bids='{"px":"NaN","sz":"1","n":1}'),
        book(bids='{"px":"0","sz":"1","n":1}'),
        book(asks='{"px":"1e999","sz":"1","n":1}'),
        book(asks='{"px":"1","sz":"-1","n":1}'),
        book(asks='{"px":1' + "0" * 400 + ',"sz":"1","n":1}'),
        trade(px='"inf"'),
        trade(px='"-68517.0"'),
        # integers parse() reads otherwise (or refuses): strings, fractions, out of range
        book(time='"1710131872708"'),
        book(time="1710131872708.5"),
        book(time="true"),
        book(time="1" + "0" * 400),
        book(time=str(2**64)),
        trade(time='"1710125266669"'),
        trade(tid='"981894269203506"'),
        trade(tid="null"),
        trade(tid="1.5"),
        trade(tid="12.0"),
        trade(tid="1e15"),
        trade(tid=str(2**64 - 1)),
        trade(tid="1" + "0" * 30),
        '{"channel":"trades","data":[{"coin":"BTC","side":"A","px":"1","sz":"1","time":1}]}',
        # shapes it does not describe
        trade(side='"X"'),
        trade(side="null"),
        book(bids='["68674.0","0.5"]'),
        '{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[]]}}',
        '{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[],[],[]]}}',
        '{"channel":"l2Book","data":{"coin":"BTC","time":1}}',
        '{"channel":"l2Book"}',
        '{"channel":"trades","data":{}}',
        '{"channel":"pong","channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[],[]]}}',
        '{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[],[]]},"channel":"pong"}',
        # control frames, errors, other channels, garbage
        "Websocket connection established.",
        '{"channel":"pong"}',
        '{"channel":"error","data":"Already subscribed: {}"}',
        '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{}}}',
        '{"channel":"allMids","data":{"mids":{}}}',
        '{"data":1}',
        "[1,2]",
        "not json",
        b'{"channel":"l2Book","data":{"coin":"\xff","time":1,"levels":[[],[]]}}',
    ],
)
def test_fast_path_leaves_odd_and_hostile_frames_to_the_slow_path(frame):
    ad = make()
    assert ad.parse_fast("ws", frame, 0.0) is None
    assert not check(ad, "ws", frame)


def test_fast_path_skips_other_coins():
    ad = make()
    eth_book = book().replace('"BTC"', '"ETH"')
    assert ad.parse_fast("ws", eth_book, 0.0) == [] == ad.parse("ws", eth_book, 0.0)
    eth = '{"coin":"ETH","side":"B","px":"3000.1","sz":"2","time":1,"hash":"0x0","tid":7}'
    mixed = trade()[:-2] + "," + eth + "]}"
    (t,) = ad.parse_fast("ws", mixed, 0.0)
    assert t.trade_id == "981894269203506"
    assert check(ad, "ws", mixed)


def test_empty_sides_and_empty_trade_lists():
    ad = make()
    empty = '{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[],[]]}}'
    assert check(ad, "ws", empty)
    assert ad.parse_fast("ws", '{"channel":"trades","data":[]}', 0.0) == []


def test_integral_float_times_read_as_parse_reads_them():
    ad = make()
    assert check(ad, "ws", book(time="1710131872708.0"))
    assert check(ad, "ws", trade(time="1710125266669.0"))
    assert check(ad, "ws", trade(time="1.710125266669e12"))
