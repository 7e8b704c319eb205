"""Fixtures of the orchestrator's tests: its database (migrated once, truncated per test)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sagakit.db.engine import create_engine, create_session_factory
from sagakit.db.migrations import upgrade

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
TABLES = "saga_history, saga_steps, sagas, orders, outbox, inbox"


@pytest_asyncio.fixture(scope="session")
async def orchestrator_db(infra) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    url = infra.database_url("orchestrator")
    await asyncio.to_thread(upgrade, ALEMBIC_INI, url)
    engine = create_engine(url, pool_size=10)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def orchestrator_sessions(
    orchestrator_db: AsyncEngine,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with orchestrator_db.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    yield create_session_factory(orchestrator_db)


@pytest_asyncio.fixture
async def harness(orchestrator_sessions):  # type: ignore[no-untyped-def]
    from orchestrator.testing import Harness

    return Harness(orchestrator_sessions)
