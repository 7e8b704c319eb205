"""The scheduler: step deadlines and compensation retries, durable in PostgreSQL.

Deadlines and retry times are columns of the saga, so a restarted orchestrator finds them where
it left them. Each tick takes the due sagas under ``FOR UPDATE SKIP LOCKED`` and handles them in
one transaction: with several replicas running, a saga is taken by one of them, never by two at
once, and a saga busy with a reply is simply taken on the next tick if still due.

An outage is retried with backoff. Anything else the tick raises is logged and the scheduler
goes on after a pause: a saga the engine cannot decide for is parked by the saga service, so no
one saga can stop the loop (and with it every replica, each picking the same saga).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from orchestrator.service_layer.sagas import SagaService
from sagakit.backoff import backoff_delay, sleep_unless
from sagakit.db.errors import is_retriable_db_error
from sagakit.errors import InfrastructureError
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
                if isinstance(exc, InfrastructureError) or is_retriable_db_error(exc):
                    log.warning("scheduler: %s; retrying in %.1fs", exc, delay)
                else:
                    log.exception("scheduler: tick failed; retrying in %.1fs", delay)
                await sleep_unless(stopping, delay)
                continue
            if handled < self.batch_size:
                await sleep_unless(stopping, self.poll_interval_s)

    async def tick(self) -> int:
        """Handle what is due now; returns how many sagas moved."""
        async with self.uow_factory() as uow:
            moved = await self.sagas.on_due(uow, self.batch_size)
            await uow.commit()
        return moved
