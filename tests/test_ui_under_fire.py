"""The app stays responsive on a bursting feed: keys are handled and frames keep coming.

Behaviour, not speed: the bound (2 s per key) is generous; bench/ui_fire.py measures the real
figures.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ui_fire import under_fire  # noqa: E402


async def test_keys_are_handled_and_frames_keep_coming_on_a_bursting_feed():
    async with asyncio.timeout(45):
        (idle, burst) = await under_fire([20.0, 3000.0], presses=3, settle=0.8, timeout=2.0)
    for res in (idle, burst):
        assert len(res.delays) == 6  # every key press changed the screen within 2 s
        assert max(res.delays) < 2.0, res.delays
        assert res.fps >= 3.0, res.fps  # the paint clock keeps ticking
        assert res.live
    assert burst.msgs_per_s > 3 * idle.msgs_per_s  # the feed really was bursting
