"""SMTP to a relay as a real one works: STARTTLS (required) or implicit TLS, the server's
certificate checked against SMTP_TLS_CA_FILE, then a login. A refused login or a certificate
that does not verify is an outage of the relay (retried), never a rejection of the email, and
a message is never sent in clear when TLS is required."""

import asyncio
import contextlib
import ssl
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult

from notification.adapters.mailer import SmtpMailer
from notification.domain.confirmation import OutgoingEmail, build_confirmation
from notification.domain.errors import DeliveryRejected
from sagakit.contracts import PricedLine
from sagakit.errors import GatewayUnavailable
from sagakit.testing.processes import free_port
from sagakit.testing.tls import Certificates, make_certificates

pytestmark = pytest.mark.integration

USER, PASSWORD = "relay-user", "relay-password-SECRET"


class Relay:
    """Accepts a login as USER/PASSWORD only; records each message and whether it came over TLS."""

    def __init__(self) -> None:
        self.logins: list[str] = []
        self.received: list[bool] = []  # one per message: over TLS?

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # type: ignore[no-untyped-def]
        ok = (auth_data.login.decode(), auth_data.password.decode()) == (USER, PASSWORD)
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # not handled: the server answers 535

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.received.append(server.transport.get_extra_info("sslcontext") is not None)  # type: ignore[union-attr]
        return "250 2.0.0 Accepted"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("smtp-pki"))


def _server_context(certs: Certificates) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs.cert_file, certs.key_file)
    return context


@contextlib.asynccontextmanager
async def relay_server(
    certs: Certificates, *, implicit: bool = False, offer_starttls: bool = True
) -> AsyncIterator[tuple[Relay, int]]:
    relay, port = Relay(), free_port()
    context = _server_context(certs)

    def connected() -> SMTP:
        return SMTP(
            relay,
            hostname="relay.test",
            tls_context=None if implicit or not offer_starttls else context,
            require_starttls=not implicit and offer_starttls,
            authenticator=relay.authenticate,
            auth_require_tls=not implicit and offer_starttls,
        )

    server = await asyncio.get_running_loop().create_server(
        connected, host="127.0.0.1", port=port, ssl=context if implicit else None
    )
    try:
        yield relay, port
    finally:
        server.close()
        await server.wait_closed()


def mailer(port: int, tls: str, ca_file: Path | None, password: str = PASSWORD) -> SmtpMailer:
    return SmtpMailer(
        host="127.0.0.1",
        port=port,
        timeout_s=5,
        max_attempts=1,
        username=USER,
        password=password,
        tls=tls,
        tls_ca_file=str(ca_file) if ca_file else None,
    )


def message() -> OutgoingEmail:
    return build_confirmation(
        order_id=uuid.uuid4(),
        recipient="ada@example.com",
        sender="orders@saga-shop.local",
        lines=[PricedLine(product_id="sku-1", quantity=1, unit_price=500, line_total=500)],
        total=500,
        currency="EUR",
        date=datetime.now(UTC),
    )


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
async def test_a_login_over_verified_tls_sends(certs: Certificates, implicit: bool) -> None:
    async with relay_server(certs, implicit=implicit) as (relay, port):
        sender = mailer(port, "implicit" if implicit else "starttls", certs.ca_file)
        try:
            await sender.send(message())
        finally:
            await sender.close()
    assert relay.logins == [USER]
    assert relay.received == [True]


async def test_a_refused_login_is_an_outage_not_a_rejection(certs: Certificates) -> None:
    async with relay_server(certs) as (relay, port):
        sender = mailer(port, "starttls", certs.ca_file, password="wrong-SECRET")
        with pytest.raises(GatewayUnavailable, match=r"login refused.*SMTP_PASSWORD") as caught:
            await sender.send(message())
        await sender.close()
    assert not isinstance(caught.value, DeliveryRejected)
    assert "SECRET" not in str(caught.value)
    assert relay.received == []


async def test_a_certificate_from_another_ca_is_refused(certs: Certificates) -> None:
    async with relay_server(certs) as (relay, port):
        sender = mailer(port, "starttls", None)  # the system's CAs: ours is not among them
        with pytest.raises(GatewayUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await sender.send(message())
        await sender.close()
    assert relay.logins == []
    assert relay.received == []


async def test_required_starttls_never_sends_in_clear(certs: Certificates) -> None:
    async with relay_server(certs, offer_starttls=False) as (relay, port):
        sender = mailer(port, "starttls", certs.ca_file)
        with pytest.raises(GatewayUnavailable, match="STARTTLS"):
            await sender.send(message())
        await sender.close()
    assert relay.logins == []
    assert relay.received == []
