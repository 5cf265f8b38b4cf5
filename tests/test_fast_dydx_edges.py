"""dYdX v4 fast path on odd, hostile and edge frames: what it takes it reads as ``parse`` does,
events and adapter state alike; what it leaves (another shape, a number ``float()`` reads but
JSON does not write, a field it does not know, another market) it leaves whole to ``parse``.
The helpers are those of ``test_fast_dydx``."""

from __future__ import annotations

import logging
import math
import random
from decimal import Decimal

import orjson
import pytest

from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.model import DELEVERAGE, LIQUIDATION, FeedStatus, Side, Trade
from obview.venues.dydx import DydxDelta
from test_fast_dydx import assert_same_run, check, make, state

BOOK = {"type": "channel_data", "connection_id": "ee5a", "message_id": 484, "id": "BTC-USD",
        "channel": "v4_orderbook", "version": "1.0.0",
        "contents": {"bids": [["27773", "1.986168516"]], "asks": [["27780", "0.5"]]}}  # fmt: skip
BATCH = {**BOOK, "type": "channel_batch_data",
         "contents": [{"bids": [["27774", "0.5"]]}, {"asks": [["27775", "0"], ["27781", "1.2"]]},
                      {"bids": [["27774", "0"]]}]}  # fmt: skip
ROW = {"id": "02b6148d0000000200000005", "side": "BUY", "size": "0.024", "price": "114581",
       "type": "LIMIT", "createdAt": "2025-08-04T00:42:07.119Z", "createdAtHeight": "45487245"}  # fmt: skip
TRADE = {"type": "channel_data", "connection_id": "c", "message_id": 4, "id": "BTC-USD",
         "channel": "v4_trades", "version": "1.1.0", "contents": {"trades": [ROW]}}  # fmt: skip


def _frame(base: dict, kw: dict) -> str:
    msg = dict(base)
    for k, v in kw.items():
        if v is ...:
            del msg[k]
        else:
            msg[k] = v
    return orjson.dumps(msg).decode()


def book(**kw) -> tuple[str, str]:
    return "book", _frame(BOOK, kw)


def batch(**kw) -> tuple[str, str]:
    return "book", _frame(BATCH, kw)


def trade(**kw) -> tuple[str, str]:
    return "trades", _frame(TRADE, kw)


def row(**kw) -> tuple[str, str]:
    """A trades message of one print, ``kw`` changing the print."""
    r = dict(ROW)
    for k, v in kw.items():
        if v is ...:
            del r[k]
        else:
            r[k] = v
    return trade(contents={"trades": [r]})


def level(price: str = '"27773"', size: str = '"1.986168516"') -> tuple[str, str]:
    """A book message whose bid is written as the raw JSON texts given."""
    return "book", _frame(BOOK, {}).replace('["27773","1.986168516"]', f"[{price},{size}]")


def raw(item: tuple[str, str], old: str, new: str) -> tuple[str, str]:
    assert old in item[1]
    return item[0], item[1].replace(old, new, 1)


TAKEN = [
    book(), batch(), book(contents={"asks": [["27780", "0.5"]]}), book(contents={}),
    batch(contents=[]),  # an empty batch still takes its message_id
    batch(contents=[{}, {}]), batch(contents={"bids": [["1", "2"]]}), book(contents=BATCH["contents"]),
    book(contents={"bids": [["27773", "1"], ["27773", "0"], ["27773", "2"]]}),  # one price thrice
    level(size='"0"'), level(size='"0.0"'), level(size='"-0"'), level(size='"-0.0"'),
    level(size='"1e-400"'), level(price='"1e5"'), level(price='"2.7773E4"'), level(size='"1.5e-3"'),
    level(price='"999999999999999.9"'), level(price='"1e-300"'), level('"2\\u0037773"'),
    level("27773", "1.5"), level("27773.5", "0"), level("27773", "-0"),  # JSON numbers
    book(message_id=0), book(message_id=2**63 - 1), raw(book(), "484", "-0"),
    book(version=...), book(version=None), book(version=""), book(version="2.0.0"),
    book(connection_id=...), book(connection_id=None), book(subaccountNumber=0),
    raw(book(), '"BTC-USD"', '"BTC\\u002dUSD"'),
    ("book", orjson.dumps(dict(reversed(BOOK.items()))).decode()),
    raw(book(), '"contents"', '"contents":{"asks":[]},"contents"'),  # the last one counts
    raw(book(), '"message_id":484', '"message_id":1,"message_id":484'),
    raw(book(), '"id":"BTC-USD"', '"id":"ETH-USD","id":"BTC-USD"'),
    raw(book(), '"channel"', '"channel":"v4_trades","channel"'),
    raw(book(), '"bids"', '"bids":[["1","1"]],"bids"'),
    ("book", "  \n" + book()[1] + "\t\n"), ("book", book()[1].replace(",", " ,\r\n ")),
    # trades, on either stream (parse() reads them on any)
    trade(), row(side="SELL"), row(type="LIQUIDATED"), row(type="DELEVERAGED"), row(type="MARKET"),
    row(type=""), row(type="liquidated"), row(type=...), row(type=..., liquidation=True),
    row(type=..., liquidation=False), row(type=None, liquidation=True), row(liquidation=True),
    row(type="LIQUIDATED", liquidation=False), row(liquidation=None), row(createdAtHeight=...),
    row(createdAtHeight=None), row(createdAt="2025-08-04T00:42:07Z"),
    row(createdAt="2025-08-04T00:42:07.119+00:00"), row(createdAt="2025-08-04T02:42:07.119+02:00"),
    row(createdAt="2025-08-04T00:42:07.119"), row(createdAt="2025-08-04 00:42:07"),
    row(createdAt="20250804T004207Z"), row(size="0"), row(price="1.14581e5"),
    row(price=" 114581"), row(size="1_0"), row(id=""),  # read by parse()'s own number()
    trade(contents={"trades": [ROW, {**ROW, "id": "x"}, ROW]}),  # a repeat within the frame
    trade(contents={"trades": []}), trade(message_id="4"), trade(message_id=...), trade(version=...),
    trade(type="channel_batch_data", contents=[{"trades": [ROW]}, {"trades": [{**ROW, "id": "y"}]}]),
    ("book", trade()[1]),
]  # fmt: skip

TAKEN_KINDS = {"LIQUIDATED": LIQUIDATION, "DELEVERAGED": DELEVERAGE, "LIMIT": "", "MARKET": "", "": ""}

#: what a hostile or odd venue might write for a price / a size (each refused, or read by
#: float() and not by JSON: " 1", "1_0", "+1", "1.", ".5", "00012", Arabic digits)
BAD_PRICES = ['" 1"', '"1 "', '"+1"', '"1_0"', '"1."', '".5"', '"00012"', '"0x10"', '""', '"abc"',
              '"NaN"', '"nan"', '"inf"', '"-inf"', '"Infinity"', '"-1"', '"0"', '"-0"', '"0.0"',
              '"1e400"', '"1e15"', '"1e-400"', "true", "false", "null", "[]", "{}", "1e400", "0",
              "-5", '"\u0661\u0662"']  # fmt: skip
BAD_SIZES = [s for s in BAD_PRICES if s not in ('"0"', '"-0"', '"0.0"', '"1e-400"', "0")] + ['"-0.5"', "-1"]

LEFT = [
    *(level(price=p) for p in BAD_PRICES), *(level(size=s) for s in BAD_SIZES),
    level('"27773","1","2"', '"3"'),  # a third element (parse() ignores it)
    raw(book(), '["27773","1.986168516"]', '["27773"]'),
    raw(book(), '["27773","1.986168516"]', '{"price":"27773","size":"1.98"}'),  # parse() reads it
    raw(book(), '["27773","1.986168516"]', "null"), book(contents={"bids": None}),
    book(contents={"bids": {}}), book(contents={"bids": "x"}), book(contents={"bids": [], "trades": []}),
    book(contents={"offset": 5}), book(contents=...), book(contents=None), book(contents="x"),
    book(contents=5), batch(contents=[5]), batch(contents=[None]), batch(contents=[[]]),
    book(message_id=...), book(message_id=None), book(message_id="484"), book(message_id=484.0),
    book(message_id=True), book(message_id=-1), book(message_id=2**63), book(message_id=2**64 - 1),
    raw(book(), "484", "1e3"), raw(book(), "484", "9" * 30),
    book(id="ETH-USD"), book(id=...), book(id=None), book(id=5), book(id="btc-usd"),
    book(channel="v4_candles"), book(channel="v4_markets"), book(channel=...), book(channel=None),
    book(channel=5), ("trades", book()[1]),  # the book on the trades socket: [] in parse()
    book(type="subscribed"), book(type="connected"), book(type="unsubscribed"), book(type="error"),
    book(type="pong"), book(type=...), book(type=None), book(type="CHANNEL_DATA"),
    raw(book(), '"type":"channel_data"', '"type":"channel_data","type":"subscribed"'),
    raw(book(), '"type":"channel_data"', '"type":"subscribed","type":"channel_data"'),
    book(extra=1), book(timestamp="x"), raw(book(extra=1), '"extra":1', '"extra":1e400'),
    raw(book(extra="x"), '"extra":"x"', '"extra":"\\ud800"'), raw(book(), '"ee5a"', '"\\ud800"'),
    raw(book(), '"1.0.0"', '"1.0\\ud800"'), book(connection_id=5), book(version=1),
    book(subaccountNumber="x"), book(subaccountNumber=1.5),
    ("book", "[]"), ("book", "null"), ("book", "not json"), ("book", book()[1][:-5]),
    ("book", book()[1] + "x"), ("book", "[" + book()[1] + "]"), ("book", "\ufeff" + book()[1]),
    ("book", b"\xef\xbb\xbf" + book()[1].encode()), ("book", book()[1].encode() + b"\x00"),
    ("book", book()[1].replace("ee5a", "ee\ud800a")), ("book", book()[1].replace("BTC-USD", "BTC-USD\x00")),
    ("book", '{"type":"connected","connection_id":"004a1efa","message_id":0}'),
    ("book", '{"type":"error","message":"Invalid subscription id for channel: (v4_orderbook-X)",'
             '"connection_id":"c","message_id":1}'),
    ("book", '{"type":"subscribed","connection_id":"c","message_id":1,"channel":"v4_orderbook",'
             '"id":"BTC-USD","contents":{"bids":[{"price":"1","size":"1"}],"asks":[]}}'),
    # trades
    row(id=5), row(id=True), row(id=None), row(id=...), row(side="buy"), row(side=None),
    row(side=["BUY"]), row(price=114581), row(price=...), row(price="abc"), row(price="0"),
    row(price="-1"), row(size="-1"), row(price="1e15"), row(price="NaN"), row(size="inf"),
    row(createdAt=...), row(createdAt="x"), row(createdAt=5), row(createdAt=None),
    row(createdAt="2025-13-01T00:00:00Z"), row(liquidation="true"), row(liquidation=1),
    row(type=5), row(type=["LIQUIDATED"]), row(createdAtHeight=5), row(clientMetadata="0"),
    trade(contents={"trades": [ROW, {**ROW, "id": "z", "price": "-5"}]}),  # none remembered
    trade(contents={"trades": None}), trade(contents={"trades": {}}), trade(contents={"trades": [5]}),
    trade(contents={}), trade(contents={"trades": [], "extra": 1}), trade(contents=[]),
    trade(contents=None), trade(message_id=True), trade(id="ETH-USD"), trade(channel="v4_markets"),
    trade(type="subscribed"), trade(extra=None),
    ("trades", trade()[1].encode().replace(b"02b6148d", b"02b6\xff48d")),
]  # fmt: skip


@pytest.mark.parametrize("item", TAKEN)
def test_fast_path_takes_edge_frames_and_agrees(item):
    stream, frame = item
    assert check(make(), stream, frame)
    assert check(make(), stream, frame.encode())


@pytest.mark.parametrize("item", LEFT)
def test_fast_path_leaves_odd_and_hostile_frames_to_the_slow_path(item):
    stream, frame = item
    adapter = make()
    assert adapter.parse_fast(stream, frame, 0.0) is None
    if isinstance(frame, str):
        try:
            assert adapter.parse_fast(stream, frame.encode(), 0.0) is None
        except UnicodeEncodeError:
            pass  # a lone surrogate has no bytes form
    assert not check(adapter, stream, frame)


def test_fast_path_events_kinds_and_versions(caplog):
    adapter = make()
    (d,) = adapter.parse_fast("book", book()[1], 2.5)
    assert d == DydxDelta("dydx", "BTC-PERP", [(27773.0, 1.986168516)], [(27780.0, 0.5)], seq=484, ts_local=2.5)
    assert d.__class__ is DydxDelta and d.part == 0
    evs = adapter.parse_fast("book", batch()[1], 1.0)
    assert [(e.seq, e.part, e.bids, e.asks) for e in evs] == [
        (484, 0, [(27774.0, 0.5)], []), (484, 1, [], [(27775.0, 0.0), (27781.0, 1.2)]),
        (484, 2, [(27774.0, 0.0)], []),
    ]  # fmt: skip
    (e,) = adapter.parse_fast("book", batch(contents=[])[1], 1.0)
    assert (e.bids, e.asks, e.seq, e.part) == ([], [], 484, 0)
    for t, kind in TAKEN_KINDS.items():
        (tr,) = make().parse_fast("trades", row(type=t)[1], 3.0)
        assert tr.kind == kind
    (tr,) = make().parse_fast("trades", row(type=..., liquidation=True)[1], 3.0)
    assert tr.kind == LIQUIDATION
    (tr,) = adapter.parse_fast("trades", trade()[1], 3.0)
    assert tr == Trade("dydx", "BTC-PERP", 114581.0, 0.024, Side.BUY, ROW["id"], 1754268127.119, 3.0, "")
    assert adapter.parse_fast("trades", trade()[1], 3.0) == []  # seen
    # an unknown major version is logged once, by either path
    with caplog.at_level(logging.INFO, logger="obview.venues.dydx"):
        adapter.parse_fast("book", book(version="7.0.0")[1], 0.0)
        adapter.parse("book", book(version="7.0.0")[1], 0.0)
    assert [r.getMessage() for r in caplog.records] == ["dydx BTC-USD: unknown contents version 7.0.0"]
    assert "7.0.0" in adapter._versions


SNAPSHOT = ("book", '{"type":"subscribed","connection_id":"c","message_id":483,"channel":"v4_orderbook",'
            '"id":"BTC-USD","contents":{"bids":[{"price":"27770","size":"1"},{"price":"27000","size":"2"}],'
            '"asks":[{"price":"27790","size":"1"},{"price":"28000","size":"2"}]}}')  # fmt: skip


@pytest.mark.parametrize("item", LEFT + TAKEN)
def test_odd_and_hostile_frames_on_a_synced_book_give_the_same_flags(item):
    # after a snapshot the frame follows: the same book, ages, bad frames, gaps, resync
    # requests, trades and versions; then the next message, which finds the gap a lost one left
    stream, frame = item
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    run = assert_same_run([SNAPSHOT, (stream, text), book(message_id=485, contents={"asks": [["27785", "3"]]}),
                           trade(contents={"trades": [{**ROW, "id": "after"}]})])  # fmt: skip
    assert run["actions"][0] == [] and run["books"][0][3] is FeedStatus.LIVE
    assert run["state"][0] is FeedStatus.FAILED or run["trades"][-1].trade_id == "after"


def test_pipeline_takes_the_fast_path_for_book_and_trade_updates(monkeypatch):
    adapter = make()
    pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
    assert pipe._parse_fast is not None
    pipe.on_frame(*SNAPSHOT, 1.0)

    def refuse(*args):
        raise AssertionError("parse() called")

    monkeypatch.setattr(adapter, "parse", refuse)
    pipe.on_frame(*book(), 1.0)
    pipe.on_frame(*batch(message_id=485), 1.0)
    pipe.on_frame(*row(type="LIQUIDATED"), 1.0)
    m = pipe.market
    assert m.live and pipe.parse_errors == 0 and pipe.trades == 1 and m.stats.liquidations == 1
    assert dict(m.book.bids) == {27773.0: 1.986168516, 27770.0: 1.0, 27000.0: 2.0}
    assert dict(m.book.asks) == {27780.0: 0.5, 27781.0: 1.2, 27790.0: 1.0, 28000.0: 2.0}
    assert (pipe.sync.last_seq, pipe.sync.last_part) == (485, 2) and state(adapter)[2] == {"1.0.0"}


def _decimal(rng) -> str:
    """A decimal string a venue might send, or one close to halfway between two doubles."""
    r = rng.random()
    if r < 0.4:
        s = str(rng.randint(1, 10 ** rng.randint(1, 14)))
        return s + "." + "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25))) if rng.random() < 0.8 else s
    if r < 0.7:
        x = rng.uniform(1e-6, 1e14)
        a, b = Decimal(x), Decimal(math.nextafter(x, math.inf))
        s = format((a + b) / 2, "f")  # the exact midpoint: rounds to even
        return s[:-1] + rng.choice("0123456789") if rng.random() < 0.5 else s
    if r < 0.9:
        return f"{rng.randint(1, 999999)}{rng.choice('eE')}{rng.randint(-20, 8)}"
    return repr(rng.uniform(1e-9, 1e14))


@pytest.mark.parametrize("seed", range(3))
def test_numeric_strings_give_the_doubles_float_gives(seed):
    # the decoder's own conversion of "27773.12..." against float() in parse(): the same
    # double for every string both read, halfway cases and long mantissas among them
    rng = random.Random(seed)
    adapter = make()
    taken = 0
    for _ in range(40):
        bids = [[_decimal(rng), _decimal(rng)] for _ in range(250)]
        frame = book(contents={"bids": bids})
        fast = adapter.parse_fast(*frame, 0.0)
        assert fast is not None and fast == adapter.parse(*frame, 0.0)
        assert fast[0].bids == [(float(p), float(s)) for p, s in bids]
        taken += len(bids)
    assert taken == 10_000
