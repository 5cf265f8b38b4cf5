"""User configuration: a TOML file in the user's config dir, read once at start.

``$XDG_CONFIG_HOME/obview/config.toml`` (default ``~/.config/obview/config.toml``). Every key
is optional. A bad file is one clear line naming the file, the key and what is valid.

    default_venue = "binance"
    default_symbol = "BTC-PERP"
    venues = ["binance", "bybit", "okx", "deribit", "hyperliquid", "bitmex", "kraken", "dydx", "demo"]
    theme = "obview-dark"
    colormap = "inferno"
    warm_venues = 3

    [endpoints]          # optional overrides (mirrors, local simulators)
    binance = "wss://fstream.binance.com"

    [ui.large_trades]    # quote notional of the tape's three large-trade tiers, per base coin
    BTC = [100000, 1000000, 5000000]
    default = [10000, 100000, 1000000]   # every other coin
    # or one list for every coin:  [ui]  large_trades = [50000, 250000, 1000000]
"""

from __future__ import annotations

import math
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from obview.symbols import normalize
from obview.text import safe, shown
from obview.venues.registry import get_adapter, venue_names

MAX_CONFIG_BYTES = 256 * 1024


class ConfigError(ValueError):
    """A bad config file; the message is one line for the user."""


def default_venue() -> str:
    names = venue_names()
    return "binance" if "binance" in names else "demo"


@dataclass(slots=True)
class Config:
    default_venue: str = field(default_factory=default_venue)
    default_symbol: str = "BTC-PERP"
    venues: list[str] = field(default_factory=venue_names)
    theme: str = "obview-dark"
    colormap: str = "inferno"
    warm_venues: int = 3
    endpoints: dict[str, str] = field(default_factory=dict)
    ui: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def _shipped(kind: str) -> list[str]:
    """Names of the themes (their [textual] name) or colormaps shipped in ``obview/themes``;
    empty when the files cannot be read (the UI then reports that itself)."""
    from importlib import resources

    names: list[str] = []
    try:
        folder = resources.files("obview") / "themes"
        if kind == "colormap":
            return list(tomllib.loads((folder / "colormaps.toml").read_text(encoding="utf-8")))
        for f in folder.iterdir():
            if f.name.endswith(".toml") and f.name != "colormaps.toml":
                name = tomllib.loads(f.read_text(encoding="utf-8")).get("textual", {}).get("name")
                if isinstance(name, str):
                    names.append(name)
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return []
    return sorted(names)


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``url`` cannot be an endpoint (None when it can): caught here, it is one line at
    start; left to the connection, it was a traceback or a retry loop on a bad port."""
    names = [f"{s}://" for s in schemes]
    if not url.startswith(tuple(names)):
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
        article = "an" if listed.startswith("http") else "a"  # "an http://" as it is said
        return f"must be {article} {listed} URL"
    if any(c <= " " or c == "\x7f" for c in url):
        return "has a space or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        return f"is not a valid URL ({e})"
    if not parts.hostname:
        return "names no host"
    try:
        parts.hostname.encode("idna")
    except UnicodeError as e:
        # a label over 63 characters, an empty one: left to the connection, a retry loop
        return f"names a host that cannot be looked up ({e})"
    if port == 0:
        return "port 0 is not a port to connect to"
    return None


def config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "obview" / "config.toml"


def load_config(path: str | Path | None = None) -> Config:
    """Read the config file; a missing default file gives the defaults."""
    explicit = path is not None
    p = Path(path) if explicit else config_path()
    if not p.exists():
        if explicit:
            raise ConfigError(f"{p}: no such config file")
        return Config()
    try:
        if stat.S_ISFIFO(p.stat().st_mode) or stat.S_ISSOCK(p.stat().st_mode):
            # opening a pipe waits for a writer: the app would hang before its first line
            raise ConfigError(f"{p}: a pipe or socket, not a config file")
        with p.open("rb") as fh:  # at most one byte past the cap: /dev/zero is not read whole
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p}: file is larger than {MAX_CONFIG_BYTES // 1024} KiB; is it the right file?")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    except RecursionError:  # tomllib recurses per nesting level
        raise ConfigError(f"{p}: invalid TOML: nested too deeply") from None
    return parse_config(data, p)


def parse_config(data: dict[str, Any], p: Path) -> Config:
    cfg = Config(path=p)
    known = set(venue_names())
    valid_venues = ", ".join(sorted(known))

    def bad(key: str, msg: str) -> ConfigError:
        # a key is the file's text: shown inert (no escape codes or newlines reach the terminal)
        return ConfigError(f"{p}: key '{safe(key, 80)}': {msg}")

    for key in data:
        if key not in {"default_venue", "default_symbol", "venues", "theme", "colormap", "warm_venues", "endpoints", "ui"}:
            raise bad(key, "unknown key; valid: default_venue, default_symbol, venues, theme, colormap, warm_venues, endpoints, ui")
    if "venues" in data:
        v = data["venues"]
        if not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
            raise bad("venues", f"must be a non-empty list of venue names from: {valid_venues}")
        for x in v:
            if x not in known:
                raise bad("venues", f"{shown(x)} is not a venue; valid: {valid_venues}")
        if len(v) > 9:
            raise bad("venues", "at most 9 venues (number keys 1-9)")
        twice = next((x for i, x in enumerate(v) if x in v[:i]), None)
        if twice is not None:
            # each venue has a number key: a second entry would be a key for nothing
            raise bad("venues", f"{twice} is listed twice")
        cfg.venues = list(v)
    if "default_venue" in data:
        v = data["default_venue"]
        if not isinstance(v, str) or v not in known:
            raise bad("default_venue", f"{shown(v)} is not a venue; valid: {valid_venues}")
        cfg.default_venue = v
    if "default_symbol" in data:
        v = data["default_symbol"]
        if not isinstance(v, str):
            raise bad("default_symbol", "must be a string such as \"BTC-PERP\"")
        sym = normalize(v)
        # the symbol used when the command line names none, on whichever venue it names: one
        # that some configured venue lists (the command line checks the pair it gets)
        symbols = {x for name in cfg.venues for x in get_adapter(name).symbols}
        if sym not in symbols:
            raise bad("default_symbol", f"{safe(v, 40)!r} is listed on none of the venues; valid: {', '.join(sorted(symbols))}")
        cfg.default_symbol = sym
    for key in ("theme", "colormap"):
        if key in data:
            v = data[key]
            if not isinstance(v, str) or not v:
                raise bad(key, "must be a non-empty string")
            names = _shipped(key)
            # a theme may be named without its "obview-" prefix ("dark")
            if names and v not in names and (key != "theme" or f"obview-{v}" not in names):
                listed = [n.removeprefix("obview-") for n in names] if key == "theme" else names
                raise bad(key, f"{shown(v)} is not a {key}; valid: {', '.join(listed)}")
            setattr(cfg, key, v)
    if "warm_venues" in data:
        v = data["warm_venues"]
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 9:
            raise bad("warm_venues", "must be an integer from 1 to 9")
        cfg.warm_venues = v
    if "endpoints" in data:
        v = data["endpoints"]
        if not isinstance(v, dict):
            raise bad("endpoints", "must be a table of venue = \"wss://...\"")
        for name, url in v.items():
            if name not in known:
                raise bad(f"endpoints.{name}", f"not a venue; valid: {valid_venues}")
            if not isinstance(url, str):
                raise bad(f"endpoints.{name}", "must be a ws:// or wss:// URL")
            problem = url_problem(url, ("ws", "wss"))
            if problem:
                raise bad(f"endpoints.{name}", f"{shown(url, 80)} {problem}")
        cfg.endpoints = dict(v)
    if "ui" in data:
        if not isinstance(data["ui"], dict):
            raise bad("ui", "must be a table")
        cfg.ui = _ui_settings(data["ui"], bad)
    if "venues" in data and cfg.default_venue not in cfg.venues:
        if "default_venue" in data:
            raise bad("default_venue", f"{shown(cfg.default_venue)} must also be listed in 'venues'")
        # a list without the built-in default: its first venue is the default (the file was
        # refused for a key it did not have)
        cfg.default_venue = cfg.venues[0]
    return cfg


def _tiers(v: Any) -> list[float] | None:
    """Three ascending positive finite numbers, or None."""
    if not isinstance(v, list) or len(v) != 3:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        return None
    out = [float(x) for x in v]
    if not all(0 < x < math.inf for x in out) or not out[0] < out[1] < out[2]:
        return None
    return out


_TIERS_WANTED = "three ascending positive quote amounts, e.g. [100000, 1000000, 5000000]"


def _ui_settings(ui: dict[str, Any], bad) -> dict[str, Any]:
    out: dict[str, Any] = {}
    want = _TIERS_WANTED
    for key, v in ui.items():
        if key != "large_trades":
            raise bad(f"ui.{key}", "unknown key; valid: large_trades")
        if isinstance(v, list):
            tiers = _tiers(v)
            if tiers is None:
                raise bad("ui.large_trades", f"must be {want}, or a table of them per coin")
            out[key] = {"default": tiers}
        elif isinstance(v, dict):
            per_coin: dict[str, list[float]] = {}
            for coin, t in v.items():
                if coin != "default" and not (coin.isascii() and coin.isalnum()):
                    raise bad(f"ui.large_trades.{coin}", "not a coin; a coin is letters and digits, e.g. BTC")
                tiers = _tiers(t)
                if tiers is None:
                    raise bad(f"ui.large_trades.{coin}", f"must be {want}")
                name = coin if coin == "default" else coin.upper()
                if name in per_coin:
                    raise bad(f"ui.large_trades.{coin}", f"{name} is given twice")
                per_coin[name] = tiers
            out[key] = per_coin
        else:
            raise bad("ui.large_trades", f"must be {want}, or a table of them per coin")
    return out
