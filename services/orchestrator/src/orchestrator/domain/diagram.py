"""A workflow definition drawn as a Mermaid flowchart, with the engine's rules of motion.

Steps run in order; a success reply goes on to the next step (after the last: ``COMPLETED``).
A failure reply undoes the steps done before, latest first; no reply in time undoes the step
itself too, since it may have been done. A compensation that fails or gets no reply is retried
with backoff, and out of attempts the saga is ``COMPENSATION_FAILED``. A compensation may answer
that its step had been done and cannot be undone (``StepWasDone``): the saga then goes forward.

Arrows carry the reply types when the definition can be walked on the contracts' examples
(``walkthrough``); otherwise plain "ok" and "failed". ``graph`` gives the chart as nodes and
edges (the console draws it as SVG, ``svg.py``); ``mermaid`` writes it as Mermaid. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.domain.status import ORDER_STATUS_FOR, SagaStatus
from orchestrator.domain.walkthrough import WalkedStep, WalkError, walk
from orchestrator.domain.workflow import Step, WorkflowDefinition
from sagakit.contracts import ROUTES, CommandRoute, Routes, StepWasDone

NO_REPLY = "no reply in time"


@dataclass(frozen=True, slots=True)
class Node:
    """A box of the chart: ``start``, a step (``do``), its compensation (``undo``) or a terminal
    saga status (``end``)."""

    id: str
    kind: str
    title: str
    sends: str | None = None  # the command's message type, when the walk found it
    topic: str | None = None
    position: int | None = None  # the step's position in the definition
    status: SagaStatus | None = None  # of an ``end`` node
    subtitle: str | None = None  # of an ``end`` node: the order status it ends with


@dataclass(frozen=True, slots=True)
class Edge:
    """An arrow. ``kind`` says which event takes it: ``start``, ``ok`` (a success reply),
    ``failed`` (a failure reply), ``no_reply`` (deadline passed, or an operator's cancel),
    ``exhausted`` (compensation out of attempts), ``was_done`` (``StepWasDone``)."""

    source: str
    target: str
    label: str
    kind: str
    dotted: bool = False


@dataclass
class Graph:
    """A definition as nodes and edges, for any renderer (Mermaid here, SVG in ``svg``)."""

    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def edge(
        self, source: str, label: str, target: str, kind: str, *, dotted: bool = False
    ) -> None:
        self.edges.append(Edge(source, target, label, kind, dotted))


def graph(definition: WorkflowDefinition, routes: Routes = ROUTES) -> Graph:
    """The chart of ``definition``: every step, its compensation, every way the engine moves."""
    try:
        walked: dict[str, WalkedStep] = {w.step.name: w for w in walk(definition, routes)}
    except WalkError:
        walked = {}
    steps = definition.steps
    chart = Graph()
    chart.nodes.append(Node("start", "start", "order placed"))
    chart.edge("start", "", _do(steps[0]), "start")
    for i, step in enumerate(steps):
        command = walked[step.name].command if step.name in walked else None
        undo = walked[step.name].compensation if step.name in walked else None
        sends = command.command.message_type if command is not None else None
        chart.nodes.append(Node(_do(step), "do", step.name, sends, step.topic, i))
        if step.compensation is not None:
            undo_sends = undo.command.message_type if undo is not None else None
            title = f"undo {step.name}"
            chart.nodes.append(
                Node(_undo(step), "undo", title, undo_sends, step.compensation.topic, i)
            )
        _step_edges(chart, steps, i, command)
        if step.compensation is not None:
            _compensation_edges(chart, steps, i, undo)
    ends: list[SagaStatus] = []
    for edge in chart.edges:
        for status in SagaStatus:
            if edge.target == status.value and status not in ends:
                ends.append(status)
    for status in ends:
        order = f"order {ORDER_STATUS_FOR[status].value}"
        chart.nodes.append(Node(status.value, "end", status.value, status=status, subtitle=order))
    return chart


def mermaid(definition: WorkflowDefinition, routes: Routes = ROUTES) -> str:
    """The flowchart's source (without the ```mermaid fence)."""
    chart = graph(definition, routes)
    nodes = []
    for node in chart.nodes:
        if node.kind == "start":
            nodes.append(f'    {node.id}(["{node.title}"])')
        elif node.kind in ("do", "undo"):
            style = ":::undo" if node.kind == "undo" else ""
            nodes.append(f'    {node.id}["{_box(node.title, node.sends, node.topic)}"]{style}')
        else:
            shape = f'{node.id}(["{node.title}<br/>{node.subtitle}"])'
            style = "done" if node.status == SagaStatus.COMPLETED else "stopped"
            nodes.append(f"    {shape}:::{style}")
    lines = []
    for edge in chart.edges:
        if edge.kind == "start":
            lines.append(f"    {edge.source} --> {edge.target}")
        else:
            arrow = f'-. "{edge.label}" .->' if edge.dotted else f'-- "{edge.label}" -->'
            lines.append(f"    {edge.source} {arrow} {edge.target}")
    styles = [
        "    classDef undo fill:#fdf2e9,stroke:#d35400",
        "    classDef done fill:#e9f7ef,stroke:#1e8449",
        "    classDef stopped fill:#fdedec,stroke:#922b21",
    ]
    return "\n".join(["flowchart TD", *nodes, *lines, *styles]) + "\n"


def _step_edges(chart: Graph, steps: tuple[Step, ...], i: int, route: CommandRoute | None) -> None:
    step = steps[i]
    chart.edge(_do(step), _replies(route, succeeded=True) or "ok", _forward(steps, i), "ok")
    failed = _replies(route, succeeded=False) if route is not None else "failed"
    if failed:
        chart.edge(_do(step), failed, _undo_from(steps, i - 1, SagaStatus.FAILED), "failed")
    target = _undo_from(steps, i, SagaStatus.FAILED)
    chart.edge(_do(step), NO_REPLY, target, "no_reply", dotted=True)


def _compensation_edges(
    chart: Graph, steps: tuple[Step, ...], i: int, route: CommandRoute | None
) -> None:
    undo = _undo(steps[i])
    ok = _replies(route, succeeded=True) or "ok"
    chart.edge(undo, ok, _undo_from(steps, i - 1, None), "ok")
    failed = _replies(route, succeeded=False) if route is not None else "failed"
    label = f"{failed + ' / ' if failed else ''}{NO_REPLY}, retried until out of attempts"
    chart.edge(undo, label, SagaStatus.COMPENSATION_FAILED, "exhausted", dotted=True)
    was_done = _replies(route, succeeded=True, was_done=True)
    if was_done:
        # Reached from this step's own timeout, nothing undone yet: the saga goes forward.
        chart.edge(undo, f"{was_done}: it had been done", _forward(steps, i), "was_done")
        if any(s.compensation is not None for s in steps[i + 1 :]):
            label = f"{was_done}, after later steps were undone"
            chart.edge(undo, label, SagaStatus.COMPENSATION_FAILED, "was_done")


def _replies(route: CommandRoute | None, *, succeeded: bool, was_done: bool = False) -> str:
    if route is None:
        return ""
    names = [
        r.message_type
        for r in route.replies
        if r.succeeded == succeeded and issubclass(r, StepWasDone) == was_done
    ]
    return " / ".join(names)


def _forward(steps: tuple[Step, ...], i: int) -> str:
    return _do(steps[i + 1]) if i + 1 < len(steps) else SagaStatus.COMPLETED.value


def _undo_from(steps: tuple[Step, ...], i: int, nothing_to_undo: SagaStatus | None) -> str:
    """The compensation of the latest step at or before ``i`` that has one; if none, the saga
    ends: ``nothing_to_undo`` (``FAILED``), or ``COMPENSATED`` once something was undone."""
    for step in reversed(steps[: i + 1]):
        if step.compensation is not None:
            return _undo(step)
    return (nothing_to_undo or SagaStatus.COMPENSATED).value


def _box(title: str, sends: str | None, topic: str | None) -> str:
    sent = f"{sends} → " if sends is not None else "→ "
    return f"<b>{title}</b><br/>{sent}{topic}"


def _do(step: Step) -> str:
    return f"do_{step.name}"


def _undo(step: Step) -> str:
    return f"undo_{step.name}"
