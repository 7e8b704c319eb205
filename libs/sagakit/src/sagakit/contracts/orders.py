"""The order intake (topic ``orders``) and the events for downstream systems (``order.events``)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import Field

from sagakit.contracts.base import REGISTRY
from sagakit.contracts.types import MAX_ITEMS, Cents, Currency, OrderItem
from sagakit.messaging.registry import Message

Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


@REGISTRY.register
class PlaceOrder(Message):
    """An order from upstream, the same shape as ``POST /orders``."""

    message_type = "PlaceOrder"
    order_id: uuid.UUID
    customer_id: Annotated[str, Field(min_length=1, max_length=64)]
    email: Email
    items: Annotated[list[OrderItem], Field(min_length=1, max_length=MAX_ITEMS)]
    payment_method: Annotated[str, Field(min_length=1, max_length=128)]
    currency: Currency


class _OrderEvent(Message):
    order_id: uuid.UUID
    saga_id: uuid.UUID
    customer_id: str


@REGISTRY.register
class OrderConfirmed(_OrderEvent):
    message_type = "OrderConfirmed"
    total: Cents
    currency: str


@REGISTRY.register
class OrderCancelled(_OrderEvent):
    message_type = "OrderCancelled"
    reason: str


@REGISTRY.register
class OrderNeedsAttention(_OrderEvent):
    message_type = "OrderNeedsAttention"
    reason: str
