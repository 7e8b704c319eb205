"""What the invariant audit reads: every service's database, the mailbox and the DLQ topics.

Each database is read in one read-only REPEATABLE READ transaction (a consistent picture of that
service), one set-based query per table, never a query per order. The orchestrator is read first:
whatever it records as done had already been committed by the participants, so a participant read
afterwards shows at least as much, and an order newer than the orchestrator's picture is younger
than the grace period. "Settled" (older than the grace period) is judged by each database's own
clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from sagakit.db.tls import AS_THE_URL_SAYS, PostgresTls
from sagakit.messaging.kafka_clients import PLAINTEXT, KafkaSecurity

PARTICIPANTS = ("inventory", "payment", "notification")
SERVICES = ("orchestrator", *PARTICIPANTS)
TERMINAL_SAGA_STATUSES = ("COMPLETED", "FAILED", "COMPENSATED", "COMPENSATION_FAILED")
# Step states whose command's reply was applied: the participant must have consumed the command.
APPLIED_STEP_STATUSES = ("SUCCEEDED", "FAILED", "COMPENSATED")
# The topics whose ``.dlq`` the audit reads (scripts/infra/topics.txt without the .dlq lines).
DLQ_SOURCE_TOPICS = (
    "orders",
    "inventory.commands",
    "inventory.replies",
    "payment.commands",
    "payment.replies",
    "notification.commands",
    "notification.replies",
    "order.events",
)


@dataclass(frozen=True)
class AuditTargets:
    """Where the audited deployment keeps its state (SQLAlchemy ``postgresql+asyncpg`` URLs)."""

    orchestrator_url: str
    inventory_url: str
    payment_url: str
    notification_url: str
    kafka_bootstrap: str | None = None  # None: the DLQ check is skipped
    topic_prefix: str = ""
    maildir: Path | None = None  # the local SMTP server's .eml folder; None: mailbox not checked
    grace_s: float = 60.0  # orders younger than this may still be in flight
    deliberate_poison_header: str = "x-chaos-poison"
    connect_timeout_s: float = 10.0
    # How to reach a managed deployment: the services' KAFKA_SECURITY_*/KAFKA_SASL_*/KAFKA_SSL_*
    # and DB_SSLMODE/DB_SSL_* settings.
    kafka_security: KafkaSecurity = PLAINTEXT
    database_tls: PostgresTls = AS_THE_URL_SAYS
    dlq_timeout_s: float = 60.0  # reading the DLQ topics to their end offsets takes at most this


class AuditUnavailable(Exception):
    """A database (or the broker) could not be read: nothing can be said about the invariants."""


# --- rows: text ids, integer cents (tuples: quick to build by the hundred thousand) ---------------


class OrderRow(NamedTuple):
    order_id: str
    status: str
    total: int | None
    currency: str
    settled: bool  # created more than the grace period ago


class SagaRow(NamedTuple):
    saga_id: str
    order_id: str
    status: str


class StepRow(NamedTuple):
    """A step of a terminal saga whose reply was applied (see ``APPLIED_STEP_STATUSES``)."""

    saga_id: str
    name: str
    status: str
    command_message_id: str


class ProductRow(NamedTuple):
    product_id: str
    initial_stock: int
    available: int
    reserved: int


class ReservationRow(NamedTuple):
    order_id: str
    status: str  # held / released
    total: int
    settled: bool


class PaymentRow(NamedTuple):
    order_id: str
    status: str  # succeeded / declined
    amount: int
    currency: str
    gateway_payment_id: str | None


class GatewayChargeRow(NamedTuple):
    """A charge in the simulated Stripe's own records; order and saga ids from its metadata."""

    payment_id: str
    status: str
    amount: int
    idempotency_key: str
    order_id: str | None
    saga_id: str | None
    settled: bool


class OutboxCount(NamedTuple):
    total: int
    stale: int  # older than the grace period


class DlqRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    headers: dict[str, str]


@dataclass
class DlqScan:
    records: list[DlqRecord] = field(default_factory=list)
    topics_read: list[str] = field(default_factory=list)
    missing_topics: list[str] = field(default_factory=list)
    # Partitions not read to their end in time: "topic:partition: read to <pos> of <end>".
    incomplete: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    grace_s: float
    poison_header: str = "x-chaos-poison"
    orders: dict[str, OrderRow] = field(default_factory=dict)
    sagas: dict[str, SagaRow] = field(default_factory=dict)  # by saga id
    steps: list[StepRow] = field(default_factory=list)
    products: dict[str, ProductRow] = field(default_factory=dict)
    held_quantity: dict[str, int] = field(default_factory=dict)  # product -> held lines' units
    reservations: dict[str, ReservationRow] = field(default_factory=dict)
    payments: dict[str, PaymentRow] = field(default_factory=dict)
    refunds: dict[str, int] = field(default_factory=dict)  # order -> refunded amount
    gateway_charges: list[GatewayChargeRow] = field(default_factory=list)
    gateway_refunded: dict[str, int] = field(default_factory=dict)  # payment id -> refunded
    notifications: dict[str, str] = field(default_factory=dict)  # order -> status
    inboxes: dict[str, set[str]] = field(default_factory=dict)  # participant -> message ids
    outboxes: dict[str, OutboxCount] = field(default_factory=dict)  # service -> rows
    mails: dict[str, int] | None = None  # order -> .eml files; None: mailbox not read
    dlq: DlqScan | None = None  # None: DLQ not read


# --- reading --------------------------------------------------------------------------------------

# ``$1`` is the grace period in seconds in every query that judges age.
_SETTLED = "created_at < now() - make_interval(secs => $1)"
_OUTBOX = f"SELECT count(*), count(*) FILTER (WHERE {_SETTLED}) FROM outbox"

Progress = Callable[[str], None]
Reader = Callable[[Any, Snapshot], Awaitable[None]]  # (asyncpg connection, snapshot)


async def load_snapshot(targets: AuditTargets, progress: Progress | None = None) -> Snapshot:
    say = progress or (lambda _msg: None)
    snap = Snapshot(grace_s=float(targets.grace_s), poison_header=targets.deliberate_poison_header)
    say("reading the orchestrator database")
    await _read_db(targets, "orchestrator", targets.orchestrator_url, _read_orchestrator, snap)
    say("reading inventory, payment, notification" + (", the mailbox" if targets.maildir else ""))
    jobs: list[Awaitable[Any]] = [
        _read_db(targets, "inventory", targets.inventory_url, _read_inventory, snap),
        _read_db(targets, "payment", targets.payment_url, _read_payment, snap),
        _read_db(targets, "notification", targets.notification_url, _read_notification, snap),
    ]
    if targets.maildir is not None:
        jobs.append(_read_mailbox(targets.maildir, snap))
    if targets.kafka_bootstrap is not None:
        say(f"reading the DLQ topics ({targets.topic_prefix or 'no prefix'})")
        jobs.append(_read_dlq_into(targets, snap))
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        # One source failed (or we are cancelled): the others stop too, connections closed.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return snap


async def _read_db(
    targets: AuditTargets, service: str, url: str, reader: Reader, snap: Snapshot
) -> None:
    """One read-only REPEATABLE READ transaction on plain asyncpg: SQLAlchemy's row processing
    would cost several times the queries themselves on a hundred thousand orders."""
    import asyncpg

    try:
        parsed = make_url(url)
        where = parsed.render_as_string(hide_password=True)
        dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    except (ArgumentError, ValueError) as exc:
        raise AuditUnavailable(f"invalid {service} database URL: {exc}") from exc
    try:
        conn = await asyncpg.connect(
            dsn, timeout=targets.connect_timeout_s, **targets.database_tls.connect_args(dsn)
        )
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await reader(conn, snap)
        finally:
            await conn.close()
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise AuditUnavailable(f"cannot read the {service} database at {where}: {reason}") from exc


async def _read_outbox(conn: Any, snap: Snapshot, service: str) -> None:
    total, stale = await conn.fetchrow(_OUTBOX, snap.grace_s)
    snap.outboxes[service] = OutboxCount(total=total, stale=stale)


async def _read_inbox(conn: Any, snap: Snapshot, service: str) -> None:
    rows = await conn.fetch("SELECT message_id::text FROM inbox")
    snap.inboxes[service] = {r[0] for r in rows}


async def _read_orchestrator(conn: Any, snap: Snapshot) -> None:
    orders = await conn.fetch(
        f"SELECT order_id::text, status, total, currency, {_SETTLED} FROM orders", snap.grace_s
    )
    snap.orders = {r[0]: OrderRow(*r) for r in orders}
    sagas = await conn.fetch("SELECT saga_id::text, order_id::text, status FROM sagas")
    snap.sagas = {r[0]: SagaRow(*r) for r in sagas}
    steps = await conn.fetch(
        "SELECT st.saga_id::text, st.name, st.status, st.command_message_id::text"
        " FROM saga_steps st JOIN sagas s ON s.saga_id = st.saga_id"
        " WHERE s.status = ANY($1::text[]) AND st.status = ANY($2::text[])"
        " AND st.command_message_id IS NOT NULL",
        list(TERMINAL_SAGA_STATUSES),
        list(APPLIED_STEP_STATUSES),
    )
    snap.steps = [StepRow(*r) for r in steps]
    await _read_outbox(conn, snap, "orchestrator")


async def _read_inventory(conn: Any, snap: Snapshot) -> None:
    products = await conn.fetch(
        "SELECT product_id, initial_stock, available, reserved FROM products"
    )
    snap.products = {r[0]: ProductRow(*r) for r in products}
    held = await conn.fetch(
        "SELECT l.product_id, sum(l.quantity)::bigint FROM reservation_lines l"
        " JOIN reservations r ON r.order_id = l.order_id WHERE r.status = 'held'"
        " GROUP BY l.product_id"
    )
    snap.held_quantity = {product_id: quantity for product_id, quantity in held}
    reservations = await conn.fetch(
        f"SELECT order_id::text, status, total, {_SETTLED} FROM reservations", snap.grace_s
    )
    snap.reservations = {r[0]: ReservationRow(*r) for r in reservations}
    await _read_inbox(conn, snap, "inventory")
    await _read_outbox(conn, snap, "inventory")


async def _read_payment(conn: Any, snap: Snapshot) -> None:
    payments = await conn.fetch(
        "SELECT order_id::text, status, amount, currency, gateway_payment_id FROM payments"
    )
    snap.payments = {r[0]: PaymentRow(*r) for r in payments}
    refunds = await conn.fetch("SELECT order_id::text, amount FROM refunds")
    snap.refunds = {order_id: amount for order_id, amount in refunds}
    # The gateway's own records exist only when the simulated Stripe is in use (it creates its
    # store on first use); with the real Stripe they are at Stripe.
    if await conn.fetchval("SELECT to_regclass('simulated_stripe.charges') IS NOT NULL"):
        charges = await conn.fetch(
            "SELECT payment_id, status, amount, idempotency_key, metadata->>'order_id',"
            f" metadata->>'saga_id', {_SETTLED} FROM simulated_stripe.charges",
            snap.grace_s,
        )
        snap.gateway_charges = [GatewayChargeRow(*r) for r in charges]
        refunded = await conn.fetch(
            "SELECT payment_id, sum(amount)::bigint FROM simulated_stripe.refunds"
            " WHERE status = 'succeeded' GROUP BY payment_id"
        )
        snap.gateway_refunded = {payment_id: amount for payment_id, amount in refunded}
    await _read_inbox(conn, snap, "payment")
    await _read_outbox(conn, snap, "payment")


async def _read_notification(conn: Any, snap: Snapshot) -> None:
    rows = await conn.fetch("SELECT order_id::text, status FROM notifications")
    snap.notifications = {order_id: status for order_id, status in rows}
    await _read_inbox(conn, snap, "notification")
    await _read_outbox(conn, snap, "notification")


# --- the mailbox ----------------------------------------------------------------------------------

# notification.domain.confirmation.message_id_for: the same Message-ID for every send of an order.
_MESSAGE_ID = re.compile(r"<order-([0-9a-fA-F-]{36})@saga-shop\.local>")
_MESSAGE_ID_LINE = re.compile(
    rb"^Message-ID:[ \t]*<order-([0-9a-fA-F-]{36})@saga-shop\.local>", re.MULTILINE | re.IGNORECASE
)
_BODY_ORDER = re.compile(rb"Order: ([0-9a-fA-F-]{36})")
# scripts/infra/smtp_server.py names a file "<ns>-<Message-ID tag>-<8 hex>.eml"; for ours the tag
# is "order-<id>_saga-shop_local".
_NAMED_FOR_ORDER = re.compile(r"^\d+-order-([0-9a-fA-F-]{36})_saga-shop_local-[0-9a-f]{8}\.eml$")
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def count_mails(maildir: Path) -> dict[str, int]:
    """How many ``.eml`` files in ``maildir`` confirm each order (each file read once).

    The order comes from the file's name when the local SMTP server put our Message-ID in it
    (it writes the name from that header, so a mailbox of a million bench confirmations is
    counted without opening them); otherwise from the Message-ID header (the header line as the
    notification service writes it, else the parsed header, which unfolds it); a message without
    ours falls back to the ``Order: <id>`` line of its text body.
    """
    counts: Counter[str] = Counter()
    parser = BytesHeaderParser(policy=compat32)
    try:
        entries = list(os.scandir(maildir))
    except FileNotFoundError:
        return {}
    for entry in entries:
        if not entry.name.endswith(".eml") or entry.name.startswith("."):
            continue
        named = _NAMED_FOR_ORDER.match(entry.name)
        if named:
            counts[named.group(1).lower()] += 1
            continue
        try:
            with open(entry.path, "rb") as f:
                data = f.read()
        except OSError:  # removed while we looked
            continue
        order_id = _order_of_mail(data, parser)
        if order_id:
            counts[order_id.lower()] += 1
    return dict(counts)


def _order_of_mail(data: bytes, parser: BytesHeaderParser) -> str | None:
    head = _HEADER_END.split(data, maxsplit=1)[0]
    line = _MESSAGE_ID_LINE.search(head)
    if line:
        return line.group(1).decode()
    parsed = _MESSAGE_ID.search(str(parser.parsebytes(head).get("Message-ID", "")))
    if parsed:
        return parsed.group(1)
    body = _BODY_ORDER.search(data)
    return body.group(1).decode() if body else None


async def _read_mailbox(maildir: Path, snap: Snapshot) -> None:
    snap.mails = await asyncio.to_thread(count_mails, maildir)


# --- the DLQ topics -------------------------------------------------------------------------------


async def read_dlq(
    bootstrap: str,
    topics: Sequence[str],
    *,
    timeout_s: float = 60.0,
    request_timeout_ms: int = 10_000,
    security: KafkaSecurity = PLAINTEXT,
) -> DlqScan:
    """Every record of ``topics`` from the beginning to the end offsets fetched at the start.

    Missing topics are listed, not created. A partition not read to its end within ``timeout_s``
    is listed in ``incomplete`` (the scan never hangs on a broker that stops answering).
    """
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    from sagakit.messaging.kafka_clients import kafka_admin, kafka_consumer

    scan = DlqScan()
    admin = kafka_admin(bootstrap, security, request_timeout_ms=request_timeout_ms)
    consumer = kafka_consumer(
        bootstrap_servers=bootstrap,
        security=security,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=request_timeout_ms,
        client_id="saga-audit",
    )
    try:
        await admin.start()
        await consumer.start()
        # The metadata of every topic (asking by name could auto-create a missing one).
        described = {t["topic"]: t for t in await admin.describe_topics()}
    except (KafkaError, OSError) as exc:
        await _close_quietly(admin.close(), consumer.stop())
        raise AuditUnavailable(
            f"cannot read the DLQ topics from Kafka at {bootstrap}: {exc}"
        ) from exc
    try:
        tps: list[Any] = []
        for topic in topics:
            if topic not in described:
                scan.missing_topics.append(topic)
                continue
            scan.topics_read.append(topic)
            parts = sorted(p["partition"] for p in described[topic]["partitions"])
            tps.extend(TopicPartition(topic, p) for p in parts)
        if not tps:
            return scan
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        remaining: set[Any] = set()
        for tp in tps:
            if ends[tp] > begins[tp]:
                consumer.seek(tp, begins[tp])
                remaining.add(tp)
        deadline = time.monotonic() + timeout_s
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(*remaining, timeout_ms=500)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue  # written after the scan started
                    headers = {
                        k: bytes(v or b"").decode(errors="replace") for k, v in record.headers or ()
                    }
                    scan.records.append(DlqRecord(tp.topic, tp.partition, record.offset, headers))
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        scan.records.sort(key=lambda r: (r.topic, r.partition, r.offset))
        for tp in sorted(remaining, key=lambda t: (t.topic, t.partition)):
            position = await consumer.position(tp)
            scan.incomplete.append(f"{tp.topic}:{tp.partition}: read to {position} of {ends[tp]}")
    except KafkaError as exc:
        raise AuditUnavailable(
            f"cannot read the DLQ topics from Kafka at {bootstrap}: {exc}"
        ) from exc
    finally:
        await _close_quietly(consumer.stop(), admin.close())
    return scan


async def _close_quietly(*closing: Awaitable[Any]) -> None:
    for close in closing:
        # Closing after a failure: the first error is the one reported.
        with contextlib.suppress(Exception):
            await close


async def _read_dlq_into(targets: AuditTargets, snap: Snapshot) -> None:
    assert targets.kafka_bootstrap is not None
    names = [f"{targets.topic_prefix}{topic}.dlq" for topic in DLQ_SOURCE_TOPICS]
    snap.dlq = await read_dlq(
        targets.kafka_bootstrap,
        names,
        timeout_s=targets.dlq_timeout_s,
        security=targets.kafka_security,
    )
