"""BitMEX fast path (typed decoder) against the slow path, frame by frame and book by book.

The recording (../shared/recordings/bitmex.jsonl, 2021) speaks the old protocol: update and
delete rows carry no price and no row has a timestamp. The simulator speaks today's protocol
(``price`` and ``timestamp`` on every row) and, with ``legacy``, the 2021 one.

BitMEX book deltas carry rows, not levels: the pipeline's number check sees no levels in them,
and a book frame ``parse`` refuses is a ``BookFrameError`` (a resync at once). So the check here
is stricter than ``fastpath.check``: wherever ``parse`` refuses a frame, the fast path must
return None and leave the refusal to it.
"""

from __future__ import annotations

import random

import orjson
import pytest

from fastpath import (
    BAD,
    assert_same,
    mutations,
    pipeline_run,
    recorded_frames,
    reference,
    sim_frames,
)
from obview.model import FeedStatus, Side, Trade
from obview.sim.dialects.bitmex import BitmexDialect
from obview.venues.bitmex import BitmexAdapter, BitmexBookDelta

STREAM = "realtime"
INSTRUMENTS = ["ADAUSDT", "BCHUSD", "EOSUSDT", "MATICUSDT", "SOLUSDT", "TRXU21", "TRXUSDT",
               "UNIUSDT", "XBTUSD", "XRPU21"]  # fmt: skip
TS = "2023-05-19T08:51:44.911Z"


class SlowBitmexAdapter(BitmexAdapter):
    def parse_fast(self, stream, frame, ts_local):
        return None  # always parse()


def make(cls=BitmexAdapter, symbol: str = "BTC-PERP", instrument: str | None = None):
    return cls(symbol, endpoint="ws://127.0.0.1:9", instrument=instrument)


def check(adapter: BitmexAdapter, frame: str | bytes) -> bool:
    """The fast path gives what parse() gives, or None; None wherever parse() refuses the frame.
    True if the fast path took the frame."""
    fast = adapter.parse_fast(STREAM, frame, 0.0)
    if fast is None:
        return False
    ref = reference(adapter, STREAM, frame)
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    assert ref is not BAD, f"fast path took a frame parse() refuses: {text[:300]}"
    assert fast == ref, f"fast and slow paths differ on: {text[:300]}"
    return True


def check_all(adapter: BitmexAdapter, frames: list[str], seed: int = 1) -> int:
    """``check`` every frame, its bytes form and its mutations; how many originals it took."""
    rng = random.Random(seed)
    handled = 0
    for f in frames:
        handled += check(adapter, f)
        assert check(adapter, f.encode()) == (adapter.parse_fast(STREAM, f, 0.0) is not None)
        for m in mutations(f, rng):
            check(adapter, m)
    return handled


def hot(frames: list[str]) -> list[str]:
    """Book insert/update/delete frames and trade inserts: the fast path's to take."""
    out = []
    for f in frames:
        msg = orjson.loads(f) if f.startswith("{") else None
        if not isinstance(msg, dict):
            continue
        table, action = msg.get("table"), msg.get("action")
        if (table, action) == ("trade", "insert") or (
            table == "orderBookL2" and action in ("insert", "update", "delete")
        ):
            out.append(f)
    return out


# -- frame by frame -----------------------------------------------------------------------------
@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_fast_path_agrees_on_the_recording(instrument):
    frames = recorded_frames("bitmex.jsonl")
    if not frames:
        pytest.skip("recording not available")
    adapter = make(instrument=instrument)
    handled = check_all(adapter, frames)
    # every book row frame and trade insert of any instrument takes the fast path (another
    # instrument's gives []); partials, quotes, acks and the welcome go to the slow one
    assert handled == len(hot(frames)) == 1969 + 7
    ours = [f for f in hot(frames) if f'"symbol":"{instrument}"' in f and '"orderBookL2"' in f]
    assert ours and all(adapter.parse_fast(STREAM, f, 0.0) for f in ours)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("symbol", ["BTC-PERP", "SOL-PERP"])
def test_fast_path_agrees_on_the_simulator_and_takes_every_row_and_trade_frame(
    monkeypatch, symbol, legacy
):
    monkeypatch.setattr(BitmexDialect, "legacy", legacy)
    frames = [f for stream, f in sim_frames("bitmex", symbol) if stream == STREAM]
    adapter = make(symbol=symbol)
    handled = check_all(adapter, frames)
    rows = [f for f in frames if '"table":"orderBookL2"' in f and '"partial"' not in f]
    trades = [f for f in frames if '"table":"trade","action":"insert"' in f]
    assert len(rows) > 200 and trades and handled == len(hot(frames))
    # both protocols: rows with and without price on update/delete, with and without timestamps
    updates = [orjson.loads(f)["data"][0] for f in rows if '"action":"update"' in f]
    assert all(("price" in r) is not legacy and ("timestamp" in r) is not legacy for r in updates)
    for f in rows:
        (ev,) = adapter.parse_fast(STREAM, f, 0.0)
        assert type(ev) is BitmexBookDelta and ev.rows
        assert (ev.ts_exchange is None) is legacy
    for f in trades:
        evs = adapter.parse_fast(STREAM, f, 0.0)
        assert evs and all(type(e) is Trade for e in evs)


# -- the same books, events and errors through the pipeline --------------------------------------
def run_pipeline(cls, instrument: str | None, frames: list[str], symbol: str = "BTC-PERP"):
    return pipeline_run(
        make(cls, symbol, instrument),
        STREAM,
        frames,
        lambda pipe: {"ids": dict(pipe.sync.ids), "at": dict(pipe.sync.at)},
    )


def assert_same_run(frames: list[str], instrument: str | None = None, symbol: str = "BTC-PERP"):
    return assert_same(
        run_pipeline(BitmexAdapter, instrument, frames, symbol),
        run_pipeline(SlowBitmexAdapter, instrument, frames, symbol),
    )


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_fast_and_slow_paths_build_the_same_books_from_the_recording(instrument):
    frames = recorded_frames("bitmex.jsonl")
    if not frames:
        pytest.skip("recording not available")
    run = assert_same_run(frames, instrument)
    assert run["state"][0] is FeedStatus.LIVE and run["gaps"] == 0 and run["synced"]
    assert run["bids"] and run["asks"] and len(run["ids"]) == len(run["bids"]) + len(run["asks"])
    if instrument in ("XBTUSD", "UNIUSDT"):
        assert run["trades"]


@pytest.mark.parametrize("legacy", [False, True])
def test_fast_and_slow_paths_build_the_same_books_from_the_simulator(monkeypatch, legacy):
    monkeypatch.setattr(BitmexDialect, "legacy", legacy)
    frames = [f for stream, f in sim_frames("bitmex") if stream == STREAM]
    run = assert_same_run(frames)
    assert run["state"][0] is FeedStatus.LIVE and run["gaps"] == 0 and len(run["trades"]) > 20


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_damaged_frames_give_the_same_errors_gaps_and_books(seed):
    # a tenth of the recording's frames with one number or value swapped for a hostile one: the
    # slow path counts them as bad frames, resyncs on our book's, and gaps on rows that no longer
    # fit; the fast path must lead the pipeline to exactly the same place, frame by frame
    frames = recorded_frames("bitmex.jsonl")
    if not frames:
        pytest.skip("recording not available")
    rng = random.Random(seed)
    damaged = [
        (mutations(f, rng, 1) or [f])[0] if '"XBTUSD"' in f and rng.random() < 0.1 else f
        for f in frames
    ]
    assert damaged != frames
    run = assert_same_run(damaged, "XBTUSD")
    assert run["parse_errors"] > 0 or run["gaps"] > 0


# -- odd, hostile and edge frames -----------------------------------------------------------------
def rows(action: str, *data: dict, table: str = "orderBookL2") -> str:
    return orjson.dumps({"table": table, "action": action, "data": list(data)}).decode()


def row(**kw) -> dict:
    r = {"symbol": "XBTUSD", "id": 8798309800, "side": "Buy", "size": 42800, "price": 26902.0,
         "timestamp": TS}  # fmt: skip
    for k, v in kw.items():
        if v is ...:
            del r[k]
        else:
            r[k] = v
    return r


def trade(**kw) -> dict:
    t = {"timestamp": TS, "symbol": "XBTUSD", "side": "Buy", "size": 100, "price": 26902.5,
         "tickDirection": "PlusTick", "trdMatchID": "6e70bebe-235e-08a6-d11b-e1042bf1f2ed",
         "grossValue": 310747, "homeNotional": 0.00310747, "foreignNotional": 100,
         "trdType": "Regular"}  # fmt: skip
    for k, v in kw.items():
        if v is ...:
            del t[k]
        else:
            t[k] = v
    return t


def trades(*ts: dict, action: str = "insert") -> str:
    return rows(action, *ts, table="trade")


TAKEN = [
    # the 2021 protocol: no price on update / delete rows, no timestamps
    rows("update", row(price=..., timestamp=...)),
    rows("delete", row(price=..., size=..., timestamp=...)),
    rows("insert", row(timestamp=...)),
    # today's: price and timestamp on every row; deletes that also carry a size
    rows("update", row()),
    rows("delete", row(size=...)),
    rows("delete", row(size=42800)),
    rows("delete", row(size=0)),
    # null where a price or timestamp may be missing reads as "not sent" on both paths
    rows("update", row(price=None)),
    rows("delete", row(price=None, timestamp=None)),
    # several rows, of several instruments; other fields and key orders
    rows("insert", row(), row(id=2, side="Sell", price=26903.5), row(symbol="ETHUSD", id=3)),
    rows("update", row(symbol="ETHUSD", price=...), row(id=5), row(id=6, timestamp="2023-05-19T08:51:45.000Z")),
    rows("update", row(symbol="ETHUSD")),
    rows("delete"),
    '{"data":[{"size":1,"side":"Sell","id":7,"symbol":"XBTUSD"}],"action":"update","table":"orderBookL2"}',
    rows("update", row(price=26902)),
    # today's rows carry the matching engine's time as well (every row had gone slow)
    rows("update", row(transactTime="2024-11-24T08:26:22.275Z")),
    rows("delete", row(transactTime="2024-11-24T08:26:22.275Z"), row(id=2, transactTime=None)),
    rows("insert", row(size=0)),  # parse() reads it; the sync calls it a gap
    rows("update", row()).replace("42800", "1e-400"),  # a size that underflows to 0 on both paths
    rows("update", row(price=1e-300, size=99999999999999.9)),
    rows("update", row(id=-(2**63))),
    rows("update", row(id=2**63 - 1)),
    # trades: ours, another instrument's, the partial (history), no trade id, a long one
    trades(trade(), trade(side="Sell", size=5, price=26902)),
    trades(trade(symbol="ETHUSD"), trade(symbol="ETHUSD", side="Sell")),
    trades(trade(trdType=..., tickDirection=None, homeNotional=None, grossValue=1.5)),
    trades(trade(trdMatchID=...)),
    trades(trade(trdMatchID="x" * 100)),
    trades(trade(), action="partial"),
    trades(),
]


@pytest.mark.parametrize("frame", TAKEN)
def test_fast_path_takes_both_protocols_and_agrees(frame):
    adapter = make()
    assert check(adapter, frame)
    assert check(adapter, frame.encode())


LEFT = [
    # numbers the book must never hold, in every field the fast path reads
    rows("insert", row(size=-1)),
    rows("update", row(size=-0.5)),
    rows("insert", row(price=0)),
    rows("insert", row(price=-26902.0)),
    rows("update", row(price=0)),
    rows("delete", row(price=-1, size=...)),
    rows("insert", row(size=1e15)),  # MAX_NUMBER: refused by the decoder, taken by parse()
    rows("update", row(price=1e15)),
    rows("insert", row()).replace("42800", "1e400"),
    rows("insert", row()).replace("42800", "9" * 400),
    rows("insert", row()).replace("42800", "NaN"),
    rows("insert", row()).replace("42800", "Infinity"),
    trades(trade(price=0)),
    trades(trade(size=-100)),
    trades(trade(price=1e15)),
    trades(trade()).replace("26902.5", "1e999"),
    # missing fields
    rows("insert", row(price=...)),
    rows("insert", row(size=...)),
    rows("update", row(size=...)),
    rows("update", row(size=None)),
    rows("update", row(id=...)),
    rows("update", row(side=...)),
    rows("update", row(symbol=...)),
    '{"table":"orderBookL2","data":[]}',
    '{"table":"orderBookL2","action":"update"}',
    '{"action":"update","data":[]}',
    trades(trade(price=...)),
    trades(trade(size=...)),
    trades(trade(side=...)),
    trades(trade(timestamp=...)),
    trades(trade(symbol=...)),
    # wrong types: numbers as strings (parse() refuses them), floats and bools for ids
    rows("update", row(size="42800")),
    rows("insert", row(price="26902.0")),
    rows("update", row(size=True)),
    rows("update", row(id="8798309800")),
    rows("update", row(id=8798309800.0)),
    rows("update", row(id=True)),
    rows("update", row(id=None)),
    rows("update", row(side="buy")),
    rows("update", row(side=None)),
    rows("update", row(side=["Buy"])),
    rows("update", row(symbol=5)),
    rows("update", row(timestamp=1684486304911)),
    rows("update", row(timestamp="soon")),
    rows("update", row(timestamp="2023-05-19T08:51:44.911+01:00")),
    rows("delete", row(size="abc")),  # parse() ignores a delete's size: the decoder does not
    trades(trade(price="26902.5")),
    trades(trade(side="buy")),
    trades(trade(timestamp=5)),
    trades(trade(timestamp="2023-05-19")),
    trades(trade(trdMatchID=None)),
    trades(trade(trdMatchID=12)),
    '{"table":"orderBookL2","action":5,"data":[]}',
    '{"table":"orderBookL2","action":"update","data":{}}',
    '{"table":"orderBookL2","action":"update","data":null}',
    '{"table":"orderBookL2","action":"update","data":[["XBTUSD",1,"Buy",5]]}',
    '{"table":"orderBookL2","action":"update","data":[null]}',
    '{"table":"trade","action":"insert","data":[5]}',
    '{"table":5,"action":"update","data":[]}',
    # ids beyond int64 (orjson reads them as integers up to 2**64 - 1, then as floats)
    rows("update", row(id=2**63)),
    rows("update", row()).replace("8798309800", str(-(2**63) - 1)),
    rows("update", row()).replace("8798309800", str(2**64)),
    # fields the decoder does not know: orjson reads their values, the decoder would skip them
    # unread (parse() refuses a number beyond a double even in a field no one reads)
    rows("update", row(extra={"a": [1, 2]})),
    rows("update", row(extra=1)).replace('"extra":1', '"extra":1e400'),
    trades(trade(homeNotional=1)).replace('"homeNotional":1', '"homeNotional":1e400'),
    trades(trade(grossValue=1)).replace('"grossValue":1', '"grossValue":' + "9" * 400),
    trades(trade(tickDirection=5)),
    trades(trade(newField="x")),
    rows("update", row())[:-1] + ',"filter":{"symbol":"XBTUSD"}}',
    trades(trade(), action="partial").replace('"data"', '"keys":[],"filter":{"symbol":"XBTUSD"},"data"'),
    rows("update", row(extra="x")).replace('"extra":"x"', '"extra":"\\ud800"'),
    # another instrument's rows are parse()'s to skip unread; the decoder reads them
    trades(trade(symbol="ETHUSD", price=-1)),
    rows("update", row(symbol="ETHUSD", size=-1)),
    # unknown or unhandled actions, tables and messages
    rows("bogus", row()),
    rows("partial", row()),
    rows("update", row(), table="orderBookL2_25"),
    rows("insert", row(), table="quote"),
    rows("update", row(), table="orderBook10"),
    '{"table":"orderBookL2","table":"trade","action":"insert","data":[]}',
    '{"table":"trade","action":"insert","data":[],"table":"orderBookL2"}',
    '{"info":"Welcome to the BitMEX Realtime API.","version":"2021-07-14T01:26:29.000Z"}',
    '{"success":true,"subscribe":"orderBookL2:XBTUSD","request":{"op":"subscribe","args":[]}}',
    '{"status":400,"error":"Unknown or expired symbol.","meta":{},"request":{"op":"subscribe"}}',
    "pong",
    "[]",
    "not json",
    rows("update", row())[:-5],  # cut short
    b'{"table":"orderBookL2","action":"update","data":[{"symbol":"XBT\xff","id":1,"side":"Buy","size":1}]}',
    b'{"table":"trade","action":"insert","data":[],"x":"\xff"}',
]


@pytest.mark.parametrize("frame", LEFT)
def test_fast_path_leaves_odd_and_hostile_frames_to_the_slow_path(frame):
    adapter = make()
    assert adapter.parse_fast(STREAM, frame, 0.0) is None
    assert not check(adapter, frame)


@pytest.mark.parametrize("frame", LEFT + TAKEN)
def test_odd_and_hostile_frames_on_a_synced_book_give_the_same_flags(frame):
    # after a partial holding the rows' ids: the same book, gaps, bad frames, resync requests
    partial = rows("partial", row(price=26902.0), row(id=2, price=26901.5), row(id=6, price=26901.0),
                   row(id=5, side="Sell", price=26910.0), row(id=7, side="Sell", price=26911.0))  # fmt: skip
    partial = partial.replace('"data"', '"filter":{"symbol":"XBTUSD"},"data"')
    text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    run = assert_same_run([partial, text, rows("update", row(size=7))])
    assert run["actions"][0] == []


def test_fast_path_skips_other_instruments_and_answers_for_our_rows_only():
    adapter = make()
    f = rows("update", row(symbol="ETHUSD", id=1), row(id=2, size=5, price=...), row(symbol="X", id=3))
    (ev,) = adapter.parse_fast(STREAM, f, 0.0)
    assert ev.rows == [(1, 2, True, None, 5.0)] and ev.ts_exchange == pytest.approx(1684486304.911)
    assert adapter.parse_fast(STREAM, rows("update", row(symbol="ETHUSD")), 0.0) == []
    (t,) = adapter.parse_fast(STREAM, trades(trade(symbol="ETHUSD"), trade(side="Sell")), 0.0)
    assert (t.side, t.price, t.size, t.trade_id) == (Side.SELL, 26902.5, 100.0, trade()["trdMatchID"])
    # the time of the frame is the last of our rows' (as parse() reads it)
    f = rows("update", row(timestamp="2023-05-19T08:51:45.000Z"), row(id=9), row(symbol="X", timestamp=None))
    assert adapter.parse_fast(STREAM, f, 0.0)[0].ts_exchange == pytest.approx(1684486304.911)


def test_top25_table():
    class Top25(BitmexAdapter):
        book_table = "orderBookL2_25"

    adapter = make(Top25)
    f = rows("update", row(), table="orderBookL2_25")
    assert check(adapter, f)
    assert adapter.parse_fast(STREAM, rows("update", row()), 0.0) is None
    assert adapter.parse(STREAM, rows("update", row()), 0.0) == []
    # the plain adapter's decoder is not the top-25 one's
    assert make().parse_fast(STREAM, f, 0.0) is None
