"""The pure saga engine checked by properties (the rules and invariants are in
testsupport/saga_properties.py): each event is decided by the engine, in memory; the saga is
kept as the store keeps it (its state round-tripped as the store writes and reads it), and a
process restart is a new engine. Milliseconds per example.

``make props`` runs it with many more examples (the profiles are in the root conftest).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from saga_properties import TRACEPARENT, Observed, SagaProperties, definition, engine_for

from orchestrator.domain.engine import Decision, Event, OperatorCancel, ReplyReceived
from orchestrator.domain.saga import SagaState, StepState
from orchestrator.domain.status import SagaStatus, StepStatus
from orchestrator.domain.workflow import WorkflowDefinition
from sagakit.contracts import StepWasDone

pytestmark = pytest.mark.unit


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


def observed(decision: Decision) -> Observed:
    """What a decision makes visible."""
    if decision.finished is not None:
        assert decision.state.status.terminal
    return Observed(
        decision.state,
        list(decision.history),
        [(out.topic, out.envelope) for out in decision.messages],
    )


class SagaMachine(SagaProperties):
    """Each event decided by the pure engine."""

    def begin(self, workflow: WorkflowDefinition, seed: int, order_id: uuid.UUID) -> Observed:
        self.seed = seed
        self.restart_process()
        return observed(
            self.engine.start(
                saga_id=uuid.uuid4(),
                order_id=order_id,
                definition=workflow,
                context={"order_id": str(order_id)},
                traceparent=TRACEPARENT,
                now=self.clock.now,
                cause="test",
            )
        )

    def handle(self, event: Event) -> Observed:
        before = self.state.copy()
        decision = self.engine.decide(self.state, event, self.clock.now)
        assert self.state == before, "decide changed its input"
        if not decision.changed:
            assert not decision.messages
        return observed(decision)

    def look(self) -> Observed:
        return Observed(restarted(self.state))

    def restart_process(self) -> None:
        self.engine = engine_for(self.definition, self.seed)


TestSagaEngine = SagaMachine.TestCase


def test_step_was_done_after_a_later_step_ran_parks_the_saga() -> None:
    """Regression (found by the state machine): an irreversible step answered StepWasDone to
    its compensation after a later step had failed or been abandoned; the saga went forward
    and sent the later step's command again (and again, each time it failed)."""
    engine_definition = definition(["fence", False])
    engine = engine_for(engine_definition, 0)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    order_id = uuid.uuid4()
    decision = engine.start(
        saga_id=uuid.uuid4(),
        order_id=order_id,
        definition=engine_definition,
        context={"order_id": str(order_id)},
        traceparent=TRACEPARENT,
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
