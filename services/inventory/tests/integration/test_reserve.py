"""ReserveInventory on real PostgreSQL: all-or-nothing, every failure reason, idempotency."""

import uuid

import pytest
from sqlalchemy import func, select, text

from inventory.adapters.orm import Reservation, ReservationLine
from sagakit.contracts import (
    InventoryReservationFailed,
    InventoryReserved,
    PricedLine,
    ReleaseInventory,
    RequestedItem,
    ReserveInventory,
)
from sagakit.contracts.types import MAX_QUANTITY

pytestmark = pytest.mark.integration


def reserve(order_id: uuid.UUID, *lines: tuple[str, int], currency: str = "USD"):
    return ReserveInventory(
        order_id=order_id,
        items=[RequestedItem(product_id=p, quantity=q) for p, q in lines],
        currency=currency,
    )


@pytest.fixture
async def catalog(add_products):
    await add_products(
        ("widget", 1999, "USD", 10),
        ("gadget", 4999, "USD", 3),
        ("euro-widget", 1899, "EUR", 5),
        ("sold-out", 2500, "USD", 0),
    )


@pytest.fixture
def reservation_count(inventory_sessions):
    async def count() -> tuple[int, int]:
        async with inventory_sessions() as session:
            reservations = await session.scalar(select(func.count()).select_from(Reservation))
            lines = await session.scalar(select(func.count()).select_from(ReservationLine))
            return reservations, lines

    return count


async def test_a_reservation_holds_every_line_and_replies_with_catalog_prices(
    catalog, send, stock_of, inventory_sessions
) -> None:
    order_id, saga_id = uuid.uuid4(), uuid.uuid4()
    reply = await send(reserve(order_id, ("widget", 2), ("gadget", 1)), saga_id=saga_id)

    assert reply.payload == InventoryReserved(
        order_id=order_id,
        lines=[
            PricedLine(product_id="gadget", quantity=1, unit_price=4999, line_total=4999),
            PricedLine(product_id="widget", quantity=2, unit_price=1999, line_total=3998),
        ],
        total=8997,
        currency="USD",
    )
    # The orchestrator matches the reply on saga id and step.
    assert reply.saga_id == saga_id
    assert reply.order_id == order_id
    assert reply.step == "reserve_inventory"
    assert await stock_of("widget") == (8, 2)
    assert await stock_of("gadget") == (2, 1)
    async with inventory_sessions() as session:
        stored = await session.get(Reservation, order_id)
        assert stored is not None
        assert (stored.status, stored.total, stored.currency, stored.saga_id) == (
            "held",
            8997,
            "USD",
            saga_id,
        )
        assert stored.released_at is None


async def test_duplicate_lines_are_merged_into_one(catalog, send, stock_of) -> None:
    order_id = uuid.uuid4()
    reply = await send(reserve(order_id, ("widget", 2), ("widget", 3)))

    assert isinstance(reply.payload, InventoryReserved)
    assert reply.payload.lines == [
        PricedLine(product_id="widget", quantity=5, unit_price=1999, line_total=9995)
    ]
    assert await stock_of("widget") == (5, 5)


@pytest.mark.parametrize(
    ("lines", "currency", "reason", "in_detail"),
    [
        ([("widget", 1), ("nope", 1)], "USD", "UNKNOWN_PRODUCT", ["'nope'"]),
        ([("widget", 0)], "USD", "INVALID_QUANTITY", ["'widget'", "0"]),
        ([("widget", -2)], "USD", "INVALID_QUANTITY", ["-2"]),
        ([("widget", MAX_QUANTITY + 1)], "USD", "INVALID_QUANTITY", [str(MAX_QUANTITY + 1)]),
        ([("widget", 1), ("euro-widget", 1)], "USD", "CURRENCY_MISMATCH", ["EUR", "USD"]),
        ([("widget", 1)], "EUR", "CURRENCY_MISMATCH", ["'widget' is priced in USD"]),
        (
            [("widget", 1), ("gadget", 4)],
            "USD",
            "INSUFFICIENT_STOCK",
            ["'gadget'", "requested 4", "available 3"],
        ),
        ([("sold-out", 1)], "USD", "INSUFFICIENT_STOCK", ["'sold-out'", "available 0"]),
    ],
)
async def test_every_refusal_is_a_failure_reply_that_holds_nothing(
    catalog, send, stock_of, reservation_count, lines, currency, reason, in_detail
) -> None:
    order_id = uuid.uuid4()
    reply = await send(reserve(order_id, *lines, currency=currency))

    assert isinstance(reply.payload, InventoryReservationFailed)
    assert reply.payload.order_id == order_id
    assert reply.payload.reason == reason
    for fragment in in_detail:
        assert fragment in reply.payload.detail
    assert await stock_of("widget") == (10, 0)
    assert await stock_of("gadget") == (3, 0)
    assert await reservation_count() == (0, 0)


async def test_a_short_second_line_leaves_the_first_lines_stock_untouched(
    catalog, send, stock_of
) -> None:
    # "widget" sorts after "gadget": the long line is locked and checked first, the short one last
    order_id = uuid.uuid4()
    reply = await send(reserve(order_id, ("gadget", 1), ("widget", 11)))

    assert isinstance(reply.payload, InventoryReservationFailed)
    assert reply.payload.reason == "INSUFFICIENT_STOCK"
    assert await stock_of("gadget") == (3, 0)
    assert await stock_of("widget") == (10, 0)

    # The same order with enough stock goes through afterwards: nothing was left behind.
    again = await send(reserve(order_id, ("gadget", 1), ("widget", 10)))
    assert isinstance(again.payload, InventoryReserved)
    assert await stock_of("widget") == (0, 10)


async def test_a_resent_reserve_with_a_new_message_id_replies_the_same_and_changes_nothing(
    catalog, send, stock_of, inventory_sessions, reservation_count
) -> None:
    order_id = uuid.uuid4()
    first = await send(reserve(order_id, ("widget", 2), ("gadget", 1)))
    # Prices change in between: the re-sent command still gets the prices that were held.
    async with inventory_sessions() as session:
        await session.execute(text("UPDATE products SET price = price + 100"))
        await session.commit()

    again = await send(reserve(order_id, ("widget", 2), ("gadget", 1)))

    assert again.message_id != first.message_id
    assert again.payload == first.payload
    assert await stock_of("widget") == (8, 2)
    assert await stock_of("gadget") == (2, 1)
    assert await reservation_count() == (1, 2)


async def test_a_reserve_after_the_release_is_refused_as_order_released(
    catalog, send, stock_of
) -> None:
    order_id = uuid.uuid4()
    await send(reserve(order_id, ("widget", 2)))
    await send(ReleaseInventory(order_id=order_id))

    reply = await send(reserve(order_id, ("widget", 2)))

    assert isinstance(reply.payload, InventoryReservationFailed)
    assert reply.payload.reason == "ORDER_RELEASED"
    assert await stock_of("widget") == (10, 0)


async def test_a_reserve_after_a_release_that_came_first_is_refused_as_order_released(
    catalog, send, stock_of, reservation_count
) -> None:
    # A timed-out reserve is compensated; the compensation overtakes the reserve itself.
    order_id = uuid.uuid4()
    released = await send(ReleaseInventory(order_id=order_id))
    late = await send(reserve(order_id, ("widget", 2)))

    assert released.payload.released_lines == 0
    assert isinstance(late.payload, InventoryReservationFailed)
    assert late.payload.reason == "ORDER_RELEASED"
    assert await stock_of("widget") == (10, 0)
    assert await reservation_count() == (1, 0)  # only the tombstone
