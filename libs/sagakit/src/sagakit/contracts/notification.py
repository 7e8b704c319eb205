"""Commands to and replies from the notification service."""

from __future__ import annotations

import uuid

from sagakit.contracts.base import REGISTRY, FailureReply, StepWasDone, SuccessReply
from sagakit.contracts.orders import Email
from sagakit.contracts.types import Cents, PricedLine
from sagakit.messaging.registry import Message


@REGISTRY.register
class SendOrderConfirmation(Message):
    """Email the order confirmation: lines, total, order id. At most one per order."""

    message_type = "SendOrderConfirmation"
    order_id: uuid.UUID
    email: Email
    lines: list[PricedLine]
    total: Cents
    currency: str


@REGISTRY.register
class OrderConfirmationSent(SuccessReply):
    message_type = "OrderConfirmationSent"
    smtp_message_id: str


@REGISTRY.register
class NotificationFailed(FailureReply):
    """The email was not sent: ``SMTP_REJECTED`` (permanent SMTP refusal, after transient
    retries), ``INVALID_RECIPIENT`` (an address that cannot be written safely), or ``EXPIRED``
    (the command's deadline passed first, so an email would arrive after the saga gave up)."""

    message_type = "NotificationFailed"


@REGISTRY.register
class VoidOrderConfirmation(Message):
    """Compensation of a notification step that timed out: if the email was not sent, never
    send it; if it was, say so (an email cannot be unsent)."""

    message_type = "VoidOrderConfirmation"
    order_id: uuid.UUID


@REGISTRY.register
class OrderConfirmationVoided(SuccessReply):
    """Nothing was sent, and nothing will be: the saga may compensate the earlier steps."""

    message_type = "OrderConfirmationVoided"


@REGISTRY.register
class OrderConfirmationAlreadySent(StepWasDone):
    """The email had gone out before the void: the saga completes instead of compensating."""

    message_type = "OrderConfirmationAlreadySent"
    smtp_message_id: str
