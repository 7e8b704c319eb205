"""Pytest fixtures shared by every package (registered by the root ``conftest.py``)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sagakit.db.engine import create_engine, create_session_factory
from sagakit.db.pool import Database
from sagakit.messaging.kafka_clients import KafkaSecurity
from sagakit.testing.infra import (
    LOCAL_KAFKA_SASL_PASSWORD,
    LOCAL_KAFKA_SASL_USERNAME,
    Infra,
    answers,
    provide_infra,
)
from sagakit.testing.kafka import create_topics, drop_created_topics, unique_name
from sagakit.testing.smtp import SmtpServer


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    with provide_infra() as provided:
        yield provided
        try:
            asyncio.run(drop_created_topics(provided.kafka_bootstrap_servers))
        except Exception as exc:  # a broker stopped by a test: the topics stay, nothing breaks
            warnings.warn(f"the test topics were not deleted: {exc!r}", stacklevel=1)


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: Infra) -> str:
    return infra.kafka_bootstrap_servers


@pytest.fixture(scope="session")
def kafka_sasl(infra: Infra) -> tuple[str, KafkaSecurity]:
    """The broker's SASL_PLAINTEXT listener and the security that logs in to it (PLAIN)."""
    bootstrap = infra.kafka_sasl_bootstrap_servers
    if bootstrap is None:
        pytest.fail(f"the {infra.source} infrastructure has no Kafka SASL listener")
    if not answers(bootstrap):
        pytest.fail(
            f"no Kafka SASL listener at {bootstrap}: `make infra-up` opens it (and restarts a "
            "broker started before it existed)"
        )
    return bootstrap, KafkaSecurity(
        protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username=LOCAL_KAFKA_SASL_USERNAME,
        sasl_password=SecretStr(LOCAL_KAFKA_SASL_PASSWORD),
    )


@pytest.fixture(scope="session")
def kafka_sasl_ssl(infra: Infra) -> tuple[str, KafkaSecurity]:
    """The broker's SASL_SSL listener and the security that logs in to it: PLAIN over TLS,
    the broker's certificate checked against the local CA."""
    bootstrap, ca_file = infra.kafka_sasl_ssl_bootstrap_servers, infra.kafka_ca_file
    if bootstrap is None or ca_file is None:
        pytest.fail(f"the {infra.source} infrastructure has no Kafka SASL_SSL listener")
    if not answers(bootstrap) or not ca_file.is_file():
        pytest.fail(
            f"no Kafka SASL_SSL listener at {bootstrap} (or no {ca_file}): `make infra-up` "
            "opens it (and restarts a broker started before it existed)"
        )
    return bootstrap, KafkaSecurity(
        protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username=LOCAL_KAFKA_SASL_USERNAME,
        sasl_password=SecretStr(LOCAL_KAFKA_SASL_PASSWORD),
        ssl_ca_file=str(ca_file),
    )


@pytest.fixture(scope="session")
def stripe_mock(infra: Infra) -> str:
    """stripe-mock's API base URL (native, or a container with Testcontainers)."""
    return infra.stripe_api_base


@pytest.fixture(scope="session")
def smtp_server(infra: Infra) -> SmtpServer:
    """The project's SMTP server and its mail folder (native, or a process of the test run)."""
    return infra.smtp


@pytest_asyncio.fixture
async def new_topic(kafka_bootstrap: str) -> Callable[..., Awaitable[str]]:
    """Create a fresh topic (and its DLQ) for this test; returns its name."""

    async def make(prefix: str = "t", partitions: int = 3) -> str:
        name = unique_name(prefix)
        await create_topics(kafka_bootstrap, [name, f"{name}.dlq"], partitions)
        return name

    return make


@pytest.fixture(scope="session")
def sagatest_url(infra: Infra) -> str:
    return infra.database_url("sagatest")


@pytest_asyncio.fixture(scope="session")
async def sagatest_engine(sagatest_url: str) -> AsyncIterator[AsyncEngine]:
    """The scratch database of the shared library's tests, with the outbox and inbox tables."""
    from sagakit.db.models import Base
    from sagakit.outbox import tables  # noqa: F401  (registers the outbox and inbox)

    engine = create_engine(sagatest_url, pool_size=5)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture
async def session_factory(
    sagatest_engine: AsyncEngine,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on clean tables (truncated before each test)."""
    from sagakit.db.models import Base
    from sagakit.outbox import tables  # noqa: F401

    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with sagatest_engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    yield create_session_factory(sagatest_engine)


@pytest_asyncio.fixture(scope="session")
async def sagatest_database(sagatest_url: str) -> AsyncIterator[Database]:
    database = Database(sagatest_url, max_size=8)
    yield database
    await database.close()


@pytest_asyncio.fixture
async def database(
    sagatest_database: Database, session_factory: async_sessionmaker[AsyncSession]
) -> Database:
    """The asyncpg pool of units of work, on the same clean tables as ``session_factory``."""
    return sagatest_database
