"""The operations surface: find sagas, read one's timeline, find stuck ones, cancel, retry.

One service layer for the admin API and ``sagactl`` (which talks to the API). Every operator
action is written to ``admin_actions`` (who, when, what, why, outcome) in the same transaction
as its effect; a refused action is recorded too, in its own transaction, and changes nothing.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from orchestrator.adapters import saga_store
from orchestrator.domain.engine import OperatorRefused
from orchestrator.domain.saga import SagaState
from orchestrator.domain.status import SagaStatus
from orchestrator.service_layer.sagas import SagaService, utcnow
from sagakit.ops import metrics
from sagakit.outbox.unit_of_work import UnitOfWork

MAX_LIMIT = 500


@dataclass(frozen=True, slots=True)
class SagaFilter:
    status: SagaStatus | None = None
    definition: str | None = None
    version: int | None = None
    min_age_s: float | None = None
    current_step: int | None = None
    order_id: uuid.UUID | None = None
    customer_id: str | None = None
    reason: str | None = None  # substring of the failure reason, case-insensitive


@dataclass(frozen=True, slots=True)
class Page:
    sagas: list[SagaState]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class TimelineLine:
    at: datetime
    event: str
    step: str | None
    from_status: str | None
    to_status: str | None
    cause: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class Stuck:
    saga: SagaState
    why: str


def encode_cursor(created_at: datetime, saga_id: uuid.UUID) -> str:
    raw = orjson.dumps([created_at.isoformat(), str(saga_id)])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError on a cursor this service did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, saga_id = orjson.loads(raw)
        return datetime.fromisoformat(at), uuid.UUID(saga_id)
    except Exception as exc:
        raise ValueError(f"invalid cursor {cursor!r}") from exc


# The stuck rules: $1 = now minus the grace, $2 = now minus "running too long".
_STUCK_WHERE = (
    "(s.status IN ('RUNNING', 'COMPENSATING')"
    " AND (s.deadline_at < $1 OR s.next_retry_at < $1"
    "      OR (s.status = 'RUNNING' AND s.created_at < $2)))"
)
_STUCK_WHY = (
    "CASE WHEN s.status = 'COMPENSATION_FAILED' THEN 'parked'"
    " WHEN s.deadline_at < $1 THEN 'deadline_overdue'"
    " WHEN s.next_retry_at < $1 THEN 'retry_overdue'"
    " ELSE 'running_too_long' END"
)
STUCK_REASONS = ("deadline_overdue", "retry_overdue", "running_too_long")
_STUCK_LABELS = {
    "deadline_overdue": "deadline overdue",
    "retry_overdue": "compensation retry overdue",
    "running_too_long": "running too long",
    "parked": "parked: needs attention",
}


class Operations:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        sagas: SagaService,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._sagas = sagas
        self._clock = clock

    # --- reads ----------------------------------------------------------------------------------

    async def list_sagas(
        self, f: SagaFilter, *, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """Newest first, keyset-paged on (created_at, saga_id)."""
        limit = max(1, min(limit, MAX_LIMIT))
        where: list[str] = []
        args: list[Any] = []

        def cond(sql: str, value: Any) -> None:
            args.append(value)
            where.append(sql.replace("?", f"${len(args)}"))

        if f.status is not None:
            cond("s.status = ?", str(f.status))
        if f.definition is not None:
            cond("s.definition_name = ?", f.definition)
        if f.version is not None:
            cond("s.definition_version = ?", f.version)
        if f.min_age_s is not None:
            cond("s.created_at <= ?", self._clock() - timedelta(seconds=f.min_age_s))
        if f.current_step is not None:
            cond("s.current_step = ?", f.current_step)
        if f.order_id is not None:
            cond("s.order_id = ?", f.order_id)
        if f.customer_id is not None:
            cond("s.order_id IN (SELECT order_id FROM orders WHERE customer_id = ?)", f.customer_id)
        if f.reason is not None:
            cond("s.failure_reason ILIKE '%' || ? || '%'", f.reason)
        if cursor is not None:
            at, saga_id = decode_cursor(cursor)
            args += [at, saga_id]
            where.append(f"(s.created_at, s.saga_id) < (${len(args) - 1}, ${len(args)})")
        args.append(limit + 1)
        sql = (
            f"SELECT {saga_store._SAGA_COLUMNS} FROM sagas s"
            + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY s.created_at DESC, s.saga_id DESC LIMIT ${len(args)}"
        )
        async with self._uow() as uow:
            rows = await uow.conn.fetch(sql, *args)
        states = [saga_store._state(r) for r in rows[:limit]]
        more = len(rows) > limit
        last = states[-1] if states else None
        next_cursor = (
            encode_cursor(last.created_at, last.saga_id)
            if more and last is not None and last.created_at is not None
            else None
        )
        return Page(states, next_cursor)

    async def counts(self) -> dict[str, int]:
        """How many sagas are in each status (statuses with none are left out)."""
        async with self._uow() as uow:
            rows = await uow.conn.fetch("SELECT status, count(*) AS n FROM sagas GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    async def find(self, saga_or_order_id: uuid.UUID) -> SagaState | None:
        async with self._uow() as uow:
            row = await uow.conn.fetchrow(
                f"SELECT {saga_store._SAGA_COLUMNS} FROM sagas s"
                " WHERE s.saga_id = $1 OR s.order_id = $1 LIMIT 1",
                saga_or_order_id,
            )
        return saga_store.readable_state(row) if row else None

    async def timeline(self, saga_id: uuid.UUID) -> list[TimelineLine]:
        async with self._uow() as uow:
            rows = await uow.conn.fetch(
                "SELECT at, event, step, from_status, to_status, cause, detail"
                " FROM saga_history WHERE saga_id = $1 ORDER BY id",
                saga_id,
            )
        return [TimelineLine(**dict(r)) for r in rows]

    async def stuck(
        self,
        *,
        grace_s: float = 30.0,
        running_over_s: float = 300.0,
        limit: int = 100,
        parked: bool = True,
    ) -> list[Stuck]:
        """Deadline overdue beyond the grace (the scheduler should have moved it), compensation
        retry overdue beyond the grace, RUNNING for longer than ``running_over_s``, and (unless
        ``parked`` is False) parked: COMPENSATION_FAILED, the order NEEDS_ATTENTION (a
        compensation that kept failing, or a bug met while handling the saga)."""
        late, old = self._stuck_bounds(grace_s, running_over_s)
        async with self._uow() as uow:
            rows = await uow.conn.fetch(
                f"SELECT {saga_store._SAGA_COLUMNS}, {_STUCK_WHY} AS why FROM sagas s"
                f" WHERE {_STUCK_WHERE} OR ($4 AND s.status = 'COMPENSATION_FAILED')"
                " ORDER BY s.created_at LIMIT $3",
                late,
                old,
                min(limit, MAX_LIMIT),
                parked,
            )
        return [Stuck(saga_store.readable_state(r), _STUCK_LABELS[r["why"]]) for r in rows]

    async def stuck_counts(
        self, *, grace_s: float = 30.0, running_over_s: float = 300.0
    ) -> dict[str, int]:
        """How many sagas are stuck, by why (``deadline_overdue``, ``retry_overdue``,
        ``running_too_long``; parked ones are counted by status instead): the same rules as
        ``stuck``, for the ``saga_sagas_stuck`` gauge."""
        late, old = self._stuck_bounds(grace_s, running_over_s)
        async with self._uow() as uow:
            rows = await uow.conn.fetch(
                f"SELECT {_STUCK_WHY} AS why, count(*) FROM sagas s WHERE {_STUCK_WHERE}"
                " GROUP BY 1",
                late,
                old,
            )
        counts = dict.fromkeys(STUCK_REASONS, 0)
        counts.update({r["why"]: r["count"] for r in rows})
        return counts

    async def refresh_metrics(self) -> None:
        """``saga_sagas_current`` and ``saga_sagas_stuck``: a few indexed counts, when scraped."""
        async with self._uow() as uow:
            by_status = await saga_store.count_by_status(uow.conn)
        for status, count in by_status.items():
            metrics.SAGAS_CURRENT.labels(status).set(count)
        for why, count in (await self.stuck_counts()).items():
            metrics.SAGAS_STUCK.labels(why).set(count)

    def _stuck_bounds(self, grace_s: float, running_over_s: float) -> tuple[datetime, datetime]:
        now = self._clock()
        return now - timedelta(seconds=grace_s), now - timedelta(seconds=running_over_s)

    # --- actions --------------------------------------------------------------------------------

    async def cancel(self, saga_id: uuid.UUID, *, who: str, reason: str) -> SagaState:
        """RUNNING → compensates what it did. Raises LookupError or SagaNotCancellable."""
        return await self._act("cancel", saga_id, who, reason)

    async def retry(self, saga_id: uuid.UUID, *, who: str, reason: str | None) -> SagaState:
        """COMPENSATION_FAILED → compensation again. Raises LookupError or SagaNotRetriable."""
        return await self._act("retry", saga_id, who, reason)

    async def _act(
        self, action: str, saga_id: uuid.UUID, who: str, reason: str | None
    ) -> SagaState:
        try:
            async with self._uow() as uow:
                if action == "cancel":
                    state = await self._sagas.cancel_by_operator(uow, saga_id, who, reason or "")
                else:
                    state = await self._sagas.retry_by_operator(uow, saga_id, who, reason)
                record_action(uow, who, action, f"saga:{saga_id}", reason, "done", state.status)
                await uow.commit()
                return state
        except (LookupError, OperatorRefused) as exc:
            outcome = "not_found" if isinstance(exc, LookupError) else "refused"
            async with self._uow() as uow:
                record_action(uow, who, action, f"saga:{saga_id}", reason, outcome, str(exc))
                await uow.commit()
            raise

    async def actions(self, *, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        async with self._uow() as uow:
            rows = await uow.conn.fetch(
                "SELECT at, operator, action, target, reason, outcome, detail FROM admin_actions"
                " WHERE $1::text IS NULL OR target = $1 ORDER BY id DESC LIMIT $2",
                target,
                min(limit, MAX_LIMIT),
            )
        return [dict(r) for r in rows]


def record_action(
    uow: UnitOfWork,
    who: str,
    action: str,
    target: str,
    reason: str | None,
    outcome: str,
    detail: Any = None,
) -> None:
    uow.write(
        "INSERT INTO admin_actions (operator, action, target, reason, outcome, detail)"
        " VALUES ({0}, {1}, {2}, {3}, {4}, {5}::jsonb)",
        who,
        action,
        target,
        reason,
        outcome,
        orjson.dumps(detail).decode(),
    )
