"""Declarative workflow definitions: an ordered list of steps the engine runs generically.

A step names its command (a function of the saga context), the topic it goes to, the topic its
reply comes back on, its timeout, and its compensation (command and topic), if any. The engine
knows nothing of any particular step: a new step is a new ``Step`` and a new participant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sagakit.contracts import Reply
from sagakit.messaging.registry import Message

Context = dict[str, Any]
CommandBuilder = Callable[[Context], Message]
ContextUpdate = Callable[[Context, Reply], Context]
EventBuilder = Callable[[Context, str], Message]

COMPENSATION_SUFFIX = ":compensate"


@dataclass(frozen=True)
class Compensation:
    command: CommandBuilder
    topic: str  # base topic name; the deployment's prefix is added at send time
    reply_topic: str
    timeout_s: float


@dataclass(frozen=True)
class Step:
    name: str
    command: CommandBuilder
    topic: str
    reply_topic: str
    timeout_s: float
    compensation: Compensation | None = None
    # What a success reply adds to the context for later steps (say, the priced total).
    on_success: ContextUpdate | None = None

    @property
    def compensation_step(self) -> str:
        """The ``step`` header of this step's compensation command and its reply."""
        return f"{self.name}{COMPENSATION_SUFFIX}"


@dataclass(frozen=True)
class WorkflowDefinition:
    name: str
    version: int
    steps: tuple[Step, ...]
    # Events for downstream systems when the saga ends (topic: order.events).
    on_completed: EventBuilder
    on_cancelled: EventBuilder
    on_needs_attention: EventBuilder

    def step(self, position: int) -> Step:
        return self.steps[position]

    @property
    def reply_topics(self) -> set[str]:
        topics = {s.reply_topic for s in self.steps}
        topics |= {s.compensation.reply_topic for s in self.steps if s.compensation}
        return topics

    def __post_init__(self) -> None:
        names = [s.name for s in self.steps]
        if len(names) != len(set(names)):
            raise ValueError(f"workflow {self.name} v{self.version}: step names must be unique")
        if not self.steps:
            raise ValueError(f"workflow {self.name} v{self.version} has no steps")


@dataclass
class WorkflowRegistry:
    """Every deployed definition, by name and version. A saga finishes on the version it began
    with, so old versions stay registered as long as sagas may run on them."""

    _definitions: dict[tuple[str, int], WorkflowDefinition] = field(default_factory=dict)

    def register(self, definition: WorkflowDefinition) -> WorkflowDefinition:
        key = (definition.name, definition.version)
        if key in self._definitions:
            raise ValueError(f"workflow {definition.name} v{definition.version} is registered")
        self._definitions[key] = definition
        return definition

    def get(self, name: str, version: int) -> WorkflowDefinition:
        try:
            return self._definitions[(name, version)]
        except KeyError:
            raise LookupError(f"workflow {name} v{version} is not deployed") from None

    def latest(self, name: str) -> WorkflowDefinition:
        versions = [d for (n, _), d in self._definitions.items() if n == name]
        if not versions:
            raise LookupError(f"no workflow named {name!r}")
        return max(versions, key=lambda d: d.version)

    def __iter__(self) -> Iterator[WorkflowDefinition]:
        return iter(self._definitions.values())

    @property
    def reply_topics(self) -> set[str]:
        return set().union(*(d.reply_topics for d in self._definitions.values()))
