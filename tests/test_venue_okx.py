"""OKX v5 adapter: doc examples, the real 2022 recording, and the sync rules.

The recording (../shared/recordings/okx.jsonl) multiplexes three instruments (spot, a dated
future, an inverse swap) and predates seqId/prevSeqId, so the checksum is its only integrity
check; the seqId rules are tested on frames built from the fact sheet's shapes. BTC-USDT-SWAP
itself is not in any recording: its parsing is covered by doc-shaped frames and the simulator.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import orjson
import pytest

from e2e import fast_options, until, venue_feed
from obview.feed.pipeline import FeedPipeline, NeedResync, Send
from obview.feed.session import FeedSession
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus, Side, Trade
from obview.sim.dialects.okx import OkxDialect
from obview.sim.server import start_server
from obview.venues.base import FrameError, ResyncMode, VenueError
from obview.venues.okx import OkxAdapter, inst_type
from obview.venues.okx_book import OkxBookSnapshot, okx_checksum
from obview.venues.registry import get_adapter

RECORDING = Path(__file__).resolve().parents[2] / "shared" / "recordings" / "okx.jsonl"
INSTRUMENTS = ("BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP")


def load_recording() -> list[dict]:
    if not RECORDING.exists():
        pytest.skip("recording not available")
    return [json.loads(line) for line in RECORDING.read_text().splitlines() if line.strip()]


def replay(lines: list[dict], instrument: str):
    adapter = OkxAdapter("BTC-PERP", instrument=instrument)
    market = Market(adapter.default_instrument())
    pipe = FeedPipeline(adapter, market)
    crossed = 0
    live_frames = 0
    for rec in lines:
        if "raw" not in rec:
            continue
        pipe.on_frame("public", rec["raw"], rec["t"])
        if market.book.is_crossed():
            crossed += 1
        if market.state.status is FeedStatus.LIVE:
            live_frames += 1
    return pipe, market, crossed, live_frames


def reference_book(
    lines: list[dict], instrument: str
) -> tuple[dict[float, float], dict[float, float]]:
    """An independent book rebuilt from the raw frames (no adapter code involved)."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for rec in lines:
        msg = json.loads(rec.get("raw", "{}"))
        arg = msg.get("arg", {})
        if arg.get("channel") != "books" or arg.get("instId") != instrument or "data" not in msg:
            continue
        for d in msg["data"]:
            if msg["action"] == "snapshot":
                bids.clear()
                asks.clear()
            for side, rows in ((bids, d["bids"]), (asks, d["asks"])):
                for px, sz, *_ in rows:
                    if float(sz) == 0:
                        side.pop(float(px), None)
                    else:
                        side[float(px)] = float(sz)
    return bids, asks


def top(side: dict[float, float], n: int, best_high: bool) -> list[tuple[float, float]]:
    return sorted(side.items(), reverse=best_high)[:n]


# -- doc examples -------------------------------------------------------------------------------


def test_checksum_doc_examples():
    bids = [("3366.1", "7"), ("3366", "6")]
    asks = [("3366.8", "9"), ("3368", "8")]
    assert okx_checksum(bids, asks) == -1881014294
    # longer ask side: remaining asks appended alone
    assert (
        okx_checksum([("3366.1", "7")], [("3366.8", "9"), ("3368", "8"), ("3372", "8")])
        == 831078360
    )


def test_checksum_uses_only_top_25_and_original_strings():
    bids = [(f"{100 - i}", "1") for i in range(30)]
    asks = [(f"{101 + i}", "1") for i in range(30)]
    assert okx_checksum(bids, asks) == okx_checksum(bids[:25], asks[:25])
    assert okx_checksum(bids[:25], asks[:25]) != okx_checksum(bids[:24], asks[:25])
    # "1.0" and "1" are the same float but not the same checksum input
    assert okx_checksum([("99", "1.0")], [("101", "1")]) != okx_checksum(
        [("99", "1")], [("101", "1")]
    )


def test_recording_snapshot_checksum_matches_fact_sheet():
    for rec in load_recording():
        raw = rec.get("raw", "")
        if '"action":"snapshot"' in raw and "BTC-USD-220527" in raw:
            d = json.loads(raw)["data"][0]
            bids = [(r[0], r[1]) for r in d["bids"]]
            asks = [(r[0], r[1]) for r in d["asks"]]
            assert d["ts"] == "1652459225393"
            assert okx_checksum(bids, asks) == d["checksum"] == 1054815633
            return
    pytest.fail("snapshot not found")


# -- the recording ------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_recording_replays_cleanly(instrument):
    lines = load_recording()
    pipe, market, crossed, live_frames = replay(lines, instrument)
    book_frames = sum(
        1
        for r in lines
        if "raw" in r and f'"channel":"books","instId":"{instrument}"}},"action"' in r["raw"]
    )
    trade_frames = sum(
        1
        for r in lines
        if "raw" in r and f'"channel":"trades","instId":"{instrument}"}},"data"' in r["raw"]
    )
    assert book_frames > 90
    assert pipe.parse_errors == 0
    assert market.stats.gaps == 0
    assert market.stats.checksum_errors == 0
    # every book message of this instrument carried a non-zero checksum and it verified
    assert pipe.sync.checksums_verified == book_frames
    assert crossed == 0
    assert market.state.status is FeedStatus.LIVE
    assert live_frames > 0
    assert pipe.trades >= trade_frames > 0
    # the book equals an independent rebuild from the raw frames (400-level depth cap)
    ref_bids, ref_asks = reference_book(lines, instrument)
    bids, asks = market.book.top(400)
    assert bids == top(ref_bids, 400, True)
    assert asks == top(ref_asks, 400, False)


def test_recording_total_checksums_and_skipped_channels():
    lines = load_recording()
    verified = 0
    for inst in INSTRUMENTS:
        pipe, *_ = replay(lines, inst)
        verified += pipe.sync.checksums_verified
    assert verified == 290
    # frames skipped on purpose: tickers and acks parse to nothing
    adapter = OkxAdapter("BTC-PERP", instrument="BTC-USDT")
    skipped = 0
    for rec in lines:
        raw = rec.get("raw")
        if raw and ('"channel":"tickers"' in raw or '"event":"subscribe"' in raw):
            assert adapter.parse("public", raw, rec["t"]) == []
            skipped += 1
    assert skipped == 28 + 18  # tickers pushes (2 + 1 + 25) and subscribe acks


def test_recording_trades_have_taker_side_and_native_sizes():
    lines = load_recording()
    adapter = OkxAdapter("BTC-PERP", instrument="BTC-USDT")
    trades = []
    for rec in lines:
        raw = rec.get("raw", "")
        if '"channel":"trades"' in raw and '"data"' in raw:
            trades += [e for e in adapter.parse("public", raw, rec["t"]) if isinstance(e, Trade)]
    first = trades[0]
    assert (first.price, first.size, first.side, first.trade_id) == (
        30236.0,
        0.0002,
        Side.BUY,
        "338476307",
    )
    assert first.ts_exchange == pytest.approx(1652459224.818)
    assert {t.side for t in trades} == {Side.BUY, Side.SELL}


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_recording_with_one_update_removed_is_never_a_wrong_live_book(instrument):
    lines = load_recording()
    updates = [
        i
        for i, r in enumerate(lines)
        if "raw" in r and f'"instId":"{instrument}"}},"action":"update"' in r["raw"]
    ]
    detected = 0
    for i in updates:
        cut = lines[:i] + lines[i + 1 :]
        pipe, market, crossed, _ = replay(cut, instrument)
        assert pipe.parse_errors == 0
        if market.stats.checksum_errors:
            detected += 1
            # no new snapshot follows in the file: the book must stay out of LIVE
            assert market.state.status is FeedStatus.SYNCING
            assert "checksum" in market.state.reason
        else:
            # undetectable by design only when the missing change never reached the
            # checksummed top 25 (deep levels) or it was the last message: the visible
            # top of the book is then still right
            truth = lines[:i] if i == updates[-1] else lines
            ref_bids, ref_asks = reference_book(truth, instrument)
            assert market.book.top(25) == (top(ref_bids, 25, True), top(ref_asks, 25, False))
    assert detected >= len(updates) * 0.85


# -- parsing units ------------------------------------------------------------------------------


def frame(
    action,
    bids,
    asks,
    *,
    seq=None,
    prev=None,
    checksum=None,
    inst="BTC-USDT-SWAP",
    ts="1700000000123",
):
    d = {
        "asks": [[p, s, "0", "1"] for p, s in asks],
        "bids": [[p, s, "0", "1"] for p, s in bids],
        "ts": ts,
    }
    if checksum is not None:
        d["checksum"] = checksum
    if seq is not None:
        d["seqId"] = seq
    if prev is not None:
        d["prevSeqId"] = prev
    return orjson.dumps(
        {"arg": {"channel": "books", "instId": inst}, "action": action, "data": [d]}
    ).decode()


def test_symbols_streams_and_registry():
    assert get_adapter("okx") is OkxAdapter
    a = OkxAdapter("BTC-PERP")
    assert a.native == "BTC-USDT-SWAP"
    assert OkxAdapter.symbols["ETH-PERP"] == "ETH-USDT-SWAP"
    assert OkxAdapter.symbols["SOL-PERP"] == "SOL-USDT-SWAP"
    (spec,) = a.streams()
    assert spec.url == "wss://ws.okx.com:8443/ws/v5/public"
    assert spec.ping_frame == "ping" and 20 <= spec.ping_interval < 30
    sub = json.loads(spec.subscribe[0])
    assert sub == {
        "op": "subscribe",
        "args": [
            {"channel": "books", "instId": "BTC-USDT-SWAP"},
            {"channel": "trades", "instId": "BTC-USDT-SWAP"},
            # every swap's liquidations (no per-instrument form): ours are picked out
            {"channel": "liquidation-orders", "instType": "SWAP"},
        ],
    }
    assert a.resync_mode is ResyncMode.RESUBSCRIBE
    unsub, resub = (json.loads(f) for f in a.resubscribe_frames(spec.name))
    assert unsub == {"op": "unsubscribe", "args": [{"channel": "books", "instId": "BTC-USDT-SWAP"}]}
    assert resub == {"op": "subscribe", "args": [{"channel": "books", "instId": "BTC-USDT-SWAP"}]}
    # endpoint override: a bare base gets the path, a full URL is kept
    assert (
        OkxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9/").streams()[0].url
        == "ws://127.0.0.1:9/ws/v5/public"
    )
    assert (
        OkxAdapter("BTC-PERP", endpoint="ws://h:1/ws/v5/public").streams()[0].url
        == "ws://h:1/ws/v5/public"
    )


def test_unknown_symbol_lists_valid_ones():
    with pytest.raises(ValueError, match="BTC-PERP, ETH-PERP, SOL-PERP"):
        OkxAdapter("DOGE-PERP")


def test_parse_snapshot_update_and_other_frames():
    a = OkxAdapter("BTC-PERP")
    (snap,) = a.parse(
        "public",
        frame("snapshot", [("100.5", "3")], [("101", "2")], seq=10, prev=-1, checksum=5),
        1.0,
    )
    assert isinstance(snap, OkxBookSnapshot)
    assert (snap.bids, snap.asks, snap.seq, snap.checksum) == (
        [(100.5, 3.0)],
        [(101.0, 2.0)],
        10,
        5,
    )
    assert snap.ts_exchange == pytest.approx(1700000000.123) and snap.ts_local == 1.0
    (upd,) = a.parse("public", frame("update", [("100.5", "0")], [], seq=12, prev=10), 1.0)
    assert isinstance(upd, BookDelta) and not isinstance(upd, BookSnapshot)
    assert (upd.bids, upd.seq, upd.prev_seq, upd.checksum) == ([(100.5, 0.0)], 12, 10, None)
    # other instruments, acks, pongs, tickers: nothing
    assert a.parse("public", frame("update", [("1", "1")], [], inst="ETH-USDT-SWAP"), 1.0) == []
    assert (
        a.parse(
            "public",
            '{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"connId":"a4d3ae55"}',
            1.0,
        )
        == []
    )
    assert a.parse("public", "pong", 1.0) == []
    # errors
    (err,) = a.parse("public", '{"event":"error","code":"60011","msg":"Please log in"}', 1.0)
    assert isinstance(err, VenueError) and "60011" in err.reason and not err.fatal
    (err,) = a.parse("public", '{"event":"error","code":"60018","msg":"doesn\'t exist"}', 1.0)
    assert err.fatal
    with pytest.raises(FrameError):
        a.parse("public", "not json", 1.0)
    with pytest.raises(FrameError):
        a.parse("public", frame("bogus", [], []), 1.0)


def test_parse_trade_doc_shape():
    a = OkxAdapter("BTC-PERP")
    raw = (
        '{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
        '"tradeId":"7849","px":"30218.8","sz":"12","side":"sell","ts":"1652459199958","count":"2"}]}'
    )
    (t,) = a.parse("public", raw, 2.0)
    assert (t.price, t.size, t.side, t.trade_id) == (30218.8, 12.0, Side.SELL, "7849")
    assert t.ts_exchange == pytest.approx(1652459199.958)


def test_instrument_defaults_and_endpoint():
    inst = OkxAdapter("BTC-PERP").default_instrument()
    assert (inst.size_unit, inst.contract_value, inst.tick) == ("contract", 0.01, 0.1)
    assert inst.to_base(60000.0, 250.0) == pytest.approx(2.5)  # 250 contracts = 2.5 BTC
    req = OkxAdapter("BTC-PERP", rest_endpoint="http://127.0.0.1:1").instrument_request()
    assert (
        req.url == "http://127.0.0.1:1/api/v5/public/instruments?instType=SWAP&instId=BTC-USDT-SWAP"
    )
    assert inst_type("BTC-USDT") == "SPOT" and inst_type("BTC-USD-220527") == "FUTURES"
    spot = OkxAdapter("X", instrument="BTC-USDT").default_instrument()
    assert spot.size_unit == "base"
    inverse = OkxAdapter("X", instrument="BTC-USD-220527").default_instrument()
    assert (inverse.size_unit, inverse.contract_value) == ("quote", 100.0)


def test_parse_instrument_linear_and_inverse():
    a = OkxAdapter("BTC-PERP")
    body = orjson.dumps(
        {
            "code": "0",
            "msg": "",
            "data": [
                {
                    "instType": "SWAP", "instId": "BTC-USDT-SWAP", "uly": "BTC-USDT",
                    "instFamily": "BTC-USDT", "baseCcy": "", "quoteCcy": "", "settleCcy": "USDT",
                    "ctVal": "0.01", "ctMult": "1", "ctValCcy": "BTC", "ctType": "linear",
                    "tickSz": "0.1", "lotSz": "0.01", "minSz": "0.01", "state": "live",
                }
            ],
        }
    )  # fmt: skip
    inst = a.parse_instrument(body)
    assert (inst.tick, inst.lot, inst.size_unit, inst.contract_value) == (
        0.1,
        0.01,
        "contract",
        0.01,
    )
    assert (inst.base, inst.quote) == ("BTC", "USDT")
    inv = OkxAdapter("X", instrument="BTC-USD-SWAP").parse_instrument(
        b'{"code":"0","data":[{"ctMult":"1","ctType":"inverse","ctVal":"100","ctValCcy":"USD",'
        b'"instFamily":"BTC-USD","instId":"BTC-USD-SWAP","instType":"SWAP","lotSz":"1",'
        b'"settleCcy":"BTC","tickSz":"0.1","uly":"BTC-USD"}]}'
    )
    assert (inv.size_unit, inv.contract_value, inv.base, inv.quote) == (
        "quote",
        100.0,
        "BTC",
        "USD",
    )
    assert inv.to_base(50000.0, 5) == pytest.approx(0.01)
    # a swap's reply that leaves out its contract value: still contracts, of the built-in value
    # (base units read 100 BTC contracts as 100 BTC)
    bare = a.parse_instrument(
        b'{"code":"0","data":[{"instType":"SWAP","instId":"BTC-USDT-SWAP","tickSz":"0.1","lotSz":"0.01"}]}'
    )
    assert (bare.size_unit, bare.contract_value) == ("contract", 0.01)
    assert bare.to_base(97_000.0, 100) == pytest.approx(1.0)
    assert a.default_instrument().lot == 0.01
    with pytest.raises(FrameError):
        a.parse_instrument(b'{"code":"51001","msg":"Instrument ID does not exist","data":[]}')


def test_rest_snapshot_parse():
    a = OkxAdapter("BTC-PERP", rest_endpoint="http://127.0.0.1:1")
    assert (
        a.snapshot_request().url
        == "http://127.0.0.1:1/api/v5/market/books?instId=BTC-USDT-SWAP&sz=400"
    )
    snap = a.parse_snapshot(
        b'{"code":"0","msg":"","data":[{"asks":[["41006.8","0.6","0","1"]],'
        b'"bids":[["41006.3","0.3","0","1"]],"ts":"1629966436396","seqId":77}]}',
        3.0,
    )
    assert (snap.bids, snap.asks, snap.seq) == ([(41006.3, 0.3)], [(41006.8, 0.6)], 77)
    # without a seqId the updates buffered meanwhile cannot be joined to it (older ones would
    # be replayed onto the newer book): refused, the pipeline asks again later
    with pytest.raises(FrameError, match="without a seqId"):
        a.parse_snapshot(
            b'{"code":"0","msg":"","data":[{"asks":[["41006.8","0.6","0","1"]],'
            b'"bids":[["41006.3","0.3","0","1"]],"ts":"1629966436396"}]}',
            3.0,
        )


# -- sync rules ---------------------------------------------------------------------------------


class Book:
    """Builds frames with correct checksums for a book kept as strings."""

    def __init__(self) -> None:
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}

    def apply(self, bids, asks):
        for side, rows in ((self.bids, bids), (self.asks, asks)):
            for p, s in rows:
                if float(s) == 0:
                    side.pop(p, None)
                else:
                    side[p] = s

    def checksum(self) -> int:
        b = sorted(self.bids.items(), key=lambda kv: -float(kv[0]))
        a = sorted(self.asks.items(), key=lambda kv: float(kv[0]))
        return okx_checksum(b, a)

    def snapshot(self, bids, asks, **kw) -> str:
        self.bids, self.asks = {}, {}
        self.apply(bids, asks)
        return frame("snapshot", bids, asks, checksum=self.checksum(), **kw)

    def update(self, bids, asks, **kw) -> str:
        self.apply(bids, asks)
        kw.setdefault("checksum", self.checksum())
        return frame("update", bids, asks, **kw)


def make_pipe():
    a = OkxAdapter("BTC-PERP")
    m = Market(a.default_instrument())
    return a, m, FeedPipeline(a, m)


def test_seq_chain_gap_and_resubscribe_snapshot():
    a, m, pipe = make_pipe()
    b = Book()
    assert (
        pipe.on_frame(
            "public", b.snapshot([("100", "1"), ("99", "2")], [("101", "1")], seq=100, prev=-1), 1
        )
        == []
    )
    assert m.state.status is FeedStatus.LIVE
    pipe.on_frame("public", b.update([("100", "5")], [], seq=107, prev=100), 1)
    assert m.book.best_bid() == (100.0, 5.0) and m.state.status is FeedStatus.LIVE
    # keep-alive: same seqId, no levels
    pipe.on_frame("public", frame("update", [], [], seq=107, prev=107), 1)
    assert m.state.status is FeedStatus.LIVE
    # a lost message: prevSeqId does not link
    actions = pipe.on_frame("public", b.update([("99", "0")], [], seq=130, prev=120), 1)
    assert [type(x) for x in actions] == [NeedResync]
    assert m.state.status is FeedStatus.SYNCING and "120" in m.state.reason and m.stats.gaps == 1
    assert m.book.empty
    # updates of the old subscription before the new snapshot are held, then dropped
    pipe.on_frame("public", frame("update", [("98", "1")], [], seq=135, prev=130), 1)
    assert m.state.status is FeedStatus.SYNCING
    b2 = Book()
    pipe.on_frame("public", b2.snapshot([("100", "4")], [("102", "1")], seq=140, prev=-1), 1)
    assert m.state.status is FeedStatus.LIVE
    assert m.book.top(5) == ([(100.0, 4.0)], [(102.0, 1.0)])
    pipe.on_frame("public", b2.update([], [("101.5", "2")], seq=141, prev=140), 1)
    assert m.book.best_ask() == (101.5, 2.0) and m.stats.checksum_errors == 0


def test_a_snapshot_push_without_levels_is_no_book():
    # the first event of a subscription once the websocket snapshot is gone may still say
    # "snapshot": with no levels in it the updates stay held for the REST book
    a, m, pipe = make_pipe()
    b = Book()
    for fast in (True, False):
        if not fast:
            pipe._parse_fast = None
        assert pipe.on_frame("public", frame("snapshot", [], [], seq=100, prev=-1, checksum=0), 1) == []
        assert not m.live and not pipe.sync.synced
        pipe.on_frame("public", frame("update", [("100", "1")], [("101", "2")], seq=101, prev=100), 1)
        assert not m.live and m.book.empty and len(pipe.sync.buffer) >= 1
        assert m.stats.bad_frames == 0
    # a snapshot with levels on one side only is a book (a one-sided market)
    pipe.on_frame("public", b.snapshot([("100", "1")], [], seq=200, prev=-1), 1)
    assert m.state.status is FeedStatus.LIVE and m.book.best_bid() == (100.0, 1.0)


def test_duplicate_update_is_ignored():
    a, m, pipe = make_pipe()
    b = Book()
    pipe.on_frame("public", b.snapshot([("100", "1")], [("101", "1")], seq=10, prev=-1), 1)
    upd = b.update([("100", "3")], [], seq=15, prev=10)
    pipe.on_frame("public", upd, 1)
    assert pipe.on_frame("public", upd, 1) == []
    assert m.state.status is FeedStatus.LIVE and m.book.best_bid() == (100.0, 3.0)


def test_sequence_reset_after_maintenance_links_by_prev():
    a, m, pipe = make_pipe()
    b = Book()
    pipe.on_frame("public", b.snapshot([("100", "1")], [("101", "1")], seq=500, prev=-1), 1)
    pipe.on_frame("public", b.update([("100", "2")], [], seq=3, prev=500), 1)  # seqId went down
    pipe.on_frame("public", b.update([("100", "4")], [], seq=9, prev=3), 1)
    assert m.state.status is FeedStatus.LIVE and m.book.best_bid() == (100.0, 4.0)


def test_a_sequence_reset_whose_linking_update_was_lost_is_a_gap_not_ignored():
    """After a reset the new chain's seqIds are below the book's: with the update that linked
    them lost, each was taken for an old duplicate and dropped, and the book froze LIVE until
    the stale watchdog. A duplicate comes alone; updates that keep linking to one another
    behind an unmoved book are a new chain: a gap after three."""
    a, m, pipe = make_pipe()
    b = Book()
    pipe.on_frame("public", b.snapshot([("100", "1")], [("101", "1")], seq=500, prev=-1), 1)
    pipe.on_frame("public", b.update([("100", "2")], [], seq=510, prev=500), 1)
    dup = frame("update", [("100", "2")], [], seq=510, prev=500)
    assert pipe.on_frame("public", dup, 1) == [] and pipe.on_frame("public", dup, 1) == []
    assert pipe.on_frame("public", dup, 1) == []  # repeats of one update are not a chain
    b.update([("100", "3")], [], seq=3, prev=510)  # lost
    assert pipe.on_frame("public", b.update([("100", "4")], [], seq=9, prev=3), 1) == []
    assert pipe.on_frame("public", b.update([("100", "5")], [], seq=12, prev=9), 1) == []
    assert m.state.status is FeedStatus.LIVE
    actions = pipe.on_frame("public", b.update([("100", "6")], [], seq=15, prev=12), 1)
    assert [type(x) for x in actions] == [NeedResync]
    assert m.state.status is FeedStatus.SYNCING and m.stats.gaps == 1
    assert "sequence restarted" in m.state.reason


def test_zero_checksum_never_resyncs_and_bad_checksum_does():
    a, m, pipe = make_pipe()
    b = Book()
    pipe.on_frame("public", b.snapshot([("100", "1")], [("101", "1")], seq=1, prev=-1), 1)
    # live feed since mid-2026: checksum always 0, even when it "would" be wrong
    pipe.on_frame("public", b.update([("99", "1")], [], seq=2, prev=1, checksum=0), 1)
    pipe.on_frame(
        "public", frame("snapshot", [("100", "1")], [("101", "1")], seq=3, prev=-1, checksum=0), 1
    )
    assert m.state.status is FeedStatus.LIVE and m.stats.checksum_errors == 0
    b = Book()
    b.snapshot([("100", "1")], [("101", "1")])
    good = b.update([("99.5", "7")], [], seq=4, prev=3)
    bad = good.replace(f'"checksum":{b.checksum()}', f'"checksum":{b.checksum() ^ 1}')
    assert bad != good
    actions = pipe.on_frame("public", bad, 1)
    assert any(isinstance(x, NeedResync) for x in actions)
    assert m.state.status is FeedStatus.SYNCING and m.stats.checksum_errors == 1
    assert "checksum" in m.state.reason


def test_snapshot_without_seq_drops_held_updates():
    a, m, pipe = make_pipe()
    b = Book()
    # no seqId anywhere (2022-style data): an update before the snapshot must not be replayed
    pipe.on_frame("public", frame("update", [("50", "1")], [], checksum=0), 1)
    pipe.on_frame("public", b.snapshot([("100", "1")], [("101", "1")]), 1)
    assert m.state.status is FeedStatus.LIVE
    assert m.book.top(5) == ([(100.0, 1.0)], [(101.0, 1.0)])


def test_crossed_book_is_a_gap():
    a, m, pipe = make_pipe()
    b = Book()
    pipe.on_frame("public", b.snapshot([("100", "1")], [("101", "1")], seq=1, prev=-1), 1)
    actions = pipe.on_frame(
        "public", frame("update", [("102", "1")], [], seq=2, prev=1, checksum=0), 1
    )
    assert any(isinstance(x, NeedResync) for x in actions)
    assert m.state.status is FeedStatus.SYNCING and "crossed" in m.state.reason


def test_book_truncated_to_400_levels_and_checksum_still_verifies():
    a, m, pipe = make_pipe()
    b = Book()
    bids = [(f"{1000 - i}", "1") for i in range(400)]
    asks = [(f"{1001 + i}", "1") for i in range(400)]
    pipe.on_frame("public", b.snapshot(bids, asks, seq=1, prev=-1), 1)
    # a new best bid pushes the 400th bid out of OKX's book too
    b.bids.pop("601")
    pipe.on_frame("public", b.update([("1000.5", "2")], [], seq=2, prev=1), 1)
    assert len(m.book.bids) == 400 and m.state.status is FeedStatus.LIVE
    assert m.stats.checksum_errors == 0


def test_pipeline_answers_nothing_to_pong_and_counts_garbage():
    a, m, pipe = make_pipe()
    assert pipe.on_frame("public", "pong", 1) == []
    assert not any(isinstance(x, Send) for x in pipe.on_frame("public", "{bad", 1))
    assert pipe.parse_errors == 1


# -- end to end: the simulator speaking OKX on 127.0.0.1 ------------------------------------------


def okx_client(server):
    clients = [c.dialect for c in server.clients if c.dialect.name == "okx"]
    assert len(clients) == 1
    return clients[0]


async def assert_books_equal(server, session, market, inst_id="BTC-USDT-SWAP", symbol="BTC-PERP"):
    """Hold the simulator still; the client's book must be the dialect's encoded book, which is
    the simulator's book in contracts seen through OKX's 400-level window."""
    # stop stepping but keep sending (pause() would also hold frames already queued)
    rate = server.rate
    server.set_rate(0)
    try:
        await asyncio.sleep(0.3)
        dialect = okx_client(server)
        sent = dialect.books[inst_id]
        # the last update pushed, or a REST snapshot's later seqId: the simulator's seq moves on
        # steps that leave the 400-level window as it was, which are not pushed (as at OKX)
        assert sent.seq <= session.pipeline.sync.last_seq <= server.markets[symbol].seq
        bids, asks = market.book.top(400)
        assert bids == sorted(((p, float(s)) for p, (_, s) in sent.bids.items()), reverse=True)
        assert asks == sorted((p, float(s)) for p, (_, s) in sent.asks.items())
        sim_bids, sim_asks = server.markets[symbol].book.top(25)
        ct = OkxDialect.ct_val(inst_id)
        assert bids[:25] == [(p, pytest.approx(s / ct)) for p, s in sim_bids]
        assert asks[:25] == [(p, pytest.approx(s / ct)) for p, s in sim_asks]
    finally:
        server.set_rate(rate)


async def test_e2e_live_gap_checksum_and_reconnect_recover():
    feed = venue_feed(OkxAdapter, "BTC-PERP", "/ws/v5/public", seed=11, rate=40)
    async with feed as (server, _adapter, market, session):
        bad: list = []
        await until(lambda: market.live, market=market, bad=bad)
        await until(lambda: len(market.trades) >= 2 and market.instrument.size_unit == "contract")
        await assert_books_equal(server, session, market)
        assert session.pipeline.sync.checksums_verified > 0
        # instrument facts from the REST endpoint: contracts of 0.01 BTC
        inst = market.instrument
        assert (inst.size_unit, inst.contract_value, inst.tick) == ("contract", 0.01, 0.1)
        t = market.trades[-1]
        assert t.venue == "okx" and t.size > 0 and abs(t.size * 10 - round(t.size * 10)) < 1e-9

        # a dropped update: seq gap -> SYNCING with the reason -> resubscribe -> LIVE
        resyncs = market.resyncs
        server.faults.drop_next("delta")
        await until(lambda: market.resyncs > resyncs and market.live, market=market, bad=bad)
        assert any(
            s.status is FeedStatus.SYNCING and s.reason.startswith("seq gap")
            for s in market.state_log
        )
        await assert_books_equal(server, session, market)

        # a corrupted checksum: checksum mismatch -> SYNCING -> LIVE
        resyncs, errors = market.resyncs, market.stats.checksum_errors
        server.faults.corrupt_next("delta")
        await until(lambda: market.resyncs > resyncs and market.live, market=market, bad=bad)
        assert market.stats.checksum_errors == errors + 1
        assert any(
            s.status is FeedStatus.SYNCING and "checksum" in s.reason for s in market.state_log
        )
        await assert_books_equal(server, session, market)

        # the server drops every connection: reconnect and resync
        connects = session.connect_attempts
        await server.kick()
        await until(
            lambda: session.connect_attempts > connects and market.live, market=market, bad=bad
        )
        await assert_books_equal(server, session, market)
        assert bad == []


async def test_e2e_zero_checksums_stay_live_and_instrument_from_rest():
    feed = venue_feed(OkxAdapter, "SOL-PERP", "/ws/v5/public", seed=12, rate=40)
    async with feed as (server, _adapter, market, session):
        assert market.instrument.tick == 0.01  # built-in default
        await until(lambda: market.live and market.instrument.tick == 0.001)  # the simulator's tick
        dialect = okx_client(server)
        dialect.send_checksum = False  # the live feed since mid-2026
        server.faults.corrupt_next("delta")  # nothing to corrupt: no checksum
        skipped = session.pipeline.sync.checksums_skipped
        await until(lambda: session.pipeline.sync.checksums_skipped > skipped + 5)
        assert market.live and market.stats.checksum_errors == 0 and market.resyncs == 0
        await assert_books_equal(server, session, market, "SOL-USDT-SWAP", "SOL-PERP")
        assert dialect.on_message("ping")[0].text == "pong"


async def test_e2e_live_style_feed_drops_the_texts_then_resyncs_when_checksums_resume():
    feed = venue_feed(OkxAdapter, "BTC-PERP", "/ws/v5/public", seed=13, rate=200)
    async with feed as (server, _adapter, market, session):
        await until(lambda: market.live)
        dialect = okx_client(server)
        dialect.send_checksum = False  # the live feed since mid-2026
        sync = session.pipeline.sync
        await until(lambda: not sync.texts_wanted and not sync.texts_ok, market=market)
        assert sync.bid_raw == {} and sync.ask_raw == {}
        assert market.live and market.resyncs == 0 and market.stats.checksum_errors == 0
        await assert_books_equal(server, session, market)
        # checksums come back: one resync, then they verify against the fresh snapshot's texts
        dialect.send_checksum = True
        verified = sync.checksums_verified
        await until(lambda: sync.checksums_verified > verified + 5 and market.live, market=market)
        assert market.resyncs == 1 and sync.texts_ok and sync.texts_wanted
        assert "checksums resumed" in " ".join(s.reason for s in market.state_log)
        await assert_books_equal(server, session, market)


def test_dialect_checksums_and_errors_follow_the_fact_sheet():
    from obview.sim.engine import SimMarket

    markets = {"BTC-PERP": SimMarket("BTC-PERP", seed=2, start_time=1000.0)}
    d = OkxDialect(markets, "/ws/v5/public")
    outs = d.on_message('{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT-SWAP"}]}')
    ack, snap = (json.loads(o.text) for o in outs)
    assert ack["event"] == "subscribe" and ack["arg"] == {
        "channel": "books",
        "instId": "BTC-USDT-SWAP",
    }
    data = snap["data"][0]
    assert snap["action"] == "snapshot" and data["prevSeqId"] == -1 and len(data["bids"]) == 400
    # numbers as OKX writes them (the recording has no trailing zero in 16,528 strings): an
    # adapter rebuilding the checksum's strings from floats would fail here, not only live
    nums = [x for row in data["bids"] + data["asks"] for x in row[:2]]
    assert any("." not in x for x in nums)
    assert not any(x.endswith(("0", ".")) and "." in x for x in nums), nums[:8]
    assert (
        okx_checksum([(r[0], r[1]) for r in data["bids"]], [(r[0], r[1]) for r in data["asks"]])
        == data["checksum"]
    )
    out = None
    t = 1000.0
    while out is None or not out:
        t += 0.05
        out = d.on_update(markets["BTC-PERP"].step(t))
    upd = out[0]
    assert upd.kind == "delta" and upd.corrupt is not None
    good, bad = json.loads(upd.text)["data"][0], json.loads(upd.corrupt)["data"][0]
    assert good["prevSeqId"] == data["seqId"] and good["checksum"] != bad["checksum"] != 0
    (err,) = d.on_message(
        '{"op":"subscribe","args":[{"channel":"books","instId":"DOGE-USDT-SWAP"}]}'
    )
    assert json.loads(err.text)["event"] == "error" and json.loads(err.text)["code"] == "60018"


async def _okx_without_ws_snapshot(monkeypatch, form=False):
    """A simulator whose OKX dialect sends no websocket snapshot (``form`` False: nothing,
    "empty": a snapshot push with no levels), and an adapter on it that falls back to REST after
    0.5 s: (server, adapter, market)."""
    monkeypatch.setattr(OkxDialect, "send_snapshot", form)
    monkeypatch.setattr(OkxAdapter, "ws_snapshot_timeout", 0.5)
    server = await start_server(seed=13, rate=40, symbols=["BTC-PERP"])
    adapter = OkxAdapter(
        "BTC-PERP", endpoint=server.url("/ws/v5/public"), rest_endpoint=server.http_url()
    )
    return server, adapter, Market(adapter.default_instrument())


@pytest.mark.parametrize("form", [False, "empty"])
async def test_e2e_without_websocket_snapshot_syncs_from_rest(monkeypatch, form):
    """OKX announced the removal of the websocket snapshot: the adapter must then build the
    book from the REST snapshot plus the buffered updates (prevSeqId <= S < seqId). Where a
    snapshot push still comes but holds no levels, it is no book: LIVE on it would show the
    updates alone as the book."""
    server, adapter, market = await _okx_without_ws_snapshot(monkeypatch, form)
    fetched: list[str] = []
    from obview.feed.http import fetch

    async def counting_fetch(req):
        fetched.append(req.url)
        return await fetch(req)

    session = FeedSession(adapter, market, options=fast_options(), fetcher=counting_fetch)
    task = session.start()
    bad: list = []
    try:
        await until(lambda: market.live, market=market, bad=bad)
        assert any("/api/v5/market/books" in u for u in fetched)
        await assert_books_equal(server, session, market)
        # a gap with no websocket snapshot to resubscribe into: REST again, then LIVE
        resyncs = market.resyncs
        server.faults.drop_next("delta")
        await until(lambda: market.resyncs > resyncs and market.live, market=market, bad=bad)
        assert sum("/api/v5/market/books" in u for u in fetched) >= 2
        await assert_books_equal(server, session, market)
        assert bad == []
    finally:
        await session.stop()
        task.cancel()
        await server.close()


async def test_rest_fallback_waits_as_long_as_the_venue_asks(monkeypatch):
    # OKX's REST fallback (no websocket snapshot) answered 429 with a Retry-After of 1.2 s: the
    # fallback, which looks every 0.125 s here, must not ask again before then
    from obview.feed.http import HttpError, fetch

    server, adapter, market = await _okx_without_ws_snapshot(monkeypatch)
    books: list[float] = []

    async def limited_fetch(req):
        if "/api/v5/market/books" in req.url:
            books.append(time.monotonic())
            if len(books) == 1:
                raise HttpError("HTTP 429 from the books endpoint", 429, 1.2)
        return await fetch(req)

    session = FeedSession(adapter, market, options=fast_options(), fetcher=limited_fetch)
    task = session.start()
    try:
        await until(lambda: market.live, market=market, bad=[])
        assert len(books) >= 2 and books[1] - books[0] >= 1.15, books
        await assert_books_equal(server, session, market)
    finally:
        await session.stop()
        task.cancel()
        await server.close()


async def test_resyncs_past_the_connections_subscribe_limit_reconnect_instead(monkeypatch):
    # OKX takes 480 subscribe/unsubscribe requests a connection an hour; a resync spends two.
    # Here the limit is 8 (nine tenths of it: 8): the connection's own subscribe (1) and three
    # resyncs (6) fit; the fourth reconnects, and the new connection counts afresh.
    monkeypatch.setattr(OkxAdapter, "resubscribe_budget", (8, 3600.0))
    feed = venue_feed(OkxAdapter, "BTC-PERP", "/ws/v5/public", seed=5, rate=40)
    async with feed as (server, _adapter, market, session):
        bad: list = []
        await until(lambda: market.live, market=market, bad=bad)
        assert len(session.book_stream.spec.subscribe) == 1
        connects = session.connect_attempts
        sent: list[str] = []
        real_send = session._send

        async def counting_send(st, frame):
            sent.append(frame)
            await real_send(st, frame)

        monkeypatch.setattr(session, "_send", counting_send)
        base = market.resyncs
        for n in range(1, 6):
            server.faults.drop_next("delta")
            await until(lambda n=n: market.resyncs >= base + n and market.live, market=market, bad=bad)
            await assert_books_equal(server, session, market)
            ops = sum('"op":"subscribe"' in f or '"op":"unsubscribe"' in f for f in sent)
            if n <= 3:  # resubscribed on the same connection
                assert (session.connect_attempts, ops) == (connects, 2 * n), (n, sent)
            elif n == 4:  # reconnected: the new connection's own subscribe, no resubscribe
                assert (session.connect_attempts, ops) == (connects + 1, 7), (n, sent)
                assert any("resubscribe limit" in s.reason for s in market.state_log)
            else:  # the new connection has room again
                assert (session.connect_attempts, ops) == (connects + 1, 9), (n, sent)
        assert bad == []


def test_the_subscribe_count_forgets_requests_older_than_its_window(monkeypatch):
    from types import SimpleNamespace

    from obview.feed import repair as repair_mod

    clock = [1000.0]
    monkeypatch.setattr(repair_mod.time, "monotonic", lambda: clock[0])
    session = SimpleNamespace(
        opts=SimpleNamespace(resync_min_interval=0.5),
        adapter=SimpleNamespace(resubscribe_budget=(20, 3600.0)),
    )
    rep = repair_mod.BookRepair(session)
    st = SimpleNamespace(ws=object(), up_since=1000.0, spec=SimpleNamespace(subscribe=["s"]))
    # 20 - 2 = 18 requests: the subscribe and eight resyncs of two
    assert all(rep._may_send(st, 2) for _ in range(8))
    assert not rep._may_send(st, 2)
    clock[0] += 3599.0
    assert not rep._may_send(st, 2)
    clock[0] += 2.0  # the first hour's requests have left the window
    assert rep._may_send(st, 2)
    st.ws, st.up_since = object(), clock[0]  # a new connection starts a new count
    assert all(rep._may_send(st, 2) for _ in range(8))
    assert not rep._may_send(st, 2)
    session.adapter.resubscribe_budget = None  # a venue without a limit
    assert all(rep._may_send(st, 2) for _ in range(100))
