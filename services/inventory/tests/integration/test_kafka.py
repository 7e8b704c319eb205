"""The inventory handlers behind the real consumer, outbox relay and Kafka topics."""

import uuid

import pytest

from inventory.service_layer.handlers import make_handlers
from sagakit.contracts import (
    REGISTRY,
    InventoryReleased,
    InventoryReserved,
    ReleaseInventory,
    RequestedItem,
    ReserveInventory,
)
from sagakit.messaging.envelope import Envelope
from sagakit.settings import Topics
from sagakit.testing.kafka import create_topics, read_topic, unique_name
from sagakit.testing.runners import running_consumer, running_producer, running_relay

pytestmark = pytest.mark.integration


@pytest.fixture
async def topics(kafka_bootstrap) -> Topics:
    topics = Topics(unique_name("inv") + ".")
    commands = topics.commands("inventory")
    await create_topics(
        kafka_bootstrap, [commands, Topics.dlq(commands), topics.replies("inventory")]
    )
    return topics


async def test_commands_over_kafka_reply_on_the_replies_topic_once_per_command(
    kafka_bootstrap,
    topics,
    inventory_sessions,
    inventory_database,
    inventory_url,
    add_products,
    stock_of,
) -> None:
    await add_products(("widget", 1999, "USD", 10))
    order_id, saga_id = uuid.uuid4(), uuid.uuid4()
    items = [RequestedItem(product_id="widget", quantity=2)]
    reserve = Envelope(
        payload=ReserveInventory(order_id=order_id, items=items, currency="USD"),
        saga_id=saga_id,
        order_id=order_id,
        step="reserve_inventory",
    )
    resent = Envelope(  # the orchestrator re-sending: same order, new message id
        payload=reserve.payload, saga_id=saga_id, order_id=order_id, step="reserve_inventory"
    )
    release = Envelope(
        payload=ReleaseInventory(order_id=order_id),
        saga_id=saga_id,
        order_id=order_id,
        step="reserve_inventory",
    )
    commands, replies = topics.commands("inventory"), topics.replies("inventory")

    async with (
        running_producer(kafka_bootstrap) as producer,
        running_relay(inventory_url, producer),
        running_consumer(
            kafka_bootstrap,
            commands,
            make_handlers(topics),
            inventory_database,
            producer,
            registry=REGISTRY,
        ),
    ):
        await producer.publish(commands, reserve)
        await producer.publish(commands, reserve)  # a redelivery: the inbox drops it
        await producer.publish(commands, resent)
        received = await read_topic(kafka_bootstrap, replies, expected=2)
        assert await stock_of("widget") == (8, 2)
        await producer.publish(commands, release)
        received = await read_topic(kafka_bootstrap, replies, expected=3)

    decoded = [Envelope.from_record(r.headers, r.value, REGISTRY) for r in received]
    assert [d.causation_id for d in decoded] == [
        reserve.message_id,
        resent.message_id,
        release.message_id,
    ]
    first, second, third = (d.payload for d in decoded)
    assert isinstance(first, InventoryReserved)
    assert first.total == 3998
    assert second == first
    assert third == InventoryReleased(order_id=order_id, released_lines=1)
    assert all(d.saga_id == saga_id and d.step == "reserve_inventory" for d in decoded)
    assert all(r.key == str(saga_id).encode() for r in received)
    assert await stock_of("widget") == (10, 0)
