"""Payments, refunds and refused refund attempts as SQL, for the message handlers.

Reads for a whole batch of orders in one statement; writes with multi-row inserts. The inserts
have no ``ON CONFLICT``: the order's advisory lock serialises its commands, so a duplicate here
is a bug that must fail loudly, not be hidden.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from payment.domain.records import (
    PaymentRecord,
    PaymentStatus,
    RefundAttempt,
    RefundRecord,
    RefundStatus,
)
from sagakit.db.locks import lock_keys
from sagakit.outbox.unit_of_work import UnitOfWork


@dataclass(slots=True)
class OrderPayments:
    """An order's records, as loaded and as this transaction adds to them."""

    payment: PaymentRecord | None = None
    refund: RefundRecord | None = None
    refused_refunds: int = 0
    new: list[PaymentRecord | RefundRecord | RefundAttempt] = field(default_factory=list)


async def lock_orders(conn: asyncpg.Connection, order_ids: Sequence[uuid.UUID]) -> None:
    """One command per order at a time (a rebalance or a re-sent compensation can deliver a
    second copy while the first is mid-call): the second sees the first's outcome."""
    await lock_keys(conn, "payment-order", (str(o) for o in order_ids))


async def load(
    conn: asyncpg.Connection, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, OrderPayments]:
    ids = sorted(set(order_ids))
    rows = await conn.fetch(
        """
        SELECT o.order_id,
               p.saga_id AS p_saga, p.amount AS p_amount, p.currency, p.payment_method,
               p.status AS p_status, p.gateway_payment_id, p.decline_code, p.decline_message,
               p.idempotency_key,
               r.saga_id AS r_saga, r.payment_id AS r_payment, r.amount AS r_amount,
               r.status AS r_status, r.refund_id,
               (SELECT count(*) FROM refund_attempts a WHERE a.order_id = o.order_id) AS refused
          FROM unnest($1::uuid[]) AS o(order_id)
          LEFT JOIN payments p ON p.order_id = o.order_id
          LEFT JOIN refunds r ON r.order_id = o.order_id
        """,
        ids,
    )
    out: dict[uuid.UUID, OrderPayments] = {}
    for row in rows:
        order_id = row["order_id"]
        payment = None
        if row["p_status"] is not None:
            payment = PaymentRecord(
                order_id=order_id,
                saga_id=row["p_saga"],
                amount=row["p_amount"],
                currency=row["currency"],
                payment_method=row["payment_method"],
                status=PaymentStatus(row["p_status"]),
                gateway_payment_id=row["gateway_payment_id"],
                decline_code=row["decline_code"],
                decline_message=row["decline_message"],
                idempotency_key=row["idempotency_key"],
            )
        refund = None
        if row["r_status"] is not None:
            refund = RefundRecord(
                order_id=order_id,
                saga_id=row["r_saga"],
                payment_id=row["r_payment"],
                amount=row["r_amount"],
                status=RefundStatus(row["r_status"]),
                refund_id=row["refund_id"],
            )
        out[order_id] = OrderPayments(payment, refund, int(row["refused"]))
    return out


def insert(
    uow: UnitOfWork, records: Sequence[PaymentRecord | RefundRecord | RefundAttempt]
) -> None:
    payments = [r for r in records if isinstance(r, PaymentRecord)]
    refunds = [r for r in records if isinstance(r, RefundRecord)]
    attempts = [r for r in records if isinstance(r, RefundAttempt)]
    if payments:
        uow.write(
            """
            INSERT INTO payments (order_id, saga_id, amount, currency, payment_method, status,
                gateway_payment_id, decline_code, decline_message, idempotency_key)
            SELECT * FROM unnest({0}::uuid[], {1}::uuid[], {2}::bigint[], {3}::text[], {4}::text[],
                {5}::text[], {6}::text[], {7}::text[], {8}::text[], {9}::text[])
            """,
            [p.order_id for p in payments],
            [p.saga_id for p in payments],
            [p.amount for p in payments],
            [p.currency for p in payments],
            [p.payment_method for p in payments],
            [str(p.status) for p in payments],
            [p.gateway_payment_id for p in payments],
            [p.decline_code for p in payments],
            [p.decline_message for p in payments],
            [p.idempotency_key for p in payments],
        )
    if refunds:
        uow.write(
            """
            INSERT INTO refunds (order_id, saga_id, payment_id, amount, status, refund_id)
            SELECT * FROM unnest({0}::uuid[], {1}::uuid[], {2}::text[], {3}::bigint[], {4}::text[],
                {5}::text[])
            """,
            [r.order_id for r in refunds],
            [r.saga_id for r in refunds],
            [r.payment_id for r in refunds],
            [r.amount for r in refunds],
            [str(r.status) for r in refunds],
            [r.refund_id for r in refunds],
        )
    if attempts:
        uow.write(
            """
            INSERT INTO refund_attempts (order_id, attempt, saga_id, idempotency_key, reason,
                detail)
            SELECT * FROM unnest({0}::uuid[], {1}::int[], {2}::uuid[], {3}::text[], {4}::text[],
                {5}::text[])
            """,
            [a.order_id for a in attempts],
            [a.attempt for a in attempts],
            [a.saga_id for a in attempts],
            [a.idempotency_key for a in attempts],
            [a.reason for a in attempts],
            [a.detail for a in attempts],
        )
