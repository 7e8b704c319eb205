"""The saga service: loads states, lets the engine decide, writes the decisions of a batch.

Everything runs inside the caller's unit of work, with the sagas row-locked, so the state
changes, their history, the orders they finish and the messages they send commit together
(the outbox) or not at all. A batch costs the same few statements whatever its size.

A saga the engine cannot decide for (a bug, a definition no longer deployed) is parked for
operators (``SagaEngine.fault``); the others in the batch go on, and so does the orchestrator.
A bug met outside the engine (a row that does not load, a write that fails, in the scheduler or
a reply's handler) fails the whole batch: the scheduler then takes the due sagas one by one and
the consumer the records, and ``park`` marks the saga that still fails, whatever it is.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram

from orchestrator.adapters import saga_store
from orchestrator.adapters.saga_store import Changes, FinishedOrder
from orchestrator.domain.engine import (
    DeadlinePassed,
    Decision,
    Event,
    HistoryLine,
    OperatorCancel,
    OperatorRefused,
    OperatorRetry,
    ReplyReceived,
    RetryDue,
    SagaEngine,
)
from orchestrator.domain.saga import SagaState, StepState
from orchestrator.domain.status import ORDER_STATUS_FOR, SagaStatus
from orchestrator.domain.workflow import Context, WorkflowDefinition
from sagakit.db.errors import is_retriable_db_error
from sagakit.errors import InfrastructureError
from sagakit.messaging.envelope import Envelope
from sagakit.ops import metrics
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.settings import Topics

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_outage(exc: BaseException) -> bool:
    """The database or the broker is away (retry later), as opposed to a bug."""
    return isinstance(exc, InfrastructureError) or is_retriable_db_error(exc)


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A saga reached a terminal status (pushed to live order-status subscribers)."""

    order_id: uuid.UUID
    saga_id: uuid.UUID
    order_status: str
    saga_status: str
    total: int | None


StatusListener = Callable[[Sequence[StatusChange]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class NewSaga:
    saga_id: uuid.UUID
    order_id: uuid.UUID
    definition: WorkflowDefinition
    context: Context
    traceparent: str
    cause: str


class SagaService:
    def __init__(
        self,
        engine: SagaEngine,
        *,
        clock: Callable[[], datetime] = utcnow,
        on_status_change: StatusListener | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self._on_status_change = on_status_change

    # --- entry points ---------------------------------------------------------------------------

    async def start(self, uow: UnitOfWork, sagas: Sequence[NewSaga]) -> None:
        """Create sagas of new orders and send their first commands (same transaction)."""
        now = self.clock()
        batch = _Batch(now)
        for new in sagas:
            decision = self.engine.start(
                saga_id=new.saga_id,
                order_id=new.order_id,
                definition=new.definition,
                context=new.context,
                traceparent=new.traceparent,
                now=now,
                cause=new.cause,
            )
            batch.created.append(decision.state)
            batch.take(decision)
        await self._write(uow, batch)

    async def on_replies(self, envelopes: Sequence[Envelope[Any]], uow: UnitOfWork) -> None:
        """Apply replies in order (the consumer's batch handler). A saga answered several
        times in the batch is decided reply after reply and written once."""
        ids = [e.saga_id for e in envelopes if e.saga_id is not None]
        states = await saga_store.lock(uow.conn, ids)
        batch = _Batch(self.clock())
        for envelope in envelopes:
            state = states.get(envelope.saga_id) if envelope.saga_id else None
            if state is None:
                log.warning(
                    "reply %s for %s ignored",
                    envelope.message_id,
                    f"unknown saga {envelope.saga_id}" if envelope.saga_id else "no saga id",
                )
                continue
            self._apply(batch, state, ReplyReceived(envelope))
        await self._write(uow, batch)

    async def on_due(self, uow: UnitOfWork, limit: int) -> int:
        """Passed deadlines and due compensation retries; returns how many sagas moved."""
        now = self.clock()
        overdue, retries = await saga_store.lock_due(uow.conn, now, limit)
        batch = _Batch(now)
        for state in overdue:
            self._apply(batch, state, DeadlinePassed())
        for state in retries:
            if state.saga_id not in batch.loaded:
                self._apply(batch, state, RetryDue())
        await self._write(uow, batch)
        return len(batch.changed_ids)

    async def on_due_one(self, uow: UnitOfWork, saga_id: uuid.UUID) -> int:
        """``on_due`` for one saga (the scheduler's fallback when a batch failed)."""
        now = self.clock()
        state = (await saga_store.lock(uow.conn, [saga_id])).get(saga_id)
        if state is None:
            return 0
        batch = _Batch(now)
        if state.deadline_at is not None and state.deadline_at <= now:
            self._apply(batch, state, DeadlinePassed())
        elif state.next_retry_at is not None and state.next_retry_at <= now:
            self._apply(batch, state, RetryDue())
        await self._write(uow, batch)
        return len(batch.changed_ids)

    async def park(
        self,
        uow_factory: Callable[[], UnitOfWork],
        saga_id: uuid.UUID,
        error: BaseException,
        *,
        where: str,
    ) -> bool:
        """Handling this saga raised ``error``, a bug rather than an outage: park it for
        operators, in transactions of its own. As ``SagaEngine.fault`` when its state still
        loads and writes (COMPENSATION_FAILED, the order NEEDS_ATTENTION, the error as reason
        and in its history, the order's event sent); else with plain SQL that reads nothing of
        it. Either way no timer is left on it, so the scheduler does not take it again.
        Returns False for an unknown saga. Outages raise (the caller retries)."""
        metrics.SAGAS_PARKED_BY_ERROR.labels(where).inc()
        try:
            async with uow_factory() as uow:
                state = (await saga_store.lock(uow.conn, [saga_id])).get(saga_id)
                if state is None:
                    return False
                if state.status.terminal:
                    raise RuntimeError(f"saga {saga_id} is {state.status}")  # keep its status
                batch = _Batch(self.clock())
                batch.record(state, self.engine.fault(state, error, batch.now))
                await self._write(uow, batch)
                await uow.commit()
            log.error("saga %s parked (%s): %s: %s", saga_id, where, type(error).__name__, error)
            return True
        except Exception as second:
            if is_outage(second):
                raise
            log.warning("saga %s: parking it through the engine failed too (%s)", saga_id, second)
        async with uow_factory() as uow:
            parked = await saga_store.park(
                uow.conn, saga_id, f"{where} error: {type(error).__name__}: {error}", self.clock()
            )
            await uow.commit()
        log.error("saga %s parked (%s): %s: %s", saga_id, where, type(error).__name__, error)
        return parked

    async def retry_by_operator(
        self, uow: UnitOfWork, saga_id: uuid.UUID, who: str, reason: str | None = None
    ) -> SagaState:
        """Raises LookupError (unknown saga) or SagaNotRetriable (not COMPENSATION_FAILED)."""
        return await self._operator(uow, saga_id, OperatorRetry(who, reason))

    async def cancel_by_operator(
        self, uow: UnitOfWork, saga_id: uuid.UUID, who: str, reason: str
    ) -> SagaState:
        """Raises LookupError (unknown saga) or SagaNotCancellable (not RUNNING)."""
        return await self._operator(uow, saga_id, OperatorCancel(who, reason))

    async def _operator(self, uow: UnitOfWork, saga_id: uuid.UUID, event: Event) -> SagaState:
        state = (await saga_store.lock(uow.conn, [saga_id])).get(saga_id)
        if state is None:
            raise LookupError(f"saga {saga_id} not found")
        batch = _Batch(self.clock())
        self._apply(batch, state, event)
        await self._write(uow, batch)
        return batch.current(state)

    # --- deciding and writing -------------------------------------------------------------------

    def _apply(self, batch: _Batch, loaded: SagaState, event: Event) -> None:
        state = batch.current(loaded)
        try:
            decision = self.engine.decide(state, event, batch.now)
        except OperatorRefused:
            raise
        except Exception as exc:
            log.exception(
                "saga %s: the engine failed on %s; parking it",
                state.saga_id,
                event,
                extra={"saga_id": state.saga_id, "order_id": state.order_id},
            )
            metrics.SAGAS_PARKED_BY_ERROR.labels("engine").inc()
            decision = self.engine.fault(state, exc, batch.now)
        batch.observe(state, decision)
        batch.record(loaded, decision)

    async def _write(self, uow: UnitOfWork, batch: _Batch) -> None:
        created = batch.created_ids
        saga_store.write(
            uow,
            Changes(
                now=batch.now,
                created=batch.created,
                updated=[batch.latest[i] for i in batch.changed_ids if i not in created],
                steps=batch.changed_steps(),
                history=batch.history,
                finished=batch.finished_orders(),
            ),
        )
        dead_letters = []
        for _, outgoing in batch.messages:
            uow.emit(outgoing.topic, outgoing.envelope, extra_headers=outgoing.extra_headers)
            if Topics.is_dlq(outgoing.topic):
                dead_letters.append(outgoing.topic)
        counts = batch.metric_counts()
        if counts[0] or counts[1] or batch.step_outcomes or dead_letters:
            outcomes = batch.step_outcomes
            uow.after_commit(lambda: _count(*counts, outcomes, dead_letters))
        if batch.finished and self._on_status_change is not None:
            listener, changes = self._on_status_change, batch.status_changes()
            uow.after_commit(lambda: listener(changes))


# A history line that ends a step or a compensation: its outcome, as a metric label.
_STEP_OUTCOMES = {
    "step_succeeded": "succeeded",
    "step_failed": "failed",
    "step_timed_out": "timed_out",
    "step_compensated": "succeeded",
    "compensation_failed": "failed",
}
_COMPENSATION_EVENTS = frozenset({"step_compensated", "compensation_failed"})


# A step that ended: (step, outcome, seconds, whether it was a compensation). A tuple: the hot
# path makes several per saga.
_StepOutcome = tuple[str, str, float, bool]


async def _count(
    started: list[tuple[str, str]],
    finished: list[tuple[str, str, str, float]],
    outcomes: list[_StepOutcome],
    dead_letters: list[str],
) -> None:
    for definition, version in started:
        metrics.SAGAS_STARTED.labels(definition, version).inc()
    for definition, version, status, seconds in finished:
        metrics.SAGAS_FINISHED.labels(definition, version, status).inc()
        metrics.SAGA_SECONDS.labels(definition, status).observe(seconds)
    for step, outcome, seconds, compensation in outcomes:
        _step_seconds(step, outcome).observe(seconds)
        if compensation:
            _compensation_attempts(step, outcome).inc()
    for topic in dead_letters:  # queued in the outbox with this commit, published after it
        metrics.DLQ_RECORDS_WRITTEN.labels(topic, "false").inc()


# The labelled children, looked up once per step and outcome: the hot path records several per
# saga, and ``labels()`` costs more than the observation itself.
@functools.cache
def _step_seconds(step: str, outcome: str) -> Histogram:
    return metrics.STEP_SECONDS.labels(step, outcome)


@functools.cache
def _compensation_attempts(step: str, outcome: str) -> Counter:
    return metrics.COMPENSATION_ATTEMPTS.labels(step, outcome)


def _seconds_since(then: datetime | None, now: datetime) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


@dataclass
class _Batch:
    """Decisions of one transaction, folded per saga and written together."""

    now: datetime
    loaded: dict[uuid.UUID, SagaState] = field(default_factory=dict)
    latest: dict[uuid.UUID, SagaState] = field(default_factory=dict)
    changed_ids: list[uuid.UUID] = field(default_factory=list)
    created: list[SagaState] = field(default_factory=list)
    history: list[tuple[uuid.UUID, HistoryLine]] = field(default_factory=list)
    messages: list[tuple[uuid.UUID, Any]] = field(default_factory=list)
    finished: dict[uuid.UUID, SagaStatus] = field(default_factory=dict)
    step_outcomes: list[_StepOutcome] = field(default_factory=list)

    @property
    def created_ids(self) -> set[uuid.UUID]:
        return {s.saga_id for s in self.created}

    def current(self, loaded: SagaState) -> SagaState:
        return self.latest.get(loaded.saga_id, loaded)

    def take(self, decision: Decision) -> None:
        self.record(decision.state, decision)

    def record(self, loaded: SagaState, decision: Decision) -> None:
        saga_id = loaded.saga_id
        self.loaded.setdefault(saga_id, loaded)
        if not decision.changed:
            return
        self.latest[saga_id] = decision.state
        if saga_id not in self.changed_ids:
            self.changed_ids.append(saga_id)
        self.history += [(saga_id, line) for line in decision.history]
        self.messages += [(saga_id, outgoing) for outgoing in decision.messages]
        if decision.finished is not None:
            self.finished[saga_id] = decision.finished

    def observe(self, before: SagaState, decision: Decision) -> None:
        """The steps this decision ended, with how long they took: a step starts when its
        command is sent, which is when the saga started waiting (its ``updated_at`` then)."""
        awaiting, since = before.awaiting_step, before.updated_at
        if awaiting is None or since is None:
            return
        for line in decision.history:
            if line.step != awaiting or line.event not in _STEP_OUTCOMES:
                continue
            outcome = "timed_out" if line.cause == "timeout" else _STEP_OUTCOMES[line.event]
            seconds = max(0.0, (self.now - since).total_seconds())
            compensation = line.event in _COMPENSATION_EVENTS
            self.step_outcomes.append((awaiting, outcome, seconds, compensation))

    def changed_steps(self) -> list[tuple[uuid.UUID, StepState]]:
        steps = []
        created = self.created_ids
        for saga_id in self.changed_ids:
            if saga_id in created:
                continue
            before = {s.position: s for s in self.loaded[saga_id].steps}
            for step in self.latest[saga_id].steps:
                old = before.get(step.position)
                if old is None or (old.status, old.command_message_id) != (
                    step.status,
                    step.command_message_id,
                ):
                    steps.append((saga_id, step))
        return steps

    def metric_counts(
        self,
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str, str, float]]]:
        started = [(s.definition_name, str(s.definition_version)) for s in self.created]
        finished = [
            (
                self.latest[saga_id].definition_name,
                str(self.latest[saga_id].definition_version),
                str(status),
                _seconds_since(self.latest[saga_id].created_at, self.now),
            )
            for saga_id, status in self.finished.items()
        ]
        return started, finished

    def finished_orders(self) -> list[FinishedOrder]:
        return [
            FinishedOrder(
                order_id=self.latest[saga_id].order_id,
                status=ORDER_STATUS_FOR[status],
                total=self.latest[saga_id].context.get("total"),
            )
            for saga_id, status in self.finished.items()
        ]

    def status_changes(self) -> list[StatusChange]:
        return [
            StatusChange(
                order_id=self.latest[saga_id].order_id,
                saga_id=saga_id,
                order_status=ORDER_STATUS_FOR[status],
                saga_status=status,
                total=self.latest[saga_id].context.get("total"),
            )
            for saga_id, status in self.finished.items()
        ]
