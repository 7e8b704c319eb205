"""A ``PlaceOrder`` on the ``orders`` topic meets the same string rules as ``POST /orders``: a
control character in an identifier or an address is poison, dead-lettered with its reason,
and the orders behind it are placed."""

import uuid

import orjson
import pytest
from sqlalchemy import func, select

from orchestrator.adapters.orm import Order
from orchestrator.service_layer.handlers import install_handlers
from sagakit.consumer import DLQ
from sagakit.contracts import REGISTRY, OrderItem, PlaceOrder
from sagakit.messaging.envelope import Envelope
from sagakit.testing.kafka import read_topic
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def order() -> Envelope[PlaceOrder]:
    payload = PlaceOrder(
        order_id=uuid.uuid4(),
        customer_id="cust-1",
        email="buyer@example.com",
        items=[OrderItem(product_id="widget", quantity=2)],
        payment_method="pm_card_visa",
        currency="USD",
    )
    return Envelope(payload=payload, order_id=payload.order_id)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("customer_id", "cust\x001"),
        ("email", "buyer\x1b@example.com"),
        ("payment_method", "pm_card\x7fvisa"),
    ],
)
async def test_a_control_character_in_a_place_order_is_dead_lettered_with_its_reason(
    harness, kafka_bootstrap, new_topic, field, value
) -> None:
    topic = await new_topic(partitions=1)  # one partition: the good order is behind the poison
    poison, good = order(), order()
    body = {**poison.payload.model_dump(mode="json"), field: value}
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(kafka_bootstrap, topic, {}, harness.database, producer, REGISTRY) as c,
    ):
        install_handlers(c, harness.sagas, harness.intake, REGISTRY)
        await producer.send_raw(
            topic,
            key=str(poison.order_id).encode(),
            value=orjson.dumps(body),
            headers=list(poison.headers()),
        )
        await producer.publish(topic, good)

        async def placed() -> bool:
            async with harness.sessions() as session:
                count = await session.scalar(
                    select(func.count()).select_from(Order).where(Order.order_id == good.order_id)
                )
                return bool(count)

        await eventually(placed, what="the good order placed")

    [dead] = await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=1)
    meta = {k: v.decode() for k, v in dead.headers}
    assert meta[DLQ.ERROR_CODE] == "invalid_message"
    assert field in meta[DLQ.REASON]
    assert "control characters" in meta[DLQ.REASON]
    async with harness.sessions() as session:
        assert await session.get(Order, poison.order_id) is None
