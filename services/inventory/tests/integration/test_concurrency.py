"""Concurrent commands, each in its own transaction: no overselling, no deadlocks, no doubles."""

import asyncio
import contextlib
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from sagakit.contracts import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    ReleaseInventory,
    RequestedItem,
    ReserveInventory,
)
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def reserve(order_id: uuid.UUID, *lines: tuple[str, int]) -> ReserveInventory:
    return ReserveInventory(
        order_id=order_id,
        items=[RequestedItem(product_id=p, quantity=q) for p, q in lines],
        currency="USD",
    )


@contextlib.asynccontextmanager
async def watching_available(inventory_engine, product_id: str):
    """Sample the product's available stock while the block runs; yields the samples."""
    samples: list[int] = []
    stop = asyncio.Event()

    async def sample() -> None:
        async with inventory_engine.connect() as conn:
            while not stop.is_set():
                value = await conn.scalar(
                    text("SELECT available FROM products WHERE product_id = :p"), {"p": product_id}
                )
                samples.append(value)
                await conn.rollback()
                await asyncio.sleep(0.005)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        stop.set()
        await task


async def test_fifty_concurrent_orders_for_ten_units_reserve_exactly_ten(
    add_products, send, stock_of, inventory_engine
) -> None:
    await add_products(("limited-edition", 15000, "USD", 10))

    async with watching_available(inventory_engine, "limited-edition") as samples:
        replies = await asyncio.gather(
            *(send(reserve(uuid.uuid4(), ("limited-edition", 1))) for _ in range(50))
        )

    reserved = [r for r in replies if isinstance(r.payload, InventoryReserved)]
    refused = [r for r in replies if isinstance(r.payload, InventoryReservationFailed)]
    assert len(reserved) == 10
    assert len(refused) == 40
    assert {r.payload.reason for r in refused} == {"INSUFFICIENT_STOCK"}
    assert await stock_of("limited-edition") == (0, 10)
    assert samples, "the sampler never ran"
    assert min(samples) >= 0


async def test_orders_locking_the_same_products_in_opposite_orders_do_not_deadlock(
    add_products, send, stock_of
) -> None:
    await add_products(("a", 100, "USD", 1000), ("b", 100, "USD", 1000), ("c", 100, "USD", 1000))
    forward = [("a", 1), ("b", 1), ("c", 1)]
    backward = list(reversed(forward))

    # A deadlock would surface as PostgreSQL error 40P01 (DatabaseUnavailable) from a send.
    replies = await asyncio.wait_for(
        asyncio.gather(
            *(send(reserve(uuid.uuid4(), *(forward if i % 2 else backward))) for i in range(60))
        ),
        timeout=60,
    )

    assert all(isinstance(r.payload, InventoryReserved) for r in replies)
    for product in "abc":
        assert await stock_of(product) == (940, 60)


async def test_product_rows_are_locked_in_product_id_order_whatever_the_line_order(
    add_products, send, inventory_engine
) -> None:
    """Deterministic check of the lock order: with "b" locked elsewhere, a reserve listing
    ("b", "a") must already hold "a" while it waits for "b"."""
    await add_products(("a", 100, "USD", 10), ("b", 100, "USD", 10))
    async with inventory_engine.connect() as holder:
        await holder.execute(text("SELECT 1 FROM products WHERE product_id = 'b' FOR UPDATE"))
        pending = asyncio.create_task(send(reserve(uuid.uuid4(), ("b", 1), ("a", 1))))

        async def reserve_waits_for_a_lock() -> bool:
            async with inventory_engine.connect() as probe:
                waiting = await probe.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query ILIKE '%FROM products%'"
                    )
                )
            return bool(waiting)

        await eventually(reserve_waits_for_a_lock, timeout=10, what="the reserve to block on 'b'")
        with pytest.raises(DBAPIError, match="could not obtain lock"):
            await holder.execute(
                text("SELECT 1 FROM products WHERE product_id = 'a' FOR UPDATE NOWAIT")
            )
        await holder.rollback()  # lets the reserve have "b"

    reply = await asyncio.wait_for(pending, timeout=10)
    assert isinstance(reply.payload, InventoryReserved)


async def test_a_reserve_resent_while_the_first_is_in_flight_holds_the_stock_once(
    add_products, send, stock_of
) -> None:
    await add_products(("widget", 1999, "USD", 100))
    order_id = uuid.uuid4()

    replies = await asyncio.gather(*(send(reserve(order_id, ("widget", 3))) for _ in range(10)))

    assert {type(r.payload) for r in replies} == {InventoryReserved}
    assert all(r.payload == replies[0].payload for r in replies)  # same lines and total
    assert await stock_of("widget") == (97, 3)


async def test_a_release_racing_its_reserve_never_leaves_stock_held(
    add_products, send, stock_of
) -> None:
    await add_products(("widget", 1999, "USD", 1000))
    orders = [uuid.uuid4() for _ in range(20)]

    async def race(order_id: uuid.UUID):
        return await asyncio.gather(
            send(reserve(order_id, ("widget", 2))), send(ReleaseInventory(order_id=order_id))
        )

    outcomes = await asyncio.gather(*(race(order_id) for order_id in orders))

    for reserved, released in outcomes:
        assert isinstance(released.payload, InventoryReleased)
        if isinstance(reserved.payload, InventoryReserved):
            assert released.payload.released_lines == 1  # reserve first, then given back
        else:
            assert reserved.payload.reason == "ORDER_RELEASED"  # the release came first
            assert released.payload.released_lines == 0
    assert await stock_of("widget") == (1000, 0)
