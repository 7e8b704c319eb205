"""The saga's properties on the real database: the rules and invariants of the pure engine's
state machine (testsupport/saga_properties.py), each event going through the saga service
(``SagaService``: start, on_replies, the scheduler's tick, the operators' retry and cancel) on
PostgreSQL, and a process restart a fresh service on the same database. After every step the
saga is read back from the database (state, steps, history) with the messages its transactions
wrote to the outbox, and the order's row must follow the saga.

Fewer examples than the pure test in ``make test`` (each step is a few transactions); ``make
props`` (HYPOTHESIS_PROFILE=props) scales them up with the profile.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from hypothesis import settings
from hypothesis.stateful import invariant, run_state_machine_as_test
from saga_properties import REGISTRY, TRACEPARENT, Observed, SagaProperties, engine_for
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.adapters import saga_store
from orchestrator.domain.engine import (
    Event,
    HistoryLine,
    OperatorCancel,
    OperatorRetry,
    ReplyReceived,
)
from orchestrator.domain.status import ORDER_STATUS_FOR, OrderStatus, SagaStatus
from orchestrator.domain.workflow import WorkflowDefinition
from orchestrator.service_layer.sagas import NewSaga, SagaService
from orchestrator.service_layer.scheduler import Scheduler
from sagakit.db.pool import Database
from sagakit.messaging.envelope import Envelope
from sagakit.outbox.unit_of_work import UnitOfWork

pytestmark = pytest.mark.integration

T = TypeVar("T")

# What one example writes, emptied before each (so the scheduler sees only its saga): DELETE,
# a hundred times faster than TRUNCATE on these few rows.
EMPTY = ";".join(
    f"DELETE FROM {table}" for table in ("saga_history", "saga_steps", "sagas", "orders", "outbox")
)


class Runner:
    """The machine is synchronous: its database calls run on this event loop of its own."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.database = Database(url, max_size=2)

    def __call__(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        self(self.database.close())
        self.loop.close()


@pytest.fixture(scope="module")
def runner(orchestrator_db: AsyncEngine) -> Iterator[Runner]:
    runner = Runner(orchestrator_db.url.render_as_string(hide_password=False))
    yield runner
    runner.close()


class SagaServiceMachine(SagaProperties):
    """Each event through the saga service, on the real database."""

    def __init__(self, run: Runner) -> None:
        super().__init__()
        self.run = run

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.run.database)

    def restart_process(self) -> None:
        """The orchestrator's objects, new, on the same database."""
        self.sagas = SagaService(engine_for(self.definition, self.seed), clock=self.clock)
        self.scheduler = Scheduler(self.sagas, self.uow)

    def begin(self, workflow: WorkflowDefinition, seed: int, order_id: uuid.UUID) -> Observed:
        self.seed = seed
        self.saga_id = uuid.uuid4()
        self.history_read = 0
        self.outbox_read = 0
        self.statuses: set[str] = set()  # every status the saga has been in
        self.restart_process()
        return self.run(self._begin(workflow, order_id))

    async def _begin(self, workflow: WorkflowDefinition, order_id: uuid.UUID) -> Observed:
        async with self.run.database.connection() as conn:
            await conn.execute(EMPTY)
        async with self.uow() as uow:
            saga_store.insert_orders_at_commit(
                uow,
                [
                    saga_store.NewOrder(
                        order_id=order_id,
                        customer_id="props",
                        email="props@example.com",
                        items=[],
                        payment_method="none",
                        currency="USD",
                        status=OrderStatus.PENDING,
                        idempotency_key=None,
                        request_hash="props",
                        source="test",
                    )
                ],
            )
            new = NewSaga(
                self.saga_id, order_id, workflow, {"order_id": str(order_id)}, TRACEPARENT, "test"
            )
            await self.sagas.start(uow, [new])
            await uow.commit()
        return await self.observe()

    def handle(self, event: Event) -> Observed:
        return self.run(self._handle(event))

    async def _handle(self, event: Event) -> Observed:
        if isinstance(event, ReplyReceived | OperatorRetry | OperatorCancel):
            async with self.uow() as uow:
                if isinstance(event, ReplyReceived):
                    await self.sagas.on_replies([event.envelope], uow)
                elif isinstance(event, OperatorRetry):
                    await self.sagas.retry_by_operator(uow, self.saga_id, event.who, event.reason)
                else:
                    await self.sagas.cancel_by_operator(uow, self.saga_id, event.who, event.reason)
                await uow.commit()
        else:  # time has passed: what is due now, as the scheduler finds it
            moved = await self.scheduler.tick()
            assert moved in (0, 1)
        return await self.observe()

    def look(self) -> Observed:
        return self.run(self.observe())

    async def observe(self) -> Observed:
        """The saga read back as the service loads it, the history lines and outbox rows added
        since the last look, and its order's status."""
        async with self.run.database.connection() as conn:
            state = (await saga_store.lock(conn, [self.saga_id]))[self.saga_id]
            lines = await conn.fetch(
                "SELECT id, at, event, step, from_status, to_status, cause, detail"
                " FROM saga_history WHERE saga_id = $1 AND id > $2 ORDER BY id",
                self.saga_id,
                self.history_read,
            )
            rows = await conn.fetch(
                "SELECT id, topic, headers, value FROM outbox WHERE id > $1 ORDER BY id",
                self.outbox_read,
            )
            self.order_status = await conn.fetchval(
                "SELECT status FROM orders WHERE order_id = $1", state.order_id
            )
        history = []
        for line in lines:
            fields = dict(line)
            self.history_read = fields.pop("id")
            history.append(HistoryLine(**fields))
            if line["to_status"]:
                self.statuses.add(line["to_status"])
        messages = []
        for row in rows:
            self.outbox_read = row["id"]
            headers = [(k, v.encode()) for k, v in row["headers"]]
            envelope = Envelope.from_record(headers, row["value"], REGISTRY)
            assert envelope.saga_id == self.saga_id
            messages.append((row["topic"], envelope))
        return Observed(state, history, messages)

    @invariant()
    def the_order_follows_the_saga(self) -> None:
        if self.state.status.terminal:
            assert self.order_status == ORDER_STATUS_FOR[self.state.status]
        else:  # an order that needed attention keeps saying so while an operator's retry runs
            parked = SagaStatus.COMPENSATION_FAILED in self.statuses
            assert self.order_status == (
                OrderStatus.NEEDS_ATTENTION if parked else OrderStatus.PENDING
            )


# Seconds when it passes; a failure it finds is shrunk on the database, which takes minutes.
@pytest.mark.timeout(600)
def test_the_saga_service_keeps_the_properties_on_the_database(runner: Runner) -> None:
    profile = settings()  # the loaded profile's: `default` in make test, `props` in make props
    run_state_machine_as_test(
        # Any factory of machines will do (hypothesis documents it; its annotation says a class).
        lambda: SagaServiceMachine(runner),  # type: ignore[arg-type]
        settings=settings(
            profile,
            # Half the pure machine's examples: seconds in make test, minutes in make props.
            max_examples=max(10, profile.max_examples // 2),
        ),
    )
