"""Message handlers of the orchestrator service: plain async functions (message, unit of work)."""

from __future__ import annotations

from sagakit.messaging.consumer import Handler
from sagakit.messaging.registry import MessageRegistry

REGISTRY = MessageRegistry()
HANDLERS: dict[str, Handler] = {}
