"""Durable step deadlines and the compensation retry worker."""

import asyncio

import pytest
from prometheus_client import REGISTRY

from orchestrator.domain.status import OrderStatus, SagaStatus, StepStatus
from orchestrator.service_layer.scheduler import Scheduler
from sagakit.contracts import (
    InventoryReleased,
    InventoryReserved,
    PaymentDeclined,
    PaymentProcessed,
    PaymentRefunded,
    PaymentRefundFailed,
    PricedLine,
)

pytestmark = pytest.mark.integration

LINES = [PricedLine(product_id="widget", quantity=2, unit_price=1999, line_total=3998)]


async def test_a_silent_participant_times_out_and_its_own_step_is_compensated(harness) -> None:
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    harness.clock.advance(9.9)
    assert await harness.scheduler.tick() == 0  # not yet
    harness.clock.advance(0.2)
    assert await harness.scheduler.tick() == 1

    saga = await harness.saga(saga_id)
    assert saga.status == SagaStatus.COMPENSATING
    assert saga.steps[0].status == StepStatus.COMPENSATING  # it timed out: possibly done
    release = await harness.last_command(saga_id)
    assert release.message_type == "ReleaseInventory"
    # The late "reserved" (the participant was only slow) is ignored; the release undoes it.
    reserve = next(
        s for s in await harness.sent(saga_id) if s.envelope.message_type == "ReserveInventory"
    ).envelope
    await harness.reply(
        saga_id,
        InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD"),
        to=reserve,
    )
    await harness.reply(saga_id, InventoryReleased(order_id=order_id, released_lines=1), to=release)
    assert (await harness.saga(saga_id)).status == SagaStatus.COMPENSATED
    assert (await harness.order(order_id)).status == OrderStatus.CANCELLED
    events = [e.event for e in await harness.history(saga_id)]
    assert "step_timed_out" in events
    assert "reply_ignored" in events


async def test_a_payment_timeout_refunds_then_releases(harness) -> None:
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await harness.reply(
        saga_id, InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    )
    harness.clock.advance(11)
    await harness.scheduler.tick()
    assert (await harness.last_command(saga_id)).message_type == "RefundPayment"
    await harness.reply(saga_id, PaymentRefunded(order_id=order_id, refund_id=None, amount=0))
    assert (await harness.last_command(saga_id)).message_type == "ReleaseInventory"


async def test_the_deadline_survives_a_restart_of_the_orchestrator(harness) -> None:
    from orchestrator_harness import Harness

    placed = await harness.place()
    restarted = Harness(
        harness.sessions, harness.database
    )  # a new engine and scheduler: nothing in memory
    restarted.clock.now = harness.clock.now
    restarted.clock.advance(30)
    assert await restarted.scheduler.tick() == 1
    assert (await restarted.saga(placed.saga.saga_id)).status == SagaStatus.COMPENSATING


async def fail_refunds_until_exhausted(harness, saga_id, order_id):  # type: ignore[no-untyped-def]
    """Drive a saga to its refund, then refuse every refund; returns the scheduled delays."""
    await harness.reply(
        saga_id, InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    )
    await harness.reply(
        saga_id, PaymentProcessed(order_id=order_id, payment_id="pi", amount=3998, currency="USD")
    )
    from sagakit.contracts import NotificationFailed

    await harness.reply(saga_id, NotificationFailed(order_id=order_id, reason="SMTP_REJECTED"))
    delays = []
    for _ in range(harness.engine.retry.max_attempts):
        command = await harness.last_command(saga_id)
        assert command.message_type == "RefundPayment"
        await harness.reply(saga_id, PaymentRefundFailed(order_id=order_id, reason="refund_failed"))
        saga = await harness.saga(saga_id)
        if saga.next_retry_at is None:
            break
        delays.append((saga.next_retry_at - harness.clock.now).total_seconds())
        assert await harness.scheduler.tick() == 0  # not due yet: nothing is re-sent
        harness.clock.advance(delays[-1])
        assert await harness.scheduler.tick() == 1
    return delays


def dlq_written(topic: str) -> float:
    labels = {"topic": topic, "returned": "false"}
    return REGISTRY.get_sample_value("saga_dlq_records_written_total", labels) or 0.0


async def test_failed_compensations_back_off_within_bounds_then_need_attention(harness) -> None:
    written_before = dlq_written("payment.commands.dlq")
    placed = await harness.place("pm_card_refundFail")
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    delays = await fail_refunds_until_exhausted(harness, saga_id, order_id)

    policy = harness.engine.retry  # base 1 s, cap 8 s, 3 attempts
    assert len(delays) == policy.max_attempts - 1
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(policy.cap_s, policy.base_s * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    saga = await harness.saga(saga_id)
    assert saga.status == SagaStatus.COMPENSATION_FAILED
    assert saga.next_retry_at is None
    assert saga.deadline_at is None
    assert (await harness.order(order_id)).status == OrderStatus.NEEDS_ATTENTION
    refunds = [c for c in await harness.command_types(saga_id) if c == "RefundPayment"]
    assert len(refunds) == policy.max_attempts
    sent = await harness.sent(saga_id)
    ids = [s.envelope.message_id for s in sent if s.envelope.message_type == "RefundPayment"]
    assert len(set(ids)) == len(ids)
    [alert] = [s for s in sent if s.topic == "payment.commands.dlq"]
    assert alert.headers["dlq-error-code"] == "compensation_exhausted"
    assert "refund_failed" in alert.headers["dlq-reason"]
    assert dlq_written("payment.commands.dlq") == written_before + 1  # counted like consumers'
    assert [s.envelope.message_type for s in sent if s.topic == "order.events"] == [
        "OrderNeedsAttention"
    ]

    # A terminal saga is never revived by the retry worker, however long we wait.
    harness.clock.advance(3600)
    assert await harness.scheduler.tick() == 0
    assert len([c for c in await harness.command_types(saga_id) if c == "RefundPayment"]) == 3


async def test_an_operator_retry_resumes_the_compensation(harness) -> None:
    placed = await harness.place("pm_card_refundFail")
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await fail_refunds_until_exhausted(harness, saga_id, order_id)
    async with harness.uow() as uow:
        await harness.sagas.retry_by_operator(uow, saga_id, who="test operator")
        await uow.commit()
    assert await harness.scheduler.tick() == 1
    await harness.reply(saga_id, PaymentRefunded(order_id=order_id, refund_id="re_1", amount=3998))
    await harness.reply(saga_id, InventoryReleased(order_id=order_id, released_lines=1))
    assert (await harness.saga(saga_id)).status == SagaStatus.COMPENSATED
    assert (await harness.order(order_id)).status == OrderStatus.CANCELLED
    events = [e.event for e in await harness.history(saga_id)]
    assert "operator_retry" in events


async def test_only_compensation_failed_sagas_can_be_retried_by_an_operator(harness) -> None:
    from orchestrator.domain.engine import SagaNotRetriable

    placed = await harness.place()
    async with harness.uow() as uow:
        with pytest.raises(SagaNotRetriable):
            await harness.sagas.retry_by_operator(uow, placed.saga.saga_id, who="test")


async def test_two_scheduler_replicas_never_handle_the_same_saga_twice(harness) -> None:
    sagas = [(await harness.place()).saga.saga_id for _ in range(30)]
    harness.clock.advance(60)
    replicas = [Scheduler(harness.sagas, harness.uow, batch_size=100) for _ in range(3)]
    moved = await asyncio.gather(*(r.tick() for r in replicas))
    assert sum(moved) == 30
    for saga_id in sagas:
        assert (await harness.command_types(saga_id)).count("ReleaseInventory") == 1


async def test_a_decline_then_refused_release_is_retried_not_failed(harness) -> None:
    """A compensation that times out is retried like one that failed."""
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await harness.reply(
        saga_id, InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    )
    await harness.reply(saga_id, PaymentDeclined(order_id=order_id, reason="insufficient_funds"))
    harness.clock.advance(11)  # the release is not answered in time
    assert await harness.scheduler.tick() == 1
    saga = await harness.saga(saga_id)
    assert saga.status == SagaStatus.COMPENSATING
    assert saga.compensation_attempts == 1
    harness.clock.advance(10)
    assert await harness.scheduler.tick() == 1
    assert (await harness.command_types(saga_id)).count("ReleaseInventory") == 2


async def drive_to_notification(harness):  # type: ignore[no-untyped-def]
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await harness.reply(
        saga_id, InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    )
    await harness.reply(
        saga_id, PaymentProcessed(order_id=order_id, payment_id="pi", amount=3998, currency="USD")
    )
    harness.clock.advance(11)  # the confirmation's reply is late
    assert await harness.scheduler.tick() == 1
    void = await harness.last_command(saga_id)
    assert (void.message_type, void.step) == (
        "VoidOrderConfirmation",
        "send_notification:compensate",
    )
    return saga_id, order_id, void


async def test_an_email_sent_before_the_timeout_confirms_the_order_after_all(harness) -> None:
    """The chaos run found it: the email went out in time, its reply came late. The void
    fence learns that it was sent, and the saga completes instead of refunding."""
    from sagakit.contracts import OrderConfirmationAlreadySent

    saga_id, order_id, void = await drive_to_notification(harness)
    await harness.reply(
        saga_id, OrderConfirmationAlreadySent(order_id=order_id, smtp_message_id="<m>"), to=void
    )
    saga = await harness.saga(saga_id)
    assert saga.status == SagaStatus.COMPLETED
    assert [s.status for s in saga.steps] == [StepStatus.SUCCEEDED] * 3
    assert (await harness.order(order_id)).status == OrderStatus.CONFIRMED
    assert "RefundPayment" not in await harness.command_types(saga_id)
    events = [e.event for e in await harness.history(saga_id)]
    assert "compensation_abandoned" in events


async def test_an_email_never_sent_is_voided_and_the_order_compensated(harness) -> None:
    from sagakit.contracts import OrderConfirmationVoided

    saga_id, order_id, void = await drive_to_notification(harness)
    await harness.reply(saga_id, OrderConfirmationVoided(order_id=order_id), to=void)
    assert (await harness.last_command(saga_id)).message_type == "RefundPayment"
    await harness.reply(saga_id, PaymentRefunded(order_id=order_id, refund_id="re", amount=3998))
    await harness.reply(saga_id, InventoryReleased(order_id=order_id, released_lines=1))
    assert (await harness.saga(saga_id)).status == SagaStatus.COMPENSATED
    assert (await harness.order(order_id)).status == OrderStatus.CANCELLED


async def test_a_failed_notification_is_not_voided_it_compensates_directly(harness) -> None:
    from sagakit.contracts import NotificationFailed

    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await harness.reply(
        saga_id, InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    )
    await harness.reply(
        saga_id, PaymentProcessed(order_id=order_id, payment_id="pi", amount=3998, currency="USD")
    )
    await harness.reply(saga_id, NotificationFailed(order_id=order_id, reason="SMTP_REJECTED"))
    assert "VoidOrderConfirmation" not in await harness.command_types(saga_id)


async def test_a_saga_on_an_unregistered_definition_version_is_parked_and_the_scheduler_goes_on(
    harness,
) -> None:
    broken = (await harness.place()).saga
    healthy = (await harness.place()).saga
    await harness.database.fetchval(
        "UPDATE sagas SET definition_version = 999 WHERE saga_id = $1 RETURNING 1", broken.saga_id
    )
    harness.clock.advance(11)
    assert await harness.scheduler.tick() == 2  # both deadlines handled, neither blocks the other

    parked = await harness.saga(broken.saga_id)
    assert parked.status == SagaStatus.COMPENSATION_FAILED
    assert parked.failure_reason is not None
    assert "engine error" in parked.failure_reason
    assert (await harness.order(parked.order_id)).status == OrderStatus.NEEDS_ATTENTION
    assert "engine_error" in [e.event for e in await harness.history(broken.saga_id)]
    assert (await harness.saga(healthy.saga_id)).status == SagaStatus.COMPENSATING


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_started_and_finished_sagas_are_counted_by_definition_and_status(harness) -> None:
    first = await harness.saga((await harness.place()).saga.saga_id)
    labels = {"definition": first.definition_name, "version": str(first.definition_version)}
    started = _sample("saga_sagas_started_total", **labels)
    cancelled = _sample("saga_sagas_finished_total", **labels, status="COMPENSATED")
    placed = await harness.place()
    assert _sample("saga_sagas_started_total", **labels) == started + 1
    harness.clock.advance(9.9 + 0.2)
    await harness.scheduler.tick()
    await harness.reply(
        placed.saga.saga_id, InventoryReleased(order_id=placed.order.order_id, released_lines=1)
    )
    assert _sample("saga_sagas_finished_total", **labels, status="COMPENSATED") >= cancelled + 1
