"""The SVG drawing of a workflow definition, and the path a saga's history traces on it."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest

from orchestrator.domain.diagram import graph, mermaid
from orchestrator.domain.order_workflow import order_workflow
from orchestrator.domain.status import SagaStatus, StepStatus
from orchestrator.domain.svg import Moment, _layout, saga_path, svg
from orchestrator.domain.workflow import Compensation, Step, WorkflowDefinition
from sagakit.contracts import ReleaseInventory

pytestmark = pytest.mark.unit

NS = {"svg": "http://www.w3.org/2000/svg"}
ORDER = graph(order_workflow())


def parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def groups(root: ET.Element, kind: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{{{NS['svg']}}}g") if kind in (g.get("class") or "").split()]


def history(*lines: tuple[str, str | None, str | None]) -> list[Moment]:
    return [Moment(event, step, to) for event, step, to in lines]


def edge_kinds(path_taken: set[int]) -> list[tuple[str, str, str]]:
    return sorted(
        (ORDER.edges[i].source, ORDER.edges[i].kind, ORDER.edges[i].target) for i in path_taken
    )


def test_every_node_and_every_edge_of_the_chart_is_drawn_once() -> None:
    root = parse(svg(ORDER))
    drawn = [g.get("data-node") for g in groups(root, "node")]
    assert drawn == [n.id for n in ORDER.nodes]
    edges = [(g.get("data-source"), g.get("data-target")) for g in groups(root, "edge")]
    assert sorted(edges) == sorted((e.source, e.target) for e in ORDER.edges)
    # The same arrows as the Mermaid chart of the README.
    assert len(edges) == sum("->" in line for line in mermaid(order_workflow()).splitlines())


def test_the_drawing_is_standalone_and_boxes_never_overlap() -> None:
    text = svg(ORDER)
    assert "<script" not in text
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    boxes, width, height = _layout(ORDER)
    for a, b in itertools.combinations(boxes.values(), 2):
        apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
        assert apart, (a, b)
    for box in boxes.values():
        assert box.x >= 0
        assert box.x + box.w <= width
        assert box.y >= 0
        assert box.y + box.h <= height


def test_steps_run_down_and_their_compensations_sit_beside_them() -> None:
    boxes, _, _ = _layout(ORDER)
    steps = ["reserve_inventory", "process_payment", "send_notification"]
    ys = [boxes[f"do_{s}"].y for s in steps]
    assert ys == sorted(ys)
    for s in steps:
        assert boxes[f"undo_{s}"].y == boxes[f"do_{s}"].y
        assert boxes[f"undo_{s}"].x > boxes[f"do_{s}"].x
    assert boxes["COMPLETED"].y > ys[-1]
    assert boxes["COMPENSATED"].y < ys[0]


def test_a_declined_card_lights_the_path_through_the_release_to_compensated() -> None:
    path = saga_path(
        ORDER,
        history(
            ("saga_started", None, "RUNNING"),
            ("command_sent", "reserve_inventory", None),
            ("step_succeeded", "reserve_inventory", None),
            ("command_sent", "process_payment", None),
            ("step_failed", "process_payment", None),
            ("compensation_started", None, "COMPENSATING"),
            ("command_sent", "reserve_inventory:compensate", None),
            ("step_compensated", "reserve_inventory:compensate", None),
            ("saga_finished", None, "COMPENSATED"),
        ),
        status=SagaStatus.COMPENSATED,
        step_statuses=[
            ("reserve_inventory", StepStatus.COMPENSATED),
            ("process_payment", StepStatus.FAILED),
            ("send_notification", StepStatus.PENDING),
        ],
    )
    assert path.visited == {
        "start",
        "do_reserve_inventory",
        "do_process_payment",
        "undo_reserve_inventory",
        "COMPENSATED",
    }
    assert edge_kinds(path.taken) == [
        ("do_process_payment", "failed", "undo_reserve_inventory"),
        ("do_reserve_inventory", "ok", "do_process_payment"),
        ("start", "start", "do_reserve_inventory"),
        ("undo_reserve_inventory", "ok", "COMPENSATED"),
    ]
    assert path.current == "COMPENSATED"
    assert path.states["do_process_payment"] == "failed"
    assert path.states["undo_reserve_inventory"] == "succeeded"
    root = parse(svg(ORDER, path))
    taken = [(g.get("data-source"), g.get("data-target")) for g in groups(root, "taken")]
    assert len(taken) == 4
    (current,) = groups(root, "current")
    assert current.get("data-node") == "COMPENSATED"


def test_a_running_saga_is_where_its_last_command_went() -> None:
    path = saga_path(
        ORDER,
        history(
            ("saga_started", None, "RUNNING"),
            ("command_sent", "reserve_inventory", None),
            ("step_succeeded", "reserve_inventory", None),
            ("command_sent", "process_payment", None),
        ),
        status=SagaStatus.RUNNING,
        step_statuses=[
            ("reserve_inventory", StepStatus.SUCCEEDED),
            ("process_payment", StepStatus.RUNNING),
            ("send_notification", StepStatus.PENDING),
        ],
    )
    assert path.current == "do_process_payment"
    assert path.states["do_process_payment"] == "running"
    assert not path.visited & {"COMPLETED", "COMPENSATED", "FAILED", "COMPENSATION_FAILED"}
    assert "● now" in svg(ORDER, path)


def test_a_cancel_takes_the_no_reply_arrow_and_a_timed_out_email_that_was_sent_goes_on() -> None:
    cancelled = saga_path(
        ORDER,
        history(
            ("saga_started", None, "RUNNING"),
            ("command_sent", "reserve_inventory", None),
            ("operator_cancel", "reserve_inventory", None),
            ("command_sent", "reserve_inventory:compensate", None),
        ),
        status=SagaStatus.COMPENSATING,
    )
    assert ("do_reserve_inventory", "no_reply", "undo_reserve_inventory") in edge_kinds(
        cancelled.taken
    )
    was_sent = saga_path(
        ORDER,
        history(
            ("saga_started", None, "RUNNING"),
            ("command_sent", "reserve_inventory", None),
            ("step_succeeded", "reserve_inventory", None),
            ("command_sent", "process_payment", None),
            ("step_succeeded", "process_payment", None),
            ("command_sent", "send_notification", None),
            ("step_timed_out", "send_notification", None),
            ("command_sent", "send_notification:compensate", None),
            ("compensation_abandoned", None, "RUNNING"),
            ("saga_finished", None, "COMPLETED"),
        ),
        status=SagaStatus.COMPLETED,
    )
    assert edge_kinds(was_sent.taken)[-2:] == [
        ("start", "start", "do_reserve_inventory"),
        ("undo_send_notification", "was_done", "COMPLETED"),
    ]
    assert was_sent.states["COMPLETED"] == "succeeded"


def test_retries_stay_on_the_undo_and_an_operator_retry_starts_from_the_parked_status() -> None:
    path = saga_path(
        ORDER,
        history(
            ("saga_started", None, "RUNNING"),
            ("command_sent", "reserve_inventory", None),
            ("step_timed_out", "reserve_inventory", None),
            ("command_sent", "reserve_inventory:compensate", None),
            ("compensation_failed", "reserve_inventory:compensate", None),
            ("compensation_retried", "reserve_inventory:compensate", None),
            ("command_sent", "reserve_inventory:compensate", None),
            ("compensation_failed", "reserve_inventory:compensate", None),
            ("saga_finished", None, "COMPENSATION_FAILED"),
            ("operator_retry", None, "COMPENSATING"),
            ("command_sent", "reserve_inventory:compensate", None),
        ),
        status=SagaStatus.COMPENSATING,
        step_statuses=[("reserve_inventory", StepStatus.COMPENSATING)],
    )
    assert edge_kinds(path.taken) == [
        ("do_reserve_inventory", "no_reply", "undo_reserve_inventory"),
        ("start", "start", "do_reserve_inventory"),
        ("undo_reserve_inventory", "exhausted", "COMPENSATION_FAILED"),
    ]
    assert path.current == "undo_reserve_inventory"
    assert path.states["undo_reserve_inventory"] == "running"


def test_any_definition_is_drawn_and_its_text_is_escaped() -> None:
    def release(ctx: dict[str, object]) -> ReleaseInventory:
        raise RuntimeError("not walkable")

    definition = WorkflowDefinition(
        name="odd",
        version=3,
        steps=(
            Step("first", release, "a<b>.commands", "a.replies", 1.0),
            Step(
                "second",
                release,
                "c&d.commands",
                "c.replies",
                1.0,
                compensation=Compensation(release, "c&d.commands", "c.replies", 1.0),
            ),
        ),
        on_completed=lambda ctx, reason: release(ctx),
        on_cancelled=lambda ctx, reason: release(ctx),
        on_needs_attention=lambda ctx, reason: release(ctx),
    )
    chart = graph(definition)
    text = svg(chart, title="odd <v3>")
    root = parse(text)  # well-formed despite '<' and '&' in the names
    assert "a&lt;b&gt;.commands" in text
    assert {g.get("data-node") for g in groups(root, "node")} == {n.id for n in chart.nodes}
    assert "undo_first" not in {n.id for n in chart.nodes}
