"""The whole system as real processes: four services on fresh topics and the test databases."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from sagakit.db.engine import asyncpg_dsn
from sagakit.db.tls import PLAIN
from sagakit.testing.databases import reset_database
from sagakit.testing.infra import Infra
from sagakit.testing.kafka import create_topics, unique_name
from sagakit.testing.processes import ServiceProcess

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Chaos tests restart the broker and the database: run them after everything else."""
    items.sort(key=lambda item: item.get_closest_marker("chaos") is not None)


SERVICES = ("orchestrator", "inventory", "payment", "notification")
TOPICS = [
    "orders",
    "order.events",
    *(
        f"{p}.{kind}"
        for p in ("inventory", "payment", "notification")
        for kind in ("commands", "replies")
    ),
]
# Short timeouts and fast retries so every path finishes in seconds; generous attempts so a
# participant that is down for a while is waited for rather than given up on.
SYSTEM_ENV = {
    "SAGA_STEP_TIMEOUT_S": "4",
    "COMPENSATION_RETRY_BASE_S": "0.2",
    "COMPENSATION_RETRY_CAP_S": "1.0",
    "COMPENSATION_MAX_ATTEMPTS": "8",
    "SMTP_TIMEOUT_S": "1",
    "PAYMENT_GATEWAY": "simulated",
    "LOG_LEVEL": "INFO",
}


@dataclass
class System:
    infra: Infra
    prefix: str
    processes: dict[str, ServiceProcess]

    @property
    def api(self) -> str:
        return self.processes["orchestrator"].base_url

    @property
    def inventory_api(self) -> str:
        return self.processes["inventory"].base_url

    async def query(self, service: str, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(asyncpg_dsn(self.infra.database_url(service)), **PLAIN)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    async def consumed(self, service: str, outcome: str) -> float:
        """Records the service's consumer counted with this outcome ("handled", "duplicate"),
        from its /metrics."""
        async with httpx.AsyncClient(base_url=self.processes[service].base_url) as client:
            text = (await client.get("/metrics")).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("saga_messages_consumed_total{") and f'outcome="{outcome}"' in line
        )

    async def restart(self, service: str) -> None:
        new = replace(self.processes[service], process=None)  # same name, port, module, env
        self.processes[service] = new
        await new.start()
        await new.wait_ready()


def running_system(
    infra: Infra, logs: Path, **env_overrides: str
) -> contextlib.AbstractAsyncContextManager[System]:
    """The four services on fresh topics and freshly migrated, emptied test databases."""
    return _running(infra, logs, env_overrides, split_orchestrator=False)


def running_split_system(
    infra: Infra, logs: Path, **env_overrides: str
) -> contextlib.AbstractAsyncContextManager[System]:
    """The same, with the orchestrator as `make demo ORCHESTRATOR_SPLIT=1` runs it: its API role
    ("orchestrator") and its engine role ("orchestrator-engine") in two processes."""
    return _running(infra, logs, env_overrides, split_orchestrator=True)


@contextlib.asynccontextmanager
async def _running(
    infra: Infra, logs: Path, env_overrides: dict[str, str], *, split_orchestrator: bool
) -> AsyncIterator[System]:
    prefix = unique_name("e2e") + "."
    await create_topics(infra.kafka_bootstrap_servers, [prefix + t for t in TOPICS], partitions=3)
    processes = {}
    for service in SERVICES:
        await reset_database(
            ROOT / "services" / service / "alembic.ini", infra.database_url(service)
        )
        env = {
            **SYSTEM_ENV,
            **env_overrides,
            f"{service.upper()}_DATABASE_URL": infra.database_url(service),
            "KAFKA_BOOTSTRAP_SERVERS": infra.kafka_bootstrap_servers,
            "REDIS_URL": infra.redis_url,
            "KAFKA_TOPIC_PREFIX": prefix,
            "SMTP_HOST": infra.smtp.host,
            "SMTP_PORT": str(infra.smtp.port),
        }
        processes[service] = ServiceProcess(service, env, logs / f"{service}.log")
    if split_orchestrator:
        both = processes["orchestrator"]
        both.env["ORCHESTRATOR_ROLES"] = "api"
        processes["orchestrator-engine"] = ServiceProcess(
            "orchestrator-engine",
            {**both.env, "ORCHESTRATOR_ROLES": "engine"},
            logs / "orchestrator-engine.log",
            module="orchestrator",
        )
    await asyncio.gather(*(p.start() for p in processes.values()))
    try:
        await asyncio.gather(*(p.wait_ready() for p in processes.values()))
        yield System(infra, prefix, processes)
    finally:
        codes = await asyncio.gather(
            *(p.terminate() for p in processes.values()), return_exceptions=True
        )
        for process in processes.values():
            process.kill()
        for name, code in zip(processes, codes, strict=True):
            assert code == 0, f"{name} did not stop cleanly ({code}): {processes[name].tail()}"


@pytest_asyncio.fixture(scope="module")
async def system(infra: Infra, tmp_path_factory) -> AsyncIterator[System]:  # type: ignore[no-untyped-def]
    async with running_system(infra, tmp_path_factory.mktemp("services")) as system:
        yield system
