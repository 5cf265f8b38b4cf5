"""OKX pushes as typed structs, for the adapter's fast path (``OkxAdapter.parse_fast``).

A push is decoded in two steps: the envelope (``data`` left as raw JSON), then ``data`` with the
channel's type. Book levels stay strings: the checksum needs them exactly as sent, and ``float``
of them in Python reads them exactly as ``parse`` does. The book decoder is strict: it converts
nothing, so every integer it accepts is one ``parse`` reads the same way (within int64: orjson
reads longer ones as floats).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from obview.venues.base import MAX_NUMBER, FastMiss, Price, Size
from obview.venues.okx_book import RawText

_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Arg(msgspec.Struct):
    channel: str
    instId: str | None = None  # none in a push subscribed by instType (``liquidation-orders``)


class _Push(msgspec.Struct):
    arg: _Arg
    data: msgspec.Raw
    action: str = ""
    event: Any = None  # acks, errors and notices carry it: parse decides


class _Level(msgspec.Struct, array_like=True, gc=False):
    """``[price, size, ...]``: the two strings ``parse`` reads; the rest is skipped, as there."""

    px: str
    sz: str


class _Book(msgspec.Struct):
    bids: list[_Level]
    asks: list[_Level]
    ts: str
    checksum: _Int64 | None = None
    seqId: _Int64 | None = None
    prevSeqId: _Int64 | None = None


class _Trade(msgspec.Struct):
    px: Price
    sz: Size
    side: Literal["buy", "sell"]
    tradeId: str
    ts: str


class _LevelF(msgspec.Struct, array_like=True, gc=False):
    """``[price, size, ...]`` read as numbers in C (lax decoder: numeric strings to floats)."""

    px: Price
    sz: Size


class _BookF(msgspec.Struct):
    """An update whose levels are decoded on their own (``decode_levels``), as floats."""

    bids: msgspec.Raw
    asks: msgspec.Raw
    ts: str
    checksum: _Int64 | None = None
    seqId: _Int64 | None = None
    prevSeqId: _Int64 | None = None


class _LiquidationItem(msgspec.Struct):
    """An item of a ``liquidation-orders`` push: only whose it is (its ``details`` are left to
    ``parse``, which skips another instrument's item whatever it holds, as this does)."""

    instId: str = ""


decode_push = msgspec.json.Decoder(_Push).decode
decode_books = msgspec.json.Decoder(list[_Book]).decode
decode_books_f = msgspec.json.Decoder(list[_BookF]).decode
decode_levels = msgspec.json.Decoder(list[_LevelF], strict=False).decode
decode_trades = msgspec.json.Decoder(list[_Trade], strict=False).decode
decode_liquidation_items = msgspec.json.Decoder(list[_LiquidationItem]).decode
#: what the fast path leaves to ``parse``: a frame the decoders do not describe, a level or a
#: time ``float`` / ``int`` refuse, a time no float can hold
FAST_MISS = (*FastMiss, OverflowError)


def float_levels(rows: list[_Level]) -> tuple[list[tuple[float, float]], list[RawText]] | None:
    """(price, size) floats and ``"price:size"`` texts of ``rows``, read by ``float`` as ``parse``
    reads them; None if a price or size is not finite or not below ``MAX_NUMBER``, a price <= 0
    or a size < 0 (``parse``
    then decides)."""
    out: list[tuple[float, float]] = []
    raw: list[RawText] = []
    append = out.append
    append_raw = raw.append
    for row in rows:
        px = row.px
        sz = row.sz
        p = float(px)
        s = float(sz)
        if not (0.0 < p < MAX_NUMBER and 0.0 <= s < MAX_NUMBER):
            return None
        append((p, s))
        append_raw(f"{px}:{sz}")
    return out, raw
