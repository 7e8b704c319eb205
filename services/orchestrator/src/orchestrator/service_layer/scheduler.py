"""The scheduler: step deadlines and compensation retries, durable in PostgreSQL.

Deadlines and retry times are columns of the saga, so a restarted orchestrator finds them where
it left them. Each tick takes the due sagas under ``FOR UPDATE SKIP LOCKED`` and handles them in
one transaction: with several replicas running, a saga is taken by one of them, never by two at
once, and a saga busy with a reply is simply taken on the next tick if still due.

An outage is retried with backoff. A saga the engine cannot decide for is parked by the saga
service within the batch. Any other bug fails the batch's transaction: the tick then takes the
due sagas one at a time, each in its own transaction, and parks the one that still fails (the
saga service's ``park``), so no one saga can stop the loop (and with it every replica, each
picking the same saga). Only what fails even then is logged and retried after a pause.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from orchestrator.adapters import saga_store
from orchestrator.service_layer.sagas import SagaService, is_outage
from sagakit.backoff import backoff_delay, sleep_unless
from sagakit.outbox.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        sagas: SagaService,
        uow_factory: Callable[[], UnitOfWork],
        *,
        poll_interval_s: float = 0.5,
        batch_size: int = 100,
    ) -> None:
        self.sagas = sagas
        self.uow_factory = uow_factory
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size

    async def run(self, stopping: asyncio.Event) -> None:
        failures = 0
        while not stopping.is_set():
            try:
                handled = await self.tick()
                failures = 0
            except Exception as exc:
                failures += 1
                delay = backoff_delay(failures, base=0.5, cap=5.0)
                if is_outage(exc):
                    log.warning("scheduler: %s; retrying in %.1fs", exc, delay)
                else:
                    log.exception("scheduler: tick failed; retrying in %.1fs", delay)
                await sleep_unless(stopping, delay)
                continue
            if handled < self.batch_size:
                await sleep_unless(stopping, self.poll_interval_s)

    async def tick(self) -> int:
        """Handle what is due now; returns how many sagas moved."""
        try:
            async with self.uow_factory() as uow:
                moved = await self.sagas.on_due(uow, self.batch_size)
                await uow.commit()
            return moved
        except Exception as exc:
            if is_outage(exc):
                raise
            log.warning(
                "scheduler: a batch failed (%s: %s); taking the due sagas one by one",
                type(exc).__name__,
                exc,
            )
        return await self._one_by_one()

    async def _one_by_one(self) -> int:
        async with self.uow_factory() as uow:
            due = await saga_store.due_ids(uow.conn, self.sagas.clock(), self.batch_size)
        moved = 0
        for saga_id in due:
            try:
                async with self.uow_factory() as uow:
                    moved += await self.sagas.on_due_one(uow, saga_id)
                    await uow.commit()
            except Exception as exc:
                if is_outage(exc):
                    raise
                log.exception("scheduler: saga %s failed; parking it", saga_id)
                moved += await self._park(saga_id, exc)
        return moved

    async def _park(self, saga_id: uuid.UUID, error: Exception) -> int:
        try:
            return int(await self.sagas.park(self.uow_factory, saga_id, error, where="scheduler"))
        except Exception as exc:
            if is_outage(exc):
                raise
            log.exception("scheduler: saga %s could not be parked; the others go on", saga_id)
            return 0
