"""The scheduler: step deadlines and compensation retries, durable in PostgreSQL.

Deadlines and retry times are columns of the saga, so a restarted orchestrator finds them where
it left them. Each due saga is handled in its own transaction under ``FOR UPDATE SKIP LOCKED``:
with several replicas running, a saga is taken by one of them, never by two at once, and a saga
busy with a reply is simply taken on the next tick if still due.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from orchestrator.adapters.repository import SagaRepository
from orchestrator.service_layer.engine import SagaEngine
from sagakit.backoff import backoff_delay, sleep_unless
from sagakit.db.unit_of_work import UnitOfWork, is_retriable_db_error
from sagakit.errors import InfrastructureError

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self,
        engine: SagaEngine,
        uow_factory: Callable[[], UnitOfWork],
        *,
        poll_interval_s: float = 0.5,
        batch_size: int = 100,
    ) -> None:
        self.engine = engine
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
                if not (isinstance(exc, InfrastructureError) or is_retriable_db_error(exc)):
                    raise
                failures += 1
                delay = backoff_delay(failures, base=0.5, cap=5.0)
                log.warning("scheduler: %s; retrying in %.1fs", exc, delay)
                await sleep_unless(stopping, delay)
                continue
            if handled == 0:
                await sleep_unless(stopping, self.poll_interval_s)

    async def tick(self) -> int:
        """Handle what is due now; returns how many sagas moved."""
        now = self.engine.clock()
        async with self.uow_factory() as uow:
            repo = SagaRepository(uow.session)
            timeouts = await repo.deadlines_passed(now, self.batch_size)
            retries = await repo.retries_due(now, self.batch_size)
        moved = 0
        for saga_id in timeouts:
            moved += await self._one(saga_id, self.engine.on_deadline)
        for saga_id in retries:
            moved += await self._one(saga_id, self.engine.on_retry_due)
        return moved

    async def _one(
        self,
        saga_id: uuid.UUID,
        action: Callable[[UnitOfWork, uuid.UUID], Awaitable[bool]],
    ) -> int:
        async with self.uow_factory() as uow:
            if not await action(uow, saga_id):
                return 0
            await uow.commit()
        return 1
