"""The ``notifications`` table as SQL, for the message handlers: multi-row statements."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from notification.domain.notification import Confirmation
from notification.domain.status import NotificationStatus
from sagakit.outbox.unit_of_work import UnitOfWork

# The statuses' values are part of the statement text (built once, constants for the server).
_CLAIM = f"""
    INSERT INTO notifications AS n (order_id, saga_id, email, smtp_message_id, status, attempts)
    SELECT u.order_id, u.saga_id, u.email, u.smtp_message_id, '{NotificationStatus.SENDING}', 1
      FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[])
        AS u(order_id, saga_id, email, smtp_message_id)
    ON CONFLICT (order_id) DO UPDATE SET attempts = n.attempts + 1
        WHERE n.status = '{NotificationStatus.SENDING}'
    """
# ``{0}``... are the unit of work's placeholders (``uow.write``), filled at its commit.
_SAVE = f"""
    UPDATE notifications n SET status = u.status, reason = u.reason, detail = u.detail,
        sent_at = CASE WHEN u.status = '{NotificationStatus.SENT}' THEN now() ELSE n.sent_at END
    FROM unnest({{0}}::uuid[], {{1}}::text[], {{2}}::text[], {{3}}::text[])
        AS u(order_id, status, reason, detail)
    WHERE n.order_id = u.order_id
    """


@dataclass(frozen=True, slots=True)
class NewRow:
    order_id: uuid.UUID
    saga_id: uuid.UUID | None
    email: str | None
    smtp_message_id: str
    status: NotificationStatus
    reason: str | None = None
    detail: str | None = None


async def claim(conn: asyncpg.Connection, rows: Sequence[NewRow]) -> None:
    """Insert each order's row as ``sending``, or count one more attempt on an unfinished one.

    A finished row (``sent``, ``rejected``, ``expired``, ``voided``) is left exactly as it is.
    """
    unique = list({row.order_id: row for row in rows}.values())  # one row per order per statement
    if not unique:
        return
    await conn.execute(
        _CLAIM,
        [r.order_id for r in unique],
        [r.saga_id for r in unique],
        [r.email for r in unique],
        [r.smtp_message_id for r in unique],
    )


async def add_unless_present(conn: asyncpg.Connection, rows: Sequence[NewRow]) -> None:
    """Insert rows that record an outcome without a send (``expired``, ``voided``); an
    existing row is kept, for the caller to lock and judge."""
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO notifications (order_id, saga_id, email, smtp_message_id, status, reason,
            detail)
        SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
            $6::text[], $7::text[])
        ON CONFLICT (order_id) DO NOTHING
        """,
        [r.order_id for r in rows],
        [r.saga_id for r in rows],
        [r.email for r in rows],
        [r.smtp_message_id for r in rows],
        [str(r.status) for r in rows],
        [r.reason for r in rows],
        [r.detail for r in rows],
    )


async def lock(
    conn: asyncpg.Connection, order_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Confirmation]:
    """The orders' rows, locked until this transaction ends (serialises concurrent sends), in
    order id order (no deadlocks between batches)."""
    rows = await conn.fetch(
        "SELECT order_id, saga_id, email, smtp_message_id, status, reason, detail"
        " FROM notifications WHERE order_id = ANY($1::uuid[]) ORDER BY order_id FOR UPDATE",
        sorted(set(order_ids)),
    )
    return {
        row["order_id"]: Confirmation(
            order_id=row["order_id"],
            saga_id=row["saga_id"],
            email=row["email"],
            smtp_message_id=row["smtp_message_id"],
            status=NotificationStatus(row["status"]),
            reason=row["reason"],
            detail=row["detail"],
        )
        for row in rows
    }


def save(uow: UnitOfWork, confirmations: Iterable[Confirmation]) -> None:
    changed = [c for c in confirmations if c.changed]
    if not changed:
        return
    # ``sent_at`` from the database clock, like ``created_at``.
    uow.write(
        _SAVE,
        [c.order_id for c in changed],
        [str(c.status) for c in changed],
        [c.reason for c in changed],
        [c.detail for c in changed],
    )
