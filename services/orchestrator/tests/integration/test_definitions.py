"""The engine runs any definition: versions are kept per saga, and a workflow with an extra step,
defined only here, runs on the same engine unchanged."""

import uuid

import pytest
from orchestrator_harness import Harness

from orchestrator.domain.order_workflow import order_workflow
from orchestrator.domain.status import OrderStatus, SagaStatus
from orchestrator.domain.workflow import Compensation, Step, WorkflowDefinition, WorkflowRegistry
from sagakit.contracts import (
    REGISTRY,
    InventoryReleased,
    InventoryReserved,
    OrderConfirmationSent,
    PaymentProcessed,
    PaymentRefunded,
    PricedLine,
    SuccessReply,
)
from sagakit.contracts.base import FailureReply
from sagakit.messaging.registry import Message, MessageRegistry

pytestmark = pytest.mark.integration

LINES = [PricedLine(product_id="widget", quantity=2, unit_price=1999, line_total=3998)]

# A shipping participant that exists only in this test.
SHIPPING = MessageRegistry()
for model in REGISTRY:
    SHIPPING.register(model)


@SHIPPING.register
class ScheduleShipment(Message):
    message_type = "ScheduleShipment"
    order_id: uuid.UUID


@SHIPPING.register
class CancelShipment(Message):
    message_type = "CancelShipment"
    order_id: uuid.UUID


@SHIPPING.register
class ShipmentScheduled(SuccessReply):
    message_type = "ShipmentScheduled"
    tracking: str


@SHIPPING.register
class ShipmentCancelled(SuccessReply):
    message_type = "ShipmentCancelled"


@SHIPPING.register
class ShipmentRefused(FailureReply):
    message_type = "ShipmentRefused"


def with_shipping() -> WorkflowDefinition:
    base = order_workflow(step_timeout_s=10)
    shipping = Step(
        name="schedule_shipment",
        command=lambda ctx: ScheduleShipment(order_id=uuid.UUID(ctx["order_id"])),
        topic="shipping.commands",
        reply_topic="shipping.replies",
        timeout_s=10,
        on_success=lambda ctx, reply: {**ctx, "tracking": reply.tracking},  # type: ignore[attr-defined]
        compensation=Compensation(
            command=lambda ctx: CancelShipment(order_id=uuid.UUID(ctx["order_id"])),
            topic="shipping.commands",
            reply_topic="shipping.replies",
            timeout_s=10,
        ),
    )
    steps = (*base.steps[:2], shipping, base.steps[2])
    return WorkflowDefinition(
        name="order_with_shipping",
        version=1,
        steps=steps,
        on_completed=base.on_completed,
        on_cancelled=base.on_cancelled,
        on_needs_attention=base.on_needs_attention,
    )


@pytest.fixture
def shipping_harness(orchestrator_sessions, orchestrator_database):  # type: ignore[no-untyped-def]
    workflows = WorkflowRegistry()
    workflows.register(order_workflow(step_timeout_s=10))
    workflows.register(with_shipping())
    return Harness(
        orchestrator_sessions,
        orchestrator_database,
        workflows=workflows,
        workflow="order_with_shipping",
        registry=SHIPPING,
    )


async def test_a_workflow_with_an_extra_step_completes(shipping_harness) -> None:
    h = shipping_harness
    placed = await h.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await h.reply(
        saga_id, InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    )
    await h.reply(
        saga_id, PaymentProcessed(order_id=order_id, payment_id="pi", amount=3998, currency="USD")
    )
    shipment = await h.last_command(saga_id)
    assert shipment.message_type == "ScheduleShipment"
    assert [s.topic for s in await h.sent(saga_id)][-1] == "shipping.commands"
    await h.reply(saga_id, ShipmentScheduled(order_id=order_id, tracking="TRK1"))
    await h.reply(saga_id, OrderConfirmationSent(order_id=order_id, smtp_message_id="<m>"))
    saga = await h.saga(saga_id)
    assert saga.status == SagaStatus.COMPLETED
    assert (saga.definition_name, saga.context["tracking"]) == ("order_with_shipping", "TRK1")
    assert (await h.order(order_id)).status == OrderStatus.CONFIRMED


async def test_the_extra_step_is_compensated_in_reverse_order(shipping_harness) -> None:
    h = shipping_harness
    placed = await h.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    await h.reply(
        saga_id, InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    )
    await h.reply(
        saga_id, PaymentProcessed(order_id=order_id, payment_id="pi", amount=3998, currency="USD")
    )
    await h.reply(saga_id, ShipmentRefused(order_id=order_id, reason="NO_CARRIER"))
    await h.reply(saga_id, PaymentRefunded(order_id=order_id, refund_id="re", amount=3998))
    await h.reply(saga_id, InventoryReleased(order_id=order_id, released_lines=1))
    assert await h.command_types(saga_id) == [
        "ReserveInventory",
        "ProcessPayment",
        "ScheduleShipment",
        "RefundPayment",
        "ReleaseInventory",
    ]
    assert (await h.saga(saga_id)).status == SagaStatus.COMPENSATED


async def test_a_saga_finishes_on_the_version_it_started_with(
    orchestrator_sessions, orchestrator_database
) -> None:
    v1 = order_workflow(step_timeout_s=10)
    workflows = WorkflowRegistry()
    workflows.register(v1)
    h = Harness(orchestrator_sessions, orchestrator_database, workflows=workflows)
    placed = await h.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id

    # Version 2 is deployed (it skips the notification) while the v1 saga is in flight.
    v2 = WorkflowDefinition(
        name="order",
        version=2,
        steps=v1.steps[:2],
        on_completed=v1.on_completed,
        on_cancelled=v1.on_cancelled,
        on_needs_attention=v1.on_needs_attention,
    )
    workflows.register(v2)
    await h.reply(
        saga_id, InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    )
    await h.reply(
        saga_id, PaymentProcessed(order_id=order_id, payment_id="pi", amount=3998, currency="USD")
    )
    assert (await h.last_command(saga_id)).message_type == "SendOrderConfirmation"  # still v1
    saga = await h.saga(saga_id)
    assert (saga.definition_version, saga.status) == (1, SagaStatus.RUNNING)

    h.use(workflows.latest("order"))
    newer = await h.place()
    assert (await h.saga(newer.saga.saga_id)).definition_version == 2
