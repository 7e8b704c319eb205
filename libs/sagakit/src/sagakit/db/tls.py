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

Unset (``None``): a ``?ssl=...``/``?sslmode=...`` in the URL, else libpq's ``PGSSLMODE``
variable, decides; with neither, ``disable``. Not asyncpg's own default (``prefer``): the local
server offers TLS (for the tests that prove these modes), and ``prefer`` would quietly encrypt
every connection of the services, the tests and the benchmark, which costs CPU for nothing on
127.0.0.1. Encryption is asked for, never stumbled into.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import parse_qs, urlsplit

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

    def connect_args(self, url: str | None = None) -> dict[str, object]:
        """Keyword arguments for asyncpg's ``connect``/``create_pool`` (SQLAlchemy: its
        ``connect_args``) to reach ``url``. Unset: nothing when the URL or ``PGSSLMODE`` says
        what to do, else ``ssl="disable"`` (see the module's docstring)."""
        argument = self.ssl_argument()
        if argument is None:
            return {} if _url_or_environment_chooses(url) else {"ssl": "disable"}
        return {"ssl": argument}


def _url_or_environment_chooses(url: str | None) -> bool:
    if os.environ.get("PGSSLMODE", "").strip():
        return True
    query = parse_qs(urlsplit(url).query) if url else {}
    return "ssl" in query or "sslmode" in query


# Nothing set: the URL (or PGSSLMODE) decides, else no TLS.
AS_THE_URL_SAYS = PostgresTls()
# asyncpg's ``connect`` keywords for a plain connection: the test and benchmark tools' own
# connections to the local server, which offers TLS (asyncpg alone would take it: ``prefer``).
PLAIN: dict[str, str] = {"ssl": "disable"}
