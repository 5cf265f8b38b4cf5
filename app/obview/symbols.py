"""Canonical symbols and their per-venue instruments."""

from __future__ import annotations

from obview.venues.registry import get_adapter, venue_names

CANONICAL = ("BTC-PERP", "ETH-PERP", "SOL-PERP")


def normalize(symbol: str) -> str:
    """Accept btc-perp, BTC-PERP, btc, BTC: the base coin alone means its perpetual."""
    s = symbol.strip().upper()
    if s and "-" not in s:
        s = f"{s}-PERP"
    return s


def venue_symbols() -> dict[str, dict[str, str]]:
    """venue -> {canonical: native} for every available venue."""
    return {name: dict(get_adapter(name).symbols) for name in venue_names()}
