"""What every registered venue adapter shares: symbols, endpoints, streams."""

from __future__ import annotations

import pytest

from obview.venues.base import UnknownSymbol
from obview.venues.registry import UnknownVenue, get_adapter, venue_names

REAL = ["binance", "bybit", "okx", "deribit", "hyperliquid"]


def test_registry_lists_builtin_venues_and_rejects_unknown():
    names = venue_names()
    assert names[0] == "demo" and all(v in names for v in REAL)
    with pytest.raises(UnknownVenue, match="valid: demo, binance"):
        get_adapter("mtgox")


@pytest.mark.parametrize("venue", REAL)
def test_real_endpoints_are_the_defaults_with_tls(venue):
    cls = get_adapter(venue)
    for sym in ("BTC-PERP", "ETH-PERP", "SOL-PERP"):
        a = cls(sym)
        assert a.native == cls.symbols[sym]
        for spec in a.streams():
            assert spec.url.startswith("wss://"), spec.url
            assert spec.stale_after > 0
        assert a.rest_endpoint.startswith("https://")
    with pytest.raises(UnknownSymbol, match="valid: BTC-PERP"):
        cls("DOGE-PERP")


@pytest.mark.parametrize("venue", REAL)
def test_rest_base_follows_an_overridden_endpoint_unless_given(venue):
    cls = get_adapter(venue)
    a = cls("BTC-PERP", endpoint="ws://127.0.0.1:9/some/path")
    assert a.rest_endpoint == "http://127.0.0.1:9"  # the simulator serves REST beside WS
    assert all(s.url.startswith("ws://127.0.0.1:9") for s in a.streams())
    b = cls("BTC-PERP", endpoint="ws://127.0.0.1:9/x", rest_endpoint="http://127.0.0.1:8")
    assert b.rest_endpoint == "http://127.0.0.1:8"
    # the venue's own WebSocket host named explicitly keeps the venue's REST host
    c = cls("BTC-PERP", endpoint=cls.default_endpoint)
    assert c.rest_endpoint == cls("BTC-PERP").rest_endpoint
