"""A deployment adds a workflow through SAGA_WORKFLOWS or an entry point, not by editing code:
here version 2 of the order workflow with the shipping step of docs/tutorial-new-step.md (its
contracts on a registry and routes of their own, where the tutorial uses REGISTRY and ROUTES)."""

import sys
import types
import uuid
from importlib.metadata import EntryPoint

import pytest

from orchestrator import workflow_plugins
from orchestrator.bootstrap import default_workflows
from orchestrator.domain.diagram import mermaid
from orchestrator.domain.order_workflow import ORDER_WORKFLOW, order_workflow
from orchestrator.domain.walkthrough import mismatches, walk
from orchestrator.domain.workflow import Compensation, Context, Step, WorkflowDefinition
from orchestrator.settings import Settings
from orchestrator.workflow_plugins import ENTRY_POINT_GROUP, WorkflowPluginError, load_factory
from sagakit.contracts import REGISTRY, ROUTES, FailureReply, Reply, Routes, SuccessReply
from sagakit.contracts.types import EXAMPLE_ORDER_ID
from sagakit.messaging.registry import Message, MessageRegistry

pytestmark = pytest.mark.unit

PLUGIN = "saga_test_shipping_plugin"

# The tutorial's shipping contracts, next to copies of the built-in registry and routes.
registry = MessageRegistry()
routes = Routes()
for model in REGISTRY:
    registry.register(model)
for route in ROUTES.commands:
    routes.command(route.command, participant=route.participant, replies=route.replies)
routes.intake(*ROUTES.intake_messages)
routes.event(*ROUTES.event_messages)


@registry.register
class ScheduleShipment(Message):
    message_type = "ScheduleShipment"
    example = {"order_id": EXAMPLE_ORDER_ID, "email": "me@example.com"}
    order_id: uuid.UUID
    email: str


@registry.register
class CancelShipment(Message):
    message_type = "CancelShipment"
    example = {"order_id": EXAMPLE_ORDER_ID}
    order_id: uuid.UUID


@registry.register
class ShipmentScheduled(SuccessReply):
    message_type = "ShipmentScheduled"
    example = {"order_id": EXAMPLE_ORDER_ID, "tracking_number": "1Z999AA10123456784"}
    tracking_number: str


@registry.register
class ShipmentRefused(FailureReply):
    message_type = "ShipmentRefused"
    example = {"order_id": EXAMPLE_ORDER_ID, "reason": "NO_CARRIER"}


@registry.register
class ShipmentCancelled(SuccessReply):
    message_type = "ShipmentCancelled"
    example = {"order_id": EXAMPLE_ORDER_ID}


routes.command(
    ScheduleShipment, participant="shipping", replies=(ShipmentScheduled, ShipmentRefused)
)
routes.command(CancelShipment, participant="shipping", replies=(ShipmentCancelled,))


def remember_tracking(ctx: Context, reply: Reply) -> Context:
    assert isinstance(reply, ShipmentScheduled)
    return {**ctx, "tracking_number": reply.tracking_number}


def order_workflow_v2(settings: Settings) -> WorkflowDefinition:
    v1 = order_workflow(step_timeout_s=settings.step_timeout_s)
    reserve, pay, notify = v1.steps
    ship = Step(
        name="schedule_shipment",
        command=lambda ctx: ScheduleShipment(
            order_id=uuid.UUID(ctx["order_id"]), email=ctx["email"]
        ),
        topic="shipping.commands",
        reply_topic="shipping.replies",
        timeout_s=settings.step_timeout_s,
        on_success=remember_tracking,
        compensation=Compensation(
            command=lambda ctx: CancelShipment(order_id=uuid.UUID(ctx["order_id"])),
            topic="shipping.commands",
            reply_topic="shipping.replies",
            timeout_s=settings.step_timeout_s,
        ),
    )
    return WorkflowDefinition(
        name=ORDER_WORKFLOW,
        version=2,
        steps=(reserve, pay, ship, notify),
        on_completed=v1.on_completed,
        on_cancelled=v1.on_cancelled,
        on_needs_attention=v1.on_needs_attention,
    )


@pytest.fixture(autouse=True)
def plugin_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType(PLUGIN)
    module.order_workflow_v2 = order_workflow_v2  # type: ignore[attr-defined]
    module.not_a_factory = 42  # type: ignore[attr-defined]
    module.wrong = lambda settings: "not a definition"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, PLUGIN, module)
    monkeypatch.setattr(workflow_plugins, "entry_points", lambda group: [])
    return module


def test_the_setting_adds_version_2_and_new_orders_get_it() -> None:
    workflows = default_workflows(Settings(SAGA_WORKFLOWS=f" {PLUGIN}:order_workflow_v2 ,"))
    assert sorted((d.name, d.version) for d in workflows) == [("order", 1), ("order", 2)]
    v2 = workflows.latest("order")
    assert [s.name for s in v2.steps] == [
        "reserve_inventory",
        "process_payment",
        "schedule_shipment",
        "send_notification",
    ]
    assert {"shipping.replies", "inventory.replies"} <= workflows.reply_topics  # subscribed


def test_an_entry_point_adds_it_too(monkeypatch: pytest.MonkeyPatch) -> None:
    point = EntryPoint(
        name="order-v2", value=f"{PLUGIN}:order_workflow_v2", group=ENTRY_POINT_GROUP
    )
    monkeypatch.setattr(workflow_plugins, "entry_points", lambda group: [point])
    workflows = default_workflows(Settings(SAGA_WORKFLOWS=""))
    assert workflows.latest("order").version == 2


def test_the_new_step_follows_its_routes_and_is_drawn() -> None:
    v2 = order_workflow_v2(Settings(SAGA_WORKFLOWS=""))
    walked = walk(v2, routes)
    assert mismatches(walked) == []
    chart = mermaid(v2, routes)
    assert 'do_schedule_shipment -- "ShipmentScheduled" --> do_send_notification' in chart
    assert 'do_schedule_shipment -- "ShipmentRefused" --> undo_process_payment' in chart
    assert 'undo_schedule_shipment -- "ShipmentCancelled" --> undo_process_payment' in chart


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("no_colon", "is not module:function"),
        ("saga_no_such_module_anywhere:f", "cannot import"),
        (f"{PLUGIN}:missing", "has no missing"),
        (f"{PLUGIN}:not_a_factory", "is not callable"),
    ],
)
def test_a_bad_factory_stops_the_service_with_a_clear_message(spec: str, error: str) -> None:
    with pytest.raises(WorkflowPluginError, match=error):
        load_factory(spec)


def test_a_factory_must_return_definitions() -> None:
    with pytest.raises(WorkflowPluginError, match="not a WorkflowDefinition"):
        default_workflows(Settings(SAGA_WORKFLOWS=f"{PLUGIN}:wrong"))


def test_a_version_registered_twice_stops_the_service() -> None:
    spec = f"{PLUGIN}:order_workflow_v2"
    with pytest.raises(ValueError, match="order v2 is registered"):
        default_workflows(Settings(SAGA_WORKFLOWS=f"{spec},{spec}"))
