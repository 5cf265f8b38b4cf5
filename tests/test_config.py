from __future__ import annotations

import tomllib

import pytest

from obview.config import Config, ConfigError, load_config


def write(tmp_path, text: str | bytes):
    p = tmp_path / "config.toml"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return p


def test_missing_default_file_gives_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    cfg = load_config()
    assert isinstance(cfg, Config) and cfg.default_symbol == "BTC-PERP" and "demo" in cfg.venues


def test_reads_values_from_xdg_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "obview").mkdir()
    (tmp_path / "obview" / "config.toml").write_text(
        'default_venue = "demo"\ndefault_symbol = "eth"\nvenues = ["demo"]\ntheme = "light"\nwarm_venues = 2\n[ui]\nlarge_trades = [1, 2, 3]\n'
    )
    cfg = load_config()
    assert (cfg.default_venue, cfg.default_symbol, cfg.venues, cfg.theme, cfg.warm_venues) == ("demo", "ETH-PERP", ["demo"], "light", 2)
    assert cfg.ui == {"large_trades": {"default": [1.0, 2.0, 3.0]}}


@pytest.mark.parametrize(
    "text, key, hint",
    [
        ('default_venue = "nasdaq"', "default_venue", "valid: "),
        ('default_venue = "demo"\ndefault_symbol = "DOGE-PERP"', "default_symbol", "BTC-PERP"),
        ("venues = 3", "venues", "non-empty list"),
        ('venues = ["demo", "mtgox"]', "venues", "valid: "),
        ("warm_venues = 0", "warm_venues", "1 to 9"),
        ("colour = 1", "colour", "unknown key"),
        ('[endpoints]\ndemo = "http://x"', "endpoints.demo", "ws://"),
        ('[endpoints]\nbinance = "wss://fstream.binance.com:444444"', "endpoints.binance", "Port out of range"),
        ('[endpoints]\nokx = "wss://[::1/ws"', "endpoints.okx", "not a valid URL"),
        ('theme = "nope"', "theme", "valid: colorblind, dark, light"),
        ('colormap = "jet"', "colormap", "valid: viridis"),
        ("[ui]\nlarge_trade = [1, 2, 3]", "ui.large_trade", "valid: large_trades"),
        ("[ui]\nlarge_trades = [1, 2]", "ui.large_trades", "three ascending"),
        ("[ui]\nlarge_trades = [3, 2, 1]", "ui.large_trades", "three ascending"),
        ('[ui]\nlarge_trades = ["a", "b", "c"]', "ui.large_trades", "three ascending"),
        ("[ui]\nlarge_trades = [0, 1, nan]", "ui.large_trades", "three ascending"),
        ("[ui.large_trades]\nBTC = 5", "ui.large_trades.BTC", "three ascending"),
        ("[ui]\nlarge_trades = 5", "ui.large_trades", "per coin"),
        ('default_venue = "demo"\nvenues = ["binance"]', "default_venue", "listed"),
    ],
)
def test_bad_values_name_file_key_and_valid_choices(tmp_path, text, key, hint):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "\n" not in msg and str(p) in msg and f"'{key}'" in msg and hint in msg


def test_invalid_toml_binary_and_huge_files(tmp_path):
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(write(tmp_path, "default_venue = "))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(write(tmp_path, b"\xff\xfe\x00"))
    with pytest.raises(ConfigError, match="larger than"):
        load_config(write(tmp_path, "# " + "x" * 300_000))
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.toml")


def test_themes_colormaps_and_large_trade_tiers_are_read_as_the_app_uses_them(tmp_path):
    from obview.config import parse_config
    from obview.ui.tapemodel import large_trade_tiers

    cfg = parse_config(
        tomllib.loads(
            'theme = "obview-light"\ncolormap = "magma"\n'
            "[ui.large_trades]\nbtc = [1, 2, 3]\ndefault = [4, 5, 6]\n"
        ),
        tmp_path / "c.toml",
    )
    assert (cfg.theme, cfg.colormap) == ("obview-light", "magma")
    tiers = cfg.ui["large_trades"]
    assert large_trade_tiers("BTC", tiers) == (1.0, 2.0, 3.0)
    assert large_trade_tiers("SOL", tiers) == (4.0, 5.0, 6.0)


@pytest.mark.parametrize(
    "text",
    [
        '"\\u001b]0;PWNED\\u0007\\u001b[2Jred" = 1\n',
        '[endpoints]\n"\\u001b[31mx\\nline" = "wss://a"\n',
        '[ui]\n"\\u001b[31mx" = 1\n',
        '[ui.large_trades]\n"\\u001b[31mBTC" = [1, 2]\n',
    ],
)
def test_a_key_named_with_escape_codes_is_shown_inert(tmp_path, text):
    # keys were printed raw (values went through repr): a terminal title set, the screen cleared
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "\x1b" not in msg and "\x07" not in msg and "\n" not in msg and "key '" in msg


def test_an_endless_config_file_is_refused_unread(tmp_path):
    # /dev/zero and /dev/urandom were read whole (MemoryError, or a hang eating memory)
    with pytest.raises(ConfigError, match="larger than 256 KiB"):
        load_config("/dev/zero")


def test_a_pipe_given_as_the_config_file_is_refused_not_waited_on(tmp_path):
    # opening a FIFO blocks until something writes to it: the app hung before its first line
    import os

    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="a pipe or socket, not a config file"):
        load_config(fifo)


def test_default_symbol_is_checked_against_every_venue_not_the_default_one(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('default_symbol = "XRP-PERP"\n')
    with pytest.raises(ConfigError, match="'XRP-PERP' is listed on none of the venues; valid: BTC-PERP"):
        load_config(p)
    p.write_text('venues = ["demo", "okx"]\ndefault_venue = "okx"\ndefault_symbol = "sol"\n')
    assert load_config(p).default_symbol == "SOL-PERP"


def test_an_endpoint_whose_host_cannot_be_looked_up_is_refused_at_start():
    """A label over 63 characters: left to the connection, RECONNECTING forever with an
    'encoding with idna codec failed' reason."""
    from obview.config import url_problem

    assert "cannot be looked up" in url_problem("ws://" + "a" * 300 + ".com/", ("ws", "wss"))
    assert "cannot be looked up" in url_problem("wss://a..b/", ("ws", "wss"))
    assert url_problem("wss://bücher.example/ws", ("ws", "wss")) is None


@pytest.mark.parametrize(
    "text, expect",
    [
        ('venues = ["demo", "okx", "demo"]', "key 'venues': demo is listed twice"),
        ('theme = "' + "x" * 5000 + '"', "key 'theme': 'xxxxxxxx"),
        ('default_venue = "' + "v" * 5000 + '"', "key 'default_venue': 'vvvv"),
        ('[ui.large_trades]\n"" = [1, 2, 3]', "key 'ui.large_trades.': not a coin"),
        ('[ui.large_trades]\n"[bold]" = [1, 2, 3]', "key 'ui.large_trades.[bold]': not a coin"),
        ('[ui.large_trades]\nbtc = [1, 2, 3]\nBTC = [4, 5, 6]', "BTC is given twice"),
    ],
)
def test_config_values_that_cannot_be_meant_are_refused_in_one_short_line(tmp_path, text, expect):
    """A duplicate venue was dropped silently, coin keys that name no coin (or one coin
    twice) were taken, and a 200 000-character value was echoed whole in the error."""
    p = tmp_path / "c.toml"
    p.write_text(text + "\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert expect in msg and "\n" not in msg and len(msg) < 600


def test_a_venue_list_without_the_built_in_default_and_no_default_venue_opens_its_first(tmp_path):
    # the file was refused: "key 'default_venue': 'binance' must also be listed in 'venues'",
    # about a key it did not have (and `obview BTC-PERP --venue demo` with it too)
    p = tmp_path / "c.toml"
    p.write_text('venues = ["demo", "okx"]\n')
    cfg = load_config(p)
    assert cfg.default_venue == "demo" and cfg.venues == ["demo", "okx"]
    # a default_venue written and not listed is still refused, by its own name
    p.write_text('venues = ["demo", "okx"]\ndefault_venue = "binance"\n')
    with pytest.raises(ConfigError, match="key 'default_venue': 'binance' must also be listed in 'venues'"):
        load_config(p)
