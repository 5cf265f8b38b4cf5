"""What every registered venue adapter shares: symbols, endpoints, streams."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from obview.venues.base import UnknownSymbol
from obview.venues.registry import UnknownVenue, get_adapter, venue_names

REAL = ["binance", "bybit", "okx", "deribit", "hyperliquid", "bitmex", "kraken", "dydx"]


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


@pytest.mark.parametrize("venue", REAL)
def test_a_bare_host_reaches_the_same_paths_as_the_venues_own_url(venue):
    cls = get_adapter(venue)
    own = [urlsplit(s.url) for s in cls("BTC-PERP").streams()]
    for endpoint in ("ws://127.0.0.1:9", "ws://127.0.0.1:9/"):
        local = [urlsplit(s.url) for s in cls("BTC-PERP", endpoint=endpoint).streams()]
        assert [(u.path, u.query) for u in local] == [(u.path, u.query) for u in own]
        assert all(u.netloc == "127.0.0.1:9" for u in local)
    # a path given is kept as it is (a mirror that serves the stream elsewhere)
    assert all(urlsplit(s.url).path.startswith("/mirror") for s in cls("BTC-PERP", endpoint="ws://h:1/mirror").streams())


def test_the_installed_venues_are_scanned_once_per_process(monkeypatch):
    # The simulator looks instruments up on every step it serves: a scan of the installed
    # distributions' entry points each time cost milliseconds per lookup.
    from obview.venues import registry

    calls = []
    real = registry.entry_points

    def counting(**kw):
        calls.append(kw)
        return real(**kw)

    monkeypatch.setattr(registry, "entry_points", counting)
    registry._targets.cache_clear()
    registry.native_map.cache_clear()
    try:
        for _ in range(5):
            assert registry.native_map("binance")["BTCUSDT"] == "BTC-PERP"
            assert get_adapter("okx").name == "okx"
            assert venue_names()[0] == "demo"
        assert len(calls) == 1
        with pytest.raises(TypeError):
            registry.native_map("binance")["X"] = "Y"  # shared, so read-only
    finally:
        registry._targets.cache_clear()
        registry.native_map.cache_clear()


@pytest.mark.parametrize(
    "typed, symbol",
    [
        ("btc", "BTC-PERP"),
        (" eth-perp ", "ETH-PERP"),
        ("btc perp", "BTC-PERP"),  # read "BTC PERP-PERP"
        ("ETHUSDT", "ETH-PERP"),  # read "ETHUSDT-PERP": a venue's own name was refused
        ("xbtusd", "BTC-PERP"),
        ("BTC-USDT-SWAP", "BTC-PERP"),
        ("BTC-PERPETUAL", "BTC-PERP"),
        ("pf_xbtusd", "BTC-PERP"),
        ("DOGE", "DOGE-PERP"),  # unknown stays itself, for the error to name
    ],
)
def test_symbols_as_a_trader_types_them(typed, symbol):
    from obview.symbols import normalize

    assert normalize(typed) == symbol


async def test_an_unknown_symbol_is_named_as_typed():
    from obview.feed.manager import FeedManager

    with pytest.raises(ValueError, match="unknown symbol 'ETHUSDX' for venue binance"):
        FeedManager().validate("binance", "ETHUSDX")


def test_a_venue_that_cannot_load_leaves_every_others_symbols_alone(monkeypatch):
    from types import MappingProxyType

    from obview import symbols
    from obview.venues import registry

    targets = dict(registry._targets())
    targets["broken"] = "no_such_plugin_module:Adapter"  # a third party's, failing to import
    monkeypatch.setattr(registry, "_targets", lambda: MappingProxyType(targets))
    symbols._natives.cache_clear()
    try:
        assert symbols.normalize("btc") == "BTC-PERP" and symbols.normalize("ethusdt") == "ETH-PERP"
    finally:
        symbols._natives.cache_clear()


def test_the_venues_that_send_their_whole_book():
    # each one's channel is the venue's full depth (fact sheets): BitMEX orderBookL2, Deribit
    # book.{instrument}.100ms, Kraken Futures book, dYdX v4_orderbook, the simulator asked for
    # more levels than it holds; the others send their best N levels
    whole = {name for name in venue_names() if get_adapter(name).whole_book}
    assert whole == {"bitmex", "deribit", "kraken", "dydx", "demo"}
