"""Fixtures of the orchestrator's tests: its database (migrated once, truncated per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sagakit.db.engine import create_session_factory
from sagakit.db.pool import Database
from sagakit.testing.databases import migrated_engine, pool_of, truncate_all

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
