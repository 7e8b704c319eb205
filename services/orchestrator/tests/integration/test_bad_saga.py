"""One bad saga never stops the orchestrator: a saga whose handling raises a bug (a row that
no longer loads, a state the engine trips on, a value that cannot be written) is parked for
operators (COMPENSATION_FAILED, the order NEEDS_ATTENTION, the error in its history and in
the stuck list), in the scheduler as in the consumer, and the other sagas go on to their end.
(A definition version no longer registered: ``test_timeouts_and_retries``.)"""

import asyncio
import uuid

import pytest

from orchestrator.domain.status import OrderStatus, SagaStatus
from orchestrator.service_layer.handlers import parking_hook
from orchestrator.service_layer.operations import Operations
from sagakit.contracts import (
    REGISTRY,
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    OrderConfirmationSent,
    PaymentProcessed,
    PricedLine,
    Reply,
)
from sagakit.testing.kafka import read_topic
from sagakit.testing.runners import running_consumer, running_producer
from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.integration

LINES = [PricedLine(product_id="widget", quantity=2, unit_price=1999, line_total=3998)]


async def assert_parked(harness, saga_id: uuid.UUID, error: str) -> None:  # type: ignore[no-untyped-def]
    saga = await harness.saga(saga_id)
    assert saga.status == SagaStatus.COMPENSATION_FAILED
    assert error in (saga.failure_reason or "")
    assert saga.deadline_at is None
    assert saga.next_retry_at is None
    assert (await harness.order(saga.order_id)).status == OrderStatus.NEEDS_ATTENTION
    errors = [e for e in await harness.history(saga_id) if e.event == "engine_error"]
    assert errors
    assert error in (errors[-1].detail or "")
    stuck = await Operations(harness.uow, harness.sagas, clock=harness.clock).stuck()
    assert {s.saga.saga_id: s.why for s in stuck}[saga_id] == "parked: needs attention"


async def test_the_scheduler_parks_sagas_it_cannot_load_or_decide_and_goes_on(harness) -> None:
    healthy = (await harness.place()).saga
    unloadable = (await harness.place()).saga
    tripping = (await harness.place()).saga
    # A step status no code knows: the row does not load, the whole batch's query fails.
    await harness.database.fetchval(
        "UPDATE saga_steps SET status = 'BOGUS' WHERE saga_id = $1 RETURNING 1",
        unloadable.saga_id,
    )
    # A current step out of range: the engine fails, and so does its fault handling.
    await harness.database.fetchval(
        "UPDATE sagas SET current_step = 99 WHERE saga_id = $1 RETURNING 1", tripping.saga_id
    )
    harness.clock.advance(11)
    assert await harness.scheduler.tick() == 3  # one handled, two parked
    assert await harness.scheduler.tick() == 0  # nothing left due: no saga taken twice

    await assert_parked(harness, unloadable.saga_id, "ValueError")
    await assert_parked(harness, tripping.saga_id, "IndexError")
    assert (await harness.saga(healthy.saga_id)).status == SagaStatus.COMPENSATING
    order_id = (await harness.saga(healthy.saga_id)).order_id
    await harness.reply(healthy.saga_id, InventoryReleased(order_id=order_id, released_lines=1))
    assert (await harness.saga(healthy.saga_id)).status == SagaStatus.COMPENSATED


async def test_a_reply_that_keeps_failing_parks_its_saga_and_the_others_complete(
    harness, kafka_bootstrap, new_topic
) -> None:
    topic = await new_topic(partitions=1)  # the healthy replies queue behind the bad one
    bad = (await harness.place()).saga
    # A corrupt total: finishing the saga writes it to the order, which cannot be encoded.
    await harness.database.fetchval(
        'UPDATE sagas SET context = context || \'{"total": "lots"}\' WHERE saga_id = $1'
        " RETURNING 1",
        bad.saga_id,
    )
    good = [(await harness.place()).saga for _ in range(2)]
    replies = [model.message_type for model in REGISTRY if issubclass(model, Reply)]
    async with (
        running_producer(kafka_bootstrap) as producer,
        running_consumer(
            kafka_bootstrap,
            topic,
            {},
            harness.database,
            producer,
            REGISTRY,
            batch_handlers=dict.fromkeys(replies, harness.sagas.on_replies),
            on_handler_failure=parking_hook(harness.sagas, harness.uow),
        ),
    ):
        failed = (await harness.last_command(bad.saga_id)).reply(
            InventoryReservationFailed(
                order_id=(await harness.saga(bad.saga_id)).order_id, reason="INSUFFICIENT_STOCK"
            )
        )
        await producer.publish(topic, failed)
        answers = [
            lambda o: InventoryReserved(order_id=o, lines=LINES, total=3998, currency="USD"),
            lambda o: PaymentProcessed(order_id=o, payment_id="pi", amount=3998, currency="USD"),
            lambda o: OrderConfirmationSent(order_id=o, smtp_message_id="m1"),
        ]
        for answer in answers:  # each step of both healthy sagas, through Kafka
            for saga in good:
                sent = len(await harness.sent(saga.saga_id))
                command = await harness.last_command(saga.saga_id)
                await producer.publish(topic, command.reply(answer(command.order_id)))
                await eventually(
                    lambda saga=saga, sent=sent: _more_sent(harness, saga.saga_id, sent),  # type: ignore[misc]
                    what=f"the reply to {command.message_type} handled",
                )

    for saga in good:
        assert (await harness.saga(saga.saga_id)).status == SagaStatus.COMPLETED
    await assert_parked(harness, bad.saga_id, "DataError")
    [dead] = await read_topic(kafka_bootstrap, f"{topic}.dlq", expected=1)
    assert dict(dead.headers)["message-type"] == b"InventoryReservationFailed"


async def _more_sent(harness, saga_id: uuid.UUID, before: int) -> bool:  # type: ignore[no-untyped-def]
    await asyncio.sleep(0)
    return len(await harness.sent(saga_id)) > before
