"""How the messages travel: which topic carries each one, and which replies answer each command.

The pydantic classes say what a message looks like; the routes say where it goes, which is the
other half of the published contract. The process table of the product definition, as data:

- ``orders``: orders from upstream systems, consumed by the orchestrator (the intake);
- ``<participant>.commands``: commands the orchestrator sends to one participant;
- ``<participant>.replies``: that participant's answers, consumed by the orchestrator;
- ``order.events``: what the orchestrator tells downstream systems when a saga ends.

The AsyncAPI document (``make contracts``) is generated from the routes and the classes, and the
orchestrator's tests check that its workflow definitions send each command to the topic declared
here and wait for its replies where declared. A contract module declares the routes of its own
messages right after the classes, the way it registers them in ``REGISTRY``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sagakit.contracts.base import Reply
from sagakit.messaging.registry import Message
from sagakit.settings import Topics

ORCHESTRATOR = "orchestrator"

_BASE_TOPICS = Topics()  # topic names as published, without a deployment's prefix


@dataclass(frozen=True)
class CommandRoute:
    """A command from the orchestrator to ``participant`` and the replies that may answer it."""

    command: type[Message]
    participant: str
    replies: tuple[type[Reply], ...]

    @property
    def topic(self) -> str:
        return _BASE_TOPICS.commands(self.participant)

    @property
    def reply_topic(self) -> str:
        return _BASE_TOPICS.replies(self.participant)


class Routes:
    """Every route of one deployment of the contracts (one instance, ``ROUTES``, like
    ``REGISTRY``; a deployment's own contract modules add theirs to it on import)."""

    def __init__(self) -> None:
        self._commands: dict[str, CommandRoute] = {}
        self._intake: list[type[Message]] = []
        self._events: list[type[Message]] = []

    def command(
        self, command: type[Message], *, participant: str, replies: tuple[type[Reply], ...]
    ) -> None:
        """``command`` goes to ``<participant>.commands``; one of ``replies`` comes back."""
        if not replies:
            raise ValueError(f"{command.__name__}: a command is answered by at least one reply")
        self._add(command.message_type)
        self._commands[command.message_type] = CommandRoute(command, participant, replies)

    def intake(self, *messages: type[Message]) -> None:
        """Messages upstream systems send to the orchestrator on ``orders``."""
        for message in messages:
            self._add(message.message_type)
            self._intake.append(message)

    def event(self, *messages: type[Message]) -> None:
        """Messages the orchestrator sends to downstream systems on ``order.events``."""
        for message in messages:
            self._add(message.message_type)
            self._events.append(message)

    @property
    def commands(self) -> tuple[CommandRoute, ...]:
        return tuple(self._commands.values())

    @property
    def intake_messages(self) -> tuple[type[Message], ...]:
        return tuple(self._intake)

    @property
    def event_messages(self) -> tuple[type[Message], ...]:
        return tuple(self._events)

    def for_command(self, message_type: str) -> CommandRoute:
        try:
            return self._commands[message_type]
        except KeyError:
            raise LookupError(f"no route declared for command {message_type!r}") from None

    def participants(self) -> tuple[str, ...]:
        return tuple(sorted({route.participant for route in self._commands.values()}))

    def topics(self) -> dict[str, tuple[type[Message], ...]]:
        """Every topic with the messages it carries, each message once, in declaration order."""
        carried: dict[str, dict[str, type[Message]]] = {_BASE_TOPICS.orders: {}}
        for message in self._intake:
            carried[_BASE_TOPICS.orders][message.message_type] = message
        for route in self._commands.values():
            carried.setdefault(route.topic, {})[route.command.message_type] = route.command
            replies = carried.setdefault(route.reply_topic, {})
            for reply in route.replies:
                replies[reply.message_type] = reply
        events = carried.setdefault(_BASE_TOPICS.order_events, {})
        for message in self._events:
            events[message.message_type] = message
        return {topic: tuple(messages.values()) for topic, messages in carried.items()}

    def routed_types(self) -> Iterator[str]:
        """The type name of every message that has a route (replies included)."""
        for messages in self.topics().values():
            for message in messages:
                yield message.message_type

    def _add(self, message_type: str) -> None:
        if not message_type:
            raise ValueError("a routed message needs a message_type")
        if message_type in self._commands or any(
            m.message_type == message_type for m in (*self._intake, *self._events)
        ):
            raise ValueError(f"message type {message_type!r} already has a route")


ROUTES = Routes()
