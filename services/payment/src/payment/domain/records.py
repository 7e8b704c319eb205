"""What the payment service records of an order: its charge, its refund, refused refund attempts.

Statuses are enums (the database stores their values, CHECK constraints list them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class PaymentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"


class RefundStatus(StrEnum):
    SUCCEEDED = "succeeded"  # the only kind kept: a refused refund is a RefundAttempt


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    order_id: uuid.UUID
    saga_id: uuid.UUID
    amount: int
    currency: str
    payment_method: str
    status: PaymentStatus
    gateway_payment_id: str | None
    decline_code: str | None
    decline_message: str | None
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class RefundRecord:
    """The order's compensation: a refund made (``payment_id`` set), or a no-op for an order
    never charged, which also makes a late charge for the order refused."""

    order_id: uuid.UUID
    saga_id: uuid.UUID
    payment_id: str | None
    amount: int
    status: RefundStatus
    refund_id: str | None


@dataclass(frozen=True, slots=True)
class RefundAttempt:
    """A refund the gateway refused (definitive); the next attempt asks under a new key."""

    order_id: uuid.UUID
    attempt: int
    saga_id: uuid.UUID
    idempotency_key: str
    reason: str
    detail: str
