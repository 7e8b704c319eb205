"""Test support (not shipped with the service): the saga's properties as one hypothesis state
machine, driven either on the pure engine (tests/unit/test_engine_properties.py) or through the
saga service on the real database (tests/integration/test_engine_properties_db.py).

``SagaProperties`` generates a workflow definition (1-5 steps, each with or without a
compensation, or with one that cannot undo: a fence), starts a saga of it and drives it through
random interleavings of replies (success, failure, duplicate, late, for another step), deadline
ticks, compensation retries, operator retries and cancels, and process restarts. It keeps a model
of what must have happened (the commands sent, the steps that may have done something, the
compensations applied and their order) from what each step made visible: the saga's state, its
new history lines and the messages it sent. After every step it checks the same invariants.

A subclass says how a saga is started, how an event reaches it, how it is read back and what a
process restart is (``begin``, ``handle``, ``look``, ``restart_process``); the rules, the model
and the invariants are here, once.
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from orchestrator_harness import FakeClock

from orchestrator.domain.engine import (
    DeadlinePassed,
    Event,
    HistoryLine,
    OperatorCancel,
    OperatorRetry,
    ReplyReceived,
    RetryDue,
    RetryPolicy,
    SagaEngine,
    SagaNotCancellable,
    SagaNotRetriable,
)
from orchestrator.domain.saga import SagaState
from orchestrator.domain.status import SagaStatus, StepStatus
from orchestrator.domain.workflow import Compensation, Step, WorkflowDefinition, WorkflowRegistry
from sagakit.contracts import FailureReply, StepWasDone, SuccessReply
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message, MessageRegistry
from sagakit.settings import Topics


class Do(Message):
    message_type = "PropDo"
    order_id: uuid.UUID


class Undo(Message):
    message_type = "PropUndo"
    order_id: uuid.UUID


class Done(SuccessReply):
    message_type = "PropDone"


class Refused(FailureReply):
    message_type = "PropRefused"


class Ended(Message):
    message_type = "PropEnded"
    reason: str


# What the generated workflows send (read back from an outbox) and receive.
REGISTRY = MessageRegistry()
for _model in (Do, Undo, Done, Refused, Ended):
    REGISTRY.register(_model)


def _do(ctx: dict[str, Any]) -> Message:
    return Do(order_id=uuid.UUID(ctx["order_id"]))


def _undo(ctx: dict[str, Any]) -> Message:
    return Undo(order_id=uuid.UUID(ctx["order_id"]))


def _ended(_ctx: dict[str, Any], reason: str) -> Message:
    return Ended(reason=reason)


TIMEOUT_S = 10.0
POLICY = RetryPolicy(base_s=1.0, cap_s=4.0, max_attempts=3)
TRACEPARENT = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"


def definition(compensated: list[bool | str]) -> WorkflowDefinition:
    """Step ``i`` is ``s{i}``: without a compensation (False), with one (True), or with one
    whose participant may answer StepWasDone ("fence": the step cannot be undone)."""
    return WorkflowDefinition(
        name="prop",
        version=1,
        steps=tuple(
            Step(
                name=f"s{i}",
                command=_do,
                topic=f"p{i}.commands",
                reply_topic=f"p{i}.replies",
                timeout_s=TIMEOUT_S,
                compensation=Compensation(_undo, f"p{i}.commands", f"p{i}.replies", TIMEOUT_S)
                if has
                else None,
            )
            for i, has in enumerate(compensated)
        ),
        on_completed=_ended,
        on_cancelled=_ended,
        on_needs_attention=_ended,
    )


def engine_for(workflow: WorkflowDefinition, seed: int) -> SagaEngine:
    workflows = WorkflowRegistry()
    workflows.register(workflow)
    return SagaEngine(workflows, Topics(), retry=POLICY, rng=random.Random(seed))


@dataclass
class Observed:
    """What one step made visible: the saga as it is now, the history lines it added and the
    messages it sent (topic, envelope), in order."""

    state: SagaState
    history: list[HistoryLine] = field(default_factory=list)
    messages: list[tuple[str, Envelope[Any]]] = field(default_factory=list)


@dataclass
class Sent:
    envelope: Envelope[Any]
    position: int
    compensation: bool


class SagaProperties(RuleBasedStateMachine):
    """The rules and invariants. Subclasses implement ``begin``, ``handle``, ``look`` and
    ``restart_process``; an event an operator may not apply raises the engine's
    ``SagaNotRetriable`` / ``SagaNotCancellable`` (and must change nothing)."""

    def begin(self, workflow: WorkflowDefinition, seed: int, order_id: uuid.UUID) -> Observed:
        """Start a saga of ``workflow`` at ``self.clock.now``."""
        raise NotImplementedError

    def handle(self, event: Event) -> Observed:
        """Deliver ``event`` to the saga (DeadlinePassed and RetryDue: time has passed)."""
        raise NotImplementedError

    def look(self) -> Observed:
        """The saga as it is kept (no event: nothing new in its history or sent)."""
        raise NotImplementedError

    def restart_process(self) -> None:
        """A new process: nothing of the saga held in memory."""
        raise NotImplementedError

    @initialize(
        compensated=st.lists(st.sampled_from([False, True, "fence"]), min_size=1, max_size=5),
        seed=st.integers(0, 2**32 - 1),
    )
    def start(self, compensated: list[bool | str], seed: int) -> None:
        self.fences = {i for i, kind in enumerate(compensated) if kind == "fence"}
        self.definition = definition(compensated)
        self.clock = FakeClock()
        self.sent: list[Sent] = []
        self.replies: list[Envelope[Any]] = []
        self.forward_sent: dict[int, int] = {}
        self.forward_order: list[int] = []  # positions whose command was sent, in order
        self.compensated: dict[int, int] = {}  # position -> applied compensation successes
        self.compensation_order: list[int] = []  # positions compensated, in order
        self.failed: set[int] = set()  # steps whose participant answered with a failure
        self.terminal: SagaState | None = None
        observed = self.begin(self.definition, seed, uuid.uuid4())
        self.state = observed.state
        self.take(observed, before=None)

    # --- bookkeeping -----------------------------------------------------------------------

    def take(self, observed: Observed, before: SagaState | None) -> None:
        after = observed.state
        if before is not None:
            if not observed.history:
                assert after == before, "a change without history"
            if before.status != after.status:
                lines = [line for line in observed.history if line.to_status is not None]
                assert lines, "a status change without a history line"
                assert lines[0].from_status == before.status
                assert lines[-1].to_status == after.status
                for a, b in itertools.pairwise(lines):
                    assert a.to_status == b.from_status
            if self.terminal is not None:
                assert after == self.terminal, "a terminal saga changed"
                assert not observed.messages
        for line in observed.history:
            if line.event == "step_failed":
                self.failed.add(int(str(line.step)[1:]))
            if line.event == "step_compensated":
                position = int(str(line.step).removesuffix(":compensate")[1:])
                self.compensated[position] = self.compensated.get(position, 0) + 1
                self.compensation_order.append(position)
        for topic, env in observed.messages:
            if env.step is None or Topics.is_dlq(topic):
                continue
            is_comp = env.step.endswith(":compensate")
            position = int(env.step.removesuffix(":compensate")[1:])
            self.sent.append(Sent(env, position, is_comp))
            if not is_comp:
                self.forward_sent[position] = self.forward_sent.get(position, 0) + 1
                self.forward_order.append(position)
        if after.status.terminal and self.terminal is None:
            self.terminal = after.copy()
        self.state = after

    def decide(self, event: Event) -> Observed:
        before = self.state.copy()
        observed = self.handle(event)
        self.take(observed, before)
        return observed

    def awaited(self) -> Sent | None:
        for sent in self.sent:
            if sent.envelope.message_id == self.state.awaiting_message_id:
                return sent
        return None

    def answer(self, sent: Sent, ok: bool, *, step: str | None = None) -> Envelope[Any]:
        order_id = self.state.order_id
        payload: Message = (
            Done(order_id=order_id)
            if ok
            else Refused(order_id=order_id, reason="no", detail="generated")
        )
        reply = sent.envelope.reply(payload, step=step)
        self.replies.append(reply)
        return reply

    def unchanged(self) -> SagaState:
        """The saga as it is kept, which must be as it was."""
        observed = self.look()
        assert observed.state == self.state
        assert not observed.history
        assert not observed.messages
        return observed.state

    def ignored(self, reply: Envelope[Any]) -> None:
        """Deliver a reply the saga must ignore: it changes nothing and sends nothing."""
        before = self.state.copy()
        observed = self.decide(ReplyReceived(reply))
        assert observed.state == before
        assert [line.event for line in observed.history] == ["reply_ignored"]
        assert not observed.messages

    # --- rules -----------------------------------------------------------------------------

    @precondition(lambda self: self.state.awaiting_message_id is not None)
    @rule(ok=st.booleans())
    def reply_to_awaited(self, ok: bool) -> None:
        sent = self.awaited()
        assert sent is not None
        self.decide(ReplyReceived(self.answer(sent, ok)))

    @precondition(
        lambda self: (
            self.state.status == SagaStatus.COMPENSATING
            and self.state.awaiting_message_id is not None
            and self.state.current_step in self.fences
        )
    )
    @rule()
    def step_was_done(self) -> None:
        sent = self.awaited()
        assert sent is not None
        assert sent.compensation
        reply = sent.envelope.reply(StepWasDone(order_id=self.state.order_id))
        self.replies.append(reply)
        self.decide(ReplyReceived(reply))

    @precondition(lambda self: bool(self.replies))
    @rule(data=st.data())
    def duplicate_reply(self, data: st.DataObject) -> None:
        # Every reply was already applied or ignored once: a second delivery changes nothing.
        self.ignored(data.draw(st.sampled_from(self.replies)))

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data(), ok=st.booleans())
    def late_or_stale_reply(self, data: st.DataObject, ok: bool) -> None:
        sent = data.draw(st.sampled_from(self.sent))
        if sent.envelope.message_id == self.state.awaiting_message_id:
            return  # that one is reply_to_awaited
        self.ignored(self.answer(sent, ok))

    @precondition(lambda self: self.state.awaiting_message_id is not None)
    @rule(data=st.data(), ok=st.booleans())
    def reply_for_another_step(self, data: st.DataObject, ok: bool) -> None:
        sent = self.awaited()
        assert sent is not None
        names = [s.name for s in self.definition.steps]
        names += [s.compensation_step for s in self.definition.steps]
        other = data.draw(st.sampled_from([n for n in names if n != sent.envelope.step] or ["x"]))
        self.ignored(self.answer(sent, ok, step=other))

    @rule(seconds=st.sampled_from([0.5, 3.0, TIMEOUT_S + 1]))
    def time_passes_deadline(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.decide(DeadlinePassed())

    @rule(seconds=st.sampled_from([0.5, 2.0, 5.0]))
    def time_passes_retry(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.decide(RetryDue())

    @rule()
    def operator_retry(self) -> None:
        refused = self.state.status != SagaStatus.COMPENSATION_FAILED
        # The one way out of a terminal status: an operator retries COMPENSATION_FAILED.
        terminal, self.terminal = self.terminal, None
        try:
            self.decide(OperatorRetry("ops"))
        except SagaNotRetriable:
            assert refused
            self.terminal = terminal
            self.unchanged()
            return
        assert not refused

    @rule()
    def operator_cancel(self) -> None:
        refused = self.state.status != SagaStatus.RUNNING
        try:
            self.decide(OperatorCancel("ops", "test"))
        except SagaNotCancellable:
            assert refused
            self.unchanged()
            return
        assert not refused

    @rule()
    def restart(self) -> None:
        self.restart_process()
        self.state = self.unchanged()

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def forward_commands_once_in_order(self) -> None:
        assert all(n == 1 for n in self.forward_sent.values()), self.forward_sent
        assert self.forward_order == list(range(len(self.forward_order))), self.forward_order

    @invariant()
    def waits_only_for_a_command_it_sent(self) -> None:
        if self.state.awaiting_message_id is not None:
            sent = self.awaited()
            assert sent is not None, "the saga waits for a command it never sent"
            assert sent.envelope.step == self.state.awaiting_step

    @invariant()
    def compensations_only_for_what_may_have_been_done(self) -> None:
        for sent in self.sent:
            if sent.compensation:
                assert sent.position in self.forward_sent
                assert self.definition.step(sent.position).compensation is not None

    @invariant()
    def compensations_at_most_once_in_reverse_order(self) -> None:
        assert all(n == 1 for n in self.compensated.values()), self.compensated
        assert self.compensation_order == sorted(self.compensation_order, reverse=True)

    @invariant()
    def compensated_sagas_undid_everything(self) -> None:
        if self.state.status not in (SagaStatus.COMPENSATED, SagaStatus.FAILED):
            return
        may_have_done = {
            p
            for p in self.forward_sent
            if self.definition.step(p).compensation is not None and p not in self.failed
        }
        assert set(self.compensated) == may_have_done
        assert (self.state.status == SagaStatus.COMPENSATED) == bool(may_have_done)

    @invariant()
    def waits_only_while_not_terminal(self) -> None:
        if self.state.status.terminal:
            assert self.state.awaiting_message_id is None
            assert self.state.deadline_at is None
            assert self.state.next_retry_at is None
        elif self.state.awaiting_message_id is None:
            assert self.state.status == SagaStatus.COMPENSATING
            assert self.state.next_retry_at is not None

    @invariant()
    def completed_means_every_step_succeeded(self) -> None:
        if self.state.status == SagaStatus.COMPLETED:
            assert all(s.status == StepStatus.SUCCEEDED for s in self.state.steps)
            assert not self.compensated
