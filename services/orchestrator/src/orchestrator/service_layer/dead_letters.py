"""Dead-letter operations: read every ``<topic>.dlq`` of the system, replay or discard records.

One service layer for the admin API, ``sagactl dlq`` (through the API) and the web console.

- Reading never joins a consumer group: a short-lived consumer assigns the partitions, seeks and
  reads a bounded range, so nothing is committed and any number of readers can look at once.
- Kafka records cannot be deleted, so what operators did with a record (replayed or discarded,
  who, when, why) is kept in ``dlq_dispositions``, keyed by (DLQ topic, partition, offset). Each
  action is also written to ``admin_actions``, in the same transaction (a refusal in its own).
- A replay sends the record back to its original topic with the same key, value and headers
  (the ``dlq-*`` ones dropped), plus ``replayed-from: <dlq topic>/<partition>/<offset>`` and
  ``replay-count: n``. Those survive a return to the DLQ (``sagakit.consumer.dead_letter``), so
  a replayed record that fails again comes back once, carrying its count. The disposition row is
  claimed before the send, so a record is replayed at most once however many operators click; a
  record that came back is never part of a filtered replay (only replayed one by one, on
  purpose, at most ``max_replays`` times in all), so nothing ever loops. A replayed record that
  had been handled after all is dropped by the consumer's inbox (same message id).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from orchestrator.service_layer.operations import record_action
from sagakit.consumer.dead_letter import DLQ, Replay
from sagakit.errors import BrokerUnavailable, InfrastructureError
from sagakit.messaging.envelope import H
from sagakit.messaging.kafka_clients import PLAINTEXT, KafkaSecurity, kafka_consumer
from sagakit.messaging.producer import Producer
from sagakit.ops import metrics
from sagakit.outbox.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

DLQ_SUFFIX = ".dlq"
MAX_LIMIT = 500
MAX_REPLAYS = 3  # replays of one record (counted by its replay-count header), in all
SCAN_LIMIT = 20_000  # records read at most per call; a page may be short, with a cursor

DispositionKind = Literal["replayed", "discarded"]
State = Literal["unreplayed", "replayed", "discarded"]


class DeadLettersUnavailable(BrokerUnavailable):
    """Kafka did not answer while reading or replaying a DLQ."""

    code = "dlq_unavailable"


class NotReplayable(Exception):
    """The record cannot be replayed (or discarded): ``code`` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class RecordRef:
    """Where a dead-lettered record sits: its DLQ topic, partition and offset."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @classmethod
    def parse(cls, text: str) -> RecordRef:
        """``<dlq topic>/<partition>/<offset>``; raises ValueError."""
        topic, _, rest = text.rpartition("/")
        topic, _, partition = topic.rpartition("/")
        try:
            return cls(topic, int(partition), int(rest))
        except ValueError as exc:
            raise ValueError(
                f"not a record reference <topic>/<partition>/<offset>: {text!r}"
            ) from exc


VALUE_TEXT_LIMIT = 64_000  # bytes of a record's value shown as text


@dataclass(frozen=True, slots=True)
class Disposition:
    disposition: DispositionKind
    operator: str
    at: datetime
    reason: str | None
    replayed_to: str | None  # "<topic>/<partition>/<offset>" of the copy (replayed only)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a DLQ, with what its headers say and what operators did with it."""

    topic: str
    partition: int
    offset: int
    timestamp: datetime
    key: str | None  # the key as text (UTF-8, undecodable bytes replaced)
    original_topic: str
    error_code: str | None
    reason: str | None
    consumer_group: str | None
    failed_at: datetime | None
    message_type: str | None
    message_id: str | None
    saga_id: str | None
    replay_count: int  # how many times it had been replayed before it landed here
    replayed_from: str | None
    headers: dict[str, str]  # every header as text
    disposition: Disposition | None
    raw_key: bytes | None = field(repr=False, default=None)
    value: bytes | None = field(repr=False, default=None)
    raw_headers: tuple[tuple[str, bytes], ...] = field(repr=False, default=())

    @property
    def ref(self) -> RecordRef:
        return RecordRef(self.topic, self.partition, self.offset)

    @property
    def state(self) -> State:
        return "unreplayed" if self.disposition is None else self.disposition.disposition

    @property
    def is_alert(self) -> bool:
        """The orchestrator's alert of a compensation out of attempts, not a failed record."""
        return DLQ.SAGA_STATUS in self.headers


def value_text(value: bytes, limit: int = VALUE_TEXT_LIMIT) -> str:
    """A record's value as text: UTF-8, undecodable bytes replaced, at most ``limit`` bytes."""
    return value[:limit].decode(errors="replace")


@dataclass(frozen=True, slots=True)
class TopicSummary:
    topic: str  # the DLQ topic
    source_topic: str
    exists: bool
    records: int  # in Kafka now (within retention)
    replayed: int
    discarded: int

    @property
    def unreplayed(self) -> int:
        return max(0, self.records - self.replayed - self.discarded)


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    topic: str | None = None  # a DLQ topic or its source topic; None: every DLQ of the system
    reason: str | None = None  # text in the reason or the error code, case-insensitive
    partition: int | None = None
    min_offset: int | None = None
    max_offset: int | None = None  # inclusive
    state: State | None = None
    # Records that came back after a replay (replay-count > 0): None any, False none, True only.
    returned: bool | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    records: list[DeadLetter]
    # Where the next page starts; None when everything was read. A page may be shorter than
    # the limit and still have a cursor (the scan of one call is bounded).
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    ref: RecordRef
    replayed_to: str | None  # "<topic>/<partition>/<offset>"; None if refused
    refused: str | None = None  # why not (a NotReplayable code and message)


@dataclass(frozen=True, slots=True)
class ReplayReport:
    replayed: list[ReplayOutcome]
    skipped: list[ReplayOutcome]
    next_cursor: str | None  # more records may match: call again with it


def _encode_cursor(topic: str, partition: int, offset: int) -> str:
    raw = orjson.dumps([topic, partition, offset])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        topic, partition, offset = orjson.loads(raw)
        return str(topic), int(partition), int(offset)
    except Exception as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


class DeadLetters:
    """The dead-letter topics of ``source_topics`` (full names, prefix included)."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        producer: Producer,
        *,
        bootstrap_servers: str,
        source_topics: Sequence[str],
        security: KafkaSecurity = PLAINTEXT,
        max_replays: int = MAX_REPLAYS,
        request_timeout_ms: int = 10_000,
        read_timeout_s: float = 15.0,
    ) -> None:
        self._uow = uow
        self._producer = producer
        self._bootstrap = bootstrap_servers
        self._security = security
        self._sources = sorted(set(source_topics))
        self.max_replays = max_replays
        self._request_timeout_ms = request_timeout_ms
        self._read_timeout_s = read_timeout_s

    @property
    def topics(self) -> list[str]:
        """Every DLQ topic of the system, in listing order."""
        return [s + DLQ_SUFFIX for s in self._sources]

    def dlq_topic(self, name: str) -> str:
        """A DLQ topic of the system from its name or its source topic's; raises LookupError."""
        topic = name if name.endswith(DLQ_SUFFIX) else name + DLQ_SUFFIX
        if topic not in self.topics:
            raise LookupError(f"{name!r} is not a dead-letter topic of this system")
        return topic

    # --- reads ----------------------------------------------------------------------------------

    async def summary(self) -> list[TopicSummary]:
        """Every DLQ topic: records in Kafka, how many were replayed, discarded, neither."""
        async with self._reader() as reader:
            bounds = await reader.bounds(self.topics)
        counts = await self._disposition_counts(bounds)
        out = []
        for topic in self.topics:
            parts = {tp: b for tp, b in bounds.items() if tp.topic == topic}
            c = counts.get(topic, {})
            out.append(
                TopicSummary(
                    topic=topic,
                    source_topic=topic.removesuffix(DLQ_SUFFIX),
                    exists=bool(parts) or topic in bounds.existing,
                    records=sum(end - begin for begin, end in parts.values()),
                    replayed=c.get("replayed", 0),
                    discarded=c.get("discarded", 0),
                )
            )
        return out

    async def list_records(
        self, f: DeadLetterFilter, *, limit: int = 50, cursor: str | None = None
    ) -> DeadLetterPage:
        """Matching records, oldest first (topic, partition, offset). Raises LookupError (not a
        DLQ topic of the system) or ValueError (a cursor this service did not make)."""
        limit = max(1, min(limit, MAX_LIMIT))
        topics = [self.dlq_topic(f.topic)] if f.topic else self.topics
        start = _decode_cursor(cursor) if cursor else None
        records, next_at = await self._scan(topics, f, start, limit)
        return DeadLetterPage(records, _encode_cursor(*next_at) if next_at else None)

    async def get(self, ref: RecordRef) -> DeadLetter:
        """One record; raises LookupError if it is not (or no longer) in its DLQ."""
        topic = self.dlq_topic(ref.topic)
        f = DeadLetterFilter(partition=ref.partition, min_offset=ref.offset, max_offset=ref.offset)
        records, _ = await self._scan([topic], f, None, 1)
        if not records:
            raise LookupError(f"no record {ref} in the dead-letter topics")
        return records[0]

    async def unreplayed_counts(self) -> dict[str, int]:
        """Per DLQ topic: records neither replayed nor discarded (the gauge's figures)."""
        return {s.topic: s.unreplayed for s in await self.summary()}

    # --- actions --------------------------------------------------------------------------------

    async def replay(self, ref: RecordRef, *, who: str, reason: str | None = None) -> ReplayOutcome:
        """Send one record back to its original topic. Raises LookupError or NotReplayable
        (already replayed or discarded, an alert, out of replays). Audited either way."""
        try:
            record = await self.get(ref)
        except LookupError as exc:
            await self._audit_refusal(who, "dlq_replay", ref, reason, "not_found", str(exc))
            raise
        return await self._replay(record, who=who, reason=reason)

    async def replay_matching(
        self,
        f: DeadLetterFilter,
        *,
        who: str,
        reason: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        on_progress: Callable[[ReplayOutcome], None] | None = None,
    ) -> ReplayReport:
        """Replay up to ``limit`` matching records that were never replayed nor discarded and
        never came back from a replay (those only one by one, with ``replay``). Call again
        with ``next_cursor`` for more."""
        f = replace(f, state="unreplayed", returned=False)
        page = await self.list_records(f, limit=limit, cursor=cursor)
        replayed: list[ReplayOutcome] = []
        skipped: list[ReplayOutcome] = []
        for record in page.records:
            if record.is_alert:
                continue  # not a failed record: the saga is retried instead, not listed
            try:
                outcome = await self._replay(record, who=who, reason=reason)
                replayed.append(outcome)
            except NotReplayable as exc:
                outcome = ReplayOutcome(record.ref, None, f"{exc.code}: {exc}")
                skipped.append(outcome)
            if on_progress is not None:
                on_progress(outcome)
        return ReplayReport(replayed, skipped, page.next_cursor)

    async def discard(self, ref: RecordRef, *, who: str, reason: str) -> DeadLetter:
        """Mark a record as dealt with, never to be replayed. Raises LookupError or
        NotReplayable (already replayed or discarded). Audited either way."""
        try:
            record = await self.get(ref)
        except LookupError as exc:
            await self._audit_refusal(who, "dlq_discard", ref, reason, "not_found", str(exc))
            raise
        refused: NotReplayable | None = None
        async with self._uow() as uow:
            claimed = await self._claim(uow, record.ref, "discarded", who, reason)
            if claimed is None:
                refused = await self._already(uow, record.ref)
            else:
                record_action(uow, who, "dlq_discard", f"dlq:{ref}", reason, "done", None)
                await uow.commit()
        if refused is not None:
            await self._audit_refusal(who, "dlq_discard", ref, reason, "refused", str(refused))
            raise refused
        return replace(record, disposition=claimed)

    async def _replay(self, record: DeadLetter, *, who: str, reason: str | None) -> ReplayOutcome:
        ref = record.ref
        refused = self._refusal(record)
        outcome: ReplayOutcome | None = None
        if refused is None:
            async with self._uow() as uow:
                # Claimed first (the primary key serialises concurrent replays), sent, then
                # committed: a failed send rolls the claim back.
                if await self._claim(uow, ref, "replayed", who, reason) is None:
                    refused = await self._already(uow, ref)
                else:
                    target = record.topic.removesuffix(DLQ_SUFFIX)
                    try:
                        partition, offset = await self._producer.send_located(
                            target,
                            key=record.raw_key,
                            value=record.value,
                            headers=replay_headers(record),
                        )
                    except BrokerUnavailable as exc:
                        raise DeadLettersUnavailable(f"cannot replay {ref}: {exc}") from exc
                    replayed_to = f"{target}/{partition}/{offset}"
                    uow.write(
                        "UPDATE dlq_dispositions SET replayed_to = {3} WHERE topic = {0}"
                        ' AND partition = {1} AND "offset" = {2}',
                        ref.topic,
                        ref.partition,
                        ref.offset,
                        replayed_to,
                    )
                    detail = {"replayed_to": replayed_to, "replay_count": record.replay_count + 1}
                    record_action(uow, who, "dlq_replay", f"dlq:{ref}", reason, "done", detail)
                    await uow.commit()
                    outcome = ReplayOutcome(ref, replayed_to)
                    log.info("%s replayed %s to %s", who, ref, replayed_to)
        if refused is not None:
            await self._audit_refusal(who, "dlq_replay", ref, reason, "refused", str(refused))
            raise refused
        assert outcome is not None
        return outcome

    def _refusal(self, record: DeadLetter) -> NotReplayable | None:
        d = record.disposition
        if d is not None:
            return NotReplayable(
                f"already_{d.disposition}",
                f"{record.ref} was {d.disposition} by {d.operator} at {d.at.isoformat()}",
            )
        if record.is_alert:
            return NotReplayable(
                "alert",
                f"{record.ref} is the alert of a saga whose compensation ran out of attempts, "
                f"not a failed record: retry the saga instead (sagactl retry {record.saga_id})",
            )
        if record.replay_count >= self.max_replays:
            return NotReplayable(
                "replay_limit",
                f"{record.ref} was replayed {record.replay_count} times already "
                f"(at most {self.max_replays}); discard it",
            )
        return None

    async def _claim(
        self, uow: UnitOfWork, ref: RecordRef, kind: DispositionKind, who: str, reason: str | None
    ) -> Disposition | None:
        row = await uow.conn.fetchrow(
            'INSERT INTO dlq_dispositions (topic, partition, "offset", disposition, operator,'
            " reason) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
            " RETURNING disposition, operator, at, reason, replayed_to",
            ref.topic,
            ref.partition,
            ref.offset,
            kind,
            who,
            reason,
        )
        return Disposition(**dict(row)) if row else None

    async def _already(self, uow: UnitOfWork, ref: RecordRef) -> NotReplayable:
        row = await uow.conn.fetchrow(
            "SELECT disposition, operator, at FROM dlq_dispositions"
            ' WHERE topic = $1 AND partition = $2 AND "offset" = $3',
            ref.topic,
            ref.partition,
            ref.offset,
        )
        kind = row["disposition"] if row else "replayed"
        who = f" by {row['operator']} at {row['at'].isoformat()}" if row else ""
        return NotReplayable(f"already_{kind}", f"{ref} was {kind}{who}")

    async def _audit_refusal(
        self, who: str, action: str, ref: RecordRef, reason: str | None, outcome: str, why: str
    ) -> None:
        async with self._uow() as uow:
            record_action(uow, who, action, f"dlq:{ref}", reason, outcome, why)
            await uow.commit()

    # --- reading Kafka --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _reader(self) -> AsyncIterator[_Reader]:
        reader = _Reader(self._bootstrap, self._request_timeout_ms, self._security)
        try:
            await reader.start()
            yield reader
        except KafkaError as exc:
            raise DeadLettersUnavailable(f"cannot read the DLQ topics: {exc}") from exc
        finally:
            await reader.stop()

    async def _scan(
        self,
        topics: Sequence[str],
        f: DeadLetterFilter,
        start: tuple[str, int, int] | None,
        limit: int,
    ) -> tuple[list[DeadLetter], tuple[str, int, int] | None]:
        """Up to ``limit`` matching records from ``start`` on, and where to go on from (None:
        all read)."""
        found: list[DeadLetter] = []
        scanned = 0
        deadline = time.monotonic() + self._read_timeout_s
        async with self._reader() as reader:
            bounds = await reader.bounds(topics)
            order = {t: i for i, t in enumerate(topics)}
            first = (order.get(start[0], -1), start[1]) if start else (-1, -1)
            ranges = []
            for tp in sorted(bounds, key=lambda t: (order[t.topic], t.partition)):
                if (order[tp.topic], tp.partition) < first:
                    continue
                if f.partition is not None and tp.partition != f.partition:
                    continue
                begin, end = bounds[tp]
                lo = max(begin, f.min_offset or 0)
                if start is not None and (tp.topic, tp.partition) == (start[0], start[1]):
                    lo = max(lo, start[2])
                hi = end if f.max_offset is None else min(end, f.max_offset + 1)
                if lo < hi:
                    ranges.append((tp, lo, hi))
            for tp, lo, hi in ranges:
                dispositions = await self._dispositions(tp, lo, hi)
                position = lo
                while position < hi:
                    if scanned >= SCAN_LIMIT or time.monotonic() > deadline:
                        return found, (tp.topic, tp.partition, position)
                    records = await reader.read(tp, position, hi)
                    for r in records:
                        scanned += 1
                        letter = _dead_letter(r, dispositions.get(r.offset))
                        position = r.offset + 1
                        if _matches(letter, f):
                            found.append(letter)
                            if len(found) >= limit:
                                more = position < hi or (tp, lo, hi) != ranges[-1]
                                return found, (tp.topic, tp.partition, position) if more else None
                    if not records:
                        position = max(position, await reader.position(tp))
        return found, None

    async def _dispositions(self, tp: TopicPartition, lo: int, hi: int) -> dict[int, Disposition]:
        async with self._uow() as uow:
            rows = await uow.conn.fetch(
                'SELECT "offset", disposition, operator, at, reason, replayed_to'
                ' FROM dlq_dispositions WHERE topic = $1 AND partition = $2 AND "offset" >= $3'
                ' AND "offset" < $4',
                tp.topic,
                tp.partition,
                lo,
                hi,
            )
        return {
            r["offset"]: Disposition(
                r["disposition"], r["operator"], r["at"], r["reason"], r["replayed_to"]
            )
            for r in rows
        }

    async def _disposition_counts(self, bounds: _Bounds) -> dict[str, dict[str, int]]:
        """Dispositions of records still in Kafka (offset at or past each partition's start)."""
        if not bounds:
            return {}
        tps = list(bounds)
        async with self._uow() as uow:
            rows = await uow.conn.fetch(
                "SELECT d.topic, d.disposition, count(*) AS n FROM dlq_dispositions d"
                " JOIN unnest($1::text[], $2::int[], $3::bigint[]) AS b(topic, partition, first)"
                ' ON d.topic = b.topic AND d.partition = b.partition AND d."offset" >= b.first'
                " GROUP BY d.topic, d.disposition",
                [tp.topic for tp in tps],
                [tp.partition for tp in tps],
                [bounds[tp][0] for tp in tps],
            )
        out: dict[str, dict[str, int]] = {}
        for r in rows:
            out.setdefault(r["topic"], {})[r["disposition"]] = r["n"]
        return out

    # --- the gauge ------------------------------------------------------------------------------

    async def refresh_gauge(self) -> None:
        for topic, n in (await self.unreplayed_counts()).items():
            metrics.DLQ_UNREPLAYED.labels(topic).set(n)

    async def run_gauge(self, stopping: asyncio.Event, interval_s: float = 15.0) -> None:
        """A service worker: refresh ``saga_dlq_unreplayed`` every ``interval_s`` until stopping.
        Kafka or the database being away only skips a refresh."""
        while not stopping.is_set():
            try:
                await self.refresh_gauge()
            except (InfrastructureError, KafkaError, OSError) as exc:
                log.warning("DLQ gauge not refreshed: %s", exc)
            except Exception:  # a gauge never stops the orchestrator
                log.exception("DLQ gauge not refreshed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=interval_s)


def replay_headers(record: DeadLetter) -> list[tuple[str, bytes]]:
    """The record's own headers (not the ``dlq-*`` of its trip to the DLQ, not the previous
    replay's), then where it is replayed from and its replay count."""
    drop = (Replay.COUNT, Replay.FROM)
    headers = [(k, v) for k, v in record.raw_headers if not k.startswith("dlq-") and k not in drop]
    headers.append((Replay.FROM, str(record.ref).encode()))
    headers.append((Replay.COUNT, str(record.replay_count + 1).encode()))
    return headers


def _matches(letter: DeadLetter, f: DeadLetterFilter) -> bool:
    if f.state is not None and letter.state != f.state:
        return False
    if f.returned is not None and (letter.replay_count > 0) != f.returned:
        return False
    if f.reason:
        text = f"{letter.error_code or ''} {letter.reason or ''}".lower()
        if f.reason.lower() not in text:
            return False
    return True


def _dead_letter(r: ConsumerRecord[Any, Any], disposition: Disposition | None) -> DeadLetter:
    raw = tuple((k, bytes(v or b"")) for k, v in r.headers or ())
    headers = {k: v.decode(errors="replace") for k, v in raw}
    try:
        count = int(headers.get(Replay.COUNT, "0"))
    except ValueError:
        count = 0
    try:
        failed_at: datetime | None = datetime.fromtimestamp(float(headers[DLQ.FAILED_AT]), UTC)
    except (KeyError, ValueError):
        failed_at = None
    return DeadLetter(
        topic=r.topic,
        partition=r.partition,
        offset=r.offset,
        timestamp=datetime.fromtimestamp(r.timestamp / 1000, UTC),
        key=None if r.key is None else bytes(r.key).decode(errors="replace"),
        original_topic=headers.get(DLQ.ORIGINAL_TOPIC, r.topic.removesuffix(DLQ_SUFFIX)),
        error_code=headers.get(DLQ.ERROR_CODE),
        reason=headers.get(DLQ.REASON),
        consumer_group=headers.get(DLQ.CONSUMER_GROUP),
        failed_at=failed_at,
        message_type=headers.get(H.MESSAGE_TYPE),
        message_id=headers.get(H.MESSAGE_ID),
        saga_id=headers.get(H.SAGA_ID),
        replay_count=count,
        replayed_from=headers.get(Replay.FROM),
        headers=headers,
        disposition=disposition,
        raw_key=None if r.key is None else bytes(r.key),
        value=None if r.value is None else bytes(r.value),
        raw_headers=raw,
    )


class _Bounds(dict[TopicPartition, tuple[int, int]]):
    """(first offset, end offset) of each partition; ``existing``: topics found."""

    existing: set[str]


class _Reader:
    """A consumer without a group: assign, seek, read a bounded range; never commits."""

    def __init__(self, bootstrap: str, request_timeout_ms: int, security: KafkaSecurity) -> None:
        self._assigned: TopicPartition | None = None
        self._consumer = kafka_consumer(
            bootstrap_servers=bootstrap,
            security=security,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=request_timeout_ms,
            client_id="orchestrator-dlq-reader",
        )

    async def start(self) -> None:
        await self._consumer.start()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._consumer.stop()

    async def bounds(self, topics: Sequence[str]) -> _Bounds:
        # The metadata of every topic: asking for one by name could auto-create it.
        cluster = await self._consumer._client.fetch_all_metadata()
        out = _Bounds()
        out.existing = set()
        tps = []
        for topic in topics:
            partitions = cluster.partitions_for_topic(topic)
            if partitions is None:
                continue
            out.existing.add(topic)
            tps += [TopicPartition(topic, p) for p in sorted(partitions)]
        if not tps:
            return out
        begins = await self._consumer.beginning_offsets(tps)
        ends = await self._consumer.end_offsets(tps)
        for tp in tps:
            out[tp] = (begins[tp], ends[tp])
        return out

    async def read(self, tp: TopicPartition, position: int, end: int) -> list[Any]:
        """Records of ``tp`` from ``position`` (before ``end``); may be empty on a slow fetch."""
        if self._assigned != tp:  # one partition at a time: nothing else is fetched
            self._consumer.assign([tp])
            self._assigned = tp
            self._consumer.seek(tp, position)
        elif await self._consumer.position(tp) != position:
            self._consumer.seek(tp, position)
        batch = await self._consumer.getmany(
            tp, timeout_ms=1000, max_records=min(500, max(1, end - position))
        )
        return [r for r in batch.get(tp, []) if position <= r.offset < end]

    async def position(self, tp: TopicPartition) -> int:
        return int(await self._consumer.position(tp))
