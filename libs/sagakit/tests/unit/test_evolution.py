"""Schema evolution, as readers see it (docs/contracts.md): a field the reader does not know is
ignored, a field the writer does not know takes its default, and what was required still is."""

import uuid

import orjson
import pytest

from sagakit.contracts import REGISTRY
from sagakit.errors import InvalidMessage
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message, MessageRegistry

pytestmark = pytest.mark.unit


class ShipOrderV1(Message):
    message_type = "ShipOrder"
    order_id: uuid.UUID


class ShipOrderV2(Message):
    """The next revision: one new optional field, nothing else changed."""

    message_type = "ShipOrder"
    schema_version = 2
    order_id: uuid.UUID
    gift_note: str | None = None


def registry_of(model: type[Message]) -> MessageRegistry:
    registry = MessageRegistry()
    registry.register(model)
    return registry


def test_an_old_reader_accepts_a_new_optional_field() -> None:
    sent = Envelope(payload=ShipOrderV2(order_id=uuid.uuid4(), gift_note="happy birthday"))
    received = Envelope.from_record(sent.headers(), sent.value(), registry_of(ShipOrderV1))
    assert received.payload == ShipOrderV1(order_id=sent.payload.order_id)
    assert received.schema_version == 1  # the reader's revision; the header said 2


def test_a_new_reader_accepts_an_old_message_without_the_field() -> None:
    sent = Envelope(payload=ShipOrderV1(order_id=uuid.uuid4()))
    received = Envelope.from_record(sent.headers(), sent.value(), registry_of(ShipOrderV2))
    assert received.payload == ShipOrderV2(order_id=sent.payload.order_id, gift_note=None)


def test_a_missing_required_field_is_still_poison() -> None:
    class ShipOrderV2Breaking(Message):
        message_type = "ShipOrder"
        order_id: uuid.UUID
        carrier: str  # new and required: an old writer never sends it

    sent = Envelope(payload=ShipOrderV1(order_id=uuid.uuid4()))
    with pytest.raises(InvalidMessage, match="carrier"):
        Envelope.from_record(sent.headers(), sent.value(), registry_of(ShipOrderV2Breaking))


@pytest.mark.parametrize("model", list(REGISTRY), ids=lambda m: m.message_type)
def test_every_contract_reads_its_example_with_a_field_from_the_future(
    model: type[Message],
) -> None:
    assert model.example is not None, f"{model.__name__} has no example"
    value = orjson.dumps({**model.example, "added_in_a_later_revision": {"any": "shape"}})
    decoded = REGISTRY.decode(model.message_type, value)
    assert decoded == model.model_validate(model.example)
