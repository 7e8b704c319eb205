"""The transactional outbox: nothing leaves unless its transaction committed, and in order."""

import asyncio
import time
import uuid

import pytest
from sqlalchemy import func, select

from sagakit.errors import BrokerUnavailable
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.producer import Producer
from sagakit.outbox.dispatcher import Dispatcher
from sagakit.outbox.tables import OutboxMessage
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.testing.kafka import read_topic
from sagakit.testing.messages import DoThing
from sagakit.testing.runners import running_producer, running_relay
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration


async def pending(session_factory) -> int:  # type: ignore[no-untyped-def]
    async with session_factory() as session:
        return int(
            (await session.execute(select(func.count()).select_from(OutboxMessage))).scalar_one()
        )


async def test_a_rolled_back_transaction_publishes_nothing_and_a_committed_one_exactly_its_rows(
    kafka_bootstrap, new_topic, session_factory, database, sagatest_url
) -> None:
    topic = await new_topic()
    saga = uuid.uuid4()
    rolled_back = [
        Envelope(payload=DoThing(name=f"rb{i}", amount=i), saga_id=saga) for i in range(3)
    ]
    committed = [Envelope(payload=DoThing(name=f"ok{i}", amount=i), saga_id=saga) for i in range(5)]

    async with UnitOfWork(database) as uow:
        for env in rolled_back:
            uow.emit(topic, env)
        # leaving without commit() rolls back

    async def fail_before_commit() -> None:
        async with UnitOfWork(database) as uow:
            for env in rolled_back:
                uow.emit(topic, env)
            raise RuntimeError("handler failed before commit")

    with pytest.raises(RuntimeError):
        await fail_before_commit()
    async with UnitOfWork(database) as uow:
        for env in committed:
            uow.emit(topic, env)
        await uow.commit()

    async with running_producer(kafka_bootstrap) as producer, running_relay(sagatest_url, producer):
        await eventually(lambda: _zero(session_factory), what="outbox drained")

    records = await read_topic(kafka_bootstrap, topic, expected=len(committed) + 1, timeout=3)
    ids = [dict(r.headers)["message-id"].decode() for r in records]
    assert ids == [str(e.message_id) for e in committed]  # exactly these, in commit order
    assert {r.key for r in records} == {str(saga).encode()}


async def test_the_relay_publishes_within_milliseconds_of_the_commit(
    kafka_bootstrap, new_topic, session_factory, database, sagatest_url
) -> None:
    """NOTIFY wakes the relay: with a 5 s safety poll, delivery must not wait for the poll."""
    topic = await new_topic()
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_relay(sagatest_url, producer) as relay,
    ):
        await eventually(lambda: _true(relay.is_leader), what="relay leadership")
        await asyncio.sleep(0.2)  # let the relay settle into its wait
        started = time.perf_counter()
        async with UnitOfWork(database) as uow:
            uow.emit(topic, Envelope(payload=DoThing(name="fast", amount=1), saga_id=uuid.uuid4()))
            await uow.commit()
        await eventually(lambda: _zero(session_factory), interval=0.005, what="published")
        elapsed = time.perf_counter() - started
    assert elapsed < 2.5, f"relay waited for its poll ({elapsed:.3f}s), not for NOTIFY"
    print(f"commit -> published and deleted in {elapsed * 1000:.1f} ms")


async def test_only_one_relay_publishes_while_several_run(
    kafka_bootstrap, new_topic, session_factory, database, sagatest_url
) -> None:
    topic = await new_topic()
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_relay(sagatest_url, producer, "shared") as first,
        running_relay(sagatest_url, producer, "shared") as second,
    ):
        await eventually(lambda: _true(first.is_leader or second.is_leader), what="a leader")
        await asyncio.sleep(0.5)
        assert first.is_leader != second.is_leader
        async with UnitOfWork(database) as uow:
            for i in range(20):
                uow.emit(
                    topic,
                    Envelope(payload=DoThing(name=f"m{i}", amount=i), saga_id=uuid.uuid4()),
                )
            await uow.commit()
        await eventually(lambda: _zero(session_factory), what="outbox drained")
        leader, standby = (first, second) if first.is_leader else (second, first)
        assert (leader.published, standby.published) == (20, 0)

        # The leader goes away: the standby takes over and publishes what comes next.
        leader.stop()
        await eventually(lambda: _true(standby.is_leader), timeout=10, what="failover")
        async with UnitOfWork(database) as uow:
            uow.emit(topic, Envelope(payload=DoThing(name="after", amount=0), saga_id=uuid.uuid4()))
            await uow.commit()
        await eventually(lambda: _zero(session_factory), what="drained after failover")
        assert standby.published == 1
    records = await read_topic(kafka_bootstrap, topic, expected=22, timeout=3)
    assert len(records) == 21


async def _zero(session_factory) -> bool:  # type: ignore[no-untyped-def]
    return await pending(session_factory) == 0


async def _true(value: bool) -> bool:
    return value


async def test_a_committed_message_is_published_at_once_by_its_own_process_then_deleted(
    kafka_bootstrap, new_topic, session_factory, database
) -> None:
    topic = await new_topic(partitions=1)
    sent = [
        Envelope(payload=DoThing(name=f"d{i}", amount=i), saga_id=uuid.uuid4()) for i in range(5)
    ]
    async with running_producer(kafka_bootstrap) as producer:
        dispatcher = Dispatcher(database, producer, name="test", delete_interval_s=0.01)
        deleting = asyncio.create_task(dispatcher.run())
        async with UnitOfWork(database, dispatcher) as uow:
            for envelope in sent:
                uow.emit(topic, envelope)
            await uow.commit()
        records = await read_topic(kafka_bootstrap, topic, expected=5, timeout=10)
        await eventually(lambda: _zero(session_factory), what="dispatched rows deleted")
        dispatcher.stop()
        await deleting
    # In commit order, no relay involved.
    assert [dict(r.headers)["message-id"].decode() for r in records] == [
        str(e.message_id) for e in sent
    ]


class BrokerAway(Producer):
    """A producer whose broker never acknowledges."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", client_id="away")

    async def enqueue(self, records):  # type: ignore[no-untyped-def]
        raise BrokerUnavailable("simulated: the broker is away")


async def test_a_message_the_dispatcher_could_not_publish_is_published_by_the_relay(
    kafka_bootstrap, new_topic, session_factory, database, sagatest_url
) -> None:
    topic = await new_topic()
    envelope = Envelope(payload=DoThing(name="late", amount=1), saga_id=uuid.uuid4())
    async with UnitOfWork(database, Dispatcher(database, BrokerAway(), name="away")) as uow:
        uow.emit(topic, envelope)
        await uow.commit()  # committed; its dispatch failed, which the caller never sees
    assert await pending(session_factory) == 1
    async with running_producer(kafka_bootstrap) as producer, running_relay(sagatest_url, producer):
        await eventually(lambda: _zero(session_factory), what="the relay published the row")
    [record] = await read_topic(kafka_bootstrap, topic, expected=1, timeout=10)
    assert dict(record.headers)["message-id"].decode() == str(envelope.message_id)
