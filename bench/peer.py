"""Peer, side by side: ccxt's Python ``watch_order_book`` (ccxt.pro binanceusdm) against obview's
Binance adapter (FeedSession -> FeedPipeline -> Market), on the identical stream.

Both clients run in this process, one after the other, against the same server process
(bench/replay_server.py speaking the Binance USD-M diff-depth dialect: ``U``/``u``/``pu``
chained events plus the REST snapshot ``/fapi/v1/depth``), offered as fast as each client reads
(TCP flow control paces the server). Each client maintains the book with the venue's procedure
(buffer, REST snapshot, bridge, ``pu`` chain) until it has applied the last event the server
sent; we time that and this process's CPU time.

ccxt runs offline: its WebSocket base URL (``urls['api']['ws']['linear']``) and REST base
(``urls['api']['fapiPublic']``) point at the local server, and its market table is built by its
own ``parse_market`` from an exchangeInfo entry instead of a network ``load_markets``. The only
difference on the wire: ccxt subscribes on ``/public/ws`` (raw events), obview connects to
``/public/stream?streams=`` (each event wrapped as ``{"stream":..,"data":..}``, 37 bytes more).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request

from bench.common import Figure
from bench.ingest import start_server, stop_server
from obview.feed.session import FeedSession, SessionOptions
from obview.market import Market
from obview.venues.binance import BinanceAdapter

EXCHANGE_INFO = {
    "symbol": "BTCUSDT",
    "pair": "BTCUSDT",
    "contractType": "PERPETUAL",
    "deliveryDate": 4133404800000,
    "onboardDate": 1569398400000,
    "status": "TRADING",
    "baseAsset": "BTC",
    "quoteAsset": "USDT",
    "marginAsset": "USDT",
    "pricePrecision": 1,
    "quantityPrecision": 3,
    "baseAssetPrecision": 8,
    "quotePrecision": 8,
    "underlyingType": "COIN",
    "underlyingSubType": [],
    "triggerProtect": "0.0500",
    "liquidationFee": "0.012500",
    "marketTakeBound": "0.05",
    "filters": [
        {"filterType": "PRICE_FILTER", "minPrice": "0.1", "maxPrice": "4529764", "tickSize": "0.1"},
        {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
        {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120", "stepSize": "0.001"},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MIN_NOTIONAL", "notional": "100"},
        {
            "filterType": "PERCENT_PRICE",
            "multiplierUp": "1.0500",
            "multiplierDown": "0.9500",
            "multiplierDecimal": "4",
        },
    ],
    "orderTypes": ["LIMIT", "MARKET"],
    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
}


def _ctl(port: int, count: int) -> int:
    """Set the next streams' length (offered as fast as read); returns their first sequence."""
    import orjson

    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/ctl?rate=0&count={count}", timeout=5
    ) as r:
        return int(orjson.loads(r.read())["start_seq"])


async def run_ccxt(port: int, end: int, timeout: float) -> tuple[float, float]:
    """(wall s, CPU s) from connecting until ccxt's book has applied event ``end``."""
    import ccxt.pro as ccxtpro

    ex = ccxtpro.binanceusdm({"enableRateLimit": False})
    ex.urls["api"]["ws"]["linear"] = f"ws://127.0.0.1:{port}/ws"
    ex.urls["api"]["fapiPublic"] = f"http://127.0.0.1:{port}/fapi/v1"
    ex.set_markets([ex.parse_market(EXCHANGE_INFO)])
    symbol = "BTC/USDT:USDT"
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        async with asyncio.timeout(timeout):
            ob = await ex.watch_order_book(symbol)
            while ob["nonce"] < end:
                ob = await ex.watch_order_book(symbol)
            t1, c1 = time.perf_counter(), time.process_time()
        if (
            ob["nonce"] != end
            or not ob["bids"]
            or not ob["asks"]
            or ob["bids"][0][0] >= ob["asks"][0][0]
        ):
            raise RuntimeError(f"ccxt book not whole at the end: nonce {ob['nonce']} (want {end})")
    finally:
        await ex.close()
    return (t1 - t0), (c1 - c0)


class _EndMarket(Market):
    """Notes when the book has applied event ``end`` (and is whole)."""

    def __init__(self, *a, end: int, **kw) -> None:
        super().__init__(*a, **kw)
        self.end = end
        self.sync = None
        self.t1 = self.c1 = 0.0
        self.done: asyncio.Future | None = None

    def on_book_changed(self, ts_local: float, ts_exchange: float | None = None) -> None:
        super().on_book_changed(ts_local, ts_exchange)
        sync = self.sync
        if sync is None or not sync.synced or sync.last_seq is None:
            return
        if sync.last_seq >= self.end and self.done is not None and not self.done.done():
            self.t1, self.c1 = time.perf_counter(), time.process_time()
            self.done.set_result(sync.last_seq)


async def run_obview(port: int, end: int, timeout: float) -> tuple[float, float]:
    """(wall s, CPU s) from connecting until obview's book has applied event ``end``."""
    base = f"127.0.0.1:{port}"
    t0, c0 = time.perf_counter(), time.process_time()
    adapter = BinanceAdapter("BTC-PERP", endpoint=f"ws://{base}", rest_endpoint=f"http://{base}")
    market = _EndMarket(adapter.default_instrument(), end=end)
    market.done = asyncio.get_running_loop().create_future()
    session = FeedSession(adapter, market, options=SessionOptions(connect_timeout=5.0))
    market.sync = session.pipeline.sync
    task = session.start()
    try:
        async with asyncio.timeout(timeout):
            last = await market.done
    finally:
        await session.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    st = market.stats
    if last != end or st.gaps or st.bad_frames or market.resyncs or market.book.is_crossed():
        raise RuntimeError(
            f"obview book not whole: last {last} (want {end}), gaps {st.gaps}, resyncs {market.resyncs}"
        )
    return market.t1 - t0, market.c1 - c0


def run(quick: bool) -> list[Figure]:
    # seven shorter pairs rather than three long ones: one pair's ratio ranges 2.3-4.5x on this
    # shared machine (ccxt's CPU per frame varies more than obview's), and a median of five
    # still moved by a third between runs minutes apart
    runs = 2 if quick else 7
    count = 15000 if quick else 30000
    try:
        import ccxt.pro  # noqa: F401
    except ImportError as e:
        return [
            Figure(
                "peer: ccxt watch_order_book",
                "frames/s",
                [],
                note=f"skipped: ccxt not installed ({e})",
            )
        ]
    proc, port = start_server(1500 if quick else 4000)
    ob_fps, ob_cpu, cx_fps, cx_cpu, ratios = [], [], [], [], []
    try:
        for _ in range(runs):  # alternate, so drift in machine speed hits both alike
            end = _ctl(port, count) + count
            w, c = asyncio.run(run_ccxt(port, end, timeout=120))
            cx_fps.append(count / w)
            cx_cpu.append(c / count * 1e5)
            end = _ctl(port, count) + count
            w, c = asyncio.run(run_obview(port, end, timeout=60))
            ob_fps.append(count / w)
            ob_cpu.append(c / count * 1e5)
            ratios.append(cx_cpu[-1] / ob_cpu[-1])
    finally:
        stop_server(proc)
    fmed = sorted(o / c for o, c in zip(ob_fps, cx_fps, strict=True))[len(ratios) // 2]
    return [
        Figure(
            "peer: obview Binance adapter (FeedSession), same stream",
            "frames/s",
            ob_fps,
            note=f"{fmed:.1f}x ccxt frames/s",
        ),
        Figure("peer: ccxt.pro binanceusdm watch_order_book, same stream", "frames/s", cx_fps),
        Figure("peer: obview CPU per 100k frames", "CPU s", ob_cpu),
        Figure("peer: ccxt CPU per 100k frames", "CPU s", cx_cpu),
        Figure(
            "peer: obview / ccxt throughput per CPU second",
            "x",
            ratios,
            target=">= 3x",
            note=f"{count} events per run, timed from connect to the last event applied; both books whole (same last update id, not crossed)",
        ),
    ]
