"""Message handlers of the orchestrator: orders from the ``orders`` topic, replies from the
participants. Plain async functions of (message, unit of work); the consumer commits."""

from __future__ import annotations

from typing import Any

from orchestrator.service_layer.engine import SagaEngine
from orchestrator.service_layer.intake import IdempotencyConflict, OrderIntake
from sagakit.contracts import PlaceOrder, Reply
from sagakit.db.unit_of_work import UnitOfWork
from sagakit.errors import InvalidMessage
from sagakit.messaging.consumer import Handler
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import MessageRegistry


def make_handlers(
    engine: SagaEngine, intake: OrderIntake, registry: MessageRegistry
) -> dict[str, Handler]:
    async def place_order(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        assert isinstance(envelope.payload, PlaceOrder)
        try:
            await intake.place(
                uow,
                envelope.payload,
                idempotency_key=None,
                source="topic",
                traceparent=envelope.traceparent,
            )
        except IdempotencyConflict as exc:
            # The same order id with a different body can never be placed: dead-letter it.
            raise InvalidMessage(str(exc)) from exc

    async def on_reply(envelope: Envelope[Any], uow: UnitOfWork) -> None:
        await engine.on_reply(uow, envelope)

    handlers: dict[str, Handler] = {PlaceOrder.message_type: place_order}
    for model in registry:
        if issubclass(model, Reply):
            handlers[model.message_type] = on_reply
    return handlers
