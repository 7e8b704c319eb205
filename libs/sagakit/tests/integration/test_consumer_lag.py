"""``saga_consumer_lag``: the records of a partition the consumer has not taken yet."""

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY

from sagakit.messaging.envelope import Envelope
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.testing.messages import DoThing
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration


async def test_the_lag_of_each_partition_is_shown_and_falls_to_zero(
    kafka_bootstrap, new_topic, database
) -> None:
    topic = await new_topic(partitions=1)
    release, entered = asyncio.Event(), asyncio.Event()

    async def slow(envelope: Envelope[DoThing], uow: UnitOfWork) -> None:
        entered.set()
        await release.wait()  # the first record holds the partition

    saga = uuid.uuid4()
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(
            kafka_bootstrap, topic, {"DoThing": slow}, database, producer, max_records=1
        ) as consumer,
    ):
        # The records behind arrive while the first is being handled: no fetch has seen them
        # (the lag comes from the broker's end offsets, not from the last fetch).
        for i in range(5):
            await producer.publish(
                topic, Envelope(payload=DoThing(name=f"r{i}", amount=1), saga_id=saga)
            )
            if i == 0:
                await asyncio.wait_for(entered.wait(), timeout=15)

        async def lag() -> float:
            await consumer.refresh_lag_metric()
            labels = {"group": consumer._group_id, "topic": topic, "partition": "0"}
            return REGISTRY.get_sample_value("saga_consumer_lag", labels) or 0.0

        assert await eventually(lambda: _at_least(lag, 4), what="a lag of 4") == 4
        release.set()
        await eventually(lambda: _equal(lag, 0), what="no lag")


async def _at_least(probe, n):  # type: ignore[no-untyped-def]
    value = await probe()
    return value if value >= n else None


async def _equal(probe, n):  # type: ignore[no-untyped-def]
    return (await probe()) == n
