"""Render the app on the demo simulator (fixed seed, fake clock) to screenshots/*.svg (+ PNG).

    python scripts/screenshots.py            # SVG, and PNG when cairosvg is installed

The simulator (obview.sim.engine.SimMarket) is stepped on a fake clock and its updates go
through the same Market writers a live feed uses, for long enough to fill the heatmap; a short
STALE stretch shows how the heatmap marks time without a trusted book.
"""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

from obview.market import Market
from obview.model import FeedStatus, Instrument, Trade
from obview.sim.engine import SIM_SYMBOLS, SimMarket
from obview.ui.app import ObviewApp
from obview.ui.synthetic import T0, StaticManager
from obview.venues.registry import venue_names

OUT = Path(__file__).resolve().parent.parent / "screenshots"


def sim_market(
    venue: str, symbol: str, seed: int, seconds: float, dt: float = 0.05, gap=(0.78, 0.84)
):
    _, tick, lot = SIM_SYMBOLS[symbol]
    inst = Instrument(
        venue, symbol, symbol, tick=tick, lot=lot, base=symbol.split("-")[0], quote="USD"
    )
    market = Market(inst)
    sim = SimMarket(symbol, seed=seed, start_time=T0)
    market.book.apply_snapshot(sim.book.bids.items(), sim.book.asks.items())
    market.set_state(FeedStatus.LIVE)
    steps = int(seconds / dt)
    now = T0
    for i in range(steps):
        now = T0 + (i + 1) * dt
        up = sim.step(now)
        frac = i / steps
        stale = gap is not None and gap[0] <= frac < gap[1]
        if stale:
            market.set_state(FeedStatus.STALE, "no data for 4.2 s")
        elif market.state.status is not FeedStatus.LIVE:
            # resync: a fresh snapshot, then LIVE again
            market.book.apply_snapshot(sim.book.bids.items(), sim.book.asks.items())
            market.resyncs += 1
            market.set_state(FeedStatus.LIVE)
        if not stale:
            market.book.apply_delta(up.bids, up.asks)
            market.on_frame(now)
            market.on_exchange_time(up.ts - 0.004, now)
            market.on_book_changed(now)
            for t in up.trades:
                market.add_trade(
                    Trade(venue, symbol, t.price, t.size, t.side, str(t.trade_id), t.ts, now, t.kind)
                )
        market.tick(now)
    return market, now


def render(width: int, height: int, name: str, keys: list[str], seconds: float, png: bool) -> Path:
    demo, now = sim_market("demo", "BTC-PERP", seed=1, seconds=seconds)
    other, _ = sim_market("binance", "BTC-PERP", seed=2, seconds=5, gap=None)
    markets = {("demo", "BTC-PERP"): demo, ("binance", "BTC-PERP"): other}
    venues = ["demo", "binance", "okx", "bybit"]
    if "x" in keys:
        # the compare view: more venues, on the same simulated market a few seconds apart, one
        # of them resyncing
        venues = venue_names()
        for i, v in enumerate(venues[1:]):
            m, _ = sim_market(v, "BTC-PERP", seed=1, seconds=seconds - 0.3 * (i + 1), gap=None)
            markets[(v, "BTC-PERP")] = m
        markets[("okx", "BTC-PERP")].set_state(FeedStatus.SYNCING, "seq gap 1812\u21921815")
        markets[("kraken", "BTC-PERP")].set_state(
            FeedStatus.RECONNECTING, "connect failed: timed out after 10 s"
        )
    mgr = StaticManager(markets, venues)
    app = ObviewApp(mgr, "demo", "BTC-PERP", clock=lambda: now)

    async def run() -> str:
        async with app.run_test(size=(width, height)) as pilot:
            await pilot.pause()
            await pilot.pause(0.2)
            for k in keys:
                await pilot.press(k)
                await pilot.pause(0.05)
            await pilot.pause(0.1)
            return app.export_screenshot(title=f"obview {width}x{height}")

    svg = asyncio.run(run())
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.svg"
    path.write_text(svg, encoding="utf-8")
    if png:
        try:
            import cairosvg
        except ImportError:
            print("cairosvg not installed: SVG only")
        else:
            # the SVG asks for a web font; rasterise with a local monospace that has block glyphs
            local = re.sub(r'"?Fira Code"?', '"DejaVu Sans Mono"', svg)
            cairosvg.svg2png(bytestring=local.encode(), write_to=str(path.with_suffix(".png")))
    return path


SHOTS = [
    (160, 48, "main", []),
    (240, 70, "wide", []),
    (80, 24, "small", []),
    (160, 48, "light-quote", ["t", "u"]),
    (160, 48, "colorblind-grouped", ["t", "t", "plus", "plus", "plus"]),
    (160, 48, "help", ["question_mark"]),
    (160, 48, "time-zoom", ["z", "z", "z"], 200.0),  # 2.5 s a column: the last 2.5 minutes
    (160, 48, "compare", ["x"]),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=75.0, help="simulated seconds before the shot")
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--only", help="render only this shot name")
    args = ap.parse_args()
    for w, h, name, keys, *seconds in SHOTS:
        if args.only and name != args.only:
            continue
        print(render(w, h, name, keys, seconds[0] if seconds else args.seconds, not args.no_png))


if __name__ == "__main__":
    main()
