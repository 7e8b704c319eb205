"""Settings shared by every service, read from the environment or `.env` (pydantic-settings).

Each service subclasses ``ServiceSettings`` and adds its own database URL and HTTP port under
service-prefixed variable names (``INVENTORY_DATABASE_URL``), so one `.env` serves all four.
Settings are built in ``bootstrap()``, never at import time.

Secrets (database and Redis URLs, which carry passwords, the admin token, the Kafka SASL
password) are ``SecretStr``: a repr, a log line or an error message shows ``**********``; the
code that needs the value asks for it with ``get_secret_value()``. A bad setting stops the
service at startup with one line naming the variable (``settings_error_line``), never a
traceback.

Reaching managed infrastructure: ``KafkaSettings`` (SASL PLAIN/SCRAM, TLS) and
``DatabaseTlsSettings`` (PostgreSQL ``sslmode``, CA, client certificate) are shared by the
services and the sagaops tools, so each reads the same variables.
"""

from __future__ import annotations

import os
import ssl
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sagakit.db.tls import VERIFYING_MODES, PostgresTls, SslMode
from sagakit.messaging.kafka_clients import KafkaSecurity, SaslMechanism, SecurityProtocol

# The admin token of a laptop. Anywhere but ``APP_ENV=local`` a service refuses to start with it.
DEFAULT_ADMIN_TOKEN = "local-admin-token"
LOCAL_ENV = "local"

# The HTTP port of every service, bounded (subclasses repeat it with their own alias).
MIN_PORT, MAX_PORT = 1, 65_535


class SettingsError(ValueError):
    """A setting that is well formed on its own but wrong (with others, or for the environment).

    Raised inside a validator, so pydantic reports it as a ``ValidationError``; the message names
    the variable(s).
    """


def settings_error_line(exc: ValidationError) -> str:
    """One line naming each bad variable and why; never the values (they may be secrets)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(part) for part in error["loc"])
        msg = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc.upper()}: {msg}" if loc else msg)
    return "invalid settings: " + "; ".join(parts)


def bootstrap_addresses(value: str) -> list[str]:
    """``host:port`` entries of a comma-separated Kafka bootstrap list (a cluster's nodes).

    Spaces and empty entries are dropped (a trailing comma would otherwise become a bogus
    ``:9092`` address); an entry without a port is an error rather than a silent default.
    """
    addresses = [part.strip() for part in value.split(",") if part.strip()]
    if not addresses:
        raise ValueError("no Kafka address given (expected host:port[,host:port...])")
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"Kafka address {address!r} is not host:port")
    return addresses


class Topics:
    """Topic names, optionally prefixed so that test runs and demos never share topics."""

    ORDERS = "orders"
    ORDER_EVENTS = "order.events"

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def commands(self, participant: str) -> str:
        return self.name(f"{participant}.commands")

    def replies(self, participant: str) -> str:
        return self.name(f"{participant}.replies")

    @property
    def orders(self) -> str:
        return self.name(self.ORDERS)

    @property
    def order_events(self) -> str:
        return self.name(self.ORDER_EVENTS)

    @staticmethod
    def dlq(topic: str) -> str:
        """Where the consumer of ``topic`` dead-letters (the one place this suffix is made)."""
        return f"{topic}.dlq"

    @staticmethod
    def is_dlq(topic: str) -> bool:
        return topic.endswith(".dlq")


def _readable_file(value: str, what: str) -> str:
    """An optional file setting: empty is "not set"; anything else must be a readable file."""
    value = value.strip()
    if value and not (os.path.isfile(value) and os.access(value, os.R_OK)):
        raise ValueError(f"{what} {value!r} is not a readable file")
    return value


def _check_pem(variable: str, load: Any) -> None:
    """Load a CA or a certificate once, so a file that is not PEM fails at startup."""
    try:
        load()
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise SettingsError(f"{variable}: cannot be loaded ({exc})") from None


class _EnvSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )


class KafkaSettings(_EnvSettings):
    """Where the broker is and how to log in: every Kafka client (services and tools) reads
    these, through ``kafka_security`` and ``sagakit.messaging.kafka_clients``."""

    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", validation_alias="KAFKA_BOOTSTRAP_SERVERS"
    )
    # PLAINTEXT (local), SSL, SASL_PLAINTEXT or SASL_SSL (a managed broker).
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", validation_alias="KAFKA_SECURITY_PROTOCOL"
    )
    # PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with SASL_*, refused without.
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None, validation_alias="KAFKA_SASL_MECHANISM"
    )
    kafka_sasl_username: str = Field(default="", validation_alias="KAFKA_SASL_USERNAME")
    kafka_sasl_password: SecretStr = Field(
        default=SecretStr(""), validation_alias="KAFKA_SASL_PASSWORD"
    )
    # With SSL/SASL_SSL: the CA that signed the broker's certificate (PEM; empty: the system's
    # CAs), and a client certificate and key for mutual TLS (PEM; optional).
    kafka_ssl_ca_file: str = Field(default="", validation_alias="KAFKA_SSL_CA_FILE")
    kafka_ssl_cert_file: str = Field(default="", validation_alias="KAFKA_SSL_CERT_FILE")
    kafka_ssl_key_file: str = Field(default="", validation_alias="KAFKA_SSL_KEY_FILE")

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_list(cls, value: str) -> str:
        # One string for aiokafka (which splits on commas), normalised and checked here.
        return ",".join(bootstrap_addresses(value))

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_or_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().upper() or None
        return value

    @field_validator("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")
    @classmethod
    def _kafka_file(cls, value: str) -> str:
        return _readable_file(value, "file")

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> KafkaSettings:
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            missing = [
                name
                for name, given in (
                    ("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
                    ("KAFKA_SASL_USERNAME", self.kafka_sasl_username.strip()),
                    ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password.get_secret_value()),
                )
                if not given
            ]
            if missing:
                raise SettingsError(
                    f"KAFKA_SECURITY_PROTOCOL={protocol} logs in: set {', '.join(missing)}"
                )
        else:
            given = [
                name
                for name, value in (
                    ("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
                    ("KAFKA_SASL_USERNAME", self.kafka_sasl_username.strip()),
                    ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password.get_secret_value()),
                )
                if value
            ]
            if given:
                raise SettingsError(
                    f"{', '.join(given)} set but KAFKA_SECURITY_PROTOCOL={protocol} does not "
                    "log in (use SASL_SSL, or SASL_PLAINTEXT)"
                )
        if protocol not in ("SSL", "SASL_SSL"):
            files = [
                name
                for name, value in (
                    ("KAFKA_SSL_CA_FILE", self.kafka_ssl_ca_file),
                    ("KAFKA_SSL_CERT_FILE", self.kafka_ssl_cert_file),
                    ("KAFKA_SSL_KEY_FILE", self.kafka_ssl_key_file),
                )
                if value
            ]
            if files:
                raise SettingsError(
                    f"{', '.join(files)} set but KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS "
                    "(use SSL or SASL_SSL)"
                )
        if self.kafka_ssl_key_file and not self.kafka_ssl_cert_file:
            raise SettingsError("KAFKA_SSL_KEY_FILE set without KAFKA_SSL_CERT_FILE")
        if protocol in ("SSL", "SASL_SSL"):
            security = self.kafka_security
            variable = "KAFKA_SSL_CERT_FILE" if self.kafka_ssl_cert_file else "KAFKA_SSL_CA_FILE"
            _check_pem(variable, security.ssl_context)
        return self

    @property
    def kafka_security(self) -> KafkaSecurity:
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username.strip(),
            sasl_password=self.kafka_sasl_password,
            ssl_ca_file=self.kafka_ssl_ca_file or None,
            ssl_cert_file=self.kafka_ssl_cert_file or None,
            ssl_key_file=self.kafka_ssl_key_file or None,
        )


def kafka_security_from_env() -> KafkaSecurity:
    """The services' Kafka security (environment, then ``.env``), for tools and scripts."""
    return KafkaSettings().kafka_security


def database_tls_from_env() -> PostgresTls:
    """The services' PostgreSQL TLS (environment, then ``.env``), for tools and scripts."""
    return DatabaseTlsSettings().database_tls


class DatabaseTlsSettings(_EnvSettings):
    """TLS to PostgreSQL for every connection (see ``sagakit.db.tls``)."""

    # libpq's sslmode: disable, allow, prefer, require, verify-ca, verify-full. Empty: what the
    # URL says (?ssl=... / ?sslmode=...), else the driver's default (prefer).
    db_sslmode: SslMode | None = Field(default=None, validation_alias="DB_SSLMODE")
    # The CA that signed the server's certificate (PEM; empty: the system's CAs), and a client
    # certificate and key (PEM; optional). Only with require, verify-ca or verify-full.
    db_ssl_ca_file: str = Field(default="", validation_alias="DB_SSL_CA_FILE")
    db_ssl_cert_file: str = Field(default="", validation_alias="DB_SSL_CERT_FILE")
    db_ssl_key_file: str = Field(default="", validation_alias="DB_SSL_KEY_FILE")

    @field_validator("db_sslmode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @field_validator("db_ssl_ca_file", "db_ssl_cert_file", "db_ssl_key_file")
    @classmethod
    def _db_file(cls, value: str) -> str:
        return _readable_file(value, "file")

    @model_validator(mode="after")
    def _database_tls_complete(self) -> DatabaseTlsSettings:
        files = [
            name
            for name, value in (
                ("DB_SSL_CA_FILE", self.db_ssl_ca_file),
                ("DB_SSL_CERT_FILE", self.db_ssl_cert_file),
                ("DB_SSL_KEY_FILE", self.db_ssl_key_file),
            )
            if value
        ]
        if files and self.db_sslmode not in VERIFYING_MODES:
            raise SettingsError(
                f"{', '.join(files)} set but DB_SSLMODE={self.db_sslmode or '(unset)'} does not "
                f"use them (use one of {', '.join(VERIFYING_MODES)})"
            )
        if self.db_ssl_key_file and not self.db_ssl_cert_file:
            raise SettingsError("DB_SSL_KEY_FILE set without DB_SSL_CERT_FILE")
        if files:
            variable = "DB_SSL_CERT_FILE" if self.db_ssl_cert_file else "DB_SSL_CA_FILE"
            _check_pem(variable, self.database_tls.ssl_argument)
        return self

    @property
    def database_tls(self) -> PostgresTls:
        return PostgresTls(
            mode=self.db_sslmode,
            ca_file=self.db_ssl_ca_file or None,
            cert_file=self.db_ssl_cert_file or None,
            key_file=self.db_ssl_key_file or None,
        )


class ServiceSettings(KafkaSettings, DatabaseTlsSettings):
    """What every service needs: Kafka, PostgreSQL, Redis, logging, shutdown, consumer tuning."""

    # Names the consumer group and the relay's lock: every replica of a service shares it.
    service_name: ClassVar[str] = "service"
    # "local" (a laptop, `make demo`, the tests): the default admin token is accepted. Any other
    # value (staging, production, ...): a service refuses to start without a token of its own.
    app_env: str = Field(default=LOCAL_ENV, min_length=1, validation_alias="APP_ENV")
    database_url: SecretStr = SecretStr(
        "postgresql+asyncpg://sagatest:sagatest@127.0.0.1:5432/sagatest"
    )
    http_host: str = Field(default="127.0.0.1", validation_alias="HTTP_HOST")
    http_port: int = Field(default=8000, ge=1, le=65_535)
    # Bearer token of the admin endpoints (orchestrator's /admin/..., inventory's catalog writes).
    admin_token: SecretStr = Field(
        default=SecretStr(DEFAULT_ADMIN_TOKEN), validation_alias="ADMIN_TOKEN"
    )
    # Wrong admin credentials (bearer or console login) one client may present within the
    # window before it is refused with 429 until the oldest leaves the window (per process).
    admin_max_failed_logins: int = Field(
        default=10, ge=1, le=10_000, validation_alias="ADMIN_MAX_FAILED_LOGINS"
    )
    admin_failed_login_window_s: float = Field(
        default=60.0, gt=0, le=86_400, validation_alias="ADMIN_FAILED_LOGIN_WINDOW_S"
    )

    kafka_topic_prefix: str = Field(default="", validation_alias="KAFKA_TOPIC_PREFIX")
    kafka_consumer_max_records: int = Field(
        default=500, validation_alias="KAFKA_CONSUMER_MAX_RECORDS"
    )
    # Under steady load a consumer waits this long for more records before handling a small
    # batch (never when idle: only when the recent rate says more are coming within it).
    kafka_consumer_linger_ms: int = Field(
        default=5, ge=0, le=1000, validation_alias="KAFKA_CONSUMER_LINGER_MS"
    )
    # 0: a record leaves at once. Batching still happens, because the relay hands the producer
    # whole batches and records queue behind the request in flight; a linger only added its
    # own delay to every hop (idle p50 60 ms with 2 ms, 41 ms with 0; throughput unchanged).
    kafka_producer_linger_ms: int = Field(default=0, validation_alias="KAFKA_PRODUCER_LINGER_MS")
    kafka_request_timeout_ms: int = Field(
        default=15_000, validation_alias="KAFKA_REQUEST_TIMEOUT_MS"
    )

    # May carry a password (redis://:PASSWORD@host:6379/0; rediss:// for TLS).
    redis_url: SecretStr = Field(
        default=SecretStr("redis://127.0.0.1:6379/0"), validation_alias="REDIS_URL"
    )

    # Connections of the hot path (asyncpg): one per partition handled at once, plus the side
    # transactions (claims, gateway records, the scheduler, intake), reused, never per message.
    db_pool_size: int = Field(default=16, validation_alias="DB_POOL_SIZE")
    # Connections of the cold paths (SQLAlchemy: HTTP reads, admin, catalog).
    db_cold_pool_size: int = Field(default=4, validation_alias="DB_COLD_POOL_SIZE")

    # Retriable errors (database or broker down) are retried with capped exponential backoff.
    retry_backoff_base_s: float = Field(default=0.1, validation_alias="RETRY_BACKOFF_BASE_S")
    retry_backoff_cap_s: float = Field(default=5.0, validation_alias="RETRY_BACKOFF_CAP_S")
    # An unexpected handler error (a bug, not an outage) is tried this often, then dead-lettered.
    handler_max_attempts: int = Field(default=5, validation_alias="HANDLER_MAX_ATTEMPTS")

    # Messages are published right after their commit by the process that committed them; the
    # relay is the safety net: every poll it publishes the outbox rows older than the grace.
    outbox_poll_interval_s: float = Field(default=1.0, validation_alias="OUTBOX_POLL_INTERVAL_S")
    outbox_relay_grace_s: float = Field(default=5.0, validation_alias="OUTBOX_RELAY_GRACE_S")
    outbox_batch_size: int = Field(default=500, validation_alias="OUTBOX_BATCH_SIZE")

    shutdown_timeout_s: float = Field(default=8.0, validation_alias="SHUTDOWN_TIMEOUT_S")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="LOG_LEVEL"
    )
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="LOG_FORMAT")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("log_format", "app_env", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _secure_outside_local(self) -> ServiceSettings:
        token = self.admin_token.get_secret_value()
        if self.app_env != LOCAL_ENV and token.strip() in ("", DEFAULT_ADMIN_TOKEN):
            raise SettingsError(
                f"ADMIN_TOKEN must be set to a secret of your own when APP_ENV={self.app_env} "
                f"(the default and an empty token are accepted only with APP_ENV={LOCAL_ENV})"
            )
        if not token.strip():
            raise SettingsError("ADMIN_TOKEN is empty: set a token (any APP_ENV)")
        return self

    @property
    def topics(self) -> Topics:
        return Topics(self.kafka_topic_prefix)

    @property
    def consumer_group(self) -> str:
        return f"{self.kafka_topic_prefix}{self.service_name}"
