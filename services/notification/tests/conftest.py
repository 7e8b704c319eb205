"""Fixtures of the notification service's tests: its migrated database, helpers to deliver
commands the way the consumer does, the project's SMTP server and its mail folder (the
``smtp_server`` fixture: native, or started by the test run with Testcontainers), and an
in-process SMTP server for fault injection. (Tests cannot import from a conftest: helpers are
fixtures.)"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP
from aiosmtpd.smtp import Envelope as SmtpEnvelope
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from notification.adapters.mailer import Mailer, SmtpMailer
from notification.adapters.orm import Notification, OutboxMessage
from notification.service_layer.confirmations import Confirmations
from notification.service_layer.handlers import COMMANDS, make_batch_handler, make_handlers
from sagakit.consumer import BatchHandler, Handler
from sagakit.contracts import REGISTRY, PricedLine, SendOrderConfirmation, VoidOrderConfirmation
from sagakit.db.engine import create_session_factory
from sagakit.db.pool import Database
from sagakit.messaging.envelope import Envelope, utcnow
from sagakit.messaging.registry import Message
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.settings import Topics
from sagakit.testing.databases import migrated_engine, pool_of, truncate_all
from sagakit.testing.infra import Infra
from sagakit.testing.kafka import unique_name
from sagakit.testing.processes import free_port
from sagakit.testing.smtp import SmtpServer

SERVICE_DIR = Path(__file__).resolve().parents[1]
SENDER = "orders@saga-shop.local"
# The mailer's SMTP timeout in these tests, and so the handlers' send margin before a deadline.
SMTP_TIMEOUT_S = 5.0


# --- database ------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session")
async def notification_engine(infra: Infra) -> AsyncIterator[AsyncEngine]:
    url = infra.database_url("notification")
    async with migrated_engine(SERVICE_DIR / "alembic.ini", url, pool_size=5) as engine:
        yield engine


@pytest_asyncio.fixture
async def notification_sessions(
    notification_engine: AsyncEngine,
) -> async_sessionmaker[AsyncSession]:
    """Sessions on the notification database, its tables emptied before the test."""
    await truncate_all(notification_engine)
    return create_session_factory(notification_engine)


@pytest_asyncio.fixture(scope="session")
async def notification_database(notification_engine: AsyncEngine) -> AsyncIterator[Database]:
    async with pool_of(notification_engine) as database:
        yield database


# --- the local SMTP server's mail folder ---------------------------------------------------------


def delivered(mail_dir: Path, message_id: str) -> list[EmailMessage]:
    """Every message the SMTP server stored in ``mail_dir`` with this Message-ID (other tests
    share the folder, so always filter by a Message-ID unique to the test)."""
    # The server puts the Message-ID in the file name (scripts/infra/smtp_server.py).
    tag = "".join(c if c.isalnum() or c in "-_" else "_" for c in message_id.strip("<>"))[:120]
    found = []
    for path in mail_dir.glob(f"*-{tag}-*.eml"):  # ".name.tmp" files are still being written
        with contextlib.suppress(FileNotFoundError):
            raw = path.read_bytes()
            if message_id.encode() not in raw:
                continue
            parsed = _parse(raw)
            if parsed["Message-ID"] == message_id:
                found.append(parsed)
    return found


def _parse(raw: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


# --- helpers -------------------------------------------------------------------------------------


class Crash(Exception):
    """Stands for the process dying at that point: nothing after it runs or commits."""


class CrashingMailer:
    """A mailer that dies before anything reaches the server."""

    async def send(self, message: EmailMessage, *, not_after: datetime | None = None) -> None:
        raise Crash("killed before sending")


@dataclass
class Kit:
    """Helpers of the notification tests, bound to the test's clean database and topics."""

    Crash: ClassVar[type[Crash]] = Crash

    sessions: async_sessionmaker[AsyncSession]
    database: Database
    smtp: SmtpServer
    mailers: list[SmtpMailer] = field(default_factory=list)
    topics: Topics = field(default_factory=lambda: Topics(unique_name("notif") + "."))
    sender: str = SENDER

    @property
    def replies_topic(self) -> str:
        return self.topics.replies("notification")

    @staticmethod
    def crashing_mailer() -> CrashingMailer:
        return CrashingMailer()

    async def waiting_for_row_lock(self) -> bool:
        """True while some session waits for a lock on the notifications table."""
        async with self.sessions() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(text("pg_stat_activity"))
                .where(
                    text("wait_event_type = 'Lock'"),
                    text("datname = current_database()"),
                    text("query LIKE '%notifications%'"),
                )
            )
        return bool(waiting)

    def mailer(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        max_attempts: int = 3,
        timeout_s: float = SMTP_TIMEOUT_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> SmtpMailer:
        """The real mailer with short backoffs; the project's SMTP server unless told otherwise."""
        mailer = SmtpMailer(
            host=self.smtp.host if host is None else host,
            port=self.smtp.port if port is None else port,
            timeout_s=timeout_s,
            max_attempts=max_attempts,
            backoff_base_s=0.01,
            backoff_cap_s=0.05,
            clock=clock,
        )
        self.mailers.append(mailer)  # its kept-open connections are closed after the test
        return mailer

    def confirmations(
        self,
        mailer: Mailer | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        send_margin_s: float = SMTP_TIMEOUT_S,
    ) -> Confirmations:
        return Confirmations(
            mailer=mailer or self.mailer(clock=clock),
            database=self.database,
            sender=self.sender,
            send_margin_s=send_margin_s,
            clock=clock,
        )

    def handlers(
        self,
        mailer: Mailer | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        send_margin_s: float = SMTP_TIMEOUT_S,
    ) -> dict[str, Handler]:
        """One command per call, each in its own unit of work (``deliver``)."""
        confirmations = self.confirmations(mailer, clock=clock, send_margin_s=send_margin_s)
        return make_handlers(self.topics, confirmations)

    def batch_handlers(
        self,
        mailer: Mailer | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        send_margin_s: float = SMTP_TIMEOUT_S,
    ) -> dict[str, BatchHandler]:
        """As the service wires its consumer: every command of a poll in one call."""
        confirmations = self.confirmations(mailer, clock=clock, send_margin_s=send_margin_s)
        return dict.fromkeys(COMMANDS, make_batch_handler(self.topics, confirmations))

    @staticmethod
    def command(
        email: str, *, currency: str = "USD", deadline: datetime | None = None
    ) -> Envelope[SendOrderConfirmation]:
        """A SendOrderConfirmation as the orchestrator sends it: two lines, a fresh order."""
        order_id = uuid.uuid4()
        return Envelope(
            payload=SendOrderConfirmation(
                order_id=order_id,
                email=email,
                lines=[
                    PricedLine(product_id="sku-mug", quantity=2, unit_price=1999, line_total=3998),
                    PricedLine(product_id="sku-tee", quantity=1, unit_price=2500, line_total=2500),
                ],
                total=6498,
                currency=currency,
            ),
            saga_id=uuid.uuid4(),
            order_id=order_id,
            step="send_notification",
            deadline=deadline,
        )

    @staticmethod
    def void(command: Envelope[SendOrderConfirmation]) -> Envelope[VoidOrderConfirmation]:
        """The compensation the orchestrator sends when ``command``'s step timed out: same saga
        (so the same record key), the compensation's step header, no deadline."""
        return Envelope(
            payload=VoidOrderConfirmation(order_id=command.payload.order_id),
            saga_id=command.saga_id,
            order_id=command.order_id,
            step="send_notification:compensate",
        )

    @staticmethod
    def resent(envelope: Envelope[Any], **changes: Any) -> Envelope[Any]:
        """The same command with a NEW message id (what the orchestrator's re-sends look like);
        ``changes`` replace other fields, e.g. ``deadline``."""
        return dataclasses.replace(envelope, message_id=uuid.uuid4(), timestamp=utcnow(), **changes)

    async def deliver(
        self,
        handlers: dict[str, Handler],
        envelope: Envelope[Any],
        *,
        before_commit: Callable[[], None] | None = None,
    ) -> bool:
        """What the consumer does with one record: inbox, handler, commit in ONE transaction.

        False for a redelivery (inbox hit). ``before_commit`` may raise to simulate a crash.
        """
        async with UnitOfWork(self.database) as uow:
            if not await uow.record_inbox(envelope, topic="test", partition=0, offset=0):
                return False
            await handlers[envelope.message_type](envelope, uow)
            if before_commit is not None:
                before_commit()
            await uow.commit()
        return True

    async def notification(self, order_id: uuid.UUID) -> Notification | None:
        async with self.sessions() as session:
            return await session.get(Notification, order_id)

    async def replies(self) -> list[tuple[Message, dict[str, str]]]:
        """The replies written to the outbox, in order: payload and headers."""
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(OutboxMessage)
                    .where(OutboxMessage.topic == self.replies_topic)
                    .order_by(OutboxMessage.id)
                )
            ).all()
        return [(REGISTRY.decode(r.message_type, r.value), dict(r.headers)) for r in rows]

    def delivered(self, message_id: str) -> list[EmailMessage]:
        return delivered(self.smtp.mail_dir, message_id)


@pytest_asyncio.fixture
async def kit(
    notification_sessions: async_sessionmaker[AsyncSession],
    notification_database: Database,
    smtp_server: SmtpServer,
) -> AsyncIterator[Kit]:
    kit = Kit(notification_sessions, notification_database, smtp_server)
    yield kit
    for mailer in kit.mailers:
        await mailer.close()


@dataclass
class ManualClock:
    """A clock that moves only when told: pass it as ``clock`` to handlers and mailer."""

    now: datetime = field(default_factory=utcnow)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


# --- an in-process SMTP server for fault injection ---------------------------------------------


@dataclass
class FaultySmtp:
    """An aiosmtpd server on a free port. RCPT TO is answered ``rcpt_reply`` while ``failures``
    lasts; ``stop()`` makes connections refused until ``start()`` (same port)."""

    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    failures: int = 0
    rcpt_reply: str = "451 4.3.0 Try again later (fault injection)"
    rcpt_attempts: int = 0
    accepted: list[bytes] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Any,
        envelope: SmtpEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.rcpt_attempts += 1
        if self.failures > 0:
            self.failures -= 1
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: SmtpEnvelope) -> str:
        self.accepted.append(envelope.original_content or b"")
        return "250 2.0.0 Accepted"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def connected() -> SMTP:
            self.connections += 1
            return SMTP(self, hostname="faulty.local")

        self._server = await loop.create_server(connected, host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            await server.wait_closed()

    def messages(self) -> list[EmailMessage]:
        return [_parse(raw) for raw in self.accepted]


@pytest_asyncio.fixture
async def faulty_smtp() -> AsyncIterator[FaultySmtp]:
    server = FaultySmtp()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
