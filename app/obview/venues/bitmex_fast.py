"""BitMEX's typed decoders of the hot frames: book ``insert`` / ``update`` / ``delete`` rows
and trade inserts, for ``BitmexAdapter.parse_fast``.

Numbers are JSON numbers at BitMEX and ``parse`` refuses numeric strings, so the decoders are
strict (a string where a number belongs goes to ``parse``). ``Price`` / ``Size`` also refuse
numbers of MAX_NUMBER and above: such a frame is ``parse``'s too. A null price or timestamp is
"not sent", as ``row.get()`` reads it.

Every field is declared and an unknown one sends the frame to ``parse``: the decoder skips an
unknown field's value without reading it as orjson does, so a frame orjson refuses (a number
beyond a double, bad UTF-8 in a field nobody reads) would pass the fast path, where ``parse``
calls it unreadable (for our book: a resync). A field BitMEX adds later makes its frames slow
until it is declared here, never different.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Literal

import msgspec

from obview.venues.base import Price, Size

TRADE_TABLE = "trade"

#: an integer within int64 (the decoder's bounds stop there): orjson reads integers up to
#: 2**64 - 1 as integers and longer ones as floats, which ``parse`` refuses as level ids
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
#: a number of a field no one reads: any JSON number orjson reads
_Number = _Int64 | float | None


class _BookRow(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    symbol: str
    id: _Int64
    side: Literal["Buy", "Sell"]
    price: Price | None = None  # on update / delete rows since 2023 only
    size: Size | None = None  # not on delete rows (``parse`` ignores it there)
    timestamp: str | None = None  # since 2022
    transactTime: str | None = None  # since 2024 (not read): undeclared, every row went slow


class _TradeRow(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    symbol: str
    side: Literal["Buy", "Sell"]
    price: Price
    size: Size
    timestamp: str
    trdMatchID: str = ""
    # not read
    tickDirection: str | None = None
    grossValue: _Number = None
    homeNotional: _Number = None
    foreignNotional: _Number = None
    trdType: str | None = None


@cache
def fast_decoder(book_table: str):  # type: ignore[no-untyped-def]
    """(book frame class, decode) for row frames of ``book_table`` and ``trade``, told apart by
    ``table`` (a frame naming it twice is refused, so orjson's last-wins reading never
    disagrees with it). Partials carry more fields (``keys``, ``filter`` ...): ``parse``'s."""
    book = msgspec.defstruct(
        "_BookFrame",
        [("action", str), ("data", list[_BookRow])],
        tag_field="table",
        tag=book_table,
        forbid_unknown_fields=True,
        gc=False,
    )
    trades = msgspec.defstruct(
        "_TradeFrame",
        [("action", str), ("data", list[_TradeRow])],
        tag_field="table",
        tag=TRADE_TABLE,
        forbid_unknown_fields=True,
        gc=False,
    )
    return book, msgspec.json.Decoder(book | trades).decode
