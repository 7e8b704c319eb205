"""Loading and locking sagas and orders."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.orm import Order, Saga, SagaEvent
from orchestrator.domain.status import SagaStatus


class SagaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, saga: Saga) -> None:
        self.session.add(saga)

    async def lock(self, saga_id: uuid.UUID) -> Saga | None:
        """The saga, row-locked until the transaction ends (replies and the scheduler serialise
        on this lock, so one saga is never advanced twice at once)."""
        stmt = select(Saga).where(Saga.saga_id == saga_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lock_if_deadline_passed(self, saga_id: uuid.UUID, now: datetime) -> Saga | None:
        """Lock the saga if its deadline has passed and no other replica holds it right now."""
        stmt = (
            select(Saga)
            .where(Saga.saga_id == saga_id, Saga.deadline_at <= now)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def lock_if_retry_due(self, saga_id: uuid.UUID, now: datetime) -> Saga | None:
        stmt = (
            select(Saga)
            .where(
                Saga.saga_id == saga_id,
                Saga.status == SagaStatus.COMPENSATING,
                Saga.next_retry_at.is_not(None),
                Saga.next_retry_at <= now,
            )
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def deadlines_passed(self, now: datetime, limit: int) -> list[uuid.UUID]:
        stmt = (
            select(Saga.saga_id)
            .where(Saga.deadline_at.is_not(None), Saga.deadline_at <= now)
            .order_by(Saga.deadline_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def retries_due(self, now: datetime, limit: int) -> list[uuid.UUID]:
        # Only sagas that are compensating AND have a retry time: never NULL, never terminal.
        stmt = (
            select(Saga.saga_id)
            .where(
                Saga.status == SagaStatus.COMPENSATING,
                Saga.next_retry_at.is_not(None),
                Saga.next_retry_at <= now,
            )
            .order_by(Saga.next_retry_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def get(self, saga_id: uuid.UUID) -> Saga | None:
        return await self.session.get(Saga, saga_id)

    async def by_order(self, order_id: uuid.UUID) -> Saga | None:
        stmt = select(Saga).where(Saga.order_id == order_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def history(self, saga_id: uuid.UUID) -> list[SagaEvent]:
        stmt = select(SagaEvent).where(SagaEvent.saga_id == saga_id).order_by(SagaEvent.id)
        return list((await self.session.execute(stmt)).scalars())

    async def list_by_status(
        self, status: SagaStatus | None, *, limit: int, offset: int = 0
    ) -> list[Saga]:
        stmt = select(Saga).order_by(Saga.created_at.desc()).limit(limit).offset(offset)
        if status is not None:
            stmt = stmt.where(Saga.status == status)
        return list((await self.session.execute(stmt)).scalars())


class OrderRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order | None:
        if not for_update:
            return await self.session.get(Order, order_id)
        stmt = select(Order).where(Order.order_id == order_id).with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def by_idempotency_key(self, customer_id: str, key: str) -> Order | None:
        stmt = select(Order).where(Order.customer_id == customer_id, Order.idempotency_key == key)
        return (await self.session.execute(stmt)).scalar_one_or_none()
