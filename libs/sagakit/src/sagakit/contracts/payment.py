"""Commands to and replies from the payment service."""

from __future__ import annotations

import uuid

from sagakit.contracts.base import REGISTRY, FailureReply, SuccessReply
from sagakit.contracts.types import Cents, Currency
from sagakit.messaging.registry import Message


@REGISTRY.register
class ProcessPayment(Message):
    """Charge the order's total (from the inventory reply, never from the client)."""

    message_type = "ProcessPayment"
    order_id: uuid.UUID
    customer_id: str
    amount: Cents
    currency: Currency
    payment_method: str


@REGISTRY.register
class RefundPayment(Message):
    """Refund the order's charge in full. Idempotent: nothing charged is a success."""

    message_type = "RefundPayment"
    order_id: uuid.UUID


@REGISTRY.register
class PaymentProcessed(SuccessReply):
    message_type = "PaymentProcessed"
    payment_id: str
    amount: Cents
    currency: str


@REGISTRY.register
class PaymentDeclined(FailureReply):
    """The card was declined: ``reason`` is Stripe's decline code (``card_declined``...)."""

    message_type = "PaymentDeclined"


@REGISTRY.register
class PaymentRefunded(SuccessReply):
    message_type = "PaymentRefunded"
    refund_id: str | None  # None when there was nothing to refund
    amount: Cents


@REGISTRY.register
class PaymentRefundFailed(FailureReply):
    """The gateway refused the refund (a compensation failure: the retry worker re-sends)."""

    message_type = "PaymentRefundFailed"
