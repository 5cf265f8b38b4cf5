"""Deribit adapter: doc examples, the real 2021 recording, and the change_id sync rules.

The recording (../shared/recordings/deribit.jsonl) holds ten BTC/ETH options on the `.raw`
channels (public before 2022) and no trades; the perpetuals' `100ms` channels have the same
message shapes, so the recording is replayed per option through the `instrument=` override.
Perpetual and trade frames below follow the fact sheet's doc/client examples.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import pytest

from e2e import until, venue_feed
from obview.feed.pipeline import Fatal, FeedPipeline, NeedResync, Send
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus, Side
from obview.venues.base import FrameError, Reply, ResyncMode, VenueError
from obview.venues.deribit import DeribitAdapter
from obview.venues.registry import get_adapter

RECORDING = Path(__file__).resolve().parents[2] / "shared" / "recordings" / "deribit.jsonl"


def load_recording() -> list[dict]:
    if not RECORDING.exists():
        pytest.skip("recording not available")
    return [json.loads(line) for line in RECORDING.read_text().splitlines() if line.strip()]


def recorded_instruments() -> list[str]:
    if not RECORDING.exists():
        return []
    names = set()
    for line in RECORDING.read_text().splitlines():
        rec = json.loads(line)
        if "raw" in rec:
            msg = json.loads(rec["raw"])
            if msg.get("method") == "subscription" and msg["params"]["channel"].startswith("book."):
                names.add(msg["params"]["channel"].split(".")[1])
    return sorted(names)


def replay(lines: list[dict], instrument: str):
    adapter = DeribitAdapter("BTC-PERP", instrument=instrument)
    market = Market(adapter.default_instrument())
    pipe = FeedPipeline(adapter, market)
    crossed = 0
    for rec in lines:
        if "raw" in rec:
            pipe.on_frame("ws", rec["raw"], rec["t"])
            crossed += market.book.is_crossed()
    return pipe, market, crossed


def reference_book(lines: list[dict], instrument: str):
    """Independent rebuild from the raw frames (no adapter code involved)."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for rec in lines:
        msg = json.loads(rec.get("raw", "{}"))
        if msg.get("method") != "subscription":
            continue
        if msg["params"]["channel"] != f"book.{instrument}.raw":
            continue
        d = msg["params"]["data"]
        if d["type"] == "snapshot":
            bids.clear()
            asks.clear()
        for side, rows in ((bids, d["bids"]), (asks, d["asks"])):
            for action, price, amount in rows:
                if action == "delete":
                    side.pop(price, None)
                else:
                    side[price] = amount
    return sorted(bids.items(), reverse=True), sorted(asks.items())


def change_lines(lines: list[dict], instrument: str) -> list[int]:
    return [
        i
        for i, r in enumerate(lines)
        if "raw" in r
        and f'"channel":"book.{instrument}.raw"' in r["raw"]
        and '"type":"change"' in r["raw"]
    ]


# -- the recording ------------------------------------------------------------------------------


def test_recording_has_ten_option_books():
    assert len(recorded_instruments()) == 10


@pytest.mark.parametrize("instrument", recorded_instruments())
def test_recording_replays_cleanly(instrument):
    lines = load_recording()
    pipe, market, crossed = replay(lines, instrument)
    assert pipe.parse_errors == 0
    assert market.stats.gaps == 0 and market.stats.checksum_errors == 0
    assert crossed == 0
    assert market.state.status is FeedStatus.LIVE
    bids, asks = market.book.top(10_000)
    assert (bids, asks) == reference_book(lines, instrument)
    # every change was chained to the one before it
    assert pipe.sync.last_seq is not None


def test_recording_chain_links_are_checked():
    lines = load_recording()
    inst = "BTC-24SEP21-8000-P"
    changes = change_lines(lines, inst)
    assert len(changes) == 30
    pipe, market, _ = replay(lines, inst)
    last = json.loads(lines[changes[-1]]["raw"])["params"]["data"]["change_id"]
    assert pipe.sync.last_seq == last
    assert market.book.best_ask() == (0.0015, 94.7)


def test_recording_frames_skipped_on_purpose():
    lines = load_recording()
    adapter = DeribitAdapter("BTC-PERP", instrument="BTC-24SEP21-8000-P")
    skipped = 0
    for rec in lines:
        raw = rec.get("raw", "")
        if '"channel":"ticker.' in raw or '"result"' in raw:
            assert adapter.parse("ws", raw, rec["t"]) == []
            skipped += 1
    assert skipped == 89 + 1  # ticker notifications and the subscribe reply


@pytest.mark.parametrize("instrument", ["BTC-24SEP21-8000-P", "BTC-31DEC21-34000-P"])
def test_recording_with_one_change_removed_is_a_gap(instrument):
    lines = load_recording()
    changes = change_lines(lines, instrument)
    for i in changes:
        cut = lines[:i] + lines[i + 1 :]
        pipe, market, _ = replay(cut, instrument)
        assert pipe.parse_errors == 0
        if i == changes[-1]:
            # nothing follows the last change: the book is right as of the last message
            assert market.book.top(10_000) == reference_book(cut, instrument)
            continue
        assert market.stats.gaps == 1, i
        assert market.state.status is FeedStatus.SYNCING
        assert "seq gap" in market.state.reason
        assert market.book.empty


# -- parsing units ------------------------------------------------------------------------------


def note(channel: str, data) -> str:
    return orjson.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
    ).decode()


def book(kind, bids, asks, change_id, prev=None, inst="BTC-PERPETUAL", ts=1700000000500):
    d = {
        "type": kind,
        "timestamp": ts,
        "instrument_name": inst,
        "change_id": change_id,
        "bids": bids,
        "asks": asks,
    }
    if prev is not None:
        d["prev_change_id"] = prev
    return note(f"book.{inst}.100ms", d)


def test_symbols_streams_and_frames():
    assert get_adapter("deribit") is DeribitAdapter
    assert DeribitAdapter.symbols == {
        "BTC-PERP": "BTC-PERPETUAL",
        "ETH-PERP": "ETH-PERPETUAL",
        "SOL-PERP": "SOL_USDC-PERPETUAL",
    }
    a = DeribitAdapter("BTC-PERP")
    (spec,) = a.streams()
    assert spec.url == "wss://www.deribit.com/ws/api/v2"
    hb, sub = (json.loads(f) for f in spec.subscribe)
    assert hb["method"] == "public/set_heartbeat" and hb["params"]["interval"] >= 10
    # a quiet book's socket still hears a heartbeat well before it would be called STALE
    assert spec.stale_after >= 1.5 * hb["params"]["interval"]
    assert sub["method"] == "public/subscribe" and sub["jsonrpc"] == "2.0"
    assert sub["params"]["channels"] == ["book.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.100ms"]
    assert a.resync_mode is ResyncMode.RESUBSCRIBE
    unsub, resub = (json.loads(f) for f in a.resubscribe_frames(spec.name))
    assert unsub["method"] == "public/unsubscribe" and unsub["params"]["channels"] == [
        "book.BTC-PERPETUAL.100ms"
    ]
    assert resub["method"] == "public/subscribe" and resub["params"]["channels"] == [
        "book.BTC-PERPETUAL.100ms"
    ]
    assert (
        DeribitAdapter("ETH-PERP", endpoint="ws://127.0.0.1:5").streams()[0].url
        == "ws://127.0.0.1:5/ws/api/v2"
    )
    assert (
        DeribitAdapter("ETH-PERP", endpoint="ws://h:5/ws/api/v2").streams()[0].url
        == "ws://h:5/ws/api/v2"
    )


def test_parse_doc_book_frames():
    a = DeribitAdapter("X", instrument="BTC_USDC-PERPETUAL")
    (snap,) = a.parse(
        "ws",
        book(
            "snapshot",
            [["new", 20977, 0.2]],
            [["new", 20980, 1.5]],
            1550724481,
            inst="BTC_USDC-PERPETUAL",
        ),
        5.0,
    )
    assert isinstance(snap, BookSnapshot) and snap.seq == 1550724481
    assert snap.ts_exchange == pytest.approx(1700000000.5) and snap.ts_local == 5.0
    # ccxt's example change (linear perp)
    raw = (
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC_USDC-PERPETUAL.100ms",'
        '"data":{"type":"change","timestamp":1655395168086,"prev_change_id":1550724481,'
        '"instrument_name":"BTC_USDC-PERPETUAL","change_id":1550724483,'
        '"bids":[["new",20977,0.109],["delete",20975,0]],"asks":[]}}}'
    )
    (d,) = a.parse("ws", raw, 5.0)
    assert isinstance(d, BookDelta)
    assert (d.bids, d.asks, d.seq, d.prev_seq) == (
        [(20977.0, 0.109), (20975.0, 0.0)],
        [],
        1550724483,
        1550724481,
    )
    assert a.parse("ws", book("change", [["new", 1, 1]], [], 9, 8, inst="ETH-PERPETUAL"), 5.0) == []
    with pytest.raises(FrameError):
        a.parse("ws", book("change", [["bogus", 1, 1]], [], 9, 8, inst="BTC_USDC-PERPETUAL"), 5.0)
    with pytest.raises(FrameError):
        a.parse("ws", "[1,2", 5.0)


def test_parse_trades_taker_side():
    a = DeribitAdapter("X", instrument="BTC_USDC-PERPETUAL")
    raw = (
        '{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC_USDC-PERPETUAL.100ms",'
        '"data":[{"trade_seq":501899,"trade_id":"USDC-2436803","timestamp":1655397355998,"tick_direction":2,'
        '"price":21026,"mark_price":21019.9719,"instrument_name":"BTC_USDC-PERPETUAL","index_price":21031.7847,'
        '"direction":"buy","amount":0.049},{"trade_seq":501900,"trade_id":"USDC-2436804","timestamp":1655397356000,'
        '"price":21025,"instrument_name":"BTC_USDC-PERPETUAL","direction":"sell","amount":0.5}]}}'
    )
    t1, t2 = a.parse("ws", raw, 1.0)
    assert (t1.price, t1.size, t1.side, t1.trade_id) == (21026.0, 0.049, Side.BUY, "USDC-2436803")
    assert t1.ts_exchange == pytest.approx(1655397355.998)
    assert t2.side is Side.SELL


def test_heartbeat_and_test_request():
    a = DeribitAdapter("BTC-PERP")
    assert (
        a.parse("ws", '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', 1)
        == []
    )
    (r,) = a.parse(
        "ws", '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}', 1
    )
    assert isinstance(r, Reply) and r.stream == "ws"
    msg = json.loads(r.frame)
    assert msg["method"] == "public/test" and msg["jsonrpc"] == "2.0" and isinstance(msg["id"], int)
    m = Market(a.default_instrument())
    pipe = FeedPipeline(a, m)
    (send,) = pipe.on_frame(
        "ws", '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}', 1
    )
    assert isinstance(send, Send) and json.loads(send.frame)["method"] == "public/test"
    assert json.loads(send.frame)["id"] != msg["id"]
    assert a.parse("ws", '{"jsonrpc":"2.0","id":1,"result":"ok"}', 1) == []


def test_rpc_errors_and_refused_subscription():
    a = DeribitAdapter("BTC-PERP")
    (e,) = a.parse(
        "ws",
        '{"jsonrpc":"2.0","id":2,"error":{"message":"raw_subscriptions_not_available_for_unauthorized","code":13778}}',
        1,
    )
    assert isinstance(e, VenueError) and e.fatal and "13778" in e.reason
    (e,) = a.parse(
        "ws", '{"jsonrpc":"2.0","id":2,"error":{"message":"too_many_requests","code":10028}}', 1
    )
    assert not e.fatal
    ok = '{"jsonrpc":"2.0","id":2,"result":["trades.BTC-PERPETUAL.100ms","book.BTC-PERPETUAL.100ms"],"usIn":1,"usOut":2,"usDiff":1,"testnet":false}'
    assert a.parse("ws", ok, 1) == []
    m = Market(a.default_instrument())
    pipe = FeedPipeline(a, m)
    actions = pipe.on_frame("ws", '{"jsonrpc":"2.0","id":2,"result":[]}', 1)
    assert [type(x) for x in actions] == [Fatal] and m.state.status is FeedStatus.FAILED


@pytest.mark.parametrize(
    "frame",
    ['{"foo":1}', '{"jsonrpc":"2.0","method":"weird"}', '{"type":"error","reason":"unknown op"}'],
)
def test_a_frame_of_no_known_shape_is_counted_and_said(frame):
    # it was dropped unseen: a server answering in another protocol left the book SYNCING with
    # no bad frame counted and no reason
    a = DeribitAdapter("BTC-PERP")
    m = Market(a.default_instrument())
    pipe = FeedPipeline(a, m)
    pipe.on_frame("ws", frame, 1)
    assert m.stats.bad_frames == 1 and m.stats.last_error, m.stats


def test_instrument_facts():
    btc = DeribitAdapter("BTC-PERP").default_instrument()
    assert (btc.size_unit, btc.contract_value, btc.tick, btc.lot) == ("quote", 1.0, 0.5, 10.0)
    assert btc.to_base(50_000.0, 100_000.0) == pytest.approx(2.0)  # 100k USD at 50k = 2 BTC
    assert btc.to_quote(50_000.0, 100_000.0) == pytest.approx(100_000.0)
    sol = DeribitAdapter("SOL-PERP").default_instrument()
    assert (sol.size_unit, sol.base, sol.quote) == ("base", "SOL", "USDC")
    req = DeribitAdapter("BTC-PERP", rest_endpoint="http://127.0.0.1:7").instrument_request()
    assert (
        req.url == "http://127.0.0.1:7/api/v2/public/get_instrument?instrument_name=BTC-PERPETUAL"
    )
    body = orjson.dumps(
        {
            "jsonrpc": "2.0",
            "result": {
                "tick_size": 0.5, "contract_size": 10, "min_trade_amount": 10, "kind": "future",
                "instrument_type": "reversed", "future_type": "reversed", "settlement_period": "perpetual",
                "base_currency": "BTC", "quote_currency": "USD", "counter_currency": "USD",
                "settlement_currency": "BTC", "instrument_name": "BTC-PERPETUAL", "is_active": True,
            },
        }
    )  # fmt: skip
    inst = DeribitAdapter("BTC-PERP").parse_instrument(body)
    assert (inst.tick, inst.lot, inst.size_unit, inst.contract_value) == (0.5, 10.0, "quote", 1.0)
    lin = DeribitAdapter("SOL-PERP").parse_instrument(
        b'{"jsonrpc":"2.0","result":{"tick_size":0.01,"contract_size":1,"min_trade_amount":0.1,'
        b'"kind":"future","instrument_type":"linear","base_currency":"SOL","counter_currency":"USDC",'
        b'"quote_currency":"USDC","instrument_name":"SOL_USDC-PERPETUAL"}}'
    )
    assert (lin.tick, lin.lot, lin.size_unit, lin.base, lin.quote) == (
        0.01,
        0.1,
        "base",
        "SOL",
        "USDC",
    )
    with pytest.raises(FrameError):
        DeribitAdapter("BTC-PERP").parse_instrument(
            b'{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params"}}'
        )


# -- sync rules ---------------------------------------------------------------------------------


def make_pipe():
    a = DeribitAdapter("BTC-PERP")
    m = Market(a.default_instrument())
    return a, m, FeedPipeline(a, m)


def test_snapshot_changes_gap_and_resubscribe():
    a, m, pipe = make_pipe()
    pipe.on_frame(
        "ws",
        book("snapshot", [["new", 100.0, 500], ["new", 99.5, 20]], [["new", 100.5, 70]], 10),
        1,
    )
    assert m.state.status is FeedStatus.LIVE
    pipe.on_frame(
        "ws",
        book("change", [["change", 100.0, 300], ["delete", 99.5, 0]], [["new", 101.0, 10]], 13, 10),
        1,
    )
    assert m.book.top(5) == ([(100.0, 300.0)], [(100.5, 70.0), (101.0, 10.0)])
    actions = pipe.on_frame("ws", book("change", [["new", 99.0, 1]], [], 20, 17), 1)
    assert [type(x) for x in actions] == [NeedResync]
    assert m.state.status is FeedStatus.SYNCING and "17" in m.state.reason and m.stats.gaps == 1
    # a change of the old subscription, then the new snapshot: the old one is dropped
    pipe.on_frame("ws", book("change", [["new", 98.0, 1]], [], 22, 20), 1)
    pipe.on_frame("ws", book("snapshot", [["new", 100.0, 5]], [["new", 100.5, 6]], 30), 1)
    assert m.state.status is FeedStatus.LIVE
    assert m.book.top(5) == ([(100.0, 5.0)], [(100.5, 6.0)])
    pipe.on_frame("ws", book("change", [], [["delete", 100.5, 0], ["new", 101.5, 2]], 31, 30), 1)
    assert m.book.best_ask() == (101.5, 2.0) and m.state.status is FeedStatus.LIVE


def test_duplicate_change_is_ignored():
    a, m, pipe = make_pipe()
    pipe.on_frame("ws", book("snapshot", [["new", 100.0, 500]], [["new", 100.5, 70]], 10), 1)
    ch = book("change", [["change", 100.0, 10]], [], 11, 10)
    pipe.on_frame("ws", ch, 1)
    assert pipe.on_frame("ws", ch, 1) == []
    assert m.state.status is FeedStatus.LIVE and m.book.best_bid() == (100.0, 10.0)


@pytest.mark.parametrize("prev", ["missing", None, 9.5, True])
def test_a_change_without_an_integer_prev_change_id_is_refused_not_applied_unchecked(prev):
    # applied without its chain check, a change 10 -> 50 whose link was missing kept the book
    # LIVE with the 39 changes between them lost
    a, m, pipe = make_pipe()
    pipe.on_frame("ws", book("snapshot", [["new", 100.0, 10]], [["new", 101.0, 20]], 10), 1)
    frame = orjson.loads(book("change", [["new", 99.0, 1]], [], 50, 10))
    d = frame["params"]["data"]
    if prev == "missing":
        del d["prev_change_id"]
    else:
        d["prev_change_id"] = prev
    raw = orjson.dumps(frame)
    assert a.parse_fast("ws", raw, 1) is None  # the typed path leaves it to parse()
    with pytest.raises(FrameError, match="prev_change_id"):
        a.parse("ws", raw, 1)
    pipe.on_frame("ws", raw, 1)
    assert m.book.top(5) == ([(100.0, 10.0)], [(101.0, 20.0)]) and m.stats.bad_frames == 1
    # the next change links to 50, not to the book's 10: a gap, and a resync
    actions = pipe.on_frame("ws", book("change", [["new", 98.0, 1]], [], 51, 50), 1)
    assert [type(x) for x in actions] == [NeedResync] and m.state.status is FeedStatus.SYNCING


def test_new_snapshot_replaces_book():
    a, m, pipe = make_pipe()
    pipe.on_frame(
        "ws", book("snapshot", [["new", 100.0, 500], ["new", 99.0, 1]], [["new", 100.5, 70]], 10), 1
    )
    pipe.on_frame("ws", book("snapshot", [["new", 90.0, 5]], [["new", 91.0, 6]], 50), 1)
    assert m.book.top(5) == ([(90.0, 5.0)], [(91.0, 6.0)])


def test_crossed_book_is_a_gap():
    a, m, pipe = make_pipe()
    pipe.on_frame("ws", book("snapshot", [["new", 100.0, 500]], [["new", 100.5, 70]], 10), 1)
    actions = pipe.on_frame("ws", book("change", [["new", 101.0, 1]], [], 11, 10), 1)
    assert any(isinstance(x, NeedResync) for x in actions)
    assert "crossed" in m.state.reason and m.state.status is FeedStatus.SYNCING


def test_changes_before_first_snapshot_are_held_then_chained():
    a, m, pipe = make_pipe()
    pipe.on_frame("ws", book("change", [["new", 99.0, 1]], [], 9, 8), 1)  # older: dropped
    pipe.on_frame("ws", book("change", [["new", 98.0, 2]], [], 12, 10), 1)  # follows the snapshot
    assert m.state.status is not FeedStatus.LIVE
    pipe.on_frame("ws", book("snapshot", [["new", 100.0, 5]], [["new", 100.5, 6]], 10), 1)
    assert m.state.status is FeedStatus.LIVE
    assert m.book.top(5) == ([(100.0, 5.0), (98.0, 2.0)], [(100.5, 6.0)])


# -- end to end: the simulator speaking Deribit on 127.0.0.1 --------------------------------------


def deribit_client(server):
    clients = [c.dialect for c in server.clients if c.dialect.name == "deribit"]
    assert len(clients) == 1
    return clients[0]


async def assert_books_equal(server, session, market, instrument, symbol):
    """Hold the simulator still: the client's book is what the dialect sent, level for level
    the simulator's book with amounts in USD contracts."""
    # stop stepping but keep sending (pause() would also hold frames already queued)
    rate = server.rate
    server.set_rate(0)
    try:
        await asyncio.sleep(0.3)
        sent = deribit_client(server).books[instrument]
        assert session.pipeline.sync.last_seq == sent.change_id
        bids, asks = market.book.top(100_000)
        assert bids == sorted(sent.bids.items(), reverse=True)
        assert asks == sorted(sent.asks.items())
        sim_bids, sim_asks = server.markets[symbol].book.top(100_000)
        assert [p for p, _ in bids] == [pytest.approx(p) for p, _ in sim_bids]
        assert [p for p, _ in asks] == [pytest.approx(p) for p, _ in sim_asks]
        # amounts are USD, whole contracts of 10, and worth about the simulator's coins
        for (p, usd), (_, coins) in zip(bids[:20], sim_bids[:20], strict=True):
            assert usd % 10 == 0 and usd >= 10
            assert abs(usd - coins * p) <= 5.0 or usd == 10
    finally:
        server.set_rate(rate)


async def test_e2e_live_gap_reconnect_and_heartbeat():
    feed = venue_feed(DeribitAdapter, "BTC-PERP", "/ws/api/v2", seed=21, rate=40)
    async with feed as (server, _adapter, market, session):
        assert market.instrument.tick == 0.5  # built-in default
        bad: list = []
        await until(lambda: market.live and market.instrument.tick == 0.1, market=market, bad=bad)
        inst = market.instrument
        assert (inst.size_unit, inst.contract_value, inst.lot) == ("quote", 1.0, 10.0)
        await until(lambda: len(market.trades) >= 2)
        assert market.trades[-1].size % 10 == 0 and market.trades[-1].venue == "deribit"
        await assert_books_equal(server, session, market, "BTC-PERPETUAL", "BTC-PERP")

        # heartbeats: the dialect's test_request must be answered with public/test
        dialect = deribit_client(server)
        assert dialect.heartbeat_interval is not None and dialect.heartbeat_interval >= 10
        dialect.heartbeat_interval = 1  # speed it up for the test
        await until(lambda: dialect.tests_answered >= 1, timeout=5)
        assert dialect.test_requests >= 1

        # a dropped change: seq gap -> SYNCING with the reason -> resubscribe -> LIVE
        resyncs = market.resyncs
        server.faults.drop_next("delta")
        await until(lambda: market.resyncs > resyncs and market.live, market=market, bad=bad)
        assert any(
            s.status is FeedStatus.SYNCING and s.reason.startswith("seq gap")
            for s in market.state_log
        )
        await assert_books_equal(server, session, market, "BTC-PERPETUAL", "BTC-PERP")

        # duplicated frames are ignored, the book stays LIVE and right
        resyncs = market.resyncs
        server.faults.duplicate_next("delta", 3)
        await asyncio.sleep(0.3)
        assert market.resyncs == resyncs and market.live

        # every connection dropped: reconnect, new snapshot, LIVE again
        connects = session.connect_attempts
        await server.kick()
        await until(
            lambda: session.connect_attempts > connects and market.live, market=market, bad=bad
        )
        await assert_books_equal(server, session, market, "BTC-PERPETUAL", "BTC-PERP")
        assert bad == []


async def test_e2e_linear_sol_amounts_in_coins():
    feed = venue_feed(DeribitAdapter, "SOL-PERP", "/ws/api/v2", seed=22, rate=40)
    async with feed as (server, _adapter, market, session):
        await until(lambda: market.live and market.instrument.tick == 0.001)
        assert market.instrument.size_unit == "base"
        server.set_rate(0)
        await asyncio.sleep(0.3)
        sim = server.markets["SOL-PERP"]
        bids, asks = market.book.top(50)
        sim_bids, sim_asks = sim.book.top(50)
        assert bids == [(pytest.approx(p), pytest.approx(s)) for p, s in sim_bids]
        assert asks == [(pytest.approx(p), pytest.approx(s)) for p, s in sim_asks]


def test_dialect_refuses_raw_and_leaves_out_unknown_instruments():
    from obview.sim.dialects.deribit import DeribitDialect
    from obview.sim.engine import SimMarket

    markets = {"BTC-PERP": SimMarket("BTC-PERP", seed=2, start_time=1000.0)}
    d = DeribitDialect(markets, "/ws/api/v2")
    (err,) = d.on_message(
        '{"jsonrpc":"2.0","id":7,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.raw"]}}'
    )
    assert json.loads(err.text)["error"]["code"] == 13778
    (res,) = d.on_message(
        '{"jsonrpc":"2.0","id":8,"method":"public/subscribe","params":{"channels":["book.NOPE-PERPETUAL.100ms"]}}'
    )
    assert json.loads(res.text)["result"] == []
    res, snap = d.on_message(
        '{"jsonrpc":"2.0","id":9,"method":"public/subscribe","params":{"channels":["book.BTC-PERPETUAL.100ms"]}}'
    )
    assert json.loads(res.text)["result"] == ["book.BTC-PERPETUAL.100ms"]
    data = json.loads(snap.text)["params"]["data"]
    assert data["type"] == "snapshot" and "prev_change_id" not in data
    assert all(row[0] == "new" for row in data["bids"] + data["asks"])
    (hb,) = d.on_message(
        '{"jsonrpc":"2.0","id":10,"method":"public/set_heartbeat","params":{"interval":5}}'
    )
    assert "error" in json.loads(hb.text)  # below the minimum of 10 s
