"""A batch of commands in one transaction (group commit) ends as if each ran alone, in order."""

import uuid

import pytest

from inventory.service_layer.handlers import make_batch_handler
from sagakit.contracts import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReleaseInventory,
    RequestedItem,
    ReserveInventory,
)
from sagakit.messaging.envelope import Envelope
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.settings import Topics

pytestmark = pytest.mark.integration


def reserve(order_id: uuid.UUID, quantity: int) -> Envelope[ReserveInventory]:
    return Envelope(
        payload=ReserveInventory(
            order_id=order_id,
            items=[RequestedItem(product_id="widget", quantity=quantity)],
            currency="USD",
        ),
        saga_id=uuid.uuid4(),
        order_id=order_id,
    )


def release(order_id: uuid.UUID) -> Envelope[ReleaseInventory]:
    return Envelope(payload=ReleaseInventory(order_id=order_id), saga_id=uuid.uuid4())


async def test_commands_of_one_batch_see_each_others_effects_in_order(
    add_products, stock_of, outbox, inventory_database
) -> None:
    await add_products(("widget", 1999, "USD", 10))
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    batch = [
        reserve(a, 6),
        reserve(b, 6),  # only 4 left after a: refused
        release(a),  # gives a's 6 back
        reserve(c, 6),  # now fits
        reserve(a, 1),  # a was released: refused, holds nothing
        release(d),  # never reserved: a tombstone
        reserve(d, 1),  # after its tombstone: refused
        reserve(c, 6),  # the same order again: the same answer, nothing more held
    ]
    async with UnitOfWork(inventory_database) as uow:
        await make_batch_handler(Topics("batch-test."))(batch, uow)
        await uow.commit()

    replies = {r.causation_id: r.payload for r in await outbox()}
    outcome = [type(replies[e.message_id]).__name__ for e in batch]
    assert outcome == [
        "InventoryReserved",
        "InventoryReservationFailed",
        "InventoryReleased",
        "InventoryReserved",
        "InventoryReservationFailed",
        "InventoryReleased",
        "InventoryReservationFailed",
        "InventoryReserved",
    ]
    assert isinstance(replies[batch[1].message_id], InventoryReservationFailed)
    assert replies[batch[1].message_id].reason == "INSUFFICIENT_STOCK"
    assert replies[batch[4].message_id].reason == "ORDER_RELEASED"  # type: ignore[union-attr]
    assert replies[batch[6].message_id].reason == "ORDER_RELEASED"  # type: ignore[union-attr]
    assert replies[batch[2].message_id] == InventoryReleased(order_id=a, released_lines=1)
    assert replies[batch[7].message_id] == replies[batch[3].message_id]
    assert isinstance(replies[batch[3].message_id], InventoryReserved)
    assert await stock_of("widget") == (4, 6)  # only c holds stock
