"""The consumer loop.

For each record of a ``getmany`` batch: decode and validate it (poison goes to ``<topic>.dlq``),
then, in one database transaction, record it in the inbox, run its handler and write the outbox
rows the handler emitted. Offsets (``record.offset + 1``) are committed to Kafka only after the
database commit, once per batch. A redelivered record finds its inbox row and has no effect.

Errors:
- retriable (database or broker down, deadlock): the same record is retried with capped backoff,
  never skipped, until it succeeds or the partition is revoked or the service stops;
- poison: dead-lettered with the reason in headers, then the loop carries on;
- anything else (a bug): retried a few times in case it was transient, then dead-lettered as
  ``handler_failed`` so one bad record cannot stall its partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from sagakit.backoff import backoff_delay, sleep_unless
from sagakit.db.unit_of_work import UnitOfWork, is_retriable_db_error
from sagakit.errors import (
    BrokerUnavailable,
    HandlerFailed,
    PoisonMessage,
    SagaError,
    UnexpectedMessage,
)
from sagakit.messaging.envelope import Envelope, decode_headers
from sagakit.messaging.producer import Producer
from sagakit.messaging.registry import Message, MessageRegistry
from sagakit.ops import metrics

log = logging.getLogger(__name__)

Handler = Callable[[Envelope[Any], UnitOfWork], Awaitable[None]]


class DLQ:
    """Header names added to a dead-lettered record (the original headers are kept)."""

    ERROR_CODE = "dlq-error-code"
    REASON = "dlq-reason"
    ORIGINAL_TOPIC = "dlq-original-topic"
    ORIGINAL_PARTITION = "dlq-original-partition"
    ORIGINAL_OFFSET = "dlq-original-offset"
    CONSUMER_GROUP = "dlq-consumer-group"
    FAILED_AT = "dlq-failed-at"
    # Only on the orchestrator's alert for a compensation out of attempts (not a consumer's).
    SAGA_STATUS = "dlq-saga-status"


class _Abandoned(Exception):
    """The record's partition was revoked or the service is stopping: leave it uncommitted."""


class Consumer:
    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        registry: MessageRegistry,
        handlers: Mapping[str, Handler] | None = None,
        uow_factory: Callable[[], UnitOfWork],
        producer: Producer,
        client_id: str | None = None,
        max_records: int = 500,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 5.0,
        handler_max_attempts: int = 5,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._group_id = group_id
        self._client_id = client_id or group_id
        self._topics = list(topics)
        self._registry = registry
        self._handlers = dict(handlers or {})
        self._uow_factory = uow_factory
        self._producer = producer
        self._max_records = max_records
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._handler_max_attempts = handler_max_attempts

        self._kafka: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._batch_lock = asyncio.Lock()  # held while a batch is processed and committed
        self._revoking: set[TopicPartition] = set()
        self.started = asyncio.Event()
        self.processed = 0

    def handle(self, handlers: Mapping[str, Handler]) -> None:
        """Add handlers by message type (before ``run()``)."""
        self._handlers.update(handlers)

    # --- lifecycle ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Join the group (retrying while the broker is down) and consume until ``stop()``."""
        await self._start_with_retry()
        try:
            while not self._stopping.is_set():
                await self._poll_once()
        finally:
            await self._close()

    def stop(self) -> None:
        """Stop fetching; the record in hand finishes, and what is done is committed."""
        self._stopping.set()

    async def is_ready(self) -> bool:
        return self._kafka is not None and self.started.is_set()

    async def _start_with_retry(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            kafka = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap_servers,
                group_id=self._group_id,
                client_id=self._client_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self._max_records,
            )
            try:
                await kafka.start()
                kafka.subscribe(self._topics, listener=_RebalanceListener(self))
            except KafkaError as exc:
                await kafka.stop()
                attempt += 1
                delay = backoff_delay(attempt, base=0.5, cap=self._backoff_cap_s)
                log.warning(
                    "consumer %s: broker unavailable (%s), retry in %.1fs",
                    self._group_id,
                    exc,
                    delay,
                )
                await self._sleep(delay)
                continue
            self._kafka = kafka
            self.started.set()
            log.info("consumer %s subscribed to %s", self._group_id, ", ".join(self._topics))
            return

    async def _close(self) -> None:
        if self._kafka is not None:
            kafka, self._kafka = self._kafka, None
            self.started.clear()
            await kafka.stop()

    # --- the loop -------------------------------------------------------------------------------

    async def _poll_once(self) -> None:
        assert self._kafka is not None
        batch = await self._kafka.getmany(timeout_ms=500, max_records=self._max_records)
        if not batch:
            return
        async with self._batch_lock:
            done: dict[TopicPartition, int] = {}
            assigned = self._kafka.assignment()
            try:
                # Partitions are independent (order only matters within one), so they are
                # processed concurrently, each strictly in order.
                await asyncio.gather(
                    *(
                        self._process_partition(tp, records, done)
                        for tp, records in batch.items()
                        if tp in assigned and tp not in self._revoking
                    )
                )
            finally:
                await self._commit(done)

    async def _process_partition(
        self,
        tp: TopicPartition,
        records: list[ConsumerRecord[Any, Any]],
        done: dict[TopicPartition, int],
    ) -> None:
        for record in records:
            if self._stopping.is_set():
                return
            try:
                await self._process(tp, record)
            except _Abandoned:
                return
            done[tp] = record.offset + 1

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        if not offsets or self._kafka is None:
            return
        try:
            await self._kafka.commit(offsets)
        except KafkaError as exc:
            # Safe to lose: the records are redelivered and their inbox rows discard them.
            log.warning(
                "consumer %s: offset commit failed (%s); records will be redelivered "
                "and deduplicated",
                self._group_id,
                exc,
            )

    async def _process(self, tp: TopicPartition, record: ConsumerRecord[Any, Any]) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                envelope = Envelope.from_record(record.headers, record.value, self._registry)
                outcome = await self._handle(envelope, record)
            except PoisonMessage as exc:
                await self._dead_letter(tp, record, exc)
                return
            except Exception as exc:  # classified below: retry, or dead-letter a persistent bug
                attempt += 1
                if not _is_retriable(exc) and (
                    isinstance(exc, SagaError) or attempt >= self._handler_max_attempts
                ):
                    log.exception(
                        "consumer %s: record %s:%d@%d failed %d time(s); dead-lettering it",
                        self._group_id,
                        tp.topic,
                        tp.partition,
                        record.offset,
                        attempt,
                    )
                    await self._dead_letter(
                        tp, record, HandlerFailed(f"{type(exc).__name__}: {exc}")
                    )
                    return
                code = exc.code if isinstance(exc, SagaError) else type(exc).__name__
                metrics.HANDLER_RETRIES.labels(tp.topic, code).inc()
                delay = backoff_delay(attempt, base=self._backoff_base_s, cap=self._backoff_cap_s)
                log.warning(
                    "consumer %s: %s on %s:%d@%d (attempt %d), retry in %.2fs",
                    self._group_id,
                    exc,
                    tp.topic,
                    tp.partition,
                    record.offset,
                    attempt,
                    delay,
                )
                await self._pause(tp, delay)
                continue
            metrics.MESSAGES_CONSUMED.labels(tp.topic, envelope.message_type, outcome).inc()
            metrics.HANDLER_SECONDS.labels(envelope.message_type).observe(
                time.perf_counter() - started
            )
            self.processed += 1
            return

    async def _handle(self, envelope: Envelope[Message], record: ConsumerRecord[Any, Any]) -> str:
        handler = self._handlers.get(envelope.message_type)
        if handler is None:
            raise UnexpectedMessage(
                f"{envelope.message_type!r} is not handled by consumer group {self._group_id!r}"
            )
        async with self._uow_factory() as uow:
            fresh = await uow.record_inbox(
                envelope, topic=record.topic, partition=record.partition, offset=record.offset
            )
            if not fresh:
                return "duplicate"
            await handler(envelope, uow)
            await uow.commit()
        return "handled"

    async def _dead_letter(
        self, tp: TopicPartition, record: ConsumerRecord[Any, Any], error: SagaError
    ) -> None:
        headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq-")]
        headers += [
            (DLQ.ERROR_CODE, error.code.encode()),
            (DLQ.REASON, str(error)[:4000].encode()),
            (DLQ.ORIGINAL_TOPIC, record.topic.encode()),
            (DLQ.ORIGINAL_PARTITION, str(record.partition).encode()),
            (DLQ.ORIGINAL_OFFSET, str(record.offset).encode()),
            (DLQ.CONSUMER_GROUP, self._group_id.encode()),
            (DLQ.FAILED_AT, str(time.time()).encode()),
        ]
        dlq_topic = f"{record.topic}.dlq"
        attempt = 0
        while True:
            try:
                await self._producer.send_raw(
                    dlq_topic, key=record.key, value=record.value, headers=headers
                )
                break
            except BrokerUnavailable as exc:
                attempt += 1
                delay = backoff_delay(attempt, base=self._backoff_base_s, cap=self._backoff_cap_s)
                log.warning(
                    "consumer %s: cannot dead-letter to %s (%s), retry in %.2fs",
                    self._group_id,
                    dlq_topic,
                    exc,
                    delay,
                )
                await self._pause(tp, delay)
        message_type = _header(record, "message-type") or "<none>"
        log.warning(
            "consumer %s: dead-lettered %s:%d@%d (%s) to %s: %s",
            self._group_id,
            record.topic,
            record.partition,
            record.offset,
            message_type,
            dlq_topic,
            error,
        )
        metrics.MESSAGES_DEAD_LETTERED.labels(record.topic, error.code).inc()
        metrics.MESSAGES_CONSUMED.labels(record.topic, message_type, "dead_lettered").inc()

    async def _pause(self, tp: TopicPartition, delay: float) -> None:
        """Back off before a retry, unless the partition is being revoked or we are stopping."""
        await self._sleep(delay)
        if self._stopping.is_set() or tp in self._revoking:
            raise _Abandoned

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless(self._stopping, seconds)


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions are taken away, let the batch in hand finish and commit."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._consumer._revoking.update(revoked)
        async with self._consumer._batch_lock:
            pass  # the loop commits its offsets before releasing the lock

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._consumer._revoking.clear()
        if assigned:
            log.info(
                "consumer %s assigned %s",
                self._consumer._group_id,
                ", ".join(sorted(f"{tp.topic}:{tp.partition}" for tp in assigned)),
            )


def _is_retriable(exc: BaseException) -> bool:
    if isinstance(exc, SagaError):
        return exc.retriable
    return is_retriable_db_error(exc) or (isinstance(exc, KafkaError) and bool(exc.retriable))


def _header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    try:
        return decode_headers(record.headers).get(name)
    except PoisonMessage:
        return None
