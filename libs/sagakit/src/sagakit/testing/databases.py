"""A service's database for tests and test runs: migrated to head, emptied on demand."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sagakit.db.engine import create_engine
from sagakit.db.migrations import upgrade
from sagakit.db.pool import Database

# Every schema's tables (the service's, and a simulator's own store such as the simulated
# Stripe's), but not Alembic's version table.
_TABLES = (
    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
    " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
    " AND NOT (schemaname = 'public' AND tablename = 'alembic_version')"
)


@contextlib.asynccontextmanager
async def migrated_engine(
    alembic_ini: Path, url: str, *, pool_size: int = 10
) -> AsyncIterator[AsyncEngine]:
    """An engine on the database at ``url``, migrated with the service's Alembic first."""
    await asyncio.to_thread(upgrade, alembic_ini, url)
    engine = create_engine(url, pool_size=pool_size)
    try:
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def pool_of(engine: AsyncEngine, *, max_size: int = 10) -> AsyncIterator[Database]:
    """The asyncpg pool (units of work) on the same database as ``engine``."""
    database = Database(engine.url.render_as_string(hide_password=False), max_size=max_size)
    try:
        yield database
    finally:
        await database.close()


async def truncate_all(engine: AsyncEngine) -> None:
    """Empty every table of the database, in every schema (not Alembic's version table)."""
    async with engine.begin() as conn:
        names = [row[0] for row in await conn.execute(text(_TABLES))]
        if names:
            await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))


async def reset_database(alembic_ini: Path, url: str) -> None:
    """Migrate to head and empty every table: a fresh start for a test run."""
    async with migrated_engine(alembic_ini, url, pool_size=1) as engine:
        await truncate_all(engine)
