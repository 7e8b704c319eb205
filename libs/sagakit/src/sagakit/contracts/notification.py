"""Commands to and replies from the notification service."""

from __future__ import annotations

import uuid

from sagakit.contracts.base import REGISTRY, FailureReply, SuccessReply
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
