"""Message handlers of the inventory service: plain async functions (message, unit of work).

Business refusals become failure replies; only infrastructure errors leave a handler (the
consumer retries those). Every reply is written to the outbox in the handler's transaction.
"""

from __future__ import annotations

import logging

from inventory.adapters.repository import InventoryRepository
from inventory.domain.errors import ReservationRefused
from inventory.service_layer import reservations
from sagakit.contracts import (
    REGISTRY,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReleaseInventory,
    ReserveInventory,
)
from sagakit.db.unit_of_work import UnitOfWork
from sagakit.messaging.consumer import Handler
from sagakit.messaging.envelope import Envelope
from sagakit.settings import Topics

__all__ = ["REGISTRY", "make_handlers"]

log = logging.getLogger(__name__)


def make_handlers(topics: Topics) -> dict[str, Handler]:
    """The handlers by message type; replies go to the inventory replies topic."""
    replies = topics.replies("inventory")

    async def reserve_inventory(envelope: Envelope[ReserveInventory], uow: UnitOfWork) -> None:
        command = envelope.payload
        try:
            plan = await reservations.reserve(
                InventoryRepository(uow.session),
                order_id=command.order_id,
                saga_id=envelope.saga_id,
                items=command.items,
                currency=command.currency,
            )
        except ReservationRefused as refused:
            log.info("order %s not reserved: %s (%s)", command.order_id, refused.reason, refused)
            uow.emit(
                replies,
                envelope.reply(
                    InventoryReservationFailed(
                        order_id=command.order_id,
                        reason=refused.reason,
                        detail=refused.message,
                    )
                ),
            )
            return
        uow.emit(
            replies,
            envelope.reply(
                InventoryReserved(
                    order_id=command.order_id,
                    lines=list(plan.lines),
                    total=plan.total,
                    currency=plan.currency,
                )
            ),
        )

    async def release_inventory(envelope: Envelope[ReleaseInventory], uow: UnitOfWork) -> None:
        command = envelope.payload
        released = await reservations.release(
            InventoryRepository(uow.session), order_id=command.order_id, saga_id=envelope.saga_id
        )
        log.info("order %s released (%d line(s))", command.order_id, released)
        uow.emit(
            replies,
            envelope.reply(InventoryReleased(order_id=command.order_id, released_lines=released)),
        )

    return {
        ReserveInventory.message_type: reserve_inventory,
        ReleaseInventory.message_type: release_inventory,
    }
