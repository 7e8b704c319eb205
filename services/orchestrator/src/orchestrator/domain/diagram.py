"""A workflow definition drawn as a Mermaid flowchart, with the engine's rules of motion.

Steps run in order; a success reply goes on to the next step (after the last: ``COMPLETED``).
A failure reply undoes the steps done before, latest first; no reply in time undoes the step
itself too, since it may have been done. A compensation that fails or gets no reply is retried
with backoff, and out of attempts the saga is ``COMPENSATION_FAILED``. A compensation may answer
that its step had been done and cannot be undone (``StepWasDone``): the saga then goes forward.

Arrows carry the reply types when the definition can be walked on the contracts' examples
(``walkthrough``); otherwise plain "ok" and "failed". Pure: a string in, a string out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.domain.status import ORDER_STATUS_FOR, SagaStatus
from orchestrator.domain.walkthrough import WalkedStep, WalkError, walk
from orchestrator.domain.workflow import Step, WorkflowDefinition
from sagakit.contracts import ROUTES, CommandRoute, Routes, StepWasDone

NO_REPLY = "no reply in time"


@dataclass
class _Chart:
    lines: list[str] = field(default_factory=list)
    terminals: list[SagaStatus] = field(default_factory=list)

    def edge(self, source: str, label: str, target: str, *, dotted: bool = False) -> None:
        arrow = f'-. "{label}" .->' if dotted else f'-- "{label}" -->'
        self.lines.append(f"    {source} {arrow} {target}")
        for status in SagaStatus:
            if target == status.value and status not in self.terminals:
                self.terminals.append(status)


def mermaid(definition: WorkflowDefinition, routes: Routes = ROUTES) -> str:
    """The flowchart's source (without the ```mermaid fence)."""
    try:
        walked: dict[str, WalkedStep] = {w.step.name: w for w in walk(definition, routes)}
    except WalkError:
        walked = {}
    steps = definition.steps
    chart = _Chart()
    nodes = ['    start(["order placed"])']
    chart.lines.append(f"    start --> {_do(steps[0])}")
    for i, step in enumerate(steps):
        command = walked[step.name].command if step.name in walked else None
        undo = walked[step.name].compensation if step.name in walked else None
        nodes.append(f'    {_do(step)}["{_box(step.name, command, step.topic)}"]')
        if step.compensation is not None:
            box = _box(f"undo {step.name}", undo, step.compensation.topic)
            nodes.append(f'    {_undo(step)}["{box}"]:::undo')
        _step_edges(chart, steps, i, command)
        if step.compensation is not None:
            _compensation_edges(chart, steps, i, undo)
    for status in chart.terminals:
        shape = f'{status.value}(["{status.value}<br/>order {ORDER_STATUS_FOR[status].value}"])'
        style = "done" if status == SagaStatus.COMPLETED else "stopped"
        nodes.append(f"    {shape}:::{style}")
    styles = [
        "    classDef undo fill:#fdf2e9,stroke:#d35400",
        "    classDef done fill:#e9f7ef,stroke:#1e8449",
        "    classDef stopped fill:#fdedec,stroke:#922b21",
    ]
    return "\n".join(["flowchart TD", *nodes, *chart.lines, *styles]) + "\n"


def _step_edges(chart: _Chart, steps: tuple[Step, ...], i: int, route: CommandRoute | None) -> None:
    step = steps[i]
    chart.edge(_do(step), _replies(route, succeeded=True) or "ok", _forward(steps, i))
    failed = _replies(route, succeeded=False) if route is not None else "failed"
    if failed:
        chart.edge(_do(step), failed, _undo_from(steps, i - 1, SagaStatus.FAILED))
    chart.edge(_do(step), NO_REPLY, _undo_from(steps, i, SagaStatus.FAILED), dotted=True)


def _compensation_edges(
    chart: _Chart, steps: tuple[Step, ...], i: int, route: CommandRoute | None
) -> None:
    undo = _undo(steps[i])
    chart.edge(undo, _replies(route, succeeded=True) or "ok", _undo_from(steps, i - 1, None))
    failed = _replies(route, succeeded=False) if route is not None else "failed"
    label = f"{failed + ' / ' if failed else ''}{NO_REPLY}, retried until out of attempts"
    chart.edge(undo, label, SagaStatus.COMPENSATION_FAILED, dotted=True)
    was_done = _replies(route, succeeded=True, was_done=True)
    if was_done:
        # Reached from this step's own timeout, nothing undone yet: the saga goes forward.
        chart.edge(undo, f"{was_done}: it had been done", _forward(steps, i))
        if any(s.compensation is not None for s in steps[i + 1 :]):
            label = f"{was_done}, after later steps were undone"
            chart.edge(undo, label, SagaStatus.COMPENSATION_FAILED)


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


def _box(title: str, route: CommandRoute | None, topic: str) -> str:
    sent = f"{route.command.message_type} → " if route is not None else "→ "
    return f"<b>{title}</b><br/>{sent}{topic}"


def _do(step: Step) -> str:
    return f"do_{step.name}"


def _undo(step: Step) -> str:
    return f"undo_{step.name}"
