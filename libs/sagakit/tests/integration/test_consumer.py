"""The consumer loop: poison to the DLQ, retries without skipping, redelivery without effect."""

import uuid

import orjson
import pytest
from sqlalchemy import text

from sagakit.consumer import DLQ
from sagakit.errors import DatabaseUnavailable
from sagakit.messaging.envelope import Envelope, H
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.testing.kafka import read_topic
from sagakit.testing.messages import DoThing
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
async def effects(session_factory):
    """A table the test handler writes to: its rows are the handler's side effects."""
    async with session_factory() as session:
        await session.execute(
            text("CREATE TABLE IF NOT EXISTS test_effects (message_id uuid, name text)")
        )
        await session.execute(text("TRUNCATE test_effects"))
        await session.commit()

    async def rows() -> list[tuple[uuid.UUID, str]]:
        async with session_factory() as session:
            result = await session.execute(text("SELECT message_id, name FROM test_effects"))
            return [tuple(r) for r in result]

    return rows


async def record_effect(envelope: Envelope[DoThing], uow: UnitOfWork) -> None:
    await uow.conn.execute(
        "INSERT INTO test_effects VALUES ($1, $2)", envelope.message_id, envelope.payload.name
    )


def headers_of(envelope: Envelope[DoThing], **replace: bytes | None) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for name, value in envelope.headers():
        if name in replace:
            replacement = replace[name]
            if replacement is not None:
                out.append((name, replacement))
        else:
            out.append((name, value))
    return out


async def test_poison_goes_to_the_dlq_with_its_reason_and_the_next_record_is_processed(
    kafka_bootstrap, new_topic, session_factory, database, effects
) -> None:
    topic = await new_topic(partitions=1)  # one partition: the good record is behind the poison
    saga = uuid.uuid4()
    good = Envelope(payload=DoThing(name="after-poison", amount=1), saga_id=saga)
    template = Envelope(payload=DoThing(name="poison", amount=1), saga_id=saga)
    poison = [
        ("undecodable", headers_of(template), b"\x00\xffgarbage"),
        ("invalid_message", headers_of(template), orjson.dumps({"name": 5})),
        (
            "unknown_message_type",
            headers_of(template, **{H.MESSAGE_TYPE: b"NoSuchType"}),
            template.value(),
        ),
        ("missing_header", headers_of(template, **{H.MESSAGE_ID: None}), template.value()),
    ]
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(kafka_bootstrap, topic, {"DoThing": record_effect}, database, producer),
    ):
        for _, headers, value in poison:
            await producer.send_raw(topic, key=str(saga).encode(), value=value, headers=headers)
        await producer.publish(topic, good)
        await eventually(effects, what="the good record's effect")

    assert await effects() == [(good.message_id, "after-poison")]
    dead = await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=len(poison))
    assert len(dead) == len(poison)
    for record, (code, _, value) in zip(dead, poison, strict=True):
        meta = {k: v.decode() for k, v in record.headers}
        assert meta[DLQ.ERROR_CODE] == code
        assert meta[DLQ.REASON]
        assert meta[DLQ.ORIGINAL_TOPIC] == topic
        assert meta[DLQ.ORIGINAL_PARTITION] == "0"
        assert record.value == value  # the original bytes, untouched
    assert [int(dict(r.headers)[DLQ.ORIGINAL_OFFSET]) for r in dead] == [0, 1, 2, 3]


async def test_a_redelivered_message_has_no_second_effect(
    kafka_bootstrap, new_topic, session_factory, database, effects
) -> None:
    topic = await new_topic()
    message = Envelope(payload=DoThing(name="once", amount=1), saga_id=uuid.uuid4())
    marker = Envelope(payload=DoThing(name="marker", amount=1), saga_id=message.saga_id)
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(
            kafka_bootstrap, topic, {"DoThing": record_effect}, database, producer
        ) as consumer,
    ):
        for _ in range(3):  # the same message id three times, as a redelivery would
            await producer.publish(topic, message)
        await producer.publish(topic, marker)
        await eventually(lambda: _count(effects, 2), what="both effects")
        await eventually(lambda: _ge(consumer, 4), what="all four records consumed")

    assert sorted(name for _, name in await effects()) == ["marker", "once"]


async def test_a_retriable_error_is_retried_without_skipping_the_record(
    kafka_bootstrap, new_topic, session_factory, database, effects
) -> None:
    topic = await new_topic(partitions=1)
    failures = {"left": 3}

    async def flaky(envelope: Envelope[DoThing], uow: UnitOfWork) -> None:
        await record_effect(envelope, uow)  # written, then rolled back by the failure
        if envelope.payload.name == "flaky" and failures["left"] > 0:
            failures["left"] -= 1
            raise DatabaseUnavailable("simulated outage")

    saga = uuid.uuid4()
    first = Envelope(payload=DoThing(name="flaky", amount=1), saga_id=saga)
    second = Envelope(payload=DoThing(name="second", amount=1), saga_id=saga)
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(kafka_bootstrap, topic, {"DoThing": flaky}, database, producer),
    ):
        await producer.publish(topic, first)
        await producer.publish(topic, second)
        await eventually(lambda: _count(effects, 2), what="both effects")

    assert failures["left"] == 0
    assert [name for _, name in await effects()] == ["flaky", "second"]  # order kept
    assert await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=1, timeout=1) == []


async def test_a_handler_that_keeps_failing_is_dead_lettered_and_the_partition_moves_on(
    kafka_bootstrap, new_topic, session_factory, database, effects
) -> None:
    topic = await new_topic(partitions=1)

    async def buggy(envelope: Envelope[DoThing], uow: UnitOfWork) -> None:
        if envelope.payload.name == "bug":
            raise KeyError("a bug in the handler")
        await record_effect(envelope, uow)

    saga = uuid.uuid4()
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(
            kafka_bootstrap,
            topic,
            {"DoThing": buggy},
            database,
            producer,
            handler_max_attempts=3,
        ),
    ):
        await producer.publish(topic, Envelope(payload=DoThing(name="bug", amount=1), saga_id=saga))
        await producer.publish(topic, Envelope(payload=DoThing(name="ok", amount=1), saga_id=saga))
        await eventually(effects, what="the record after the bug")

    [dead] = await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=1)
    meta = {k: v.decode() for k, v in dead.headers}
    assert meta[DLQ.ERROR_CODE] == "handler_failed"
    assert "KeyError" in meta[DLQ.REASON]


async def test_offsets_are_committed_so_a_new_consumer_starts_after_the_done_work(
    kafka_bootstrap, new_topic, session_factory, database, effects
) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    topic = await new_topic(partitions=1)
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(
            kafka_bootstrap, topic, {"DoThing": record_effect}, database, producer
        ) as consumer,
    ):
        for i in range(5):
            await producer.publish(
                topic, Envelope(payload=DoThing(name=f"m{i}", amount=i), saga_id=uuid.uuid4())
            )
        await eventually(lambda: _count(effects, 5), what="five effects")
        group = consumer._group_id
    probe = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await probe.start()
    try:
        assert await probe.committed(TopicPartition(topic, 0)) == 5
    finally:
        await probe.stop()


async def _count(rows, n: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(len(await rows()) >= n)


async def _ge(consumer, n: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(consumer.processed >= n)  # handled and duplicates both count
