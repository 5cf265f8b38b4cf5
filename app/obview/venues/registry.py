"""Venue registry: built-in adapters by name, third-party ones by entry point ``obview.venues``.

Modules are imported lazily so that one broken or slow venue module never stops the others.
The list of venues is read once per process: scanning the installed distributions' entry points
costs milliseconds, and the simulator looks venue instruments up on every step it serves.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from importlib.metadata import entry_points
from types import MappingProxyType

from obview.venues.base import VenueAdapter

BUILTIN: dict[str, str] = {
    "demo": "obview.venues.demo:DemoAdapter",
    "binance": "obview.venues.binance:BinanceAdapter",
    "bybit": "obview.venues.bybit:BybitAdapter",
    "okx": "obview.venues.okx:OkxAdapter",
    "deribit": "obview.venues.deribit:DeribitAdapter",
    "hyperliquid": "obview.venues.hyperliquid:HyperliquidAdapter",
    "bitmex": "obview.venues.bitmex:BitmexAdapter",
    "kraken": "obview.venues.kraken:KrakenAdapter",
    "dydx": "obview.venues.dydx:DydxAdapter",
}


class UnknownVenue(ValueError):
    pass


@functools.cache
def _targets() -> MappingProxyType[str, str]:
    targets: dict[str, str] = {}
    for name, target in BUILTIN.items():
        mod = target.split(":")[0]
        if importlib.util.find_spec(mod) is not None:
            targets[name] = target
    try:
        for ep in entry_points(group="obview.venues"):
            targets.setdefault(ep.name, ep.value)
    except Exception:  # a broken third-party distribution must not break the built-ins
        pass
    return MappingProxyType(targets)


def venue_names() -> list[str]:
    """Available venues, built-ins first in their fixed order."""
    return list(_targets())


def get_adapter(name: str) -> type[VenueAdapter]:
    targets = _targets()
    if name not in targets:
        raise UnknownVenue(f"unknown venue {name!r}; valid: {', '.join(targets)}")
    mod_name, _, attr = targets[name].partition(":")
    return getattr(importlib.import_module(mod_name), attr)


@functools.cache
def native_map(name: str) -> MappingProxyType[str, str]:
    """Venue-native instrument -> canonical symbol (read-only, built once per venue)."""
    return MappingProxyType({v: k for k, v in get_adapter(name).symbols.items()})
