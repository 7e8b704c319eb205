"""The SMTP server the Testcontainers path starts for itself: the project's own script on a free
port, with its test rules, storing mail in a fresh folder, and gone afterwards. (It needs no
Docker engine, so it runs on every path.)"""

import smtplib
import socket
from email.message import EmailMessage

import pytest

from sagakit.testing.smtp import smtp_server_process

pytestmark = pytest.mark.integration


def test_the_projects_smtp_server_runs_as_a_process_of_the_test_run() -> None:
    with smtp_server_process() as server:
        message = EmailMessage()
        message["From"] = "orders@saga-shop.local"
        message["To"] = "someone@example.com"
        message["Message-ID"] = "<process-test@saga-shop.local>"
        message.set_content("hello")
        with smtplib.SMTP(server.host, server.port, timeout=5) as client:
            client.send_message(message)
            # Its own rules hold: a `reject` recipient is refused permanently.
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                client.sendmail("orders@saga-shop.local", ["reject@example.com"], "x")
        assert refused.value.recipients["reject@example.com"][0] == 550
        [stored] = list(server.mail_dir.glob("*.eml"))
        assert "<process-test@saga-shop.local>" in stored.read_text()
    with pytest.raises(OSError), socket.create_connection((server.host, server.port), timeout=1):
        pass
    assert not server.mail_dir.exists()
