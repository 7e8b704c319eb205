"""Secrets never reach a log: real service processes, every secret set (database password,
admin token, Stripe key, SMTP password, Kafka SASL password), logging at DEBUG, started
through the broker's SASL listener; and the errors of a refused database password or Kafka
login, which name the problem, not the secret."""

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from sagakit.db.migrations import upgrade
from sagakit.messaging.kafka_clients import KafkaSecurity
from sagakit.testing.kafka import unique_name
from sagakit.testing.processes import ServiceProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

ADMIN_TOKEN = "admin-token-SECRET-a1"
STRIPE_KEY = "sk_test_SECRET-b2"
SMTP_PASSWORD = "smtp-password-SECRET-c3"
DB_PASSWORD = "db-password-SECRET-d4"
KAFKA_PASSWORD = "kafka-password-SECRET-e5"
SECRETS = (ADMIN_TOKEN, STRIPE_KEY, SMTP_PASSWORD, DB_PASSWORD, KAFKA_PASSWORD, "SECRET")


def _assert_no_secret(text: str, *also: str) -> None:
    for secret in (*SECRETS, *also):
        assert secret not in text, f"{secret!r} shown:\n{text}"


def _env(infra, service: str, bootstrap: str, security: KafkaSecurity) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        f"{service.upper()}_DATABASE_URL": infra.database_url(service),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_SECURITY_PROTOCOL": security.protocol,
        "KAFKA_SASL_MECHANISM": security.sasl_mechanism or "",
        "KAFKA_SASL_USERNAME": security.sasl_username,
        "KAFKA_SASL_PASSWORD": security.sasl_password.get_secret_value(),
        "KAFKA_TOPIC_PREFIX": unique_name("secrets") + ".",
        "REDIS_URL": infra.redis_url,
        "APP_ENV": "production",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "STRIPE_API_KEY": STRIPE_KEY,
        "SMTP_USERNAME": "mailer",
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "SMTP_TLS": "starttls",
        "LOG_LEVEL": "DEBUG",
    }


async def test_a_service_started_with_every_secret_logs_none(
    infra, kafka_sasl: tuple[str, KafkaSecurity], tmp_path: Path
) -> None:
    # Payment reads the most of them (the Stripe key too); all four share the code that logs.
    service = "payment"
    bootstrap, security = kafka_sasl
    url = infra.database_url(service)
    await asyncio.to_thread(upgrade, ROOT / "services" / service / "alembic.ini", url)
    proc = ServiceProcess(service, _env(infra, service, bootstrap, security), tmp_path / "log")
    await proc.start()
    try:
        await proc.wait_ready()  # through the SASL listener: the login works end to end
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=5) as client:
            shown = "".join([(await client.get(p)).text for p in ("/readyz", "/metrics")])
        assert await proc.terminate(timeout=10) == 0
    finally:
        proc.kill()
    log = proc.log_path.read_text()
    assert f"{service} running" in log
    # The known passwords of the local database role and SASL user are not unique strings:
    # what must never show is the URL with its password, or the SASL password.
    password = make_url(url).password or ""
    _assert_no_secret(log + shown, f":{password}@", security.sasl_password.get_secret_value())


async def test_a_refused_database_password_is_reported_without_it(
    infra, kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Notification: its SMTP password is set too.
    url = make_url(infra.database_url("notification")).set(password=DB_PASSWORD)
    env = _env(infra, "notification", kafka_bootstrap, KafkaSecurity())
    env["NOTIFICATION_DATABASE_URL"] = url.render_as_string(hide_password=False)
    proc = ServiceProcess("notification", env, tmp_path / "log")
    await proc.start()
    try:
        deadline = time.monotonic() + 30
        while "password authentication failed" not in proc.log_path.read_text():
            assert time.monotonic() < deadline, proc.tail()
            assert proc.process is not None
            assert proc.process.returncode is None, proc.tail()
            await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=5) as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 503
        await proc.terminate(timeout=10)
    finally:
        proc.kill()
    _assert_no_secret(proc.log_path.read_text() + ready.text)


async def test_a_refused_kafka_login_stops_the_service_with_one_clear_line(
    infra, kafka_sasl: tuple[str, KafkaSecurity], tmp_path: Path
) -> None:
    bootstrap, security = kafka_sasl
    env = _env(infra, "payment", bootstrap, security)
    env["KAFKA_SASL_PASSWORD"] = KAFKA_PASSWORD
    proc = ServiceProcess("payment", env, tmp_path / "log")
    await proc.start()
    assert proc.process is not None
    try:
        code = await asyncio.wait_for(proc.process.wait(), timeout=30)
    finally:
        proc.kill()
    log = proc.log_path.read_text()
    assert code == 2, log  # a configuration error: restarting will not help
    refused = [line for line in log.splitlines() if "refused the login" in line]
    assert len(refused) == 1, log
    assert "Invalid username or password" in refused[0]
    assert "KAFKA_SASL_PASSWORD" in refused[0]
    assert "Traceback" not in log
    _assert_no_secret(log)
