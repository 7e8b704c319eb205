"""The asyncpg pool of a service's hot paths (handlers, intake, scheduler, relay reads).

Message handling talks to PostgreSQL through asyncpg directly: prepared statements and
multi-row statements, none of the ORM's per-statement work. The SQLAlchemy engine
(``sagakit.db.engine``) stays for the cold paths (HTTP reads, admin, catalog).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson

from sagakit.db.engine import asyncpg_dsn
from sagakit.db.errors import is_connection_lost
from sagakit.db.tls import AS_THE_URL_SAYS, PostgresTls
from sagakit.errors import DatabaseUnavailable


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python values, through orjson (asyncpg's default is text).
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Connections are always returned outside a transaction with no session state (the unit
    of work rolls back what it did not commit; locks are transaction-scoped), so asyncpg's
    default reset, one round trip per release, buys nothing."""


class Database:
    """A lazily connected asyncpg pool: the service starts even while PostgreSQL is down."""

    def __init__(self, url: str, *, max_size: int = 10, tls: PostgresTls = AS_THE_URL_SAYS) -> None:
        self._dsn = asyncpg_dsn(url)
        self._connect_args = tls.connect_args(url)
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Create the pool (no connection is opened yet). Called by the runtime; the first
        ``connection()`` calls it too, so tools and tests need not."""
        async with self._starting:
            if self._pool is not None:
                return
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=0,
                max_size=self._max_size,
                init=_init_connection,
                reset=_no_reset,
                timeout=5,
                command_timeout=60,
                **self._connect_args,
            )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Database.start() was not awaited")
        return self._pool

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection. A lost connection drops the whole pool's connections, so the
        next attempt after a PostgreSQL restart gets a fresh one instead of the next dead one."""
        if self._pool is None:
            await self.start()
        try:
            conn = await self.pool.acquire()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise DatabaseUnavailable(f"database: cannot connect: {exc}") from exc
        try:
            yield conn
        except BaseException as exc:
            if is_connection_lost(exc):
                await self.pool.expire_connections()
            raise
        finally:
            await self.pool.release(conn)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.connection() as conn:
            return await conn.fetchval(query, *args)
