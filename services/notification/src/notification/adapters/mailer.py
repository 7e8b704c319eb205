"""The SMTP mailer: sends one message, retrying transient failures a few times, over a few
kept-open connections (``SmtpConnections``): a new connection per message costs a TCP handshake,
a greeting, EHLO and QUIT, about twice the work of the message itself.

Outcomes of ``send``:
- returns: the server accepted the message (250 after DATA);
- raises ``DeliveryRejected`` (``SmtpRejected``): a permanent 5xx reply, e.g. 550 on RCPT TO;
- raises ``GatewayUnavailable``: still failing transiently (4xx, connection refused or reset,
  timeout) after ``max_attempts`` tries; the consumer retries the record with its own backoff;
- raises ``DeadlinePassed``: ``not_after`` came before an attempt could start (checked before
  each one, so a retry after a backoff never starts late); the server was not asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

import aiosmtplib

from notification.domain.confirmation import OutgoingEmail
from notification.domain.errors import DeadlinePassed, DeliveryRejected, SmtpRejected
from sagakit.backoff import backoff_delay
from sagakit.errors import GatewayUnavailable
from sagakit.messaging.envelope import utcnow

log = logging.getLogger(__name__)

Transport = Callable[[OutgoingEmail], Awaitable[None]]


class Mailer(Protocol):
    async def send(self, message: OutgoingEmail, *, not_after: datetime | None = None) -> None: ...


class SmtpConnections:
    """Up to ``size`` connections to one SMTP server, each used by one message at a time and
    kept open between messages. A connection that failed in any way is closed, never reused."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        timeout_s: float,
        local_hostname: str,
        username: str = "",
        password: str = "",
        tls: str = "auto",
        tls_ca_file: str | None = None,
        size: int = 8,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout_s = timeout_s
        self._local_hostname = local_hostname
        # SMTP AUTH only when a username is set, after STARTTLS (or over implicit TLS).
        self._credentials = (username, password) if username else None
        # auto: STARTTLS if offered (aiosmtplib's None); starttls: required; implicit: TLS at
        # connect; off: never. Certificates are always verified (CA file, else the system's).
        self._tls_options: dict[str, Any] = {
            "use_tls": tls == "implicit",
            "start_tls": {"auto": None, "starttls": True}.get(tls, False),
            "validate_certs": True,
            "cert_bundle": tls_ca_file,
        }
        self._slots = asyncio.Semaphore(size)
        self._idle: list[aiosmtplib.SMTP] = []

    async def __call__(self, message: OutgoingEmail) -> None:
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            if client is None or not client.is_connected:
                client = aiosmtplib.SMTP(
                    hostname=self.host,
                    port=self.port,
                    timeout=self.timeout_s,
                    local_hostname=self._local_hostname,
                    **self._tls_options,
                )
                await client.connect()
                if self._credentials is not None:
                    await client.login(*self._credentials)
            try:
                await client.sendmail(
                    message.sender,
                    [message.recipient],
                    message.data,
                    mail_options=_options(message),
                )
            except BaseException:
                with contextlib.suppress(Exception):
                    client.close()
                raise
            self._idle.append(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            with contextlib.suppress(Exception):
                await client.quit()


class SmtpMailer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        timeout_s: float,
        max_attempts: int,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 2.0,
        local_hostname: str = "saga-shop.local",
        username: str = "",
        password: str = "",
        tls: str = "auto",
        tls_ca_file: str | None = None,
        connections: int = 8,
        transport: Transport | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._host = host
        self._port = port
        self._max_attempts = max(1, max_attempts)
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        # ``local_hostname`` is given, so EHLO does not wait on a reverse DNS look-up of this host.
        self._transport = transport or SmtpConnections(
            host=host,
            port=port,
            timeout_s=timeout_s,
            local_hostname=local_hostname,
            username=username,
            password=password,
            tls=tls,
            tls_ca_file=tls_ca_file,
            size=connections,
        )
        self._clock = clock

    async def close(self) -> None:
        if isinstance(self._transport, SmtpConnections):
            await self._transport.close()

    async def send(self, message: OutgoingEmail, *, not_after: datetime | None = None) -> None:
        """Send ``message`` to its recipient, from its sender (see the module doc).

        No attempt starts at or after ``not_after`` (None: no limit).
        """
        attempt = 0
        while True:
            attempt += 1
            if not_after is not None and self._clock() >= not_after:
                raise DeadlinePassed(
                    f"smtp attempt {attempt} not started: no send may start after "
                    f"{not_after.isoformat()}"
                )
            try:
                await self._transport(message)
                return
            except Exception as exc:
                failure = classify(exc)
                if failure is None:
                    raise  # not an SMTP or network failure: a bug, let the consumer see it
                if isinstance(failure, DeliveryRejected) or attempt >= self._max_attempts:
                    raise failure from exc
                delay = backoff_delay(attempt, base=self._backoff_base_s, cap=self._backoff_cap_s)
                log.warning(
                    "smtp %s:%d: %s (attempt %d of %d), retry in %.2fs",
                    self._host,
                    self._port,
                    failure,
                    attempt,
                    self._max_attempts,
                    delay,
                )
                await asyncio.sleep(delay)


def classify(exc: BaseException) -> DeliveryRejected | GatewayUnavailable | None:
    """Permanent (``DeliveryRejected``), transient (``GatewayUnavailable``), or None: not ours."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        # The relay refused our login (535): nothing to do with the message, so never a
        # rejection of it; retried until the credentials are fixed.
        return GatewayUnavailable(
            f"smtp: login refused ({exc.code} {exc.message}): check SMTP_USERNAME and SMTP_PASSWORD"
        )
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        # Raised when every recipient was refused; we send to one, so its reply is the answer.
        if not exc.recipients:
            return GatewayUnavailable("smtp: recipients refused without a reply")
        return _by_reply(exc.recipients[0].code, exc.recipients[0].message)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _by_reply(exc.code, exc.message)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # The server lacks what this message needs (SMTPUTF8 for a non-ASCII address): no
        # retry will change that.
        return SmtpRejected(None, exc.message)
    if isinstance(exc, aiosmtplib.SMTPException | OSError):
        # Connection refused or reset, disconnected, timeouts (TimeoutError is an OSError).
        return GatewayUnavailable(f"smtp: {type(exc).__name__}: {exc}")
    return None


def _by_reply(code: int, text: str) -> SmtpRejected | GatewayUnavailable:
    if 500 <= code <= 599:
        return SmtpRejected(code, text)
    # 4xx, and anything non-standard: the server may answer differently later.
    return GatewayUnavailable(f"smtp: {code} {text}")


def _options(message: OutgoingEmail) -> list[str]:
    """SMTPUTF8 for a non-ASCII address (an internationalised domain or name): without it the
    client cannot even write the address (it raised UnicodeEncodeError, the record was
    dead-lettered); a server without SMTPUTF8 refuses it, a rejection (``classify``)."""
    if (message.sender + message.recipient).isascii():
        return []
    return ["SMTPUTF8"]
