"""Commands to and replies from the inventory service."""

from __future__ import annotations

import uuid
from typing import Literal

from sagakit.contracts.base import REGISTRY, FailureReply, SuccessReply
from sagakit.contracts.types import Cents, PricedLine, ProductId
from sagakit.messaging.registry import Message


class RequestedItem(Message):
    """A line as requested. The quantity is checked by inventory (``INVALID_QUANTITY``), not here,
    so a bad quantity is a business failure reply rather than a poison message."""

    product_id: ProductId
    quantity: int


@REGISTRY.register
class ReserveInventory(Message):
    """Reserve every line of the order, or none of them."""

    message_type = "ReserveInventory"
    order_id: uuid.UUID
    items: list[RequestedItem]
    currency: str


@REGISTRY.register
class ReleaseInventory(Message):
    """Give back what the order reserved. Idempotent: nothing reserved is a success."""

    message_type = "ReleaseInventory"
    order_id: uuid.UUID


@REGISTRY.register
class InventoryReserved(SuccessReply):
    message_type = "InventoryReserved"
    lines: list[PricedLine]
    total: Cents
    currency: str


ReservationFailure = Literal[
    "UNKNOWN_PRODUCT",
    "INVALID_QUANTITY",
    "INSUFFICIENT_STOCK",
    "CURRENCY_MISMATCH",
    # A reserve for an order already released (a command re-sent after its compensation).
    "ORDER_RELEASED",
]


@REGISTRY.register
class InventoryReservationFailed(FailureReply):
    message_type = "InventoryReservationFailed"
    reason: ReservationFailure


@REGISTRY.register
class InventoryReleased(SuccessReply):
    message_type = "InventoryReleased"
    released_lines: int  # 0 when nothing was held (already released, or never reserved)
