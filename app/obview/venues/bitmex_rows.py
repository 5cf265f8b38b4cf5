"""BitMEX's row readers (numbers from the network must be finite, prices > 0, sizes >= 0) and
its ``liquidation`` table (see the ``bitmex`` module's docstring for what its rows mean)."""

from __future__ import annotations

from datetime import datetime

from obview.model import LIQUIDATION_ORDER, Side, Trade
from obview.venues.base import MAX_NUMBER, Event, FrameError, number

LIQUIDATION_TABLE = "liquidation"
#: a row's ``side`` -> is it a bid
SIDES = {"Buy": True, "Sell": False}


def price_of(v: object) -> float:
    p = number(v, "price", strings=False)
    if not 0 < p < MAX_NUMBER:
        raise FrameError(f"price {p:g} out of range")
    return p


def size_of(v: object) -> float:
    # a book row's numbers are checked here: the pipeline's check sees a BitMEX delta's levels
    # only once the sync has made them, after the book took them (1e300 went in)
    s = number(v, "size", strings=False)
    if not 0 <= s < MAX_NUMBER:
        raise FrameError(f"size {s:g} out of range")
    return s


_last_iso: tuple[str, float] = ("", 0.0)


def iso_time(v: object) -> float:
    """``2021-07-22T22:36:11.685Z`` -> seconds since the epoch."""
    global _last_iso
    if not isinstance(v, str):
        raise FrameError("timestamp is not a string")
    if v == _last_iso[0]:
        return _last_iso[1]
    try:
        ts = datetime.fromisoformat(v).timestamp()
    except ValueError:
        raise FrameError(f"bad timestamp {v[:40]!r}") from None
    if not v.endswith(("Z", "+00:00")):
        raise FrameError(f"timestamp {v[:40]!r} is not UTC")
    _last_iso = (v, ts)
    return ts


def side_of(row: dict) -> bool:
    side = row.get("side")
    # a list or an object there (unhashable) was a TypeError: a plain bad frame, no resync
    is_bid = SIDES.get(side) if isinstance(side, str) else None
    if is_bid is None:
        raise FrameError(f"unknown side {str(row.get('side'))[:20]!r}")
    return is_bid


def level_id(row: dict) -> int:
    id_ = row.get("id")
    if id_.__class__ is not int:
        raise FrameError(f"level id is not an integer: {str(id_)[:30]}")
    return id_  # type: ignore[return-value]


def liquidation_trades(msg: dict, native: str, venue: str, symbol: str, ts_local: float) -> list[Event]:
    """A new liquidation order of ``native`` (``insert``): one LIQUIDATION_ORDER trade.
    The rows carry no time, so ``ts_exchange`` is None (the tape shows the arrival)."""
    action = msg.get("action")
    data = msg.get("data")
    if not isinstance(data, list):
        raise FrameError("liquidation frame without a data list")
    if action != "insert":
        if action in ("partial", "update", "delete"):
            # open before we subscribed / filling / done: not a new liquidation
            return []
        raise FrameError(f"unknown liquidation action {str(action)[:20]!r}")
    out: list[Event] = []
    for r in data:
        if not isinstance(r, dict):
            raise FrameError("liquidation row is not an object")
        if r.get("symbol") != native:
            continue  # all instruments' when subscribed without a symbol
        side = r.get("side")
        if not isinstance(side, str) or side not in SIDES:
            raise FrameError(f"unknown liquidation side {str(side)[:20]!r}")
        size = size_of(r.get("leavesQty"))  # contracts, as the trades' and the book's sizes
        if size == 0:
            continue  # nothing left of the order when it was published: nothing to show
        out.append(
            Trade(
                venue=venue,
                symbol=symbol,
                price=price_of(r.get("price")),  # the order's limit: the bankruptcy price
                size=size,
                side=Side.BUY if side == "Buy" else Side.SELL,  # the order's: Sell = a long
                trade_id=str(r.get("orderID", ""))[:64],
                ts_exchange=None,
                ts_local=ts_local,
                kind=LIQUIDATION_ORDER,
            )
        )
    return out


def liquidations_only(request: object) -> bool:
    """Whether a refused request asked for liquidation topics and nothing else (ours is sent
    in a frame of its own). ``args`` may also be a single topic as a string."""
    args = request.get("args") if isinstance(request, dict) else None
    if isinstance(args, str):
        args = [args]
    return (
        isinstance(args, list)
        and 0 < len(args) <= 16
        and all(isinstance(a, str) and a.partition(":")[0] == LIQUIDATION_TABLE for a in args)
    )
