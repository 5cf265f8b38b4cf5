"""Dialect registry: name -> "module:Class", imported lazily.

A dialect whose module does not exist (yet) or fails to import is skipped with a log line, so
one broken dialect never takes the simulator server down.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging

from obview.sim.dialects.base import Dialect

log = logging.getLogger(__name__)

DIALECTS: dict[str, str] = {
    "demo": "obview.sim.dialects.demo:DemoDialect",
    "binance": "obview.sim.dialects.binance:BinanceDialect",
    "bybit": "obview.sim.dialects.bybit:BybitDialect",
    "okx": "obview.sim.dialects.okx:OkxDialect",
    "deribit": "obview.sim.dialects.deribit:DeribitDialect",
    "hyperliquid": "obview.sim.dialects.hyperliquid:HyperliquidDialect",
    "bitmex": "obview.sim.dialects.bitmex:BitmexDialect",
    "kraken": "obview.sim.dialects.kraken:KrakenDialect",
    "dydx": "obview.sim.dialects.dydx:DydxDialect",
}


def load_dialects(names: list[str] | None = None) -> dict[str, type[Dialect]]:
    """Import the available dialects (all, or the ``names`` given), skipping missing ones."""
    out: dict[str, type[Dialect]] = {}
    for name, target in DIALECTS.items():
        if names is not None and name not in names:
            continue
        mod_name, _, attr = target.partition(":")
        try:
            if importlib.util.find_spec(mod_name) is None:
                continue
            cls = getattr(importlib.import_module(mod_name), attr)
        except Exception:
            log.warning("simulator dialect %s could not be loaded", name, exc_info=True)
            continue
        out[name] = cls
    return out


def match_path(dialects: dict[str, type[Dialect]], path: str) -> type[Dialect] | None:
    """The dialect whose path prefix matches ``path`` (query string removed) best.

    A prefix matches at a segment boundary ("/ws" matches "/ws" and "/ws/btcusdt@depth", not
    "/wsx"); the longest matching prefix wins.
    """
    path = path.split("?", 1)[0] or "/"
    best: type[Dialect] | None = None
    best_len = -1
    for cls in dialects.values():
        for prefix in cls.paths:
            p = prefix.rstrip("/")
            hit = path in (prefix, p) or path.startswith(p + "/") or prefix == "/"
            if hit and len(p) > best_len:
                best, best_len = cls, len(p)
    return best
