"""Typed message contracts and the registry that maps a type name to its pydantic model.

An unknown type name is poison: ``MessageRegistry.model_for`` raises ``UnknownMessageType``.

Readers are tolerant: a field the reader's model does not know is ignored, not poison. That is
what lets a writer add an optional field and deploy before its readers (docs/contracts.md has the
rule). Writers stay strict where it costs nothing: mypy rejects an unknown keyword argument to a
message's constructor (``init_forbid_extra`` in the pydantic mypy plugin's settings).
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.config import JsonDict

from sagakit.errors import InvalidMessage, UndecodableMessage, UnknownMessageType


def _add_example(schema: JsonDict, model: type[BaseModel]) -> None:
    example = getattr(model, "example", None)
    if example is not None:
        schema["examples"] = [example]


class Message(BaseModel):
    """Base of every message payload. Subclasses set ``message_type``, an ``example`` payload
    (published with the JSON Schema and the AsyncAPI document) and, for a compatible change,
    bump ``schema_version``."""

    # extra="ignore", not "forbid": an old reader must accept a newer writer's optional field.
    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_extra=_add_example)

    message_type: ClassVar[str] = ""
    schema_version: ClassVar[int] = 1
    example: ClassVar[dict[str, Any] | None] = None

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))


M = TypeVar("M", bound=type[Message])


class MessageRegistry:
    """Knows every message type by name. One registry per deployment of the contracts."""

    def __init__(self) -> None:
        self._models: dict[str, type[Message]] = {}

    def register(self, model: M) -> M:
        """Register a message model (usable as a class decorator)."""
        name = model.message_type
        if not name:
            raise ValueError(f"{model.__name__} has no message_type")
        existing = self._models.get(name)
        if existing is not None and existing is not model:
            raise ValueError(f"message type {name!r} is already registered by {existing.__name__}")
        self._models[name] = model
        return model

    def model_for(self, message_type: str) -> type[Message]:
        try:
            return self._models[message_type]
        except KeyError:
            raise UnknownMessageType(f"unknown message type {message_type!r}") from None

    def decode(self, message_type: str, value: bytes | None) -> Message:
        """Parse a record value into the model registered for its type (poison on failure)."""
        model = self.model_for(message_type)
        if value is None:
            raise UndecodableMessage("record has no value")
        try:
            data: Any = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise UndecodableMessage(f"value is not JSON: {exc}") from None
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidMessage(f"{message_type}: {_summarise(exc)}") from None

    def __contains__(self, message_type: object) -> bool:
        return message_type in self._models

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._models.values())


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
