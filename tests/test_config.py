from __future__ import annotations

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
        'default_venue = "demo"\ndefault_symbol = "eth"\nvenues = ["demo"]\ntheme = "light"\nwarm_venues = 2\n[ui]\nlarge_trade = [1, 2, 3]\n'
    )
    cfg = load_config()
    assert (cfg.default_venue, cfg.default_symbol, cfg.venues, cfg.theme, cfg.warm_venues) == ("demo", "ETH-PERP", ["demo"], "light", 2)
    assert cfg.ui == {"large_trade": [1, 2, 3]}


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
