"""Recorder and replay: round trip, .gz, bad files, size cap, shared multi-venue files, clear
errors for the wrong venue or instrument (the real recordings: test_recordings.py)."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import orjson
import pytest

from obview.model import FeedStatus
from obview.record import Recorder
from obview.replay import ReplayError, replay_frames, replay_summary

HL_WS = "wss://api.hyperliquid.xyz/ws"


def hl_book(t_ms: int, bids, asks, coin: str = "BTC") -> str:
    lv = [
        [{"px": p, "sz": s, "n": 1} for p, s in bids],
        [{"px": p, "sz": s, "n": 1} for p, s in asks],
    ]
    return orjson.dumps(
        {"channel": "l2Book", "data": {"coin": coin, "time": t_ms, "levels": lv}}
    ).decode()


def hl_trades(tid: int, side: str = "B", coin: str = "BTC") -> str:
    tr = {
        "coin": coin,
        "side": side,
        "px": "68000.0",
        "sz": "0.01",
        "time": 1_710_000_000_000 + tid,
        "tid": tid,
    }
    return orjson.dumps({"channel": "trades", "data": [tr]}).decode()


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        self.t += 0.01
        return self.t


def write_hl_session(path: Path, **kw) -> Recorder:
    """A small Hyperliquid session: greeting, acks, books for BTC and ETH, trades, a pong."""
    rec = Recorder(path, clock=Clock(), **kw)
    rec.connect(HL_WS)
    rec.sent('{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}')
    rec.received("Websocket connection established.")
    rec.received(
        '{"channel":"subscriptionResponse","data":{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}}'
    )
    rec.received(
        hl_book(1000, [("68674.0", "0.97139"), ("68673.0", "0.5")], [("68675.0", "0.04396")])
    )
    rec.received(hl_book(1000, [("3000.1", "2")], [("3000.2", "1")], coin="ETH"))
    rec.received(hl_trades(1, "B"))
    rec.received(hl_trades(2, "A"))
    rec.received(hl_trades(3, "A", coin="ETH"))
    rec.received(
        hl_book(
            2000, [("68680.0", "1.25"), ("68679.0", "0.3")], [("68681.0", "0.7"), ("68690.0", "2")]
        )
    )
    rec.received(b'{"channel":"pong"}')
    rec.http("https://api.hyperliquid.xyz/info", '{"universe":[]}')
    return rec


# -- recorder -------------------------------------------------------------------------------
def test_recorder_writes_the_recordings_format(tmp_path):
    p = tmp_path / "s.jsonl"
    rec = write_hl_session(p)
    rec.close()
    rec.close()  # idempotent
    lines = [json.loads(x) for x in p.read_text().splitlines()]
    assert list(lines[0]) == ["t", "connect", "c"] and lines[0]["connect"] == HL_WS
    assert lines[1]["sent"].startswith('{"method":"subscribe"')
    assert lines[2]["raw"] == "Websocket connection established."
    assert lines[-2]["raw"] == '{"channel":"pong"}'  # bytes stored as text
    assert lines[-1] == {
        "t": lines[-1]["t"],
        "http": "https://api.hyperliquid.xyz/info",
        "raw": '{"universe":[]}',
    }
    ts = [x["t"] for x in lines]
    assert ts == sorted(ts)
    assert rec.lines == len(lines) and rec.written == p.stat().st_size
    rec.received("after close")  # never raises into the session
    assert rec.dropped == 1


def test_recorder_is_line_buffered(tmp_path):
    p = tmp_path / "s.jsonl"
    rec = Recorder(p)
    rec.connect(HL_WS)
    rec.received('{"channel":"pong"}')
    assert len(p.read_text().splitlines()) == 2  # on disk before close
    rec.close()


def test_recorder_appends(tmp_path):
    p = tmp_path / "s.jsonl"
    with Recorder(p) as rec:
        rec.received("a")
    with Recorder(p) as rec:
        assert rec.written == p.stat().st_size
        rec.received("b")
    assert [json.loads(x)["raw"] for x in p.read_text().splitlines()] == ["a", "b"]


def test_recorder_size_cap_stops_with_a_message(tmp_path, caplog):
    p = tmp_path / "s.jsonl"
    rec = Recorder(p, max_bytes=300)
    for i in range(50):
        rec.received(hl_trades(i))
    assert rec.full and "size cap" in rec.message and str(p) in rec.message
    assert rec.reason == "size cap of 300 bytes reached"  # the stats bar's short form
    assert p.stat().st_size <= 300
    assert rec.dropped > 0 and rec.lines + rec.dropped == 50
    assert any("size cap" in r.getMessage() for r in caplog.records)
    rec.close()
    assert len(list(replay_frames(p))) == rec.lines  # what was written stays a valid recording


def test_recorder_write_error_stops_with_a_short_reason(tmp_path):
    class Full:
        def write(self, line):
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    rec = Recorder(tmp_path / "f.jsonl")
    rec._fh.close()
    rec._fh = Full()
    rec.received("a")
    rec.received("b")
    assert rec.full and rec.reason == "No space left on device" and rec.dropped == 2
    assert rec.message == f"recording to {tmp_path / 'f.jsonl'} stopped: No space left on device"
    rec.close()


def test_recorder_gz(tmp_path):
    p = tmp_path / "s.jsonl.gz"
    write_hl_session(p).close()
    s = replay_summary(p, "hyperliquid", "BTC-PERP")
    assert s["best_bid"] == 68680.0 and s["parse_errors"] == 0


def test_a_gz_recording_shows_its_size_on_disk(tmp_path):
    # the stats bar showed the uncompressed bytes: "REC 48 MB" for a 5 MB file
    import random

    rnd = random.Random(7)
    p = tmp_path / "s.jsonl.gz"
    rec = Recorder(p)
    for i in range(20_000):  # book-like frames: repetitive text with some random digits
        rec.received(f'{{"seq":{i},"b":[["{rnd.randint(96000, 97000)}.{rnd.randint(0, 9)}","{rnd.random():.4f}"]]}}')
    assert rec.written > 1_000_000
    assert 0 < rec.file_bytes < rec.written / 3
    on_disk = p.stat().st_size
    assert rec.file_bytes == on_disk  # as far as written out (a few buffers behind the frames)
    rec.close()
    assert rec.file_bytes == rec.written  # closed: the recorder's own count
    plain = Recorder(tmp_path / "s.jsonl")
    plain.received('{"x":1}')
    assert plain.file_bytes == plain.written == (tmp_path / "s.jsonl").stat().st_size
    plain.close()


async def test_recorder_tags_interleaved_connections(tmp_path):
    """Two venues recorded into one file at once: replay follows only the chosen venue's."""
    p = tmp_path / "shared.jsonl"
    rec = Recorder(p)
    okx_open, hl_open = asyncio.Event(), asyncio.Event()

    async def hl():
        rec.connect(HL_WS)
        hl_open.set()
        await okx_open.wait()
        for i in range(3):
            rec.received(hl_book(1000 + i, [("100.0", str(i + 1))], [("101.0", "1")]))
            await asyncio.sleep(0)

    async def okx():
        rec.connect("wss://ws.okx.com:8443/ws/v5/public")
        okx_open.set()
        await hl_open.wait()
        for _ in range(3):
            rec.received('{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"}}')
            rec.received("pong")
            await asyncio.sleep(0)

    async with asyncio.timeout(5):
        await asyncio.gather(hl(), okx())
    rec.close()
    tags = {(("connect" in x), x.get("c")) for x in replay_frames(p)}
    assert (True, 1) in tags and (True, 2) in tags
    s = replay_summary(p, "hyperliquid", "BTC-PERP")
    assert s["frames"] == 3 and s["parse_errors"] == 0
    assert s["state"] == "LIVE" and s["bids"] == [[100.0, 3.0]]


# -- replay ---------------------------------------------------------------------------------
def test_round_trip_summary(tmp_path):
    p = tmp_path / "s.jsonl"
    write_hl_session(p).close()
    s = replay_summary(p, "hyperliquid", symbol="BTC-PERP")
    assert s == {
        "venue": "hyperliquid",
        "symbol": "BTC-PERP",
        "frames": 9,  # every received frame, ETH's included
        "parse_errors": 0,
        "gaps": 0,
        "checksum_errors": 0,
        "resyncs": 0,
        "trades": 2,  # BTC only
        "liquidations": 0,  # Hyperliquid marks none
        "state": "LIVE",
        "reason": "",
        "disconnects": 0,
        "sessions": 1,
        "stale": 0,
        "cut_short_at_line": None,
        "best_bid": 68680.0,
        "best_ask": 68681.0,
        "bids": [[68680.0, 1.25], [68679.0, 0.3]],
        "asks": [[68681.0, 0.7], [68690.0, 2.0]],
    }
    json.dumps(s)  # printable as JSON
    eth = replay_summary(p, "hyperliquid", instrument="ETH")
    assert eth["symbol"] == "ETH" and eth["bids"] == [[3000.1, 2.0]] and eth["trades"] == 1
    # a venue-native name given as the symbol is accepted too
    assert replay_summary(p, "hyperliquid", symbol="ETH")["best_ask"] == 3000.2


def test_a_file_recorded_into_twice_says_so(tmp_path):
    # --record appends: two runs in one file read as one session with nothing to tell them
    p = tmp_path / "s.jsonl"
    write_hl_session(p).close()
    write_hl_session(p).close()
    s = replay_summary(p, "hyperliquid", symbol="BTC-PERP")
    assert s["sessions"] == 2 and s["state"] == "LIVE"
    # a file of the older format (no connection numbers) with a reconnect is one run
    old = tmp_path / "old.jsonl"
    lines = [json.loads(x) for x in p.read_text().splitlines()]
    first = [{k: v for k, v in x.items() if k != "c"} for x in lines[: len(lines) // 2]]
    old.write_text("".join(json.dumps(x) + "\n" for x in first + first))
    assert replay_summary(old, "hyperliquid", symbol="BTC-PERP")["sessions"] == 1


def test_replay_counts_garbage_and_gz_input(tmp_path):
    p = tmp_path / "s.jsonl"
    rec = write_hl_session(p)
    rec.received('{"channel":"l2Book","data":{"coin":"BTC","time":3}}')  # right shape outside only
    rec.received("{garbage")
    rec.close()
    s = replay_summary(p, "hyperliquid", "BTC-PERP")
    assert s["parse_errors"] == 2 and s["frames"] == 11
    gz = tmp_path / "s.jsonl.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    assert replay_summary(gz, "hyperliquid", "BTC-PERP") == s


def test_replay_frames_yields_records_in_order(tmp_path):
    p = tmp_path / "s.jsonl"
    write_hl_session(p).close()
    recs = list(replay_frames(p))
    assert [next(iter(set(r) & {"connect", "sent", "raw", "http"})) for r in recs[:3]] == [
        "connect",
        "sent",
        "raw",
    ]
    assert len(recs) == 12


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"hello world\n", r":1: not a JSON-lines recording"),
        (b'{"t":1,"raw":"x"}\n[1,2]\n{"t":2}\n', r":2: not a JSON-lines recording"),
        (b'{"t":1,"raw":"x"}\nnot json\n{"t":2}\n', r":2:"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", r":1:"),
    ],
)
def test_unparseable_file_is_a_replay_error(tmp_path, content, match):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    with pytest.raises(ReplayError, match=match) as e:
        replay_summary(p, "hyperliquid", "BTC-PERP")
    assert "\n" not in str(e.value)


def test_unreadable_files(tmp_path):
    with pytest.raises(ReplayError, match="cannot read .*missing.jsonl"):
        replay_summary(tmp_path / "missing.jsonl", "hyperliquid", "BTC-PERP")
    with pytest.raises(ReplayError, match="cannot read"):
        replay_summary(tmp_path, "hyperliquid", "BTC-PERP")  # a directory
    bad_gz = tmp_path / "x.jsonl.gz"
    bad_gz.write_bytes(b"not gzip at all")
    with pytest.raises(ReplayError, match="cannot read"):
        replay_summary(bad_gz, "hyperliquid", "BTC-PERP")
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(b'{"t":1,"raw":"x"}\n' * 200)[:40])
    with pytest.raises(ReplayError, match="cannot read"):
        list(replay_frames(cut))


def test_a_line_too_long_for_a_recording_is_refused_unread(tmp_path, monkeypatch):
    # /dev/zero and the like have no line end: a line read whole took all the memory
    import obview.replay as rec

    monkeypatch.setattr(rec, "MAX_LINE", 1000)
    ok, long = tmp_path / "ok.jsonl", tmp_path / "long.jsonl"
    ok.write_text('{"t":1,"raw":"' + "x" * 900 + '"}\n')
    assert len(list(replay_frames(ok))) == 1
    long.write_bytes(b'{"t":1,"raw":"x"}\n' + b"\0" * 5000)
    with pytest.raises(ReplayError, match=r"long.jsonl:2: not a JSON-lines recording \(a line over 1000 bytes\)"):
        list(replay_frames(long))


def test_torn_last_line_is_tolerated(tmp_path):
    p = tmp_path / "s.jsonl"
    write_hl_session(p).close()
    with open(p, "ab") as f:
        f.write(b'{"t":1,"raw":"{\\"chan')  # process killed mid-write
    s = replay_summary(p, "hyperliquid", "BTC-PERP")
    assert s["best_bid"] == 68680.0 and s["cut_short_at_line"] is not None  # said, not silent


def test_a_copy_cut_before_its_first_book_says_so(tmp_path):
    # "no book frames ...; pass --instrument": the wrong advice for a file cut short
    whole, cut = tmp_path / "s.jsonl", tmp_path / "cut.jsonl"
    write_hl_session(whole).close()
    lines = whole.read_bytes().splitlines(keepends=True)
    first_book = next(i for i, line in enumerate(lines) if b"l2Book" in line)
    cut.write_bytes(b"".join(lines[:first_book]) + lines[first_book][:40])
    with pytest.raises(ReplayError, match=r"cut.jsonl ends in a line cut short \(line \d+\), before any hyperliquid book"):
        replay_summary(cut, "hyperliquid", "BTC-PERP")


def test_cli_replay_exit_codes(tmp_path, capsys):
    cli = pytest.importorskip("obview.cli")
    p = tmp_path / "s.jsonl"
    write_hl_session(p).close()
    assert (
        cli.main(["replay", str(p), "--venue", "hyperliquid", "--symbol", "BTC-PERP", "--summary"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["best_bid"] == 68680.0
    assert (
        cli.main(
            [
                "replay",
                str(tmp_path / "nope.jsonl"),
                "--venue",
                "hyperliquid",
                "--symbol",
                "BTC-PERP",
            ]
        )
        == 2
    )
    assert "cannot read" in capsys.readouterr().err


def test_replay_as_the_wrong_venue_or_instrument_is_one_clear_error(tmp_path, capsys):
    # every frame unparseable as the venue: the wrong --venue, said once, not a line a frame
    p = tmp_path / "s.jsonl"
    write_hl_session(p).close()
    with pytest.raises(ReplayError, match=r"none of the \d+ frames of s.jsonl parse as binance .*--venue"):
        replay_summary(p, "binance", "BTC-PERP")
    # frames of the venue, but no book of the instrument asked for
    with pytest.raises(ReplayError, match="no hyperliquid book frames of DOGE among the 9 frames"):
        replay_summary(p, "hyperliquid", instrument="DOGE")
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"t":1,"connect":"wss://ws.okx.com:8443/ws/v5/public"}\n')
    with pytest.raises(ReplayError, match="empty.jsonl holds no received frames"):
        replay_summary(empty, "okx", "BTC-PERP")
    cli = pytest.importorskip("obview.cli")
    assert cli.main(["replay", str(p), "--venue", "okx", "--symbol", "BTC-PERP"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is --venue right?" in err and "Traceback" not in err


# -- round trips through the simulator --------------------------------------------------------
def test_round_trip_demo_frames_and_a_removed_delta(tmp_path):
    engine = pytest.importorskip("obview.sim.engine")
    demo = pytest.importorskip("obview.sim.dialects.demo")
    pytest.importorskip("obview.venues.demo")
    market = engine.SimMarket("BTC-PERP", seed=3, start_time=1000.0)
    dialect = demo.DemoDialect({"BTC-PERP": market}, "/demo")
    p = tmp_path / "demo.jsonl"
    trades = 0
    with Recorder(p, clock=Clock()) as rec:
        rec.connect("ws://127.0.0.1:8765/demo")
        sub = '{"op":"subscribe","symbol":"BTC-PERP"}'
        rec.sent(sub)
        for out in dialect.on_message(sub):
            rec.received(out.text)
        for i in range(300):
            update = market.step(1000.0 + 0.05 * (i + 1))
            trades += len(update.trades)
            for out in dialect.on_update(update):
                rec.received(out.text)
    s = replay_summary(p, "demo", "BTC-PERP")
    bids, asks = market.book.top(20)
    assert s["state"] == "LIVE" and s["gaps"] == 0 and s["parse_errors"] == 0
    assert s["bids"] == [[px, sz] for px, sz in bids] and s["asks"] == [[px, sz] for px, sz in asks]
    assert s["trades"] == trades > 0
    assert s["frames"] == sum(1 for r in replay_frames(p) if "raw" in r)

    lines = p.read_text().splitlines()
    deltas = [i for i, x in enumerate(lines) if '\\"type\\":\\"delta\\"' in x]
    cut = tmp_path / "cut.jsonl"
    cut.write_text(
        "\n".join(x for i, x in enumerate(lines) if i != deltas[len(deltas) // 2]) + "\n"
    )
    s2 = replay_summary(cut, "demo", "BTC-PERP")
    assert s2["gaps"] >= 1 and s2["resyncs"] >= 1
    assert s2["state"] != "LIVE"  # no resync possible offline: never shown as a whole book


async def test_live_session_recording_replays_to_the_same_book(tmp_path):
    server_mod = pytest.importorskip("obview.sim.server")
    from obview.feed.session import FeedSession
    from obview.market import Market
    from obview.venues.hyperliquid import HyperliquidAdapter

    p = tmp_path / "live.jsonl"
    rec = Recorder(p)
    async with asyncio.timeout(30):
        server = await server_mod.start_server(port=0, seed=11, rate=40.0)
        try:
            adapter = HyperliquidAdapter("ETH-PERP", endpoint=server.url("/ws"))
            market = Market(adapter.default_instrument())
            session = FeedSession(adapter, market, recorder=rec)
            session.start()
            try:
                while not (market.live and session.pipeline.trades > 0):
                    await asyncio.sleep(0.02)
                server.set_rate(0)
                await asyncio.sleep(0.3)  # in-flight frames arrive
                live_book = market.book.top(20)
                live_trades = session.pipeline.trades
            finally:
                await session.stop()
        finally:
            await server.close()
    rec.close()
    recs = list(replay_frames(p))
    assert recs[0]["connect"] == server.url("/ws")
    assert any("sent" in r and "l2Book" in r["sent"] for r in recs)
    # frames tagged with their connection: the default book and trades on 1, the fast book on 2
    assert {r.get("c") for r in recs if "raw" in r} == {1, 2}
    assert [r["c"] for r in recs if "connect" in r] == [1, 2]
    s = replay_summary(p, "hyperliquid", "ETH-PERP")
    assert s["state"] == "LIVE" and s["parse_errors"] == 0
    assert s["bids"] == [[px, sz] for px, sz in live_book[0]]
    assert s["asks"] == [[px, sz] for px, sz in live_book[1]]
    assert s["trades"] == live_trades


def test_replay_a_fatal_error_ends_its_session_and_a_new_connection_starts_again(tmp_path):
    engine = pytest.importorskip("obview.sim.engine")
    demo = pytest.importorskip("obview.sim.dialects.demo")
    market = engine.SimMarket("BTC-PERP", seed=5, start_time=1000.0)
    dialect = demo.DemoDialect({"BTC-PERP": market}, "/demo")
    sub = '{"op":"subscribe","symbol":"BTC-PERP"}'
    error = '{"type":"error","reason":"maintenance","fatal":true}'
    now = [1000.0]

    def session(rec: Recorder, steps: int) -> None:
        rec.connect("ws://127.0.0.1:8765/demo")
        rec.sent(sub)
        for out in dialect.on_message(sub):
            rec.received(out.text)
        for _ in range(steps):
            now[0] += 0.05
            for out in dialect.on_update(market.step(now[0])):
                rec.received(out.text)

    failed, again = tmp_path / "failed.jsonl", tmp_path / "again.jsonl"
    with Recorder(failed, clock=Clock()) as rec:
        session(rec, 50)
        rec.received(error)
    s = replay_summary(failed, "demo", "BTC-PERP")
    assert s["state"] == "FAILED"
    with Recorder(again, clock=Clock()) as rec:
        session(rec, 50)
        rec.received(error)
        session(rec, 50)
    s = replay_summary(again, "demo", "BTC-PERP")
    bids, _ = market.book.top(20)
    assert s["state"] == "LIVE" and s["bids"] == [[px, sz] for px, sz in bids]


def test_runs_appended_to_one_recording_each_keep_their_own_connections(tmp_path):
    # every run numbers its connections from 1: the second run's connect line overwrote the
    # first's venue, no connection was left this venue's, and every frame of the file, the
    # other venue's too, went into this adapter
    path = tmp_path / "two.jsonl"
    write_hl_session(path).close()
    other = Recorder(path, clock=Clock(1_700_000_100.0))
    other.connect("wss://futures.kraken.com/ws/v1")
    for i in range(20):
        other.received(
            orjson.dumps({"feed": "book", "product_id": "PF_XBTUSD", "side": "buy", "seq": i, "price": 68000.0 + i, "qty": 1.0}).decode()
        )
    other.close()
    s = replay_summary(path, "hyperliquid", symbol="BTC-PERP")
    assert s["parse_errors"] == 0 and s["state"] == "LIVE"
    assert s["best_bid"] == 68680.0 and s["frames"] == 9


@pytest.mark.parametrize(
    "line",
    [
        '{"t":1,"connect":"wss://api.hyperliquid.xyz/ws","c":[1]}',
        '{"t":2,"raw":"x","c":{"a":1}}',
        '{"t":2,"raw":"x","c":true}',
    ],
)
def test_a_connection_number_that_is_not_one_is_a_clear_error(tmp_path, line, capsys):
    path = tmp_path / "h.jsonl"
    path.write_text('{"t":1,"connect":"wss://api.hyperliquid.xyz/ws","c":1}\n' + line + "\n" + '{"t":3,"raw":"x","c":1}\n')
    from obview.cli import main

    assert main(["replay", str(path), "--venue", "hyperliquid", "--symbol", "BTC-PERP"]) == 2
    err = capsys.readouterr().err
    assert ":2: not a recording (connection number" in err and "Traceback" not in err


def test_a_connect_or_http_line_that_is_not_a_url_belongs_to_nobody(tmp_path):
    path = tmp_path / "u.jsonl"
    write_hl_session(path).close()
    with path.open("a") as f:
        f.write('{"t":9,"connect":"ws://[::1","c":7}\n{"t":9,"raw":"junk","c":7}\n{"t":9,"http":"http://[::1","raw":"{}"}\n')
    s = replay_summary(path, "hyperliquid", symbol="BTC-PERP")
    assert s["parse_errors"] == 0 and s["state"] == "LIVE"


def test_a_hostile_snapshot_in_a_recording_reaches_the_terminal_inert_and_is_not_a_frame(tmp_path, capsys):
    # its reason went out raw (a terminal title set, the screen cleared), and a snapshot that
    # did not parse was counted against the frames: "none of the 1 frames parse"
    path = tmp_path / "s.jsonl"
    trade = '{"stream":"btcusdt@aggTrade","data":{"e":"aggTrade","E":1,"s":"BTCUSDT","a":1,"p":"68000.0","q":"0.1","f":1,"l":1,"T":1,"m":false}}'
    body = orjson.dumps({"msg": "\x1b]0;PWNED\x07\x1b[2J\nsecond line"}).decode()
    lines = [
        {"t": 1, "connect": "wss://fstream.binance.com/market/stream?streams=btcusdt@aggTrade", "c": 1},
        {"t": 2, "raw": trade, "c": 1},
        {"t": 3, "http": "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000", "raw": body},
    ]
    path.write_text("".join(orjson.dumps(x).decode() + "\n" for x in lines))
    from obview.cli import main

    assert main(["replay", str(path), "--venue", "binance", "--symbol", "BTC-PERP"]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and err.count("\n") == 1
    assert "none of the" not in err and "bad snapshot" in err


def test_a_recording_of_another_venue_whose_frames_merely_do_not_parse_as_books_says_venue(tmp_path):
    # dYdX frames replayed as Hyperliquid parse as "not ours", not as errors: the hint was
    # "pass --instrument", where the recording's connections say another venue
    path = tmp_path / "k.jsonl"
    rec = Recorder(path, clock=Clock())
    rec.connect("wss://futures.kraken.com/ws/v1")
    for i in range(5):
        rec.received(orjson.dumps({"channel": "subscriptionResponse", "n": i}).decode())
    rec.close()
    with pytest.raises(ReplayError, match="none of its connections is to hyperliquid; is --venue right"):
        replay_summary(path, "hyperliquid", symbol="BTC-PERP")


def test_a_run_appended_to_a_torn_recording_starts_on_a_line_of_its_own(tmp_path):
    # the new run's first record was glued to the torn line: "not a JSON-lines recording", both
    # runs lost
    p = tmp_path / "s.jsonl"
    write_hl_session(p).close()
    with open(p, "ab") as f:
        f.write(b'{"t":1,"raw":"{\\"chan')  # the first run was killed mid-write
    write_hl_session(p).close()  # a second run appended
    s = replay_summary(p, "hyperliquid", "BTC-PERP")
    assert s["best_bid"] == 68680.0 and s["parse_errors"] == 0 and s["cut_short_at_line"] is None
    assert s["frames"] == 18  # both runs whole


def test_a_pipe_is_not_recorded_to(tmp_path):
    import os

    fifo = tmp_path / "rec.jsonl"
    os.mkfifo(fifo)  # opening it would wait for a reader: the app hung before its first line
    with pytest.raises(OSError, match="pipe or socket"):
        Recorder(fifo)


async def test_a_dropped_or_silent_feed_replays_as_it_was_shown(tmp_path):
    """A frame over the size cap and a silence leave ``close`` and ``stale`` lines, so a
    replay ends as the app did (RECONNECTING, STALE), not LIVE."""
    from faultrig import rig

    p = tmp_path / "states.jsonl"
    rec = Recorder(p)
    async with asyncio.timeout(30), rig(max_size=64 * 1024, recorder=rec) as r:
        r.server.oversize(200_000)
        await r.until(lambda: r.state.status is FeedStatus.RECONNECTING)
        await r.live()
        r.server.pause()
        await r.until(lambda: r.state.status is FeedStatus.STALE)
        r.server.resume()
        await r.until(lambda: r.state.status is FeedStatus.LIVE and r.market.trades)
        trades = len(r.market.trades)
        await r.until(lambda: len(r.market.trades) > trades)
        r.session.recorder = None
        rec.close()
    recs = list(replay_frames(p))
    closes = [x for x in recs if "close" in x]
    stales = [x for x in recs if "stale" in x]
    assert len(closes) == 1 and closes[0]["close"] == "frame over size limit" and closes[0]["c"] == 1
    assert len(stales) == 1 and stales[0]["stale"].startswith("no book data for ")
    s = replay_summary(p, "demo", "BTC-PERP")
    assert s["disconnects"] == 1 and s["stale"] == 1 and s["state"] == "LIVE"
    lines = p.read_text().splitlines()
    # cut at the close: the replay ends where the app showed RECONNECTING
    cut = tmp_path / "cut.jsonl"
    at = next(i for i, x in enumerate(lines) if '"close"' in x)
    cut.write_text("\n".join(lines[: at + 1]) + "\n")
    s = replay_summary(cut, "demo", "BTC-PERP")
    assert s["state"] == "RECONNECTING" and s["reason"] == "frame over size limit"
    assert s["bids"] == [] and s["disconnects"] == 1
    # cut at the silence: STALE, and a trade after it does not end it (only the book's own
    # messages do, as in the app)
    at = next(i for i, x in enumerate(lines) if '"stale"' in x)
    trade = next(x for x in lines[at:] if '"raw"' in x and 'trade' in x)
    for extra in ([], [trade]):
        cut.write_text("\n".join([*lines[: at + 1], *extra]) + "\n")
        s = replay_summary(cut, "demo", "BTC-PERP")
        assert s["state"] == "STALE" and s["reason"] == stales[0]["stale"] and s["stale"] == 1
    # the book's next message after the silence: LIVE again
    delta = next(x for x in lines[at:] if '"raw"' in x and 'delta' in x)
    cut.write_text("\n".join([*lines[: at + 1], delta]) + "\n")
    assert replay_summary(cut, "demo", "BTC-PERP")["state"] == "LIVE"


async def test_a_recording_says_which_feed_it_holds_so_replay_needs_no_venue(tmp_path, capsys):
    """`obview replay rec.jsonl --summary` asked for --venue, then for a symbol, of a file the
    app had written itself: its connect lines now name the feed."""
    from faultrig import rig
    from obview.cli import main

    p = tmp_path / "rec.jsonl"
    rec = Recorder(p)
    async with asyncio.timeout(20), rig(recorder=rec) as r:
        await r.live()
        r.session.recorder = None
    rec.close()
    connects = [x for x in replay_frames(p) if "connect" in x]
    assert connects[0]["venue"] == "demo" and connects[0]["symbol"] == "BTC-PERP"
    assert main(["replay", str(p), "--summary"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert (s["venue"], s["symbol"], s["state"]) == ("demo", "BTC-PERP", "LIVE")
    # two feeds in one file: say which, and ask
    two = tmp_path / "two.jsonl"
    lines = p.read_text().splitlines()
    other = [x.replace('"BTC-PERP"', '"ETH-PERP"').replace('"c":1', '"c":2') for x in lines if '"connect"' in x]
    two.write_text("\n".join([*lines, *other]) + "\n")
    assert main(["replay", str(two), "--summary"]) == 2
    err = capsys.readouterr().err
    assert "two.jsonl holds demo BTC-PERP, demo ETH-PERP; choose one with --venue and --symbol" in err
    assert main(["replay", str(two), "--symbol", "btc-perp", "--summary"]) == 0
    assert json.loads(capsys.readouterr().out)["symbol"] == "BTC-PERP"
    assert main(["replay", str(p), "--venue", "okx", "--summary"]) == 2  # the file says, and it is another
    assert "rec.jsonl holds demo BTC-PERP, none of them the feed asked for" in capsys.readouterr().err
    # a recording that names no feed (the shared ones) still needs telling
    bare = tmp_path / "bare.jsonl"
    bare.write_text("\n".join(x for x in lines if '"connect"' not in x) + "\n")
    assert main(["replay", str(bare), "--summary"]) == 2
    assert "does not say which feed it holds" in capsys.readouterr().err


async def test_a_silence_the_connection_showed_to_be_ordinary_replays_live_again(tmp_path):
    """A STALE that the connection's answers ended (a quiet book) left no trace: the replay
    stayed STALE until the book's next message."""
    from faultrig import rig

    p = tmp_path / "quiet.jsonl"
    rec = Recorder(p)
    async with asyncio.timeout(20), rig(recorder=rec) as r:
        await r.live()
        r.session.recorder = None
    rec.close()
    lines = p.read_text().splitlines()
    stale = '{"t":9e9,"stale":"no book data for 5.0 s","c":1}'
    resumed = '{"t":9e9,"resumed":"the connection answers","c":1}'
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join([*lines, stale]) + "\n")
    assert replay_summary(cut, "demo", "BTC-PERP")["state"] == "STALE"
    cut.write_text("\n".join([*lines, stale, resumed]) + "\n")
    s = replay_summary(cut, "demo", "BTC-PERP")
    assert s["state"] == "LIVE" and s["stale"] == 1


async def test_two_symbols_of_one_venue_in_one_recording_each_replay_as_shown(tmp_path):
    """Both feeds of one venue connect to the same URL: by URL alone the second symbol's
    connection was taken for the first's, its connect reset the book, and a feed LIVE to the end
    replayed SYNCING 'awaiting snapshot' (with the other symbol's frames counted as its own)."""
    server_mod = pytest.importorskip("obview.sim.server")
    from obview.feed.session import FeedSession
    from obview.market import Market
    from obview.venues.demo import DemoAdapter

    p = tmp_path / "two.jsonl"
    rec = Recorder(p)
    live: dict[str, tuple] = {}
    async with asyncio.timeout(30):
        server = await server_mod.start_server(port=0, seed=11, rate=40.0)
        sessions = []
        try:
            for symbol in ("BTC-PERP", "ETH-PERP"):  # ETH's connection opens after BTC's frames
                adapter = DemoAdapter(symbol, endpoint=server.url("/demo"))
                market = Market(adapter.default_instrument())
                session = FeedSession(adapter, market, recorder=rec)
                session.start()
                sessions.append((symbol, market, session))
                while not (market.live and session.pipeline.trades > 0):
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)  # both feeds' frames interleave
            server.set_rate(0)
            await asyncio.sleep(0.3)  # in-flight frames arrive
            for symbol, market, session in sessions:
                live[symbol] = (market.book.top(20), session.pipeline.trades, market.stats.frames)
        finally:
            for _, _, session in sessions:
                session.recorder = None
                await session.stop()
            await server.close()
    rec.close()
    feeds = {(x["symbol"], x["c"]) for x in replay_frames(p) if "connect" in x}
    assert {s for s, _ in feeds} == {"BTC-PERP", "ETH-PERP"} and len(feeds) == 2
    for symbol, (book, trades, frames) in live.items():
        s = replay_summary(p, "demo", symbol)
        assert (s["state"], s["parse_errors"], s["gaps"]) == ("LIVE", 0, 0), (symbol, s["reason"])
        assert s["bids"] == [[px, sz] for px, sz in book[0]]
        assert s["asks"] == [[px, sz] for px, sz in book[1]]
        assert s["trades"] == trades and s["frames"] == frames
    # a symbol the file does not hold: it says which it holds (it said "holds no received
    # frames to replay", of a file full of them)
    with pytest.raises(ReplayError, match=r"^two.jsonl holds no frames of demo SOL-PERP: it holds demo BTC-PERP, demo ETH-PERP; choose one with --venue and --symbol$"):
        replay_summary(p, "demo", "SOL-PERP")
