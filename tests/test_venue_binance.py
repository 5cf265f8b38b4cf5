"""Binance USD-M adapter: doc examples, U/u/pu sync rules, the real recording, the simulator.

The recording ../shared/recordings/binance.jsonl (2021, four USD-M perps on one combined
legacy-route socket, REST snapshots arriving after the first depth events) is the ground
truth: it is replayed whole for every instrument through the same FeedPipeline the app runs,
and checked against a reference book rebuilt here independently from the fact sheet's
procedure. The payload formats are unchanged today; only the URLs moved to /public and /market.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from e2e import drop_a_delta_and_recover, until, venue_feed
from obview.feed.pipeline import FeedPipeline, NeedResync
from obview.market import Market
from obview.model import BookDelta, BookSnapshot, FeedStatus, Side, Trade
from obview.sim.dialects.binance import update_ids
from obview.venues.base import FrameError, ResyncMode, UnknownSymbol, VenueError
from obview.venues.binance import BinanceAdapter, BinanceSync
from obview.venues.registry import get_adapter

REPO = Path(__file__).resolve().parents[1]
RECORDINGS = Path(os.environ.get("OBVIEW_RECORDINGS", REPO.parent / "shared" / "recordings"))
RECORDING = RECORDINGS / "binance.jsonl"
INSTRUMENTS = ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")

# doc examples (fact sheet section 4 / 1)
DOC_DEPTH = (
    '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1626992741037,"T":1626992741024,'
    '"s":"BTCUSDT","U":600859599090,"u":600859600917,"pu":600859598061,'
    '"b":[["7.5040","813"],["7.6090","0"]],"a":[["7.6150","1563"]]}}'
)
DOC_AGG = (
    '{"e":"aggTrade","E":1626992741575,"a":16599292,"s":"CTKUSDT","p":"1.01100","q":"10",'
    '"f":23961322,"l":23961322,"T":1626992741421,"m":false}'
)
DOC_REST = (
    b'{"lastUpdateId":1027024,"E":1589436922972,"T":1589436922959,'
    b'"bids":[["4.00000000","431.00000000"]],"asks":[["4.00000200","12.00000000"]]}'
)


def make(symbol: str = "BTC-PERP", **kw):
    ad = BinanceAdapter(symbol, **kw)
    market = Market(ad.default_instrument())
    return ad, market, FeedPipeline(ad, market)


def depth(
    U: int, u: int, pu: int, bids=(), asks=(), sym: str = "BTCUSDT", E: int = 1_700_000_000_000
) -> str:
    data = {
        "e": "depthUpdate",
        "E": E,
        "T": E - 2,
        "s": sym,
        "U": U,
        "u": u,
        "pu": pu,
        "b": [[str(p), str(q)] for p, q in bids],
        "a": [[str(p), str(q)] for p, q in asks],
    }
    return orjson.dumps({"stream": f"{sym.lower()}@depth@100ms", "data": data}).decode()


def snapshot(last_id: int, bids, asks) -> bytes:
    return orjson.dumps(
        {
            "lastUpdateId": last_id,
            "E": 1_700_000_000_000,
            "T": 1_700_000_000_000,
            "bids": [[str(p), str(q)] for p, q in bids],
            "asks": [[str(p), str(q)] for p, q in asks],
        }
    )


BIDS = [(100.0, 1.0), (99.9, 2.0), (99.8, 3.0)]
ASKS = [(100.1, 1.5), (100.2, 2.5), (100.3, 3.5)]


# -- adapter basics ---------------------------------------------------------------------------
def test_registry_symbols_and_urls():
    assert get_adapter("binance") is BinanceAdapter
    ad = BinanceAdapter("BTC-PERP")
    assert ad.native == "BTCUSDT"
    assert BinanceAdapter("ETH-PERP").native == "ETHUSDT"
    assert BinanceAdapter("SOL-PERP").native == "SOLUSDT"
    assert ad.resync_mode is ResyncMode.REST
    depth_s, trade_s = ad.streams()
    # the 2026 route split: book on /public, trades on /market, never the legacy /stream route
    assert depth_s.url == "wss://fstream.binance.com/public/stream?streams=btcusdt@depth@100ms"
    assert trade_s.url == "wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade"
    assert depth_s.book and not depth_s.trades
    assert trade_s.trades and not trade_s.book
    # silent stall on a dead route: every stream has a no-data watchdog
    assert 0 < depth_s.stale_after <= 15 and 0 < trade_s.stale_after <= 60
    assert (
        ad.snapshot_request().url
        == "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
    )
    with pytest.raises(UnknownSymbol, match="BTC-PERP"):
        BinanceAdapter("DOGE-PERP")


def test_endpoint_overrides():
    ad = BinanceAdapter(
        "BTC-PERP", endpoint="ws://127.0.0.1:9/", rest_endpoint="http://127.0.0.1:9"
    )
    assert ad.streams()[0].url == "ws://127.0.0.1:9/public/stream?streams=btcusdt@depth@100ms"
    assert ad.snapshot_request().url.startswith("http://127.0.0.1:9/fapi/v1/depth?symbol=BTCUSDT")
    assert ad.instrument_request().url == "http://127.0.0.1:9/fapi/v1/exchangeInfo"


def test_parse_doc_depth_example():
    ad = BinanceAdapter("BTC-PERP")
    (ev,) = ad.parse("depth", DOC_DEPTH, 5.0)
    assert isinstance(ev, BookDelta)
    assert ev.bids == [(7.504, 813.0), (7.609, 0.0)]
    assert ev.asks == [(7.615, 1563.0)]
    assert (ev.first_seq, ev.seq, ev.prev_seq) == (600859599090, 600859600917, 600859598061)
    assert ev.ts_exchange == pytest.approx(1626992741.037)
    assert ev.ts_local == 5.0


def test_parse_doc_aggtrade_taker_side():
    ad = BinanceAdapter("BTC-PERP", instrument="CTKUSDT")
    (t,) = ad.parse("trades", DOC_AGG, 1.0)
    assert isinstance(t, Trade)
    assert (t.price, t.size, t.trade_id) == (1.011, 10.0, "16599292")
    assert t.side is Side.BUY  # m=false: buyer was the taker
    assert t.ts_exchange == pytest.approx(1626992741.421)
    wrapped = (
        '{"stream":"ctkusdt@aggTrade","data":' + DOC_AGG.replace('"m":false', '"m":true') + "}"
    )
    (t2,) = ad.parse("trades", wrapped, 1.0)
    assert t2.side is Side.SELL  # m=true: buyer was the maker, the taker sold


def test_parse_doc_rest_snapshot():
    ad = BinanceAdapter("BTC-PERP")
    snap = ad.parse_snapshot(DOC_REST, 2.0)
    assert isinstance(snap, BookSnapshot)
    assert snap.seq == 1027024
    assert snap.bids == [(4.0, 431.0)] and snap.asks == [(4.000002, 12.0)]
    assert snap.ts_exchange == pytest.approx(1589436922.972)
    with pytest.raises(FrameError):
        ad.parse_snapshot(b'{"code":-1121,"msg":"Invalid symbol."}', 0.0)


def test_other_symbols_acks_errors_and_garbage():
    ad = BinanceAdapter("BTC-PERP")
    assert ad.parse("depth", depth(1, 2, 0, sym="ETHUSDT"), 0.0) == []
    assert ad.parse("depth", '{"result":null,"id":1}', 0.0) == []
    (err,) = ad.parse("depth", '{"error":{"code":2,"msg":"Invalid request"},"id":1}', 0.0)
    assert isinstance(err, VenueError) and "Invalid request" in err.reason
    ticker = '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":1,"s":"BTCUSDT"}}'
    assert ad.parse("depth", ticker, 0.0) == []
    with pytest.raises(FrameError):
        ad.parse("depth", "{not json", 0.0)
    with pytest.raises(FrameError):
        ad.parse("depth", '{"stream":"x","data":{"e":"mystery"}}', 0.0)
    _, market, pipe = make()
    pipe.on_frame(
        "depth", '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT"}}', 0.0
    )
    assert pipe.parse_errors == 1 and market.stats.bad_frames == 1


def test_instrument_facts_and_defaults():
    ad = BinanceAdapter("BTC-PERP")
    d = ad.default_instrument()
    assert (d.tick, d.lot, d.size_unit, d.base, d.quote) == (0.1, 0.001, "base", "BTC", "USDT")
    body = orjson.dumps(
        {
            "symbols": [
                {
                    "symbol": "ETHUSDT",
                    "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01"}],
                },
                {
                    "symbol": "BTCUSDT",
                    "baseAsset": "BTC",
                    "quoteAsset": "USDT",
                    "contractType": "PERPETUAL",
                    "filters": [
                        {"filterType": "PRICE_FILTER", "tickSize": "0.50", "minPrice": "556.80"},
                        {"filterType": "LOT_SIZE", "stepSize": "0.002", "minQty": "0.001"},
                    ],
                },
            ]
        }
    )
    inst = ad.parse_instrument(body)
    assert (inst.tick, inst.lot, inst.native, inst.symbol) == (0.5, 0.002, "BTCUSDT", "BTC-PERP")
    with pytest.raises(FrameError):
        BinanceAdapter("SOL-PERP").parse_instrument(body)


# -- sync rules ---------------------------------------------------------------------------------
def test_buffered_snapshot_procedure():
    ad, market, pipe = make()
    # three events before the snapshot; the REST snapshot (L=105) arrives afterwards
    assert pipe.on_frame("depth", depth(90, 100, 80, bids=[(99.0, 9.0)]), 1.0) == []
    pipe.on_frame("depth", depth(101, 104, 100, bids=[(99.5, 1.0)]), 1.1)
    pipe.on_frame("depth", depth(105, 108, 104, asks=[(100.1, 7.0)]), 1.2)
    assert market.state.status is not FeedStatus.LIVE and market.book.empty
    assert pipe.on_snapshot_body(snapshot(105, BIDS, ASKS), 1.3) == []
    assert market.state.status is FeedStatus.LIVE
    # u < L dropped (99.0 and 99.5 never appear); the U <= L <= u event applied
    assert 99.0 not in market.book.bids and 99.5 not in market.book.bids
    assert market.book.asks[100.1] == 7.0
    # pu continuity afterwards
    pipe.on_frame("depth", depth(109, 110, 108, bids=[(100.0, 0)]), 1.4)
    assert market.book.best_bid() == (99.9, 2.0)
    assert market.state.status is FeedStatus.LIVE and market.stats.gaps == 0


def test_snapshot_too_old_refetches_and_keeps_buffer():
    ad, market, pipe = make()
    pipe.on_frame("depth", depth(201, 205, 190, bids=[(99.7, 4.0)]), 1.0)
    pipe.on_frame("depth", depth(206, 210, 205, bids=[(99.6, 5.0)]), 1.1)
    actions = pipe.on_snapshot_body(snapshot(150, BIDS, ASKS), 1.2)
    assert [type(a) for a in actions] == [NeedResync]
    assert "too old" in actions[0].reason
    assert market.state.status is FeedStatus.SYNCING and market.book.empty
    assert pipe.sync.snapshot_too_old == 1
    # buffered events survive the re-fetch; more arrive meanwhile
    pipe.on_frame("depth", depth(211, 215, 210, asks=[(100.4, 6.0)]), 1.3)
    assert pipe.on_snapshot_body(snapshot(207, BIDS, ASKS), 1.4) == []
    assert market.state.status is FeedStatus.LIVE
    assert market.book.bids[99.6] == 5.0 and market.book.asks[100.4] == 6.0
    assert 99.7 not in market.book.bids  # u=205 < L=207: dropped


def test_snapshot_at_event_boundary_bridges_by_pu():
    ad, market, pipe = make()
    assert pipe.on_snapshot_body(snapshot(300, BIDS, ASKS), 1.0) == []
    assert market.state.status is FeedStatus.LIVE  # empty buffer: the snapshot is whole
    # next event starts after L but continues it exactly (pu == L)
    assert pipe.on_frame("depth", depth(301, 305, 300, bids=[(100.05, 1.0)]), 1.1) == []
    assert market.book.best_bid() == (100.05, 1.0)
    assert market.stats.gaps == 0


def test_first_event_after_snapshot_with_hole_is_a_gap():
    ad, market, pipe = make()
    pipe.on_snapshot_body(snapshot(300, BIDS, ASKS), 1.0)
    actions = pipe.on_frame("depth", depth(320, 325, 310, bids=[(100.05, 1.0)]), 1.1)
    assert [type(a) for a in actions] == [NeedResync]
    assert market.state.status is FeedStatus.SYNCING and market.stats.gaps == 1


def test_pu_gap_resyncs_without_reconnect_and_recovers():
    ad, market, pipe = make()
    pipe.on_snapshot_body(snapshot(10, BIDS, ASKS), 1.0)
    pipe.on_frame("depth", depth(10, 12, 9), 1.1)
    actions = pipe.on_frame("depth", depth(15, 17, 14, bids=[(99.95, 1.0)]), 1.2)  # pu 14 != 12
    assert len(actions) == 1 and isinstance(actions[0], NeedResync)
    assert "seq gap 12" in actions[0].reason
    assert market.state.status is FeedStatus.SYNCING and market.book.empty
    # a second broken event does not ask again while the re-fetch is pending
    assert pipe.on_frame("depth", depth(18, 19, 17), 1.3) == []
    pipe.on_frame("depth", depth(20, 22, 19, asks=[(100.15, 2.0)]), 1.4)
    assert pipe.on_snapshot_body(snapshot(21, BIDS, ASKS), 1.5) == []
    assert market.state.status is FeedStatus.LIVE and market.book.asks[100.15] == 2.0
    assert market.stats.gaps == 1 and market.resyncs == 1


def test_snapshot_taken_inside_the_event_that_showed_the_gap_joins_it():
    """The event that reveals a gap is sound (our book is not), and the snapshot fetched for
    the repair is often taken while that very event was being gathered: U <= L <= u. Keeping
    it lets the next event follow on; dropping it made the repair itself read as a new gap."""
    ad, market, pipe = make()
    pipe.on_snapshot_body(snapshot(10, BIDS, ASKS), 1.0)
    pipe.on_frame("depth", depth(10, 12, 9), 1.1)
    actions = pipe.on_frame("depth", depth(15, 19, 14, bids=[(99.95, 1.0)]), 1.2)  # pu 14 != 12
    assert [type(a) for a in actions] == [NeedResync] and market.stats.gaps == 1
    assert pipe.on_snapshot_body(snapshot(17, BIDS, ASKS), 1.3) == []  # L=17 inside [15, 19]
    assert market.state.status is FeedStatus.LIVE and market.book.bids[99.95] == 1.0
    assert pipe.on_frame("depth", depth(21, 23, 19, asks=[(100.15, 2.0)]), 1.4) == []
    assert market.state.status is FeedStatus.LIVE and market.book.asks[100.15] == 2.0
    assert market.stats.gaps == 1 and market.resyncs == 1


def test_duplicate_event_is_ignored():
    ad, market, pipe = make()
    pipe.on_snapshot_body(snapshot(10, BIDS, ASKS), 1.0)
    pipe.on_frame("depth", depth(10, 12, 9, bids=[(99.9, 5.0)]), 1.1)
    pipe.on_frame("depth", depth(13, 14, 12, bids=[(99.9, 6.0)]), 1.2)
    pipe.on_frame("depth", depth(13, 14, 12, bids=[(99.9, 6.0)]), 1.3)  # replayed
    pipe.on_frame("depth", depth(10, 12, 9, bids=[(99.9, 5.0)]), 1.4)  # older
    assert market.book.bids[99.9] == 6.0
    assert market.state.status is FeedStatus.LIVE and market.stats.gaps == 0


def test_crossed_book_is_a_gap():
    ad, market, pipe = make()
    pipe.on_snapshot_body(snapshot(10, BIDS, ASKS), 1.0)
    actions = pipe.on_frame("depth", depth(10, 12, 9, bids=[(100.5, 1.0)]), 1.1)
    assert [type(a) for a in actions] == [NeedResync]
    assert market.state.reason == "crossed by 40 bp"
    # a cross of a tick or two is a fraction of a basis point: said so, not "0 bp"
    ad, market, pipe = make()
    pipe.on_snapshot_body(snapshot(10, BIDS, ASKS), 1.0)
    pipe.on_frame("depth", depth(10, 12, 9, bids=[(100.11, 1.0)]), 1.1)
    assert market.state.reason == "crossed by 1.00 bp"  # not "1 bp", and "0 bp" for less


def test_reset_after_reconnect_forgets_buffer():
    sync = BinanceSync(Market(BinanceAdapter("BTC-PERP").default_instrument()).book)
    sync.on_delta(BookDelta("binance", "BTC-PERP", [], [], seq=5, prev_seq=4, first_seq=5))
    assert len(sync.buffer) == 1
    sync.reset()
    assert sync.buffer == []


# -- the real recording ---------------------------------------------------------------------------
def load_recording(path: Path = RECORDING) -> list[dict]:
    if not path.exists():
        pytest.skip(f"recording not found: {path}")
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def http_symbol(url: str) -> str:
    return url.split("symbol=")[1].split("&")[0]


class Replay:
    """Drive one instrument of the recording through a FeedPipeline, like `obview replay`."""

    def __init__(self, instrument: str) -> None:
        self.ad = BinanceAdapter("BTC-PERP", instrument=instrument)
        self.market = Market(self.ad.default_instrument())
        self.pipe = FeedPipeline(self.ad, self.market)
        self.skipped = 0
        self.crossed_while_live = 0
        self.live_frames = 0
        self.needs_resync = 0

    def feed(self, lines: list[dict]) -> None:
        for rec in lines:
            if "http" in rec:
                if http_symbol(rec["http"]) == self.ad.native:
                    acts = self.pipe.on_snapshot_body(rec["raw"].encode(), rec["t"])
                    self.needs_resync += sum(isinstance(a, NeedResync) for a in acts)
                continue
            if "raw" not in rec:
                continue
            events = self.ad.parse("depth", rec["raw"], rec["t"])
            if not events:
                self.skipped += 1
            acts = self.pipe.on_frame("depth", rec["raw"], rec["t"])
            self.needs_resync += sum(isinstance(a, NeedResync) for a in acts)
            if self.market.live:
                self.live_frames += 1
                if self.market.book.is_crossed():
                    self.crossed_while_live += 1


def reference_book(lines: list[dict], native: str):
    """The fact sheet's procedure, written out plainly with dicts (no obview sync code).

    In this file the REST snapshot can arrive before the event that bridges it: events are
    buffered until the snapshot, then those with u < L are dropped whether they were buffered
    or arrive later, and the first kept one must have U <= L <= u.
    """
    events: list[dict] = []
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    L = None
    last_u = None
    for rec in lines:
        if "http" in rec:
            if http_symbol(rec["http"]) == native:
                snap = orjson.loads(rec["raw"])
                L = snap["lastUpdateId"]
                bids = {float(p): float(q) for p, q in snap["bids"]}
                asks = {float(p): float(q) for p, q in snap["asks"]}
            continue
        if "raw" not in rec:
            continue
        d = orjson.loads(rec["raw"]).get("data", {})
        if d.get("e") == "depthUpdate" and d.get("s") == native:
            events.append(d)
        if L is None:
            continue
        while events:
            e = events.pop(0)
            if last_u is None:
                if e["u"] < L:
                    continue
                assert e["U"] <= L <= e["u"]
            else:
                assert e["pu"] == last_u
            apply_ref(bids, asks, e)
            last_u = e["u"]
    assert last_u is not None
    # only the snapshot's window is known: a side it filled to the 1000-level limit bounds the
    # book at its deepest price (beyond it, only levels that changed since would show)
    lo = min(float(p) for p, _ in snap["bids"]) if len(snap["bids"]) >= 1000 else None
    hi = max(float(p) for p, _ in snap["asks"]) if len(snap["asks"]) >= 1000 else None
    known = lambda p: (lo is None or p >= lo) and (hi is None or p <= hi)  # noqa: E731
    return {p: q for p, q in bids.items() if known(p)}, {p: q for p, q in asks.items() if known(p)}


def apply_ref(bids, asks, e) -> None:
    for side, key in ((bids, "b"), (asks, "a")):
        for p, q in e[key]:
            if float(q) == 0:
                side.pop(float(p), None)
            else:
                side[float(p)] = float(q)


@pytest.mark.parametrize("native", INSTRUMENTS)
def test_recording_replay_whole(native):
    lines = load_recording()
    r = Replay(native)
    r.feed(lines)
    m = r.market
    assert r.pipe.parse_errors == 0
    assert m.state.status is FeedStatus.LIVE, m.state
    assert m.stats.gaps == 0 and m.stats.checksum_errors == 0 and m.resyncs == 0
    assert r.needs_resync == 0
    assert r.crossed_while_live == 0 and not m.book.is_crossed()
    assert r.live_frames > 50
    # frames skipped on purpose: other instruments, bookTicker, kline (the file has no errors)
    raw_frames = sum(1 for x in lines if "raw" in x and "http" not in x)
    own = 0
    for x in lines:
        if "raw" in x and "http" not in x:
            d = orjson.loads(x["raw"])["data"]
            if d.get("s") == native and d["e"] in ("depthUpdate", "aggTrade"):
                own += 1
    assert r.skipped == raw_frames - own
    # trades with the taker side from `m`
    trades = [t for t in m.trades]
    expected = [
        orjson.loads(x["raw"])["data"]
        for x in lines
        if "raw" in x
        and "http" not in x
        and '"aggTrade"' in x["raw"]
        and f'"s":"{native}"' in x["raw"]
    ]
    assert r.pipe.trades == len(expected) > 0
    for t, e in zip(trades, expected, strict=True):
        assert t.side is (Side.SELL if e["m"] else Side.BUY)
        assert t.price == float(e["p"]) and t.size == float(e["q"])
    # the book equals the independent reference rebuilt from the same frames
    rb, ra = reference_book(lines, native)
    assert dict(m.book.bids) == rb
    assert dict(m.book.asks) == ra


def test_recording_worked_example_sushi():
    """Fact sheet: the SUSHIUSDT snapshot L=600859605926; three events with u < L are dropped
    (here one was buffered and two arrive after the snapshot), the 4th (U == L) is applied."""
    lines = load_recording()
    ad = BinanceAdapter("BTC-PERP", instrument="SUSHIUSDT")
    market = Market(ad.default_instrument())
    pipe = FeedPipeline(ad, market)
    sync = pipe.sync
    L = 600859605926
    dropped: list[int] = []
    applied: list[tuple[int, int]] = []
    snapped = False
    for rec in lines:
        if "http" in rec:
            if http_symbol(rec["http"]) == "SUSHIUSDT":
                dropped += [d.seq for d in sync.buffer if d.seq < L]
                pipe.on_snapshot_body(rec["raw"].encode(), rec["t"])
                assert sync.last_seq == L and market.live and sync.first_pending
                snapped = True
            continue
        if "raw" not in rec:
            continue
        evs = [e for e in ad.parse("depth", rec["raw"], rec["t"]) if isinstance(e, BookDelta)]
        before = sync.last_seq
        pipe.on_frame("depth", rec["raw"], rec["t"])
        for e in evs:
            if snapped and sync.last_seq == before:
                dropped.append(e.seq)
            elif snapped:
                applied.append((e.first_seq, e.seq))
        if applied:
            break
    assert len(dropped) == 3 and all(u < L for u in dropped)
    assert applied[0] == (600859605926, 600859607423)
    assert not sync.first_pending


def applied_depth_lines(lines: list[dict], native: str, strict: bool = True) -> list[int]:
    """Indexes of this instrument's depth events that carry changes the snapshot does not
    have (u > L; with ``strict=False`` also u == L)."""
    L = None
    out = []
    for i, x in enumerate(lines):
        if "http" in x:
            if http_symbol(x["http"]) == native:
                L = orjson.loads(x["raw"])["lastUpdateId"]
            continue
        if L is None or "raw" not in x:
            continue
        d = orjson.loads(x["raw"])["data"]
        if (
            d.get("e") == "depthUpdate"
            and d["s"] == native
            and (d["u"] > L or (not strict and d["u"] == L))
        ):
            out.append(i)
    return out


@pytest.mark.parametrize("native", INSTRUMENTS)
def test_recording_with_one_update_removed_is_never_live_and_wrong(native):
    lines = load_recording()
    applied = applied_depth_lines(lines, native)
    assert len(applied) >= 4
    # the first event with news after the snapshot, one in the middle, the one before last
    for victim in (applied[0], applied[len(applied) // 2], applied[-2]):
        cut = lines[:victim] + lines[victim + 1 :]
        r = Replay(native)
        r.feed(cut)
        m = r.market
        assert r.pipe.parse_errors == 0
        assert m.stats.gaps >= 1
        assert r.needs_resync >= 1
        # no new snapshot follows in the file, so the book must never be LIVE again
        assert m.state.status is not FeedStatus.LIVE
        assert m.book.empty


@pytest.mark.parametrize("native", ["AKROUSDT", "KEEPUSDT", "CTKUSDT"])
def test_recording_event_ending_at_snapshot_id_is_redundant(native):
    """For these three the snapshot's lastUpdateId equals the bridging event's final id u, so
    the snapshot already holds that event: without it the next event continues the snapshot
    (pu == L) and the book is still whole and equal to the reference."""
    lines = load_recording()
    bridging = applied_depth_lines(lines, native, strict=False)[0]
    L = next(
        orjson.loads(x["raw"])["lastUpdateId"]
        for x in lines
        if "http" in x and http_symbol(x["http"]) == native
    )
    assert orjson.loads(lines[bridging]["raw"])["data"]["u"] == L
    r = Replay(native)
    r.feed(lines[:bridging] + lines[bridging + 1 :])
    assert r.market.stats.gaps == 0 and r.market.live
    rb, ra = reference_book(lines, native)
    assert dict(r.market.book.bids) == rb and dict(r.market.book.asks) == ra


# -- end to end: the simulator speaking the Binance dialect ---------------------------------------

from obview.feed.session import FeedSession, SessionOptions  # noqa: E402
from obview.sim.server import start_server  # noqa: E402


def top(book, n: int = 20):
    bids, asks = book.top(n)
    return [(round(p, 8), round(s, 8)) for p, s in bids], [
        (round(p, 8), round(s, 8)) for p, s in asks
    ]


async def frozen_equal(server, market, sim, sync) -> None:
    """Stop the simulator stepping, let the client catch up, compare the books at one seq."""
    server.set_rate(0)

    def sent_u():
        # the last update id the dialect sent (a step that changed nothing sends no event)
        return max(
            (c.dialect.last_u.get("BTC-PERP", 0) for c in server.clients if c.dialect.depth),
            default=None,
        )

    # up to date: everything the dialect sent is applied (a snapshot may be newer still)
    await until(
        lambda: market.live and sync.last_seq is not None and sync.last_seq >= (sent_u() or 0)
    )
    assert sync.last_seq <= update_ids("BTC-PERP", sim.seq)[1]
    assert top(market.book) == top(sim.book)
    assert len(market.book.bids) == len(sim.book.bids) and len(market.book.asks) == len(
        sim.book.asks
    )
    server.set_rate(40)


def session_opts() -> SessionOptions:
    return SessionOptions(
        backoff_base=0.05, backoff_max=0.2, connect_timeout=2.0, resync_min_interval=0.05
    )


async def test_e2e_dialect_sync_gap_and_reconnect():
    feed = venue_feed(BinanceAdapter, "BTC-PERP", "", seed=7, rate=40, options=session_opts())
    async with feed as (server, _adapter, market, session):
        sim = server.markets["BTC-PERP"]
        sync = session.pipeline.sync
        await until(lambda: market.live)
        # instrument facts came from the dialect's exchangeInfo
        await until(lambda: market.instrument.tick == sim.tick and market.instrument.lot == sim.lot)
        await frozen_equal(server, market, sim, sync)
        await until(lambda: session.pipeline.trades > 0)
        t = market.trades[-1]
        assert t.side in (Side.BUY, Side.SELL) and t.price > 0
        # a dropped depth event: pu breaks -> SYNCING with a reason -> REST resync -> LIVE
        n_sockets = session.connect_attempts
        await drop_a_delta_and_recover(server, market)
        assert session.connect_attempts == n_sockets  # resynced over REST, socket kept
        await frozen_equal(server, market, sim, sync)
        # a kick: both sockets reconnect, the book is fetched again
        await server.kick()
        await until(lambda: any(s.status is FeedStatus.RECONNECTING for s in market.state_log))
        await until(lambda: market.live and session.connect_attempts >= n_sockets + 2)
        await frozen_equal(server, market, sim, sync)
        assert session.pipeline.parse_errors == 0


async def test_a_lost_trade_socket_leaves_the_book_live_and_says_so():
    # Binance needs two sockets: the book on /public, trades on /market. Losing the trade
    # socket does not make the book wrong: it stays LIVE, its reason names the trade stream's
    # trouble, and the reason clears once trades flow again.
    feed = venue_feed(BinanceAdapter, "BTC-PERP", "", seed=7, rate=40, options=session_opts())
    async with feed as (server, _adapter, market, session):
        await until(lambda: market.live and session.pipeline.trades > 0)
        resyncs, seen = market.resyncs, len(market.state_log)
        server.faults.refuse_handshake(503)  # it cannot come back at once
        await server.kick(path="/market")
        await until(lambda: market.live and market.state.reason.startswith("trades: reconnecting"))
        server.faults.refuse_handshake(None)
        await until(lambda: market.live and market.state.reason == "")
        states = list(market.state_log)[seen:]
        assert states and all(s.status is FeedStatus.LIVE for s in states), states
        trades = session.pipeline.trades
        await until(lambda: session.pipeline.trades > trades)
        assert market.resyncs == resyncs  # the book was never touched


async def test_dialect_routes_and_rest_errors():
    from obview.sim.dialects.binance import BinanceDialect

    server = await start_server(seed=3, symbols=["BTC-PERP"], rate=0)
    try:
        sim = server.markets["BTC-PERP"]
        status, body = BinanceDialect.http(
            server.markets, "/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": "5"}, b""
        )
        snap = orjson.loads(body)
        first, last = update_ids("BTC-PERP", sim.book_seq)
        assert status == 200 and first <= snap["lastUpdateId"] <= last and len(snap["bids"]) == 5
        status, body = BinanceDialect.http(
            server.markets, "/fapi/v1/depth", {"symbol": "NOPE"}, b""
        )
        assert status == 400 and orjson.loads(body)["code"] == -1121
        # depth on /market and aggTrade on /public are accepted but silent (the route split)
        d = BinanceDialect(server.markets, "/market/stream?streams=btcusdt@depth@100ms")
        assert d.depth == set()
        d = BinanceDialect(server.markets, "/public/stream?streams=btcusdt@depth@100ms")
        assert d.depth == {"BTC-PERP"} and d.combined
        raw = BinanceDialect(server.markets, "/public/ws/btcusdt@depth@100ms")
        assert raw.depth == {"BTC-PERP"} and not raw.combined
        upd = sim.step(sim.ts + 0.05)
        while not (upd.bids or upd.asks):
            upd = sim.step(sim.ts + 0.05)
        (frame,) = [o for o in raw.on_update(upd) if o.kind == "delta"]
        ev = orjson.loads(frame.text)
        first, last = update_ids("BTC-PERP", upd.seq)
        assert ev["e"] == "depthUpdate" and (ev["U"], ev["u"]) == (first, last)
        # update ids are shared by every symbol on the venue: never pu + 1, as in the recording
        assert ev["pu"] == update_ids("BTC-PERP", upd.prev_book_seq)[1] and ev["U"] - ev["pu"] >= 2
        # and the adapter reads the raw form too
        (delta,) = BinanceAdapter("BTC-PERP").parse("depth", frame.text, 0.0)
        assert (delta.first_seq, delta.seq) == (first, last) and len(delta.bids) == len(upd.bids)
        (ack,) = d.on_message('{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":4}')
        assert orjson.loads(ack.text) == {"result": None, "id": 4}
        (err,) = d.on_message('{"method":"SUBSCRIBE","params":["dogeusdt@depth"],"id":5}')
        assert "error" in orjson.loads(err.text)
    finally:
        await server.close()


class WrongRoute(BinanceAdapter):
    """Depth asked on the trade route: the handshake succeeds and nothing ever arrives (what
    the legacy URLs do since the route split)."""

    def streams(self):
        specs = super().streams()
        specs[0].url = specs[0].url.replace("/public/", "/market/")
        return specs


async def test_e2e_silent_route_is_caught_by_the_stale_watchdog():
    """Depth asked on the wrong route: the handshake succeeds and nothing ever arrives (what the
    legacy URLs do since the route split). The per-stream watchdog must flag it."""
    server = await start_server(seed=9, symbols=["BTC-PERP"], rate=40)
    try:
        ad = WrongRoute("BTC-PERP", endpoint=server.url(""), rest_endpoint=server.http_url())
        market = Market(ad.default_instrument())
        opts = SessionOptions(
            backoff_base=0.05, backoff_max=0.2, connect_timeout=2.0, stale_after=0.3
        )
        session = FeedSession(ad, market, options=opts)
        task = session.start()
        try:
            await until(lambda: any(s.status is FeedStatus.STALE for s in market.state_log))
            await until(
                lambda: any(
                    s.status is FeedStatus.RECONNECTING and ("no data" in s.reason or "no book data" in s.reason)
                    for s in market.state_log
                )
            )
        finally:
            await session.stop()
            task.cancel()
    finally:
        await server.close()


async def test_a_book_from_rest_on_a_depth_socket_that_never_sent_a_frame_is_not_a_quiet_one():
    """The REST snapshot made the book LIVE while its socket had sent nothing: once the book's
    habit was being judged it counted as a book quiet from the start on an answering
    connection, LIVE for quiet_max (300 s) at the snapshot's prices."""
    server = await start_server(seed=9, symbols=["BTC-PERP"], rate=40)
    try:
        ad = WrongRoute("BTC-PERP", endpoint=server.url(""), rest_endpoint=server.http_url())
        market = Market(ad.default_instrument())
        opts = SessionOptions(
            backoff_base=0.05, backoff_max=0.2, connect_timeout=2.0, stale_after=0.5, quiet_max=60.0
        )
        session = FeedSession(ad, market, options=opts)
        session.book_stream.activity.min_span = 0.2  # its habit judged at once
        task = session.start()
        try:
            await until(lambda: market.live)
            await until(lambda: market.state.status is FeedStatus.STALE, timeout=4)
            assert "no data" in market.state.reason or "no book data" in market.state.reason
        finally:
            await session.stop()
            task.cancel()
    finally:
        await server.close()


@pytest.mark.skipif(not RECORDING.exists(), reason="recording not present")
def test_an_instrument_named_in_lower_case_is_the_same_instrument():
    # the REST snapshot matched whatever the case, the stream events did not: "sushiusdt"
    # replayed the 30-second-old snapshot as LIVE and skipped every event
    from obview.replay import replay_summary

    assert BinanceAdapter("X", instrument="sushiusdt").native == "SUSHIUSDT"
    lower = replay_summary(RECORDING, "binance", instrument="sushiusdt")
    upper = replay_summary(RECORDING, "binance", instrument="SUSHIUSDT")
    assert lower["trades"] == upper["trades"] > 0
    assert (lower["best_bid"], lower["best_ask"]) == (upper["best_bid"], upper["best_ask"])
