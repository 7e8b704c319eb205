"""Which infrastructure the tests use.

Tests never touch the services' own databases (a running demo keeps its data): each role gets a
``<name>_test`` database, created on first use.

``SAGA_TEST_INFRA=local`` (what ``make test`` sets, after ``make infra-up``): the native local
infrastructure at the addresses in the settings. ``SAGA_TEST_INFRA=testcontainers``: containers
started by Testcontainers (Kafka, PostgreSQL, Redis, stripe-mock) and the project's SMTP server
as a process (``sagakit.testing.smtp``). Unset: local if a broker answers on the configured
address, else Testcontainers if a Docker engine is reachable, else a clear error.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sagakit.settings import bootstrap_addresses
from sagakit.testing.smtp import REPO_ROOT, SmtpServer, local_mail_dir, smtp_server_process

# stripe-mock's image, the version `make infra-up` builds natively (scripts/infra).
STRIPE_MOCK_IMAGE = "stripe/stripe-mock:v0.203.0"


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap_servers: str
    redis_url: str
    # A SQLAlchemy URL template with ``{role}`` and ``{db}``; each role's password is its name.
    postgres_url_template: str
    source: str
    # stripe-mock's API base URL, and the project's SMTP server with the folder it stores mail in.
    stripe_api_base: str
    smtp: SmtpServer
    # The broker's SASL_PLAINTEXT and SASL_SSL listeners (PLAIN login, LOCAL_KAFKA_SASL_* below;
    # the certificate of the local CA, kafka_ca_file), opened by `make infra-up` on KAFKA_PORT +
    # 20 and + 30; None where there are none (Testcontainers).
    kafka_sasl_bootstrap_servers: str | None = None
    kafka_sasl_ssl_bootstrap_servers: str | None = None
    kafka_ca_file: Path | None = None
    # The local CA's folder (ca.pem, ca.key: test credentials) whose certificate PostgreSQL
    # serves with ssl = on (`make infra-up`); None where the server offers no TLS.
    postgres_tls_dir: Path | None = None

    def database_url(self, role: str) -> str:
        """The test database of a service's role (``inventory`` -> ``inventory_test``)."""
        return self.postgres_url_template.format(role=role, db=f"{role}_test")

    def role_database_url(self, role: str) -> str:
        return self.postgres_url_template.format(role=role, db=role)


# The one user of the local SASL listener (scripts/infra/lib.sh): a test credential.
LOCAL_KAFKA_SASL_USERNAME = "saga"
LOCAL_KAFKA_SASL_PASSWORD = "saga-local-password"


def _local_sasl_bootstrap(variable: str, offset: int) -> str:
    """Node 1's SASL (or SASL_SSL) port as scripts/infra/lib.sh picks it: ``variable``
    (KAFKA_SASL_PORT, KAFKA_SASL_SSL_PORT), else KAFKA_PORT + ``offset``. One address is enough
    to bootstrap from."""
    port = os.environ.get(variable) or str(int(os.environ.get("KAFKA_PORT", "9092")) + offset)
    return f"127.0.0.1:{port}"


def local_infra() -> Infra:
    host = os.environ.get("POSTGRES_HOST", "127.0.0.1")
    port = os.environ.get("POSTGRES_PORT", "5432")
    return Infra(
        kafka_sasl_bootstrap_servers=_local_sasl_bootstrap("KAFKA_SASL_PORT", 20),
        kafka_sasl_ssl_bootstrap_servers=_local_sasl_bootstrap("KAFKA_SASL_SSL_PORT", 30),
        kafka_ca_file=REPO_ROOT / ".infra" / "tls" / "ca.pem",
        postgres_tls_dir=REPO_ROOT / ".infra" / "tls",
        kafka_bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        postgres_url_template=f"postgresql+asyncpg://{{role}}:{{role}}@{host}:{port}/{{db}}",
        source="local",
        stripe_api_base=os.environ.get("STRIPE_API_BASE", "http://127.0.0.1:12111"),
        smtp=SmtpServer(
            host=os.environ.get("SMTP_HOST", "127.0.0.1"),
            port=int(os.environ.get("SMTP_PORT", "1025")),
            mail_dir=Path(os.environ.get("SMTP_MAIL_DIR", local_mail_dir())),
        ),
    )


def answers(bootstrap: str) -> bool:
    """Any node of the bootstrap list accepts a connection (one may be down in a cluster)."""
    for address in bootstrap_addresses(bootstrap):
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            continue
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
    if choice == "local" or (not choice and answers(local.kafka_bootstrap_servers)):
        _create_test_databases(local)
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
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HttpWaitStrategy
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
        # Ready when it serves the API (stripe-mock accepts any sk_test_ key).
        DockerContainer(STRIPE_MOCK_IMAGE)
        .with_exposed_ports(12111)
        .waiting_for(
            HttpWaitStrategy(12111, "/v1/customers").with_header(
                "Authorization", "Bearer sk_test_123"
            )
        ) as stripe_mock,
        # The project's own server (its reject/tempfail rules), as a local process: no image to
        # build, and the tests read its mail folder directly.
        smtp_server_process() as smtp,
    ):
        pg.exec(["psql", "-U", "postgres", "-c", init_sql])
        host, port = pg.get_container_host_ip(), pg.get_exposed_port(5432)
        infra = Infra(
            kafka_bootstrap_servers=kafka.get_bootstrap_server(),
            redis_url=f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0",
            postgres_url_template=f"postgresql+asyncpg://{{role}}:{{role}}@{host}:{port}/{{db}}",
            source="testcontainers",
            stripe_api_base=(
                f"http://{stripe_mock.get_container_host_ip()}:"
                f"{stripe_mock.get_exposed_port(12111)}"
            ),
            smtp=smtp,
        )
        _create_test_databases(infra)
        yield infra


def _create_test_databases(infra: Infra) -> None:
    """Create each role's ``<role>_test`` database if missing (roles have CREATEDB)."""
    import threading

    import asyncpg

    from sagakit.db.engine import asyncpg_dsn
    from sagakit.db.tls import PLAIN

    async def create() -> None:
        for role in DATABASES:
            conn = await asyncpg.connect(
                asyncpg_dsn(infra.role_database_url(role)), timeout=10, **PLAIN
            )
            try:
                exists = await conn.fetchval(
                    "SELECT 1 FROM pg_database WHERE datname = $1", f"{role}_test"
                )
                if not exists:
                    await conn.execute(f'CREATE DATABASE "{role}_test" OWNER "{role}"')
            finally:
                await conn.close()

    # A thread of its own: this runs from a synchronous fixture, maybe beside a running loop.
    errors: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run(create, errors))
    thread.start()
    thread.join()
    if errors:
        raise RuntimeError(f"cannot create the test databases: {errors[0]}") from errors[0]


def _run(create: Any, errors: list[BaseException]) -> None:
    import asyncio

    try:
        asyncio.run(create())
    except BaseException as exc:
        errors.append(exc)
