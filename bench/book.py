"""Book engine: level updates/s on a deterministic realistic stream, beside the plain-dict
floor and cryptofeed's C order book (package `order-book`) on the identical stream, plus the
cost of the per-frame view the ladder needs (top 50 a side, grouped, cumulative)."""

from __future__ import annotations

import random
import statistics

from bench.common import Figure, per_call_ms, rates_interleaved
from obview.book import OrderBook

TICK = 0.1
MID = 50_000.0


def make_stream(messages: int, levels_per_msg: int = 10, seed: int = 7, depth: int = 1000):
    """~1000 levels a side, tick 0.1, 70% of updates within 20 ticks of the touch, 20% deletes.
    Returns (snapshot_bids, snapshot_asks, [(bids, asks), ...])."""
    rng = random.Random(seed)
    bids = [(round(MID - TICK * (i + 1), 1), round(rng.uniform(0.01, 5), 3)) for i in range(depth)]
    asks = [(round(MID + TICK * i, 1), round(rng.uniform(0.01, 5), 3)) for i in range(depth)]
    stream = []
    for _ in range(messages):
        mb, ma = [], []
        for _ in range(levels_per_msg):
            near = rng.random() < 0.7
            dist = rng.randint(0, 20) if near else rng.randint(21, depth - 1)
            size = 0.0 if rng.random() < 0.2 else round(rng.paretovariate(1.5) * 0.1, 3)
            if rng.random() < 0.5:
                mb.append((round(MID - TICK * (dist + 1), 1), size))
            else:
                ma.append((round(MID + TICK * dist, 1), size))
        stream.append((mb, ma))
    return bids, asks, stream


def run(quick: bool) -> list[Figure]:
    messages = 20_000 if quick else 100_000
    runs = 3 if quick else 5
    sb, sa, stream = make_stream(messages)
    updates = sum(len(b) + len(a) for b, a in stream)

    def obview_book() -> int:
        book = OrderBook()
        book.apply_snapshot(sb, sa)
        apply, bb, ba = book.apply_delta, book.best_bid, book.best_ask
        for b, a in stream:
            apply(b, a)
            bb()
            ba()
        return updates

    def dict_floor() -> int:
        bids, asks = dict(sb), dict(sa)
        for b, a in stream:
            for p, s in b:
                if s:
                    bids[p] = s
                else:
                    bids.pop(p, None)
            for p, s in a:
                if s:
                    asks[p] = s
                else:
                    asks.pop(p, None)
        return updates

    def sorteddict_book() -> int:
        # the same book on sortedcontainers.SortedDict, the structure obview used before
        # BookSide (dict + bisect-kept list); kept here as the comparison that chose it
        from sortedcontainers import SortedDict

        bids, asks = SortedDict(sb), SortedDict(sa)
        for b, a in stream:
            for side, levels in ((bids, b), (asks, a)):
                for p, s in levels:
                    if s > 0:
                        side[p] = s
                    else:
                        side.pop(p, None)
            bids.peekitem(-1)
            asks.peekitem(0)
        return updates

    # the same mix on 20k levels a side: the list's O(n) insert must not bite on deep books
    big_b, big_a, big_stream = make_stream(messages // 2, depth=20_000)
    big_updates = sum(len(b) + len(a) for b, a in big_stream)

    def obview_big() -> int:
        book = OrderBook()
        book.apply_snapshot(big_b, big_a)
        for b, a in big_stream:
            book.apply_delta(b, a)
            book.best_bid()
            book.best_ask()
        return big_updates

    fns = {"obview": obview_book, "dict": dict_floor, "big": obview_big}
    try:
        import sortedcontainers  # noqa: F401

        fns["sorteddict"] = sorteddict_book
    except ImportError:
        pass
    try:
        from order_book import OrderBook as CBook

        # with the best read per message the C book re-sorts every time (~20x slower than the
        # others): it gets the first tenth of the stream, so the suite stays short
        short = stream[: max(1, len(stream) // 10)]
        short_updates = sum(len(b) + len(a) for b, a in short)

        def c_book(read_best: bool) -> int:
            msgs = short if read_best else stream
            ob = CBook()
            for p, s in sb:
                ob.bids[p] = s
            for p, s in sa:
                ob.asks[p] = s
            obb, oba = ob.bids, ob.asks
            for b, a in msgs:
                for p, s in b:
                    if s:
                        obb[p] = s
                    else:
                        try:
                            del obb[p]
                        except KeyError:
                            pass
                for p, s in a:
                    if s:
                        oba[p] = s
                    else:
                        try:
                            del oba[p]
                        except KeyError:
                            pass
                if read_best:
                    obb.index(0)
                    oba.index(0)
            return short_updates if read_best else updates

        fns["c_best"] = lambda: c_book(True)
        fns["c_raw"] = lambda: c_book(False)
    except ImportError:
        short = []
    # round-robin runs: the ratios in the notes compare runs taken side by side
    got = rates_interleaved(fns, runs)
    ob = got["obview"]
    med = statistics.median
    figs = [
        Figure("book: obview OrderBook (dict + sorted list), best bid/ask read per message", "level updates/s", ob, target=">= 1.0M"),
        Figure("book: plain dict floor (no ordering, no best read)", "level updates/s", got["dict"],
               note=f"obview/dict = {med(ob) / med(got['dict']):.2f}x"),
        Figure("book: obview OrderBook on a 20k-level-a-side book", "level updates/s", got["big"]),
    ]
    if "sorteddict" in got:
        sd = got["sorteddict"]
        figs.append(Figure("book: sortedcontainers SortedDict, best bid/ask read per message", "level updates/s", sd,
                           note=f"obview/SortedDict = {med(ob) / med(sd):.2f}x"))
    else:
        figs.append(Figure("book: sortedcontainers SortedDict", "level updates/s", [], note="sortedcontainers not installed (pip install '.[bench]')"))
    if "c_best" in got:
        c_best = got["c_best"]
        figs.append(Figure("book: cryptofeed order-book (C), best bid/ask read per message", "level updates/s", c_best,
                           note=f"obview/C = {med(ob) / med(c_best):.1f}x; C re-sorts on index(); first {len(short):,} messages"))
        figs.append(Figure("book: cryptofeed order-book (C), updates only (no best read)", "level updates/s", got["c_raw"]))
    else:
        figs.append(Figure("book: cryptofeed order-book (C)", "level updates/s", [], note="package order-book not installed (pip install '.[bench]')"))
    msg_fig = Figure("book: obview messages/s (10 levels each)", "messages/s", [v / 10 for v in figs[0].values])
    figs.insert(1, msg_fig)

    book = OrderBook()
    book.apply_snapshot(sb, sa)
    for b, a in stream[:5000]:
        book.apply_delta(b, a)

    def view() -> None:
        book.top(50)
        book.grouped(1.0, 50)

    figs.append(Figure("book: per-frame view (top 50 a side + grouped x10 tick, cumulative)", "ms", per_call_ms(view, 200, runs), target="<= 0.5 ms"))
    return figs
