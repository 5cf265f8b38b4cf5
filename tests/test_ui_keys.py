"""Random key storms at the app: keys delivered back to back the way the terminal driver hands
them over when the app was busy (no waiting for a quiet screen between them), mixed with
resizes, on prepared markets. The app must neither crash nor hang; quitting through the
command palette's Quit is allowed."""

from __future__ import annotations

import asyncio
import random

import pytest

from test_ui_app import _queue_keys, make_app

KEYS = [
    "question_mark", "escape", "space", "plus", "minus", "u", "v", "s", "enter", "down", "up",
    "left_square_bracket", "right_square_bracket", "t", "c", "comma", "full_stop",
    "less_than_sign", "greater_than_sign", "H", "L", "T", "1", "2", "3", "ctrl+p",
    "pagedown", "pageup", "home", "end", "tab", "e", "b", "x", "minus", "backspace",
]  # fmt: skip
SIZES = [(160, 48), (80, 24), (240, 70), (40, 10), (1, 1), (100, 30)]


@pytest.mark.parametrize("seed", range(6))
async def test_a_storm_of_keys_and_resizes_neither_crashes_nor_hangs(seed: int) -> None:
    rnd = random.Random(seed)
    app, _ = make_app()
    async with asyncio.timeout(40), app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.1)
        for _ in range(120):
            if not app.is_running:
                break
            r = rnd.random()
            if r < 0.06:
                await pilot.resize_terminal(*rnd.choice(SIZES))
            else:
                _queue_keys(app, *rnd.choices(KEYS, k=rnd.randint(1, 4)))
            await asyncio.sleep(rnd.choice([0.0, 0.002, 0.01, 0.05]))
        await asyncio.sleep(0.3)
        assert app._exception is None, app._exception
        assert app.is_running or app.return_code == 0  # the palette's Quit may have been chosen


async def test_keys_queued_behind_quit_or_behind_closing_the_palette_are_harmless() -> None:
    from test_ui_app import palette_search

    for after in (("b", "escape"), ("b", "c", "escape", "d"), ("backspace", "escape")):
        app, _ = make_app()
        async with asyncio.timeout(20), app.run_test(size=(120, 40)) as pilot:
            await palette_search(pilot, "venue")
            _queue_keys(app, *after)  # the search changes as the palette closes
            await asyncio.sleep(0.3)
            assert app._exception is None and app.is_running, after
    app, _ = make_app()
    async with asyncio.timeout(20), app.run_test(size=(120, 40)) as pilot:
        await palette_search(pilot, "quit")
        _queue_keys(app, "enter", "enter", "x", "1", "s", "enter", "q")
        await asyncio.sleep(0.5)
        assert app._exception is None and app.return_code == 0
