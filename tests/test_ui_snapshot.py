"""Snapshot tests of the main screen: seeded synthetic market, frozen clock, fixed size.

Update after an intended visual change with ``pytest tests/test_ui_snapshot.py --snapshot-update``
and look at the report before committing.
"""

from __future__ import annotations

from functools import lru_cache

from obview.ui.app import ObviewApp
from obview.ui.synthetic import StaticManager, build_market


@lru_cache
def _demo():
    return build_market(seed=11, seconds=30)


def _app() -> ObviewApp:
    market, now = _demo()
    mgr = StaticManager({("demo", "BTC-PERP"): market}, ["demo", "binance", "okx"])
    return ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now)


async def _settle(pilot) -> None:
    await pilot.pause()
    await pilot.pause(0.1)


def test_main_screen_160x48(snap_compare):
    assert snap_compare(_app(), terminal_size=(160, 48), run_before=_settle)


def test_main_screen_80x24(snap_compare):
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_settle)


def test_light_theme_quote_units_grouped(snap_compare):
    assert snap_compare(
        _app(), terminal_size=(160, 48), press=["t", "u", "plus", "plus"], run_before=_settle
    )
