"""Which messages a workflow definition sends and waits for, found by walking its happy path.

A step's command is a function of the saga's context, so a definition does not name the message
it sends. Walking it on the contracts' examples does: start from the context of the example
order, build each step's command and compensation, look up their routes (``sagakit.contracts``),
and go on with the context the step's success reply (its example) leaves. The diagrams are drawn
from the result, and the tests check with it that every step sends its command to the topic its
route names and waits on the route's reply topic. Pure: nothing is sent or stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from orchestrator.domain.order_workflow import order_context
from orchestrator.domain.workflow import CommandBuilder, Context, Step, WorkflowDefinition
from sagakit.contracts import ROUTES, CommandRoute, PlaceOrder, Reply, Routes, StepWasDone


class WalkError(Exception):
    """The definition could not be walked on the examples (a builder failed, a route or an
    example is missing)."""


@dataclass(frozen=True)
class WalkedStep:
    step: Step
    command: CommandRoute
    compensation: CommandRoute | None


def walk(definition: WorkflowDefinition, routes: Routes = ROUTES) -> list[WalkedStep]:
    assert PlaceOrder.example is not None
    order = PlaceOrder.model_validate(PlaceOrder.example)
    context = order_context(order, uuid.UUID(int=0))
    walked = []
    for step in definition.steps:
        command = _route(step.name, step.command, context, routes)
        compensation = None
        if step.compensation is not None:
            compensation = _route(
                step.compensation_step, step.compensation.command, context, routes
            )
        walked.append(WalkedStep(step, command, compensation))
        if step.on_success is not None:
            context = step.on_success(dict(context), _success_example(step.name, command))
    return walked


def mismatches(walked: list[WalkedStep]) -> list[str]:
    """Where a definition sends a command, or waits for its reply, off its declared route."""
    problems = []
    for w in walked:
        pairs = [(w.step.name, w.command, w.step.topic, w.step.reply_topic)]
        if w.compensation is not None and w.step.compensation is not None:
            c = w.step.compensation
            pairs.append((w.step.compensation_step, w.compensation, c.topic, c.reply_topic))
        for name, route, topic, reply_topic in pairs:
            sent = route.command.message_type
            if topic != route.topic:
                problems.append(f"{name}: sends {sent} to {topic}, its route says {route.topic}")
            if reply_topic != route.reply_topic:
                problems.append(
                    f"{name}: waits on {reply_topic}, {sent} is answered on {route.reply_topic}"
                )
    return problems


def _route(name: str, build: CommandBuilder, context: Context, routes: Routes) -> CommandRoute:
    try:
        message = build(dict(context))
    except Exception as exc:
        raise WalkError(f"{name}: its command cannot be built from the example: {exc!r}") from exc
    try:
        route: CommandRoute = routes.for_command(message.message_type)
    except LookupError as exc:
        raise WalkError(f"{name}: {exc}") from None
    return route


def _success_example(name: str, route: CommandRoute) -> Reply:
    for reply in route.replies:
        if reply.succeeded and not issubclass(reply, StepWasDone) and reply.example is not None:
            return reply.model_validate(reply.example)
    raise WalkError(f"{name}: no success reply of {route.command.message_type} has an example")
