"""A crash between each database commit and the Kafka step that follows it loses nothing and
doubles nothing:

- after the handler's commit, before the relay publishes: the rows wait in the outbox and are
  published when a relay runs again;
- after Kafka acknowledged, before the relay deleted the rows: they are published again with
  the same message ids, and the consumer's inbox drops the copies;
- after the handler's commit, before the offset commit: the record is redelivered and its inbox
  row makes it a no-op.
"""

import uuid
from collections.abc import Sequence

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import text

from sagakit.consumer import Consumer
from sagakit.errors import BrokerUnavailable
from sagakit.messaging.envelope import Envelope, Headers
from sagakit.messaging.producer import Producer
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.testing.kafka import read_topic
from sagakit.testing.messages import DoThing
from sagakit.testing.runners import running_consumer, running_producer, running_relay
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def effects(session_factory):  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        await session.execute(
            text("CREATE TABLE IF NOT EXISTS crash_effects (message_id uuid, name text)")
        )
        await session.execute(text("TRUNCATE crash_effects"))
        await session.commit()

    async def rows() -> list[str]:
        async with session_factory() as session:
            result = await session.execute(text("SELECT name FROM crash_effects ORDER BY name"))
            return [r[0] for r in result]

    return rows


async def record_effect(envelope: Envelope[DoThing], uow: UnitOfWork) -> None:
    await uow.conn.execute(
        "INSERT INTO crash_effects VALUES ($1, $2)", envelope.message_id, envelope.payload.name
    )


async def outbox_rows(session_factory) -> int:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        return int((await session.execute(text("SELECT count(*) FROM outbox"))).scalar_one())


async def test_a_crash_after_the_commit_and_before_the_publish_loses_nothing(
    kafka_bootstrap, new_topic, session_factory, database, sagatest_url
) -> None:
    topic = await new_topic()
    sent = [
        Envelope(payload=DoThing(name=f"m{i}", amount=i), saga_id=uuid.uuid4()) for i in range(3)
    ]
    async with UnitOfWork(database) as uow:
        for envelope in sent:
            uow.emit(topic, envelope)
        await uow.commit()
    # The process dies here: no relay ran. The rows are durable...
    assert await outbox_rows(session_factory) == 3
    # ...and the relay of the restarted process publishes them.
    async with running_producer(kafka_bootstrap) as producer, running_relay(sagatest_url, producer):
        await eventually(lambda: _zero(session_factory), what="outbox drained")
    records = await read_topic(kafka_bootstrap, topic, expected=4, timeout=3)
    assert sorted(dict(r.headers)["message-id"].decode() for r in records) == sorted(
        str(e.message_id) for e in sent
    )


class AcknowledgedThenCrashed(Producer):
    """Kafka acknowledges the batch, then the relay "dies" before deleting its outbox rows."""

    def __init__(self, inner: Producer, crashes: int) -> None:
        self._inner = inner
        self.crashes = crashes

    async def send_many(
        self, records: Sequence[tuple[str, bytes | None, bytes | None, Headers]]
    ) -> None:
        await self._inner.send_many(records)
        if self.crashes > 0:
            self.crashes -= 1
            raise BrokerUnavailable("simulated crash after the broker acknowledged")


async def test_a_crash_after_the_publish_and_before_the_delete_doubles_nothing(
    kafka_bootstrap, new_topic, session_factory, database, sagatest_url, effects
) -> None:
    topic = await new_topic()
    sent = [
        Envelope(payload=DoThing(name=f"m{i}", amount=i), saga_id=uuid.uuid4()) for i in range(3)
    ]
    async with UnitOfWork(database) as uow:
        for envelope in sent:
            uow.emit(topic, envelope)
        await uow.commit()
    async with running_producer(kafka_bootstrap) as real:
        crashing = AcknowledgedThenCrashed(real, crashes=1)
        async with running_relay(sagatest_url, crashing):  # type: ignore[arg-type]
            await eventually(lambda: _zero(session_factory), timeout=20, what="drained")
        assert crashing.crashes == 0
        records = await read_topic(kafka_bootstrap, topic, expected=7, timeout=3)
        assert len(records) == 6  # every message twice: at least once, as designed
        async with running_consumer(
            kafka_bootstrap, topic, {"DoThing": record_effect}, database, real
        ) as consumer:
            await eventually(lambda: _processed(consumer, 6), what="all six consumed")
    assert await effects() == ["m0", "m1", "m2"]  # ...and effectively once


class CrashBeforeOffsetCommit(Consumer):
    """Commits the handler's transaction, then dies before committing the Kafka offset."""

    async def _commit(self, offsets):  # type: ignore[no-untyped-def]
        raise KafkaConnectionError("simulated crash before the offset commit")


async def test_a_crash_after_the_commit_and_before_the_offset_commit_doubles_nothing(
    kafka_bootstrap, new_topic, session_factory, database, effects
) -> None:
    from sagakit.testing.messages import registry

    topic = await new_topic(partitions=1)
    group = f"crash-{uuid.uuid4().hex[:8]}"
    async with running_producer(kafka_bootstrap) as producer:
        for i in range(3):
            await producer.publish(
                topic, Envelope(payload=DoThing(name=f"m{i}", amount=i), saga_id=uuid.uuid4())
            )

        def consumer(cls: type[Consumer]) -> Consumer:
            return cls(
                bootstrap_servers=kafka_bootstrap,
                group_id=group,
                topics=[topic],
                registry=registry,
                handlers={"DoThing": record_effect},
                uow_factory=lambda: UnitOfWork(database),
                producer=producer,
            )

        import asyncio

        first = consumer(CrashBeforeOffsetCommit)
        task = asyncio.create_task(first.run())
        await eventually(effects, what="the first consumer's effects")
        await eventually(lambda: _processed(first, 3), what="three processed")
        first.stop()
        with pytest.raises(KafkaConnectionError):
            await asyncio.wait_for(task, timeout=10)

        second = consumer(Consumer)  # the restarted process, same group: offsets were lost
        task = asyncio.create_task(second.run())
        await eventually(lambda: _processed(second, 3), what="redelivery consumed")
        second.stop()
        await asyncio.wait_for(task, timeout=10)
    assert await effects() == ["m0", "m1", "m2"]


async def _zero(session_factory) -> bool:  # type: ignore[no-untyped-def]
    return await outbox_rows(session_factory) == 0


async def _processed(consumer: Consumer, n: int) -> bool:
    return consumer.processed >= n
