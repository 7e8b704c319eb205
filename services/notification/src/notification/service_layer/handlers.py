"""Message handlers of the notification service: the commands of a batch go to
``Confirmations`` together; each reply is written to the outbox in the consumer's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from notification.service_layer.confirmations import Confirmations
from sagakit.consumer import BatchHandler, Handler
from sagakit.contracts import REGISTRY, SendOrderConfirmation, VoidOrderConfirmation
from sagakit.messaging.envelope import Envelope
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.settings import Topics

__all__ = ["COMMANDS", "REGISTRY", "make_batch_handler", "make_handlers"]

COMMANDS = (SendOrderConfirmation.message_type, VoidOrderConfirmation.message_type)


def make_batch_handler(topics: Topics, confirmations: Confirmations) -> BatchHandler:
    replies = topics.replies("notification")

    async def handle(envelopes: Sequence[Envelope[Any]], uow: UnitOfWork) -> None:
        for envelope, reply in zip(
            envelopes, await confirmations.handle(uow, envelopes), strict=True
        ):
            uow.emit(replies, envelope.reply(reply))

    return handle


def make_handlers(topics: Topics, confirmations: Confirmations) -> dict[str, Handler]:
    """The same, one command per call (a batch of one): for calling directly, each call in its
    own unit of work. Not for a consumer: it runs a poll's records in one transaction, and a
    second command of an order would wait for the row lock the first one holds."""
    batch = make_batch_handler(topics, confirmations)

    async def handle_one(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await batch([envelope], uow)

    return dict.fromkeys(COMMANDS, handle_one)
