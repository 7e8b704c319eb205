"""Each service starts as a real process, reports ready, and exits cleanly on SIGTERM."""

import asyncio
import time
from pathlib import Path

import pytest

from sagakit.db.migrations import upgrade
from sagakit.testing.kafka import unique_name
from sagakit.testing.processes import ServiceProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["orchestrator", "inventory", "payment", "notification"]


def service_env(infra, service: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        f"{service.upper()}_DATABASE_URL": infra.database_url(service),
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
        "REDIS_URL": infra.redis_url,
        "KAFKA_TOPIC_PREFIX": unique_name("life") + ".",
    }


@pytest.mark.parametrize("service", SERVICES)
async def test_service_starts_reports_ready_and_stops_on_sigterm(
    service: str, infra, tmp_path: Path
) -> None:
    await asyncio.to_thread(
        upgrade, ROOT / "services" / service / "alembic.ini", infra.database_url(service)
    )
    proc = ServiceProcess(service, service_env(infra, service), tmp_path / f"{service}.log")
    await proc.start()
    try:
        await proc.wait_ready()
        assert await proc.status("/healthz") == 200
        assert await proc.status("/metrics") == 200
        started = time.monotonic()
        code = await proc.terminate(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        proc.kill()
    assert code == 0, proc.tail()
    assert elapsed < 10
    log = proc.tail(200)
    assert "SIGTERM received" in log
    assert f"{service} stopped" in log


async def test_a_service_without_its_database_is_alive_but_not_ready(infra, tmp_path: Path) -> None:
    env = service_env(infra, "inventory")
    env["INVENTORY_DATABASE_URL"] = "postgresql+asyncpg://inventory:inventory@127.0.0.1:1/inventory"
    proc = ServiceProcess("inventory", env, tmp_path / "inventory.log")
    await proc.start()
    try:
        deadline = time.monotonic() + 20
        while await proc.status("/healthz") != 200:
            assert time.monotonic() < deadline, proc.tail()
            await asyncio.sleep(0.2)
        assert await proc.status("/readyz") == 503
        assert await proc.terminate(timeout=10) == 0, proc.tail()
    finally:
        proc.kill()
