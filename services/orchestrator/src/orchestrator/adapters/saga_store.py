"""Sagas, their steps and history, and orders, as SQL on the unit of work's connection.

The hot path of the orchestrator: every statement is multi-row (``unnest``), so a batch of any
size costs the same few round trips. The ORM models in ``orm.py`` describe the same tables for
Alembic and the read-only HTTP paths.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from orchestrator.domain.engine import HistoryLine
from orchestrator.domain.saga import SagaState, StepState
from orchestrator.domain.status import SagaStatus, StepStatus
from sagakit.outbox.unit_of_work import UnitOfWork

_SAGA_COLUMNS = """
    s.saga_id, s.order_id, s.definition_name, s.definition_version, s.status, s.current_step,
    s.awaiting_step, s.awaiting_message_id, s.deadline_at, s.compensation_attempts,
    s.next_retry_at, s.failure_reason, s.context, s.traceparent, s.created_at, s.updated_at,
    (SELECT jsonb_agg(jsonb_build_array(st.position, st.name, st.status, st.command_message_id)
                      ORDER BY st.position)
       FROM saga_steps st WHERE st.saga_id = s.saga_id) AS steps
"""


# With ``FOR UPDATE OF s``: true when the locked row is newer than the statement's snapshot.
_CHANGED = """
    s.xmin::text <> (SELECT s2.xmin::text FROM sagas s2 WHERE s2.saga_id = s.saga_id)
        AS changed_while_locking
"""


def _json(value: Any) -> str:
    """jsonb values travel as text in arrays: a list would read as one more array dimension."""
    return orjson.dumps(value).decode()


def _state(row: asyncpg.Record) -> SagaState:
    return SagaState(
        saga_id=row["saga_id"],
        order_id=row["order_id"],
        definition_name=row["definition_name"],
        definition_version=row["definition_version"],
        status=SagaStatus(row["status"]),
        current_step=row["current_step"],
        awaiting_step=row["awaiting_step"],
        awaiting_message_id=row["awaiting_message_id"],
        deadline_at=row["deadline_at"],
        compensation_attempts=row["compensation_attempts"],
        next_retry_at=row["next_retry_at"],
        failure_reason=row["failure_reason"],
        context=row["context"],
        traceparent=row["traceparent"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        steps=[
            StepState(position, name, StepStatus(status), uuid.UUID(cmd) if cmd else None)
            for position, name, status, cmd in row["steps"] or ()
        ],
    )


def readable_state(row: asyncpg.Record) -> SagaState:
    """``_state`` for the operators' reads: a saga whose step rows no longer load (a corrupt
    row, parked for that reason) is shown without its steps rather than not at all."""
    try:
        return _state(row)
    except (ValueError, TypeError):
        return _state({**dict(row), "steps": None})


async def lock(
    conn: asyncpg.Connection, saga_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, SagaState]:
    """These sagas, row-locked until the transaction ends, in saga id order (so two
    transactions locking overlapping sets never deadlock). Unknown ids are absent."""
    rows = await conn.fetch(
        f"SELECT {_SAGA_COLUMNS}, {_CHANGED} FROM sagas s WHERE s.saga_id = ANY($1::uuid[])"
        " ORDER BY s.saga_id FOR UPDATE OF s",
        sorted(set(saga_ids)),
    )
    return {state.saga_id: state for state in await _fresh(conn, rows)}


async def lock_due(
    conn: asyncpg.Connection, now: datetime, limit: int
) -> tuple[list[SagaState], list[SagaState]]:
    """Sagas whose deadline passed, and sagas whose compensation retry is due, that no other
    transaction holds right now (``SKIP LOCKED``: replicas share the work, never twice)."""
    overdue = await conn.fetch(
        f"SELECT {_SAGA_COLUMNS}, {_CHANGED} FROM sagas s"
        " WHERE s.deadline_at IS NOT NULL AND s.deadline_at <= $1"
        " ORDER BY s.deadline_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED",
        now,
        limit,
    )
    # Only sagas that are compensating AND have a retry time: never NULL, never terminal.
    retries = await conn.fetch(
        f"SELECT {_SAGA_COLUMNS}, {_CHANGED} FROM sagas s"
        " WHERE s.status = 'COMPENSATING' AND s.next_retry_at IS NOT NULL"
        " AND s.next_retry_at <= $1"
        " ORDER BY s.next_retry_at LIMIT $2 FOR UPDATE OF s SKIP LOCKED",
        now,
        limit,
    )
    return await _fresh(conn, overdue), await _fresh(conn, retries)


async def _fresh(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[SagaState]:
    """The locked sagas, each as it is now. A row another transaction changed while this
    statement waited for its lock comes back in its newest version, but the rest of the
    statement (the steps' subquery) still saw the snapshot taken before the wait (READ
    COMMITTED): those sagas are read again, now that they are held. Without this, an operator's
    cancel racing a reply saw the new current step with the old step statuses, and compensated
    the wrong steps in the wrong order."""
    stale = [row["saga_id"] for row in rows if row["changed_while_locking"]]
    if not stale:
        return [_state(row) for row in rows]
    again = await conn.fetch(
        f"SELECT {_SAGA_COLUMNS} FROM sagas s WHERE s.saga_id = ANY($1::uuid[])", stale
    )
    fresh = {row["saga_id"]: _state(row) for row in again}
    return [fresh.get(row["saga_id"]) or _state(row) for row in rows]


async def due_ids(conn: asyncpg.Connection, now: datetime, limit: int) -> list[uuid.UUID]:
    """The ids of the sagas ``lock_due`` would take, loading and locking nothing."""
    rows = await conn.fetch(
        "(SELECT saga_id FROM sagas WHERE deadline_at IS NOT NULL AND deadline_at <= $1"
        "  ORDER BY deadline_at LIMIT $2)"
        " UNION ALL"
        " (SELECT saga_id FROM sagas WHERE status = 'COMPENSATING'"
        "  AND next_retry_at IS NOT NULL AND next_retry_at <= $1 ORDER BY next_retry_at LIMIT $2)",
        now,
        limit,
    )
    return list(dict.fromkeys(r["saga_id"] for r in rows))


async def park(conn: asyncpg.Connection, saga_id: uuid.UUID, reason: str, now: datetime) -> bool:
    """Park a saga without loading it (its row may be what is broken): a saga in flight becomes
    COMPENSATION_FAILED and its order NEEDS_ATTENTION; a terminal one keeps its status. Its
    timers are cleared either way, and the reason goes to its history. False if unknown."""
    row = await conn.fetchrow(
        "SELECT order_id, status FROM sagas WHERE saga_id = $1 FOR UPDATE", saga_id
    )
    if row is None:
        return False
    before = row["status"]
    after = "COMPENSATION_FAILED" if before in ("RUNNING", "COMPENSATING") else before
    reason = reason[:2000]
    await conn.execute(
        "UPDATE sagas SET status = $2::text, failure_reason = CASE WHEN $2::text <> $3::text"
        " THEN $4"
        " ELSE failure_reason END, awaiting_step = NULL, awaiting_message_id = NULL,"
        " deadline_at = NULL, next_retry_at = NULL, updated_at = $5 WHERE saga_id = $1",
        saga_id,
        after,
        before,
        reason,
        now,
    )
    await conn.execute(
        "INSERT INTO saga_history (saga_id, at, event, from_status, to_status, cause, detail)"
        " VALUES ($1, $2, 'engine_error', $3, $4, 'engine', $5)",
        saga_id,
        now,
        before,
        after,
        reason,
    )
    if after != before:
        await conn.execute(
            "UPDATE orders SET status = 'NEEDS_ATTENTION', updated_at = $2 WHERE order_id = $1",
            row["order_id"],
            now,
        )
    return True


@dataclass(frozen=True, slots=True)
class FinishedOrder:
    order_id: uuid.UUID
    status: str
    total: int | None


@dataclass
class Changes:
    """What one transaction decided: queued as writes of the unit of work, which sends them
    with its outbox rows as one statement at commit."""

    now: datetime
    created: Sequence[SagaState] = ()
    updated: Sequence[SagaState] = ()
    steps: Sequence[tuple[uuid.UUID, StepState]] = ()
    history: Sequence[tuple[uuid.UUID, HistoryLine]] = ()
    finished: Sequence[FinishedOrder] = ()


def write(uow: UnitOfWork, changes: Changes) -> None:
    if changes.created:
        _insert_sagas(uow, changes.created)
    if changes.updated:
        _update_sagas(uow, changes.updated)
    if changes.steps:
        _update_steps(uow, changes.steps, changes.now)
    if changes.history:
        _append_history(uow, changes.history)
    if changes.finished:
        _finish_orders(uow, changes.finished, changes.now)


def _insert_sagas(uow: UnitOfWork, sagas: Sequence[SagaState]) -> None:
    uow.write(
        """
        INSERT INTO sagas (saga_id, order_id, definition_name, definition_version, status,
            current_step, awaiting_step, awaiting_message_id, deadline_at,
            compensation_attempts, next_retry_at, failure_reason, context, traceparent,
            created_at, updated_at)
        SELECT u.saga_id, u.order_id, u.definition_name, u.definition_version, u.status,
               u.current_step, u.awaiting_step, u.awaiting_message_id, u.deadline_at,
               u.compensation_attempts, u.next_retry_at, u.failure_reason, u.context::jsonb,
               u.traceparent, u.created_at, u.created_at
          FROM unnest({0}::uuid[], {1}::uuid[], {2}::text[], {3}::int[], {4}::text[],
                      {5}::int[], {6}::text[], {7}::uuid[], {8}::timestamptz[], {9}::int[],
                      {10}::timestamptz[], {11}::text[], {12}::text[], {13}::text[],
                      {14}::timestamptz[])
            AS u(saga_id, order_id, definition_name, definition_version, status,
                 current_step, awaiting_step, awaiting_message_id, deadline_at,
                 compensation_attempts, next_retry_at, failure_reason, context, traceparent,
                 created_at)
        """,
        *_saga_columns(sagas),
        [s.created_at for s in sagas],
    )
    steps = [(s.saga_id, step) for s in sagas for step in s.steps]
    uow.write(
        """
        INSERT INTO saga_steps (saga_id, position, name, status, command_message_id)
        SELECT * FROM unnest({0}::uuid[], {1}::int[], {2}::text[], {3}::text[], {4}::uuid[])
        """,
        [saga_id for saga_id, _ in steps],
        [step.position for _, step in steps],
        [step.name for _, step in steps],
        [str(step.status) for _, step in steps],
        [step.command_message_id for _, step in steps],
    )


def _saga_columns(sagas: Sequence[SagaState]) -> list[list[Any]]:
    return [
        [s.saga_id for s in sagas],
        [s.order_id for s in sagas],
        [s.definition_name for s in sagas],
        [s.definition_version for s in sagas],
        [str(s.status) for s in sagas],
        [s.current_step for s in sagas],
        [s.awaiting_step for s in sagas],
        [s.awaiting_message_id for s in sagas],
        [s.deadline_at for s in sagas],
        [s.compensation_attempts for s in sagas],
        [s.next_retry_at for s in sagas],
        [s.failure_reason for s in sagas],
        [_json(s.context) for s in sagas],
        [s.traceparent for s in sagas],
    ]


def _update_sagas(uow: UnitOfWork, sagas: Sequence[SagaState]) -> None:
    """Every column the engine may change. ``updated_at`` too, as the engine decided it (when
    the saga last changed status or started waiting: the start of its awaited step), not the
    time of this write: a decision that only records history (an ignored reply) keeps it."""
    uow.write(
        """
        UPDATE sagas s SET status = u.status, current_step = u.current_step,
            awaiting_step = u.awaiting_step, awaiting_message_id = u.awaiting_message_id,
            deadline_at = u.deadline_at, compensation_attempts = u.compensation_attempts,
            next_retry_at = u.next_retry_at, failure_reason = u.failure_reason,
            context = u.context::jsonb, updated_at = coalesce(u.updated_at, s.updated_at)
        FROM unnest({0}::uuid[], {1}::text[], {2}::int[], {3}::text[], {4}::uuid[],
                    {5}::timestamptz[], {6}::int[], {7}::timestamptz[], {8}::text[], {9}::text[],
                    {10}::timestamptz[])
            AS u(saga_id, status, current_step, awaiting_step, awaiting_message_id, deadline_at,
                 compensation_attempts, next_retry_at, failure_reason, context, updated_at)
        WHERE s.saga_id = u.saga_id
        """,
        [s.saga_id for s in sagas],
        [str(s.status) for s in sagas],
        [s.current_step for s in sagas],
        [s.awaiting_step for s in sagas],
        [s.awaiting_message_id for s in sagas],
        [s.deadline_at for s in sagas],
        [s.compensation_attempts for s in sagas],
        [s.next_retry_at for s in sagas],
        [s.failure_reason for s in sagas],
        [_json(s.context) for s in sagas],
        [s.updated_at for s in sagas],
    )


def _update_steps(
    uow: UnitOfWork, steps: Sequence[tuple[uuid.UUID, StepState]], now: datetime
) -> None:
    uow.write(
        """
        UPDATE saga_steps st SET status = u.status, command_message_id = u.command_message_id,
            updated_at = {4}
        FROM unnest({0}::uuid[], {1}::int[], {2}::text[], {3}::uuid[])
            AS u(saga_id, position, status, command_message_id)
        WHERE st.saga_id = u.saga_id AND st.position = u.position
        """,
        [saga_id for saga_id, _ in steps],
        [step.position for _, step in steps],
        [str(step.status) for _, step in steps],
        [step.command_message_id for _, step in steps],
        now,
    )


def _append_history(uow: UnitOfWork, lines: Sequence[tuple[uuid.UUID, HistoryLine]]) -> None:
    uow.write(
        """
        INSERT INTO saga_history (saga_id, at, event, step, from_status, to_status, cause,
            detail)
        SELECT * FROM unnest({0}::uuid[], {1}::timestamptz[], {2}::text[], {3}::text[],
            {4}::text[], {5}::text[], {6}::text[], {7}::text[])
        """,
        [saga_id for saga_id, _ in lines],
        [line.at for _, line in lines],
        [line.event for _, line in lines],
        [line.step for _, line in lines],
        [line.from_status for _, line in lines],
        [line.to_status for _, line in lines],
        [line.cause for _, line in lines],
        [line.detail for _, line in lines],
    )


def _finish_orders(uow: UnitOfWork, finished: Sequence[FinishedOrder], now: datetime) -> None:
    uow.write(
        """
        UPDATE orders o SET status = u.status, total = coalesce(u.total, o.total),
            updated_at = {3}
        FROM unnest({0}::uuid[], {1}::text[], {2}::bigint[]) AS u(order_id, status, total)
        WHERE o.order_id = u.order_id
        """,
        [f.order_id for f in finished],
        [f.status for f in finished],
        [f.total for f in finished],
        now,
    )


# --- orders -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewOrder:
    order_id: uuid.UUID
    customer_id: str
    email: str
    items: list[dict[str, Any]]
    payment_method: str
    currency: str
    status: str
    idempotency_key: str | None
    request_hash: str
    source: str


@dataclass(frozen=True, slots=True)
class StoredOrder:
    order_id: uuid.UUID
    customer_id: str
    idempotency_key: str | None
    request_hash: str
    status: str
    saga_id: uuid.UUID | None


async def find_orders(
    conn: asyncpg.Connection,
    order_ids: Sequence[uuid.UUID],
    keys: Sequence[tuple[str, str]],
) -> list[StoredOrder]:
    """Orders with any of these ids, or any of these (customer, Idempotency-Key) pairs (two
    index look-ups: an OR of both would scan the table)."""
    rows = await conn.fetch(
        """
        SELECT o.order_id, o.customer_id, o.idempotency_key, o.request_hash, o.status,
               s.saga_id
          FROM orders o LEFT JOIN sagas s ON s.order_id = o.order_id
         WHERE o.order_id = ANY($1::uuid[])
        UNION
        SELECT o.order_id, o.customer_id, o.idempotency_key, o.request_hash, o.status,
               s.saga_id
          FROM unnest($2::text[], $3::text[]) AS k(customer_id, idempotency_key)
          JOIN orders o ON o.customer_id = k.customer_id
                       AND o.idempotency_key = k.idempotency_key
          LEFT JOIN sagas s ON s.order_id = o.order_id
        """,
        list(order_ids),
        [customer for customer, _ in keys],
        [key for _, key in keys],
    )
    return [StoredOrder(*row) for row in rows]


def insert_orders_at_commit(uow: UnitOfWork, orders: Sequence[NewOrder]) -> None:
    """The orders as a queued write, with no conflict handling: an order id or key used
    before fails the commit (``asyncpg.UniqueViolationError``)."""
    uow.write(
        """
        INSERT INTO orders (order_id, customer_id, email, items, payment_method, currency,
            status, idempotency_key, request_hash, source)
        SELECT u.order_id, u.customer_id, u.email, u.items::jsonb, u.payment_method,
               u.currency, u.status, u.idempotency_key, u.request_hash, u.source
          FROM unnest({0}::uuid[], {1}::text[], {2}::text[], {3}::text[], {4}::text[],
                      {5}::text[], {6}::text[], {7}::text[], {8}::text[], {9}::text[])
            AS u(order_id, customer_id, email, items, payment_method, currency, status,
                 idempotency_key, request_hash, source)
        """,
        *_order_columns(orders),
    )


def _order_columns(orders: Sequence[NewOrder]) -> list[list[Any]]:
    return [
        [o.order_id for o in orders],
        [o.customer_id for o in orders],
        [o.email for o in orders],
        [_json(o.items) for o in orders],  # text: a list would read as an array dimension
        [o.payment_method for o in orders],
        [o.currency for o in orders],
        [o.status for o in orders],
        [o.idempotency_key for o in orders],
        [o.request_hash for o in orders],
        [o.source for o in orders],
    ]


async def insert_orders(conn: asyncpg.Connection, orders: Sequence[NewOrder]) -> set[uuid.UUID]:
    """Insert the orders; returns the ids inserted. An order whose id or (customer, key) is
    taken, by now or by a transaction that commits meanwhile, is left out (the caller reads
    the winner): the unique constraints are the truth, not a look-up before the insert."""
    if not orders:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO orders (order_id, customer_id, email, items, payment_method, currency,
            status, idempotency_key, request_hash, source)
        SELECT u.order_id, u.customer_id, u.email, u.items::jsonb, u.payment_method,
               u.currency, u.status, u.idempotency_key, u.request_hash, u.source
          FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                      $6::text[], $7::text[], $8::text[], $9::text[], $10::text[])
            AS u(order_id, customer_id, email, items, payment_method, currency, status,
                 idempotency_key, request_hash, source)
        ON CONFLICT DO NOTHING
        RETURNING order_id
        """,
        *_order_columns(orders),
    )
    return {row[0] for row in rows}


# Sagas not yet terminal: what admission control bounds (an index scan on status).
COUNT_IN_FLIGHT = "SELECT count(*) FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')"

# Statuses an operator watches: in flight, and parked (the order NEEDS_ATTENTION).
WATCHED_STATUSES = ("RUNNING", "COMPENSATING", "COMPENSATION_FAILED")


async def count_by_status(conn: asyncpg.Connection) -> dict[str, int]:
    """Sagas in each watched status (the status index; terminal ones are never counted)."""
    rows = await conn.fetch(
        "SELECT status, count(*) FROM sagas WHERE status = ANY($1::text[]) GROUP BY status",
        list(WATCHED_STATUSES),
    )
    counts = dict.fromkeys(WATCHED_STATUSES, 0)
    counts.update({r["status"]: r["count"] for r in rows})
    return counts
