"""Commands to and replies from the notification service."""

from __future__ import annotations

import uuid

from sagakit.contracts.base import REGISTRY, FailureReply, StepWasDone, SuccessReply
from sagakit.contracts.routes import ROUTES
from sagakit.contracts.text import Email
from sagakit.contracts.types import EXAMPLE_LINE, EXAMPLE_ORDER_ID, Cents, PricedLine
from sagakit.messaging.registry import Message


@REGISTRY.register
class SendOrderConfirmation(Message):
    """Email the order confirmation: lines, total, order id. At most one per order."""

    message_type = "SendOrderConfirmation"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "email": "me@example.com",
        "lines": [EXAMPLE_LINE],
        "total": 3998,
        "currency": "USD",
    }
    order_id: uuid.UUID
    email: Email
    lines: list[PricedLine]
    total: Cents
    currency: str


@REGISTRY.register
class OrderConfirmationSent(SuccessReply):
    message_type = "OrderConfirmationSent"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "smtp_message_id": "<order-3f2b8c1e@saga-shop.local>",
    }
    smtp_message_id: str


@REGISTRY.register
class NotificationFailed(FailureReply):
    """The email was not sent: ``SMTP_REJECTED`` (permanent SMTP refusal, after transient
    retries), ``INVALID_RECIPIENT`` (an address that cannot be written safely), or ``EXPIRED``
    (the command's deadline passed first, so an email would arrive after the saga gave up)."""

    message_type = "NotificationFailed"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "reason": "SMTP_REJECTED",
        "detail": "550 mailbox unavailable",
    }


@REGISTRY.register
class VoidOrderConfirmation(Message):
    """Compensation of a notification step that timed out: if the email was not sent, never
    send it; if it was, say so (an email cannot be unsent)."""

    message_type = "VoidOrderConfirmation"
    example = {"order_id": EXAMPLE_ORDER_ID}
    order_id: uuid.UUID


@REGISTRY.register
class OrderConfirmationVoided(SuccessReply):
    """Nothing was sent, and nothing will be: the saga may compensate the earlier steps."""

    message_type = "OrderConfirmationVoided"
    example = {"order_id": EXAMPLE_ORDER_ID}


@REGISTRY.register
class OrderConfirmationAlreadySent(StepWasDone):
    """The email had gone out before the void: the saga completes instead of compensating."""

    message_type = "OrderConfirmationAlreadySent"
    example = {
        "order_id": EXAMPLE_ORDER_ID,
        "smtp_message_id": "<order-3f2b8c1e@saga-shop.local>",
    }
    smtp_message_id: str


ROUTES.command(
    SendOrderConfirmation,
    participant="notification",
    replies=(OrderConfirmationSent, NotificationFailed),
)
# The fence of a timed-out send: either nothing was sent (voided) or the step had been done.
ROUTES.command(
    VoidOrderConfirmation,
    participant="notification",
    replies=(OrderConfirmationVoided, OrderConfirmationAlreadySent),
)
