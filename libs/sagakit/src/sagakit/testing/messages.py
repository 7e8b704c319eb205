"""Message types for testing the plumbing itself (not part of any saga contract)."""

from __future__ import annotations

from sagakit.messaging.registry import Message, MessageRegistry

registry = MessageRegistry()


@registry.register
class DoThing(Message):
    message_type = "DoThing"
    name: str
    amount: int


@registry.register
class ThingDone(Message):
    message_type = "ThingDone"
    name: str
