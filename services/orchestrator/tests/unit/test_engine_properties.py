"""The pure saga engine checked by properties: hypothesis drives sagas of generated workflow
definitions (1-5 steps, each with or without a compensation) through random interleavings of
replies (success, failure, duplicate, late, for another step), deadlines, compensation retries,
operator retries and cancels, and process restarts (the state round-tripped as the store keeps
it), and checks the saga's invariants after every step.

``make props`` runs it with many more examples (the profiles are in the root conftest).
"""

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from orchestrator.domain.engine import (
    DeadlinePassed,
    Decision,
    Event,
    OperatorCancel,
    OperatorRetry,
    ReplyReceived,
    RetryDue,
    RetryPolicy,
    SagaEngine,
    SagaNotCancellable,
    SagaNotRetriable,
)
from orchestrator.domain.saga import SagaState, StepState
from orchestrator.domain.status import SagaStatus, StepStatus
from orchestrator.domain.workflow import Compensation, Step, WorkflowDefinition, WorkflowRegistry
from sagakit.contracts import FailureReply, StepWasDone, SuccessReply
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message
from sagakit.settings import Topics

pytestmark = pytest.mark.unit


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


def _do(ctx: dict[str, Any]) -> Message:
    return Do(order_id=uuid.UUID(ctx["order_id"]))


def _undo(ctx: dict[str, Any]) -> Message:
    return Undo(order_id=uuid.UUID(ctx["order_id"]))


def _ended(_ctx: dict[str, Any], reason: str) -> Message:
    return Ended(reason=reason)


TIMEOUT_S = 10.0
POLICY = RetryPolicy(base_s=1.0, cap_s=4.0, max_attempts=3)


def definition(compensated: list[bool | str]) -> WorkflowDefinition:
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


def restarted(state: SagaState) -> SagaState:
    """The state as the store writes and reads it back (saga_store: columns, jsonb context,
    steps as (position, name, status, command id) arrays)."""
    row = orjson.loads(
        orjson.dumps(
            {
                "status": str(state.status),
                "context": state.context,
                "steps": [
                    [s.position, s.name, str(s.status), str(s.command_message_id or "")]
                    for s in state.steps
                ],
            }
        )
    )
    return SagaState(
        saga_id=state.saga_id,
        order_id=state.order_id,
        definition_name=state.definition_name,
        definition_version=state.definition_version,
        status=SagaStatus(row["status"]),
        current_step=state.current_step,
        awaiting_step=state.awaiting_step,
        awaiting_message_id=state.awaiting_message_id,
        deadline_at=state.deadline_at,
        compensation_attempts=state.compensation_attempts,
        next_retry_at=state.next_retry_at,
        failure_reason=state.failure_reason,
        context=row["context"],
        traceparent=state.traceparent,
        created_at=state.created_at,
        updated_at=state.updated_at,
        steps=[
            StepState(p, n, StepStatus(s), uuid.UUID(c) if c else None)
            for p, n, s, c in row["steps"]
        ],
    )


@dataclass
class Sent:
    envelope: Envelope[Any]
    position: int
    compensation: bool


class SagaMachine(RuleBasedStateMachine):
    @initialize(
        # Each step: no compensation, one, or one that is a fence ("fence": the step cannot be
        # undone, and its participant may answer StepWasDone, as notification does).
        compensated=st.lists(st.sampled_from([False, True, "fence"]), min_size=1, max_size=5),
        seed=st.integers(0, 2**32 - 1),
    )
    def start(self, compensated: list[bool | str], seed: int) -> None:
        self.fences = {i for i, kind in enumerate(compensated) if kind == "fence"}

        self.definition = definition(compensated)
        workflows = WorkflowRegistry()
        workflows.register(self.definition)
        self.engine = SagaEngine(workflows, Topics(), retry=POLICY, rng=random.Random(seed))
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        order_id = uuid.uuid4()
        decision = self.engine.start(
            saga_id=uuid.uuid4(),
            order_id=order_id,
            definition=self.definition,
            context={"order_id": str(order_id)},
            traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
            now=self.now,
            cause="test",
        )
        self.sent: list[Sent] = []
        self.replies: list[Envelope[Any]] = []
        self.forward_sent: dict[int, int] = {}
        self.compensated: dict[int, int] = {}  # position -> applied compensation successes
        self.compensation_order: list[int] = []  # positions compensated, in order
        self.failed: set[int] = set()  # steps whose participant answered with a failure
        self.terminal: SagaState | None = None
        self.state = decision.state
        self.take(decision, before=None)

    # --- bookkeeping -----------------------------------------------------------------------

    def take(self, decision: Decision, before: SagaState | None) -> None:
        after = decision.state
        if before is not None:
            if not decision.changed:
                assert after == before, "a decision without history changed the state"
            if before.status != after.status:
                lines = [line for line in decision.history if line.to_status is not None]
                assert lines, "a status change without a history line"
                assert lines[0].from_status == before.status
                assert lines[-1].to_status == after.status
                for a, b in itertools.pairwise(lines):
                    assert a.to_status == b.from_status
            if self.terminal is not None:
                assert after == self.terminal, "a terminal saga changed"
                assert not decision.messages
        for line in decision.history:
            if line.event == "step_failed":
                self.failed.add(int(str(line.step)[1:]))
            if line.event == "step_compensated":
                position = int(str(line.step).removesuffix(":compensate")[1:])
                self.compensated[position] = self.compensated.get(position, 0) + 1
                self.compensation_order.append(position)
        for out in decision.messages:
            env = out.envelope
            if env.step is None or out.topic.endswith(".dlq"):
                continue
            is_comp = env.step.endswith(":compensate")
            position = int(env.step.removesuffix(":compensate")[1:])
            self.sent.append(Sent(env, position, is_comp))
            if not is_comp:
                self.forward_sent[position] = self.forward_sent.get(position, 0) + 1
        if decision.finished is not None or (after.status.terminal and self.terminal is None):
            assert after.status.terminal
            self.terminal = after.copy()
        self.state = after

    def decide(self, event: Event) -> Decision:
        before = self.state.copy()
        decision = self.engine.decide(self.state, event, self.now)
        assert self.state == before, "decide changed its input"
        self.take(decision, before)
        return decision

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
        reply = data.draw(st.sampled_from(self.replies))
        before = self.state.copy()
        decision = self.decide(ReplyReceived(reply))
        # Every reply was already applied or ignored once: a second delivery changes nothing.
        assert decision.state == before
        assert [line.event for line in decision.history] == ["reply_ignored"]
        assert not decision.messages

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data(), ok=st.booleans())
    def late_or_stale_reply(self, data: st.DataObject, ok: bool) -> None:
        sent = data.draw(st.sampled_from(self.sent))
        if sent.envelope.message_id == self.state.awaiting_message_id:
            return  # that one is reply_to_awaited
        before = self.state.copy()
        decision = self.decide(ReplyReceived(self.answer(sent, ok)))
        assert decision.state == before
        assert [line.event for line in decision.history] == ["reply_ignored"]

    @precondition(lambda self: self.state.awaiting_message_id is not None)
    @rule(data=st.data(), ok=st.booleans())
    def reply_for_another_step(self, data: st.DataObject, ok: bool) -> None:
        sent = self.awaited()
        assert sent is not None
        names = [s.name for s in self.definition.steps]
        names += [s.compensation_step for s in self.definition.steps]
        other = data.draw(st.sampled_from([n for n in names if n != sent.envelope.step] or ["x"]))
        before = self.state.copy()
        decision = self.decide(ReplyReceived(self.answer(sent, ok, step=other)))
        assert decision.state == before

    @rule(seconds=st.sampled_from([0.5, 3.0, TIMEOUT_S + 1]))
    def time_passes_deadline(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        self.decide(DeadlinePassed())

    @rule(seconds=st.sampled_from([0.5, 2.0, 5.0]))
    def time_passes_retry(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
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
            return
        assert not refused

    @rule()
    def operator_cancel(self) -> None:
        refused = self.state.status != SagaStatus.RUNNING
        try:
            self.decide(OperatorCancel("ops", "test"))
        except SagaNotCancellable:
            assert refused
            return
        assert not refused

    @rule()
    def restart(self) -> None:
        state = restarted(self.state)
        assert state == self.state
        self.state = state

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def forward_commands_once(self) -> None:
        assert all(n == 1 for n in self.forward_sent.values()), self.forward_sent

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


TestSagaEngine = SagaMachine.TestCase


def test_step_was_done_after_a_later_step_ran_parks_the_saga() -> None:
    """Regression (found by the state machine): an irreversible step answered StepWasDone to
    its compensation after a later step had failed or been abandoned; the saga went forward
    and sent the later step's command again (and again, each time it failed)."""
    engine_definition = definition(["fence", False])
    workflows = WorkflowRegistry()
    workflows.register(engine_definition)
    engine = SagaEngine(workflows, Topics(), retry=POLICY)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    order_id = uuid.uuid4()
    decision = engine.start(
        saga_id=uuid.uuid4(),
        order_id=order_id,
        definition=engine_definition,
        context={"order_id": str(order_id)},
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        now=now,
        cause="test",
    )

    def answer_compensation(decision: Decision) -> Decision:
        command = decision.messages[-1].envelope
        assert command.step == "s0:compensate"
        reply = command.reply(StepWasDone(order_id=order_id))
        return engine.decide(decision.state, ReplyReceived(reply), now)

    decision = engine.decide(decision.state, OperatorCancel("ops", "first"), now)
    decision = answer_compensation(decision)  # s0 had been done: forward, s1 is sent
    assert decision.state.status == SagaStatus.RUNNING
    assert decision.messages[-1].envelope.step == "s1"
    decision = engine.decide(decision.state, OperatorCancel("ops", "second"), now)
    decision = answer_compensation(decision)
    assert decision.state.status == SagaStatus.COMPENSATION_FAILED
    assert not [m for m in decision.messages if m.envelope.step == "s1"]
