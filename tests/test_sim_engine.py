"""SimMarket: determinism, exact deltas, a sane book, trades and walls."""

from __future__ import annotations

import math

import pytest

from obview.book import OrderBook
from obview.model import Side
from obview.sim.engine import SIM_SYMBOLS, SimMarket


def copy_book(book: OrderBook) -> OrderBook:
    out = OrderBook()
    out.apply_snapshot(book.bids.items(), book.asks.items())
    return out


def run(m: SimMarket, steps: int, dt: float = 0.05, t0: float = 0.0):
    for k in range(steps):
        yield m.step(t0 + (k + 1) * dt)


def as_tuple(u):
    return (
        u.seq,
        u.prev_seq,
        u.ts,
        u.bids,
        u.asks,
        [(t.price, t.size, t.side, t.trade_id) for t in u.trades],
    )


def test_symbols_table() -> None:
    assert set(SIM_SYMBOLS) == {"BTC-PERP", "ETH-PERP", "SOL-PERP"}
    for sym, (mid, tick, lot) in SIM_SYMBOLS.items():
        m = SimMarket(sym, seed=1, start_time=0.0)
        assert (m.tick, m.lot) == (tick, lot)
        assert abs(m.mid - mid) / mid < 0.001
        assert m.seq > 0


def test_unknown_symbol() -> None:
    with pytest.raises(ValueError, match="valid: BTC-PERP"):
        SimMarket("DOGE-PERP")


def test_deterministic_by_seed() -> None:
    a = SimMarket("BTC-PERP", seed=7, start_time=100.0)
    b = SimMarket("BTC-PERP", seed=7, start_time=100.0)
    c = SimMarket("BTC-PERP", seed=8, start_time=100.0)
    ua = [as_tuple(u) for u in run(a, 500, t0=100.0)]
    ub = [as_tuple(u) for u in run(b, 500, t0=100.0)]
    uc = [as_tuple(u) for u in run(c, 500, t0=100.0)]
    assert ua == ub
    assert dict(a.book.bids) == dict(b.book.bids) and dict(a.book.asks) == dict(b.book.asks)
    assert ua != uc


def test_deterministic_without_start_time() -> None:
    a = SimMarket("ETH-PERP", seed=3)
    b = SimMarket("ETH-PERP", seed=3)
    assert [as_tuple(u) for u in run(a, 200, t0=5000.0)] == [
        as_tuple(u) for u in run(b, 200, t0=5000.0)
    ]


@pytest.mark.parametrize("symbol", list(SIM_SYMBOLS))
def test_delta_replay_equals_book(symbol: str) -> None:
    m = SimMarket(symbol, seed=11, start_time=0.0)
    replica = copy_book(m.book)
    seq = m.seq
    for u in run(m, 3000):
        assert u.prev_seq == seq and u.seq == seq + 1 and m.seq == u.seq
        seq = u.seq
        # each price at most once per side, so order inside an update does not matter
        assert len({p for p, _ in u.bids}) == len(u.bids)
        assert len({p for p, _ in u.asks}) == len(u.asks)
        replica.apply_delta(u.bids, u.asks)
        assert replica.bids == m.book.bids
        assert replica.asks == m.book.asks


@pytest.mark.parametrize("symbol", list(SIM_SYMBOLS))
def test_book_is_sane(symbol: str) -> None:
    m = SimMarket(symbol, seed=5, start_time=0.0)
    tick, lot = m.tick, m.lot
    for k, u in enumerate(run(m, 4000)):
        assert not m.book.is_crossed(), f"crossed at step {k}"
        assert u.bids or u.asks or u.trades
        for p, s in u.bids + u.asks:
            assert abs(p / tick - round(p / tick)) < 1e-6
            assert s >= 0 and abs(s / lot - round(s / lot)) < 1e-6
        if k % 500 == 0:
            mid = m.book.mid()
            for side in (m.book.bids, m.book.asks):
                assert 200 <= len(side) <= 1000
                assert all(abs(p - mid) / mid < 0.05 for p in side)
                assert all(s > 0 for s in side.values())
            assert m.book.spread() >= tick * 0.999


def test_trades_have_sides_and_increasing_ids() -> None:
    m = SimMarket("BTC-PERP", seed=2, start_time=0.0)
    trades = [t for u in run(m, 2000) for t in u.trades]
    assert len(trades) > 100
    ids = [t.trade_id for t in trades]
    assert all(b > a for a, b in zip(ids, ids[1:], strict=False))
    assert {t.side for t in trades} == {Side.BUY, Side.SELL}
    for t in trades:
        assert t.size > 0
        assert abs(t.price / m.tick - round(t.price / m.tick)) < 1e-6


def test_market_orders_sweep_levels() -> None:
    """A sweep prints trades at several prices in one step, all on one side of the book."""
    m = SimMarket("BTC-PERP", seed=4, start_time=0.0)
    multi = 0
    for u in run(m, 3000):
        by_side: dict[Side, set[float]] = {}
        for t in u.trades:
            by_side.setdefault(t.side, set()).add(t.price)
        multi += any(len(ps) >= 3 for ps in by_side.values())
    assert multi > 10


def test_trades_come_from_the_book() -> None:
    """A buy trade takes an ask that rested before the step or was added in it; sells take bids."""
    m = SimMarket("SOL-PERP", seed=9, start_time=0.0)
    for _ in range(300):
        before = copy_book(m.book)
        u = m.step(m.ts + 0.05)
        changed_asks = dict(u.asks)
        changed_bids = dict(u.bids)
        for t in u.trades:
            if t.side is Side.BUY:
                assert t.price in before.asks or t.price in changed_asks
            else:
                assert t.price in before.bids or t.price in changed_bids


def test_walls_appear_and_get_pulled() -> None:
    m = SimMarket("BTC-PERP", seed=1, start_time=0.0)
    seen: dict[tuple[bool, int, float], int] = {}  # wall -> lots
    pulled = 0
    for k in range(4000):
        before = {(w.is_bid, w.index, w.placed): w for w in m.walls}
        m.step((k + 1) * 0.05)
        now = {(w.is_bid, w.index, w.placed): w for w in m.walls}
        for key, w in now.items():
            if key not in before:
                side = m.book.bids if w.is_bid else m.book.asks
                price = round(w.index * m.tick, m.price_decimals)
                assert side[price] >= w.lots * m.lot - 1e-9
                # a wall is big and away from the touch
                assert w.lots * m.lot > 20 * (side[price] - w.lots * m.lot) or w.lots > 1000
                assert abs(price - m.book.mid()) / m.book.mid() > 0.001
                # round price
                assert w.index % m._round == 0
                seen[key] = w.lots
        for key, w in before.items():
            if key not in now:
                pulled += 1
                assert w.until <= (k + 1) * 0.05
                side = m.book.bids if w.is_bid else m.book.asks
                price = round(w.index * m.tick, m.price_decimals)
                assert side.get(price, 0.0) < w.lots * m.lot
    assert len(seen) >= 5
    assert pulled >= 3
    assert m.walls_pulled == pulled


def test_bursts_raise_activity() -> None:
    m = SimMarket("ETH-PERP", seed=6, start_time=0.0)
    calm, busy = [], []
    for u in run(m, 8000):
        (busy if m.bursting else calm).append(len(u.bids) + len(u.asks) + len(u.trades))
    assert m.bursts >= 1 and busy and calm
    assert sum(busy) / len(busy) > 1.5 * sum(calm) / len(calm)


def test_mid_moves_with_clustered_volatility() -> None:
    m = SimMarket("BTC-PERP", seed=12, start_time=0.0)
    mids = []
    for k, _ in enumerate(run(m, 12000)):
        if k % 20 == 0:
            mids.append(m.book.mid())
    rets = [abs(math.log(b / a)) for a, b in zip(mids, mids[1:], strict=False)]
    assert sum(rets) > 0
    # absolute returns are autocorrelated (volatility clustering)
    mean = sum(rets) / len(rets)
    dev = [r - mean for r in rets]
    var = sum(d * d for d in dev)
    ac = sum(a * b for a, b in zip(dev, dev[1:], strict=False)) / var
    assert ac > 0.05


def test_irregular_and_backward_time() -> None:
    m = SimMarket("BTC-PERP", seed=1, start_time=10.0)
    for now in (10.0, 10.0, 9.0, 60.0, 60.001, 1e6):
        u = m.step(now)
        assert not m.book.is_crossed()
        assert u.ts == m.ts
    assert m.ts == 1e6
