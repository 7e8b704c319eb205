"""Commands to and replies from the inventory service."""

from __future__ import annotations

import uuid
from typing import Literal

from sagakit.contracts.base import REGISTRY, FailureReply, SuccessReply
from sagakit.contracts.routes import ROUTES
from sagakit.contracts.types import EXAMPLE_LINE, EXAMPLE_ORDER_ID, Cents, PricedLine, ProductId
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
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "items": [{"product_id": "widget", "quantity": 2}],
        "currency": "USD",
    }
    order_id: uuid.UUID
    items: list[RequestedItem]
    currency: str


@REGISTRY.register
class ReleaseInventory(Message):
    """Give back what the order reserved. Idempotent: nothing reserved is a success."""

    message_type = "ReleaseInventory"
    example = {"order_id": EXAMPLE_ORDER_ID}
    order_id: uuid.UUID


@REGISTRY.register
class InventoryReserved(SuccessReply):
    message_type = "InventoryReserved"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "lines": [EXAMPLE_LINE],
        "total": 3998,
        "currency": "USD",
    }
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
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "reason": "INSUFFICIENT_STOCK",
        "detail": "widget: 2 wanted, 1 available",
    }
    reason: ReservationFailure


@REGISTRY.register
class InventoryReleased(SuccessReply):
    message_type = "InventoryReleased"
    example = {"order_id": EXAMPLE_ORDER_ID, "released_lines": 1}
    released_lines: int  # 0 when nothing was held (already released, or never reserved)


ROUTES.command(
    ReserveInventory,
    participant="inventory",
    replies=(InventoryReserved, InventoryReservationFailed),
)
# Release never fails: nothing reserved (or released already) is a success.
ROUTES.command(ReleaseInventory, participant="inventory", replies=(InventoryReleased,))
