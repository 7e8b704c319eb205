"""Fixtures of the payment service's tests: its migrated database, clean tables, a harness that
delivers commands to the real handlers the way the consumer does, and the local gateway."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payment.adapters.local_gateway import LocalGateway
from payment.adapters.orm import GatewayCharge, GatewayRefund, OutboxMessage
from payment.domain.gateway import PaymentGateway
from payment.service_layer.handlers import make_batch_handler, make_handlers
from sagakit.contracts import REGISTRY, ProcessPayment, RefundPayment
from sagakit.db.engine import create_session_factory
from sagakit.db.pool import Database
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.testing.databases import migrated_engine, pool_of, truncate_all
from sagakit.testing.infra import Infra

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
REPLY_TOPIC = "payment.replies.test"


@pytest.fixture(scope="session")
def payment_db_url(infra: Infra) -> str:
    return infra.database_url("payment")


@pytest_asyncio.fixture(scope="session")
async def payment_engine(payment_db_url: str) -> AsyncIterator[AsyncEngine]:
    async with migrated_engine(ALEMBIC_INI, payment_db_url, pool_size=5) as engine:
        yield engine


@pytest_asyncio.fixture
async def payment_sessions(
    payment_engine: AsyncEngine,
) -> async_sessionmaker[AsyncSession]:
    """A session factory on the payment database, its tables emptied first."""
    await truncate_all(payment_engine)
    return create_session_factory(payment_engine)


@pytest_asyncio.fixture(scope="session")
async def payment_database(payment_engine: AsyncEngine) -> AsyncIterator[Database]:
    async with pool_of(payment_engine) as database:
        yield database


@pytest.fixture
def local_gateway(
    payment_sessions: async_sessionmaker[AsyncSession], payment_database: Database
) -> LocalGateway:
    return LocalGateway(payment_database)


class Harness:
    """Delivers envelopes to the real handlers as the consumer does (inbox row, handler, commit
    in one unit of work) and reads what they replied and what the gateway recorded."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        database: Database,
        gateway: PaymentGateway,
    ) -> None:
        self.sessions = sessions
        self.database = database
        self.gateway = gateway
        self.handlers = make_handlers(reply_topic=REPLY_TOPIC, gateway=gateway)
        self._offset = 0

    async def deliver(self, envelope: Envelope[Any]) -> bool:
        """False when the inbox already knew the message id (a redelivery)."""
        async with UnitOfWork(self.database) as uow:
            self._offset += 1
            fresh = await uow.record_inbox(envelope, topic="t", partition=0, offset=self._offset)
            if fresh:
                await self.handlers[envelope.message_type](envelope, uow)
            await uow.commit()
        return fresh

    async def deliver_batch(self, envelopes: list[Envelope[Any]]) -> None:
        """Several commands in one transaction, as the consumer hands a partition batch over."""
        batch = make_batch_handler(reply_topic=REPLY_TOPIC, gateway=self.gateway)
        async with UnitOfWork(self.database) as uow:
            await batch(envelopes, uow)
            await uow.commit()

    async def deliver_then_crash(self, envelope: Envelope[Any]) -> None:
        """The handler runs (and calls the gateway), then the process dies before the commit:
        the inbox row, the records and the reply all roll back. Raises ``RuntimeError``."""
        async with UnitOfWork(self.database) as uow:
            await uow.record_inbox(envelope, topic="t", partition=0, offset=0)
            await self.handlers[envelope.message_type](envelope, uow)
            raise RuntimeError("simulated crash before commit")

    async def replies(self) -> list[Envelope[Message]]:
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.topic == REPLY_TOPIC)
                    .order_by(OutboxMessage.id)
                )
            ).all()
        return [
            Envelope.from_record(
                [(name, value.encode()) for name, value in row.headers], row.value, REGISTRY
            )
            for row in rows
        ]

    async def gateway_charges(self) -> list[GatewayCharge]:
        async with self.sessions() as session:
            return list(await session.scalars(select(GatewayCharge)))

    async def gateway_refunds(self) -> list[GatewayRefund]:
        async with self.sessions() as session:
            return list(
                await session.scalars(select(GatewayRefund).order_by(GatewayRefund.created_at))
            )

    async def count(self, model: type[Any]) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@pytest.fixture
def harness(
    payment_sessions: async_sessionmaker[AsyncSession],
    payment_database: Database,
    local_gateway: LocalGateway,
) -> Harness:
    return Harness(payment_sessions, payment_database, local_gateway)


@pytest.fixture
def harness_for(
    payment_sessions: async_sessionmaker[AsyncSession], payment_database: Database
) -> Callable[[PaymentGateway], Harness]:
    """A harness over another gateway (Stripe)."""
    return lambda gateway: Harness(payment_sessions, payment_database, gateway)


class Commands:
    """Commands of one saga, as the orchestrator sends them (each call: a new message id)."""

    def __init__(self) -> None:
        self.order_id = uuid.uuid4()
        self.saga_id = uuid.uuid4()

    def process(
        self, payment_method: str = "pm_card_visa", amount: int = 2599, currency: str = "EUR"
    ) -> Envelope[ProcessPayment]:
        return Envelope(
            payload=ProcessPayment(
                order_id=self.order_id,
                customer_id="cust-1",
                amount=amount,
                currency=currency,
                payment_method=payment_method,
            ),
            saga_id=self.saga_id,
            order_id=self.order_id,
            step="process_payment",
        )

    def refund(self) -> Envelope[RefundPayment]:
        return Envelope(
            payload=RefundPayment(order_id=self.order_id),
            saga_id=self.saga_id,
            order_id=self.order_id,
            step="process_payment",
        )


@pytest.fixture
def saga() -> Commands:
    return Commands()


@pytest.fixture
def saga_factory() -> Callable[[], Commands]:
    """Commands of a new saga at each call (several orders in one test)."""
    return Commands
