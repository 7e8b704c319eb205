"""Fixtures of the inventory tests: the migrated inventory database, clean before each test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from inventory.adapters.orm import OutboxMessage, Product
from inventory.adapters.repository import InventoryRepository
from inventory.domain.catalog import NewProduct
from inventory.service_layer import catalog
from inventory.service_layer.handlers import make_handlers
from sagakit.consumer import Handler
from sagakit.contracts import REGISTRY
from sagakit.db.engine import create_session_factory
from sagakit.db.pool import Database
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.settings import Topics
from sagakit.testing.databases import migrated_engine, pool_of, truncate_all
from sagakit.testing.infra import Infra

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TEST_TOPICS = Topics("inventory-test.")


@pytest.fixture(scope="session")
def inventory_url(infra: Infra) -> str:
    return infra.database_url("inventory")


@pytest_asyncio.fixture(scope="session")
async def inventory_engine(inventory_url: str) -> AsyncIterator[AsyncEngine]:
    # Enough connections for the concurrency tests to really contend for rows.
    async with migrated_engine(ALEMBIC_INI, inventory_url, pool_size=25) as engine:
        yield engine


@pytest_asyncio.fixture
async def inventory_sessions(
    inventory_engine: AsyncEngine,
) -> async_sessionmaker[AsyncSession]:
    """A session factory on clean inventory tables (truncated before each test)."""
    await truncate_all(inventory_engine)
    return create_session_factory(inventory_engine)


@pytest_asyncio.fixture(scope="session")
async def inventory_database(inventory_engine: AsyncEngine) -> AsyncIterator[Database]:
    async with pool_of(inventory_engine, max_size=25) as database:
        yield database


@pytest.fixture
def handlers() -> dict[str, Handler]:
    return make_handlers(TEST_TOPICS)


Products = Callable[..., Awaitable[None]]


@pytest.fixture
def add_products(inventory_sessions: async_sessionmaker[AsyncSession]) -> Products:
    """``await add_products(("widget", 1999, "USD", 10), ...)``: (id, price, currency, stock)."""

    async def add(*rows: tuple[str, int, str, int]) -> None:
        for product_id, price, currency, stock in rows:
            async with inventory_sessions() as session:
                await catalog.add_product(
                    InventoryRepository(session),
                    NewProduct(product_id, product_id.title(), price, currency, stock),
                )

    return add


StockOf = Callable[[str], Awaitable[tuple[int, int]]]


@pytest.fixture
def stock_of(inventory_sessions: async_sessionmaker[AsyncSession]) -> StockOf:
    """``await stock_of("widget")`` -> (available, reserved), checking the books balance."""

    async def read(product_id: str) -> tuple[int, int]:
        async with inventory_sessions() as session:
            product = (
                await session.scalars(select(Product).where(Product.product_id == product_id))
            ).one()
            assert product.available + product.reserved == product.initial_stock
            return product.available, product.reserved

    return read


Outbox = Callable[[], Awaitable[list[Envelope[Message]]]]


@pytest.fixture
def outbox(inventory_sessions: async_sessionmaker[AsyncSession]) -> Outbox:
    """``await outbox()``: every message written to the outbox, decoded, in order."""

    async def read() -> list[Envelope[Message]]:
        async with inventory_sessions() as session:
            rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        return [
            Envelope.from_record([(k, v.encode()) for k, v in row.headers], row.value, REGISTRY)
            for row in rows
        ]

    return read


Send = Callable[..., Awaitable[Envelope[Message]]]


@pytest.fixture
def send(
    inventory_database: Database,
    handlers: dict[str, Handler],
    outbox: Outbox,
) -> Send:
    """Run a command's handler in its own UnitOfWork, commit, and return the reply it wrote
    to the outbox (decoded, as the orchestrator would receive it)."""

    async def run(payload: Message, *, saga_id: uuid.UUID | None = None) -> Envelope[Message]:
        order_id = getattr(payload, "order_id", None)
        command = Envelope(
            payload=payload,
            saga_id=saga_id or uuid.uuid4(),
            order_id=order_id,
            step="reserve_inventory",
        )
        async with UnitOfWork(inventory_database) as uow:
            await handlers[payload.message_type](command, uow)
            await uow.commit()
        replies = [reply for reply in await outbox() if reply.causation_id == command.message_id]
        assert len(replies) == 1, replies
        return replies[0]

    return run
