"""Local SMTP server for development and tests (aiosmtpd).

Stores every accepted message as one ``.eml`` file in the mail directory, with the
envelope recipients prepended as an ``X-Envelope-To`` header. Files are written
under a temporary name and renamed, so a reader never sees a partial message.

Test rules applied at RCPT TO (on the local part, case-insensitive):
  * contains ``reject``   -> 550 5.1.1, always;
  * contains ``tempfail`` -> 451 4.3.0 for the first N attempts per address
    (N = --tempfail-attempts, default 2; counted in memory), then accepted.

Usage: smtp_server.py [--host H] [--port P] [--mail-dir DIR]
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
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("smtp_server")

REJECT_REPLY = "550 5.1.1 Mailbox unavailable (test rule: reject)"
TEMPFAIL_REPLY = "451 4.3.0 Temporary failure (test rule: tempfail)"


class MailDirHandler:
    def __init__(self, mail_dir: Path, tempfail_attempts: int = 2) -> None:
        self.mail_dir = mail_dir
        self.tempfail_attempts = tempfail_attempts
        self.tempfail_seen: dict[str, int] = {}

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
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
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""  # raw bytes, as received
        eol = b"\r\n" if b"\r\n" in content else b"\n"
        header = b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode("utf-8") + eol
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        path = await asyncio.to_thread(self._store, name, header + content)
        log.info(
            "accepted file=%s from=%s to=%s bytes=%d",
            path.name,
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
            len(content),
        )
        return "250 2.0.0 Message accepted for delivery"

    def _store(self, name: str, data: bytes) -> Path:
        final = self.mail_dir / name
        tmp = self.mail_dir / f".{name}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, final)  # atomic within one filesystem
        return final


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
    handler = MailDirHandler(args.mail_dir, args.tempfail_attempts)
    loop = asyncio.get_running_loop()

    def factory() -> Any:
        return SMTP(handler, hostname="localhost", ident="saga-shop test SMTP")

    server = await loop.create_server(factory, host=args.host, port=args.port)
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
    # aiosmtpd logs every connection and command at INFO: keep one line per message.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(parse_args()))


if __name__ == "__main__":
    main()
