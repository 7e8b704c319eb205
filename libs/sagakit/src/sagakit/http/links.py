"""OpenAPI links: which answer of one operation feeds which parameter of another.

A service lists its links once (``Link("POST /orders", 202, "GET /orders/{order_id}",
{"order_id": "$response.body#/order_id"})``) and ``declare_links`` puts them in the app's OpenAPI,
under the source response's ``links`` (named after the target's summary), naming the target by
its ``operationId``. Clients and
tools (schemathesis' stateful fuzzing) follow them to chain calls.

A wrong link is refused when the document is built, not published: an unknown source, status or
target; a parameter the target does not take; a required path parameter of the target left
unset; a ``$response.body#/...`` pointer to a field the source's response schema does not have;
a ``$request.path.x`` the source does not take.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class InvalidLink(ValueError):
    """A declared link that does not match the operations it joins."""


@dataclass(frozen=True)
class Link:
    """From the ``status`` answer of ``source`` to ``target`` (both ``"METHOD /path"``);
    ``parameters`` maps each parameter of the target to an OpenAPI runtime expression
    (``$response.body#/saga_id``, ``$request.path.order_id``, ``$response.header.Location``)."""

    source: str
    status: int
    target: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    description: str = ""

    def __str__(self) -> str:
        return f"{self.source} -> {self.status} -> {self.target}"


def declare_links(app: FastAPI, links: Iterable[Link]) -> None:
    """The app's OpenAPI carries ``links`` (checked when the document is first built)."""
    declared = tuple(links)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        schema = build()
        if fresh:
            add_links(schema, declared)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def add_links(schema: dict[str, Any], links: Iterable[Link]) -> None:
    """Put ``links`` into an OpenAPI document (in place); ``InvalidLink`` if one is wrong."""
    for link in links:
        source = _operation(schema, link.source, link)
        target = _operation(schema, link.target, link)
        response = source.get("responses", {}).get(str(link.status))
        if response is None:
            raise InvalidLink(f"{link}: {link.source} documents no {link.status} answer")
        operation_id = target.get("operationId")
        if not operation_id:
            raise InvalidLink(f"{link}: {link.target} has no operationId")
        _check_parameters(schema, link, source, response, target)
        entry: dict[str, Any] = {"operationId": operation_id, "parameters": dict(link.parameters)}
        if link.description:
            entry["description"] = link.description
        # Named after the target's summary ("Get Order" -> "GetOrder"), else its operationId.
        name = "".join(target.get("summary", "").split()) or operation_id
        links_of = response.setdefault("links", {})
        if name in links_of:
            raise InvalidLink(f"{link}: declared twice")
        links_of[name] = entry


def _operation(schema: dict[str, Any], name: str, link: Link) -> dict[str, Any]:
    method, _, path = name.partition(" ")
    operation = schema.get("paths", {}).get(path, {}).get(method.lower())
    if method.lower() not in _METHODS or operation is None:
        raise InvalidLink(f"{link}: no operation {name!r} in the OpenAPI")
    return operation  # type: ignore[no-any-return]


def _parameters(operation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in operation.get("parameters", [])}


def _check_parameters(
    schema: dict[str, Any],
    link: Link,
    source: dict[str, Any],
    response: dict[str, Any],
    target: dict[str, Any],
) -> None:
    taken = _parameters(target)
    for name, expression in link.parameters.items():
        if name not in taken:
            raise InvalidLink(f"{link}: {link.target} takes no parameter {name!r}")
        _check_expression(schema, link, expression, source, response)
    unset = [n for n, p in taken.items() if p.get("in") == "path" and n not in link.parameters]
    if unset:
        raise InvalidLink(f"{link}: the path parameter(s) {', '.join(unset)} are left unset")


def _check_expression(
    schema: dict[str, Any],
    link: Link,
    expression: str,
    source: dict[str, Any],
    response: dict[str, Any],
) -> None:
    if expression.startswith("$response.body#/"):
        body = response.get("content", {}).get("application/json", {}).get("schema")
        node = body
        for part in expression.removeprefix("$response.body#/").split("/"):
            node = _resolve(schema, node) if node is not None else None
            properties = (node or {}).get("properties", {})
            if part not in properties:
                raise InvalidLink(
                    f"{link}: the {link.status} answer of {link.source} has no {expression}"
                )
            node = properties[part]
    elif expression.startswith("$request.path."):
        name = expression.removeprefix("$request.path.")
        if _parameters(source).get(name, {}).get("in") != "path":
            raise InvalidLink(f"{link}: {link.source} has no path parameter {name!r}")
    elif not expression.startswith(("$response.header.", "$request.query.", "$request.header.")):
        raise InvalidLink(f"{link}: unsupported expression {expression!r}")


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        node = schema["components"]["schemas"][name]
    return node
