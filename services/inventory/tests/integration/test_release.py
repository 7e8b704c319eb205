"""ReleaseInventory on real PostgreSQL: gives stock back once, and is always a success."""

import uuid

import pytest
from asyncpg.exceptions import CheckViolationError
from sqlalchemy import text

from inventory.adapters.orm import Reservation
from sagakit.contracts import (
    InventoryReleased,
    InventoryReserved,
    ReleaseInventory,
    RequestedItem,
    ReserveInventory,
)
from sagakit.messaging.envelope import Envelope
from sagakit.outbox.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration


@pytest.fixture
async def catalog(add_products):
    await add_products(("widget", 1999, "USD", 10), ("gadget", 4999, "USD", 5))


async def reserve(send, order_id: uuid.UUID) -> None:
    reply = await send(
        ReserveInventory(
            order_id=order_id,
            items=[
                RequestedItem(product_id="widget", quantity=4),
                RequestedItem(product_id="gadget", quantity=2),
            ],
            currency="USD",
        )
    )
    assert isinstance(reply.payload, InventoryReserved)


async def test_release_gives_the_stock_back_and_marks_the_reservation_released(
    catalog, send, stock_of, inventory_sessions
) -> None:
    order_id, other = uuid.uuid4(), uuid.uuid4()
    await reserve(send, order_id)
    await reserve(send, other)
    assert await stock_of("widget") == (2, 8)

    reply = await send(ReleaseInventory(order_id=order_id))

    assert reply.payload == InventoryReleased(order_id=order_id, released_lines=2)
    assert reply.order_id == order_id
    assert await stock_of("widget") == (6, 4)  # the other order still holds its units
    assert await stock_of("gadget") == (3, 2)
    async with inventory_sessions() as session:
        stored = await session.get(Reservation, order_id)
        assert stored is not None
        assert stored.status == "released"
        assert stored.released_at is not None


async def test_releasing_twice_succeeds_and_gives_nothing_back_the_second_time(
    catalog, send, stock_of
) -> None:
    order_id = uuid.uuid4()
    await reserve(send, order_id)
    first = await send(ReleaseInventory(order_id=order_id))
    second = await send(ReleaseInventory(order_id=order_id))

    assert first.payload.released_lines == 2
    assert second.payload == InventoryReleased(order_id=order_id, released_lines=0)
    assert await stock_of("widget") == (10, 0)
    assert await stock_of("gadget") == (5, 0)


async def test_releasing_an_order_never_reserved_succeeds_and_leaves_a_tombstone(
    catalog, send, stock_of, inventory_sessions
) -> None:
    order_id, saga_id = uuid.uuid4(), uuid.uuid4()
    reply = await send(ReleaseInventory(order_id=order_id), saga_id=saga_id)

    assert reply.payload == InventoryReleased(order_id=order_id, released_lines=0)
    assert reply.saga_id == saga_id
    assert await stock_of("widget") == (10, 0)
    async with inventory_sessions() as session:
        tombstone = await session.get(Reservation, order_id)
        assert tombstone is not None
        assert (tombstone.status, tombstone.total, tombstone.saga_id) == ("released", 0, saga_id)

    # Releasing the tombstone again is still a plain success.
    again = await send(ReleaseInventory(order_id=order_id))
    assert again.payload.released_lines == 0


async def test_a_release_that_would_drive_reserved_negative_is_stopped_by_the_database(
    catalog, send, stock_of, inventory_sessions, handlers, inventory_database
) -> None:
    """Stock cannot go negative even under a bug: here, a corrupted reserved count."""
    order_id = uuid.uuid4()
    await reserve(send, order_id)
    async with inventory_sessions() as session:
        await session.execute(
            text(
                "UPDATE products SET reserved = 0, available = initial_stock"
                " WHERE product_id = 'widget'"
            )
        )
        await session.commit()

    command = Envelope(payload=ReleaseInventory(order_id=order_id), order_id=order_id)

    async def release_in_one_transaction() -> None:
        async with UnitOfWork(inventory_database) as uow:
            await handlers["ReleaseInventory"](command, uow)
            await uow.commit()

    with pytest.raises(CheckViolationError, match="ck_products_reserved_not_negative"):
        await release_in_one_transaction()
    # Nothing of the failed release was kept: the consumer would retry or dead-letter it.
    assert await stock_of("gadget") == (3, 2)
