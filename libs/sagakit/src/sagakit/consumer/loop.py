"""The consumer loop, with group commit.

Each ``getmany`` batch is split by partition; partitions are processed concurrently, each strictly
in order. A partition's records are decoded and validated (poison goes to ``<topic>.dlq``), then
handled together in ONE database transaction: their inbox rows inserted by one statement (a
redelivered id is dropped there), their handlers run one after the other (or one batch handler
takes them all), the outbox rows they emitted written by one statement, one commit. Offsets
(``record.offset + 1``) are committed to Kafka only after the database commit, once per batch.

Errors:
- retriable (database or broker down, deadlock): the same records are retried with capped
  backoff, never skipped, until they succeed or the partition is revoked or the service stops;
- poison: dead-lettered with the reason in headers, then the loop carries on;
- anything else (a bug, or one bad record): the batch is rolled back and its records are handled
  one at a time, each in its own transaction; a record that keeps failing is tried a few times in
  case it was transient, then dead-lettered as ``handler_failed`` so it cannot stall its partition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from sagakit.backoff import backoff_delay, sleep_unless
from sagakit.consumer.dead_letter import dead_letter_headers, dlq_topic, header
from sagakit.db.errors import is_retriable_db_error
from sagakit.errors import (
    BrokerUnavailable,
    HandlerFailed,
    PoisonMessage,
    SagaError,
    UnexpectedMessage,
)
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.producer import Producer
from sagakit.messaging.registry import MessageRegistry
from sagakit.ops import metrics
from sagakit.outbox.store import InboxEntry
from sagakit.outbox.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

Handler = Callable[[Envelope[Any], UnitOfWork], Awaitable[None]]
# Takes consecutive records of its types at once (the orchestrator loads every saga they answer
# with one query). Records of one partition reach it in order.
BatchHandler = Callable[[Sequence[Envelope[Any]], UnitOfWork], Awaitable[None]]
# Runs first in every batch transaction, with the records about to be handled (say, to take
# their row locks in one fixed order).
PrepareHook = Callable[[Sequence[Envelope[Any]], UnitOfWork], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Item:
    record: ConsumerRecord[Any, Any]
    envelope: Envelope[Any]


class _Abandoned(Exception):
    """The partition was revoked or the service is stopping: leave the records uncommitted."""


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
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._group_id = group_id
        self._client_id = client_id or group_id
        self._topics = list(topics)
        self._registry = registry
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._batch_handlers: dict[str, BatchHandler] = {}
        self._prepare: PrepareHook | None = None
        self._uow_factory = uow_factory
        self._producer = producer
        self._max_records = max_records
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._handler_max_attempts = handler_max_attempts
        self._kafka_options = dict(kafka_options or {})
        self._paused_when: dict[str, Callable[[], bool]] = {}

        self._kafka: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._batch_lock = asyncio.Lock()  # held while a batch is processed and committed
        self._revoking: set[TopicPartition] = set()
        self.started = asyncio.Event()
        self.processed = 0

    # --- configuration (before ``run()``) -------------------------------------------------------

    def handle(self, handlers: Mapping[str, Handler]) -> None:
        """Add handlers by message type."""
        self._handlers.update(handlers)

    def handle_batches(self, message_types: Iterable[str], handler: BatchHandler) -> None:
        """One handler for runs of consecutive records of these types (see ``BatchHandler``)."""
        for message_type in message_types:
            self._batch_handlers[message_type] = handler

    def prepare_batches(self, hook: PrepareHook) -> None:
        self._prepare = hook

    def pause_while(self, topic: str, condition: Callable[[], bool]) -> None:
        """Fetch nothing from ``topic`` while ``condition()`` holds (checked before each fetch):
        back pressure, the records wait in Kafka."""
        self._paused_when[topic] = condition

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
        """Stop fetching; the batch in hand finishes, and what is done is committed."""
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
                **self._kafka_options,
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
        self._apply_back_pressure()
        batch = await self._kafka.getmany(timeout_ms=500, max_records=self._max_records)
        if not batch:
            return
        async with self._batch_lock:
            done: dict[TopicPartition, int] = {}
            assigned = self._kafka.assignment()
            try:
                # Partitions are independent (order only matters within one), so they are
                # processed concurrently, each strictly in order and in its own transactions.
                await asyncio.gather(
                    *(
                        self._process_partition(tp, records, done)
                        for tp, records in batch.items()
                        if tp in assigned and tp not in self._revoking
                    )
                )
            finally:
                await self._commit(done)

    def _apply_back_pressure(self) -> None:
        if not self._paused_when or self._kafka is None:
            return
        for tp in self._kafka.assignment():
            condition = self._paused_when.get(tp.topic)
            if condition is None:
                continue
            if condition():
                self._kafka.pause(tp)
            elif tp in self._kafka.paused():
                self._kafka.resume(tp)

    async def _process_partition(
        self,
        tp: TopicPartition,
        records: list[ConsumerRecord[Any, Any]],
        done: dict[TopicPartition, int],
    ) -> None:
        """Handle runs of good records in one transaction each; poison in between goes to the
        DLQ in its place, so the committed offset never passes an unhandled record."""
        run: list[_Item] = []
        try:
            for record in records:
                try:
                    run.append(_Item(record, self._decode(record)))
                    continue
                except PoisonMessage as poison:
                    await self._handle_run(tp, run, done)
                    run = []
                    if self._stopping.is_set():
                        return
                    await self._dead_letter(tp, record, poison)
                    done[tp] = record.offset + 1
            await self._handle_run(tp, run, done)
        except _Abandoned:
            return

    def _decode(self, record: ConsumerRecord[Any, Any]) -> Envelope[Any]:
        envelope = Envelope.from_record(record.headers, record.value, self._registry)
        kind = envelope.message_type
        if kind not in self._handlers and kind not in self._batch_handlers:
            raise UnexpectedMessage(f"{kind!r} is not handled by consumer group {self._group_id!r}")
        return envelope

    async def _handle_run(
        self, tp: TopicPartition, run: list[_Item], done: dict[TopicPartition, int]
    ) -> None:
        if not run or self._stopping.is_set():
            return
        if len(run) == 1 or not await self._handle_together(tp, run):
            for item in run:
                if self._stopping.is_set():
                    return
                await self._handle_alone(tp, item)
                done[tp] = item.record.offset + 1
        done[tp] = run[-1].record.offset + 1

    async def _handle_together(self, tp: TopicPartition, run: list[_Item]) -> bool:
        """All of ``run`` in one transaction, retrying outages; False when a record failed
        otherwise (a bug or a bad record): then each is handled alone."""
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await self._transaction(tp, run)
            except Exception as exc:
                if not _is_retriable(exc):
                    log.warning(
                        "consumer %s: a batch of %d on %s:%d failed (%s: %s); "
                        "handling its records one by one",
                        self._group_id,
                        len(run),
                        tp.topic,
                        tp.partition,
                        type(exc).__name__,
                        exc,
                    )
                    return False
                attempt += 1
                await self._retry_later(tp, run[0].record, exc, attempt)
                continue
            metrics.BATCH_SECONDS.labels(tp.topic).observe(time.perf_counter() - started)
            return True

    async def _handle_alone(self, tp: TopicPartition, item: _Item) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await self._transaction(tp, [item])
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
                        item.record.offset,
                        attempt,
                    )
                    await self._dead_letter(
                        tp, item.record, HandlerFailed(f"{type(exc).__name__}: {exc}")
                    )
                    return
                await self._retry_later(tp, item.record, exc, attempt)
                continue
            metrics.BATCH_SECONDS.labels(tp.topic).observe(time.perf_counter() - started)
            return

    async def _transaction(self, tp: TopicPartition, run: Sequence[_Item]) -> None:
        """The records' inbox rows, their handlers and their outbox rows: one commit."""
        async with self._uow_factory() as uow:
            fresh_ids = await uow.record_inbox_many(
                [
                    InboxEntry(
                        i.envelope.message_id,
                        i.envelope.message_type,
                        tp.topic,
                        tp.partition,
                        i.record.offset,
                    )
                    for i in run
                ]
            )
            fresh: list[Envelope[Any]] = []
            for item in run:
                message_id = item.envelope.message_id
                if message_id in fresh_ids:
                    fresh_ids.discard(message_id)  # a second copy in this run is a duplicate
                    fresh.append(item.envelope)
                else:
                    metrics.MESSAGES_CONSUMED.labels(
                        tp.topic, item.envelope.message_type, "duplicate"
                    ).inc()
            if fresh:
                if self._prepare is not None:
                    await self._prepare(fresh, uow)
                for chunk, batch_handler in _runs_by_handler(fresh, self._batch_handlers):
                    if batch_handler is not None:
                        await batch_handler(chunk, uow)
                    else:
                        for envelope in chunk:
                            await self._handlers[envelope.message_type](envelope, uow)
            await uow.commit()
        for envelope in fresh:
            metrics.MESSAGES_CONSUMED.labels(tp.topic, envelope.message_type, "handled").inc()
        metrics.BATCH_RECORDS.labels(tp.topic).observe(len(run))
        self.processed += len(run)

    async def _retry_later(
        self, tp: TopicPartition, record: ConsumerRecord[Any, Any], exc: Exception, attempt: int
    ) -> None:
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

    async def _dead_letter(
        self, tp: TopicPartition, record: ConsumerRecord[Any, Any], error: SagaError
    ) -> None:
        headers = dead_letter_headers(record, error, self._group_id)
        topic = dlq_topic(record.topic)
        attempt = 0
        while True:
            try:
                await self._producer.send_raw(
                    topic, key=record.key, value=record.value, headers=headers
                )
                break
            except BrokerUnavailable as exc:
                attempt += 1
                delay = backoff_delay(attempt, base=self._backoff_base_s, cap=self._backoff_cap_s)
                log.warning(
                    "consumer %s: cannot dead-letter to %s (%s), retry in %.2fs",
                    self._group_id,
                    topic,
                    exc,
                    delay,
                )
                await self._pause(tp, delay)
        message_type = header(record, "message-type") or "<none>"
        log.warning(
            "consumer %s: dead-lettered %s:%d@%d (%s) to %s: %s",
            self._group_id,
            record.topic,
            record.partition,
            record.offset,
            message_type,
            topic,
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


def _runs_by_handler(
    envelopes: Sequence[Envelope[Any]], batch_handlers: Mapping[str, BatchHandler]
) -> list[tuple[list[Envelope[Any]], BatchHandler | None]]:
    """Consecutive envelopes grouped by their batch handler (None: one handler per record)."""
    runs: list[tuple[list[Envelope[Any]], BatchHandler | None]] = []
    for envelope in envelopes:
        handler = batch_handlers.get(envelope.message_type)
        if runs and runs[-1][1] is handler:
            runs[-1][0].append(envelope)
        else:
            runs.append(([envelope], handler))
    return runs


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
