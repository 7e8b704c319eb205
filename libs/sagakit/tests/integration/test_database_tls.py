"""DB_SSLMODE reaches every way the services connect to PostgreSQL (the asyncpg pool, the
SQLAlchemy engine, the outbox relay, the migrations, the audit's reads), proven against the
local server, which offers TLS with a certificate of the local CA (`make infra-up`):
``verify-full`` with that CA connects encrypted, as ``pg_stat_ssl`` says from the server's side;
a CA that did not sign it is refused; a client certificate is presented. Without DB_SSLMODE
nothing is encrypted (asyncpg alone would take the offered TLS: ``prefer``)."""

import asyncio
import os
import shutil
import ssl
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from sagakit.db.engine import asyncpg_dsn, create_engine
from sagakit.db.pool import Database
from sagakit.db.tls import PostgresTls
from sagakit.errors import DatabaseUnavailable
from sagakit.messaging.producer import Producer
from sagakit.outbox.relay import OutboxRelay
from sagakit.testing.infra import Infra
from sagakit.testing.tls import Certificates, make_certificates

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[4]
MY_SSL = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
UNTRUSTED = "certificate verify failed"


@pytest.fixture(scope="module")
def local_ca(infra: Infra) -> Path:
    folder = infra.postgres_tls_dir
    if folder is None:
        pytest.fail(f"the {infra.source} PostgreSQL offers no TLS")
    if not (folder / "ca.pem").is_file():
        pytest.fail(f"no {folder / 'ca.pem'}: `make infra-up` makes the local CA")
    return folder / "ca.pem"


@pytest.fixture(scope="module")
def verify_full(local_ca: Path) -> PostgresTls:
    return PostgresTls(mode="verify-full", ca_file=str(local_ca))


@pytest.fixture(scope="module")
def foreign_ca(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A CA the server knows nothing of, and a certificate it signed."""
    return make_certificates(tmp_path_factory.mktemp("foreign-ca"), "client")


@pytest.fixture(scope="module")
def client_certificate(local_ca: Path, tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A client certificate signed by the local CA (the server checks those it is shown)."""
    folder = tmp_path_factory.mktemp("client-cert")
    shutil.copy(local_ca, folder / "ca.pem")
    shutil.copy(local_ca.with_name("ca.key"), folder / "ca.key")
    return make_certificates(folder, "client")


async def _pool_ssl(url: str, tls: PostgresTls | None = None, sql: str = MY_SSL) -> object:
    database = Database(url, max_size=1) if tls is None else Database(url, max_size=1, tls=tls)
    try:
        return await database.fetchval(sql)
    finally:
        await database.close()


async def test_without_sslmode_every_path_connects_in_clear(sagatest_url: str) -> None:
    assert await _pool_ssl(sagatest_url) is False
    engine = create_engine(sagatest_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text(MY_SSL))).scalar_one() is False
    finally:
        await engine.dispose()


async def test_the_pool_verifies_the_server(
    sagatest_url: str, verify_full: PostgresTls, foreign_ca: Certificates
) -> None:
    assert await _pool_ssl(sagatest_url, verify_full) is True
    localhost = sagatest_url.replace("127.0.0.1", "localhost")  # the other name in the SAN
    assert await _pool_ssl(localhost, verify_full) is True
    assert await _pool_ssl(sagatest_url, PostgresTls(mode="disable")) is False
    untrusted = PostgresTls(mode="verify-full", ca_file=str(foreign_ca.ca_file))
    with pytest.raises(DatabaseUnavailable, match=f"cannot connect: .*{UNTRUSTED}"):
        await _pool_ssl(sagatest_url, untrusted)


async def test_the_engine_verifies_the_server(
    sagatest_url: str, verify_full: PostgresTls, foreign_ca: Certificates
) -> None:
    engine = create_engine(sagatest_url, pool_size=1, tls=verify_full)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text(MY_SSL))).scalar_one() is True
    finally:
        await engine.dispose()
    untrusted = PostgresTls(mode="verify-ca", ca_file=str(foreign_ca.ca_file))
    engine = create_engine(sagatest_url, pool_size=1, tls=untrusted)
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match=UNTRUSTED):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_the_relay_verifies_the_server(
    sagatest_url: str, sagatest_engine, verify_full: PostgresTls, foreign_ca: Certificates, caplog
) -> None:
    # sagatest_engine: the outbox table the relay reads once leader.
    async def relay_ssl(tls: PostgresTls) -> tuple[bool, object]:
        """Whether the relay became leader, and whether its connection (the advisory lock's
        holder) is encrypted."""
        relay = OutboxRelay(
            sagatest_url,
            Producer("127.0.0.1:1", client_id="unused"),
            name=f"tls-{uuid.uuid4().hex}",
            tls=tls,
        )
        task = asyncio.create_task(relay.run())
        encrypted: object = None
        try:
            for _ in range(100):
                if relay.is_leader or UNTRUSTED in caplog.text:
                    break
                await asyncio.sleep(0.05)
            if relay.is_leader:
                encrypted = await _pool_ssl(
                    sagatest_url,
                    sql="SELECT bool_and(s.ssl) FROM pg_locks l JOIN pg_stat_ssl s USING (pid) "
                    f"WHERE l.locktype = 'advisory' AND l.objid = {relay._lock_key}",
                )
            return relay.is_leader, encrypted
        finally:
            relay.stop()
            await asyncio.wait_for(task, timeout=10)

    assert await relay_ssl(verify_full) == (True, True)
    untrusted = PostgresTls(mode="verify-full", ca_file=str(foreign_ca.ca_file))
    assert await relay_ssl(untrusted) == (False, None)
    assert UNTRUSTED in caplog.text


def test_the_migrations_verify_the_server(
    infra: Infra, local_ca: Path, foreign_ca: Certificates
) -> None:
    # `alembic upgrade` as `make migrate` runs it, in a process of its own (importing a
    # service's models here would add its tables to this session's shared metadata). Only a
    # TLS connection checks a CA: the foreign one refused, the local one accepted.
    def migrate(ca_file: Path) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "INVENTORY_DATABASE_URL": infra.database_url("inventory"),
            "DB_SSLMODE": "verify-full",
            "DB_SSL_CA_FILE": str(ca_file),
        }
        ini = ROOT / "services" / "inventory" / "alembic.ini"
        return subprocess.run(
            [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    refused = migrate(foreign_ca.ca_file)
    assert refused.returncode != 0
    assert UNTRUSTED in refused.stderr
    done = migrate(local_ca)
    assert done.returncode == 0, done.stderr


async def test_a_client_certificate_is_presented_and_checked(
    sagatest_url: str, local_ca: Path, client_certificate: Certificates, foreign_ca: Certificates
) -> None:
    tls = PostgresTls(
        mode="verify-full",
        ca_file=str(local_ca),
        cert_file=str(client_certificate.cert_file),
        key_file=str(client_certificate.key_file),
    )
    sql = "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    assert await _pool_ssl(sagatest_url, tls, sql) == "/CN=127.0.0.1"
    # One the server's CA did not sign is refused by the server (ssl_ca_file = the local CA).
    stranger = PostgresTls(
        mode="verify-full",
        ca_file=str(local_ca),
        cert_file=str(foreign_ca.cert_file),
        key_file=str(foreign_ca.key_file),
    )
    with pytest.raises(DatabaseUnavailable, match="cannot connect"):
        await _pool_ssl(sagatest_url, stranger)


async def test_plain_asyncpg_takes_the_offered_tls(sagatest_url: str) -> None:
    # Why the default must be explicit: asyncpg's own (prefer) would encrypt here.
    conn = await asyncpg.connect(asyncpg_dsn(sagatest_url))
    try:
        assert await conn.fetchval(MY_SSL) is True
    finally:
        await conn.close()
