"""The workflow definitions follow the published routes, and their diagrams are current."""

from pathlib import Path

import pytest

from orchestrator.bootstrap import default_workflows
from orchestrator.domain.diagram import mermaid
from orchestrator.domain.order_workflow import order_workflow
from orchestrator.domain.walkthrough import WalkError, mismatches, walk
from orchestrator.domain.workflow import Step, WorkflowDefinition
from orchestrator.entrypoints.diagrams import README, WORKFLOWS_DIR, expected
from orchestrator.settings import Settings
from sagakit.contracts import Routes

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[4]
SETTINGS = Settings(SAGA_WORKFLOWS="")


@pytest.mark.parametrize(
    "definition", list(default_workflows(SETTINGS)), ids=lambda d: f"{d.name}-v{d.version}"
)
def test_every_step_sends_its_command_where_the_contract_routes_it(
    definition: WorkflowDefinition,
) -> None:
    walked = walk(definition)
    assert [w.step.name for w in walked] == [s.name for s in definition.steps]
    assert mismatches(walked) == []


def test_the_walk_names_each_steps_command_and_compensation() -> None:
    walked = walk(order_workflow())
    assert [
        (w.command.command.message_type, w.compensation and w.compensation.command.message_type)
        for w in walked
    ] == [
        ("ReserveInventory", "ReleaseInventory"),
        ("ProcessPayment", "RefundPayment"),
        ("SendOrderConfirmation", "VoidOrderConfirmation"),
    ]


def test_a_step_sent_off_its_route_is_reported() -> None:
    v1 = order_workflow()
    reserve = v1.steps[0]
    astray = Step(
        name=reserve.name,
        command=reserve.command,
        topic="payment.commands",
        reply_topic=reserve.reply_topic,
        timeout_s=reserve.timeout_s,
        on_success=reserve.on_success,
    )
    definition = WorkflowDefinition(
        name="astray",
        version=1,
        steps=(astray, *v1.steps[1:]),
        on_completed=v1.on_completed,
        on_cancelled=v1.on_cancelled,
        on_needs_attention=v1.on_needs_attention,
    )
    assert mismatches(walk(definition)) == [
        "reserve_inventory: sends ReserveInventory to payment.commands, its route says "
        "inventory.commands"
    ]


def test_a_command_without_a_route_stops_the_walk_and_the_diagram_still_draws() -> None:
    with pytest.raises(WalkError, match="no route declared"):
        walk(order_workflow(), Routes())
    chart = mermaid(order_workflow(), Routes())
    assert 'do_reserve_inventory -- "ok" --> do_process_payment' in chart
    assert 'do_reserve_inventory -- "failed" --> FAILED' in chart


def test_the_order_diagram_follows_the_engine_rules() -> None:
    chart = mermaid(order_workflow())
    edges = {line.strip() for line in chart.splitlines() if "--" in line or "-." in line}
    assert {
        'do_reserve_inventory -- "InventoryReservationFailed" --> FAILED',
        'do_reserve_inventory -. "no reply in time" .-> undo_reserve_inventory',
        'do_process_payment -- "PaymentDeclined" --> undo_reserve_inventory',
        'undo_process_payment -- "PaymentRefunded" --> undo_reserve_inventory',
        'undo_reserve_inventory -- "InventoryReleased" --> COMPENSATED',
        'do_send_notification -- "OrderConfirmationSent" --> COMPLETED',
        'undo_send_notification -- "OrderConfirmationAlreadySent: it had been done" --> COMPLETED',
    } <= edges


def test_the_committed_diagrams_and_the_readme_are_current(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    files, readme = expected(SETTINGS, README.read_text())
    present = {p.name: p.read_text() for p in WORKFLOWS_DIR.glob("*.md")}
    assert present == files, "run `make diagrams`"
    assert README.read_text() == readme, "run `make diagrams` (README)"
    assert "<!-- diagram: docs/workflows/order-v1.md -->\n```mermaid\nflowchart TD" in readme
