"""Would a new revision of the contracts break a reader or a writer already deployed?

The rule (docs/contracts.md): a message type may only gain optional fields. Both directions
count, because services deploy one at a time and topics keep old records:

- an old reader gets messages from a new writer, so nothing it requires may go away, become
  optional or change its shape, and a message may not move to another topic;
- a new reader gets old messages (still in the topic, or from a writer not yet upgraded), so
  nothing may become required that old writers did not send.

An added optional field passes both ways: old readers ignore it (``extra="ignore"``), new
readers take its default. Anything else that changes a field's schema (type, format, bounds,
the values of an enum) is reported: widening is safe only for readers deployed first, which
this check cannot know. Schemas are compared after inlining ``$ref`` and dropping what only
documents (titles, descriptions, examples).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

# Keys that document a schema without changing what it accepts.
_DOC_KEYS = frozenset({"title", "description", "examples", "$comment", "$schema", "$id"})


@dataclass(frozen=True)
class Contract:
    """One revision of the published contracts: per message type, its payload's JSON Schema
    and the topic(s) it travels on."""

    schemas: Mapping[str, Schema]
    topics: Mapping[str, frozenset[str]]


def breaking_changes(published: Contract, current: Contract) -> list[str]:
    """One line per change that breaks a deployed reader or writer; empty when compatible."""
    problems: list[str] = []
    for name in sorted(published.schemas.keys() - current.schemas.keys()):
        problems.append(
            f"{name}: message type removed (retire a type only once no writer sends it and "
            "no topic still holds it)"
        )
    for name in sorted(published.schemas.keys() & current.schemas.keys()):
        before, after = published.topics.get(name), current.topics.get(name)
        if before is not None and after is not None and before != after:
            problems.append(f"{name}: moved from {_names(before)} to {_names(after)}")
        problems += _compare(
            normalized(published.schemas[name]), normalized(current.schemas[name]), name
        )
    return problems


def normalized(schema: Schema) -> Schema:
    """The schema with every local ``$ref`` inlined and documentation keys dropped."""
    definitions = schema.get("$defs", {})

    def walk(node: Any, depth: int) -> Any:
        if depth > 50:
            raise ValueError("schema nests too deep (a recursive $ref?)")
        if isinstance(node, list):
            return [walk(item, depth + 1) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            return walk({**definitions[ref.removeprefix("#/$defs/")], **siblings}, depth + 1)
        return {
            key: walk(value, depth + 1)
            for key, value in node.items()
            if key not in _DOC_KEYS and key != "$defs"
        }

    result: Schema = walk(schema, 0)
    return result


def _compare(old: Any, new: Any, path: str) -> list[str]:
    if _is_object(old) and _is_object(new):
        return _compare_objects(old, new, path)
    for key in ("items", "anyOf", "oneOf", "allOf"):
        if isinstance(old, dict) and isinstance(new, dict) and key in old and key in new:
            return _compare_nested(old, new, key, path)
    if old == new:
        return []
    return [f"{path}: changed from {_show(old)} to {_show(new)}"]


def _compare_objects(old: Schema, new: Schema, path: str) -> list[str]:
    old_fields, new_fields = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    problems = []
    for name in old_fields:
        where = f"{path}.{name}"
        if name not in new_fields:
            if name in old_required:
                problems.append(f"{where}: required field removed (old readers still require it)")
            continue
        before, after = old_fields[name], new_fields[name]
        if (name in old_required) != (name in new_required):
            if name in old_required:
                problems.append(f"{where}: no longer required (old readers still require it)")
            else:
                problems.append(f"{where}: now required (old messages may not have it)")
            # Its default came or went with it: said once above, not again as a change.
            before, after = _without_default(before), _without_default(after)
        problems += _compare(before, after, where)
    for name in new_fields.keys() - old_fields.keys():
        if name in new_required:
            problems.append(f"{path}.{name}: new required field (old messages do not have it)")
    problems += _compare_rest(old, new, ("properties", "required"), path)
    return problems


def _compare_nested(old: Schema, new: Schema, key: str, path: str) -> list[str]:
    if key == "items":
        problems = _compare(old["items"], new["items"], f"{path}[]")
    elif len(old[key]) != len(new[key]):
        return [f"{path}: changed from {_show(old)} to {_show(new)}"]
    else:
        problems = []
        for i, (a, b) in enumerate(zip(old[key], new[key], strict=True)):
            problems += _compare(a, b, f"{path}<{key} {i}>")
    return problems + _compare_rest(old, new, (key,), path)


def _compare_rest(old: Schema, new: Schema, compared: tuple[str, ...], path: str) -> list[str]:
    rest_old = {k: v for k, v in old.items() if k not in compared}
    rest_new = {k: v for k, v in new.items() if k not in compared}
    if rest_old == rest_new:
        return []
    return [f"{path}: changed from {_show(rest_old)} to {_show(rest_new)}"]


def _without_default(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: v for k, v in schema.items() if k != "default"}
    return schema


def _is_object(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "object"


def _show(schema: Any) -> str:
    text = repr(schema)
    return text if len(text) <= 120 else text[:117] + "..."


def _names(topics: frozenset[str]) -> str:
    return ", ".join(sorted(topics)) or "no topic"
