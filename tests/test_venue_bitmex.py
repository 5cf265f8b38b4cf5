"""BitMEX adapter: the real 2021 recording, doc-example frames, the id-keyed sync rules, instrument
facts, and end to end against the simulator's BitMEX dialect (today's protocol and the 2021 one).

The recording (../shared/recordings/bitmex.jsonl) predates 2023: its update/delete rows carry no
price, so replaying it exercises the id -> price map. BitMEX sends no sequence numbers and no
checksums; a lost frame shows only through the rows after it (an unknown id, an id inserted
twice, a crossed book). A lost ``update`` frame changes sizes only and cannot be seen at all.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import pytest

from e2e import fast_options, until, venue_feed
from obview.feed.pipeline import Fatal, FeedPipeline, NeedResync
from obview.feed.session import FeedSession
from obview.market import Market
from obview.model import BookSnapshot, FeedStatus, Side, Trade
from obview.sim.dialects.bitmex import BitmexDialect
from obview.sim.engine import SimMarket
from obview.sim.server import start_server
from obview.venues.base import FrameError, ResyncMode, UnknownSymbol, VenueError
from obview.venues.bitmex import BitmexAdapter, BitmexBookDelta, BitmexBookSnapshot
from obview.venues.registry import get_adapter

RECORDING = Path(__file__).resolve().parents[2] / "shared" / "recordings" / "bitmex.jsonl"
INSTRUMENTS = ["ADAUSDT", "BCHUSD", "EOSUSDT", "MATICUSDT", "SOLUSDT", "TRXU21", "TRXUSDT",
               "UNIUSDT", "XBTUSD", "XRPU21"]  # fmt: skip


def load_recording() -> list[dict]:
    if not RECORDING.exists():
        pytest.skip("recording not available")
    return [json.loads(line) for line in RECORDING.read_text().splitlines() if line.strip()]


def replay(lines: list[dict], instrument: str):
    adapter = BitmexAdapter("BTC-PERP", instrument=instrument)
    market = Market(adapter.default_instrument())
    pipe = FeedPipeline(adapter, market)
    crossed = 0
    for rec in lines:
        if "raw" in rec:
            pipe.on_frame("realtime", rec["raw"], rec["t"])
            crossed += market.book.is_crossed()
    return pipe, market, crossed


def reference_book(lines: list[dict], instrument: str):
    """Independent rebuild from the raw rows: id -> [side, price, size]."""
    levels: dict[int, list] = {}
    for rec in lines:
        msg = json.loads(rec.get("raw", "{}"))
        if msg.get("table") != "orderBookL2":
            continue
        for r in msg["data"]:
            if r["symbol"] != instrument:
                continue
            if msg["action"] in ("partial", "insert"):
                levels[r["id"]] = [r["side"], r["price"], r["size"]]
            elif msg["action"] == "update":
                levels[r["id"]][2] = r["size"]
            else:
                del levels[r["id"]]
    bids = sorted(((p, float(s)) for side, p, s in levels.values() if side == "Buy"), reverse=True)
    asks = sorted((p, float(s)) for side, p, s in levels.values() if side == "Sell")
    return bids, asks


def book_lines(lines: list[dict], instrument: str, actions=("insert", "update", "delete")):
    out = []
    for i, r in enumerate(lines):
        raw = r.get("raw", "")
        if '"table":"orderBookL2"' not in raw or f'"symbol":"{instrument}"' not in raw:
            continue
        if json.loads(raw)["action"] in actions:
            out.append(i)
    return out


# -- the recording ------------------------------------------------------------------------------
@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_recording_replays_cleanly(instrument):
    lines = load_recording()
    pipe, market, crossed = replay(lines, instrument)
    assert pipe.parse_errors == 0 and market.stats.gaps == 0 and crossed == 0
    assert market.state.status is FeedStatus.LIVE
    assert market.book.top(100_000) == reference_book(lines, instrument)
    sync = pipe.sync
    assert len(sync.ids) == len(market.book.bids) + len(market.book.asks) == len(sync.at)


def test_recording_xbtusd_figures():
    lines = load_recording()
    pipe, market, _ = replay(lines, "XBTUSD")
    book = market.book
    assert (len(book.bids), len(book.asks)) == (5557, 3795)
    assert book.best_bid() == (32186.5, 1407700.0) and book.best_ask() == (32187.0, 36000.0)
    # the trade partial (one trade, 12 minutes old) is not live flow: 15 inserted trades count
    trades = list(market.trades)
    assert len(trades) == pipe.trades == 15
    sides = [t.side for t in trades]
    assert (sides.count(Side.BUY), sides.count(Side.SELL)) == (15, 0)  # a run of taker buys
    assert trades[0].price == 32180.5 and trades[0].size == 100.0
    assert trades[0].ts_exchange == pytest.approx(1626993371.685)
    assert trades[0].trade_id == "6e70bebe-235e-08a6-d11b-e1042bf1f2ed"


def test_recording_frames_skipped_on_purpose():
    lines = load_recording()
    adapter = BitmexAdapter("BTC-PERP")
    skipped = 0
    for rec in lines:
        raw = rec.get("raw", "")
        if '"table":"quote"' in raw or '"success":true' in raw or '"info":' in raw:
            assert adapter.parse("realtime", raw, rec["t"]) == []
            skipped += 1
    assert skipped == 93 + 30 + 1  # quote frames, one ack per topic, the welcome


def test_recording_with_one_delta_removed_is_a_gap():
    """Removing any insert or delete whose level the later rows still name breaks the book, and
    the sync says so. (A removed update only changes a size: nothing after it can tell.)"""
    lines = load_recording()
    inst = "SOLUSDT"
    later_ids: list[set[int]] = []
    cuts = book_lines(lines, inst, ("insert", "delete"))
    for i in cuts:
        ids = {r["id"] for r in json.loads(lines[i]["raw"])["data"] if r["symbol"] == inst}
        after = set()
        for j in book_lines(lines, inst)[::-1]:
            if j <= i:
                break
            after |= {r["id"] for r in json.loads(lines[j]["raw"])["data"] if r["symbol"] == inst}
        later_ids.append(ids & after)
    checked = 0
    for i, named in zip(cuts, later_ids, strict=True):
        if not named:
            continue
        pipe, market, _ = replay(lines[:i] + lines[i + 1 :], inst)
        assert pipe.parse_errors == 0
        assert market.stats.gaps >= 1, i
        assert market.state.status is FeedStatus.SYNCING and market.book.empty
        assert "level id" in market.state.reason or "crossed" in market.state.reason
        checked += 1
    assert checked >= 10


def test_recording_with_a_corrupted_delta_is_a_gap():
    lines = load_recording()
    (i, *_) = book_lines(lines, "XBTUSD", ("update",))
    msg = json.loads(lines[i]["raw"])
    msg["data"][0]["id"] += 7  # a level the book does not hold
    bad = [*lines[:i], {**lines[i], "raw": json.dumps(msg)}, *lines[i + 1 :]]
    pipe, market, _ = replay(bad, "XBTUSD")
    assert market.stats.gaps == 1 and market.state.status is FeedStatus.SYNCING
    assert "update of unknown level id" in market.state.reason and market.book.empty
    # a malformed row in our book frame: the frame is refused and the book is no longer trusted
    # a size beyond any real one (1e300 went into the book) or a side that is not a word (a
    # TypeError, counted as a bad frame but the book kept as LIVE with the row lost) too
    for field, value in (("size", "lots"), ("size", 1e300), ("side", ["Buy"]), ("price", 1e16)):
        msg = json.loads(lines[i]["raw"])
        msg["data"][0][field] = value
        bad = [*lines[:i], {**lines[i], "raw": json.dumps(msg)}, *lines[i + 1 :]]
        pipe, market, _ = replay(bad, "XBTUSD")
        assert pipe.parse_errors == 1 and market.stats.gaps == 1, (field, value)
        assert "unreadable book frame" in market.state.reason, (field, value)
    # a row naming no instrument (or not by name): ours garbled, not another's; it was skipped
    # and its level lost while the book read LIVE
    for value in (..., None, 7):
        msg = json.loads(lines[i]["raw"])
        if value is ...:
            del msg["data"][0]["symbol"]
        else:
            msg["data"][0]["symbol"] = value
        bad = [*lines[:i], {**lines[i], "raw": json.dumps(msg)}, *lines[i + 1 :]]
        pipe, market, _ = replay(bad, "XBTUSD")
        assert pipe.parse_errors == 1 and market.stats.gaps == 1, value
        assert "book row without a symbol" in market.state.reason, value


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: raw[: len(raw) // 2],  # cut short: not JSON
        lambda raw: raw.replace('"table":"orderBookL2",', "", 1),  # rows without their table
    ],
    ids=["cut", "no-table"],
)
def test_an_unreadable_frame_of_our_book_resyncs_at_once(damage):
    # no sequence numbers: the next frame would not show what the lost one changed, so the
    # book stops being LIVE on the damaged frame itself, not on some later row
    lines = load_recording()
    (i, *_) = book_lines(lines, "XBTUSD", ("insert",))
    bad = [*lines[:i], {**lines[i], "raw": damage(lines[i]["raw"])}]
    pipe, market, _ = replay(bad, "XBTUSD")
    assert pipe.parse_errors == 1 and market.stats.gaps == 1 and market.book.empty
    assert market.state.status is FeedStatus.SYNCING
    assert market.state.reason.startswith("unreadable book frame")
    # a damaged frame of the trade table or an ack is only counted
    (j, *_) = [
        k for k, r in enumerate(lines) if k > i and '"table":"trade","action":"insert"' in r.get("raw", "")
    ]
    pipe, market, _ = replay([*lines[:j], {**lines[j], "raw": lines[j]["raw"][:40]}], "XBTUSD")
    assert pipe.parse_errors == 1 and market.stats.gaps == 0 and market.live


# -- doc-example frames (fact sheet sections 3-6) -------------------------------------------------
WELCOME = (
    '{"info":"Welcome to the BitMEX Realtime API.","version":"2021-07-14T01:26:29.000Z",'
    '"timestamp":"2021-07-22T22:36:07.865Z","docs":"https://www.bitmex.com/app/wsAPI",'
    '"limit":{"remaining":39}}'
)
ACK = (
    '{"success":true,"subscribe":"orderBookL2:XBTUSD",'
    '"request":{"op":"subscribe","args":["orderBookL2:XBTUSD","trade:XBTUSD"]}}'
)
PARTIAL = (
    '{"table":"orderBookL2","action":"partial","keys":["symbol","id","side"],'
    '"types":{"symbol":"symbol","id":"long","side":"symbol","size":"long","price":"float"},'
    '"filter":{"symbol":"XBTUSD"},"data":['
    '{"symbol":"XBTUSD","id":8796765400,"side":"Sell","size":21200,"price":32346},'
    '{"symbol":"XBTUSD","id":8796766500,"side":"Sell","size":300,"price":32335},'
    '{"symbol":"XBTUSD","id":8796779950,"side":"Buy","size":5000,"price":32200.5},'
    '{"symbol":"XBTUSD","id":8799999950,"side":"Buy","size":2500,"price":0.5}]}'
)
OLD_UPDATE = (
    '{"table":"orderBookL2","action":"update",'
    '"data":[{"symbol":"XBTUSD","id":8796766500,"side":"Sell","size":100}]}'
)
OLD_DELETE = (
    '{"table":"orderBookL2","action":"delete",'
    '"data":[{"symbol":"XBTUSD","id":8796779950,"side":"Buy"}]}'
)
OLD_INSERT = (
    '{"table":"orderBookL2","action":"insert",'
    '"data":[{"symbol":"XBTUSD","id":8796780000,"side":"Buy","size":700,"price":32200}]}'
)
NEW_UPDATE = (
    '{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":8796765400,'
    '"side":"Sell","size":42800,"price":32346,"timestamp":"2023-05-19T08:51:44.911Z"}]}'
)
NEW_DELETE = (
    '{"table":"orderBookL2","action":"delete","data":[{"symbol":"XBTUSD","id":8796765400,'
    '"side":"Sell","size":0,"price":32346,"timestamp":"2023-05-19T08:51:45.911Z"}]}'
)
TRADE = (
    '{"table":"trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:11.685Z",'
    '"symbol":"XBTUSD","side":"Buy","size":100,"price":32180.5,"tickDirection":"PlusTick",'
    '"trdMatchID":"6e70bebe-235e-08a6-d11b-e1042bf1f2ed","grossValue":310747,'
    '"homeNotional":0.00310747,"foreignNotional":100,"trdType":"Regular"}]}'
)
ERROR = (
    '{"status":400,"error":"Unknown or expired symbol.","meta":{},'
    '"request":{"op":"subscribe","args":["orderBookL2:BTCUSD"]}}'
)


def make(symbol: str = "BTC-PERP"):
    ad = BitmexAdapter(symbol)
    market = Market(ad.default_instrument())
    return ad, market, FeedPipeline(ad, market)


def test_registry_symbols_stream_and_ping():
    assert get_adapter("bitmex") is BitmexAdapter
    assert [BitmexAdapter(s).native for s in ("BTC-PERP", "ETH-PERP", "SOL-PERP")] == [
        "XBTUSD", "ETHUSDT", "SOLUSDT"
    ]  # fmt: skip
    ad = BitmexAdapter("BTC-PERP")
    (s,) = ad.streams()
    assert s.url == "wss://ws.bitmex.com/realtime" and s.book and s.trades
    assert orjson.loads(s.subscribe[0]) == {
        "op": "subscribe", "args": ["orderBookL2:XBTUSD", "trade:XBTUSD"]
    }  # fmt: skip
    assert (s.ping_frame, s.ping_interval) == ("ping", 5.0) and s.stale_after == 10.0
    assert ad.resync_mode is ResyncMode.RESUBSCRIBE
    unsub, sub = (orjson.loads(f) for f in ad.resubscribe_frames("realtime"))
    assert unsub == {"op": "unsubscribe", "args": ["orderBookL2:XBTUSD"]}
    assert sub == {"op": "subscribe", "args": ["orderBookL2:XBTUSD"]}
    with pytest.raises(UnknownSymbol, match="BTC-PERP"):
        BitmexAdapter("XBT-PERP")
    assert BitmexAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9").streams()[0].url == (
        "ws://127.0.0.1:9/realtime"
    )
    assert BitmexAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9/realtime").rest_endpoint == (
        "http://127.0.0.1:9"
    )


def test_doc_frames_old_protocol():
    ad, market, pipe = make()
    assert ad.parse("realtime", WELCOME, 0.0) == [] and ad.parse("realtime", ACK, 0.0) == []
    assert ad.parse("realtime", "pong", 0.0) == [] and ad.parse("realtime", b"pong", 0.0) == []
    (snap,) = ad.parse("realtime", PARTIAL, 1.0)
    assert isinstance(snap, BitmexBookSnapshot) and snap.ts_exchange is None
    assert snap.asks == [(32346.0, 21200.0), (32335.0, 300.0)]
    assert snap.bids == [(32200.5, 5000.0), (0.5, 2500.0)]
    (d,) = ad.parse("realtime", OLD_UPDATE, 1.0)
    assert isinstance(d, BitmexBookDelta) and d.rows == [(1, 8796766500, False, None, 100.0)]
    pipe.on_frame("realtime", PARTIAL, 1.0)
    assert market.live and market.book.best_ask() == (32335.0, 300.0)
    for frame in (OLD_UPDATE, OLD_DELETE, OLD_INSERT):
        pipe.on_frame("realtime", frame, 1.1)
    assert market.book.best_ask() == (32335.0, 100.0)  # price from the id seen in the partial
    assert market.book.best_bid() == (32200.0, 700.0) and 32200.5 not in market.book.bids
    assert market.live and market.stats.gaps == 0 and pipe.parse_errors == 0


def test_doc_frames_new_protocol():
    ad, market, pipe = make()
    pipe.on_frame("realtime", PARTIAL, 1.0)
    (d,) = ad.parse("realtime", NEW_UPDATE, 2.0)
    assert d.rows == [(1, 8796765400, False, 32346.0, 42800.0)]
    assert d.ts_exchange == pytest.approx(1684486304.911) and d.ts_local == 2.0
    pipe.on_frame("realtime", NEW_UPDATE, 2.0)
    assert market.book.asks[32346.0] == 42800.0
    pipe.on_frame("realtime", NEW_DELETE, 2.1)  # a delete that also carries size and price
    assert 32346.0 not in market.book.asks and market.live
    (dd,) = ad.parse("realtime", NEW_DELETE, 2.1)
    assert dd.rows == [(2, 8796765400, False, 32346.0, 0.0)]
    assert dd.ts_exchange == pytest.approx(1684486305.911)
    assert 8796765400 not in pipe.sync.ids


def test_trade_taker_side_and_partial():
    ad = BitmexAdapter("BTC-PERP")
    (t,) = ad.parse("realtime", TRADE, 5.0)
    assert isinstance(t, Trade) and (t.price, t.size, t.side) == (32180.5, 100.0, Side.BUY)
    assert t.ts_exchange == pytest.approx(1626993371.685) and t.venue == "bitmex"
    assert ad.parse("realtime", TRADE.replace('"Buy"', '"Sell"'), 5.0)[0].side is Side.SELL
    assert ad.parse("realtime", TRADE.replace('"insert"', '"partial"'), 5.0) == []
    assert ad.parse("realtime", TRADE.replace("XBTUSD", "ETHUSD"), 5.0) == []
    for bad in ('"side":"Buy"', '"price":32180.5', '"timestamp":"2021-07-22T22:36:11.685Z"'):
        broken = {
            '"side":"Buy"': '"side":"Up"',
            '"price":32180.5': '"price":-1',
            '"timestamp":"2021-07-22T22:36:11.685Z"': '"timestamp":"yesterday"',
        }[bad]
        with pytest.raises(FrameError):
            ad.parse("realtime", TRADE.replace(bad, broken), 5.0)


def test_errors_other_tables_and_garbage():
    ad, market, pipe = make()
    (err,) = ad.parse("realtime", ERROR, 0.0)
    assert isinstance(err, VenueError) and err.fatal and "Unknown or expired symbol" in err.reason
    already = ERROR.replace(
        "Unknown or expired symbol.", "You are already subscribed to this topic"
    )
    assert not ad.parse("realtime", already, 0.0)[0].fatal
    limited = ERROR.replace('"status":400', '"status":429').replace(
        "Unknown or expired symbol.", "Rate limit exceeded, retry in 1 seconds."
    )
    assert not ad.parse("realtime", limited, 0.0)[0].fatal
    assert ad.parse("realtime", '{"table":"quote","action":"insert","data":[]}', 0.0) == []
    assert ad.parse("realtime", PARTIAL.replace("XBTUSD", "ETHUSD"), 0.0) == []
    assert ad.parse("realtime", OLD_UPDATE.replace("XBTUSD", "ETHUSD"), 0.0) == []
    for junk in ("[1,2]", "{}", '{"op":"pong"}', '{"x":', "null",
                 '{"table":"orderBookL2","action":"upsert","data":[]}',
                 '{"table":"orderBookL2","action":"update","data":{}}'):  # fmt: skip
        with pytest.raises(FrameError):
            ad.parse("realtime", junk, 0.0)
    for field, value in (("price", '"1"'), ("price", "0"), ("size", "-5"), ("id", '"x"'),
                         ("size", "1e999"), ("side", '"Up"')):  # fmt: skip
        row = {"symbol": "XBTUSD", "id": 1, "side": "Buy", "size": 1, "price": 10.0}
        frame = orjson.dumps({"table": "orderBookL2", "action": "insert", "data": [row]}).decode()
        frame = frame.replace(
            f'"{field}":{orjson.dumps(row[field]).decode()}', f'"{field}":{value}'
        )
        with pytest.raises(FrameError):
            ad.parse("realtime", frame, 0.0)
    # a refused subscription fails the market with the venue's reason
    acts = pipe.on_frame("realtime", ERROR, 0.0)
    assert [type(a) for a in acts] == [Fatal] and market.state.status is FeedStatus.FAILED


# -- sync rules ---------------------------------------------------------------------------------
def frame(action: str, *rows: tuple) -> str:
    data = []
    for row in rows:
        id_, side, price, size = (*row, None, None)[:4]
        r = {"symbol": "XBTUSD", "id": id_, "side": side}
        if price is not None:
            r["price"] = price
        if size is not None:
            r["size"] = size
        data.append(r)
    if action == "partial":
        body = {"table": "orderBookL2", "action": "partial", "filter": {"symbol": "XBTUSD"}}
        return orjson.dumps({**body, "data": data}).decode()
    return orjson.dumps({"table": "orderBookL2", "action": action, "data": data}).decode()


BOOK = frame("partial", (1, "Sell", 101.0, 10), (2, "Sell", 100.5, 20), (3, "Buy", 100.0, 30),
             (4, "Buy", 99.5, 40))  # fmt: skip


def synced():
    ad, market, pipe = make()
    pipe.on_frame("realtime", BOOK, 1.0)
    assert market.live
    return ad, market, pipe


@pytest.mark.parametrize(
    ("delta", "reason"),
    [
        (frame("update", (9, "Buy", None, 5)), "update of unknown level id 9"),
        (frame("delete", (9, "Buy")), "delete of unknown level id 9"),
        (frame("insert", (3, "Buy", 99.0, 5)), "insert of level id 3 already in the book"),
        (frame("insert", (9, "Buy", 100.0, 5)), "insert of a second level id at 100"),
        (frame("update", (3, "Sell", None, 5)), "level id 3 changed side or price"),
        (frame("update", (3, "Buy", 99.0, 5)), "level id 3 changed side or price"),
        (frame("update", (3, "Buy", None, 0)), "update of level id 3 to size 0"),
        (frame("insert", (9, "Buy", 100.5, 5)), "crossed"),
    ],
)
def test_inconsistent_rows_are_a_gap_and_a_new_partial_recovers(delta, reason):
    _, market, pipe = synced()
    acts = pipe.on_frame("realtime", delta, 1.1)
    assert [type(a) for a in acts] == [NeedResync]
    assert reason in market.state.reason and market.state.status is FeedStatus.SYNCING
    assert market.book.empty and market.stats.gaps == 1 and not pipe.sync.ids
    # rows in flight before the new partial are dropped; the partial rebuilds book and ids
    pipe.on_frame("realtime", frame("insert", (7, "Buy", 98.0, 1)), 1.2)
    assert market.book.empty
    pipe.on_frame("realtime", BOOK, 1.3)
    assert market.live and len(pipe.sync.ids) == 4
    pipe.on_frame("realtime", frame("update", (3, "Buy", None, 33)), 1.4)
    assert market.book.best_bid() == (100.0, 33.0) and market.live


def test_out_of_order_rows_are_a_gap():
    # a delete that arrives before the insert it removes
    _, market, pipe = synced()
    pipe.on_frame("realtime", frame("delete", (8, "Buy")), 1.1)
    assert not market.live and "unknown level id 8" in market.state.reason


def test_a_bad_row_after_good_ones_fails_the_whole_frame():
    # the sync writes each row as it checks it: the rows before the bad one must not survive
    _, market, pipe = synced()
    f = frame("update", (3, "Buy", None, 31), (1, "Sell", None, 11), (4, "Buy", None, 0))
    acts = pipe.on_frame("realtime", f, 1.1)
    assert [type(a) for a in acts] == [NeedResync]
    assert "update of level id 4 to size 0" in market.state.reason
    assert market.book.empty and not pipe.sync.ids and not pipe.sync.at
    f = frame("insert", (5, "Buy", 99.0, 1), (6, "Sell", 102.0, 1), (5, "Sell", 103.0, 1))
    pipe.on_frame("realtime", BOOK, 1.2)
    pipe.on_frame("realtime", f, 1.3)
    assert "insert of level id 5 already in the book" in market.state.reason
    assert market.book.empty and not pipe.sync.ids and market.stats.gaps == 2
    pipe.on_frame("realtime", BOOK, 1.4)
    assert market.live and market.book.best_bid() == (100.0, 30.0)
    assert dict(market.book.asks) == {100.5: 20.0, 101.0: 10.0} and len(pipe.sync.ids) == 4


def test_duplicate_frames():
    # a repeated update is harmless (absolute size); a repeated insert or delete is a gap
    _, market, pipe = synced()
    for _ in range(2):
        pipe.on_frame("realtime", frame("update", (4, "Buy", None, 44)), 1.1)
    assert market.live and market.book.bids[99.5] == 44.0
    ins = frame("insert", (5, "Buy", 99.0, 1))
    pipe.on_frame("realtime", ins, 1.2)
    assert market.live
    pipe.on_frame("realtime", ins, 1.3)
    assert not market.live and "already in the book" in market.state.reason


def test_rows_before_partial_are_ignored():
    _, market, pipe = make()
    pipe.on_frame("realtime", frame("insert", (9, "Buy", 100.7, 1)), 1.0)
    pipe.on_frame("realtime", frame("update", (3, "Buy", None, 1)), 1.0)
    assert not market.live and market.book.empty and market.stats.gaps == 0
    pipe.on_frame("realtime", BOOK, 1.1)
    assert market.live and dict(market.book.bids) == {100.0: 30.0, 99.5: 40.0}


def test_later_partial_replaces_book_and_ids():
    _, market, pipe = synced()
    pipe.on_frame("realtime", frame("partial", (20, "Sell", 91.0, 1), (21, "Buy", 90.0, 2)), 1.1)
    assert dict(market.book.bids) == {90.0: 2.0} and dict(market.book.asks) == {91.0: 1.0}
    assert set(pipe.sync.ids) == {20, 21}
    pipe.on_frame("realtime", frame("delete", (3, "Buy")), 1.2)  # an id of the old book
    assert not market.live and "unknown level id 3" in market.state.reason


def test_bad_partials_and_empty_book():
    _, market, pipe = make()
    pipe.on_frame("realtime", frame("partial", (1, "Sell", 101.0, 1), (1, "Buy", 100.0, 1)), 1.0)
    assert not market.live and "twice" in market.state.reason
    pipe.on_frame("realtime", frame("partial", (1, "Buy", 100.0, 1), (2, "Buy", 100.0, 1)), 1.0)
    assert not market.live and "two level ids" in market.state.reason
    # an empty partial is a valid (empty) book; rows then build it up
    pipe.on_frame("realtime", frame("partial"), 1.1)
    assert pipe.sync.synced and market.book.empty
    assert market.live and market.state.reason.startswith("empty book")  # saying why nothing shows
    pipe.on_frame("realtime", frame("insert", (1, "Buy", 100.0, 1), (2, "Sell", 101.0, 1)), 1.2)
    assert market.live and market.book.best_bid() == (100.0, 1.0)


def test_id_map_is_bounded(monkeypatch):
    from obview.venues.bitmex import BitmexSync

    monkeypatch.setattr(BitmexSync, "max_levels", 5)
    _, market, pipe = synced()
    pipe.on_frame("realtime", frame("insert", (5, "Buy", 99.0, 1)), 1.1)
    assert market.live
    pipe.on_frame("realtime", frame("insert", (6, "Buy", 98.0, 1)), 1.2)
    assert not market.live and "exceeds 5 levels" in market.state.reason


# -- instrument facts -----------------------------------------------------------------------------
def test_instrument_facts():
    xbt = BitmexAdapter("BTC-PERP")
    d = xbt.default_instrument()
    assert (d.size_unit, d.contract_value, d.lot, d.base, d.quote) == (
        "quote",
        1.0,
        100.0,
        "BTC",
        "USD",
    )
    assert d.to_base(50_000.0, 100.0) == pytest.approx(0.002)
    assert xbt.instrument_request().url == "https://www.bitmex.com/api/v1/instrument?symbol=XBTUSD"
    body = orjson.dumps([{"symbol": "XBTUSD", "underlying": "XBT", "quoteCurrency": "USD",
                          "lotSize": 100, "tickSize": 0.5, "multiplier": -100000000,
                          "underlyingToSettleMultiplier": -100000000, "isInverse": True}])  # fmt: skip
    inst = xbt.parse_instrument(body)
    assert (inst.tick, inst.lot, inst.size_unit, inst.contract_value) == (0.5, 100.0, "quote", 1.0)
    assert (inst.base, inst.quote) == ("BTC", "USD")
    ltc = BitmexAdapter("BTC-PERP", instrument="LTCUSDT")
    body = orjson.dumps([{"symbol": "LTCUSDT", "underlying": "LTC", "quoteCurrency": "USDT",
                          "lotSize": 1000, "tickSize": 0.01, "multiplier": 100,
                          "underlyingToPositionMultiplier": 10000, "isInverse": False}])  # fmt: skip
    inst = ltc.parse_instrument(body)
    assert (inst.size_unit, inst.contract_value, inst.lot) == ("contract", 1e-4, 1000.0)
    assert inst.to_base(100.0, 1000.0) == pytest.approx(0.1)
    with pytest.raises(FrameError, match="not listed"):
        xbt.parse_instrument(b"[]")
    with pytest.raises(FrameError, match="Not Found"):
        xbt.parse_instrument(b'{"error":{"message":"Not Found","name":"HTTPError"}}')
    assert BitmexAdapter("ETH-PERP").default_instrument().size_unit == "contract"


# -- the dialect on its own -------------------------------------------------------------------
def test_dialect_handshake_refusals_and_instruments():
    markets = {"BTC-PERP": SimMarket("BTC-PERP", seed=2, start_time=1_700_000_000.0)}
    d = BitmexDialect(markets, "/realtime?subscribe=trade:XBTUSD")
    welcome, ack, partial = d.on_connect()
    assert BitmexAdapter("BTC-PERP").parse("realtime", welcome.text, 0.0) == []
    assert orjson.loads(ack.text)["subscribe"] == "trade:XBTUSD" and d.trades == {"XBTUSD"}
    assert orjson.loads(partial.text)["action"] == "partial"
    assert orjson.loads(partial.text)["data"] == []  # nothing has traded yet
    # once it has: the partial holds the last trade, as the venue's does, and it is history
    m = markets["BTC-PERP"]
    while not m.recent_trades:
        m.step(m.ts + 0.05)
    _, _, partial = BitmexDialect(markets, "/realtime?subscribe=trade:XBTUSD").on_connect()
    (row,) = orjson.loads(partial.text)["data"]
    assert row["trdMatchID"].endswith(f"{m.recent_trades[-1].trade_id:012d}")
    assert BitmexAdapter("BTC-PERP").parse("realtime", partial.text, 0.0) == []
    (err,) = d.on_message('{"op":"subscribe","args":["orderBookL2:BTCUSD"]}')
    (ve,) = BitmexAdapter("BTC-PERP").parse("realtime", err.text, 0.0)
    assert ve.fatal and "Unknown or expired symbol" in ve.reason
    (err,) = d.on_message('{"op":"subscribe","args":["trade:XBTUSD"]}')
    assert not BitmexAdapter("BTC-PERP").parse("realtime", err.text, 0.0)[0].fatal
    assert [o.text for o in d.on_message("ping")] == ["pong"] and d.pings == 1
    ack, snap = d.on_message('{"op":"subscribe","args":["orderBookL2_25:XBTUSD"]}')
    rows = orjson.loads(snap.text)["data"]
    assert snap.kind == "snapshot" and len(rows) == 50
    assert all(r["size"] % 100 == 0 and r["size"] >= 100 for r in rows)
    status, body = BitmexDialect.http(markets, "/api/v1/instrument", {"symbol": "XBTUSD"}, b"")
    inst = BitmexAdapter("BTC-PERP").parse_instrument(body)
    assert status == 200 and inst.tick == markets["BTC-PERP"].tick and inst.size_unit == "quote"


# -- end to end: the simulator speaking the BitMEX dialect ------------------------------------------
def bitmex_client(server) -> BitmexDialect:
    (d,) = [c.dialect for c in server.clients if isinstance(c.dialect, BitmexDialect)]
    return d


async def assert_books_equal(server, market, native: str, symbol: str, table="orderBookL2") -> None:
    """Stop stepping, let the client apply what was sent, compare with the dialect and the sim."""
    rate = server.rate
    server.set_rate(0)
    try:
        await asyncio.sleep(0.3)
        sent = bitmex_client(server).books[(table, native)].levels
        bids, asks = market.book.top(100_000)
        assert bids == sorted(((p, s) for (b, p), (_, s) in sent.items() if b), reverse=True)
        assert asks == sorted((p, s) for (b, p), (_, s) in sent.items() if not b)
        depth = 25 if table == "orderBookL2_25" else 100_000
        sim_bids, sim_asks = server.markets[symbol].book.top(depth)
        assert [p for p, _ in bids] == [p for p, _ in sim_bids]
        assert [p for p, _ in asks] == [p for p, _ in sim_asks]
    finally:
        server.set_rate(rate)


async def drop_until_detected(server, market, attempts: int = 6) -> str:
    """Drop one book frame at a time until the feed notices (a dropped size-only update cannot
    be noticed); return the reason the feed gave, after it is LIVE again."""
    for _ in range(attempts):
        gaps = market.stats.gaps
        server.faults.drop_next("delta")
        try:
            await until(lambda gaps=gaps: market.stats.gaps > gaps, timeout=3)
        except TimeoutError:
            continue
        reason = next(
            s.reason for s in reversed(market.state_log) if s.status is FeedStatus.SYNCING
        )
        await until(lambda: market.live)
        return reason
    raise AssertionError("no dropped frame was ever noticed")


async def test_e2e_live_gap_heartbeat_and_reconnect():
    class FastPing(BitmexAdapter):
        ping_interval = 0.1

    async with asyncio.timeout(50):
        async with venue_feed(FastPing, "BTC-PERP", "/realtime", seed=31, rate=40) as feed:
            server, _ad, market, session = feed
            bad: list = []
            await until(lambda: market.live, market=market, bad=bad)
            await until(lambda: market.instrument.tick == 0.1 and market.instrument.lot == 100.0)
            assert market.instrument.size_unit == "quote"
            await until(lambda: len(market.trades) >= 2)
            assert all(t.size % 100 == 0 for t in market.trades)
            await assert_books_equal(server, market, "XBTUSD", "BTC-PERP")
            # heartbeats: our pings are answered with pong and the feed stays LIVE
            dialect = bitmex_client(server)
            await until(lambda: dialect.pings >= 5)
            assert market.live and session.pipeline.parse_errors == 0
            # a dropped frame: noticed, resubscribed on the same socket, LIVE and right again
            attempts = session.connect_attempts
            reason = await drop_until_detected(server, market)
            assert "level id" in reason or "crossed" in reason
            assert session.connect_attempts == attempts
            await assert_books_equal(server, market, "XBTUSD", "BTC-PERP")
            # every connection dropped: reconnect, new partial, LIVE again
            await server.kick()
            await until(lambda: session.connect_attempts > attempts and market.live)
            await assert_books_equal(server, market, "XBTUSD", "BTC-PERP")
            await until(lambda: True, market=market, bad=bad)
            assert bad == [] and session.pipeline.parse_errors == 0


async def test_e2e_legacy_protocol_and_linear_contracts():
    """The 2021 protocol (no price on update/delete rows) and a linear USDT perpetual."""

    class Legacy(BitmexDialect):
        legacy = True

    server = await start_server(seed=32, rate=40, symbols=["SOL-PERP"])
    try:
        async with asyncio.timeout(40):
            server.dialects["bitmex"] = Legacy
            ad = BitmexAdapter("SOL-PERP", endpoint=server.url("/realtime"))
            market = Market(ad.default_instrument())
            session = FeedSession(ad, market, options=fast_options())
            task = session.start()
            try:
                await until(lambda: market.live and market.instrument.tick == 0.001)
                inst = market.instrument
                assert (inst.size_unit, inst.contract_value, inst.lot) == ("contract", 1e-4, 1000.0)
                await asyncio.sleep(0.5)
                await assert_books_equal(server, market, "SOLUSDT", "SOL-PERP")
                sim_bids, _ = server.markets["SOL-PERP"].book.top(20)
                bids, _ = market.book.top(20)
                assert [inst.to_base(p, s) for p, s in bids] == [
                    pytest.approx(s) for _, s in sim_bids
                ]
                reason = await drop_until_detected(server, market)
                assert "level id" in reason or "crossed" in reason
                await assert_books_equal(server, market, "SOLUSDT", "SOL-PERP")
                assert session.pipeline.parse_errors == 0
            finally:
                await session.stop()
                task.cancel()
    finally:
        await server.close()


async def test_e2e_top25_table():
    class Top25(BitmexAdapter):
        book_table = "orderBookL2_25"

    async with asyncio.timeout(40):
        async with venue_feed(Top25, "ETH-PERP", "/realtime", seed=33, rate=40) as feed:
            server, _ad, market, session = feed
            await until(lambda: market.live)
            await asyncio.sleep(1.0)
            await assert_books_equal(server, market, "ETHUSDT", "ETH-PERP", "orderBookL2_25")
            assert len(market.book.bids) == len(market.book.asks) == 25
            assert session.pipeline.parse_errors == 0 and market.stats.gaps == 0


def test_snapshot_event_types():
    ad = BitmexAdapter("BTC-PERP")
    (snap,) = ad.parse("realtime", BOOK, 0.0)
    assert isinstance(snap, BookSnapshot) and [r[0] for r in snap.rows] == [1, 2, 3, 4]


@pytest.mark.parametrize("legacy", [False, True])
def test_dialect_rows_of_each_protocol(legacy):
    class D(BitmexDialect):
        pass

    D.legacy = legacy
    m = SimMarket("BTC-PERP", seed=4, start_time=1_700_000_000.0)
    d = D({"BTC-PERP": m}, "/realtime")
    _, partial = d.on_message('{"op":"subscribe","args":["orderBookL2:XBTUSD"]}')
    first = orjson.loads(partial.text)["data"][0]
    if legacy:  # ids encode the price: 1e8 * 88 - price / 0.01
        assert first["id"] == 88 * 10**8 - round(first["price"] / 0.01)
    seen: dict[str, dict] = {}
    for k in range(200):
        for out in d.on_update(m.step(1_700_000_000.0 + 0.05 * (k + 1))):
            msg = orjson.loads(out.text)
            if msg["table"] == "orderBookL2":
                assert out.kind == "delta"
                seen.setdefault(msg["action"], msg["data"][0])
    assert set(seen) == {"insert", "update", "delete"}
    assert "price" in seen["insert"] and "size" not in seen["delete"]
    for action in ("update", "delete"):
        assert ("price" in seen[action]) is not legacy
        assert ("timestamp" in seen[action]) is not legacy
