"""A venue repeating a complaint must not fill the log: venue errors are logged as bad frames
are, the first at once and then one line an interval saying how many it stands for (a local
server repeating an OKX notice wrote 4,773 lines in 6 s). Each is still shown in the stats."""

from __future__ import annotations

from obview.feed import pipeline as pl
from obview.feed.pipeline import FeedPipeline
from obview.market import Market
from obview.venues.demo import DemoAdapter
from pipelog import pipeline_log_lines


def test_a_flood_of_venue_errors_is_logged_in_bounded_lines_and_a_fatal_one_always(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(pl.time, "monotonic", lambda: clock[0])
    adapter = DemoAdapter("BTC-PERP", endpoint="ws://127.0.0.1:9")
    market = Market(adapter.default_instrument())
    p = FeedPipeline(adapter, market)
    with pipeline_log_lines() as lines:
        for i in range(3000):
            p.on_frame("demo", f'{{"type":"error","reason":"slow down {i}"}}', 0.0)
        assert len(lines) == 1 and "slow down 0" in lines[0]
        assert market.stats.last_error == "slow down 2999"  # the stats bar still has the latest
        clock[0] += pl.BAD_FRAME_LOG_INTERVAL
        p.on_frame("demo", '{"type":"error","reason":"slow down again"}', 0.0)
        assert len(lines) == 2 and "(and 2999 more venue errors since the last such line)" in lines[1]
        p.on_frame("demo", '{"type":"error","reason":"unknown symbol","fatal":true}', 0.0)
        assert len(lines) == 3 and "unknown symbol" in lines[2]
