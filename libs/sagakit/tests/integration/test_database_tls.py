"""DB_SSLMODE reaches every way the services connect to PostgreSQL: the asyncpg pool, the
SQLAlchemy engine, the outbox relay and the migrations. The local server offers no TLS, so
``require`` must be refused by each of them (a path that ignored the setting would connect in
clear), while ``prefer`` falls back to a plain connection and ``disable`` never asks."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from sagakit.db.engine import create_engine
from sagakit.db.pool import Database
from sagakit.db.tls import PostgresTls
from sagakit.messaging.producer import Producer
from sagakit.outbox.relay import OutboxRelay

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]
REQUIRE = PostgresTls(mode="require")
REFUSED = "rejected SSL upgrade"


async def test_the_pool_uses_the_sslmode(sagatest_url: str) -> None:
    for mode in ("prefer", "disable"):
        database = Database(sagatest_url, max_size=1, tls=PostgresTls(mode=mode))
        try:
            assert await database.fetchval("SELECT 1") == 1
        finally:
            await database.close()
    database = Database(sagatest_url, max_size=1, tls=REQUIRE)
    try:
        with pytest.raises(Exception, match=REFUSED):
            await database.fetchval("SELECT 1")
    finally:
        await database.close()


async def test_the_engine_uses_the_sslmode(sagatest_url: str) -> None:
    engine = create_engine(sagatest_url, pool_size=1, tls=REQUIRE)
    try:
        with pytest.raises(Exception, match=REFUSED):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_the_relay_uses_the_sslmode(sagatest_url: str, caplog) -> None:
    relay = OutboxRelay(
        sagatest_url, Producer("127.0.0.1:1", client_id="unused"), name="tls", tls=REQUIRE
    )
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(100):
            if REFUSED in caplog.text:
                break
            await asyncio.sleep(0.05)
    finally:
        relay.stop()
        await asyncio.wait_for(task, timeout=10)
    assert REFUSED in caplog.text
    assert not relay.is_leader


def test_the_migrations_use_the_sslmode(infra) -> None:
    # `alembic upgrade` as `make migrate` runs it, in a process of its own (importing a
    # service's models here would add its tables to this session's shared metadata).
    env = {
        **os.environ,
        "INVENTORY_DATABASE_URL": infra.database_url("inventory"),
        "DB_SSLMODE": "require",
    }
    ini = ROOT / "services" / "inventory" / "alembic.ini"
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert REFUSED in done.stderr
