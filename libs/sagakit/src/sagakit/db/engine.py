"""Async engine and session factory (SQLAlchemy 2 + asyncpg)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from sagakit.db.tls import AS_THE_URL_SAYS, PostgresTls


def create_engine(
    url: str, *, pool_size: int = 10, tls: PostgresTls = AS_THE_URL_SAYS
) -> AsyncEngine:
    return create_async_engine(
        url,
        connect_args=tls.connect_args(url),
        pool_size=pool_size,
        max_overflow=pool_size // 2,
        # No pre-ping (a round trip per checkout): a connection found dead raises a disconnect
        # error, SQLAlchemy then drops the whole pool, and the consumer retries the record.
        pool_recycle=1800,
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def asyncpg_dsn(url: str) -> str:
    """The plain libpq form of a SQLAlchemy URL, for raw asyncpg connections."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
