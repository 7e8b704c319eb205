"""The saga engine: a pure state machine that runs any ``WorkflowDefinition`` generically.

``decide(state, event, now)`` returns a ``Decision``: the new state, the messages to send and the
history lines that explain it. It never touches a database, a broker or the clock of its own
(ids and jitter come from injected sources), the way h11 keeps HTTP/1.1 away from sockets. The
service layer loads states, decides, and writes the decisions of a whole batch together.

Rules (SPEC, "The default workflow"):
- A reply is applied only if it answers the saga's current step: the ``step`` header the saga
  awaits and the awaited command's message id as causation id. Anything else (stale, duplicate,
  unexpected) is recorded in the history and changes nothing else.
- A failure compensates in reverse over the steps that may have done something; a step that
  timed out (or was abandoned by an operator's cancel) counts as possibly done, so its own
  compensation runs too. For an irreversible step that compensation is a fence: if the
  participant answers that the step had been done (``StepWasDone``), the saga goes forward.
- A failed or timed-out compensation is retried with exponential backoff and jitter; out of
  attempts, the saga is ``COMPENSATION_FAILED`` and an alert goes to the compensation topic's DLQ.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from orchestrator.domain.saga import SagaState, StepState
from orchestrator.domain.status import SagaStatus, StepStatus
from orchestrator.domain.workflow import Context, Step, WorkflowDefinition, WorkflowRegistry
from sagakit import ids
from sagakit.backoff import backoff_delay
from sagakit.consumer.dead_letter import DLQ
from sagakit.contracts import FailureReply, Reply, StepWasDone
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message
from sagakit.settings import Topics

# --- events: what happens to a saga ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """A participant answered (the envelope's headers say which command it answers)."""

    envelope: Envelope[Reply]


@dataclass(frozen=True, slots=True)
class DeadlinePassed:
    """The scheduler found the awaited reply overdue."""


@dataclass(frozen=True, slots=True)
class RetryDue:
    """The scheduler found a compensation retry due."""


@dataclass(frozen=True, slots=True)
class OperatorRetry:
    """An operator retries a ``COMPENSATION_FAILED`` saga: attempts start over, now."""

    who: str
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OperatorCancel:
    """An operator cancels a running saga: it stops waiting and undoes what it did."""

    who: str
    reason: str


Event = ReplyReceived | DeadlinePassed | RetryDue | OperatorRetry | OperatorCancel


class OperatorRefused(Exception):
    """An operator's action does not apply to the saga in its current status (HTTP 409)."""


class SagaNotRetriable(OperatorRefused):
    """An operator asked to retry a saga that is not ``COMPENSATION_FAILED``."""


class SagaNotCancellable(OperatorRefused):
    """An operator asked to cancel a saga that is not ``RUNNING``."""


# --- decisions: what the service layer carries out -------------------------------------------


@dataclass(frozen=True, slots=True)
class HistoryLine:
    at: datetime
    event: str
    step: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    cause: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message to write to the outbox (topic names carry the deployment's prefix)."""

    topic: str
    envelope: Envelope[Message]
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Decision:
    state: SagaState
    history: list[HistoryLine] = field(default_factory=list)
    messages: list[Outgoing] = field(default_factory=list)
    # Set when the saga reached a terminal status with this decision (and why).
    finished: SagaStatus | None = None
    finish_reason: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.history)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff of compensation retries: base and cap in seconds, and the most attempts."""

    base_s: float = 1.0
    cap_s: float = 60.0
    max_attempts: int = 5


class SagaEngine:
    """Decides; never does I/O. ``new_id`` and ``rng`` are injectable for reproducible tests."""

    def __init__(
        self,
        workflows: WorkflowRegistry,
        topics: Topics,
        *,
        retry: RetryPolicy | None = None,
        new_id: Callable[[], uuid.UUID] = ids.new_id,
        rng: random.Random | None = None,
    ) -> None:
        self.workflows = workflows
        self.topics = topics
        self.retry = retry or RetryPolicy()
        self._new_id = new_id
        self._rng = rng

    def definition_of(self, state: SagaState) -> WorkflowDefinition:
        # A saga finishes on the definition version it started with.
        return self.workflows.get(state.definition_name, state.definition_version)

    def start(
        self,
        *,
        saga_id: uuid.UUID,
        order_id: uuid.UUID,
        definition: WorkflowDefinition,
        context: Context,
        traceparent: str,
        now: datetime,
        cause: str,
    ) -> Decision:
        """A new saga, and its first command."""
        state = SagaState(
            saga_id=saga_id,
            order_id=order_id,
            definition_name=definition.name,
            definition_version=definition.version,
            status=SagaStatus.RUNNING,
            current_step=0,
            context=dict(context),
            traceparent=traceparent,
            steps=[
                StepState(position=i, name=step.name, status=StepStatus.PENDING)
                for i, step in enumerate(definition.steps)
            ],
            created_at=now,
            updated_at=now,
        )
        run = _Run(self, state, definition, now, copy=False)
        run.record(
            "saga_started",
            to_status=SagaStatus.RUNNING,
            cause=cause,
            detail=f"{definition.name} v{definition.version}",
        )
        run.send_step(0)
        return run.decision

    def decide(self, state: SagaState, event: Event, now: datetime) -> Decision:
        """What ``event`` does to the saga. ``state`` itself is left unchanged."""
        if isinstance(event, ReplyReceived):
            return self._on_reply(state, event.envelope, now)
        definition = self.definition_of(state)
        run = _Run(self, state, definition, now)
        if isinstance(event, DeadlinePassed):
            run.on_deadline()
        elif isinstance(event, RetryDue):
            run.on_retry_due()
        elif isinstance(event, OperatorRetry):
            run.on_operator_retry(event)
        else:
            run.on_operator_cancel(event)
        return run.decision

    def fault(self, state: SagaState, error: BaseException, now: datetime) -> Decision:
        """The engine could not decide for this saga (a bug, or a definition version no longer
        deployed). Rather than stop the orchestrator, the saga is parked for operators:
        ``COMPENSATION_FAILED`` (the order NEEDS_ATTENTION) with the error as its reason. A step
        in flight counts as possibly done, so an operator's retry compensates it too."""
        saga = state.copy()
        decision = Decision(state=saga)
        reason = f"engine error: {type(error).__name__}: {error}"[:2000]
        if saga.status == SagaStatus.RUNNING and saga.current.status == StepStatus.RUNNING:
            saga.current.status = StepStatus.ABANDONED
        before = saga.status
        saga.status = SagaStatus.COMPENSATION_FAILED
        saga.failure_reason = reason
        saga.awaiting_step = saga.awaiting_message_id = saga.deadline_at = None
        saga.next_retry_at = None
        saga.updated_at = now
        decision.history.append(
            HistoryLine(now, "engine_error", None, before, saga.status, "engine", reason)
        )
        decision.finished, decision.finish_reason = saga.status, reason
        try:  # the event needs the definition, which may be what is missing
            payload = self.definition_of(saga).on_needs_attention(saga.context, reason)
        except Exception:
            return decision
        envelope = Envelope(
            payload=payload,
            message_id=self._new_id(),
            saga_id=saga.saga_id,
            order_id=saga.order_id,
            timestamp=now,
            traceparent=saga.traceparent,
        )
        decision.messages.append(Outgoing(self.topics.order_events, envelope))
        return decision

    def _on_reply(self, state: SagaState, envelope: Envelope[Reply], now: datetime) -> Decision:
        cause = f"{envelope.message_type} {envelope.message_id}"
        mismatch = _mismatch(state, envelope)
        if mismatch:
            # Recorded on a copy of the state as it is: nothing else changes.
            decision = Decision(state=state.copy())
            decision.history.append(
                HistoryLine(now, "reply_ignored", envelope.step, cause=cause, detail=mismatch)
            )
            return decision
        run = _Run(self, state, self.definition_of(state), now, trace=envelope.traceparent)
        run.on_reply(envelope.payload, cause)
        return run.decision


class _Run:
    """One decision being made: a copy of the state, and what it has decided so far."""

    def __init__(
        self,
        engine: SagaEngine,
        state: SagaState,
        definition: WorkflowDefinition,
        now: datetime,
        *,
        copy: bool = True,
        trace: str | None = None,
    ) -> None:
        self.engine = engine
        self.saga = state.copy() if copy else state
        # The context the messages decided here are created in: the reply that caused them,
        # else the saga's own (the order's request); each gets its span when it is emitted.
        self.trace = trace or state.traceparent
        self.definition = definition
        self.now = now
        self.decision = Decision(state=self.saga)

    # --- events -------------------------------------------------------------------------------

    def on_reply(self, reply: Reply, cause: str) -> None:
        saga = self.saga
        step = self.definition.step(saga.current_step)
        state = saga.current
        reason = _reason(reply)
        if saga.status == SagaStatus.RUNNING:
            if reply.succeeded:
                state.status = StepStatus.SUCCEEDED
                if step.on_success is not None:
                    saga.context = step.on_success(dict(saga.context), reply)
                self.record("step_succeeded", step=step.name, cause=cause)
                self.advance()
            else:
                state.status = StepStatus.FAILED
                self.record("step_failed", step=step.name, cause=cause, detail=reason)
                self.compensate(f"{step.name} failed: {reason}")
        elif isinstance(reply, StepWasDone):  # COMPENSATING: the reply answers a compensation
            self.step_was_done(cause)
        elif reply.succeeded:
            state.status = StepStatus.COMPENSATED
            saga.compensation_attempts = 0
            self.record("step_compensated", step=step.compensation_step, cause=cause)
            self.compensate_next()
        else:
            self.compensation_failed(cause, reason)

    def on_deadline(self) -> None:
        saga = self.saga
        if saga.deadline_at is None or saga.deadline_at > self.now:
            return  # a reply came first, or it is not due: nothing to do
        step = self.definition.step(saga.current_step)
        if saga.status == SagaStatus.RUNNING:
            saga.current.status = StepStatus.TIMED_OUT
            self.record(
                "step_timed_out",
                step=step.name,
                cause="timeout",
                detail=f"no reply within {step.timeout_s:g}s",
            )
            self.compensate(f"{step.name} timed out")
        else:
            self.compensation_failed("timeout", "no reply in time")

    def on_retry_due(self) -> None:
        saga = self.saga
        due = saga.next_retry_at is not None and saga.next_retry_at <= self.now
        if saga.status != SagaStatus.COMPENSATING or not due:
            return
        saga.next_retry_at = None
        step = self.definition.step(saga.current_step)
        if step.compensation is None or not saga.current.status.needs_compensation:
            # An operator retries a saga parked while a step without compensation was current.
            self.compensate_next()
            return
        self.record(
            "compensation_retried",
            step=step.compensation_step,
            cause="retry worker",
            detail=f"attempt {saga.compensation_attempts + 1}",
        )
        self.send_compensation(saga.current_step)

    def on_operator_retry(self, event: OperatorRetry) -> None:
        saga = self.saga
        if saga.status != SagaStatus.COMPENSATION_FAILED:
            raise SagaNotRetriable(
                f"saga {saga.saga_id} is {saga.status}; only COMPENSATION_FAILED sagas can be "
                "retried"
            )
        saga.compensation_attempts = 0
        saga.next_retry_at = self.now
        self.transition(
            SagaStatus.COMPENSATING, "operator_retry", cause=event.who, detail=event.reason
        )

    def on_operator_cancel(self, event: OperatorCancel) -> None:
        saga = self.saga
        if saga.status != SagaStatus.RUNNING:
            raise SagaNotCancellable(
                f"saga {saga.saga_id} is {saga.status}; only RUNNING sagas can be cancelled"
            )
        step = self.definition.step(saga.current_step)
        if saga.current.status == StepStatus.RUNNING:
            saga.current.status = StepStatus.ABANDONED  # its command is out: possibly done
        self.record("operator_cancel", step=step.name, cause=event.who, detail=event.reason)
        self.compensate(f"cancelled by {event.who}: {event.reason}")

    # --- forward ------------------------------------------------------------------------------

    def advance(self) -> None:
        saga = self.saga
        if saga.current_step + 1 < len(self.definition.steps):
            saga.current_step += 1
            self.send_step(saga.current_step)
        else:
            self.finish(SagaStatus.COMPLETED, "all steps succeeded")

    def send_step(self, position: int) -> None:
        step = self.definition.step(position)
        envelope = self.command(step.command(self.saga.context), step.name, step.timeout_s)
        self.emit(step.topic, envelope)
        state = self.saga.steps[position]
        state.status = StepStatus.RUNNING
        state.command_message_id = envelope.message_id
        self.wait_for(step.name, envelope.message_id, step.timeout_s)
        self.record(
            "command_sent", step=step.name, cause=f"{envelope.message_type} {envelope.message_id}"
        )

    def step_was_done(self, cause: str) -> None:
        """The step that timed out had been done after all, and cannot be undone (an email):
        the saga goes forward from it. Only possible while nothing has been undone yet."""
        saga = self.saga
        step_position = saga.current_step
        step = self.definition.step(step_position)
        if any(s.status == StepStatus.COMPENSATED for s in saga.steps):
            self.give_up(cause, f"{step.name} cannot be undone, but earlier steps already were")
            return
        if any(s.position > step_position and s.status != StepStatus.PENDING for s in saga.steps):
            # A later step failed or was abandoned: going forward would run it again (and again,
            # if it fails again). Found by the engine's property tests.
            self.give_up(cause, f"{step.name} cannot be undone, but a later step did not succeed")
            return
        saga.current.status = StepStatus.SUCCEEDED
        saga.failure_reason = None
        saga.compensation_attempts = 0
        self.transition(
            SagaStatus.RUNNING,
            "compensation_abandoned",
            cause=cause,
            detail=f"{step.name} had been done and cannot be undone; going on",
        )
        self.advance()

    # --- compensation -------------------------------------------------------------------------

    def compensate(self, reason: str) -> None:
        saga = self.saga
        saga.failure_reason = reason
        self.clear_wait()
        if _next_to_compensate(saga, self.definition) is None:
            self.finish(SagaStatus.FAILED, reason)
            return
        self.transition(SagaStatus.COMPENSATING, "compensation_started", detail=reason)
        self.compensate_next()

    def compensate_next(self) -> None:
        saga = self.saga
        position = _next_to_compensate(saga, self.definition)
        if position is None:
            compensated = any(s.status == StepStatus.COMPENSATED for s in saga.steps)
            final = SagaStatus.COMPENSATED if compensated else SagaStatus.FAILED
            self.finish(final, saga.failure_reason or "failed")
            return
        saga.current_step = position
        saga.compensation_attempts = 0
        self.send_compensation(position)

    def send_compensation(self, position: int) -> None:
        step = self.definition.step(position)
        assert step.compensation is not None
        envelope = self.command(
            step.compensation.command(self.saga.context),
            step.compensation_step,
            step.compensation.timeout_s,
        )
        self.emit(step.compensation.topic, envelope)
        state = self.saga.steps[position]
        state.status = StepStatus.COMPENSATING
        state.command_message_id = envelope.message_id
        self.wait_for(step.compensation_step, envelope.message_id, step.compensation.timeout_s)
        self.record(
            "command_sent",
            step=step.compensation_step,
            cause=f"{envelope.message_type} {envelope.message_id}",
        )

    def compensation_failed(self, cause: str, reason: str) -> None:
        saga = self.saga
        policy = self.engine.retry
        step = self.definition.step(saga.current_step)
        saga.compensation_attempts += 1
        self.clear_wait()
        attempts = saga.compensation_attempts
        if attempts >= policy.max_attempts:
            self.give_up(cause, f"{step.compensation_step} failed {attempts} times, last: {reason}")
            return
        delay = backoff_delay(attempts, base=policy.base_s, cap=policy.cap_s, rng=self.engine._rng)
        saga.next_retry_at = self.now + timedelta(seconds=delay)
        self.record(
            "compensation_failed",
            step=step.compensation_step,
            cause=cause,
            detail=f"attempt {attempts} of {policy.max_attempts}: {reason}; retry in {delay:.2f}s",
        )

    def give_up(self, cause: str, detail: str) -> None:
        """The compensation of the current step cannot succeed: alert and leave it to people."""
        step = self.definition.step(self.saga.current_step)
        self.record("compensation_failed", step=step.compensation_step, cause=cause, detail=detail)
        self.alert(step, detail)
        self.finish(SagaStatus.COMPENSATION_FAILED, detail)

    def alert(self, step: Step, detail: str) -> None:
        """Park the compensation that could not be applied in its topic's DLQ, for operators."""
        assert step.compensation is not None
        envelope = self.command(
            step.compensation.command(self.saga.context),
            step.compensation_step,
            step.compensation.timeout_s,
        )
        topic = self.engine.topics.name(step.compensation.topic)
        self.decision.messages.append(
            Outgoing(
                Topics.dlq(topic),
                envelope,
                (
                    (DLQ.ERROR_CODE, "compensation_exhausted"),
                    (DLQ.REASON, detail),
                    (DLQ.ORIGINAL_TOPIC, topic),
                    (DLQ.SAGA_STATUS, SagaStatus.COMPENSATION_FAILED),
                ),
            )
        )

    # --- the end ------------------------------------------------------------------------------

    def finish(self, status: SagaStatus, reason: str) -> None:
        saga = self.saga
        self.clear_wait()
        saga.next_retry_at = None
        self.transition(status, "saga_finished", detail=reason)
        event_for = {
            SagaStatus.COMPLETED: self.definition.on_completed,
            SagaStatus.COMPENSATION_FAILED: self.definition.on_needs_attention,
        }.get(status, self.definition.on_cancelled)
        self.decision.messages.append(
            Outgoing(
                self.engine.topics.order_events,
                self.command(event_for(saga.context, reason), None, None),
            )
        )
        self.decision.finished = status
        self.decision.finish_reason = reason

    # --- helpers ------------------------------------------------------------------------------

    def emit(self, base_topic: str, envelope: Envelope[Message]) -> None:
        self.decision.messages.append(Outgoing(self.engine.topics.name(base_topic), envelope))

    def command(
        self, payload: Message, step: str | None, timeout_s: float | None
    ) -> Envelope[Message]:
        saga = self.saga
        return Envelope(
            payload=payload,
            message_id=self.engine._new_id(),
            saga_id=saga.saga_id,
            order_id=saga.order_id,
            step=step,
            timestamp=self.now,
            traceparent=self.trace,
            deadline=self.now + timedelta(seconds=timeout_s) if timeout_s else None,
        )

    def wait_for(self, step: str, message_id: uuid.UUID, timeout_s: float) -> None:
        saga = self.saga
        saga.awaiting_step = step
        saga.awaiting_message_id = message_id
        saga.deadline_at = self.now + timedelta(seconds=timeout_s)
        saga.updated_at = self.now

    def clear_wait(self) -> None:
        saga = self.saga
        saga.awaiting_step = None
        saga.awaiting_message_id = None
        saga.deadline_at = None
        saga.updated_at = self.now

    def transition(
        self, to: SagaStatus, event: str, *, cause: str | None = None, detail: str | None = None
    ) -> None:
        before = self.saga.status
        self.saga.status = to
        self.saga.updated_at = self.now
        self.record(event, from_status=before, to_status=to, cause=cause, detail=detail)

    def record(
        self,
        event: str,
        *,
        step: str | None = None,
        from_status: str | None = None,
        to_status: str | None = None,
        cause: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.decision.history.append(
            HistoryLine(self.now, event, step, from_status, to_status, cause, detail)
        )


def _mismatch(saga: SagaState, envelope: Envelope[Any]) -> str | None:
    if saga.status.terminal:
        return f"saga is {saga.status}"
    if saga.awaiting_message_id is None:
        return "saga awaits no reply (a compensation retry is scheduled)"
    if envelope.step != saga.awaiting_step:
        return f"answers step {envelope.step!r}, saga awaits {saga.awaiting_step!r}"
    if envelope.causation_id != saga.awaiting_message_id:
        return f"answers command {envelope.causation_id}, saga awaits {saga.awaiting_message_id}"
    return None


def _next_to_compensate(saga: SagaState, definition: WorkflowDefinition) -> int | None:
    """The latest step that may have done something and has a compensation not yet run."""
    for state in sorted(saga.steps, key=lambda s: s.position, reverse=True):
        step = definition.step(state.position)
        if step.compensation is not None and state.status.needs_compensation:
            return state.position
    return None


def _reason(reply: Reply) -> str:
    if isinstance(reply, FailureReply):
        return f"{reply.reason}" + (f" ({reply.detail})" if reply.detail else "")
    return "ok"
