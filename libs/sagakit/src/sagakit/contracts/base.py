"""Reply base classes, so the orchestrator's engine can tell success from failure generically."""

from __future__ import annotations

import uuid
from typing import ClassVar

from sagakit.messaging.registry import Message, MessageRegistry

REGISTRY = MessageRegistry()


class Reply(Message):
    """A participant's answer to a command; ``succeeded`` says which way the step went."""

    succeeded: ClassVar[bool]
    order_id: uuid.UUID


class SuccessReply(Reply):
    succeeded: ClassVar[bool] = True


class FailureReply(Reply):
    """A business failure: ``reason`` is a stable code, ``detail`` is for people."""

    succeeded: ClassVar[bool] = False
    reason: str
    detail: str = ""


class StepWasDone(SuccessReply):
    """Answer to a compensation of a step that timed out: the step had in fact been done and
    cannot be undone (an email that went out). The saga then goes forward as if the step's own
    success reply had arrived in time, instead of compensating."""
