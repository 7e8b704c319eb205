"""The envelope checked by properties: encode/decode is a round trip, and any record (any bytes
as value and headers) decodes to a message or raises ``PoisonMessage``, never anything else."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sagakit.errors import PoisonMessage
from sagakit.messaging.envelope import Envelope, H
from sagakit.messaging.tracing import new_traceparent
from sagakit.testing.messages import DoThing, registry

pytestmark = pytest.mark.unit

uuids = st.uuids()
envelopes = st.builds(
    Envelope,
    payload=st.builds(DoThing, name=st.text(max_size=30), amount=st.integers(-(2**63), 2**63 - 1)),
    message_id=uuids,
    saga_id=st.none() | uuids,
    order_id=st.none() | uuids,
    step=st.none() | st.text(min_size=1, max_size=20),
    causation_id=st.none() | uuids,
    timestamp=st.datetimes(timezones=st.just(UTC)),
    traceparent=st.builds(new_traceparent),
    deadline=st.none() | st.datetimes(timezones=st.just(UTC)),
)


@given(envelopes)
def test_encode_decode_is_a_round_trip(envelope: Envelope[DoThing]) -> None:
    decoded = Envelope.from_record(envelope.headers(), envelope.value(), registry)
    assert decoded == envelope


header_names = st.sampled_from(
    [
        H.MESSAGE_ID,
        H.MESSAGE_TYPE,
        H.SAGA_ID,
        H.ORDER_ID,
        H.STEP,
        H.CAUSATION_ID,
        H.TIMESTAMP,
        H.SCHEMA_VERSION,
        H.TRACEPARENT,
        H.DEADLINE,
        "other",
    ]
)
header_values = st.binary(max_size=40) | st.sampled_from(
    [b"DoThing", b"1", str(uuid.uuid4()).encode(), b"2026-01-01T00:00:00+00:00", b"2026-01-01"]
)
values = (
    st.none()
    | st.binary(max_size=60)
    | st.sampled_from([b'{"name": "x", "amount": 1}', b"[]", b"null", b'{"name": 1}', b"[" * 2000])
)


@given(
    headers=st.none() | st.lists(st.tuples(header_names, header_values), max_size=12),
    value=values,
)
def test_any_record_is_a_message_or_poison(
    headers: list[tuple[str, bytes]] | None, value: bytes | None
) -> None:
    try:
        envelope = Envelope.from_record(headers, value, registry)
    except PoisonMessage:
        return
    # A message that decodes is usable: its times compare with aware UTC times.
    assert envelope.timestamp.tzinfo is not None
    assert envelope.deadline is None or envelope.deadline.tzinfo is not None
    assert envelope.timestamp - timedelta(0) == envelope.timestamp


VALID = Envelope(payload=DoThing(name="x", amount=1), saga_id=uuid.uuid4(), step="s")


@given(
    drop=st.sets(st.integers(0, 9)),
    changes=st.dictionaries(st.integers(0, 9), header_values, max_size=3),
    value=values | st.just(VALID.value()),
)
def test_a_damaged_valid_record_is_a_message_or_poison(
    drop: set[int], changes: dict[int, bytes], value: bytes | None
) -> None:
    headers = [
        (name, changes.get(i, raw))
        for i, (name, raw) in enumerate(VALID.headers())
        if i not in drop
    ]
    try:
        envelope = Envelope.from_record(headers, value, registry)
    except PoisonMessage:
        return
    assert envelope.timestamp.tzinfo is not None
    assert envelope.deadline is None or envelope.deadline.tzinfo is not None


def test_a_time_without_offset_is_read_as_utc() -> None:
    """Regression (found by the properties above): a header time without an offset decoded to a
    naive datetime, and comparing it with an aware one raised TypeError in a handler."""
    headers = [
        (name, raw) for name, raw in VALID.headers() if name not in (H.TIMESTAMP, H.DEADLINE)
    ]
    headers += [(H.TIMESTAMP, b"2026-01-01T00:00:00"), (H.DEADLINE, b"2026-01-01")]
    envelope = Envelope.from_record(headers, VALID.value(), registry)
    assert envelope.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert envelope.deadline == datetime(2026, 1, 1, tzinfo=UTC)
