"""Run the real producer, consumer and outbox relay inside a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

from sagakit.consumer import BatchHandler, Consumer, Handler
from sagakit.db.pool import Database
from sagakit.messaging.kafka_clients import PLAINTEXT, KafkaSecurity
from sagakit.messaging.producer import Producer
from sagakit.messaging.registry import MessageRegistry
from sagakit.outbox.relay import OutboxRelay
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.testing.kafka import unique_name
from sagakit.testing.messages import registry as test_registry
from sagakit.testing.waiting import eventually


@contextlib.asynccontextmanager
async def running_producer(
    bootstrap: str, *, security: KafkaSecurity = PLAINTEXT
) -> AsyncIterator[Producer]:
    producer = Producer(bootstrap, client_id="test", security=security)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def running_consumer(
    bootstrap: str,
    topic: str,
    handlers: Mapping[str, Handler],
    database: Database,
    producer: Producer,
    registry: MessageRegistry | None = None,
    *,
    batch_handlers: Mapping[str, BatchHandler] | None = None,
    **options: object,
) -> AsyncIterator[Consumer]:
    """A consumer of ``topic`` running in the background. ``handlers`` are called one record at
    a time; ``batch_handlers`` (by message type) get runs of records, as the services wire them.
    Either way a poll is one transaction."""
    consumer = Consumer(
        bootstrap_servers=bootstrap,
        group_id=unique_name("group"),
        topics=[topic],
        registry=registry or test_registry,
        handlers=handlers,
        uow_factory=lambda: UnitOfWork(database),
        producer=producer,
        backoff_base_s=0.01,
        backoff_cap_s=0.05,
        **options,  # type: ignore[arg-type]
    )
    for message_type, batch_handler in (batch_handlers or {}).items():
        consumer.handle_batches([message_type], batch_handler)
    task = asyncio.create_task(consumer.run())
    await eventually(lambda: _true(consumer.started.is_set()), what="consumer start")
    try:
        yield consumer
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=10)


@contextlib.asynccontextmanager
async def running_relay(
    url: str, producer: Producer, name: str = "test"
) -> AsyncIterator[OutboxRelay]:
    # No dispatcher in these tests: the relay publishes everything, at once.
    relay = OutboxRelay(
        url, producer, name=name, poll_interval_s=0.05, grace_s=0.0, standby_retry_s=0.2
    )
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)


async def _true(value: bool) -> bool:
    return value
