"""Order intake from the ``orders`` topic: idempotent on the order id."""

import uuid

import pytest
from sqlalchemy import func, select

from orchestrator.adapters.orm import Order
from orchestrator.service_layer.intake import IdempotencyConflict

pytestmark = pytest.mark.integration


async def test_the_same_order_id_twice_places_one_order(harness) -> None:
    order_id = uuid.uuid4()
    first = await harness.place(order_id=order_id)
    again = await harness.place(order_id=order_id)
    assert (first.created, again.created) == (True, False)
    assert first.saga.saga_id == again.saga.saga_id
    async with harness.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Order))).scalar_one() == 1
    assert await harness.command_types(first.saga.saga_id) == ["ReserveInventory"]


async def test_the_same_order_id_with_another_body_is_refused(harness) -> None:
    order_id = uuid.uuid4()
    await harness.place(order_id=order_id)
    with pytest.raises(IdempotencyConflict):
        await harness.place(order_id=order_id, currency="EUR")
