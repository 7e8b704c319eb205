"""The SMTP mailer against real SMTP servers: the local one (its test rules) and a faulty one."""

import uuid
from datetime import UTC, datetime

import pytest

from notification.adapters.mailer import SmtpMailer
from notification.domain.confirmation import OutgoingEmail, build_confirmation, message_id_for
from notification.domain.errors import SmtpRejected
from sagakit.contracts import PricedLine
from sagakit.errors import GatewayUnavailable

pytestmark = pytest.mark.integration


def confirmation(recipient: str) -> tuple[str, OutgoingEmail]:
    order_id = uuid.uuid4()
    message = build_confirmation(
        order_id=order_id,
        recipient=recipient,
        sender="orders@saga-shop.local",
        lines=[PricedLine(product_id="sku-1", quantity=1, unit_price=500, line_total=500)],
        total=500,
        currency="EUR",
        date=datetime.now(UTC),
    )
    return message_id_for(order_id), message


async def test_an_accepted_message_is_stored_once_for_its_recipient(kit) -> None:
    message_id, message = confirmation(f"ada-{uuid.uuid4().hex[:8]}@example.com")
    await kit.mailer().send(message)
    [stored] = kit.delivered(message_id)
    assert stored["X-Envelope-To"] == message["To"]
    assert "EUR 5.00" in stored.get_body(("plain",)).get_content()


async def test_a_550_at_rcpt_is_a_rejection_with_the_servers_code_and_text(kit) -> None:
    message_id, message = confirmation(f"x+reject-{uuid.uuid4().hex[:8]}@example.com")
    with pytest.raises(SmtpRejected) as caught:
        await kit.mailer().send(message)
    assert caught.value.smtp_code == 550
    assert caught.value.detail == "550 5.1.1 Mailbox unavailable (test rule: reject)"
    assert kit.delivered(message_id) == []


async def test_tempfail_is_retried_in_the_mailer_and_delivered_once(kit) -> None:
    # The local server answers 451 to the first two RCPTs per address (remembered across runs,
    # hence a fresh address).
    message_id, message = confirmation(f"y+tempfail-{uuid.uuid4().hex[:8]}@example.com")
    await kit.mailer(max_attempts=3).send(message)
    assert len(kit.delivered(message_id)) == 1


async def test_tempfail_beyond_max_attempts_is_gateway_unavailable_then_a_later_send_works(
    kit,
) -> None:
    message_id, message = confirmation(f"y+tempfail-{uuid.uuid4().hex[:8]}@example.com")
    with pytest.raises(GatewayUnavailable, match="451"):
        await kit.mailer(max_attempts=2).send(message)
    assert kit.delivered(message_id) == []
    await kit.mailer(max_attempts=2).send(message)  # the consumer's next try
    assert len(kit.delivered(message_id)) == 1


async def test_a_server_that_is_down_is_gateway_unavailable_after_max_attempts(
    kit, faulty_smtp
) -> None:
    await faulty_smtp.stop()
    _, message = confirmation("ada@example.com")
    with pytest.raises(GatewayUnavailable) as caught:
        await kit.mailer(port=faulty_smtp.port, max_attempts=3).send(message)
    assert isinstance(caught.value.__cause__, ConnectionError)


async def test_a_server_answering_451_n_times_is_retried_exactly_that_often(
    kit, faulty_smtp
) -> None:
    faulty_smtp.failures = 2
    message_id, message = confirmation("ada@example.com")
    await kit.mailer(port=faulty_smtp.port, max_attempts=3).send(message)
    assert faulty_smtp.rcpt_attempts == 3
    assert [m["Message-ID"] for m in faulty_smtp.messages()] == [message_id]


async def test_messages_share_a_kept_open_connection_and_a_failed_one_is_not_reused(
    kit, faulty_smtp
) -> None:
    mailer = kit.mailer(port=faulty_smtp.port, max_attempts=3)
    for _ in range(3):
        await mailer.send(confirmation(f"ada-{uuid.uuid4().hex[:8]}@example.com")[1])
    assert (faulty_smtp.connections, len(faulty_smtp.accepted)) == (1, 3)

    faulty_smtp.failures = 1  # the next RCPT is refused with a 451: that connection is dropped
    await mailer.send(confirmation(f"ada-{uuid.uuid4().hex[:8]}@example.com")[1])
    assert (faulty_smtp.connections, len(faulty_smtp.accepted)) == (2, 4)


class _Logins:
    """An aiosmtpd authenticator that records who logged in."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        from aiosmtpd.smtp import AuthResult

        self.seen.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)


async def test_smtp_auth_is_used_only_when_a_username_is_set(kit) -> None:
    import asyncio

    from aiosmtpd.smtp import SMTP

    from sagakit.testing.processes import free_port

    class Accept:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            return "250 OK"

    logins = _Logins()
    port = free_port()
    server = await asyncio.get_running_loop().create_server(
        lambda: SMTP(Accept(), authenticator=logins, auth_require_tls=False),
        host="127.0.0.1",
        port=port,
    )
    try:
        await kit.mailer(port=port).send(confirmation("ada@example.com")[1])
        assert logins.seen == []
        authenticated = SmtpMailer(
            host="127.0.0.1",
            port=port,
            timeout_s=5,
            max_attempts=1,
            username="relay-user",
            password="relay-secret",
        )
        kit.mailers.append(authenticated)
        await authenticated.send(confirmation("bob@example.com")[1])
        assert logins.seen == [("relay-user", "relay-secret")]
    finally:
        server.close()
        await server.wait_closed()


async def test_an_internationalised_address_is_sent_with_smtputf8(kit) -> None:
    """Found by stateful fuzzing: an order to ``...@bücher.example`` (a valid address) made the
    client fail to write RCPT TO in ASCII (UnicodeEncodeError), and the command was retried,
    then dead-lettered, while its saga waited out the step."""
    message_id, message = confirmation(f"ada-{uuid.uuid4().hex[:8]}@bücher.example")
    await kit.mailer().send(message)
    [stored] = kit.delivered(message_id)
    assert stored["X-Envelope-To"] == message["To"]
