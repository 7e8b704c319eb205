"""Kafka helpers for tests: fresh topics, and reading a topic from the beginning."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.admin import NewTopic

from sagakit.messaging.kafka_clients import PLAINTEXT, KafkaSecurity, kafka_admin, kafka_consumer

TOPIC_ALREADY_EXISTS = 36  # Kafka's error code: fine, a concurrent creator won

# Every topic (and topic prefix) this test run made: dropped at its end (``drop_created_topics``)
# with the topics derived from them (a service's ``<topic>.dlq``, its auto-created topics), so
# that a developer's broker does not pile up thousands of partitions run after run (they slow it
# down, and its benchmarks).
_created: set[str] = set()


def unique_name(prefix: str = "t") -> str:
    """A fresh topic name, or topic prefix (``name + "."``): what a service creates under it
    by itself (auto-created topics, DLQs) is dropped with it at the end of the run too."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    _created.add(name)
    return name


async def create_topics(
    bootstrap: str,
    names: list[str],
    partitions: int = 3,
    *,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create topics replicated as the cluster's own are: on a cluster of three or more
    brokers three replicas (min.insync.replicas comes from the brokers), else one per broker.
    A failure is raised, never left for auto-creation to paper over."""
    admin = kafka_admin(bootstrap, security)
    await admin.start()
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        replication = max(1, min(3, brokers))
        response = await admin.create_topics(
            [
                NewTopic(name, num_partitions=partitions, replication_factor=replication)
                for name in names
            ]
        )
    finally:
        await admin.close()
    _created.update(names)
    # Each entry is (topic, error_code) or, from v1 on, (topic, error_code, error_message).
    failed = [
        " ".join(str(part) for part in entry if part is not None)
        for entry in response.topic_errors
        if entry[1] not in (0, TOPIC_ALREADY_EXISTS)
    ]
    if failed:
        raise RuntimeError(f"cannot create topics: {'; '.join(failed)}")


def _derived_from_created(topic: str) -> bool:
    parts = topic.split(".")
    return any(".".join(parts[:n]) in _created for n in range(1, len(parts) + 1))


async def drop_created_topics(bootstrap: str, *, chunk: int = 200) -> int:
    """Delete the topics this run created (and their derived ones); returns how many."""
    if not _created:
        return 0
    admin = kafka_admin(bootstrap, PLAINTEXT)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if _derived_from_created(t)]
        for start in range(0, len(doomed), chunk):
            await admin.delete_topics(doomed[start : start + chunk], timeout_ms=30_000)
    finally:
        await admin.close()
    _created.clear()
    return len(doomed)


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expected: int,
    timeout: float = 15.0,
    security: KafkaSecurity = PLAINTEXT,
) -> list[ConsumerRecord[Any, Any]]:
    """Read a topic from the start until ``expected`` records arrived (or the timeout passed)."""
    consumer = kafka_consumer(
        topic,
        bootstrap_servers=bootstrap,
        security=security,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records
