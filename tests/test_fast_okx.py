"""OKX fast path (typed decoder) against the slow path, frame by frame, and the sync's checksum
path (string map, CRC32 over the top 25) against the reference ``okx_checksum``.

The recording (../shared/recordings/okx.jsonl, 2022) has books with real checksums for a spot
pair, a dated future and an inverse swap; the simulator speaks today's shape (seqId/prevSeqId)
for BTC-USDT-SWAP.
"""

from __future__ import annotations

import random

import orjson
import pytest

from fastpath import check, check_all, recorded_frames, sim_frames
from obview.book import OrderBook
from obview.feed.pipeline import FeedPipeline, NeedResync
from obview.market import Market
from obview.model import FeedStatus
from obview.sim.dialects.okx import OkxDialect
from obview.venues.base import FrameError
from obview.venues.okx import OkxAdapter
from obview.venues.okx_book import ZERO_RUN, OkxBookDelta, OkxSync, okx_checksum

INSTRUMENTS = ("BTC-USDT", "BTC-USD-220527", "UNI-USD-SWAP")


@pytest.mark.parametrize("instrument", INSTRUMENTS)
def test_fast_path_agrees_on_the_recording(instrument):
    frames = recorded_frames("okx.jsonl")
    if not frames:
        pytest.skip("recording not available")
    adapter = OkxAdapter("BTC-PERP", instrument=instrument)
    handled, total = check_all(adapter, "public", frames)
    # every push (books snapshots and updates, trades, tickers: [] for a channel we do not use,
    # or another instrument) takes the fast path; subscribe acks go to the slow one
    pushes = [f for f in frames if f.startswith('{"arg":')]
    assert len(pushes) == 290 + 74 + 28
    assert handled == len(pushes)
    books = [f for f in pushes if f'"channel":"books","instId":"{instrument}"' in f]
    assert len(books) > 90
    assert all(adapter.parse_fast("public", f, 0.0) for f in books)


def test_fast_path_agrees_on_the_simulator_and_takes_every_book_and_trade_frame():
    frames = sim_frames("okx")
    adapter = OkxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    by_stream: dict[str, list[str]] = {}
    for stream, f in frames:
        by_stream.setdefault(stream, []).append(f)
    for stream, fs in by_stream.items():
        check_all(adapter, stream, fs)
    books = [f for _, f in frames if '"channel":"books"' in f and '"action"' in f]
    trades = [f for _, f in frames if '"channel":"trades"' in f and '"data"' in f]
    assert len(books) > 200 and trades
    assert any('"action":"snapshot"' in f for f in books)
    assert all(adapter.parse_fast("public", f, 0.0) for f in books + trades)


class SlowOkxAdapter(OkxAdapter):
    def parse_fast(self, stream, frame, ts_local):
        return None  # always parse()


def test_fast_and_slow_paths_build_the_same_books_from_the_recording():
    frames = recorded_frames("okx.jsonl")
    if not frames:
        pytest.skip("recording not available")
    for instrument in INSTRUMENTS:
        results = []
        for cls in (OkxAdapter, SlowOkxAdapter):
            adapter = cls("BTC-PERP", instrument=instrument)
            pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
            for f in frames:
                pipe.on_frame("public", f, 0.0)
            m = pipe.market
            results.append(
                (
                    m.book.top(400),
                    pipe.sync.checksums_verified,
                    m.stats.gaps,
                    pipe.trades,
                    m.state.status,
                )
            )
        assert results[0] == results[1]
        assert results[0][1] > 90 and results[0][2] == 0 and results[0][4] is FeedStatus.LIVE


BOOK = '{"arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"action":"update","data":[%s]}'
TRADE = '{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[%s]}'
DATA = '{"asks":[%s],"bids":[%s],"ts":"1700000000123","checksum":0,"prevSeqId":1,"seqId":2}'


def book(asks: str = "", bids: str = "") -> str:
    return BOOK % (DATA % (asks, bids))


def trade_data(px='"100.5"', sz='"2"', side='"buy"', trade_id='"7"', ts='"1700000000123"') -> str:
    return f'{{"instId":"BTC-USDT-SWAP","tradeId":{trade_id},"px":{px},"sz":{sz},"side":{side},"ts":{ts}}}'


def trade(**kw: str) -> str:
    return TRADE % trade_data(**kw)


HOSTILE = [
        # numbers the book must never hold
        book(bids='["NaN","1","0","1"]'),
        book(bids='["100","-1","0","1"]'),
        book(asks='["1e999","1","0","1"]'),
        book(asks='["100","inf","0","1"]'),
        book(asks='["0","1","0","1"]'),
        trade(px='"inf"'),
        trade(sz='"-1"'),
        trade(px='"0"'),
        # shapes the decoders do not describe
        book(bids='[100.5,"1","0","1"]'),  # a price that is not a string: parse refuses it
        book(bids='["100.5"]'),
        book(bids='{"px":"100.5","sz":"1"}'),
        BOOK.replace('"update"', '"bogus"') % (DATA % ("", "")),
        BOOK.replace(',"action":"update"', "") % (DATA % ("", "")),
        (BOOK % (DATA % ("", ""))).replace('"checksum":0', '"checksum":"0"'),
        (BOOK % (DATA % ("", ""))).replace('"ts":"1700000000123"', '"ts":1700000000123'),
        # integers beyond int64, which orjson (and so parse) reads as floats
        (BOOK % (DATA % ("", ""))).replace('"checksum":0', '"checksum":123456789012345678901234'),
        (BOOK % (DATA % ("", ""))).replace('"seqId":2', '"seqId":-9223372036854775809'),
        (BOOK % (DATA % ("", ""))).replace('"ts":"1700000000123"', '"ts":"1' + "0" * 400 + '"'),
        (BOOK % (DATA % ("", ""))).replace('"data":[', '"event":"x","data":['),
        (BOOK % (DATA % ("", "")))[:-1] + ',"data":5}',  # a repeated key: the last one counts
        trade(side='"short"'),
        trade(trade_id="7"),
        trade(px='"1_0"'),  # float() reads it, the decoder does not: parse decides
        trade(ts='"1' + "0" * 400 + '"'),
        # acks, errors, notices, pongs, garbage
        '{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"connId":"a4d3ae55"}',
        '{"event":"error","code":"60018","msg":"doesn\'t exist"}',
        '{"event":"notice","code":"64008","msg":"upgrade"}',
        "pong",
        "not json",
        '{"arg":{"channel":"books"},"action":"update","data":[]}',
]


@pytest.mark.parametrize("frame", HOSTILE)
def test_fast_path_leaves_odd_and_hostile_frames_to_the_slow_path(frame):
    adapter = OkxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    assert adapter.parse_fast("public", frame, 0.0) is None
    assert not check(adapter, "public", frame)


def test_slow_path_refuses_a_time_no_float_can_hold():
    adapter = OkxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    huge = '"1' + "0" * 400 + '"'
    for frame in (
        (BOOK % (DATA % ("", ""))).replace('"1700000000123"', huge),
        trade(ts=huge),
    ):
        with pytest.raises(FrameError, match="time out of range"):
            adapter.parse("public", frame, 0.0)


def test_fast_path_reads_levels_like_the_slow_path():
    adapter = OkxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    # extra or fewer row fields, odd but valid float spellings, a deletion, a keep-alive
    for frame in (
        book(bids='["100.5","1.0","0","1"],["100"," 2","0","1"],["99","0","0","0"]'),
        book(asks='["101","3"],["102","1_0","0","1","x"]', bids='["100","1e-400","0","1"]'),
        book(),
        BOOK % ",".join([DATA % ('["101","1","0","1"]', ""), DATA % ("", '["100","2","0","1"]')]),
        trade(),
        trade(px="100.5", sz="2"),
        TRADE % ",".join([trade_data(), trade_data(side='"sell"', trade_id='"8"')]),
    ):
        assert check(adapter, "public", frame), frame
    (d,) = adapter.parse_fast("public", book(bids='["100.5","1.0","0","1"]'), 0.0)
    assert isinstance(d, OkxBookDelta) and d.raw_bids == ["100.5:1.0"]


def test_fast_path_skips_other_instruments_and_channels():
    adapter = OkxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    for frame in (
        book(bids='["1","1","0","1"]').replace("BTC-USDT-SWAP", "ETH-USDT-SWAP"),
        '{"arg":{"channel":"tickers","instId":"BTC-USDT-SWAP"},"data":[{"last":"1"}]}',
    ):
        assert adapter.parse_fast("public", frame, 0.0) == [] == adapter.parse("public", frame, 0.0)


# -- the sync's checksum path ------------------------------------------------------------------


class StrBook:
    """OKX's side of the wire: a book of the strings as sent (keyed by price, the latest
    spelling of a price wins), cut to 400 levels, that writes frames with the reference
    checksum (``okx_checksum``, not the sync's code)."""

    def __init__(self) -> None:
        self.bids: dict[float, tuple[str, str]] = {}
        self.asks: dict[float, tuple[str, str]] = {}
        self.seq = 0

    def top(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        return (
            [self.bids[p] for p in sorted(self.bids, reverse=True)],
            [self.asks[p] for p in sorted(self.asks)],
        )

    def frame(self, action: str, bids, asks, checksum: bool = True) -> str:
        for side, rows in ((self.bids, bids), (self.asks, asks)):
            if action == "snapshot":
                side.clear()
            for px, sz in rows:
                if float(sz) == 0:
                    side.pop(float(px), None)
                else:
                    side[float(px)] = (px, sz)
        b, a = self.top()
        self.bids = {float(px): (px, sz) for px, sz in b[:400]}
        self.asks = {float(px): (px, sz) for px, sz in a[:400]}
        prev, self.seq = (-1 if action == "snapshot" else self.seq), self.seq + 1
        d = {
            "asks": [[p, s, "0", "1"] for p, s in asks],
            "bids": [[p, s, "0", "1"] for p, s in bids],
            "ts": "1700000000123",
            "checksum": okx_checksum(*self.top()) if checksum else 0,
            "prevSeqId": prev,
            "seqId": self.seq,
        }
        arg = {"channel": "books", "instId": "BTC-USDT-SWAP"}
        return orjson.dumps({"arg": arg, "action": action, "data": [d]}).decode()


def random_rows(
    rng: random.Random, lo: int, hi: int, n: int, deletes: float
) -> list[tuple[str, str]]:
    rows = []
    for _ in range(n):
        p = rng.randrange(lo, hi)
        px = rng.choice([f"{p / 10:.1f}", f"{p / 10:g}"]) if p % 10 == 0 else f"{p / 10:.1f}"
        sz = (
            "0"
            if rng.random() < deletes
            else rng.choice([f"{rng.randrange(1, 500) / 100}", "1", "1.50"])
        )
        rows.append((px, sz))
    return rows


def make_pipe():
    adapter = OkxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    market = Market(adapter.default_instrument())
    return FeedPipeline(adapter, market)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sync_checksums_verify_on_a_random_walk_with_deep_books_and_thin_sides(seed):
    """Every update's checksum verifies: either side shorter than the other, than 25 levels or
    empty, books deeper than 400 (cut), many deletions (the string map is pruned), zero
    checksums in between."""
    rng = random.Random(seed)
    pipe = make_pipe()
    sync = pipe.sync
    assert isinstance(sync, OkxSync)
    ob = StrBook()
    # a thin ask side first: fewer than 25 levels, then none at all
    pipe.on_frame(
        "public", ob.frame("snapshot", random_rows(rng, 8000, 9990, 600, 0), [("1000.0", "1")]), 0.0
    )
    assert pipe.market.state.status is FeedStatus.LIVE
    zeros = 0
    for k in range(600):
        bids = random_rows(rng, 9000 if k < 300 else 9900, 9990, rng.randrange(0, 40), 0.4)
        asks = random_rows(rng, 10000, 10100 if k < 300 else 14000, rng.randrange(0, 40), 0.4)
        if k == 100:
            asks = [(px, "0") for px, _ in ob.asks.values()]  # the ask side empties
        if k == 400:
            bids = [(px, "0") for px, _ in ob.bids.values()]  # the bid side empties
        with_checksum = rng.random() < 0.8
        zeros += not with_checksum
        pipe.on_frame("public", ob.frame("update", bids, asks, with_checksum), 0.0)
        assert pipe.market.state.status is FeedStatus.LIVE, pipe.market.state
        assert len(sync.bid_raw) <= sync.raw_limit + 40 and len(sync.ask_raw) <= sync.raw_limit + 40
    assert pipe.market.stats.checksum_errors == 0 and pipe.market.stats.gaps == 0
    assert sync.checksums_verified == 1 + 600 - zeros and sync.checksums_skipped == zeros
    b, a = ob.top()
    assert pipe.market.book.top(400) == (
        [(float(p), float(s)) for p, s in b],
        [(float(p), float(s)) for p, s in a],
    )


def test_sync_verifies_a_nonzero_checksum_after_a_run_of_zero_ones_and_catches_a_wrong_one():
    pipe = make_pipe()
    ob = StrBook()
    pipe.on_frame("public", ob.frame("snapshot", [("100", "1"), ("99", "2")], [("101", "1")]), 0.0)
    for k in range(20):
        pipe.on_frame(
            "public", ob.frame("update", [(f"{98 - k}", "3")], [("101", f"{k + 2}")], False), 0.0
        )
    assert pipe.sync.checksums_skipped == 20 and pipe.sync.checksums_verified == 1
    pipe.on_frame("public", ob.frame("update", [("100", "0")], []), 0.0)
    assert pipe.sync.checksums_verified == 2 and pipe.market.state.status is FeedStatus.LIVE
    good = ob.frame("update", [("99.5", "7")], [])
    signed = orjson.loads(good)["data"][0]["checksum"]
    for bad in (signed ^ 1, signed + (1 << 32) if signed < 0 else signed - (1 << 32)):
        p = make_pipe()
        replay = StrBook()
        p.on_frame("public", replay.frame("snapshot", *ob.top()), 0.0)
        frame = good.replace(
            f'"prevSeqId":{ob.seq - 1},"seqId":{ob.seq}', '"prevSeqId":1,"seqId":2'
        )
        actions = p.on_frame(
            "public", frame.replace(f'"checksum":{signed}', f'"checksum":{bad}'), 0.0
        )
        assert any(isinstance(a, NeedResync) for a in actions)
        assert p.market.stats.checksum_errors == 1 and "checksum" in p.market.state.reason
    assert pipe.on_frame("public", good, 0.0) == [] and pipe.sync.checksums_verified == 3


# -- the live feed: checksum 0 on every update, no texts kept ------------------------------------


def textless_adapter() -> OkxAdapter:
    """An adapter whose sync has stopped wanting texts (after ZERO_RUN checksum-0 updates)."""
    adapter = OkxAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    adapter.make_sync(OrderBook()).zero_run = ZERO_RUN
    return adapter


@pytest.fixture
def live_style_sim(monkeypatch):
    monkeypatch.setattr(OkxDialect, "send_checksum", False)  # what OKX sends since mid-2026


def test_without_texts_fast_and_slow_paths_agree_on_live_style_frames_and_mutations(live_style_sim):
    frames = sim_frames("okx")
    books = [f for _, f in frames if '"channel":"books"' in f and '"action":"update"' in f]
    assert len(books) > 200 and all('"checksum":0' in f for f in books)
    adapter = textless_adapter()
    handled, _ = check_all(adapter, "public", [f for _, f in frames])
    assert handled > 200
    for f in books:
        (d,) = adapter.parse_fast("public", f, 0.0)
        assert d.raw_bids is None and d.raw_asks is None
    # a snapshot and an update with a non-zero checksum carry their texts all the same
    snap = next(f for _, f in frames if '"action":"snapshot"' in f)
    assert adapter.parse_fast("public", snap, 0.0)[0].raw_bids
    (d,) = adapter.parse_fast("public", book(bids='["100.5","1.0","0","1"]').replace('"checksum":0', '"checksum":5'), 0.0)
    assert d.raw_bids == ["100.5:1.0"]


@pytest.mark.parametrize("frame", HOSTILE)
def test_without_texts_hostile_frames_get_what_the_slow_path_gives(frame):
    adapter = textless_adapter()
    check(adapter, "public", frame)
    fast = adapter.parse_fast("public", frame, 0.0)
    if "NaN" in frame or '"-1"' in frame or "1e999" in frame or "inf" in frame or '["0"' in frame:
        assert fast is None  # never a bad number in the book


def test_without_texts_levels_are_read_like_the_slow_path():
    adapter = textless_adapter()
    for frame in (
        book(bids='["100.5","1.0","0","1"],["100"," 2","0","1"],["99","0","0","0"]'),
        book(asks='["101","3"],["102","1_0","0","1","x"]', bids='["100","1e-400","0","1"]'),
        book(asks='["101","3"],["102","10","0","1","x"]', bids='["100","1e-3","0","1"]'),
        book(),
        BOOK % ",".join([DATA % ('["101","1","0","1"]', ""), DATA % ("", '["100","2","0","1"]')]),
    ):
        check(adapter, "public", frame)
    (d,) = adapter.parse_fast("public", book(asks='["101","3"],["102","10","0","1","x"]'), 0.0)
    assert d.asks == [(101.0, 3.0), (102.0, 10.0)] and d.raw_asks is None


def test_live_style_stream_drops_the_texts_and_builds_the_same_book(live_style_sim):
    frames = [f for _, f in sim_frames("okx", steps=600)]
    results = []
    for cls in (OkxAdapter, SlowOkxAdapter):
        adapter = cls("BTC-PERP", endpoint="ws://127.0.0.1:9")
        pipe = FeedPipeline(adapter, Market(adapter.default_instrument()))
        wanted_at = None
        for i, f in enumerate(frames):
            pipe.on_frame("public", f, 0.0)
            assert pipe.market.state.status in (FeedStatus.LIVE, FeedStatus.CONNECTING, FeedStatus.SYNCING)
            if wanted_at is None and not pipe.sync.texts_wanted:
                wanted_at = i
        sync = pipe.sync
        assert wanted_at is not None and sync.zero_run >= ZERO_RUN
        assert not sync.texts_ok and sync.bid_raw == {} and sync.ask_raw == {}
        assert pipe.market.state.status is FeedStatus.LIVE and pipe.market.stats.gaps == 0
        results.append((pipe.market.book.top(400), sync.checksums_skipped, pipe.market.resyncs))
    assert results[0] == results[1]


def test_checksums_resuming_after_the_texts_were_dropped_resync_and_verify_again():
    pipe = make_pipe()
    ob = StrBook()
    pipe.on_frame("public", ob.frame("snapshot", [("100", "1"), ("99", "2")], [("101", "1")]), 0.0)
    for k in range(ZERO_RUN + 5):
        pipe.on_frame(
            "public", ob.frame("update", [(f"{98 - k % 50}", f"{k % 7 + 1}")], [], False), 0.0
        )
    assert not pipe.sync.texts_wanted and not pipe.sync.texts_ok
    assert pipe.market.state.status is FeedStatus.LIVE
    # the venue sends checksums again: the book cannot be verified without the texts -> resync
    actions = pipe.on_frame("public", ob.frame("update", [("97.5", "4")], []), 0.0)
    assert any(isinstance(a, NeedResync) for a in actions)
    assert pipe.market.state.status is FeedStatus.SYNCING and "checksum" in pipe.market.state.reason
    # the fresh snapshot brings the texts back; the next checksums verify
    verified = pipe.sync.checksums_verified
    pipe.on_frame("public", ob.frame("snapshot", *ob.top()), 0.0)
    assert pipe.sync.texts_wanted and pipe.sync.texts_ok
    for k in range(5):
        pipe.on_frame("public", ob.frame("update", [(f"{95 - k}", "1")], []), 0.0)
    assert pipe.market.state.status is FeedStatus.LIVE
    assert pipe.sync.checksums_verified == verified + 6


def test_float_levels_reads_as_float_does_and_refuses_what_parse_must_judge():
    from obview.venues.okx_wire import _Level, float_levels

    def rows(*pairs):
        return [_Level(p, s) for p, s in pairs]

    assert float_levels([]) == ([], [])
    got = float_levels(rows(("100.5", "2"), ("1e2", "0"), ("101", "-0.0"), ("1_0", " 3 ")))
    assert got == (
        [(100.5, 2.0), (100.0, 0.0), (101.0, -0.0), (10.0, 3.0)],
        ["100.5:2", "1e2:0", "101:-0.0", "1_0: 3 "],
    )
    for bad in (
        ("nan", "1"),
        ("100", "nan"),
        ("inf", "1"),
        ("-inf", "1"),
        ("100", "inf"),
        ("0", "1"),
        ("-5", "1"),
        ("100", "-1"),
    ):
        assert float_levels(rows(("99", "1"), bad)) is None, bad
    with pytest.raises(ValueError):
        float_levels(rows(("abc", "1")))
