"""The SMTP mailer's error classification and its retries (a fake transport: no I/O)."""

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from notification.adapters.mailer import SmtpMailer, classify
from notification.domain.errors import DeadlinePassed, SmtpRejected
from sagakit.errors import GatewayUnavailable

pytestmark = pytest.mark.unit


def refused(code: int, text: str) -> aiosmtplib.SMTPRecipientsRefused:
    return aiosmtplib.SMTPRecipientsRefused(
        [aiosmtplib.SMTPRecipientRefused(code, text, "x@example.com")]
    )


@pytest.mark.parametrize(
    ("error", "code", "detail"),
    [
        (
            refused(550, "5.1.1 Mailbox unavailable"),
            550,
            "550 5.1.1 Mailbox unavailable",
        ),
        (aiosmtplib.SMTPSenderRefused(553, "5.7.1 Sender not allowed", "o@x"), 553, None),
        (aiosmtplib.SMTPDataError(554, "5.6.0 Message rejected"), 554, None),
        (aiosmtplib.SMTPResponseException(500, "Syntax error"), 500, None),
    ],
)
def test_a_5xx_reply_is_a_permanent_rejection_with_code_and_text(
    error: Exception, code: int, detail: str | None
) -> None:
    outcome = classify(error)
    assert isinstance(outcome, SmtpRejected)
    assert outcome.smtp_code == code
    assert outcome.reason == "SMTP_REJECTED"
    assert outcome.detail.startswith(f"{code} ")
    if detail is not None:
        assert outcome.detail == detail


def test_an_unsupported_feature_is_permanent_without_a_code() -> None:
    outcome = classify(aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server"))
    assert isinstance(outcome, SmtpRejected)
    assert outcome.smtp_code is None
    assert outcome.detail == "SMTPUTF8 is not supported by this server"


@pytest.mark.parametrize(
    "error",
    [
        refused(451, "4.3.0 Temporary failure"),
        refused(421, "4.7.0 Try again later"),
        aiosmtplib.SMTPDataError(452, "4.3.1 Insufficient storage"),
        aiosmtplib.SMTPResponseException(999, "nonsense"),
        aiosmtplib.SMTPRecipientsRefused([]),
        aiosmtplib.SMTPConnectError("Error connecting to 127.0.0.1 on port 1: refused"),
        aiosmtplib.SMTPServerDisconnected("Connection lost"),
        aiosmtplib.SMTPTimeoutError("Timed out waiting for server response"),
        aiosmtplib.SMTPConnectTimeoutError("Timed out connecting"),
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        OSError(113, "No route to host"),
    ],
)
def test_4xx_replies_and_network_failures_are_transient(error: Exception) -> None:
    assert isinstance(classify(error), GatewayUnavailable)


@pytest.mark.parametrize("error", [ValueError("bug"), KeyError("bug"), RuntimeError("bug")])
def test_anything_else_is_not_classified(error: Exception) -> None:
    assert classify(error) is None


class FakeTransport:
    """Stands in for ``aiosmtplib.send``: raises the scripted errors in turn, then accepts."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, message: EmailMessage, **options: Any) -> None:
        self.calls.append({"message": message, **options})
        if self.errors:
            raise self.errors.pop(0)


NOW = datetime(2030, 1, 1, tzinfo=UTC)


def mailer(transport: FakeTransport, max_attempts: int = 3, clock: Any = lambda: NOW) -> SmtpMailer:
    return SmtpMailer(
        host="smtp.test",
        port=2525,
        timeout_s=7,
        max_attempts=max_attempts,
        backoff_base_s=0.001,
        backoff_cap_s=0.002,
        send=transport,
        clock=clock,
    )


async def test_transient_failures_are_retried_until_the_message_is_accepted() -> None:
    transport = FakeTransport(refused(451, "try later"), ConnectionResetError())
    message = EmailMessage()
    await mailer(transport).send(message)
    assert len(transport.calls) == 3
    assert all(call["message"] is message for call in transport.calls)
    assert transport.calls[0]["hostname"] == "smtp.test"
    assert transport.calls[0]["port"] == 2525
    assert transport.calls[0]["timeout"] == 7


async def test_still_transient_after_max_attempts_raises_gateway_unavailable() -> None:
    transport = FakeTransport(*[refused(451, "4.3.0 try later") for _ in range(5)])
    with pytest.raises(GatewayUnavailable) as caught:
        await mailer(transport, max_attempts=3).send(EmailMessage())
    assert len(transport.calls) == 3
    assert "451" in str(caught.value)
    assert caught.value.retriable
    assert isinstance(caught.value.__cause__, aiosmtplib.SMTPRecipientsRefused)


async def test_a_permanent_rejection_is_not_retried() -> None:
    transport = FakeTransport(refused(550, "5.1.1 no such user"))
    with pytest.raises(SmtpRejected) as caught:
        await mailer(transport).send(EmailMessage())
    assert len(transport.calls) == 1
    assert caught.value.detail == "550 5.1.1 no such user"


async def test_an_unexpected_error_propagates_untouched_and_is_not_retried() -> None:
    transport = FakeTransport(RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):
        await mailer(transport).send(EmailMessage())
    assert len(transport.calls) == 1


async def test_no_attempt_starts_at_or_after_not_after() -> None:
    transport = FakeTransport()
    with pytest.raises(DeadlinePassed) as caught:
        await mailer(transport).send(EmailMessage(), not_after=NOW)
    assert transport.calls == []
    assert caught.value.reason == "EXPIRED"


async def test_a_retry_that_would_start_after_not_after_is_not_made() -> None:
    transport = FakeTransport(refused(451, "try later"), refused(451, "try later"))

    def clock() -> datetime:  # time passes once the server has been asked
        return NOW + timedelta(seconds=len(transport.calls))

    with pytest.raises(DeadlinePassed):
        await mailer(transport, max_attempts=5, clock=clock).send(
            EmailMessage(), not_after=NOW + timedelta(seconds=1)
        )
    assert len(transport.calls) == 1


async def test_before_not_after_it_sends_as_usual() -> None:
    transport = FakeTransport()
    await mailer(transport).send(EmailMessage(), not_after=NOW + timedelta(microseconds=1))
    assert len(transport.calls) == 1


async def test_smtp_auth_is_used_only_when_a_username_is_set() -> None:
    anonymous, authenticated = FakeTransport(), FakeTransport()
    await mailer(anonymous).send(EmailMessage())
    await SmtpMailer(
        host="smtp.test",
        port=587,
        timeout_s=7,
        max_attempts=1,
        username="relay-user",
        password="relay-secret",
        send=authenticated,
    ).send(EmailMessage())
    assert "username" not in anonymous.calls[0]
    assert "password" not in anonymous.calls[0]
    assert authenticated.calls[0]["username"] == "relay-user"
    assert authenticated.calls[0]["password"] == "relay-secret"
