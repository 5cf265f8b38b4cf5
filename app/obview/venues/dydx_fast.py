"""dYdX's typed decoders of the hot frames, for ``DydxAdapter.parse_fast``: ``channel_data`` and
``channel_batch_data`` messages of ``v4_orderbook`` (levels as ``[price, size]`` arrays) and of
``v4_trades``.

The envelope is the indexer's ``ChannelDataMessage`` / ``ChannelBatchDataMessage`` (``type``,
``connection_id``, ``message_id``, ``id``, ``channel``, ``version``, ``contents`` and, for
subaccount channels, ``subaccountNumber``: ``indexer/services/socks/src/helpers/message.ts``).
``parse`` treats both types alike (``contents`` an object or a list of them), and so do these.
``channel`` is a plain field, not a msgspec tag: a lone tagged struct takes a frame without its
tag.

Book frames: dYdX quotes its numbers, so that decoder runs with ``strict=False``, which reads a
numeric string as a float in C. It takes the JSON number syntax only (``"1e5"`` too, as
``float()`` does, to the same double) and refuses what ``float()`` also reads (``" 1"``, ``"1_0"``,
``"+1"``, ``"1."``): such a frame goes to ``parse``. ``"NaN"`` / ``"inf"`` pass the conversion and
are refused by ``Price`` / ``Size``, as are numbers of MAX_NUMBER and above (``parse``'s events
with those are refused by the pipeline). The one difference left is ``"-0"``, a size the decoder
reads as ``0.0`` and ``float()`` as ``-0.0``: equal numbers, both a delete.
Lax mode also reads ``"5"`` or ``5.0`` where an integer belongs and ``"true"`` or ``1`` where a
bool does, so no field here is a plain ``int`` or ``bool``: ``message_id`` is any of int, float,
string and the caller takes an int only (``parse`` refuses the rest).

Trade frames: a second decoder, strict (a trade's ``liquidation`` must be the JSON ``true``, not
``"true"``). Prices, sizes and ``createdAt`` stay strings, converted by ``parse``'s own
functions: trades are few, and the same code then reads them the same way.

Every field is declared and an unknown one sends the frame to ``parse``: the decoder would skip
its value unread where orjson refuses a frame with a number beyond a double or bad text in any
field. A level given as a ``{"price","size"}`` object (``parse`` reads both shapes) or with a
third element, a null ``bids``, an integer trade id: all ``parse``'s.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from obview.venues.base import PriceSize

#: an integer within int64 (the decoder's bounds stop there)
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
#: ``message_id``: only an int is ``parse``'s; a float or a string stays one (lax mode would
#: turn ``"5"`` or ``5.0`` into 5 for a plain ``int``), for ``parse_fast`` to leave to ``parse``
_MessageId = _Int64 | float | str | None
_Types = Literal["channel_data", "channel_batch_data"]


class _Update(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One orderbook update (``OrderbookMessageContents``): either side may be left out."""

    bids: list[PriceSize] = []
    asks: list[PriceSize] = []


class BookMsg(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    type: _Types
    channel: str
    contents: list[_Update] | _Update
    connection_id: str | None = None
    message_id: _MessageId = None
    id: str | None = None
    version: str | None = None
    subaccountNumber: _Int64 | None = None  # the indexer's (subaccount channels only)


class TradeRow(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One print (``TradeContent``): ``type`` since 2024, ``liquidation`` before it."""

    id: str
    side: Literal["BUY", "SELL"]
    size: str
    price: str
    createdAt: str
    type: str | None = None
    liquidation: bool | None = None
    createdAtHeight: str | None = None


class _Trades(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    trades: list[TradeRow]


class TradesMsg(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    type: _Types
    channel: str
    contents: list[_Trades] | _Trades
    connection_id: str | None = None
    message_id: _MessageId = None
    id: str | None = None
    version: str | None = None
    subaccountNumber: _Int64 | None = None


decode_book = msgspec.json.Decoder(BookMsg, strict=False).decode
decode_trades = msgspec.json.Decoder(TradesMsg).decode
