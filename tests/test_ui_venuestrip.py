"""The venue strip: every venue's key, state mark and name at any width, and a click on one."""

from __future__ import annotations

from obview.ui.app import ObviewApp
from obview.ui.synthetic import StaticManager
from obview.ui.venuestrip import VenueStrip
from test_ui_app import _markets, make_app, settle

NAMES = ["demo", "binance", "bybit", "okx", "deribit", "hyperliquid", "bitmex", "kraken", "dydx"]


def nine_venues() -> ObviewApp:
    """The app with every venue in the strip (only demo's market is open)."""
    demo, _, now = _markets()
    return ObviewApp(StaticManager({("demo", "BTC-PERP"): demo}, NAMES), "demo", "BTC-PERP", clock=lambda: now)


async def test_venue_strip_keeps_every_name_at_80_columns():
    names = NAMES
    app = nine_venues()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        strip = app.query_one(VenueStrip)._text.plain
        assert all(n in strip for n in names) and len(strip) <= 80, strip
        assert "cycle" not in strip  # the hint only where it fits whole
        await pilot.resize_terminal(160, 48)
        await settle(pilot)
        assert "[ ] cycle · v pick · x compare · s symbol" in app.query_one(VenueStrip)._text.plain


async def test_a_click_on_a_venue_in_the_strip_switches_to_it():
    app, mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        strip = app.query_one(VenueStrip)
        plain = strip._text.plain
        x = plain.index("binance") + 2
        assert strip.venue_at(x) == "binance" and strip.venue_at(plain.index("okx")) == "okx"
        assert strip.venue_at(len(plain) + 5) is None  # past the entries: the hint, or nothing
        await pilot.click(VenueStrip, offset=(x, 0))
        await settle(pilot)
        assert app.venue == "binance" and ("binance", "BTC-PERP") in mgr.opened
        # the gap between two entries is neither's
        assert strip.venue_at(plain.index("demo") + len("demo")) is None
        # the tight strip of a narrow terminal maps its own cells
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        plain = strip._text.plain
        await pilot.click(VenueStrip, offset=(plain.index("demo") + 1, 0))
        await settle(pilot)
        assert app.venue == "demo"


async def test_every_venue_keeps_its_key_and_mark_on_a_narrow_terminal():
    # at 66 columns the 9th venue was cut off the end, at 40 only five were left
    names = NAMES
    app = nine_venues()
    async with app.run_test(size=(66, 20)) as pilot:
        for w in (66, 60, 40, 30):
            await pilot.resize_terminal(w, 20)
            await settle(pilot)
            strip = app.query_one(VenueStrip)
            plain = strip._text.plain
            assert len(plain) <= w, (w, plain)
            keys = [ch for ch in plain if ch.isdigit()]
            assert keys == [str(i) for i in range(1, 10)], (w, plain)
            assert [strip.venue_at(plain.index(str(i))) for i in range(1, 10)] == names
