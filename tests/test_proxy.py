"""A proxy named by the environment (https_proxy, all_proxy): one that cannot work is a FAILED
feed that says so, not a retry loop logging a traceback each time; a refused one is named."""

from __future__ import annotations

import importlib.util
import logging

import pytest

from obview.feed.reasons import proxy_for
from obview.feed.session import FeedSession
from obview.market import Market
from obview.model import FeedStatus
from test_session import FakeAdapter, opts, wait_for

URL = "wss://example.invalid"  # never reached: every case ends at the proxy


@pytest.fixture
def proxy_env(monkeypatch):
    for k in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(k, raising=False)
    return lambda value: monkeypatch.setenv("https_proxy", value)


async def _state_after(reach):
    adapter = FakeAdapter("BTC-PERP", endpoint=URL)
    market = Market(adapter.default_instrument())
    session = FeedSession(adapter, market, options=opts(backoff_base=0.05, backoff_max=0.05))
    task = session.start()
    try:
        await wait_for(lambda: reach(market.state))
        return market.state, session
    finally:
        await session.stop()
        task.cancel()


@pytest.mark.parametrize(
    ("proxy", "says"),
    [
        ("bogus://127.0.0.1:1", "proxy bogus://127.0.0.1:1 unusable: "),
        pytest.param(
            "socks5://127.0.0.1:1",
            "proxy socks5://127.0.0.1:1 unusable: connecting through a SOCKS proxy requires python-socks",
            marks=pytest.mark.skipif(
                importlib.util.find_spec("python_socks") is not None, reason="python-socks installed"
            ),
        ),
    ],
)
async def test_a_proxy_setting_that_cannot_work_fails_the_feed_once_with_why(proxy_env, caplog, proxy, says):
    proxy_env(proxy)
    with caplog.at_level(logging.ERROR, logger="obview.feed"):
        state, session = await _state_after(lambda s: s.status is FeedStatus.FAILED)
    assert state.reason.startswith(says), state.reason
    assert session.connect_attempts == 1
    assert not [r for r in caplog.records if r.exc_info]  # no traceback in the log


async def test_a_refused_proxy_is_named_in_the_reason(proxy_env):
    proxy_env("http://user:secret@127.0.0.1:1")
    state, _ = await _state_after(lambda s: s.status is FeedStatus.RECONNECTING and "refused" in s.reason)
    assert "(through the proxy http://127.0.0.1:1)" in state.reason and "secret" not in state.reason


def test_local_addresses_are_never_proxied(proxy_env):
    proxy_env("http://127.0.0.1:3128")
    assert proxy_for("ws://127.0.0.1:9000/ws") is None
    assert proxy_for("wss://fstream.binance.com/ws") == "http://127.0.0.1:3128"
