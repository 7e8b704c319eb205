"""The compatibility rule on real pydantic models: only an added optional field passes."""

import uuid
from typing import Literal

import pytest

from sagakit.messaging.registry import Message
from sagaops.schema_compat import Contract, breaking_changes

pytestmark = pytest.mark.unit


class Line(Message):
    product_id: str
    quantity: int


class Reserve(Message):
    message_type = "Reserve"
    order_id: uuid.UUID
    lines: list[Line]
    reason: Literal["A", "B"] = "A"


def contract(model: type[Message], topic: str = "inventory.commands") -> Contract:
    return Contract({"Reserve": model.model_json_schema()}, {"Reserve": frozenset({topic})})


def changes(new: type[Message], topic: str = "inventory.commands") -> list[str]:
    return breaking_changes(contract(Reserve), contract(new, topic))


def test_the_same_contract_is_compatible() -> None:
    assert changes(Reserve) == []


def test_an_added_optional_field_is_compatible_even_deep_inside() -> None:
    class LineV2(Message):
        product_id: str
        quantity: int
        gift_wrap: bool = False

    class ReserveV2(Message):
        """Documentation may change freely."""

        message_type = "Reserve"
        order_id: uuid.UUID
        lines: list[LineV2]
        reason: Literal["A", "B"] = "A"
        note: str | None = None

    assert changes(ReserveV2) == []


def test_a_removed_required_field_is_breaking() -> None:
    class ReserveV2(Message):
        message_type = "Reserve"
        lines: list[Line]
        reason: Literal["A", "B"] = "A"

    assert changes(ReserveV2) == [
        "Reserve.order_id: required field removed (old readers still require it)"
    ]


def test_a_new_required_field_is_breaking_even_deep_inside() -> None:
    class LineV2(Message):
        product_id: str
        quantity: int
        warehouse: str

    class ReserveV2(Message):
        message_type = "Reserve"
        order_id: uuid.UUID
        lines: list[LineV2]
        reason: Literal["A", "B"] = "A"

    assert changes(ReserveV2) == [
        "Reserve.lines[].warehouse: new required field (old messages do not have it)"
    ]


def test_an_optional_field_becoming_required_is_breaking() -> None:
    class ReserveV2(Message):
        message_type = "Reserve"
        order_id: uuid.UUID
        lines: list[Line]
        reason: Literal["A", "B"]

    assert changes(ReserveV2) == ["Reserve.reason: now required (old messages may not have it)"]


def test_a_changed_type_or_a_new_enum_value_is_breaking() -> None:
    class ReserveV2(Message):
        message_type = "Reserve"
        order_id: str
        lines: list[Line]
        reason: Literal["A", "B", "C"] = "A"

    problems = changes(ReserveV2)
    assert [p.split(":")[0] for p in problems] == ["Reserve.order_id", "Reserve.reason"]


def test_a_removed_type_and_a_moved_type_are_breaking() -> None:
    assert breaking_changes(contract(Reserve), Contract({}, {})) == [
        "Reserve: message type removed (retire a type only once no writer sends it and no "
        "topic still holds it)"
    ]
    assert changes(Reserve, topic="stock.commands") == [
        "Reserve: moved from inventory.commands to stock.commands"
    ]
