"""The consumer loop, with group commit.

Each ``getmany`` batch is decoded and validated (poison goes to ``<topic>.dlq``), then all its
records are handled together in ONE database transaction: their inbox rows inserted by one
statement (a redelivered id is dropped there), their handlers run (a batch handler takes all the
records of its types at once, each partition's records in order), the outbox rows they emitted
written by one statement, one commit. Offsets (``record.offset + 1``) are committed to Kafka
only after the database commit, at most every ``commit_interval_s`` (and when idle, on a
rebalance, on stop): a handled record whose offset was not committed yet comes again after a
crash, and its inbox row drops it. Partitions are independent, so one transaction
may hold many: fewer round trips and commits, whatever the number of partitions.

Errors:
- retriable (database or broker down, deadlock): the same records are retried with capped
  backoff, never skipped, until they succeed or the partitions are revoked or the service stops;
- poison: dead-lettered with the reason in headers, then the loop carries on;
- anything else (a bug, or one bad record): the transaction is rolled back and the records are
  handled one at a time, each in its own transaction; a record that keeps failing is tried a few
  times in case it was transient, then dead-lettered as ``handler_failed`` so it cannot stall
  its partition.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from opentelemetry.trace import SpanKind

from sagakit.backoff import backoff_delay, sleep_unless
from sagakit.consumer.dead_letter import Replay, dead_letter_headers, header
from sagakit.db.errors import is_retriable_db_error
from sagakit.errors import (
    BrokerUnavailable,
    HandlerFailed,
    PoisonMessage,
    SagaError,
    UnexpectedMessage,
)
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.kafka_clients import PLAINTEXT, KafkaSecurity, check_login, kafka_consumer
from sagakit.messaging.producer import Producer
from sagakit.messaging.registry import MessageRegistry
from sagakit.messaging.tracing import child_traceparent
from sagakit.ops import metrics
from sagakit.ops.logging import log_ids
from sagakit.outbox.store import INBOX_PRIMARY_KEY, InboxEntry
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.settings import Topics
from sagakit.telemetry import record_span, tracing_enabled

log = logging.getLogger(__name__)

Handler = Callable[[Envelope[Any], UnitOfWork], Awaitable[None]]
# Takes consecutive records of its types at once (the orchestrator loads every saga they answer
# with one query). Records of one partition reach it in order.
BatchHandler = Callable[[Sequence[Envelope[Any]], UnitOfWork], Awaitable[None]]
# Told about a record whose handler kept failing with a bug (not an outage, not a bad message)
# just before it is dead-lettered, outside any transaction: the orchestrator parks its saga.
FailureHook = Callable[[Envelope[Any], Exception], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Item:
    tp: TopicPartition
    record: ConsumerRecord[Any, Any]
    envelope: Envelope[Any]
    # Tracing on: the record's own traceparent (its producer span); ``envelope.traceparent``
    # is then its CONSUMER span, chosen before the handler runs.
    produced_in: str | None = None

    def __str__(self) -> str:
        return f"{self.tp.topic}:{self.tp.partition}@{self.record.offset}"


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
        commit_interval_s: float = 0.25,
        linger_s: float = 0.005,
        kafka_options: Mapping[str, Any] | None = None,
        security: KafkaSecurity = PLAINTEXT,
        on_handler_failure: FailureHook | None = None,
    ) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._security = security
        self._group_id = group_id
        self._client_id = client_id or group_id
        self._topics = list(topics)
        self._registry = registry
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._batch_handlers: dict[str, BatchHandler] = {}
        self._uow_factory = uow_factory
        self._producer = producer
        self._max_records = max_records
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._handler_max_attempts = handler_max_attempts
        # Offsets of handled records are committed at most this often (and when idle, on a
        # rebalance, on stop): each commit is a write to Kafka's offsets log, and a record
        # handled but not yet committed only comes again to be dropped by the inbox.
        self._commit_interval_s = commit_interval_s
        self._uncommitted: dict[TopicPartition, int] = {}
        self._committed_at = 0.0
        self._linger_s = linger_s
        self._rate = 0.0  # records per second, recent
        self._rate_at = time.monotonic()
        self._kafka_options = dict(kafka_options or {})
        self._room: dict[str, Callable[[], int]] = {}
        self._on_handler_failure = on_handler_failure

        self._kafka: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._batch_lock = asyncio.Lock()  # held while a batch is processed and committed
        self._revoking: set[TopicPartition] = set()
        self.started = asyncio.Event()
        self.processed = 0
        self._lag_shown: set[tuple[str, str]] = set()

    @property
    def topics(self) -> list[str]:
        return list(self._topics)

    # --- configuration (before ``run()``) -------------------------------------------------------

    def handle(self, handlers: Mapping[str, Handler]) -> None:
        """Add handlers by message type."""
        self._handlers.update(handlers)

    def handle_batches(self, message_types: Iterable[str], handler: BatchHandler) -> None:
        """One handler for runs of consecutive records of these types (see ``BatchHandler``)."""
        for message_type in message_types:
            self._batch_handlers[message_type] = handler

    def when_handler_fails(self, hook: FailureHook) -> None:
        """Call ``hook`` with a record that is about to be dead-lettered because its handler
        kept raising a bug (see ``FailureHook``); an error of the hook is logged, never raised."""
        self._on_handler_failure = hook

    def throttle(self, topic: str, room: Callable[[], int]) -> None:
        """Take at most ``room()`` records of ``topic`` per batch, and fetch none while it is 0:
        back pressure, the others wait in Kafka (the consumer seeks back to them)."""
        self._room[topic] = room

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

    async def lag(self) -> dict[TopicPartition, int]:
        """Per assigned partition, the records not yet taken: the partition's end offset minus
        the consumer's position. The end offsets are asked of the broker (one request: the
        high watermark of the last fetch stands still while a batch takes long, which is when
        the lag matters); without an answer, that last high watermark is used."""
        kafka = self._kafka
        if kafka is None:
            return {}
        assigned = list(kafka.assignment())
        try:
            ends = await asyncio.wait_for(kafka.end_offsets(assigned), timeout=1.0)
        except (TimeoutError, KafkaError):
            ends = {}
        lags = {}
        for tp in assigned:
            try:
                end = ends.get(tp, kafka.highwater(tp))
                if end is None:
                    continue
                position = await asyncio.wait_for(kafka.position(tp), timeout=0.5)
            except (TimeoutError, KafkaError, AssertionError):  # revoked meanwhile
                continue
            lags[tp] = max(0, end - position)
        return lags

    async def refresh_lag_metric(self) -> None:
        """Set ``saga_consumer_lag`` for this group's partitions (scrape time); partitions
        no longer assigned disappear."""
        lags = await self.lag()
        shown = {(tp.topic, str(tp.partition)): lag for tp, lag in lags.items()}
        for topic, partition in self._lag_shown - shown.keys():
            metrics.CONSUMER_LAG.remove(self._group_id, topic, partition)
        for (topic, partition), lag in shown.items():
            metrics.CONSUMER_LAG.labels(self._group_id, topic, partition).set(lag)
        self._lag_shown = set(shown)

    async def _start_with_retry(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            kafka = kafka_consumer(
                bootstrap_servers=self._bootstrap_servers,
                security=self._security,
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
                # A refused login raises KafkaLoginRefused: no retry will help.
                await check_login(self._bootstrap_servers, self._security)
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
            await self._commit_handled(now=True)
            kafka, self._kafka = self._kafka, None
            self.started.clear()
            await kafka.stop()

    # --- the loop -------------------------------------------------------------------------------

    async def _poll_once(self) -> None:
        assert self._kafka is not None
        self._apply_back_pressure()
        fetched = await self._kafka.getmany(timeout_ms=500, max_records=self._max_records)
        if not fetched:
            await self._commit_handled(now=True)
            return
        fetched = await self._gather_more(fetched)
        async with self._batch_lock:
            assigned = self._kafka.assignment()
            batch = self._within_room(
                {
                    tp: records
                    for tp, records in fetched.items()
                    if tp in assigned and tp not in self._revoking
                }
            )
            try:
                await self._process(batch)
            except _Abandoned:
                return  # nothing committed: the records come again, the inbox drops the done ones
            self._uncommitted.update({tp: records[-1].offset + 1 for tp, records in batch.items()})
            await self._commit_handled(now=False)

    async def _gather_more(
        self, fetched: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """Under steady load, wait a moment for more records before handling a small batch:
        a transaction costs the same few round trips for one record or fifty, and smooth load
        otherwise hands every stage one record at a time. Only when more are expected within
        the wait (the recent rate times the wait is at least one record), so an idle system
        waits for nothing."""
        count = sum(len(records) for records in fetched.values())
        now = time.monotonic()
        elapsed = max(now - self._rate_at, 1e-3)
        self._rate = 0.7 * self._rate + 0.3 * (count / elapsed)
        self._rate_at = now
        linger = self._linger_s
        if (
            not linger
            or count >= self._max_records
            or self._rate * linger < 1
            or self._kafka is None
        ):
            return fetched
        await asyncio.sleep(linger)
        more = await self._kafka.getmany(timeout_ms=0, max_records=self._max_records - count)
        for tp, records in more.items():
            fetched.setdefault(tp, []).extend(records)
        self._rate_at = time.monotonic()
        return fetched

    def _apply_back_pressure(self) -> None:
        if not self._room or self._kafka is None:
            return
        for tp in self._kafka.assignment():
            room = self._room.get(tp.topic)
            if room is None:
                continue
            if room() <= 0:
                self._kafka.pause(tp)
            elif tp in self._kafka.paused():
                self._kafka.resume(tp)

    def _within_room(
        self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        """Throttled topics' records cut to their room; the consumer goes back to the first
        record cut, so it is fetched again (nothing past it is committed)."""
        if not self._room or self._kafka is None:
            return batch
        budgets = {topic: room() for topic, room in self._room.items()}
        kept = {}
        for tp, records in batch.items():
            if tp.topic not in budgets:
                kept[tp] = records
                continue
            take = max(0, min(len(records), budgets[tp.topic]))
            budgets[tp.topic] -= take
            if take < len(records):
                self._kafka.seek(tp, records[take].offset)
            if take:
                kept[tp] = records[:take]
        return kept

    async def _process(self, batch: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        """Every record of the batch handled or dead-lettered, or ``_Abandoned``."""
        items: list[_Item] = []
        traced = tracing_enabled()
        for tp, records in batch.items():  # partition by partition, each in order
            for record in records:
                try:
                    envelope = self._decode(record)
                except PoisonMessage as poison:
                    await self._dead_letter(record, poison)
                    continue
                if traced:  # the handler sees its consumer span: what it emits is a child
                    consumed = child_traceparent(envelope.traceparent)
                    items.append(
                        _Item(
                            tp,
                            record,
                            dataclasses.replace(envelope, traceparent=consumed),
                            envelope.traceparent,
                        )
                    )
                else:
                    items.append(_Item(tp, record, envelope))
        if not items:
            return
        if len(items) > 1 and await self._handle_together(items):
            return
        for item in items:
            if self._stopping.is_set():
                raise _Abandoned
            await self._handle_alone(item)

    def _decode(self, record: ConsumerRecord[Any, Any]) -> Envelope[Any]:
        envelope = Envelope.from_record(record.headers, record.value, self._registry)
        kind = envelope.message_type
        if kind not in self._handlers and kind not in self._batch_handlers:
            raise UnexpectedMessage(f"{kind!r} is not handled by consumer group {self._group_id!r}")
        return envelope

    async def _handle_together(self, items: list[_Item]) -> bool:
        """All of ``items`` in one transaction, retrying outages; False when a record failed
        otherwise (a bug or a bad record): then each is handled alone."""
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await self._transaction(items)
            except Exception as exc:
                if not _is_retriable(exc):
                    log.warning(
                        "consumer %s: a batch of %d records failed (%s: %s); "
                        "handling them one by one",
                        self._group_id,
                        len(items),
                        type(exc).__name__,
                        exc,
                    )
                    return False
                attempt += 1
                await self._retry_later(items[0], exc, attempt)
                continue
            metrics.BATCH_SECONDS.labels(self._group_id).observe(time.perf_counter() - started)
            return True

    async def _handle_alone(self, item: _Item) -> None:
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await self._transaction([item])
            except Exception as exc:  # classified below: retry, or dead-letter a persistent bug
                attempt += 1
                if not _is_retriable(exc) and (
                    isinstance(exc, SagaError) or attempt >= self._handler_max_attempts
                ):
                    log.exception(
                        "consumer %s: record %s failed %d time(s); dead-lettering it",
                        self._group_id,
                        item,
                        attempt,
                    )
                    if not isinstance(exc, SagaError):
                        await self._report_failure(item, exc)
                    await self._dead_letter(
                        item.record, HandlerFailed(f"{type(exc).__name__}: {exc}")
                    )
                    return
                await self._retry_later(item, exc, attempt)
                continue
            metrics.BATCH_SECONDS.labels(self._group_id).observe(time.perf_counter() - started)
            return

    async def _report_failure(self, item: _Item, exc: Exception) -> None:
        if self._on_handler_failure is None:
            return
        try:
            await self._on_handler_failure(item.envelope, exc)
        except Exception:
            log.exception("consumer %s: the failure hook failed on %s", self._group_id, item)

    async def _transaction(self, items: Sequence[_Item]) -> None:
        """The records' inbox rows, their handlers and their outbox rows: one commit.

        Optimistic first: the inbox rows are written with the other writes at commit, and a
        redelivered id fails that statement on the inbox's primary key. Then the transaction
        is rolled back and run again asking the inbox first, which drops the redelivered
        records. Redeliveries are rare (a crash, a rebalance), and this saves a round trip on
        every other transaction. Nothing happened twice meanwhile: the first try's database
        work was rolled back, and the handlers' outside effects (gateway, SMTP) are
        idempotent on the business key, as they are for re-sent commands.
        """
        started_ns = time.time_ns() if tracing_enabled() else 0
        # One record (the common case when the load is light, and every record handled
        # alone): its handler's log lines name its saga, order and trace.
        one = items[0].envelope if len(items) == 1 else None
        with log_ids(one.saga_id, one.order_id, one.traceparent) if one else nullcontext():
            try:
                fresh = await self._run(items, inbox_first=False)
            except asyncpg.UniqueViolationError as exc:
                if exc.constraint_name != INBOX_PRIMARY_KEY:
                    raise
                fresh = await self._run(items, inbox_first=True)
        if started_ns:  # tracing on: one consumer span per handled record, in its saga's trace
            self._record_spans(fresh, started_ns, time.time_ns())
        for item in fresh:
            metrics.MESSAGES_CONSUMED.labels(
                item.tp.topic, item.envelope.message_type, "handled"
            ).inc()
        metrics.BATCH_RECORDS.labels(self._group_id).observe(len(items))
        self.processed += len(items)

    def _record_spans(self, items: Sequence[_Item], started_ns: int, ended_ns: int) -> None:
        for item in items:
            envelope = item.envelope
            attributes: dict[str, str | int] = {
                "messaging.system": "kafka",
                "messaging.destination.name": item.tp.topic,
                "messaging.consumer.group.name": self._group_id,
                "messaging.destination.partition.id": str(item.tp.partition),
                "messaging.kafka.offset": item.record.offset,
                "messaging.message.id": str(envelope.message_id),
                "messaging.message.type": envelope.message_type,
                "messaging.batch.message_count": len(items),
            }
            if envelope.saga_id is not None:
                attributes["saga.id"] = str(envelope.saga_id)
            if envelope.order_id is not None:
                attributes["order.id"] = str(envelope.order_id)
            record_span(
                f"{item.tp.topic} process",
                envelope.traceparent,
                item.produced_in,
                started_ns,
                ended_ns,
                kind=SpanKind.CONSUMER,
                attributes=attributes,
            )

    async def _run(self, items: Sequence[_Item], *, inbox_first: bool) -> list[_Item]:
        entries = [
            InboxEntry(
                i.envelope.message_id,
                i.envelope.message_type,
                i.tp.topic,
                i.tp.partition,
                i.record.offset,
            )
            for i in items
        ]
        async with self._uow_factory() as uow:
            fresh = list(items)
            if inbox_first:
                fresh_ids = await uow.record_inbox_many(entries)
                fresh = []
                for item in items:
                    if item.envelope.message_id in fresh_ids:
                        fresh_ids.discard(item.envelope.message_id)  # a second copy: duplicate
                        fresh.append(item)
                    else:
                        metrics.MESSAGES_CONSUMED.labels(
                            item.tp.topic, item.envelope.message_type, "duplicate"
                        ).inc()
            else:
                uow.record_inbox_at_commit(entries)
            if tracing_enabled():
                uow.trace_under([i.envelope.traceparent for i in fresh])
            for envelopes, batch_handler in _handler_groups(fresh, self._batch_handlers):
                if batch_handler is not None:
                    await batch_handler(envelopes, uow)
                else:
                    for envelope in envelopes:
                        await self._handlers[envelope.message_type](envelope, uow)
            await uow.commit()
        return fresh

    async def _retry_later(self, item: _Item, exc: Exception, attempt: int) -> None:
        code = exc.code if isinstance(exc, SagaError) else type(exc).__name__
        metrics.HANDLER_RETRIES.labels(item.tp.topic, code).inc()
        delay = backoff_delay(attempt, base=self._backoff_base_s, cap=self._backoff_cap_s)
        log.warning(
            "consumer %s: %s on %s (attempt %d), retry in %.2fs",
            self._group_id,
            exc,
            item,
            attempt,
            delay,
        )
        await self._pause(delay)

    async def _commit_handled(self, *, now: bool) -> None:
        """Commit the offsets of what was handled, if due (``now``: whatever is pending)."""
        clock = time.monotonic()
        if not self._uncommitted or (
            not now and clock - self._committed_at < self._commit_interval_s
        ):
            return
        offsets, self._uncommitted = self._uncommitted, {}
        self._committed_at = clock
        await self._commit(offsets)

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

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], error: SagaError) -> None:
        headers = dead_letter_headers(record, error, self._group_id)
        topic = Topics.dlq(record.topic)
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
                await self._pause(delay)
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
        returned = "true" if header(record, Replay.COUNT) else "false"
        metrics.DLQ_RECORDS_WRITTEN.labels(topic, returned).inc()
        metrics.MESSAGES_CONSUMED.labels(record.topic, message_type, "dead_lettered").inc()

    async def _pause(self, delay: float) -> None:
        """Back off before a retry, unless the partitions are being revoked (all of them: the
        group rebalances eagerly) or we are stopping."""
        await self._sleep(delay)
        if self._stopping.is_set() or self._revoking:
            raise _Abandoned

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless(self._stopping, seconds)


def _handler_groups(
    items: Sequence[_Item], batch_handlers: Mapping[str, BatchHandler]
) -> list[tuple[list[Envelope[Any]], BatchHandler | None]]:
    """The records as calls: each partition's records split into runs of one handler (None: a
    handler per record), then the partitions' first runs merged by handler, then their second
    runs... Every partition keeps its order, and a batch handler gets all it can at once."""
    runs_by_tp: dict[TopicPartition, list[tuple[BatchHandler | None, list[Envelope[Any]]]]] = {}
    for item in items:
        runs = runs_by_tp.setdefault(item.tp, [])
        handler = batch_handlers.get(item.envelope.message_type)
        if runs and runs[-1][0] is handler:
            runs[-1][1].append(item.envelope)
        else:
            runs.append((handler, [item.envelope]))
    groups: list[tuple[list[Envelope[Any]], BatchHandler | None]] = []
    for round_ in itertools.zip_longest(*runs_by_tp.values()):
        merged: dict[BatchHandler | None, list[Envelope[Any]]] = {}
        for run in round_:
            if run is not None:
                merged.setdefault(run[0], []).extend(run[1])
        groups += [(envelopes, handler) for handler, envelopes in merged.items()]
    return groups


class _RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions are taken away, let the batch in hand finish, and commit what was
    handled."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._consumer._revoking.update(revoked)
        async with self._consumer._batch_lock:  # the batch in hand finishes
            await self._consumer._commit_handled(now=True)

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
