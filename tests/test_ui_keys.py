"""Keys arriving together at the app: delivered back to back the way the terminal driver hands
them over when the app was busy (no waiting for a quiet screen between them), on prepared
markets. Named cases (modals, the command palette), then random storms mixed with resizes.
The app must neither crash nor hang; quitting through the command palette's Quit is allowed."""

from __future__ import annotations

import asyncio
import random

import pytest

from obview.ui.screens import HelpScreen, Palette
from test_ui_app import make_app, settle

KEYS = [
    "question_mark", "escape", "space", "plus", "minus", "u", "v", "s", "enter", "down", "up",
    "left_square_bracket", "right_square_bracket", "t", "c", "comma", "full_stop", "z", "Z",
    "less_than_sign", "greater_than_sign", "H", "L", "T", "1", "2", "3", "ctrl+p",
    "pagedown", "pageup", "home", "end", "tab", "e", "b", "x", "minus", "backspace",
]  # fmt: skip
SIZES = [(160, 48), (80, 24), (240, 70), (40, 10), (1, 1), (100, 30)]


def _queue_keys(app, *keys: str) -> None:
    """Keys as the terminal driver delivers them, back to back (as they arrive when the app was
    busy), without the test pilot's waits for a quiet screen between them."""
    from textual import events

    for k in keys:
        ev = events.Key(k, k if len(k) == 1 else None)
        ev.set_sender(app)
        app._driver.send_message(ev)


async def test_page_keys_queued_behind_the_command_palette_do_not_crash():
    from textual.command import CommandPalette as Palette

    for keys in (("ctrl+p", "pageup"), ("ctrl+p", "pagedown"), ("ctrl+p", "down", "pageup"), ("ctrl+p", "o", "pagedown")):
        app, _ = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            _queue_keys(app, *keys)
            await settle(pilot, 0.3)
            assert app.is_running and isinstance(app.screen, Palette), keys
            _queue_keys(app, "escape")
            await settle(pilot, 0.1)
            assert app.is_running and not isinstance(app.screen, Palette)


async def palette_search(pilot, text: str) -> None:
    """Open the command palette and type ``text`` into it; its matches are gathered."""
    await pilot.press("ctrl+p")
    await settle(pilot, 0.2)
    for ch in text:
        await pilot.press({" ": "space", ":": "colon"}.get(ch, ch))
    await settle(pilot, 0.5)


async def test_the_command_palette_switches_venue():
    app, mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await palette_search(pilot, "venue: binance")
        await pilot.press("enter")
        await settle(pilot, 0.2)
        assert app.venue == "binance" and ("binance", "BTC-PERP") in mgr.opened


async def test_a_modal_closed_twice_by_keys_arriving_together_closes_once():
    for keys in (("s", "enter", "escape"), ("s", "enter", "enter"), ("v", "enter", "escape"), ("v", "escape", "escape"), ("question_mark", "escape", "escape")):
        app, _ = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            _queue_keys(app, *keys)
            await settle(pilot, 0.3)
            assert app.is_running and len(app.screen_stack) == 1, keys
            assert app.market is not None and app.venue == "demo"


async def test_a_modal_answers_once_and_never_closes_the_screen_over_it():
    from obview.ui.screens import SymbolPrompt

    app, _ = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        got: list = []
        prompt = SymbolPrompt("BTC-PERP", ["BTC-PERP", "ETH-PERP"])
        app.push_screen(prompt, got.append)
        await settle(pilot)
        help_screen = HelpScreen()
        app.push_screen(help_screen)  # another modal over the prompt (ctrl+p, ?)
        await settle(pilot)
        prompt.dismiss("SOL-PERP")  # an Enter queued for the prompt, handled after that
        await settle(pilot)
        assert got == [] and app.screen is help_screen
        app.pop_screen()
        await settle(pilot)
        prompt.dismiss("ETH-PERP")
        prompt.dismiss("SOL-PERP")  # a second answer: ignored
        await settle(pilot, 0.2)
        assert got == ["ETH-PERP"] and app.is_running and len(app.screen_stack) == 1


async def test_enters_queued_behind_a_command_palette_choice_run_it_and_close_it_once():
    app, mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await palette_search(pilot, "venue: binance")
        switch, runs = app._switch, []
        app._switch = lambda *a: (runs.append(a), switch(*a))[1]
        _queue_keys(app, "enter", "enter", "enter", "enter")
        await settle(pilot, 0.5)
        assert app.is_running and len(app.screen_stack) == 1 and app.venue == "binance"
        assert runs == [("binance", "BTC-PERP")]  # run once, not once per Enter



async def test_the_palette_opens_again_while_the_one_just_closed_is_still_being_removed():
    # a storm of keys found it: Escape then ctrl+p handled before the closed palette's removal
    # completed pushed a second palette with the first one's id, and DuplicateIds ended the app
    app, _ = make_app()
    async with asyncio.timeout(20), app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.action_command_palette()
        await settle(pilot, 0.2)
        first = app.screen
        assert isinstance(first, Palette)
        app.pop_screen()
        app.action_command_palette()  # at once, before the first is gone
        await settle(pilot, 0.3)
        assert app._exception is None and app.is_running
        assert isinstance(app.screen, Palette) and app.screen is not first
        # a palette under a screen one of its commands opened is not opened a second time
        app.push_screen(HelpScreen())
        await settle(pilot, 0.2)
        app.action_command_palette()
        await settle(pilot, 0.2)
        assert app._exception is None
        assert [type(s).__name__ for s in app.screen_stack] == ["MainScreen", "Palette", "HelpScreen"]


@pytest.mark.parametrize("seed", range(4))  # (six took half a minute of the suite's ten)
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


async def test_an_arrow_key_reaching_the_palette_after_its_list_is_gone_is_harmless() -> None:
    # an arrow queued behind Enter reaches the palette as it closes: query_one(CommandList)
    # raised NoMatches and ended the app (a storm of keys met it about one run in five)
    from textual.command import CommandList

    from obview.ui.screens import Palette

    app, _ = make_app()
    async with asyncio.timeout(20), app.run_test(size=(120, 40)) as pilot:
        await palette_search(pilot, "venue")
        palette = app.screen
        assert isinstance(palette, Palette)
        await palette.query_one(CommandList).remove()
        for key in ("down", "up", "pagedown", "end", "enter"):
            await pilot.press(key)
        await settle(pilot)
        assert app._exception is None and app.is_running


async def test_venue_keys_pressed_together_step_from_the_venue_last_asked_for():
    # the venue changes when its feed opens: keys handled before that read the venue being
    # left, so "2 1" from demo stayed on binance and "] ]" moved one step
    app, mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert app.venue == "demo"
        app.action_venue(2)
        app.action_venue(1)
        await settle(pilot, 0.2)
        assert (app.venue, app.market.venue) == ("demo", "demo")
        app.action_cycle_venue(-1)  # demo -> okx -> binance
        app.action_cycle_venue(-1)
        await settle(pilot, 0.2)
        assert app.venue == "binance" and app.market.venue == "binance"
        app.action_cycle_venue(1)  # binance -> okx -> demo
        app.action_cycle_venue(1)
        await settle(pilot, 0.2)
        assert app.venue == "demo" and app.market.venue == "demo"


async def test_grouping_stops_at_a_fiftieth_of_the_price_and_rows_stay_above_zero():
    # "+" held went up to a 500,000 grouping on BTC at 97,000: ladder rows down to -10,500,000
    app, mgr = make_app()
    async with app.run_test(size=(240, 70)) as pilot:
        await settle(pilot)
        mid = app.market.book.mid()
        for _ in range(25):
            await pilot.press("plus")
        await settle(pilot)
        assert mid / 250 < app.step <= mid / 50  # the 1-5 series: at most 5x short of the cap
        prices = [line.split()[0] for line in app.w_ladder.line_texts()[1:] if line.strip()]
        assert prices and all(not p.startswith("-") for p in prices), prices
        for _ in range(25):
            await pilot.press("minus")
        await settle(pilot)
        assert app.step == app.steps[0] == app.market.instrument.tick


async def test_a_panel_toggled_back_follows_the_width_again_and_panels_fit_the_screen():
    # H H kept "heatmap: shown" as an override: at 80 columns the heatmap, a 40-column ladder
    # and a 40-column tape ran one column past the right edge
    app, mgr = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("H")
        await settle(pilot)
        assert not app.w_heatmap.display
        await pilot.press("H")
        await settle(pilot)
        assert app.w_heatmap.display and app.panel_override["heatmap"] is None
        await pilot.resize_terminal(80, 24)
        await settle(pilot, 0.2)
        assert not app.w_heatmap.display  # automatic at 80 columns: ladder and tape
        await pilot.press("H")  # forced on where it does not fit beside both
        await settle(pilot, 0.2)
        shown = [w for w in (app.w_heatmap, app.w_ladder, app.w_tape) if w.display]
        assert len(shown) == 3
        assert all(w.region.width > 0 and w.region.right <= 80 for w in shown), [w.region for w in shown]
        assert sum(w.region.width for w in shown) <= 80


async def test_sigterm_ends_the_app_as_q_does_with_its_code():
    # a `kill` or a closed terminal (SIGHUP) killed the process where it stood: feeds and a
    # recording were never closed (a .gz one was left empty)
    import os
    import signal

    app, mgr = make_app()
    app.exit_on_signals = True
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        handler = signal.getsignal(signal.SIGTERM)
        assert handler not in (signal.SIG_DFL, signal.SIG_IGN, None)  # the app's, or no kill
        os.kill(os.getpid(), signal.SIGTERM)
        async with asyncio.timeout(5):
            while app.is_running:
                await asyncio.sleep(0.02)
    assert app.return_code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is not handler  # given back on the way out


async def test_the_command_palette_offers_the_apps_commands_not_textuals(tmp_path, monkeypatch):
    """Textual's own Theme restyled only the frame, its Screenshot saved to a ~/Downloads
    that may not exist ('Failed to save screenshot'), its Keys panel listed its bindings."""
    monkeypatch.chdir(tmp_path)
    app, _ = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Theme" not in titles and "Keys" not in titles and "Maximize" not in titles
        assert {"Quit", "Help", "Screenshot"} <= set(titles)
        assert any(t.startswith("Theme: ") for t in titles)  # the app's own themes
        await palette_search(pilot, "screenshot")
        await pilot.press("enter")
        await settle(pilot, 0.3)
        saved = list(tmp_path.glob("*.svg"))
        assert len(saved) == 1 and saved[0].stat().st_size > 1000
