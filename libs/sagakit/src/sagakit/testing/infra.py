"""Which infrastructure the tests use.

``SAGA_TEST_INFRA=local`` (what ``make test`` sets, after ``make infra-up``): the native local
infrastructure at the addresses in the settings. ``SAGA_TEST_INFRA=testcontainers``: containers
started by Testcontainers. Unset: local if a broker answers on the configured address, else
Testcontainers if a Docker engine is reachable, else a clear error.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap_servers: str
    redis_url: str
    # A SQLAlchemy URL template with ``{db}`` for the database (and role) name.
    postgres_url_template: str
    source: str

    def database_url(self, db: str) -> str:
        return self.postgres_url_template.format(db=db)


def local_infra() -> Infra:
    host = os.environ.get("POSTGRES_HOST", "127.0.0.1")
    port = os.environ.get("POSTGRES_PORT", "5432")
    return Infra(
        kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        postgres_url_template=f"postgresql+asyncpg://{{db}}:{{db}}@{host}:{port}/{{db}}",
        source="local",
    )


def _answers(address: str) -> bool:
    host, _, port = address.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1):
            return True
    except OSError:
        return False


def _docker_reachable() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def provide_infra() -> Iterator[Infra]:
    choice = os.environ.get("SAGA_TEST_INFRA", "")
    local = local_infra()
    if choice == "local" or (not choice and _answers(local.kafka_bootstrap_servers)):
        yield local
        return
    if choice not in ("", "testcontainers") or not _docker_reachable():
        raise RuntimeError(
            "no test infrastructure: run `make infra-up` (native Kafka, PostgreSQL, Redis) "
            "or start a Docker engine for Testcontainers"
        )
    with _containers() as infra:
        yield infra


DATABASES = ("orchestrator", "inventory", "payment", "notification", "sagatest")


@contextlib.contextmanager
def _containers() -> Iterator[Infra]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    init_sql = "".join(
        f"CREATE ROLE {db} LOGIN PASSWORD '{db}' CREATEDB; CREATE DATABASE {db} OWNER {db};"
        for db in DATABASES
    )
    with (
        KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft() as kafka,
        PostgresContainer("postgres:17", username="postgres", password="postgres") as pg,
        RedisContainer("redis:7") as redis,
    ):
        pg.exec(["psql", "-U", "postgres", "-c", init_sql])
        host, port = pg.get_container_host_ip(), pg.get_exposed_port(5432)
        yield Infra(
            kafka_bootstrap_servers=kafka.get_bootstrap_server(),
            redis_url=f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0",
            postgres_url_template=f"postgresql+asyncpg://{{db}}:{{db}}@{host}:{port}/{{db}}",
            source="testcontainers",
        )
