"""Alembic support shared by every service's ``migrations/env.py`` (async template)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from sagakit.db.tls import AS_THE_URL_SAYS, PostgresTls


def run_env(metadata: MetaData, url: str, tls: PostgresTls = AS_THE_URL_SAYS) -> None:
    """Body of a service's ``env.py``: offline SQL or online async migrations (over TLS as the
    service's ``DB_SSLMODE``/``DB_SSL_*`` settings say)."""
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_online(metadata, url, tls))


async def _run_online(metadata: MetaData, url: str, tls: PostgresTls) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args=tls.connect_args(url))
    async with engine.connect() as conn:
        await conn.run_sync(_do_run, metadata)
    await engine.dispose()


def _do_run(connection: Connection, metadata: MetaData) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def upgrade(alembic_ini: Path, url: str, revision: str = "head") -> None:
    """Migrate a database programmatically (tests, ``make migrate``). Blocking: use a thread."""
    cfg = Config(str(alembic_ini))
    cfg.set_main_option("script_location", str(alembic_ini.parent / "migrations"))
    cfg.attributes["database_url"] = url
    command.upgrade(cfg, revision)


def database_url_for(default: str) -> str:
    """The URL given by ``upgrade()``, else the service's settings."""
    return str(context.config.attributes.get("database_url") or default)
