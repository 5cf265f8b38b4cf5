"""Venues side by side: one symbol's touch, spread and nearby depth on every open venue.

Computed from the ``Market``s the feed manager holds, without a terminal, so the compare
screen only draws. Depth is summed in quote notional within a band around each venue's own
mid, so venues whose sizes count coins, contracts or USD compare as they are. Only LIVE books
take part in the cross-venue figures (best bid and ask, the consensus mid): a book that is
syncing, stale or reconnecting may be wrong, and is listed with its state instead.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from obview.book import OrderBook
from obview.market import Market
from obview.model import FeedState, Instrument

#: the band around a venue's mid whose resting size the depth columns sum, in basis points
DEPTH_BAND_BPS = 10.0


@dataclass(slots=True)
class VenueRow:
    venue: str
    key: str  # the strip's number key ("1".."9"), or "" past the ninth
    state: FeedState | None  # None: no feed open for this venue
    live: bool = False
    bid: float | None = None
    ask: float | None = None
    spread_bps: float | None = None
    mid: float | None = None
    vs_mid_bps: float | None = None  # this mid against the LIVE venues' median mid
    bid_depth: float | None = None  # quote notional within the band below the mid
    ask_depth: float | None = None
    #: how far (bps) the book reaches below / above the mid when it ends inside the band (a
    #: venue that sends 20 or 200 levels): the depth then sums what the book holds, no more
    bid_reach_bps: float | None = None
    ask_reach_bps: float | None = None
    latency: float | None = None  # median receive latency, s
    msgs: float | None = None  # messages a second
    tick: float | None = None
    best_bid: bool = False  # the highest bid of the LIVE venues
    best_ask: bool = False  # the lowest ask of the LIVE venues


@dataclass(slots=True)
class Comparison:
    rows: list[VenueRow]
    band_bps: float
    live: int  # LIVE venues
    best_bid: float | None = None
    best_bid_venue: str = ""
    best_ask: float | None = None
    best_ask_venue: str = ""
    #: best ask less best bid over the consensus mid, in bps: negative when one venue's bid
    #: is above another's ask (the venues are crossed against each other)
    cross_spread_bps: float | None = None
    consensus_mid: float | None = None


def depth_near_mid(book: OrderBook, inst: Instrument, band_bps: float) -> tuple[float, float] | None:
    """Quote notional resting within ``band_bps`` of the book's mid: (bids, asks). A side
    whose book ends inside the band sums what it holds (see ``book_reach``)."""
    mid = book.mid()
    if mid is None or mid <= 0:
        return None
    lo, hi = mid * (1 - band_bps / 1e4), mid * (1 + band_bps / 1e4)
    bids, asks = book.bids, book.asks
    bk, ak = bids._keys, asks._keys
    to_quote = inst.to_quote
    bl, al = bids.levels, asks.levels
    b = sum(to_quote(p, bl[p]) for p in bk[bisect_left(bk, lo) :])
    a = sum(to_quote(p, al[p]) for p in ak[: bisect_right(ak, hi)])
    return b, a


def book_reach(book: OrderBook, band_bps: float) -> tuple[float | None, float | None]:
    """How far (bps of the mid) the book reaches on each side, where it ends inside
    ``band_bps``; None where it reaches the band's edge (or the side is empty)."""
    mid = book.mid()
    bk, ak = book.bids._keys, book.asks._keys
    if mid is None or mid <= 0 or not bk or not ak:
        return None, None
    lo, hi = mid * (1 - band_bps / 1e4), mid * (1 + band_bps / 1e4)
    b = (mid - bk[0]) / mid * 1e4 if bk[0] > lo else None
    a = (ak[-1] - mid) / mid * 1e4 if ak[-1] < hi else None
    return b, a


def compare(
    venues: Sequence[str],
    markets: Sequence[Market | None],
    now: float,
    band_bps: float = DEPTH_BAND_BPS,
) -> Comparison:
    """Rows in the order of ``venues`` (the strip's order), with the cross-venue figures."""
    rows: list[VenueRow] = []
    for i, (venue, m) in enumerate(zip(venues, markets, strict=True)):
        row = VenueRow(venue, str(i + 1) if i < 9 else "", None if m is None else m.state)
        rows.append(row)
        if m is None:
            continue
        row.tick = m.instrument.tick
        row.msgs = m.stats.messages.rate(now)
        row.latency = m.stats.latency.percentiles(now)[0]
        book = m.book
        bb, ba = book.best_bid(), book.best_ask()
        # a non-LIVE book is shown as its state, not as prices that may be wrong
        row.live = m.live and bb is not None and ba is not None and bb[0] < ba[0]
        if not row.live:
            continue
        assert bb is not None and ba is not None
        row.bid, row.ask = bb[0], ba[0]
        row.mid = (row.bid + row.ask) / 2
        row.spread_bps = (row.ask - row.bid) / row.mid * 1e4
        depth = depth_near_mid(book, m.instrument, band_bps)
        if depth is not None:
            row.bid_depth, row.ask_depth = depth
            if not m.whole_book:  # a whole book ending inside the band is all there is
                row.bid_reach_bps, row.ask_reach_bps = book_reach(book, band_bps)
    live = [r for r in rows if r.live]
    out = Comparison(rows, band_bps, len(live))
    if not live:
        return out
    consensus = median([r.mid for r in live if r.mid is not None])
    out.consensus_mid = consensus
    for r in live:
        assert r.mid is not None
        r.vs_mid_bps = (r.mid - consensus) / consensus * 1e4
    top_bid = max(live, key=lambda r: r.bid or 0.0)
    top_ask = min(live, key=lambda r: r.ask or float("inf"))
    out.best_bid, out.best_bid_venue = top_bid.bid, top_bid.venue
    out.best_ask, out.best_ask_venue = top_ask.ask, top_ask.venue
    for r in live:
        r.best_bid = r.bid == out.best_bid
        r.best_ask = r.ask == out.best_ask
    assert out.best_bid is not None and out.best_ask is not None
    out.cross_spread_bps = (out.best_ask - out.best_bid) / consensus * 1e4
    return out
