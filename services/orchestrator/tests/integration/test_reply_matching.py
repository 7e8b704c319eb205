"""A reply is applied only if it answers the saga's current step; anything else is recorded and
ignored (the reference implementations let a redelivered "reserved" move a saga past payment)."""

import uuid

import pytest

from orchestrator.domain.status import SagaStatus, StepStatus
from sagakit.contracts import InventoryReserved, PaymentProcessed, PricedLine
from sagakit.messaging.envelope import Envelope

pytestmark = pytest.mark.integration

LINES = [PricedLine(product_id="widget", quantity=2, unit_price=1999, line_total=3998)]


async def test_a_stale_reply_for_an_earlier_step_is_recorded_and_ignored(harness) -> None:
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    reserve_command = await harness.last_command(saga_id)
    ok = InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    await harness.reply(saga_id, ok)
    assert (await harness.saga(saga_id)).current_step == 1

    # The same "reserved" again (a new message id, as a re-sent reply would have) while the saga
    # waits for payment: it must not move the saga past payment.
    await harness.reply(saga_id, ok, to=reserve_command)

    saga = await harness.saga(saga_id)
    assert (saga.status, saga.current_step) == (SagaStatus.RUNNING, 1)
    assert saga.steps[1].status == StepStatus.RUNNING
    assert await harness.command_types(saga_id) == ["ReserveInventory", "ProcessPayment"]
    ignored = [e for e in await harness.history(saga_id) if e.event == "reply_ignored"]
    assert len(ignored) == 1
    assert "awaits 'process_payment'" in ignored[0].detail


async def test_a_reply_to_another_command_of_the_same_step_is_ignored(harness) -> None:
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    command = await harness.last_command(saga_id)
    forged = Envelope(
        payload=InventoryReserved(order_id=order_id, lines=LINES, total=1, currency="USD"),
        saga_id=saga_id,
        order_id=order_id,
        step=command.step,
        causation_id=uuid.uuid4(),
    )
    await harness.deliver(forged)
    saga = await harness.saga(saga_id)
    assert (saga.current_step, saga.steps[0].status) == (0, StepStatus.RUNNING)
    [ignored] = [e for e in await harness.history(saga_id) if e.event == "reply_ignored"]
    assert "answers command" in ignored.detail


async def test_a_duplicated_reply_changes_nothing_after_it_was_applied(harness) -> None:
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    ok = InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    first = await harness.reply(saga_id, ok)
    await harness.deliver(first)  # the very same envelope again
    await harness.reply(
        saga_id, PaymentProcessed(order_id=order_id, payment_id="pi", amount=3998, currency="USD")
    )
    await harness.deliver(first)  # and once more, two steps later
    assert await harness.command_types(saga_id) == [
        "ReserveInventory",
        "ProcessPayment",
        "SendOrderConfirmation",
    ]
    assert len([e for e in await harness.history(saga_id) if e.event == "reply_ignored"]) == 2


async def test_a_late_reply_after_the_saga_ended_is_ignored(harness) -> None:
    from sagakit.contracts import InventoryReservationFailed

    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    command = await harness.last_command(saga_id)
    await harness.reply(
        saga_id, InventoryReservationFailed(order_id=order_id, reason="UNKNOWN_PRODUCT")
    )
    await harness.reply(
        saga_id,
        InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD"),
        to=command,
    )
    assert (await harness.saga(saga_id)).status == SagaStatus.FAILED
    [ignored] = [e for e in await harness.history(saga_id) if e.event == "reply_ignored"]
    assert "saga is FAILED" in ignored.detail
