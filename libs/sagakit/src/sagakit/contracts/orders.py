"""The order intake (topic ``orders``) and the events for downstream systems (``order.events``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from sagakit.contracts.base import REGISTRY
from sagakit.contracts.routes import ROUTES
from sagakit.contracts.text import Email, identifier
from sagakit.contracts.types import (
    EXAMPLE_ORDER_ID,
    EXAMPLE_SAGA_ID,
    MAX_ITEMS,
    Cents,
    Currency,
    OrderItem,
)
from sagakit.messaging.registry import Message


@REGISTRY.register
class PlaceOrder(Message):
    """An order from upstream, the same shape as ``POST /orders``."""

    message_type = "PlaceOrder"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "customer_id": "c1",
        "email": "me@example.com",
        "items": [{"product_id": "widget", "quantity": 2}],
        "payment_method": "pm_card_visa",
        "currency": "USD",
    }
    order_id: uuid.UUID
    customer_id: identifier(64)  # type: ignore[valid-type]
    email: Email
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_ITEMS)]
    payment_method: identifier(128)  # type: ignore[valid-type]
    currency: Currency


class _OrderEvent(Message):
    order_id: uuid.UUID
    saga_id: uuid.UUID
    customer_id: str


@REGISTRY.register
class OrderConfirmed(_OrderEvent):
    message_type = "OrderConfirmed"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "saga_id": EXAMPLE_SAGA_ID,
        "customer_id": "c1",
        "total": 3998,
        "currency": "USD",
    }
    total: Cents
    currency: str


@REGISTRY.register
class OrderCancelled(_OrderEvent):
    message_type = "OrderCancelled"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "saga_id": EXAMPLE_SAGA_ID,
        "customer_id": "c1",
        "reason": "reserve_inventory failed: INSUFFICIENT_STOCK",
    }
    reason: str


@REGISTRY.register
class OrderNeedsAttention(_OrderEvent):
    message_type = "OrderNeedsAttention"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "saga_id": EXAMPLE_SAGA_ID,
        "customer_id": "c1",
        "reason": "process_payment:compensate failed 5 times, last: refund_failed",
    }
    reason: str


ROUTES.intake(PlaceOrder)
ROUTES.event(OrderConfirmed, OrderCancelled, OrderNeedsAttention)
