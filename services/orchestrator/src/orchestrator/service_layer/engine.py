"""The saga engine: runs any ``WorkflowDefinition`` step by step, generically.

Every method runs inside the caller's unit of work, with the saga row locked, so the state change,
its history and the commands it sends commit together (the outbox) or not at all.

- A reply is applied only if it answers the saga's current step: same saga, the ``step`` header
  the saga awaits, and the awaited command's message id as causation id. Anything else (stale,
  duplicate, unexpected) is recorded in the history and ignored.
- A failure compensates in reverse over the completed steps; a step that timed out counts as
  possibly done, so its own compensation runs too (participants make these no-ops when nothing
  was done). For an irreversible step that compensation is a fence: if the participant answers
  that the step had been done (``StepWasDone``), the saga goes forward instead.
- A failed or timed-out compensation is retried by the scheduler with exponential backoff and
  jitter; out of attempts, the saga is ``COMPENSATION_FAILED`` and an alert goes to the DLQ.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orchestrator.adapters.orm import Order, Saga, SagaEvent, SagaStep
from orchestrator.adapters.repository import SagaRepository
from orchestrator.domain.status import ORDER_STATUS_FOR, SagaStatus, StepStatus
from orchestrator.domain.workflow import Context, Step, WorkflowDefinition, WorkflowRegistry
from sagakit.backoff import backoff_delay
from sagakit.contracts import FailureReply, Reply, StepWasDone
from sagakit.db.unit_of_work import UnitOfWork
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message
from sagakit.messaging.tracing import child_traceparent
from sagakit.settings import Topics

log = logging.getLogger(__name__)

StatusListener = Callable[[Order, Saga], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff of compensation retries: base and cap in seconds, and the most attempts."""

    base_s: float = 1.0
    cap_s: float = 60.0
    max_attempts: int = 5

    def delay(self, failures: int) -> float:
        return backoff_delay(failures, base=self.base_s, cap=self.cap_s)


class SagaNotRetriable(Exception):
    """An operator asked to retry a saga that is not ``COMPENSATION_FAILED``."""


class SagaEngine:
    def __init__(
        self,
        workflows: WorkflowRegistry,
        topics: Topics,
        *,
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_status_change: StatusListener | None = None,
    ) -> None:
        self.workflows = workflows
        self.topics = topics
        self.retry = retry or RetryPolicy()
        self.clock = clock
        self._on_status_change = on_status_change

    # --- entry points ---------------------------------------------------------------------------

    async def start(
        self, uow: UnitOfWork, order: Order, definition: WorkflowDefinition, traceparent: str
    ) -> Saga:
        """Create the saga of a new order and send its first command (same transaction)."""
        saga_id = uuid.uuid4()
        context: Context = {
            "order_id": str(order.order_id),
            "saga_id": str(saga_id),
            "customer_id": order.customer_id,
            "email": order.email,
            "items": order.items,
            "payment_method": order.payment_method,
            "currency": order.currency,
        }
        saga = Saga(
            saga_id=saga_id,
            order_id=order.order_id,
            definition_name=definition.name,
            definition_version=definition.version,
            status=SagaStatus.RUNNING,
            current_step=0,
            compensation_attempts=0,
            context=context,
            traceparent=traceparent,
            steps=[
                SagaStep(position=i, name=step.name, status=StepStatus.PENDING)
                for i, step in enumerate(definition.steps)
            ],
        )
        SagaRepository(uow.session).add(saga)
        self._record(
            uow,
            saga,
            "saga_started",
            to_status=SagaStatus.RUNNING,
            cause=f"order {order.order_id}",
            detail=f"{definition.name} v{definition.version}",
        )
        self._send_step(uow, saga, definition, 0)
        return saga

    async def on_reply(self, uow: UnitOfWork, envelope: Envelope[Reply]) -> None:
        if envelope.saga_id is None:
            log.warning("reply %s without a saga id ignored", envelope.message_id)
            return
        saga = await SagaRepository(uow.session).lock(envelope.saga_id)
        if saga is None:
            log.warning(
                "reply %s for unknown saga %s ignored", envelope.message_id, envelope.saga_id
            )
            return
        reply = envelope.payload
        cause = f"{envelope.message_type} {envelope.message_id}"
        mismatch = self._mismatch(saga, envelope)
        if mismatch:
            self._record(
                uow, saga, "reply_ignored", step=envelope.step, cause=cause, detail=mismatch
            )
            return
        definition = self.definition_of(saga)
        step = definition.step(saga.current_step)
        state = saga.steps[saga.current_step]
        reason = _reason(reply)
        if saga.status == SagaStatus.RUNNING:
            if reply.succeeded:
                state.status = StepStatus.SUCCEEDED
                if step.on_success is not None:
                    saga.context = step.on_success(dict(saga.context), reply)
                self._record(uow, saga, "step_succeeded", step=step.name, cause=cause)
                await self._advance(uow, saga, definition)
            else:
                state.status = StepStatus.FAILED
                self._record(uow, saga, "step_failed", step=step.name, cause=cause, detail=reason)
                await self._compensate(uow, saga, definition, f"{step.name} failed: {reason}")
        else:  # COMPENSATING: the reply answers a compensation
            if isinstance(reply, StepWasDone):
                await self._step_was_done(uow, saga, definition, cause)
            elif reply.succeeded:
                state.status = StepStatus.COMPENSATED
                saga.compensation_attempts = 0
                self._record(
                    uow, saga, "step_compensated", step=step.compensation_step, cause=cause
                )
                await self._compensate_next(uow, saga, definition)
            else:
                await self._compensation_failed(uow, saga, definition, cause, reason)

    async def _step_was_done(
        self, uow: UnitOfWork, saga: Saga, definition: WorkflowDefinition, cause: str
    ) -> None:
        """The step that timed out had been done after all, and cannot be undone (an email):
        the saga goes forward from it. Only possible while nothing has been undone yet."""
        step = definition.step(saga.current_step)
        state = saga.steps[saga.current_step]
        if any(s.status == StepStatus.COMPENSATED for s in saga.steps):
            detail = f"{step.name} cannot be undone, but earlier steps already were"
            await self._give_up(uow, saga, definition, cause, detail)
            return
        state.status = StepStatus.SUCCEEDED
        saga.failure_reason = None
        saga.compensation_attempts = 0
        self._transition(
            uow,
            saga,
            SagaStatus.RUNNING,
            "compensation_abandoned",
            cause=cause,
            detail=f"{step.name} had been done and cannot be undone; going on",
        )
        await self._advance(uow, saga, definition)

    async def on_deadline(self, uow: UnitOfWork, saga_id: uuid.UUID) -> bool:
        """The awaited reply did not come in time. False if another replica has it, or if a
        reply came first (then the deadline is gone)."""
        saga = await SagaRepository(uow.session).lock_if_deadline_passed(saga_id, self.clock())
        if saga is None:
            return False
        definition = self.definition_of(saga)
        step = definition.step(saga.current_step)
        if saga.status == SagaStatus.RUNNING:
            saga.steps[saga.current_step].status = StepStatus.TIMED_OUT
            self._record(
                uow,
                saga,
                "step_timed_out",
                step=step.name,
                cause="timeout",
                detail=f"no reply within {step.timeout_s:g}s",
            )
            await self._compensate(uow, saga, definition, f"{step.name} timed out")
        else:
            await self._compensation_failed(uow, saga, definition, "timeout", "no reply in time")
        return True

    async def on_retry_due(self, uow: UnitOfWork, saga_id: uuid.UUID) -> bool:
        """Re-send the compensation whose retry time has come (False: not due, or taken)."""
        saga = await SagaRepository(uow.session).lock_if_retry_due(saga_id, self.clock())
        if saga is None:
            return False
        definition = self.definition_of(saga)
        saga.next_retry_at = None
        self._record(
            uow,
            saga,
            "compensation_retried",
            step=definition.step(saga.current_step).compensation_step,
            cause="retry worker",
            detail=f"attempt {saga.compensation_attempts + 1}",
        )
        self._send_compensation(uow, saga, definition, saga.current_step)
        return True

    async def retry_by_operator(self, uow: UnitOfWork, saga_id: uuid.UUID, who: str) -> Saga:
        """An operator retries a ``COMPENSATION_FAILED`` saga: attempts start over, now."""
        saga = await SagaRepository(uow.session).lock(saga_id)
        if saga is None:
            raise LookupError(f"saga {saga_id} not found")
        if saga.status != SagaStatus.COMPENSATION_FAILED:
            raise SagaNotRetriable(
                f"saga {saga_id} is {saga.status}; only COMPENSATION_FAILED sagas can be retried"
            )
        saga.compensation_attempts = 0
        saga.next_retry_at = self.clock()
        self._transition(uow, saga, SagaStatus.COMPENSATING, "operator_retry", cause=who)
        return saga

    def definition_of(self, saga: Saga) -> WorkflowDefinition:
        # A saga finishes on the definition version it started with.
        return self.workflows.get(saga.definition_name, saga.definition_version)

    # --- forward --------------------------------------------------------------------------------

    async def _advance(self, uow: UnitOfWork, saga: Saga, definition: WorkflowDefinition) -> None:
        if saga.current_step + 1 < len(definition.steps):
            saga.current_step += 1
            self._send_step(uow, saga, definition, saga.current_step)
        else:
            await self._finish(uow, saga, definition, SagaStatus.COMPLETED, "all steps succeeded")

    def _send_step(
        self, uow: UnitOfWork, saga: Saga, definition: WorkflowDefinition, position: int
    ) -> None:
        step = definition.step(position)
        envelope = self._command(
            saga, step.command(saga.context), step.name, timeout_s=step.timeout_s
        )
        uow.emit(self.topics.name(step.topic), envelope)
        state = saga.steps[position]
        state.status = StepStatus.RUNNING
        state.command_message_id = envelope.message_id
        self._await(saga, step.name, envelope.message_id, step.timeout_s)
        self._record(
            uow,
            saga,
            "command_sent",
            step=step.name,
            cause=f"{envelope.message_type} {envelope.message_id}",
        )

    # --- compensation ---------------------------------------------------------------------------

    async def _compensate(
        self, uow: UnitOfWork, saga: Saga, definition: WorkflowDefinition, reason: str
    ) -> None:
        saga.failure_reason = reason
        self._clear_wait(saga)
        if _next_to_compensate(saga, definition) is None:
            await self._finish(uow, saga, definition, SagaStatus.FAILED, reason)
            return
        self._transition(uow, saga, SagaStatus.COMPENSATING, "compensation_started", detail=reason)
        await self._compensate_next(uow, saga, definition)

    async def _compensate_next(
        self, uow: UnitOfWork, saga: Saga, definition: WorkflowDefinition
    ) -> None:
        position = _next_to_compensate(saga, definition)
        if position is None:
            compensated = any(s.status == StepStatus.COMPENSATED for s in saga.steps)
            final = SagaStatus.COMPENSATED if compensated else SagaStatus.FAILED
            await self._finish(uow, saga, definition, final, saga.failure_reason or "failed")
            return
        saga.current_step = position
        saga.compensation_attempts = 0
        self._send_compensation(uow, saga, definition, position)

    def _send_compensation(
        self, uow: UnitOfWork, saga: Saga, definition: WorkflowDefinition, position: int
    ) -> None:
        step = definition.step(position)
        assert step.compensation is not None
        envelope = self._command(
            saga,
            step.compensation.command(saga.context),
            step.compensation_step,
            timeout_s=step.compensation.timeout_s,
        )
        uow.emit(self.topics.name(step.compensation.topic), envelope)
        state = saga.steps[position]
        state.status = StepStatus.COMPENSATING
        state.command_message_id = envelope.message_id
        self._await(saga, step.compensation_step, envelope.message_id, step.compensation.timeout_s)
        self._record(
            uow,
            saga,
            "command_sent",
            step=step.compensation_step,
            cause=f"{envelope.message_type} {envelope.message_id}",
        )

    async def _compensation_failed(
        self,
        uow: UnitOfWork,
        saga: Saga,
        definition: WorkflowDefinition,
        cause: str,
        reason: str,
    ) -> None:
        step = definition.step(saga.current_step)
        saga.compensation_attempts += 1
        self._clear_wait(saga)
        attempts = saga.compensation_attempts
        if attempts >= self.retry.max_attempts:
            detail = f"{step.compensation_step} failed {attempts} times, last: {reason}"
            await self._give_up(uow, saga, definition, cause, detail)
            return
        delay = self.retry.delay(attempts)
        saga.next_retry_at = self.clock() + timedelta(seconds=delay)
        self._record(
            uow,
            saga,
            "compensation_failed",
            step=step.compensation_step,
            cause=cause,
            detail=f"attempt {attempts} of {self.retry.max_attempts}: {reason}; "
            f"retry in {delay:.2f}s",
        )

    async def _give_up(
        self, uow: UnitOfWork, saga: Saga, definition: WorkflowDefinition, cause: str, detail: str
    ) -> None:
        """The compensation of the current step cannot succeed: alert and leave it to people."""
        step = definition.step(saga.current_step)
        self._record(
            uow,
            saga,
            "compensation_failed",
            step=step.compensation_step,
            cause=cause,
            detail=detail,
        )
        self._alert(uow, saga, step, detail)
        await self._finish(uow, saga, definition, SagaStatus.COMPENSATION_FAILED, detail)

    def _alert(self, uow: UnitOfWork, saga: Saga, step: Step, detail: str) -> None:
        """Park the compensation that could not be applied in its topic's DLQ, for operators."""
        assert step.compensation is not None
        envelope = self._command(
            saga,
            step.compensation.command(saga.context),
            step.compensation_step,
            timeout_s=step.compensation.timeout_s,
        )
        topic = self.topics.name(step.compensation.topic)
        uow.emit(
            Topics.dlq(topic),
            envelope,
            extra_headers=[
                ("dlq-error-code", "compensation_exhausted"),
                ("dlq-reason", detail),
                ("dlq-original-topic", topic),
                ("dlq-saga-status", SagaStatus.COMPENSATION_FAILED),
            ],
        )

    # --- the end --------------------------------------------------------------------------------

    async def _finish(
        self,
        uow: UnitOfWork,
        saga: Saga,
        definition: WorkflowDefinition,
        status: SagaStatus,
        reason: str,
    ) -> None:
        self._clear_wait(saga)
        saga.next_retry_at = None
        self._transition(uow, saga, status, "saga_finished", detail=reason)
        order = await uow.session.get(Order, saga.order_id)
        assert order is not None
        order.status = ORDER_STATUS_FOR[status]
        order.total = saga.context.get("total", order.total)
        order.updated_at = self.clock()
        event_for = {
            SagaStatus.COMPLETED: definition.on_completed,
            SagaStatus.COMPENSATION_FAILED: definition.on_needs_attention,
        }.get(status, definition.on_cancelled)
        uow.emit(
            self.topics.order_events, self._command(saga, event_for(saga.context, reason), None)
        )
        if self._on_status_change is not None:
            listener = self._on_status_change
            uow.after_commit(lambda: listener(order, saga))

    # --- helpers --------------------------------------------------------------------------------

    def _mismatch(self, saga: Saga, envelope: Envelope[Reply]) -> str | None:
        if SagaStatus(saga.status).terminal:
            return f"saga is {saga.status}"
        if saga.awaiting_message_id is None:
            return "saga awaits no reply (a compensation retry is scheduled)"
        if envelope.step != saga.awaiting_step:
            return f"answers step {envelope.step!r}, saga awaits {saga.awaiting_step!r}"
        if envelope.causation_id != saga.awaiting_message_id:
            return (
                f"answers command {envelope.causation_id}, saga awaits {saga.awaiting_message_id}"
            )
        return None

    def _command(
        self, saga: Saga, payload: Message, step: str | None, *, timeout_s: float | None = None
    ) -> Envelope[Message]:
        return Envelope(
            payload=payload,
            saga_id=saga.saga_id,
            order_id=saga.order_id,
            step=step,
            traceparent=child_traceparent(saga.traceparent),
            deadline=self.clock() + timedelta(seconds=timeout_s) if timeout_s else None,
        )

    def _await(self, saga: Saga, step: str, message_id: uuid.UUID, timeout_s: float) -> None:
        saga.awaiting_step = step
        saga.awaiting_message_id = message_id
        saga.deadline_at = self.clock() + timedelta(seconds=timeout_s)
        saga.updated_at = self.clock()

    def _clear_wait(self, saga: Saga) -> None:
        saga.awaiting_step = None
        saga.awaiting_message_id = None
        saga.deadline_at = None
        saga.updated_at = self.clock()

    def _transition(
        self,
        uow: UnitOfWork,
        saga: Saga,
        to: SagaStatus,
        event: str,
        *,
        cause: str | None = None,
        detail: str | None = None,
    ) -> None:
        before = saga.status
        saga.status = to
        self._record(uow, saga, event, from_status=before, to_status=to, cause=cause, detail=detail)

    def _record(
        self,
        uow: UnitOfWork,
        saga: Saga,
        event: str,
        *,
        step: str | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
        cause: str | None = None,
        detail: str | None = None,
    ) -> None:
        uow.session.add(
            SagaEvent(
                saga_id=saga.saga_id,
                at=self.clock(),
                event=event,
                step=step,
                from_status=from_status,
                to_status=to_status,
                cause=cause,
                detail=detail,
            )
        )


def _next_to_compensate(saga: Saga, definition: WorkflowDefinition) -> int | None:
    """The latest step that may have done something and has a compensation not yet run."""
    for state in sorted(saga.steps, key=lambda s: s.position, reverse=True):
        step = definition.step(state.position)
        if step.compensation is not None and StepStatus(state.status).needs_compensation:
            return state.position
    return None


def _reason(reply: Reply) -> str:
    if isinstance(reply, FailureReply):
        return f"{reply.reason}" + (f" ({reply.detail})" if reply.detail else "")
    return "ok"
