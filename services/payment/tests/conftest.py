"""Fixtures of the payment service's tests: its migrated database, clean tables, a harness that
delivers commands to the real handlers the way the consumer does, and the simulated Stripe
(wrapped so that a test can inject timeouts)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import Row, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from payment.adapters.orm import OutboxMessage
from payment.adapters.simulated_stripe import SimulatedStripe
from payment.domain.gateway import ChargeResult, PaymentGateway, RefundResult
from payment.service_layer.handlers import make_batch_handler, make_handlers
from sagakit.contracts import REGISTRY, ProcessPayment, RefundPayment
from sagakit.db.engine import create_session_factory
from sagakit.db.pool import Database
from sagakit.errors import GatewayUnavailable
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


@pytest_asyncio.fixture
async def simulated_stripe(
    payment_sessions: async_sessionmaker[AsyncSession], payment_database: Database
) -> SimulatedStripe:
    gateway = SimulatedStripe(payment_database)
    await gateway.ensure_store()  # read by the tests before any call
    return gateway


class FaultyGateway:
    """A gateway with the faults a test injects: the next ``fail_next`` calls (charges or
    refunds) raise ``GatewayUnavailable`` as a timeout would; with ``fail_after_record`` the
    call goes through first, as when the gateway acted but its answer was lost on the way."""

    def __init__(
        self, inner: PaymentGateway, *, fail_next: int = 0, fail_after_record: bool = False
    ) -> None:
        self.inner = inner
        self.fail_next = fail_next
        self.fail_after_record = fail_after_record

    async def charge(self, **kwargs: Any) -> ChargeResult:
        failing = self._take_failure()
        if failing and not self.fail_after_record:
            raise GatewayUnavailable("charge timed out (injected)")
        result = await self.inner.charge(**kwargs)
        if failing:
            raise GatewayUnavailable("charge made, answer lost (injected)")
        return result

    async def refund(self, **kwargs: Any) -> RefundResult:
        failing = self._take_failure()
        if failing and not self.fail_after_record:
            raise GatewayUnavailable("refund timed out (injected)")
        result = await self.inner.refund(**kwargs)
        if failing:
            raise GatewayUnavailable("refund made, answer lost (injected)")
        return result

    def _take_failure(self) -> bool:
        if self.fail_next <= 0:
            return False
        self.fail_next -= 1
        return True


@pytest.fixture
def gateway(simulated_stripe: SimulatedStripe) -> FaultyGateway:
    """The simulated Stripe, faults injectable (none by default)."""
    return FaultyGateway(simulated_stripe)


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

    async def gateway_charges(self) -> list[Row[Any]]:
        """The simulated Stripe's charges (its own store)."""
        return await provider_rows(self.sessions, "charges")

    async def gateway_refunds(self) -> list[Row[Any]]:
        """The simulated Stripe's refunds, oldest first."""
        return await provider_rows(self.sessions, "refunds")

    async def count(self, model: type[Any]) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def provider_rows(sessions: async_sessionmaker[AsyncSession], table: str) -> list[Row[Any]]:
    """The rows of one of the simulated Stripe's tables, oldest first."""
    async with sessions() as session:
        result = await session.execute(
            text(f"SELECT * FROM simulated_stripe.{table} ORDER BY created_at")
        )
        return list(result.all())


@pytest.fixture
def harness(
    payment_sessions: async_sessionmaker[AsyncSession],
    payment_database: Database,
    gateway: FaultyGateway,
) -> Harness:
    return Harness(payment_sessions, payment_database, gateway)


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
