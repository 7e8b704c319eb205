"""Message handlers of the payment service: the commands of a batch go to ``Payments`` together;
each reply is written to the outbox in the consumer's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from payment.domain.gateway import PaymentGateway
from payment.service_layer.payments import Payments
from sagakit.consumer import BatchHandler, Handler
from sagakit.contracts import REGISTRY, ProcessPayment, RefundPayment
from sagakit.messaging.envelope import Envelope
from sagakit.outbox.unit_of_work import UnitOfWork

__all__ = ["COMMANDS", "REGISTRY", "make_batch_handler", "make_handlers"]

COMMANDS = (ProcessPayment.message_type, RefundPayment.message_type)


def make_batch_handler(*, reply_topic: str, gateway: PaymentGateway) -> BatchHandler:
    payments = Payments(gateway)

    async def handle(envelopes: Sequence[Envelope[Any]], uow: UnitOfWork) -> None:
        replies = await payments.handle(uow, envelopes)
        for envelope, reply in zip(envelopes, replies, strict=True):
            uow.emit(reply_topic, envelope.reply(reply))

    return handle


def make_handlers(*, reply_topic: str, gateway: PaymentGateway) -> dict[str, Handler]:
    """The same, one command at a time (a batch of one)."""
    batch = make_batch_handler(reply_topic=reply_topic, gateway=gateway)

    async def handle_one(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await batch([envelope], uow)

    return dict.fromkeys(COMMANDS, handle_one)
