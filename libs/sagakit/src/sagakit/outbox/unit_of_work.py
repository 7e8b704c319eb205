"""The unit of work: one PostgreSQL transaction holding a change, its outbox rows and its inbox
rows. Leaving the context without ``commit()`` rolls back, so a handler that fails publishes
nothing.

Handlers read (and lock) on ``uow.conn`` (asyncpg, inside the transaction), queue their writes
with ``uow.write`` and the messages they cause with ``uow.emit``: at commit, every queued write
and every outbox row go to PostgreSQL as ONE statement (``sagakit.db.statement``), then COMMIT,
then the rows are handed to the dispatcher (published at once; the relay is the safety net).
Under load a transaction holds a whole batch of records, and this is what keeps its cost to a
handful of round trips.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any

import asyncpg
from opentelemetry.trace import SpanKind

from sagakit.db.errors import raise_as_infrastructure
from sagakit.db.pool import Database
from sagakit.db.statement import Statement
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message
from sagakit.messaging.tracing import child_traceparent
from sagakit.outbox import store
from sagakit.outbox.dispatcher import Dispatcher
from sagakit.outbox.store import InboxEntry, OutboxRow
from sagakit.telemetry import record_child_span, record_span, tracing_enabled

log = logging.getLogger(__name__)


class UnitOfWork:
    """Async context manager around one pooled connection and one transaction.

    ``writes_only=True`` is for work that reads nothing and only queues writes: no BEGIN and
    no COMMIT, the one statement of the commit is atomic by itself (one round trip in all).
    """

    def __init__(
        self,
        database: Database,
        dispatcher: Dispatcher | None = None,
        *,
        writes_only: bool = False,
    ) -> None:
        self._database = database
        self._dispatcher = dispatcher
        self._writes_only = writes_only
        self._outbox: list[OutboxRow] = []
        self._writes = Statement()
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._conn: asyncpg.Connection | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._transaction: asyncpg.transaction.Transaction | None = None
        self._committed = False
        # Tracing on only: (producer traceparent, context, emitted at, topic, envelope) per
        # emitted message, and the contexts the commit's ``db commit`` span goes under.
        self._produced: list[tuple[str, str, int, str, Envelope[Message]]] = []
        self._trace_under: Sequence[str] = ()

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._outbox = []
        self._writes = Statement()
        self._after_commit = []
        self._committed = False
        self._produced = []
        self._trace_under = ()
        stack = contextlib.AsyncExitStack()
        try:
            conn = await stack.enter_async_context(self._database.connection())
            self._conn = conn
            if not self._writes_only:
                self._transaction = conn.transaction()
                await self._transaction.start()
        except BaseException as exc:
            await stack.aclose()
            self._conn = None
            raise_as_infrastructure(exc)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._outbox = []
        self._writes = Statement()
        self._after_commit = []
        transaction, self._transaction = self._transaction, None
        stack, self._stack = self._stack, None
        try:
            if transaction is not None and not self._committed and self._conn is not None:
                with contextlib.suppress(Exception):  # a lost connection rolls back by itself
                    await transaction.rollback()
        finally:
            self._conn = None
            if stack is not None:
                await stack.__aexit__(exc_type, exc, tb)
        if exc is not None:
            raise_as_infrastructure(exc)

    def write(self, sql: str, *args: Any) -> None:
        """Queue a data-modifying statement for the commit (``{0}``, ``{1}``... for ``args``).
        It runs with the others in one statement, with one snapshot: none sees another's
        changes, so queued writes must touch different rows (see ``sagakit.db.statement``)."""
        self._writes.add(sql, *args)

    def emit(
        self,
        topic: str,
        envelope: Envelope[Message],
        *,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Queue a message to be written to the outbox in this transaction.

        ``envelope.traceparent`` is the context the message was created in (the record being
        handled, the request); the message itself goes out as a new span of that trace, its
        PRODUCER span (recorded at commit when tracing is on)."""
        traceparent = child_traceparent(envelope.traceparent)
        if tracing_enabled():
            self._produced.append(
                (traceparent, envelope.traceparent, time.time_ns(), topic, envelope)
            )
        self._outbox.append(OutboxRow.of(topic, envelope, extra_headers, traceparent))

    async def record_inbox(
        self, envelope: Envelope[Message], *, topic: str, partition: int, offset: int
    ) -> bool:
        """Record a consumed message; False means it was seen before (a redelivery)."""
        entry = InboxEntry(envelope.message_id, envelope.message_type, topic, partition, offset)
        return bool(await store.insert_inbox(self.conn, [entry]))

    async def record_inbox_many(self, entries: Sequence[InboxEntry]) -> set[uuid.UUID]:
        """Record consumed messages in one statement; returns the ids seen for the first time."""
        return await store.insert_inbox(self.conn, entries)

    def record_inbox_at_commit(self, entries: Sequence[InboxEntry]) -> None:
        """Record consumed messages with the commit's writes: a message seen before fails the
        commit with ``asyncpg.UniqueViolationError`` on ``store.INBOX_PRIMARY_KEY``."""
        store.add_inbox_rows(self._writes, entries)

    def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once this transaction has committed (best effort, never rolled back:
        for notifications such as live status pushes, not for anything that must not be lost)."""
        self._after_commit.append(callback)

    def trace_under(self, traceparents: Sequence[str]) -> None:
        """Tracing on: the commit's ``db commit`` span goes under each of these spans too (the
        records a consumer transaction handles)."""
        self._trace_under = traceparents

    @property
    def pending_messages(self) -> int:
        return len(self._outbox)

    async def commit(self) -> None:
        if self._transaction is None and not self._writes_only:
            raise RuntimeError("UnitOfWork.commit() outside 'async with'")
        started_ns = time.time_ns() if tracing_enabled() else 0
        store.add_outbox_rows(self._writes, self._outbox)
        ids = await self._writes.run(self.conn)
        if self._transaction is not None:
            await self._transaction.commit()
        self._committed = True
        committed_ns = time.time_ns() if started_ns else 0
        rows, self._outbox = self._outbox, []
        self._writes = Statement()
        if rows and self._dispatcher is not None:
            await self._dispatcher.dispatch(ids, rows)
        if started_ns:
            self._record_spans(started_ns, committed_ns, len(rows))
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                await callback()
            except Exception:  # the commit stands; a failed notification is only logged
                log.warning("after-commit callback failed", exc_info=True)

    def _record_spans(self, started_ns: int, committed_ns: int, rows: int) -> None:
        """Tracing on: the PRODUCER span of each message emitted (from its emit to its hand-over
        to the producer), and a ``db commit`` span under each context that took part."""
        published_ns = time.time_ns()
        produced, self._produced = self._produced, []
        under, self._trace_under = self._trace_under, ()
        for traceparent, context, emitted_ns, topic, envelope in produced:
            record_span(
                f"{topic} publish",
                traceparent,
                context,
                emitted_ns,
                published_ns,
                kind=SpanKind.PRODUCER,
                attributes=_message_attributes(topic, envelope),
            )
        attributes: dict[str, str | int] = {
            "db.system": "postgresql",
            "db.operation": "COMMIT",
            "outbox.rows": rows,
        }
        for context in dict.fromkeys([*under, *(p[1] for p in produced)]):
            record_child_span("db commit", context, started_ns, committed_ns, attributes=attributes)


def _message_attributes(topic: str, envelope: Envelope[Message]) -> dict[str, str | int]:
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.message.id": str(envelope.message_id),
        "messaging.message.type": envelope.message_type,
    }
    if envelope.saga_id is not None:
        attributes["saga.id"] = str(envelope.saga_id)
    if envelope.order_id is not None:
        attributes["order.id"] = str(envelope.order_id)
    return attributes
