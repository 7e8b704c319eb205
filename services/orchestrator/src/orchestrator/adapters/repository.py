"""Reading sagas and orders through the ORM: the HTTP API's read paths (the hot path writes
with ``saga_store``)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters.orm import Order, Saga, SagaEvent
from orchestrator.domain.status import SagaStatus


class SagaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

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
