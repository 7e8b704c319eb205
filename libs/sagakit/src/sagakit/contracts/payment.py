"""Commands to and replies from the payment service."""

from __future__ import annotations

import uuid

from sagakit.contracts.base import REGISTRY, FailureReply, SuccessReply
from sagakit.contracts.routes import ROUTES
from sagakit.contracts.types import EXAMPLE_ORDER_ID, Cents, Currency
from sagakit.messaging.registry import Message


@REGISTRY.register
class ProcessPayment(Message):
    """Charge the order's total (from the inventory reply, never from the client)."""

    message_type = "ProcessPayment"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "customer_id": "c1",
        "amount": 3998,
        "currency": "USD",
        "payment_method": "pm_card_visa",
    }
    order_id: uuid.UUID
    customer_id: str
    amount: Cents
    currency: Currency
    payment_method: str


@REGISTRY.register
class RefundPayment(Message):
    """Refund the order's charge in full. Idempotent: nothing charged is a success."""

    message_type = "RefundPayment"
    example = {"order_id": EXAMPLE_ORDER_ID}
    order_id: uuid.UUID


@REGISTRY.register
class PaymentProcessed(SuccessReply):
    message_type = "PaymentProcessed"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "payment_id": "pi_3PqR8sLkdIwHu7ix0Y1bK2cD",
        "amount": 3998,
        "currency": "USD",
    }
    payment_id: str
    amount: Cents
    currency: str


@REGISTRY.register
class PaymentDeclined(FailureReply):
    """The card was declined: ``reason`` is Stripe's decline code (``card_declined``...)."""

    message_type = "PaymentDeclined"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "reason": "card_declined",
        "detail": "Your card was declined.",
    }


@REGISTRY.register
class PaymentRefunded(SuccessReply):
    message_type = "PaymentRefunded"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "refund_id": "re_3PqR8sLkdIwHu7ix0cN4dE5f",
        "amount": 3998,
    }
    refund_id: str | None  # None when there was nothing to refund
    amount: Cents


@REGISTRY.register
class PaymentRefundFailed(FailureReply):
    """The gateway refused the refund (a compensation failure: the retry worker re-sends)."""

    message_type = "PaymentRefundFailed"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "reason": "refund_failed",
        "detail": "the bank refused the refund",
    }


ROUTES.command(ProcessPayment, participant="payment", replies=(PaymentProcessed, PaymentDeclined))
ROUTES.command(RefundPayment, participant="payment", replies=(PaymentRefunded, PaymentRefundFailed))
