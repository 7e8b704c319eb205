"""Message handlers of the inventory service.

One batch handler takes the commands of a partition batch together (one ``StockLedger``: locks
and reads for all of them at once); business refusals become failure replies, and only
infrastructure errors leave it (the consumer retries those). Every reply is written to the
outbox in the consumer's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from inventory.domain.errors import ReservationRefused
from inventory.service_layer.reservations import StockLedger
from sagakit.consumer import BatchHandler, Handler
from sagakit.contracts import (
    REGISTRY,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReleaseInventory,
    ReserveInventory,
)
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.settings import Topics

__all__ = ["COMMANDS", "REGISTRY", "make_batch_handler", "make_handlers"]

log = logging.getLogger(__name__)

COMMANDS = (ReserveInventory.message_type, ReleaseInventory.message_type)


def make_batch_handler(topics: Topics) -> BatchHandler:
    """Reserve and release commands, in order; replies go to the inventory replies topic."""
    replies = topics.replies("inventory")

    async def handle(envelopes: Sequence[Envelope[Any]], uow: UnitOfWork) -> None:
        ledger = await StockLedger.open(uow.conn, [e.payload for e in envelopes])
        for envelope in envelopes:
            uow.emit(replies, envelope.reply(_apply(ledger, envelope)))
        ledger.write(uow)

    return handle


def make_handlers(topics: Topics) -> dict[str, Handler]:
    """The same, one command at a time (a batch of one)."""
    batch = make_batch_handler(topics)

    async def handle_one(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await batch([envelope], uow)

    return dict.fromkeys(COMMANDS, handle_one)


def _apply(ledger: StockLedger, envelope: Envelope[Any]) -> Message:
    command = envelope.payload
    if isinstance(command, ReleaseInventory):
        released = ledger.release(order_id=command.order_id, saga_id=envelope.saga_id)
        log.info("order %s released (%d line(s))", command.order_id, released)
        return InventoryReleased(order_id=command.order_id, released_lines=released)
    assert isinstance(command, ReserveInventory)
    try:
        plan = ledger.reserve(
            order_id=command.order_id,
            saga_id=envelope.saga_id,
            items=command.items,
            currency=command.currency,
        )
    except ReservationRefused as refused:
        log.info("order %s not reserved: %s (%s)", command.order_id, refused.reason, refused)
        return InventoryReservationFailed(
            order_id=command.order_id, reason=refused.reason, detail=refused.message
        )
    return InventoryReserved(
        order_id=command.order_id, lines=list(plan.lines), total=plan.total, currency=plan.currency
    )
