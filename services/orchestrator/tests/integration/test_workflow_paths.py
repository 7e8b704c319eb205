"""Every path of the order workflow diagram, on the real engine and the real database."""

import pytest

from orchestrator.domain.status import OrderStatus, SagaStatus, StepStatus
from sagakit.contracts import (
    InventoryReleased,
    InventoryReservationFailed,
    InventoryReserved,
    NotificationFailed,
    OrderConfirmationSent,
    PaymentDeclined,
    PaymentProcessed,
    PaymentRefunded,
    PricedLine,
)

pytestmark = pytest.mark.integration

LINES = [PricedLine(product_id="widget", quantity=2, unit_price=1999, line_total=3998)]


def reserved(order_id):  # type: ignore[no-untyped-def]
    return InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")


async def test_success_confirms_the_order_with_the_catalog_total(harness) -> None:
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    assert await harness.command_types(saga_id) == ["ReserveInventory"]

    await harness.reply(saga_id, reserved(order_id))
    payment = await harness.last_command(saga_id)
    assert payment.message_type == "ProcessPayment"
    assert payment.payload.amount == 3998  # from the inventory reply, not the client

    await harness.reply(
        saga_id, PaymentProcessed(order_id=order_id, payment_id="pi_1", amount=3998, currency="USD")
    )
    notify = await harness.last_command(saga_id)
    assert notify.message_type == "SendOrderConfirmation"
    assert notify.payload.total == 3998
    await harness.reply(saga_id, OrderConfirmationSent(order_id=order_id, smtp_message_id="<m>"))

    saga = await harness.saga(saga_id)
    assert saga.status == SagaStatus.COMPLETED
    assert [s.status for s in saga.steps] == [StepStatus.SUCCEEDED] * 3
    assert saga.deadline_at is None
    order = await harness.order(order_id)
    assert (order.status, order.total) == (OrderStatus.CONFIRMED, 3998)
    events = [s for s in await harness.sent(saga_id) if s.topic == "order.events"]
    assert [e.envelope.message_type for e in events] == ["OrderConfirmed"]
    assert events[0].envelope.payload.total == 3998
    history = [(e.event, e.to_status) for e in await harness.history(saga_id)]
    assert history[0] == ("saga_started", "RUNNING")
    assert history[-1] == ("saga_finished", "COMPLETED")


async def test_reservation_failure_has_nothing_to_undo(harness) -> None:
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await harness.reply(
        saga_id,
        InventoryReservationFailed(
            order_id=order_id, reason="INSUFFICIENT_STOCK", detail="widget: 2 wanted, 1 left"
        ),
    )

    saga = await harness.saga(saga_id)
    assert saga.status == SagaStatus.FAILED
    assert "INSUFFICIENT_STOCK" in saga.failure_reason
    assert (await harness.order(order_id)).status == OrderStatus.CANCELLED
    assert await harness.command_types(saga_id) == ["ReserveInventory"]  # no compensation
    events = [s.envelope for s in await harness.sent(saga_id) if s.topic == "order.events"]
    assert [e.message_type for e in events] == ["OrderCancelled"]


async def test_payment_declined_releases_the_inventory(harness) -> None:
    placed = await harness.place("pm_card_chargeDeclined")
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await harness.reply(saga_id, reserved(order_id))
    await harness.reply(saga_id, PaymentDeclined(order_id=order_id, reason="generic_decline"))

    release = await harness.last_command(saga_id)
    assert release.message_type == "ReleaseInventory"
    assert release.step == "reserve_inventory:compensate"
    assert (await harness.saga(saga_id)).status == SagaStatus.COMPENSATING

    await harness.reply(saga_id, InventoryReleased(order_id=order_id, released_lines=1))
    saga = await harness.saga(saga_id)
    assert saga.status == SagaStatus.COMPENSATED
    assert [s.status for s in saga.steps] == [
        StepStatus.COMPENSATED,
        StepStatus.FAILED,
        StepStatus.PENDING,
    ]
    assert (await harness.order(order_id)).status == OrderStatus.CANCELLED


async def test_notification_failure_refunds_then_releases_in_reverse_order(harness) -> None:
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await harness.reply(saga_id, reserved(order_id))
    await harness.reply(
        saga_id, PaymentProcessed(order_id=order_id, payment_id="pi_1", amount=3998, currency="USD")
    )
    await harness.reply(saga_id, NotificationFailed(order_id=order_id, reason="SMTP_REJECTED"))
    assert (await harness.last_command(saga_id)).message_type == "RefundPayment"
    await harness.reply(saga_id, PaymentRefunded(order_id=order_id, refund_id="re_1", amount=3998))
    assert (await harness.last_command(saga_id)).message_type == "ReleaseInventory"
    await harness.reply(saga_id, InventoryReleased(order_id=order_id, released_lines=1))

    assert await harness.command_types(saga_id) == [
        "ReserveInventory",
        "ProcessPayment",
        "SendOrderConfirmation",
        "RefundPayment",
        "ReleaseInventory",
    ]
    assert (await harness.saga(saga_id)).status == SagaStatus.COMPENSATED
    assert (await harness.order(order_id)).status == OrderStatus.CANCELLED
