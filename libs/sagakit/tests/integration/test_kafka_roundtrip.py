"""A message sent through the producer and received by the consumer keeps every header."""

import uuid
from collections.abc import Sequence

import pytest

from sagakit.messaging.envelope import Envelope
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.testing.kafka import read_topic
from sagakit.testing.messages import DoThing
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration


async def test_produce_consume_round_trip_keeps_every_header(
    kafka_bootstrap, new_topic, session_factory, database
) -> None:
    topic = await new_topic()
    sent = Envelope(
        payload=DoThing(name="round-trip", amount=1234),
        saga_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        step="reserve_inventory",
        causation_id=uuid.uuid4(),
    )
    received: list[Envelope[DoThing]] = []

    async def handle(envelope: Envelope[DoThing], uow: UnitOfWork) -> None:
        received.append(envelope)

    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(kafka_bootstrap, topic, {"DoThing": handle}, database, producer),
    ):
        await producer.publish(topic, sent)
        await eventually(lambda: _some(received), what="the message")

    assert received == [sent]  # every envelope field, payload included
    [record] = await read_topic(kafka_bootstrap, topic, expected=1)
    assert record.headers == tuple(sent.headers()) or list(record.headers) == sent.headers()
    assert record.key == str(sent.saga_id).encode()


async def _some(items: Sequence[object]) -> bool:
    return bool(items)
