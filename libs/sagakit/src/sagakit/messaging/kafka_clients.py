"""The one place where Kafka clients are made: every producer, consumer and admin client of the
services, their relays and dead-letter queues, and the sagaops tools comes from here, so each
connects the same way: to the bootstrap servers, with the security the settings give
(``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*``, ``KAFKA_SSL_*``; see ``sagakit.settings``).

- ``PLAINTEXT`` (the default, local infrastructure): no login, no encryption.
- ``SASL_SSL`` (a managed broker: Confluent Cloud, MSK, Aiven, Redpanda Cloud...): TLS, the
  broker's certificate checked against the system's CAs or ``KAFKA_SSL_CA_FILE``, and a SASL login
  (``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``).
- ``SSL``: TLS, optionally with a client certificate (``KAFKA_SSL_CERT_FILE``/``_KEY_FILE``,
  mutual TLS) instead of a login.
- ``SASL_PLAINTEXT``: a login without TLS (a private network, and the local test listener).

A refused login is not an outage: ``check_login`` tells it apart, so a service stops with one
clear line instead of retrying forever (aiokafka only says "Unable to bootstrap").
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from pydantic import SecretStr

from sagakit.errors import ConfigurationError

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
SECURITY_PROTOCOLS: tuple[str, ...] = get_args(SecurityProtocol)
SASL_MECHANISMS: tuple[str, ...] = get_args(SaslMechanism)


class KafkaLoginRefused(ConfigurationError):
    """The broker refused the SASL login (wrong user or password, or a mechanism it does not
    enable), or its TLS certificate did not verify: retrying with the same settings cannot
    help."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How the clients authenticate and encrypt (checked by the settings, not here)."""

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str = ""
    sasl_password: SecretStr = field(default_factory=lambda: SecretStr(""))
    ssl_ca_file: str | None = None
    ssl_cert_file: str | None = None
    ssl_key_file: str | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        """Verifies the broker's certificate and host name (the given CA, else the system's)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ssl_ca_file)
        if self.ssl_cert_file:
            context.load_cert_chain(self.ssl_cert_file, self.ssl_key_file or None)
        return context

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments every aiokafka client takes for this security."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.get_secret_value()
        return options

    def describe(self) -> str:
        """For log lines: the protocol, mechanism and user, never the password."""
        if not self.uses_sasl:
            return self.protocol
        return f"{self.protocol} ({self.sasl_mechanism} as {self.sasl_username!r})"


PLAINTEXT = KafkaSecurity()


def kafka_producer(
    bootstrap_servers: str, security: KafkaSecurity = PLAINTEXT, **options: Any
) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, **security.client_options(), **options
    )


def kafka_consumer(
    *topics: str, bootstrap_servers: str, security: KafkaSecurity = PLAINTEXT, **options: Any
) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap_servers, **security.client_options(), **options
    )


def kafka_admin(
    bootstrap_servers: str, security: KafkaSecurity = PLAINTEXT, **options: Any
) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, **security.client_options(), **options
    )


async def check_login(
    bootstrap_servers: str, security: KafkaSecurity, *, timeout_s: float = 10.0
) -> None:
    """Raise ``KafkaLoginRefused`` if a node of ``bootstrap_servers`` refuses the SASL login or
    presents a certificate that does not verify.

    For telling a refused login from an outage after a client failed to start: a node that
    cannot be reached says nothing (the caller's own error stands).
    """
    if not (security.uses_sasl or security.uses_tls):
        return
    options = security.client_options()
    for address in bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout_s * 1000), **options),
                timeout=timeout_s,
            )
        except (
            SaslAuthenticationFailed,
            UnsupportedSaslMechanismError,
            IllegalSaslStateError,
        ) as exc:
            raise KafkaLoginRefused(
                f"Kafka at {host}:{port} refused the login: {security.describe()}: "
                f"{type(exc).__name__}: {_reason(exc)} "
                "(check KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD)"
            ) from None
        except ssl.SSLError as exc:
            raise KafkaLoginRefused(
                f"TLS with Kafka at {host}:{port} failed: {exc.reason or exc} "
                "(check KAFKA_SECURITY_PROTOCOL and KAFKA_SSL_CA_FILE)"
            ) from None
        except (KafkaError, OSError, TimeoutError):
            continue
        conn.close()
        return


def _reason(exc: KafkaError) -> str:
    # aiokafka's str() repeats the error's class description; the broker's message is in args.
    # Some are raised with the connection object as their only argument: then the description.
    if exc.args and isinstance(exc.args[0], str) and exc.args[0]:
        return exc.args[0]
    return str(exc.description)
