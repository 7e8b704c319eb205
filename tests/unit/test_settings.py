"""Secure defaults and startup checks of the settings, through the real entry points too."""

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from inventory.settings import Settings as InventorySettings
from notification.settings import Settings as NotificationSettings
from orchestrator.settings import Settings as OrchestratorSettings
from payment.settings import Settings as PaymentSettings
from sagakit.ops.auth import bearer_matches
from sagakit.settings import settings_error_line

pytestmark = pytest.mark.unit

SECRETS = {
    "ADMIN_TOKEN": "admin-SECRET-1",
    "PAYMENT_DATABASE_URL": "postgresql+asyncpg://payment:pw-SECRET-2@127.0.0.1:1/payment",
    "REDIS_URL": "redis://:pw-SECRET-3@127.0.0.1:1/0",
    "STRIPE_API_KEY": "sk_test_SECRET-4",
}


def _shows_no_secret(text: str) -> None:
    for value in ("SECRET-1", "SECRET-2", "SECRET-3", "SECRET-4", "SECRET-5", "SECRET-6"):
        assert value not in text


def test_repr_and_str_of_the_settings_show_no_secret(monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = PaymentSettings()
    _shows_no_secret(repr(settings) + str(settings) + str(settings.model_dump()))
    assert settings.stripe_api_key.get_secret_value() == "sk_test_SECRET-4"
    notification = NotificationSettings(SMTP_USERNAME="mailer", SMTP_PASSWORD="smtp-SECRET-6")
    _shows_no_secret(repr(notification))


def test_an_error_about_other_settings_shows_no_secret(monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("ADMIN_TOKEN", "local-admin-token")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ValidationError) as caught:
        PaymentSettings()
    _shows_no_secret(settings_error_line(caught.value))


@pytest.mark.parametrize("token", ["", "local-admin-token", "  "])
def test_outside_local_the_default_or_an_empty_admin_token_is_refused(monkeypatch, token) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("ADMIN_TOKEN", token)
    with pytest.raises(ValidationError, match="ADMIN_TOKEN"):
        OrchestratorSettings()


def test_locally_the_default_admin_token_is_accepted_and_a_real_one_anywhere(monkeypatch) -> None:
    monkeypatch.delenv("ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("APP_ENV", raising=False)
    assert InventorySettings().admin_token.get_secret_value() == "local-admin-token"
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("ADMIN_TOKEN", "a-real-secret")
    assert InventorySettings().app_env == "production"


def test_bearer_tokens_are_compared_whole_and_never_raise() -> None:
    assert bearer_matches("Bearer t0k", "t0k")
    assert bearer_matches("bearer t0k", "t0k")
    for header in (None, "", "Bearer", "Bearer t0", "Bearer t0k ", "Basic t0k", "Bearer tök"):
        assert not bearer_matches(header, "t0k")
    assert not bearer_matches("Bearer ", "")


@pytest.mark.parametrize(
    ("service", "env", "variable"),
    [
        ("inventory", {"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ("inventory", {"INVENTORY_HTTP_PORT": "eighty"}, "INVENTORY_HTTP_PORT"),
        ("orchestrator", {"ORCHESTRATOR_HTTP_PORT": "70000"}, "ORCHESTRATOR_HTTP_PORT"),
        ("notification", {"SMTP_TIMEOUT_S": "45", "SAGA_STEP_TIMEOUT_S": "30"}, "SMTP_TIMEOUT_S"),
        ("payment", {"APP_ENV": "production", "ADMIN_TOKEN": ""}, "ADMIN_TOKEN"),
        ("payment", {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ("orchestrator", {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            "inventory",
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"},
            "KAFKA_SSL_CA_FILE",
        ),
    ],
)
def test_a_bad_setting_stops_the_service_with_one_line(service, env, variable, tmp_path) -> None:
    # The real entry point, in an empty folder (no .env), every other setting a secret.
    full_env = {**os.environ, **SECRETS, **env}
    done = subprocess.run(
        [sys.executable, "-m", service],
        env=full_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{service}: invalid settings: ")
    assert variable in lines[0]
    assert "Traceback" not in done.stderr
    _shows_no_secret(done.stderr + done.stdout)


NOT_PEM = __file__  # a readable file that is no certificate


@pytest.mark.parametrize(
    ("settings", "env", "variables"),
    [
        # Kafka: a login needs all of it, and nothing of it without SASL; TLS files need TLS.
        (
            OrchestratorSettings,
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"],
        ),
        (
            PaymentSettings,
            {
                "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
                "KAFKA_SASL_MECHANISM": "scram-sha-512",
                "KAFKA_SASL_USERNAME": "shop",
            },
            ["KAFKA_SASL_PASSWORD"],
        ),
        (
            InventorySettings,
            {"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_PASSWORD": "kafka-SECRET-5"},
            ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_PASSWORD", "KAFKA_SECURITY_PROTOCOL=PLAINTEXT"],
        ),
        (OrchestratorSettings, {"KAFKA_SECURITY_PROTOCOL": "TLS"}, ["KAFKA_SECURITY_PROTOCOL"]),
        (
            OrchestratorSettings,
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": "GSSAPI",
                "KAFKA_SASL_USERNAME": "shop",
                "KAFKA_SASL_PASSWORD": "kafka-SECRET-5",
            },
            ["KAFKA_SASL_MECHANISM"],
        ),
        (PaymentSettings, {"KAFKA_SSL_CA_FILE": NOT_PEM}, ["KAFKA_SSL_CA_FILE", "uses no TLS"]),
        (
            PaymentSettings,
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": NOT_PEM},
            ["KAFKA_SSL_CA_FILE: cannot be loaded"],
        ),
        (
            PaymentSettings,
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"},
            ["KAFKA_SSL_CA_FILE", "is not a readable file"],
        ),
        (
            PaymentSettings,
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_FILE": NOT_PEM},
            ["KAFKA_SSL_KEY_FILE set without KAFKA_SSL_CERT_FILE"],
        ),
        # PostgreSQL TLS.
        (InventorySettings, {"DB_SSLMODE": "sometimes"}, ["DB_SSLMODE"]),
        (
            InventorySettings,
            {"DB_SSLMODE": "verify-full", "DB_SSL_CA_FILE": "/nonexistent/root.crt"},
            ["DB_SSL_CA_FILE", "is not a readable file"],
        ),
        (InventorySettings, {"DB_SSL_CA_FILE": NOT_PEM}, ["DB_SSL_CA_FILE", "DB_SSLMODE=(unset)"]),
        (
            InventorySettings,
            {"DB_SSLMODE": "verify-ca", "DB_SSL_CA_FILE": NOT_PEM},
            ["DB_SSL_CA_FILE: cannot be loaded"],
        ),
        # SMTP.
        (NotificationSettings, {"SMTP_PORT": "twenty-five"}, ["SMTP_PORT"]),
        (NotificationSettings, {"SMTP_TLS": "sometimes"}, ["SMTP_TLS"]),
        (NotificationSettings, {"SMTP_USERNAME": "mailer"}, ["SMTP_USERNAME and SMTP_PASSWORD"]),
        (
            NotificationSettings,
            {"SMTP_TLS_CA_FILE": "/nonexistent/ca.pem", "SMTP_TLS": "starttls"},
            ["SMTP_TLS_CA_FILE"],
        ),
        (
            NotificationSettings,
            {
                "APP_ENV": "production",
                "SMTP_USERNAME": "mailer",
                "SMTP_PASSWORD": "smtp-SECRET-6",
                "SMTP_TLS": "auto",
            },
            ["SMTP_TLS=auto could send SMTP_PASSWORD in clear"],
        ),
        (
            NotificationSettings,
            {"SMTP_TIMEOUT_S": "30", "SAGA_STEP_TIMEOUT_S": "30"},
            ["SMTP_TIMEOUT_S"],
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(monkeypatch, settings, env, variables) -> None:
    for name, value in {**SECRETS, **env}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        settings()
    line = settings_error_line(caught.value)
    assert "\n" not in line
    for variable in variables:
        assert variable in line
    _shows_no_secret(line)
