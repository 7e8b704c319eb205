"""The SMTP mailer: sends one message, retrying transient failures a few times.

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
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib

from notification.domain.errors import DeadlinePassed, DeliveryRejected, SmtpRejected
from sagakit.backoff import backoff_delay
from sagakit.errors import GatewayUnavailable
from sagakit.messaging.envelope import utcnow

log = logging.getLogger(__name__)

SendFunction = Callable[..., Awaitable[Any]]


class Mailer(Protocol):
    async def send(self, message: EmailMessage, *, not_after: datetime | None = None) -> None: ...


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
        send: SendFunction = aiosmtplib.send,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._host = host
        self._port = port
        self._timeout_s = timeout_s
        self._max_attempts = max(1, max_attempts)
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        # Given, so EHLO does not wait on a reverse DNS look-up of this host (socket.getfqdn).
        self._local_hostname = local_hostname
        # SMTP AUTH only when a username is set (aiosmtplib logs in after STARTTLS if offered).
        self._credentials = {"username": username, "password": password} if username else {}
        self._send = send
        self._clock = clock

    async def send(self, message: EmailMessage, *, not_after: datetime | None = None) -> None:
        """Send ``message`` to its To address, from its From address (see the module doc).

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
                await self._send(
                    message,
                    hostname=self._host,
                    port=self._port,
                    timeout=self._timeout_s,
                    local_hostname=self._local_hostname,
                    **self._credentials,
                )
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
