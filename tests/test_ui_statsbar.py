"""The stats bar in the app: the feed's state and why, how far behind, the way to retry a failed
feed, bad frames, a recording, and what stays on the line at 80 columns."""

from __future__ import annotations

from obview.market import Market
from obview.model import FeedStatus
from obview.ui.app import ObviewApp
from obview.ui.statsbar import StatsBar
from obview.ui.synthetic import StaticManager, build_market
from test_ui_app import _markets, make_app, settle


async def test_the_stats_bar_says_when_frames_are_bad_and_why_for_a_minute():
    # a changed protocol or a broken proxy: frames the feed cannot use were only counted, so a
    # book that stopped moving said STALE and never why
    app, mgr = make_app()
    demo = _markets()[0]
    now = app.clock()
    stats = demo.stats
    saved = (stats.bad_frames, stats.last_error, stats.last_error_at)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            bar = app.query_one(StatsBar)
            assert "⚠" not in bar._text.plain
            stats.bad_frames, stats.last_error, stats.last_error_at = 3, "malformed JSON: [red]x at line 1 column 42", now - 5
            app._paint_slow(now)
            first = bar._text.plain.splitlines()[0]
            assert "   ⚠ 3 bad frames, last: malformed JSON: [red]x at line 1 column 42   group" in first
            await pilot.resize_terminal(100, 30)  # no room for the reason: the count stays
            await settle(pilot)
            first = bar._text.plain.splitlines()[0]
            assert "⚠ 3 bad frames   group" in first and "malformed" not in first
            stats.bad_frames, stats.last_error = 0, "subscription refused: topic unknown"
            app._paint_slow(now)
            assert "⚠ venue error   group" in bar._text.plain
            stats.last_error_at = now - 61  # a minute without another: gone
            app._paint_slow(now)
            assert "⚠" not in bar._text.plain
    finally:
        stats.bad_frames, stats.last_error, stats.last_error_at = saved


async def test_the_stats_bar_shows_a_recording_and_says_when_it_stopped():
    from types import SimpleNamespace

    app, mgr = make_app()
    mgr.recorder = SimpleNamespace(file_bytes=12_345_678, reason="")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        bar = app.query_one(StatsBar)
        first = bar._text.plain.splitlines()[0]
        assert "● LIVE" in first and "● REC 12.3 MB" in first
        mgr.recorder.reason = "No space left on device"
        app._paint_slow(app.clock())
        first = bar._text.plain.splitlines()[0]
        assert "● LIVE   ✕ REC stopped: No space left on device" in first and "REC 12.3" not in first
        await pilot.resize_terminal(60, 20)  # narrow: the fields go, the news stays
        await settle(pilot)
        assert "✕ REC stopped: No space" in bar._text.plain.splitlines()[0]


async def test_unavailable_venue_shows_why():
    demo, _, now = _markets()

    class Down(StaticManager):
        async def open(self, venue, symbol):
            if venue == "okx":
                raise ConnectionRefusedError("no network: connection refused")
            return await super().open(venue, symbol)

    mgr = Down({("demo", "BTC-PERP"): demo}, ["demo", "okx"])
    app = ObviewApp(mgr, "okx", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        plain = app.query_one(StatsBar)._text.plain
        assert "UNAVAILABLE" in plain and "connection refused" in plain
        await pilot.press("1")
        await settle(pilot)
        assert app.market is demo and "LIVE" in app.query_one(StatsBar)._text.plain


async def test_a_live_book_that_arrives_late_says_how_far_behind():
    # a LIVE book whose messages come 2.5 s later than the minute's quickest: the stats bar
    # flags it (a backlog here, on the network or at the venue); a constant offset does not
    m, now = build_market(seed=5, seconds=20)
    assert m.live
    lat = m.stats.latency
    for i in range(600):  # the minute so far: 40 ms
        lat.add(now - 40 + i * 0.05, 0.040)
    for i in range(40):  # the last 2 s: 2.5 s late
        lat.add(now - 2 + i * 0.05, 2.540)
    mgr = StaticManager({("demo", "BTC-PERP"): m}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        stats = app.query_one(StatsBar)._text.plain
        assert "● LIVE 2.5s behind" in stats, stats
    ok, now2 = build_market(seed=5, seconds=20)
    for i in range(600):
        ok.stats.latency.add(now2 - 40 + i * 0.05, 3.0)  # a clock 3 s off, but no backlog
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): ok}, ["demo"]), "demo", "BTC-PERP", clock=lambda: now2)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert "behind" not in app.query_one(StatsBar)._text.plain


async def test_stats_bar_keeps_both_lines_at_80_columns():
    # at 80 columns the bar used to wrap its first line, pushing the second (prices, spread,
    # rates) out of its two rows; now fields that do not fit are left out whole, from the end
    from rich.text import Text

    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        bar = app.query_one(StatsBar)
        lines = bar._text.plain.split("\n")
        assert len(lines) == 2 and lines[1].startswith(" last ")
        assert all(Text(x).cell_len <= 80 for x in lines), lines
        assert "…" not in lines[1] and "latency" not in lines[1]  # left out whole, not cut
        await pilot.resize_terminal(160, 48)
        await settle(pilot)
        assert "latency p50" in bar._text.plain.split("\n")[1]  # there is room again


async def test_the_venue_key_retries_a_failed_feed():
    demo, _, now = _markets()
    failed = Market(demo.instrument)
    failed.set_state(FeedStatus.FAILED, "bybit subscribe: invalid symbol")

    class Retry(StaticManager):
        async def open(self, venue, symbol):
            if venue == "okx" and not any(v == "okx" for v, _ in self.opened):
                self.opened.append((venue, symbol))
                raise ConnectionRefusedError("no network: connection refused")
            return await super().open(venue, symbol)

    mgr = Retry({("demo", "BTC-PERP"): demo, ("bybit", "BTC-PERP"): failed, ("okx", "BTC-PERP"): demo}, ["demo", "bybit", "okx"])
    app = ObviewApp(mgr, "bybit", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        plain = app.query_one(StatsBar)._text.plain
        assert "FAILED press 2 to retry" in plain and "invalid symbol" in plain
        opened = len(mgr.opened)
        await pilot.press("2")  # the current venue's key: open it again
        await settle(pilot)
        assert len(mgr.opened) == opened + 1 and mgr.opened[-1] == ("bybit", "BTC-PERP")
        await pilot.press("1")
        await settle(pilot)
        n = len(mgr.opened)
        await pilot.press("1")  # a LIVE feed: its key does nothing
        await settle(pilot)
        assert len(mgr.opened) == n
        await pilot.press("3")  # cannot be opened: UNAVAILABLE, and its key retries
        await settle(pilot)
        plain = app.query_one(StatsBar)._text.plain
        assert "UNAVAILABLE press 3 to retry" in plain and "connection refused" in plain
        await pilot.press("3")
        await settle(pilot)
        assert app.market is demo and "LIVE" in app.query_one(StatsBar)._text.plain


async def test_the_venue_key_cuts_short_the_wait_of_a_feed_reconnecting():
    # the venue was back, and the feed waited out a 20 s backoff: the trader could only wait
    demo, _, now = _markets()
    down = Market(demo.instrument)
    down.set_state(FeedStatus.RECONNECTING, "connection refused; retry in 20 s")
    asked: list = []

    class Retry(StaticManager):
        cuttable = True

        def retry_now(self, venue, symbol):
            asked.append((venue, symbol))
            return True

        def can_retry_now(self, venue, symbol):
            return self.cuttable

    mgr = Retry({("demo", "BTC-PERP"): demo, ("bybit", "BTC-PERP"): down}, ["demo", "bybit"])
    app = ObviewApp(mgr, "bybit", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        plain = app.query_one(StatsBar)._text.plain
        assert "RECONNECTING press 2 to retry  connection refused; retry in 20 s" in plain
        opened = len(mgr.opened)
        await pilot.press("2")
        await settle(pilot)
        assert asked == [("bybit", "BTC-PERP")] and len(mgr.opened) == opened  # not reopened
        # connecting, or a wait the venue asked for: no key offered, and the key does nothing
        mgr.cuttable = False
        down.set_state(FeedStatus.RECONNECTING, "handshake refused: HTTP 429; the venue asks to wait 60 s; retry in 58 s")
        app._paint_slow(now)
        assert "press 2" not in app.query_one(StatsBar)._text.plain
        await pilot.press("2")
        await settle(pilot)
        assert asked == [("bybit", "BTC-PERP")]


async def test_book_age_is_judged_against_the_measured_cadence_of_a_snapshot_venue():
    # a venue pushing whole books every 2-5 s (Hyperliquid) showed its book age in the warning
    # colour most of the time; with the cadence measured, it is late only against that
    m, now = build_market(seed=5, seconds=20)
    m.stats.last_book_at = now - 2.6
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): m}, ["demo"]), "demo", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        bar = app.query_one(StatsBar)

        def age_style() -> str:
            t = bar._text
            start = t.plain.index("book age ") + len("book age ")
            return str([s.style for s in t.spans if s.start <= start < s.end][-1])

        stale = str(bar.pal.style("stale"))
        assert "book age 2.6s   resyncs" in bar._text.plain and age_style() == stale
        m.stats.book_every = 2.0
        app._paint_slow(now)
        assert "book age 2.6s / every 2.0s   resyncs" in bar._text.plain
        assert age_style() != stale
        m.stats.last_book_at = now - 3.2  # past 1.5 intervals
        app._paint_slow(now)
        assert age_style() == stale
        await pilot.resize_terminal(50, 20)  # no room: the cadence goes first, the age stays
        await settle(pilot)
        first = bar._text.plain.splitlines()[0]
        assert "book age 3.2s" in first and "every" not in first


async def test_while_paused_the_feed_state_and_venue_strip_stay_current():
    # paused, the whole frame was skipped: a feed that died meanwhile still read LIVE until
    # the user resumed
    from obview.ui.ladder import Ladder

    m, t0 = build_market(seed=5, seconds=20)
    clock = [t0]
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): m}, ["demo"]), "demo", "BTC-PERP", clock=lambda: clock[0])
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        bar = app.query_one(StatsBar)
        ladder = "\n".join(app.query_one(Ladder).line_texts())
        assert "PAUSED   ● LIVE" in bar._text.plain
        m.set_state(FeedStatus.RECONNECTING, "connection refused; retry in 5.0 s")
        clock[0] += 1.0
        await settle(pilot, 0.3)
        assert "PAUSED   ◌ RECONNECTING connection refused" in bar._text.plain
        assert "\n".join(app.query_one(Ladder).line_texts()) == ladder  # the panels hold still


async def test_a_new_feed_state_is_said_on_the_next_frame_not_the_next_quarter_second():
    # the first line read "SYNCING awaiting snapshot" beside a ladder and figures already live
    m, t0 = build_market(seed=5, seconds=20)
    clock = [t0]
    app = ObviewApp(
        StaticManager({("demo", "BTC-PERP"): m}, ["demo"]), "demo", "BTC-PERP",
        clock=lambda: clock[0], frame_interval=3600,
    )  # fmt: skip
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app._frame(force=True)
        bar = app.query_one(StatsBar)
        for paused in (False, True):
            if paused:
                await pilot.press("space")
                await settle(pilot)
            m.set_state(FeedStatus.SYNCING, "awaiting snapshot")
            app._frame()  # the clock has not moved: no quarter second has passed
            assert "SYNCING awaiting snapshot" in bar._text.plain, paused
            m.set_state(FeedStatus.LIVE)
            app._frame()
            assert "● LIVE" in bar._text.plain and "SYNCING" not in bar._text.plain, paused


async def test_prices_off_the_tick_are_shown_exactly_not_rounded_to_it():
    # the built-in tick outdated (the venue cut it, its endpoint out of reach): a 0.05 spread
    # read "spread 0.1 (0.00 bp)" and the mid lost its last digit
    demo, _ = build_market(seed=3, seconds=5)
    tick = demo.instrument.tick
    bb = demo.book.best_bid()[0]
    demo.book.apply_delta([], [(bb + tick / 2, 1.0)])
    demo.last_price = bb + tick / 2
    mgr = StaticManager({("demo", "BTC-PERP"): demo}, ["demo"])
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: demo.stats.last_frame_at)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        second = app.query_one(StatsBar)._text.plain.splitlines()[1]
        assert f"spread {tick / 2:g} (" in second, second
        assert f"mid {bb + tick / 4:.3f}" in second and f"last {bb + tick / 2:.2f}" in second
        # and the ladder's spread label (beside its titles, in the gap between the touches)
        assert app.w_ladder._spread_label(demo.book, app.step).startswith(f"spread {tick / 2:g} ")
    # prices on the tick keep the tick's decimals (float noise is not a digit)
    demo2, _ = build_market(seed=3, seconds=5)
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): demo2}, ["demo"]), "demo", "BTC-PERP")
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        second = app.query_one(StatsBar)._text.plain.splitlines()[1]
        sp = demo2.book.spread()
        assert f"spread {sp:.1f} (" in second, second


async def test_the_book_figures_follow_the_ladder_on_the_frame_the_book_moves():
    # they were repainted four times a second with the rest of the bar: a capture showed the
    # ladder's touch and the tape at 97010.0 under "last 97007.2 mid 97007.65"
    market, now = build_market(seed=3, seconds=5, gap=None)
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): market}, ["demo"]), "demo", "BTC-PERP", clock=lambda: now, frame_interval=3600)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app._paint_stats(now)
        bar = app.query_one(StatsBar)
        first, kept = bar._text.plain.splitlines()[0], bar._strips[0]
        ba = market.book.best_ask()[0]
        market.book.apply_delta([(ba, 2.0)], [(ba, 0.0)])  # the ask taken: the touch moves up
        market.last_price = ba
        market.version += 1
        app._frame()  # the same instant: no slow repaint is due
        second = bar._text.plain.splitlines()[1]
        mid = market.book.mid()
        assert f"last {ba:.1f}" in second and f"mid {mid:.2f}" in second, second
        # the state line is not made again for it: same text, same Strip
        assert bar._text.plain.splitlines()[0] == first and bar._strips[0] is kept


async def test_the_book_line_repaints_when_only_a_colour_turns(monkeypatch):
    # keyed by its text alone, an imbalance of 0.1004 (bid colour) then 0.0996 (neutral) both
    # read "+0.10" and kept the bid colour
    demo, _, now = _markets()
    app = ObviewApp(StaticManager({("demo", "BTC-PERP"): demo}, ["demo"]), "demo", "BTC-PERP", clock=lambda: now)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        bar = app.query_one(StatsBar)
        colours = []
        for imb in (0.1004, 0.0996):
            monkeypatch.setattr(type(demo.book), "imbalance", lambda self, n=10, imb=imb: imb)
            bar.show_book(demo, now)
            segs = [s for s in bar._strips[1]._segments if s.text == "+0.10"]
            colours.append(segs[0].style.color)
        assert colours[0] == app.w_stats.pal.style("bid").color
        assert colours[1] == app.w_stats.pal.style("axis").color
