"""Fixtures of the orchestrator's tests: its database (migrated once, truncated per test), and
its HTTP app in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from orchestrator.bootstrap import bootstrap
from orchestrator.settings import Settings
from sagakit.db.engine import create_session_factory
from sagakit.db.pool import Database
from sagakit.runtime import Service
from sagakit.testing.databases import migrated_engine, pool_of, truncate_all
from sagakit.testing.kafka import unique_name

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


@pytest_asyncio.fixture(scope="session")
async def orchestrator_db(infra) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    async with migrated_engine(ALEMBIC_INI, infra.database_url("orchestrator")) as engine:
        yield engine


@pytest_asyncio.fixture
async def orchestrator_sessions(
    orchestrator_db: AsyncEngine,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await truncate_all(orchestrator_db)
    yield create_session_factory(orchestrator_db)


@pytest_asyncio.fixture(scope="session")
async def orchestrator_database(orchestrator_db: AsyncEngine) -> AsyncIterator[Database]:
    async with pool_of(orchestrator_db) as database:
        yield database


@pytest_asyncio.fixture
async def harness(orchestrator_sessions, orchestrator_database):  # type: ignore[no-untyped-def]
    from orchestrator_harness import Harness

    return Harness(orchestrator_sessions, orchestrator_database)


ApiClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest_asyncio.fixture
async def api_client(infra, orchestrator_sessions) -> AsyncIterator[ApiClient]:  # type: ignore[no-untyped-def]
    """``await api_client(**settings)``: an HTTP client on the orchestrator's whole app (as
    bootstrapped, with these settings changed), in process on the real database and Redis, in
    a topic and Redis namespace of its own. Closed, with the app, after the test."""
    opened: list[tuple[Service, httpx.AsyncClient]] = []

    async def make(**overrides: Any) -> httpx.AsyncClient:
        settings = Settings(
            database_url=infra.database_url("orchestrator"),
            redis_url=infra.redis_url,
            kafka_topic_prefix=unique_name("api") + ".",
            **overrides,
        )
        service = bootstrap(settings)
        transport = httpx.ASGITransport(app=service.app)
        client = httpx.AsyncClient(transport=transport, base_url="http://test")
        opened.append((service, client))
        return client

    yield make
    for service, client in opened:
        await client.aclose()
        for close in service.closers:
            await close()
        await service.engine.dispose()
