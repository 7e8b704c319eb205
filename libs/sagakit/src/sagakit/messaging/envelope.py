"""The message envelope: metadata in Kafka headers, the JSON payload as the value.

Headers (all UTF-8 strings): message-id, message-type, saga-id, order-id, step, causation-id,
timestamp (ISO 8601, UTC), schema-version and the W3C traceparent; commands from the orchestrator
also carry ``deadline``, the time the saga stops waiting for the answer (a participant whose
effect cannot be undone, such as an email, declines to act after it). The record key is the saga id
(the order id before a saga exists), so every message of one saga stays in order on every topic.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from sagakit.errors import MissingHeader, UndecodableMessage
from sagakit.ids import new_id
from sagakit.messaging.registry import Message, MessageRegistry
from sagakit.messaging.tracing import new_traceparent

P = TypeVar("P", bound=Message, covariant=True)  # an Envelope[Reply] is an Envelope[Message]
R = TypeVar("R", bound=Message)

Headers = list[tuple[str, bytes]]


class H:
    """Header names, one place for all of them."""

    MESSAGE_ID = "message-id"
    MESSAGE_TYPE = "message-type"
    SAGA_ID = "saga-id"
    ORDER_ID = "order-id"
    STEP = "step"
    CAUSATION_ID = "causation-id"
    TIMESTAMP = "timestamp"
    SCHEMA_VERSION = "schema-version"
    TRACEPARENT = "traceparent"
    DEADLINE = "deadline"


REQUIRED_HEADERS = (H.MESSAGE_ID, H.MESSAGE_TYPE, H.TIMESTAMP, H.SCHEMA_VERSION)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Envelope(Generic[P]):
    payload: P
    message_id: uuid.UUID = field(default_factory=new_id)
    saga_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    step: str | None = None
    causation_id: uuid.UUID | None = None
    timestamp: datetime = field(default_factory=utcnow)
    traceparent: str = field(default_factory=new_traceparent)
    deadline: datetime | None = None

    @property
    def message_type(self) -> str:
        return self.payload.message_type

    @property
    def schema_version(self) -> int:
        return self.payload.schema_version

    @property
    def key(self) -> bytes | None:
        """Partition key: the saga id, or the order id for messages sent before a saga exists."""
        key = self.saga_id or self.order_id
        return str(key).encode() if key else None

    def reply(self, payload: R, *, step: str | None = None) -> Envelope[R]:
        """A message caused by this one: same saga, order and trace, causation = this id. Its
        ``traceparent`` is this message's: the context it is created in; emitting it through a
        unit of work gives it a span of its own (``UnitOfWork.emit``)."""
        return Envelope(
            payload=payload,
            saga_id=self.saga_id,
            order_id=self.order_id,
            step=self.step if step is None else step,
            causation_id=self.message_id,
            traceparent=self.traceparent,
        )

    # --- Kafka encoding -------------------------------------------------------------------------

    def header_pairs(self, traceparent: str | None = None) -> list[tuple[str, str]]:
        """The headers as text (the outbox stores them so); ``traceparent`` in place of the
        envelope's."""
        pairs: list[tuple[str, str | None]] = [
            (H.MESSAGE_ID, str(self.message_id)),
            (H.MESSAGE_TYPE, self.message_type),
            (H.SAGA_ID, str(self.saga_id) if self.saga_id else None),
            (H.ORDER_ID, str(self.order_id) if self.order_id else None),
            (H.STEP, self.step),
            (H.CAUSATION_ID, str(self.causation_id) if self.causation_id else None),
            (H.TIMESTAMP, self.timestamp.isoformat()),
            (H.SCHEMA_VERSION, str(self.schema_version)),
            (H.TRACEPARENT, traceparent or self.traceparent),
            (H.DEADLINE, self.deadline.isoformat() if self.deadline else None),
        ]
        return [(name, value) for name, value in pairs if value is not None]

    def headers(self) -> Headers:
        return [(name, value.encode()) for name, value in self.header_pairs()]

    def value(self) -> bytes:
        return self.payload.to_json()

    @classmethod
    def from_record(
        cls, headers: Headers | None, value: bytes | None, registry: MessageRegistry
    ) -> Envelope[Message]:
        """Decode a Kafka record; raises a ``PoisonMessage`` subclass on anything malformed."""
        meta = decode_headers(headers)
        for name in REQUIRED_HEADERS:
            if not meta.get(name):
                raise MissingHeader(f"header {name!r} is missing")
        payload = registry.decode(meta[H.MESSAGE_TYPE], value)
        try:
            return Envelope(
                payload=payload,
                message_id=uuid.UUID(meta[H.MESSAGE_ID]),
                saga_id=_uuid_or_none(meta.get(H.SAGA_ID)),
                order_id=_uuid_or_none(meta.get(H.ORDER_ID)),
                step=meta.get(H.STEP) or None,
                causation_id=_uuid_or_none(meta.get(H.CAUSATION_ID)),
                timestamp=_utc(datetime.fromisoformat(meta[H.TIMESTAMP])),
                traceparent=meta.get(H.TRACEPARENT) or new_traceparent(),
                deadline=_utc(datetime.fromisoformat(meta[H.DEADLINE]))
                if meta.get(H.DEADLINE)
                else None,
            )
        except ValueError as exc:
            raise UndecodableMessage(f"malformed header: {exc}") from None


def decode_headers(headers: Headers | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, raw in headers or ():
        try:
            out[name] = raw.decode() if raw is not None else ""
        except UnicodeDecodeError:
            raise UndecodableMessage(f"header {name!r} is not UTF-8") from None
    return out


def _utc(value: datetime) -> datetime:
    """Times travel as UTC: a header without an offset is read as UTC, never as a naive time
    that would make every comparison with an aware one raise (found by a property test)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _uuid_or_none(value: str | None) -> uuid.UUID | None:
    return uuid.UUID(value) if value else None
