"""Test support (not shipped with the service): drives the real engine on the real orchestrator database, without Kafka: commands are read
back from the outbox and replies are built from them, exactly as a participant would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.adapters.orm import Order, Saga, SagaEvent
from orchestrator.domain.engine import RetryPolicy, SagaEngine
from orchestrator.domain.order_workflow import order_workflow
from orchestrator.domain.workflow import WorkflowDefinition, WorkflowRegistry
from orchestrator.service_layer.intake import OrderIntake, Placed
from orchestrator.service_layer.sagas import SagaService
from orchestrator.service_layer.scheduler import Scheduler
from sagakit.contracts import REGISTRY, OrderItem, PlaceOrder
from sagakit.db.pool import Database
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message, MessageRegistry
from sagakit.outbox.tables import OutboxMessage
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.settings import Topics


@dataclass
class FakeClock:
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Sent:
    topic: str
    envelope: Envelope[Any]
    headers: dict[str, str]


class Harness:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        database: Database,
        *,
        workflows: WorkflowRegistry | None = None,
        workflow: str = "order",
        retry: RetryPolicy | None = None,
        registry: MessageRegistry = REGISTRY,
    ) -> None:
        self.sessions = sessions
        self.database = database
        self.clock = FakeClock()
        self.registry = registry
        if workflows is None:
            workflows = WorkflowRegistry()
            workflows.register(order_workflow(step_timeout_s=10))
        self.workflows = workflows
        self.engine = SagaEngine(
            workflows,
            Topics(),
            retry=retry or RetryPolicy(base_s=1.0, cap_s=8.0, max_attempts=3),
        )
        self.sagas = SagaService(self.engine, clock=self.clock)
        self.intake = OrderIntake(self.sagas, workflows.latest(workflow))
        self.scheduler = Scheduler(self.sagas, self.uow)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.database)

    def use(self, definition: WorkflowDefinition) -> None:
        self.intake = OrderIntake(self.sagas, definition)

    async def place(self, payment_method: str = "pm_card_visa", **changes: Any) -> Placed:
        request = PlaceOrder(
            order_id=changes.pop("order_id", uuid.uuid4()),
            customer_id=changes.pop("customer_id", "cust-1"),
            email=changes.pop("email", "buyer@example.com"),
            items=changes.pop("items", [OrderItem(product_id="widget", quantity=2)]),
            payment_method=payment_method,
            currency=changes.pop("currency", "USD"),
        )
        async with self.uow() as uow:
            placed = await self.intake.place(
                uow,
                request,
                idempotency_key=changes.pop("idempotency_key", None),
                source="test",
                traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            )
            await uow.commit()
        return placed

    async def sent(self, saga_id: uuid.UUID) -> list[Sent]:
        """Every message the orchestrator wrote for this saga, in order."""
        async with self.sessions() as session:
            rows = (
                await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))
            ).scalars()
            out = []
            for row in rows:
                headers = {k: v for k, v in row.headers}
                if headers.get("saga-id") != str(saga_id):
                    continue
                raw = [(k, v.encode()) for k, v in row.headers]
                out.append(
                    Sent(row.topic, Envelope.from_record(raw, row.value, self.registry), headers)
                )
            return out

    async def last_command(self, saga_id: uuid.UUID) -> Envelope[Any]:
        commands = [s for s in await self.sent(saga_id) if s.topic.endswith(".commands")]
        return commands[-1].envelope

    async def reply(
        self, saga_id: uuid.UUID, payload: Message, to: Envelope[Any] | None = None
    ) -> Envelope[Any]:
        """Answer the last command (or ``to``) as a participant would."""
        command = to or await self.last_command(saga_id)
        envelope = command.reply(payload)
        await self.deliver(envelope)
        return envelope

    async def deliver(self, envelope: Envelope[Any]) -> None:
        async with self.uow() as uow:
            await self.sagas.on_replies([envelope], uow)
            await uow.commit()

    async def saga(self, saga_id: uuid.UUID) -> Saga:
        async with self.sessions() as session:
            saga = await session.get(Saga, saga_id)
            assert saga is not None
            return saga

    async def order(self, order_id: uuid.UUID) -> Order:
        async with self.sessions() as session:
            order = await session.get(Order, order_id)
            assert order is not None
            return order

    async def history(self, saga_id: uuid.UUID) -> list[SagaEvent]:
        async with self.sessions() as session:
            stmt = select(SagaEvent).where(SagaEvent.saga_id == saga_id).order_by(SagaEvent.id)
            return list((await session.execute(stmt)).scalars())

    async def command_types(self, saga_id: uuid.UUID) -> list[str]:
        return [
            s.envelope.message_type
            for s in await self.sent(saga_id)
            if s.topic.endswith(".commands")
        ]
