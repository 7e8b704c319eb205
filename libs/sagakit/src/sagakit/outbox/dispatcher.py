"""Publishing right after the commit: the process that committed outbox rows sends them at once,
in commit order, and deletes them once Kafka acknowledged them.

This is the fast path. The rows were committed first, so nothing depends on it: if the process
dies before the send, or the broker is away, the rows stay in the outbox and the relay
(``relay.py``) publishes them once they are older than its grace period. A row sent here and
again by the relay reaches its consumer twice and is dropped there by the inbox.

Per-saga order holds: one saga's messages come from transactions serialised by the saga's (or
the order's) lock, so they are committed, and handed to the producer here, in order; the
idempotent producer keeps that order per partition.

Deletes are batched: acknowledged ids are deleted together every ``delete_interval_s``, one
statement for all the transactions of that interval, instead of a query per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from sagakit.db.errors import is_retriable_db_error
from sagakit.db.pool import Database
from sagakit.errors import InfrastructureError
from sagakit.messaging.producer import Producer
from sagakit.ops import metrics
from sagakit.outbox import store
from sagakit.outbox.store import OutboxRow

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(
        self, database: Database, producer: Producer, *, name: str, delete_interval_s: float = 0.2
    ) -> None:
        self._database = database
        self._producer = producer
        self._name = name
        self._delete_interval_s = delete_interval_s
        self._acknowledged: list[int] = []
        self._in_flight: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self.dispatched = 0

    async def dispatch(self, ids: Sequence[int], rows: Sequence[OutboxRow]) -> None:
        """Hand the committed rows to the producer (in order) and return; their delivery and
        delete happen in the background."""
        try:
            deliveries = await self._producer.enqueue(
                [(r.topic, r.key, r.value, r.kafka_headers()) for r in rows]
            )
        except InfrastructureError as exc:
            log.debug("dispatch %s: %s; the relay will publish these rows", self._name, exc)
            return
        task = asyncio.create_task(self._acknowledged_then_delete(ids, deliveries))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _acknowledged_then_delete(
        self, ids: Sequence[int], deliveries: asyncio.Future[None]
    ) -> None:
        try:
            await deliveries
        except Exception as exc:  # the broker did not take them: the relay will
            log.debug("dispatch %s: not acknowledged (%s); left to the relay", self._name, exc)
            return
        self.dispatched += len(ids)
        metrics.OUTBOX_PUBLISHED.labels(self._name).inc(len(ids))
        self._acknowledged.extend(ids)
        self._wakeup.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Delete what was acknowledged, every ``delete_interval_s``, until ``stop()``."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=1.0)
            self._wakeup.clear()
            if self._stopping.is_set():
                # Deliveries in flight get a moment; what is left, the relay finds later.
                if self._in_flight:
                    await asyncio.wait(set(self._in_flight), timeout=2.0)
                await self._delete()
                return
            await asyncio.sleep(self._delete_interval_s)  # let a batch of deletes gather
            await self._delete()

    async def _delete(self) -> None:
        ids, self._acknowledged = self._acknowledged, []
        if not ids:
            return
        try:
            async with self._database.connection() as conn:
                await store.delete_published(conn, ids)
        except Exception as exc:
            if not (isinstance(exc, InfrastructureError) or is_retriable_db_error(exc)):
                raise
            # Published but not deleted: the relay publishes them again, the inboxes drop them.
            log.warning(
                "dispatch %s: cannot delete %d published rows (%s)", self._name, len(ids), exc
            )
