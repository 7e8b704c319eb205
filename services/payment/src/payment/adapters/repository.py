"""Reads and writes of the payment records, inside the handler's unit of work."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from payment.adapters.orm import Payment, Refund, RefundAttempt


class PaymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def payment(self, order_id: uuid.UUID) -> Payment | None:
        return await self._session.get(Payment, order_id)

    async def refund(self, order_id: uuid.UUID) -> Refund | None:
        return await self._session.get(Refund, order_id)

    async def refused_refunds(self, order_id: uuid.UUID) -> int:
        """How many refund attempts of this order the gateway refused."""
        count = await self._session.scalar(
            select(func.count())
            .select_from(RefundAttempt)
            .where(RefundAttempt.order_id == order_id)
        )
        return int(count or 0)

    async def add(self, record: Payment | Refund | RefundAttempt) -> None:
        # Flushed now, so a concurrent duplicate fails here, inside the handler's transaction.
        self._session.add(record)
        await self._session.flush()
