"""TLS to PostgreSQL, the same for every connection a service opens: the asyncpg pool, the
SQLAlchemy engine, the outbox relay's connection and the migrations (``DB_SSLMODE``,
``DB_SSL_CA_FILE``, ``DB_SSL_CERT_FILE``, ``DB_SSL_KEY_FILE``; see ``sagakit.settings``).

The modes are libpq's (``sslmode``):

- ``disable``, ``allow``, ``prefer``: no TLS, TLS if the server insists, TLS if the server
  offers it; nothing is verified (asyncpg handles these itself).
- ``require``: always TLS; the server's certificate is checked against the CA file when one is
  given (as libpq does when a root certificate exists), else not checked.
- ``verify-ca``: always TLS, the certificate must be signed by the CA (file, else the system's).
- ``verify-full``: as ``verify-ca``, and the certificate must name the host connected to.

Unset (``None``): nothing is passed, so a ``?ssl=...``/``?sslmode=...`` in the URL, or asyncpg's
own default (``prefer``), applies as before.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Literal, get_args

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
SSL_MODES: tuple[str, ...] = get_args(SslMode)
# Modes that always encrypt, and so may take a CA file and a client certificate.
VERIFYING_MODES = ("require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class PostgresTls:
    mode: SslMode | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def ssl_argument(self) -> ssl.SSLContext | str | None:
        """What asyncpg's ``connect(ssl=...)`` takes (SQLAlchemy passes it through
        ``connect_args``); None: pass nothing."""
        if self.mode is None or self.mode not in VERIFYING_MODES:
            return self.mode
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        if self.mode == "require" and not self.ca_file:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self.mode in ("require", "verify-ca"):
            context.check_hostname = False  # the CA is checked, the host name is not
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file or None)
        return context

    def connect_args(self) -> dict[str, object]:
        """Keyword arguments for asyncpg's ``connect``/``create_pool`` (empty when unset)."""
        argument = self.ssl_argument()
        return {} if argument is None else {"ssl": argument}


# Nothing set: the URL and the driver decide.
AS_THE_URL_SAYS = PostgresTls()
