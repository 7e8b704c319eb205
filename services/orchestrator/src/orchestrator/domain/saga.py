"""A saga's state as the engine sees it: plain data, no database session behind it.

The service layer loads it from the ``sagas`` and ``saga_steps`` rows, hands it to the engine
with an event, and writes back what the engine decided.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from orchestrator.domain.status import SagaStatus, StepStatus


@dataclass(slots=True)
class StepState:
    position: int
    name: str
    status: StepStatus
    command_message_id: uuid.UUID | None = None


@dataclass(slots=True)
class SagaState:
    saga_id: uuid.UUID
    order_id: uuid.UUID
    definition_name: str
    definition_version: int
    status: SagaStatus
    # The step (position) the saga is on, and what it waits for: the command's message id and
    # the step header its reply must carry. A reply matching neither is stale and ignored.
    current_step: int
    context: dict[str, Any]
    traceparent: str
    steps: list[StepState]
    awaiting_step: str | None = None
    awaiting_message_id: uuid.UUID | None = None
    deadline_at: datetime | None = None
    compensation_attempts: int = 0
    next_retry_at: datetime | None = None
    failure_reason: str | None = None
    updated_at: datetime | None = None
    created_at: datetime | None = field(default=None, compare=False)

    def copy(self) -> SagaState:
        """A copy the engine may change; the original stays as it was."""
        return replace(
            self,
            context=dict(self.context),
            steps=[replace(step) for step in self.steps],
        )

    @property
    def current(self) -> StepState:
        return self.steps[self.current_step]
