"""Message handlers of the orchestrator: orders from the ``orders`` topic and replies from the
participants, each taken a batch at a time (the consumer's transaction commits them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from orchestrator.service_layer.admission import AdmissionControl
from orchestrator.service_layer.intake import IdempotencyConflict, OrderIntake, Placement
from orchestrator.service_layer.sagas import SagaService
from sagakit.consumer import Consumer, FailureHook
from sagakit.contracts import PlaceOrder, Reply
from sagakit.errors import InvalidMessage
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import MessageRegistry
from sagakit.outbox.unit_of_work import UnitOfWork


def install_handlers(
    consumer: Consumer,
    sagas: SagaService,
    intake: OrderIntake,
    registry: MessageRegistry,
    admission: AdmissionControl | None = None,
) -> None:
    async def place_orders(envelopes: Sequence[Envelope[Any]], uow: UnitOfWork) -> None:
        if admission is not None:  # the consumer took no more than there was room for
            admission.admit(len(envelopes))
        requests = [
            Placement(e.payload, idempotency_key=None, source="topic", traceparent=e.traceparent)
            for e in envelopes
        ]
        for outcome in await intake.place_many(uow, requests):
            if isinstance(outcome, IdempotencyConflict):
                # The same order id with a different body can never be placed: poison. The
                # consumer then handles the batch's records one by one and dead-letters this one.
                raise InvalidMessage(str(outcome)) from outcome

    consumer.handle_batches([PlaceOrder.message_type], place_orders)
    replies = [model.message_type for model in registry if issubclass(model, Reply)]
    consumer.handle_batches(replies, sagas.on_replies)


def parking_hook(sagas: SagaService, uow_factory: Callable[[], UnitOfWork]) -> FailureHook:
    """For the consumer: a reply whose handling kept raising a bug is dead-lettered (it can be
    replayed once fixed), and its saga parked, so it waits for an operator, not for a deadline
    that would meet the same bug."""

    async def park(envelope: Envelope[Any], error: Exception) -> None:
        if isinstance(envelope.payload, Reply) and envelope.saga_id is not None:
            await sagas.park(uow_factory, envelope.saga_id, error, where="consumer")

    return park
