"""Local SMTP server for development, tests and benchmarks (standard library only).

Stores every accepted message as one ``.eml`` file in the mail directory, with the envelope
recipients prepended as an ``X-Envelope-To`` header. Files are written under a temporary name
and renamed, so a reader never sees a partial message.

Test rules applied at RCPT TO (on the local part, case-insensitive):
  * contains ``reject``   -> 550 5.1.1, always;
  * contains ``tempfail`` -> 451 4.3.0 for the first N attempts per address
    (N = --tempfail-attempts, default 2; counted in memory), then accepted.

It speaks the part of SMTP a mail client sends (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, VRFY,
QUIT, with PIPELINING) in one ``asyncio.Protocol``: it runs beside the system it serves on the
benchmark machine, and aiosmtpd, which it replaces, spent about as much CPU per message as the
notification service that sends it.

Usage: smtp_server.py [--host H] [--port P] [--mail-dir DIR] [--tempfail-attempts N]
Environment: SMTP_HOST, SMTP_PORT, SMTP_MAIL_DIR provide the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from pathlib import Path

log = logging.getLogger("smtp_server")

REJECT_REPLY = b"550 5.1.1 Mailbox unavailable (test rule: reject)"
TEMPFAIL_REPLY = b"451 4.3.0 Temporary failure (test rule: tempfail)"
MAX_MESSAGE_BYTES = 10 * 2**20
MAX_LINE_BYTES = 4096


class Mailbox:
    """The rules and the mail directory, shared by every connection."""

    def __init__(self, mail_dir: Path, tempfail_attempts: int = 2) -> None:
        self.mail_dir = mail_dir
        self.tempfail_attempts = tempfail_attempts
        self.tempfail_seen: dict[str, int] = {}

    def rcpt_reply(self, address: str) -> bytes | None:
        """The refusal for this recipient, or None to accept it."""
        local_part = address.rsplit("@", 1)[0].lower()
        if "reject" in local_part:
            log.info("rcpt rejected to=%s (rule: reject)", address)
            return REJECT_REPLY
        if "tempfail" in local_part:
            key = address.lower()
            attempts = self.tempfail_seen.get(key, 0) + 1
            self.tempfail_seen[key] = attempts
            if attempts <= self.tempfail_attempts:
                log.info("rcpt deferred to=%s attempt=%d (rule: tempfail)", address, attempts)
                return TEMPFAIL_REPLY
        return None

    def store(self, recipients: list[str], content: bytes) -> Path:
        eol = b"\r\n" if b"\r\n" in content else b"\n"
        header = b"X-Envelope-To: " + ", ".join(recipients).encode() + eol
        # The Message-ID in the name lets a reader find a message without opening them all.
        name = f"{time.time_ns()}-{_message_id_tag(content)}{uuid.uuid4().hex[:8]}.eml"
        final = self.mail_dir / name
        tmp = self.mail_dir / f".{name}.tmp"
        with open(tmp, "wb") as f:
            f.write(header + content)
        os.replace(tmp, final)  # atomic within one filesystem
        return final


class SmtpSession(asyncio.Protocol):
    """One client connection: a line-based state machine (commands, then the DATA body)."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox
        self.buffer = b""
        self.in_data = False
        self.sender: str | None = None
        self.recipients: list[str] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.reply(b"220 localhost saga-shop test SMTP")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None and not self.transport.is_closing():
            if self.in_data:
                end = self.buffer.find(b"\r\n.\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_MESSAGE_BYTES:
                        self.reply(b"552 5.3.4 Message too big")
                        self.transport.close()
                    return
                self.message(self.buffer[: end + 2])
                self.buffer = self.buffer[end + 5 :]
                continue
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                if len(self.buffer) > MAX_LINE_BYTES:
                    self.reply(b"500 5.5.2 Line too long")
                    self.transport.close()
                return
            line, self.buffer = self.buffer[:line_end], self.buffer[line_end + 2 :]
            self.command(line.decode("utf-8", errors="replace"))

    def command(self, line: str) -> None:
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb == "EHLO":
            self.reset()
            self.reply(
                b"250-localhost\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
                b"250 SIZE " + str(MAX_MESSAGE_BYTES).encode()
            )
        elif verb == "HELO":
            self.reset()
            self.reply(b"250 localhost")
        elif verb == "MAIL":
            self.reset()
            self.sender = _address(arg, "FROM:")
            self.reply(
                b"250 2.1.0 OK"
                if self.sender is not None
                else b"501 5.5.4 Syntax: MAIL FROM:<address>"
            )
        elif verb == "RCPT":
            address = _address(arg, "TO:")
            if self.sender is None:
                self.reply(b"503 5.5.1 Need MAIL first")
            elif not address:
                self.reply(b"501 5.5.4 Syntax: RCPT TO:<address>")
            else:
                refusal = self.mailbox.rcpt_reply(address)
                if refusal is None:
                    self.recipients.append(address)
                self.reply(refusal or b"250 2.1.5 OK")
        elif verb == "DATA":
            if not self.recipients:
                self.reply(b"503 5.5.1 Need RCPT first")
            else:
                self.in_data = True
                self.reply(b"354 End data with <CR><LF>.<CR><LF>")
        elif verb == "RSET":
            self.reset()
            self.reply(b"250 2.0.0 OK")
        elif verb == "NOOP":
            self.reply(b"250 2.0.0 OK")
        elif verb == "VRFY":
            self.reply(b"252 2.0.0 Cannot VRFY user")
        elif verb == "QUIT":
            self.reply(b"221 2.0.0 Bye")
            assert self.transport is not None
            self.transport.close()
        else:
            self.reply(b"500 5.5.2 Command not recognised")

    def message(self, raw: bytes) -> None:
        self.in_data = False
        # Dot-unstuffing (RFC 5321 4.5.2): a leading dot was doubled by the client.
        content = raw.replace(b"\r\n..", b"\r\n.")
        if content.startswith(b".."):
            content = content[1:]
        path = self.mailbox.store(self.recipients, content)
        log.info(
            "accepted file=%s from=%s to=%s bytes=%d",
            path.name,
            self.sender,
            ",".join(self.recipients),
            len(content),
        )
        self.reset()
        self.reply(b"250 2.0.0 Message accepted for delivery")

    def reset(self) -> None:
        self.sender = None
        self.recipients = []

    def reply(self, text: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(text + b"\r\n")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def message_id_tag(message_id: str) -> str:
    """The part of a file name that stands for a Message-ID (letters, digits, - and _ only)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in message_id.strip("<>"))[:120]


def _message_id_tag(content: bytes) -> str:
    head = content.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line[:11].lower() == b"message-id:":
            return message_id_tag(line[11:].decode("utf-8", errors="replace").strip()) + "-"
    return ""


def _address(arg: str, prefix: str) -> str | None:
    """The address in ``FROM:<a@b> SIZE=1`` (``<>`` is the null sender: empty string)."""
    if not arg.upper().startswith(prefix):
        return None
    rest = arg[len(prefix) :].strip()
    if not rest.startswith("<") or ">" not in rest:
        return None
    return rest[1 : rest.index(">")]


def parse_args() -> argparse.Namespace:
    default_dir = Path(__file__).resolve().parents[2] / ".infra" / "data" / "mail"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default=os.environ.get("SMTP_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("SMTP_PORT", "1025")))
    p.add_argument(
        "--mail-dir", type=Path, default=Path(os.environ.get("SMTP_MAIL_DIR", default_dir))
    )
    p.add_argument("--tempfail-attempts", type=int, default=2)
    return p.parse_args()


async def serve(args: argparse.Namespace) -> None:
    args.mail_dir.mkdir(parents=True, exist_ok=True)
    mailbox = Mailbox(args.mail_dir, args.tempfail_attempts)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SmtpSession(mailbox), host=args.host, port=args.port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("listening on %s:%d, mail dir %s", args.host, args.port, args.mail_dir)
    await stop.wait()
    log.info("stopping")
    server.close()
    # Do not hang on clients that keep a connection open.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.wait_closed(), timeout=5)
    log.info("stopped")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(parse_args()))


if __name__ == "__main__":
    main()
