"""Canonical symbols and their per-venue instruments."""

from __future__ import annotations

import functools

from obview.venues.registry import get_adapter, venue_names

CANONICAL = ("BTC-PERP", "ETH-PERP", "SOL-PERP")


def normalize(symbol: str) -> str:
    """Accept btc-perp, BTC-PERP, btc, BTC, "btc perp": the base coin alone means its
    perpetual; a venue's own name for one (BTCUSDT, XBTUSD, BTC-USDT-SWAP, BTC-PERPETUAL,
    PF_XBTUSD, ...) means the same perpetual."""
    s = "-".join(symbol.strip().upper().split())
    canonical = _natives().get(s)
    if canonical is not None:
        return canonical
    if s and "-" not in s:
        s = f"{s}-PERP"
    return s


@functools.cache
def _natives() -> dict[str, str]:
    """Every venue's instrument name (upper case) -> canonical symbol."""
    out: dict[str, str] = {}
    for name in venue_names():
        try:
            symbols = get_adapter(name).symbols
        except Exception:  # a venue that cannot load must not break every other's symbols
            continue
        for canonical, native in symbols.items():
            out.setdefault(native.upper(), canonical)
    return out


def venue_symbols() -> dict[str, dict[str, str]]:
    """venue -> {canonical: native} for every available venue."""
    return {name: dict(get_adapter(name).symbols) for name in venue_names()}
