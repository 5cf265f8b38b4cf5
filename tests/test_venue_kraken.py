"""Kraken Futures adapter: the real 2021 recording, doc-example frames, the seq rules, instrument
facts, and the simulator's Kraken dialect end to end.

The recording (../shared/recordings/kraken_futures.jsonl) holds inverse perpetuals (PI_) and
fixed-maturity futures (FI_), no PF_ perpetual: today's v1 ``book`` / ``trade`` feeds have the
same shapes for every product, so each recorded product is replayed through the
``instrument=`` override. PF_ frames below follow the fact sheet's doc examples.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import pytest

from e2e import until, venue_feed
from obview.feed.pipeline import Fatal, FeedPipeline, NeedResync
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus, Side, Trade
from obview.venues import kraken as kraken_mod
from obview.venues.base import FrameError, ResyncMode, UnknownSymbol, VenueError
from obview.venues.kraken import KrakenAdapter, KrakenSync
from obview.venues.registry import get_adapter

RECORDING = Path(__file__).resolve().parents[2] / "shared" / "recordings" / "kraken_futures.jsonl"


def load_recording() -> list[dict]:
    if not RECORDING.exists():
        pytest.skip("recording not available")
    return [json.loads(line) for line in RECORDING.read_text().splitlines() if line.strip()]


def recorded_products() -> list[str]:
    if not RECORDING.exists():
        return []
    names = set()
    for line in RECORDING.read_text().splitlines():
        rec = json.loads(line)
        if '"book_snapshot"' in rec.get("raw", ""):
            names.add(json.loads(rec["raw"])["product_id"])
    return sorted(names)


def replay(lines: list[dict], product: str):
    """Every received frame through one adapter (lower-case id, as the recording subscribed);
    counts the moments a LIVE book was crossed or empty."""
    adapter = KrakenAdapter("X", instrument=product.lower())
    market = Market(adapter.default_instrument())
    pipe = FeedPipeline(adapter, market)
    bad = 0
    for rec in lines:
        if "raw" in rec:
            pipe.on_frame("public", rec["raw"], rec["t"])
            if market.live:
                bad += market.book.is_crossed() or market.book.empty
    return pipe, market, bad


def reference_book(lines: list[dict], product: str):
    """Independent rebuild from the raw frames (no adapter code involved)."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for rec in lines:
        msg = json.loads(rec.get("raw", "{}"))
        if msg.get("product_id") != product:
            continue
        if msg.get("feed") == "book_snapshot":
            bids = {lv["price"]: lv["qty"] for lv in msg["bids"] if lv["qty"] > 0}
            asks = {lv["price"]: lv["qty"] for lv in msg["asks"] if lv["qty"] > 0}
        elif msg.get("feed") == "book":
            side = bids if msg["side"] == "buy" else asks
            if msg["qty"] == 0:
                side.pop(msg["price"], None)
            else:
                side[msg["price"]] = msg["qty"]
    return sorted(bids.items(), reverse=True), sorted(asks.items())


def delta_lines(lines: list[dict], product: str) -> list[int]:
    return [
        i
        for i, r in enumerate(lines)
        if '"feed":"book"' in r.get("raw", "") and f'"product_id":"{product}"' in r["raw"]
    ]


# -- the recording ------------------------------------------------------------------------------


def test_recording_has_ten_books():
    assert len(recorded_products()) == 10


@pytest.mark.parametrize("product", recorded_products())
def test_recording_replays_cleanly(product):
    lines = load_recording()
    pipe, market, bad = replay(lines, product)
    assert pipe.parse_errors == 0
    assert market.stats.gaps == 0 and market.resyncs == 0
    assert bad == 0
    assert market.state.status is FeedStatus.LIVE
    assert market.book.top(100_000) == reference_book(lines, product)
    last = json.loads(lines[delta_lines(lines, product)[-1]]["raw"])["seq"]
    assert pipe.sync.last_seq == last


def test_recording_figures_of_pi_ethusd():
    lines = load_recording()
    pipe, market, _ = replay(lines, "PI_ETHUSD")
    assert market.book.best_bid() == (2002.05, 4387.0)
    assert market.book.best_ask() == (2003.05, 600.0)
    assert (len(market.book.bids), len(market.book.asks)) == (347, 305)
    assert pipe.sync.last_seq == 26664749
    # the one live print (the trade_snapshot history is not replayed into the tape)
    (t,) = market.trades
    assert (t.price, t.size, t.side) == (2005.2, 40.0, Side.BUY)
    assert t.trade_id == "a4cce96f-e061-46ef-9205-8cbe73bb4cdb"
    assert t.ts_exchange == pytest.approx(1626994936.490)
    assert market.instrument.size_unit == "quote"  # PI_: USD contracts


def test_recording_trades_counted_with_sides():
    lines = load_recording()
    sides: dict[str, list[Side]] = {}
    for product in recorded_products():
        _, market, _ = replay(lines, product)
        if market.trades:
            sides[product] = [t.side for t in market.trades]
    assert sides == {
        "FI_BCHUSD_210730": [Side.BUY],
        "PI_ETHUSD": [Side.BUY],
        "PI_LTCUSD": [Side.BUY],
    }


def test_recording_frames_skipped_on_purpose():
    lines = load_recording()
    adapter = KrakenAdapter("X", instrument="PI_ETHUSD")
    kinds: dict[str, int] = {}
    for rec in lines:
        raw = rec.get("raw")
        if raw is None:
            continue
        msg = json.loads(raw)
        kind = msg.get("feed") if "event" not in msg else f"event:{msg['event']}"
        events = adapter.parse("public", raw, rec["t"])
        if kind in ("ticker_lite", "trade_snapshot") or kind.startswith("event:"):
            assert events == []
            kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds == {
        "ticker_lite": 107,
        "trade_snapshot": 10,
        "event:info": 1,
        "event:subscribed": 30,
    }


@pytest.mark.parametrize("product", ["FI_BCHUSD_210730", "FI_XRPUSD_210924"])
def test_recording_with_one_delta_removed_is_a_gap(product):
    lines = load_recording()
    deltas = delta_lines(lines, product)
    assert 10 <= len(deltas) <= 40
    for i in deltas:
        cut = lines[:i] + lines[i + 1 :]
        pipe, market, bad = replay(cut, product)
        assert pipe.parse_errors == 0 and bad == 0
        if i == deltas[-1]:
            # nothing follows the last delta: the book is right as of the last message
            assert market.live and market.book.top(100_000) == reference_book(cut, product)
            continue
        assert market.stats.gaps == 1, i
        assert market.state.status is FeedStatus.SYNCING
        assert market.state.reason.startswith("seq gap")
        assert market.book.empty


def test_recording_with_one_delta_corrupted_is_a_gap():
    lines = load_recording()
    product = "PI_ETHUSD"
    i = delta_lines(lines, product)[100]
    corrupt = dict(lines[i])
    corrupt["raw"] = corrupt["raw"][: len(corrupt["raw"]) // 2]  # cut short on the wire
    pipe, market, bad = replay(lines[:i] + [corrupt] + lines[i + 1 :], product)
    assert pipe.parse_errors == 1 and bad == 0
    assert market.stats.gaps == 1 and market.state.status is FeedStatus.SYNCING
    assert "seq gap" in market.state.reason and market.book.empty
    # a side the adapter does not know is refused, never applied to either side
    wrong = dict(lines[i])
    wrong["raw"] = (
        wrong["raw"]
        .replace('"side":"buy"', '"side":"bid"')
        .replace('"side":"sell"', '"side":"ask"')
    )
    pipe, market, _ = replay(lines[:i] + [wrong] + lines[i + 1 :], product)
    assert pipe.parse_errors == 1 and market.stats.gaps == 1 and not market.live


# -- doc-example frames (fact sheet sections 3, 4 and 6) -----------------------------------------

DOC_SNAPSHOT = (
    '{"feed":"book_snapshot","product_id":"PI_ETHUSD","timestamp":1626994927674,"seq":26660859,'
    '"tickSize":null,"bids":[{"price":2003.9,"qty":2234.0},{"price":2003.3,"qty":35826.0}],'
    '"asks":[{"price":2004.6,"qty":600.0}]}'
)
DOC_DELTA = (
    '{"feed":"book","product_id":"PI_ETHUSD","side":"sell","seq":26660860,"price":2004.85,'
    '"qty":4787.0,"timestamp":1626994927744}'
)
DOC_TRADE = (
    '{"feed":"trade","product_id":"PI_LTCUSD","uid":"e2429e31-8b9d-4195-900e-fd42be2dec89",'
    '"side":"buy","type":"fill","seq":5956,"time":1626994929946,"qty":320.0,"price":119.44}'
)
DOC_HEARTBEAT = '{"feed":"heartbeat","time":1534262350627}'


def test_parse_doc_snapshot_and_delta():
    ad = KrakenAdapter("X", instrument="PI_ETHUSD")
    (snap,) = ad.parse("public", DOC_SNAPSHOT, 5.0)
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == [(2003.9, 2234.0), (2003.3, 35826.0)] and snap.asks == [(2004.6, 600.0)]
    assert snap.seq == 26660859 and snap.ts_local == 5.0
    assert snap.ts_exchange == pytest.approx(1626994927.674)
    (d,) = ad.parse("public", DOC_DELTA, 6.0)
    assert isinstance(d, BookDelta)
    assert (d.bids, d.asks, d.seq) == ([], [(2004.85, 4787.0)], 26660860)
    assert d.ts_exchange == pytest.approx(1626994927.744)
    (b,) = ad.parse("public", DOC_DELTA.replace('"sell"', '"buy"').replace("4787.0", "0"), 6.0)
    assert (b.bids, b.asks) == ([(2004.85, 0.0)], [])
    # the PF_ perpetual of the docs, ids matched whatever their case
    pf = KrakenAdapter("BTC-PERP")
    frame = DOC_DELTA.replace("PI_ETHUSD", "pf_xbtusd")
    assert pf.parse("public", frame, 1.0)[0].seq == 26660860
    assert pf.parse("public", DOC_DELTA, 1.0) == []  # another product


def test_parse_doc_trade_taker_side():
    ad = KrakenAdapter("X", instrument="PI_LTCUSD")
    (t,) = ad.parse("public", DOC_TRADE, 1.0)
    assert isinstance(t, Trade)
    assert (t.price, t.size, t.side) == (119.44, 320.0, Side.BUY)
    assert t.trade_id == "e2429e31-8b9d-4195-900e-fd42be2dec89"
    assert t.ts_exchange == pytest.approx(1626994929.946)
    (s,) = ad.parse("public", DOC_TRADE.replace('"side":"buy"', '"side":"sell"'), 1.0)
    assert s.side is Side.SELL
    liq = DOC_TRADE.replace('"type":"fill"', '"type":"liquidation"')
    (lt,) = ad.parse("public", liq, 1.0)
    assert (lt.price, lt.kind) == (119.44, "liq") and t.kind == s.kind == ""
    with pytest.raises(FrameError):
        ad.parse("public", DOC_TRADE.replace('"side":"buy"', '"side":"B"'), 1.0)


def test_heartbeat_info_acks_and_other_feeds():
    ad = KrakenAdapter("BTC-PERP")
    assert ad.parse("public", DOC_HEARTBEAT, 1.0) == []
    assert ad.heartbeats == 1 and ad.last_heartbeat == pytest.approx(1534262350.627)
    for frame in (
        '{"event":"info","version":1}',
        '{"event":"subscribed","feed":"book","product_ids":["PF_XBTUSD"]}',
        '{"event":"subscribed","feed":"heartbeat"}',
        '{"event":"unsubscribed","feed":"book","product_ids":["PF_XBTUSD"]}',
        '{"feed":"ticker_lite","product_id":"PF_XBTUSD","bid":1.0,"ask":2.0}',
        '{"feed":"trade_snapshot","product_id":"PF_XBTUSD","trades":[]}',
    ):
        assert ad.parse("public", frame, 1.0) == []


def test_venue_errors():
    ad = KrakenAdapter("BTC-PERP")
    (e,) = ad.parse("public", '{"event":"error","message":"Invalid product id"}', 1.0)
    assert isinstance(e, VenueError) and e.fatal and "Invalid product id" in e.reason
    (e,) = ad.parse("public", '{"event":"error","message":"Json Error"}', 1.0)
    assert not e.fatal
    failed = '{"event":"subscribed_failed","feed":"book","product_ids":["PF_XBTUSD"]}'
    (e,) = ad.parse("public", failed, 1.0)
    assert e.fatal and "subscribed_failed" in e.reason
    (e,) = ad.parse("public", failed.replace("PF_XBTUSD", "PF_ETHUSD"), 1.0)
    assert not e.fatal  # someone else's product
    (e,) = ad.parse("public", '{"event":"subscribed_failed","feed":"heartbeat"}', 1.0)
    assert not e.fatal
    (e,) = ad.parse("public", '{"event":"alert","message":"Bad websocket message"}', 1.0)
    assert not e.fatal
    # the pipeline fails the market with the venue's reason on a fatal one
    _, market, pipe = make()
    acts = pipe.on_frame("public", '{"event":"error","message":"Invalid product id"}', 0.0)
    assert [type(a) for a in acts] == [Fatal] and market.state.status is FeedStatus.FAILED


@pytest.mark.parametrize(
    "frame",
    [
        "[1,2]",
        '{"feed":"book"',
        '{"hello":1}',
        '{"feed":"book","product_id":"PF_XBTUSD","side":"sell","seq":"7","price":1.0,"qty":1.0}',
        '{"feed":"book","product_id":"PF_XBTUSD","side":"sell","seq":7.0,"price":1.0,"qty":1.0}',
        '{"feed":"book","product_id":"PF_XBTUSD","side":"sell","price":1.0,"qty":1.0}',
        '{"feed":"book","product_id":"PF_XBTUSD","side":"sell","seq":7,"price":true,"qty":1.0}',
        '{"feed":"book","product_id":"PF_XBTUSD","side":"sell","seq":7,"price":1.0,"qty":"x"}',
        '{"feed":"book","product_id":"PF_XBTUSD","side":null,"seq":7,"price":1.0,"qty":1.0}',
        '{"feed":"book_snapshot","product_id":"PF_XBTUSD","seq":1,"bids":{},"asks":[]}',
        '{"feed":"book_snapshot","product_id":"PF_XBTUSD","seq":1,"bids":[[1,2]],"asks":[]}',
        '{"feed":"heartbeat","time":"soon"}',
    ],
)
def test_malformed_frames_raise_frame_error(frame):
    with pytest.raises(FrameError):
        KrakenAdapter("BTC-PERP").parse("public", frame, 0.0)


@pytest.mark.parametrize(
    "bad", ['"NaN"', '"inf"', "-1.0", "0", "1e400"], ids=["nan", "inf", "neg", "zero", "huge"]
)
def test_untrusted_numbers_never_reach_the_book(bad):
    _, market, pipe = make()
    pipe.on_frame("public", snap(100, BIDS, ASKS), 1.0)
    field = "qty" if bad == "-1.0" else "price"
    frame = orjson.loads(delta(101, "buy", 99.5, 1.0))
    frame[field] = "__BAD__"
    text = orjson.dumps(frame).decode().replace('"__BAD__"', bad)
    pipe.on_frame("public", text, 1.1)
    assert pipe.parse_errors == 1
    assert 99.5 not in market.book.bids and dict(market.book.bids) == dict(BIDS)
    # the lost seq shows up as a gap on the next delta
    pipe.on_frame("public", delta(102, "buy", 99.4, 1.0), 1.2)
    assert market.stats.gaps == 1 and not market.live


# -- adapter basics -----------------------------------------------------------------------------


def test_registry_symbols_streams_and_frames():
    assert get_adapter("kraken") is KrakenAdapter
    assert KrakenAdapter.symbols == {
        "BTC-PERP": "PF_XBTUSD",
        "ETH-PERP": "PF_ETHUSD",
        "SOL-PERP": "PF_SOLUSD",
    }
    ad = KrakenAdapter("BTC-PERP")
    assert ad.resync_mode is ResyncMode.RESUBSCRIBE
    (spec,) = ad.streams()
    assert spec.url == "wss://futures.kraken.com/ws/v1"
    assert spec.book and spec.trades and spec.ping_frame is None
    book_sub, trade_sub, hb = (orjson.loads(f) for f in spec.subscribe)
    assert book_sub == {"event": "subscribe", "feed": "book", "product_ids": ["PF_XBTUSD"]}
    assert trade_sub == {"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD"]}
    assert hb == {"event": "subscribe", "feed": "heartbeat"}
    unsub, resub = (orjson.loads(f) for f in ad.resubscribe_frames(spec.name))
    assert unsub == {"event": "unsubscribe", "feed": "book", "product_ids": ["PF_XBTUSD"]}
    assert resub == book_sub
    with pytest.raises(UnknownSymbol, match="BTC-PERP"):
        KrakenAdapter("XBT-PERP")
    local = KrakenAdapter("ETH-PERP", endpoint="ws://127.0.0.1:5")
    assert local.streams()[0].url == "ws://127.0.0.1:5/ws/v1"
    assert local.instrument_request().url == "http://127.0.0.1:5/derivatives/api/v3/instruments"
    assert KrakenAdapter("ETH-PERP", endpoint="ws://h:5/ws/v1").streams()[0].url == "ws://h:5/ws/v1"
    assert ad.instrument_request().url == (
        "https://futures.kraken.com/derivatives/api/v3/instruments"
    )


INSTRUMENTS = {
    "result": "success",
    "instruments": [
        {"symbol": "PI_XBTUSD", "type": "futures_inverse", "tickSize": 0.5, "contractSize": 1,
         "tradeable": True, "contractValueTradePrecision": 0, "base": "BTC", "quote": "USD"},
        {"symbol": "PF_XBTUSD", "type": "flexible_futures", "tickSize": 1, "contractSize": 1,
         "tradeable": True, "contractValueTradePrecision": 4, "base": "BTC", "quote": "USD"},
        {"symbol": "PF_ETHUSD", "type": "flexible_futures", "tickSize": 0.1, "contractSize": 1,
         "tradeable": True, "contractValueTradePrecision": 3, "base": "ETH", "quote": "USD"},
        {"symbol": "PF_PEPEUSD", "type": "flexible_futures", "tickSize": 1e-10,
         "contractSize": 1, "contractValueTradePrecision": -3, "base": "PEPE", "quote": "USD"},
    ],
    "serverTime": "2026-01-01T00:00:00.000Z",
}  # fmt: skip


def test_instrument_facts_and_defaults():
    d = KrakenAdapter("BTC-PERP").default_instrument()
    assert (d.tick, d.lot, d.size_unit, d.base, d.quote) == (1.0, 0.0001, "base", "BTC", "USD")
    body = orjson.dumps(INSTRUMENTS)
    btc = KrakenAdapter("BTC-PERP").parse_instrument(body)
    assert (btc.tick, btc.lot, btc.size_unit, btc.contract_value, btc.base) == (
        1.0, 0.0001, "base", 1.0, "BTC",
    )  # fmt: skip
    eth = KrakenAdapter("ETH-PERP").parse_instrument(body)
    assert (eth.tick, eth.lot, eth.base) == (0.1, 0.001, "ETH")
    pepe = KrakenAdapter("X", instrument="PF_PEPEUSD").parse_instrument(body)
    assert pepe.lot == 1000.0
    inv = KrakenAdapter("X", instrument="pi_xbtusd").parse_instrument(body)
    assert (inv.tick, inv.lot, inv.size_unit, inv.contract_value) == (0.5, 1.0, "quote", 1.0)
    assert inv.to_base(50_000.0, 100_000.0) == pytest.approx(2.0)  # 100k USD at 50k = 2 BTC
    fi = KrakenAdapter("X", instrument="FI_ETHUSD_211231").default_instrument()
    assert (fi.size_unit, fi.base) == ("quote", "ETH")
    with pytest.raises(FrameError, match="not listed"):
        KrakenAdapter("SOL-PERP").parse_instrument(body)
    with pytest.raises(FrameError):
        KrakenAdapter("BTC-PERP").parse_instrument(b'{"result":"error","error":"apiLimitExceeded"}')
    with pytest.raises(FrameError):
        KrakenAdapter("BTC-PERP").parse_instrument(b"[]")


# -- sync rules -----------------------------------------------------------------------------------


def make(symbol: str = "BTC-PERP"):
    ad = KrakenAdapter(symbol)
    market = Market(ad.default_instrument())
    return ad, market, FeedPipeline(ad, market)


def snap(seq: int, bids=(), asks=(), product: str = "PF_XBTUSD") -> str:
    return orjson.dumps(
        {
            "feed": "book_snapshot",
            "product_id": product,
            "timestamp": 1_700_000_000_000,
            "seq": seq,
            "tickSize": None,
            "bids": [{"price": p, "qty": q} for p, q in bids],
            "asks": [{"price": p, "qty": q} for p, q in asks],
        }
    ).decode()


def delta(seq: int, side: str, price: float, qty: float, product: str = "PF_XBTUSD") -> str:
    return orjson.dumps(
        {
            "feed": "book",
            "product_id": product,
            "side": side,
            "seq": seq,
            "price": price,
            "qty": qty,
            "timestamp": 1_700_000_000_100,
        }
    ).decode()


BIDS = [(100.0, 1.0), (99.9, 2.0), (99.8, 3.0)]
ASKS = [(100.1, 1.5), (100.2, 2.5), (100.3, 3.5)]


def test_snapshot_then_consecutive_deltas():
    _, market, pipe = make()
    assert pipe.on_frame("public", snap(100, BIDS, ASKS), 1.0) == []
    assert market.live
    pipe.on_frame("public", delta(101, "buy", 100.0, 0.0), 1.1)
    pipe.on_frame("public", delta(102, "buy", 99.95, 4.0), 1.2)
    pipe.on_frame("public", delta(103, "sell", 100.15, 0.5), 1.3)
    pipe.on_frame("public", delta(104, "sell", 123.0, 0.0), 1.4)  # unknown delete: no harm
    assert market.book.best_bid() == (99.95, 4.0)
    assert market.book.best_ask() == (100.1, 1.5) and market.book.asks[100.15] == 0.5
    assert market.live and market.stats.gaps == 0 and pipe.sync.last_seq == 104


def test_duplicate_and_older_deltas_are_ignored():
    _, market, pipe = make()
    pipe.on_frame("public", snap(100, BIDS, ASKS), 1.0)
    pipe.on_frame("public", delta(101, "buy", 99.9, 7.0), 1.1)
    pipe.on_frame("public", delta(101, "buy", 99.9, 7.0), 1.2)
    pipe.on_frame("public", delta(100, "buy", 99.9, 9.0), 1.3)
    assert market.book.bids[99.9] == 7.0 and market.live and market.stats.gaps == 0


def test_seq_jump_is_a_gap_that_resubscribes_and_a_new_snapshot_recovers():
    _, market, pipe = make()
    pipe.on_frame("public", snap(100, BIDS, ASKS), 1.0)
    pipe.on_frame("public", delta(101, "buy", 99.7, 1.0), 1.1)
    acts = pipe.on_frame("public", delta(103, "buy", 99.6, 1.0), 1.2)
    assert [type(a) for a in acts] == [NeedResync]
    assert market.state.status is FeedStatus.SYNCING
    assert market.state.reason == "seq gap 102\u2192103"
    assert market.book.empty and market.stats.gaps == 1
    # the old subscription's deltas in flight are held, then dropped by the snapshot's seq
    pipe.on_frame("public", delta(104, "buy", 99.0, 1.0), 1.3)
    pipe.on_frame("public", snap(110, BIDS, ASKS), 1.4)
    assert market.live and 99.0 not in market.book.bids
    pipe.on_frame("public", delta(111, "sell", 100.1, 0.0), 1.5)
    assert market.book.best_ask() == (100.2, 2.5) and market.live


def test_out_of_order_deltas_are_a_gap():
    _, market, pipe = make()
    pipe.on_frame("public", snap(100, BIDS, ASKS), 1.0)
    acts = pipe.on_frame("public", delta(102, "buy", 99.7, 1.0), 1.1)
    assert [type(a) for a in acts] == [NeedResync]
    pipe.on_frame("public", delta(101, "buy", 99.6, 1.0), 1.2)
    assert not market.live and "seq gap 101" in market.state.reason and market.book.empty


def test_later_snapshot_replaces_book():
    _, market, pipe = make()
    pipe.on_frame("public", snap(100, BIDS, ASKS), 1.0)
    pipe.on_frame("public", snap(250, [(90.0, 1.0)], [(91.0, 1.0)]), 1.1)
    assert dict(market.book.bids) == {90.0: 1.0} and dict(market.book.asks) == {91.0: 1.0}
    pipe.on_frame("public", delta(251, "buy", 89.0, 2.0), 1.2)
    assert market.live and len(market.book.bids) == 2 and market.stats.gaps == 0


def test_snapshot_levels_with_zero_qty_are_left_out():
    _, market, pipe = make()
    pipe.on_frame("public", snap(5, [(100.0, 1.0), (99.0, 0.0)], [(101.0, 0.0), (102.0, 1.0)]), 1)
    assert dict(market.book.bids) == {100.0: 1.0} and dict(market.book.asks) == {102.0: 1.0}


def test_crossed_book_is_a_gap():
    _, market, pipe = make()
    pipe.on_frame("public", snap(10, BIDS, ASKS), 1.0)
    acts = pipe.on_frame("public", delta(11, "buy", 100.2, 1.0), 1.1)
    assert [type(a) for a in acts] == [NeedResync]
    assert "crossed" in market.state.reason and not market.live and market.book.empty


def test_deltas_before_the_snapshot_are_held_then_chained():
    _, market, pipe = make()
    pipe.on_frame("public", delta(9, "buy", 99.0, 1.0), 1.0)  # older than the snapshot
    pipe.on_frame("public", delta(11, "buy", 98.0, 2.0), 1.1)  # follows it
    assert not market.live and market.book.empty
    pipe.on_frame("public", snap(10, BIDS, ASKS), 1.2)
    assert market.live and market.book.bids[98.0] == 2.0 and 99.0 not in market.book.bids
    # held deltas that do not follow the snapshot are a gap, never applied
    _, market, pipe = make()
    pipe.on_frame("public", delta(13, "buy", 98.0, 2.0), 1.1)
    acts = pipe.on_frame("public", snap(10, BIDS, ASKS), 1.2)
    assert [type(a) for a in acts] == [NeedResync] and not market.live
    assert market.state.reason == "seq gap 11\u219213"


def test_book_and_buffer_are_bounded(monkeypatch):
    monkeypatch.setattr(kraken_mod, "MAX_LEVELS", 50)
    _, market, pipe = make()
    bids = [(1000.0 - i, 1.0) for i in range(60)]
    asks = [(1001.0 + i, 1.0) for i in range(60)]
    pipe.on_frame("public", snap(1, bids, asks), 1.0)
    assert len(market.book.bids) == 50 and len(market.book.asks) == 50
    assert market.book.bids.keys()[0] == 951.0  # the worst ones fell out
    for n in range(2, 30):
        pipe.on_frame("public", delta(n, "buy", 500.0 - n, 1.0), 1.0)
    assert len(market.book.bids) == 50 and market.live
    sync = KrakenSync(market.book)
    for n in range(sync.max_buffer + 5):
        sync.on_delta(BookDelta("kraken", "BTC-PERP", [(1.0, 1.0)], [], seq=n))
    assert len(sync.buffer) == sync.max_buffer and sync.buffer_dropped == 5


# -- the dialect without a network ---------------------------------------------------------------


def sim_markets(seed: int = 2):
    from obview.sim.engine import SimMarket

    return {"BTC-PERP": SimMarket("BTC-PERP", seed=seed, start_time=1_700_000_000.0)}


def test_dialect_frames_through_the_adapter_never_cross():
    """Thousands of simulator steps, each split into one frame per level: the client's book
    is never crossed in between and ends equal to the simulator's."""
    from obview.sim.dialects.kraken import KrakenDialect

    markets = sim_markets()
    m = markets["BTC-PERP"]
    d = KrakenDialect(markets, "/ws/v1")
    _, market, pipe = make()
    outs = d.on_connect() + d.on_message(
        '{"event":"subscribe","feed":"book","product_ids":["pf_xbtusd"]}'
    )
    outs += d.on_message('{"event":"subscribe","feed":"trade","product_ids":["PF_XBTUSD"]}')
    assert [o.kind for o in outs] == ["control", "control", "snapshot", "control", "control"]
    for o in outs:
        pipe.on_frame("public", o.text, 1.0)
    assert market.live
    outs, frames = [], 0
    for k in range(3000):
        outs += d.on_update(m.step(1_700_000_000.0 + k * 0.05))
        for o in outs:
            pipe.on_frame("public", o.text, 1.0)
            frames += 1
            assert market.live, (k, market.state)
        outs = []
    assert frames > 6000 and market.stats.gaps == 0 and pipe.parse_errors == 0
    assert pipe.trades > 0
    assert market.book.top(100_000) == m.book.top(100_000)
    assert pipe.sync.last_seq == d.seq["PF_XBTUSD"]


def test_dialect_refusals_acks_and_instruments():
    from obview.sim.dialects.kraken import KrakenDialect

    markets = sim_markets()
    d = KrakenDialect(markets, "/ws/v1")
    ad = KrakenAdapter("BTC-PERP")
    (err,) = d.on_message('{"event":"subscribe","feed":"book","product_ids":["PF_DOGEUSD"]}')
    assert orjson.loads(err.text) == {"event": "error", "message": "Invalid product id"}
    (ve,) = ad.parse("public", err.text, 0.0)
    assert isinstance(ve, VenueError) and ve.fatal
    (err,) = d.on_message('{"event":"subscribe","feed":"book_ui","product_ids":["PF_XBTUSD"]}')
    assert orjson.loads(err.text)["message"] == "Invalid feed"
    (err,) = d.on_message("{not json")
    assert orjson.loads(err.text)["message"] == "Json Error"
    assert not ad.parse("public", err.text, 0.0)[0].fatal
    (ack,) = d.on_message('{"event":"subscribe","feed":"heartbeat"}')
    assert orjson.loads(ack.text) == {"event": "subscribed", "feed": "heartbeat"}
    d.heartbeat_every = 2
    assert d.heartbeat() == []
    (hb,) = d.heartbeat()
    assert ad.parse("public", hb.text, 0.0) == [] and ad.heartbeats == 1
    ack, snapshot = d.on_message('{"event":"subscribe","feed":"book","product_ids":["PF_XBTUSD"]}')
    s = orjson.loads(snapshot.text)
    assert s["feed"] == "book_snapshot" and s["seq"] == d.seq["PF_XBTUSD"]
    assert len(s["bids"]) == len(markets["BTC-PERP"].book.bids)
    (unack,) = d.on_message('{"event":"unsubscribe","feed":"book","product_ids":["PF_XBTUSD"]}')
    assert orjson.loads(unack.text)["event"] == "unsubscribed" and not d.books
    assert ad.parse("public", unack.text, 0.0) == []
    status, body = KrakenDialect.http(markets, "/derivatives/api/v3/instruments", {}, b"")
    inst = ad.parse_instrument(body)
    m = markets["BTC-PERP"]
    assert status == 200 and (inst.tick, inst.lot, inst.size_unit) == (m.tick, m.lot, "base")
    assert KrakenDialect.http(markets, "/derivatives/api/v3/tickers", {}, b"") is None


# -- end to end: the simulator speaking Kraken Futures on 127.0.0.1 --------------------------------


def kraken_client(server):
    clients = [c.dialect for c in server.clients if c.dialect.name == "kraken"]
    assert len(clients) == 1
    return clients[0]


async def assert_books_equal(server, session, market):
    """Hold the simulator still: the client's book is, level for level, what the dialect sent
    and what the simulator holds (sizes are coins on both)."""
    rate = server.rate
    server.set_rate(0)  # stop stepping but keep sending what is queued
    try:
        d = kraken_client(server)
        await until(lambda: market.live and session.pipeline.sync.last_seq == d.seq["PF_XBTUSD"])
        sent = d.books["PF_XBTUSD"]
        bids, asks = market.book.top(100_000)
        assert bids == sorted(sent.bids.items(), reverse=True)
        assert asks == sorted(sent.asks.items())
        assert (bids, asks) == server.markets["BTC-PERP"].book.top(100_000)
    finally:
        server.set_rate(rate)


async def test_e2e_live_gap_duplicate_reconnect_and_heartbeats():
    feed = venue_feed(KrakenAdapter, "BTC-PERP", "/ws/v1", seed=31, rate=40)
    async with asyncio.timeout(40):
        async with feed as (server, adapter, market, session):
            assert market.instrument.tick == 1.0  # built-in default until /instruments answers
            bad: list = []
            await until(
                lambda: market.live and market.instrument.tick == 0.1, market=market, bad=bad
            )
            assert (market.instrument.lot, market.instrument.size_unit) == (0.001, "base")
            await until(lambda: session.pipeline.trades >= 2, market=market, bad=bad)
            assert market.trades[-1].venue == "kraken"
            await assert_books_equal(server, session, market)

            # the venue's heartbeat feed arrives and is read; the transport pings the venue
            # (it drops a connection that has not pinged for 60 s)
            d = kraken_client(server)
            assert d.heartbeat_on
            d.heartbeat_every = 1
            await until(lambda: adapter.heartbeats >= 2 and d.heartbeats_sent >= 2, timeout=5)
            ws = session.streams["public"].ws
            assert ws is not None and ws.ping_interval is not None and ws.ping_interval < 60

            # a dropped delta: seq gap -> SYNCING with the reason -> resubscribe -> LIVE
            resyncs, connects = market.resyncs, session.connect_attempts
            server.faults.drop_next("delta")
            await until(lambda: market.resyncs > resyncs and market.live, market=market, bad=bad)
            assert any(
                s.status is FeedStatus.SYNCING and s.reason.startswith("seq gap")
                for s in market.state_log
            )
            assert session.connect_attempts == connects  # resubscribed on the same socket
            await assert_books_equal(server, session, market)

            # duplicated deltas are ignored: no resync, still LIVE and right
            resyncs = market.resyncs
            server.faults.duplicate_next("delta", 3)
            await until(lambda: server.faults.duplicated >= 3)
            await assert_books_equal(server, session, market)
            assert market.resyncs == resyncs and market.stats.gaps == 1

            # every connection dropped: reconnect, subscribe again, new snapshot, LIVE
            await server.kick()
            await until(
                lambda: session.connect_attempts > connects and market.live, market=market, bad=bad
            )
            await assert_books_equal(server, session, market)
            assert bad == [] and session.pipeline.parse_errors == 0


async def test_e2e_unknown_product_fails_the_feed():
    """A product the venue does not list: the refusal is fatal and the feed says why."""
    from obview.feed.session import FeedSession
    from obview.sim.server import start_server

    server = await start_server(seed=34, symbols=["BTC-PERP"], rate=20)
    try:
        async with asyncio.timeout(20):
            ad = KrakenAdapter("X", instrument="PF_DOGEUSD", endpoint=server.url("/ws/v1"))
            market = Market(ad.default_instrument())
            session = FeedSession(ad, market)
            task = session.start()
            try:
                await until(lambda: market.state.status is FeedStatus.FAILED)
                assert "Invalid product id" in market.state.reason
                assert session.connect_attempts == 1  # no retry storm against a refusal
            finally:
                await session.stop()
                task.cancel()
    finally:
        await server.close()
