import uuid

import orjson
import pytest

from sagakit.errors import (
    InvalidMessage,
    MissingHeader,
    PoisonMessage,
    UndecodableMessage,
    UnknownMessageType,
)
from sagakit.messaging.envelope import Envelope, H
from sagakit.testing.messages import DoThing, ThingDone, registry

pytestmark = pytest.mark.unit


def make() -> Envelope[DoThing]:
    return Envelope(
        payload=DoThing(name="x", amount=1999),
        saga_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        step="reserve",
        causation_id=uuid.uuid4(),
    )


def test_encode_decode_keeps_every_field() -> None:
    env = make()
    decoded = Envelope.from_record(env.headers(), env.value(), registry)
    assert decoded == env
    assert dict(env.headers()).keys() == {
        H.MESSAGE_ID,
        H.MESSAGE_TYPE,
        H.SAGA_ID,
        H.ORDER_ID,
        H.STEP,
        H.CAUSATION_ID,
        H.TIMESTAMP,
        H.SCHEMA_VERSION,
        H.TRACEPARENT,
    }


def test_value_is_only_the_json_payload_and_key_is_the_saga_id() -> None:
    env = make()
    assert orjson.loads(env.value()) == {"name": "x", "amount": 1999}
    assert env.key == str(env.saga_id).encode()


def test_reply_continues_the_saga_and_the_trace() -> None:
    env = make()
    reply = env.reply(ThingDone(name="x"))
    assert (reply.saga_id, reply.order_id, reply.step) == (env.saga_id, env.order_id, env.step)
    assert reply.causation_id == env.message_id
    assert reply.message_id != env.message_id
    # Created in the context of the message it answers; emitting it gives it a span of its own.
    assert reply.traceparent == env.traceparent


@pytest.mark.parametrize(
    ("mutate", "error"),
    [
        (lambda h, v: ([x for x in h if x[0] != H.MESSAGE_ID], v), MissingHeader),
        (lambda h, v: ([x for x in h if x[0] != H.MESSAGE_TYPE], v), MissingHeader),
        (lambda h, v: (h, b"\xff\xfe not json"), UndecodableMessage),
        (lambda h, v: (h, None), UndecodableMessage),
        (lambda h, v: (h, b'{"name": "x"}'), InvalidMessage),
        (lambda h, v: (h, b'{"name": "x", "amount": "a lot"}'), InvalidMessage),
        (lambda h, v: (h, b"[1, 2]"), InvalidMessage),
        (
            lambda h, v: ([(k, b"Nope") if k == H.MESSAGE_TYPE else (k, b) for k, b in h], v),
            UnknownMessageType,
        ),
        (
            lambda h, v: ([(k, b"not-a-uuid") if k == H.MESSAGE_ID else (k, b) for k, b in h], v),
            UndecodableMessage,
        ),
        (
            lambda h, v: ([(k, b"\xff") if k == H.STEP else (k, b) for k, b in h], v),
            UndecodableMessage,
        ),
    ],
)
def test_malformed_records_are_poison(mutate, error) -> None:  # type: ignore[no-untyped-def]
    env = make()
    headers, value = mutate(env.headers(), env.value())
    with pytest.raises(error) as info:
        Envelope.from_record(headers, value, registry)
    assert isinstance(info.value, PoisonMessage)
    assert not info.value.retriable
    assert info.value.code


def test_registry_rejects_a_second_model_for_the_same_type() -> None:
    from sagakit.messaging.registry import Message

    class Clash(Message):
        message_type = "DoThing"

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Clash)
