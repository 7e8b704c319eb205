"""Workflows a deployment adds without touching the engine or ``bootstrap.py``.

Two ways, both loaded at startup by ``default_workflows``:

- the ``SAGA_WORKFLOWS`` setting: ``module:function`` factories, comma separated;
- the ``saga_shop.workflows`` entry-point group of installed packages, in a plugin's
  ``pyproject.toml``: ``[project.entry-points."saga_shop.workflows"] order-v2 = "pkg.mod:fn"``.

A factory takes the orchestrator's ``Settings`` and returns a ``WorkflowDefinition`` or several.
Importing its module is also what registers the plugin's message contracts (``REGISTRY`` and
``ROUTES``, the way ``sagakit.contracts`` registers the built-in ones), so the consumer can read
the new replies. A definition with the name and version of one already registered stops the
service at startup. docs/tutorial-new-step.md walks through a complete plugin.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from functools import reduce
from importlib.metadata import entry_points

from orchestrator.domain.workflow import WorkflowDefinition
from orchestrator.settings import Settings

ENTRY_POINT_GROUP = "saga_shop.workflows"

WorkflowFactory = Callable[[Settings], WorkflowDefinition | Iterable[WorkflowDefinition]]


class WorkflowPluginError(Exception):
    """A configured workflow factory cannot be loaded or returned something else."""


def plugin_workflows(settings: Settings) -> list[WorkflowDefinition]:
    """Every definition the setting's factories and the installed entry points produce."""
    definitions = []
    for origin, factory in _factories(settings):
        produced = factory(settings)
        items = [produced] if isinstance(produced, WorkflowDefinition) else list(produced)
        for item in items:
            if not isinstance(item, WorkflowDefinition):
                raise WorkflowPluginError(f"{origin} returned {item!r}, not a WorkflowDefinition")
        definitions += items
    return definitions


def load_factory(spec: str) -> WorkflowFactory:
    """``package.module:function`` (the function may be an attribute path, ``Class.method``)."""
    module_name, _, attribute = spec.strip().partition(":")
    if not module_name or not attribute:
        raise WorkflowPluginError(f"{spec!r} is not module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WorkflowPluginError(f"{spec!r}: cannot import {module_name}: {exc}") from exc
    try:
        factory = reduce(getattr, attribute.split("."), module)
    except AttributeError:
        raise WorkflowPluginError(f"{spec!r}: {module_name} has no {attribute}") from None
    if not callable(factory):
        raise WorkflowPluginError(f"{spec!r} is not callable")
    result: WorkflowFactory = factory
    return result


def _factories(settings: Settings) -> Iterator[tuple[str, WorkflowFactory]]:
    for spec in settings.workflow_factories:
        yield f"SAGA_WORKFLOWS {spec}", load_factory(spec)
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        origin = f"entry point {entry_point.name} ({entry_point.value})"
        try:
            factory = entry_point.load()
        except (ImportError, AttributeError) as exc:
            raise WorkflowPluginError(f"{origin}: {exc}") from exc
        yield origin, factory
