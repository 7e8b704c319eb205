"""Dead-lettering: a record that cannot be processed goes to ``<topic>.dlq``, unchanged, with the
reason and its origin added as headers (the original headers are kept).

The ``dlq-*`` headers describe one trip to the DLQ and are replaced on the next one. An operator's
replay (the orchestrator's ``service_layer/dead_letters.py``) adds ``replay-count`` and
``replayed-from`` instead: they are not ``dlq-*``, so a replayed record that fails again reaches
the DLQ still carrying its count, and the replay tool can refuse to send it round again."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import ConsumerRecord

from sagakit.errors import PoisonMessage, SagaError
from sagakit.messaging.envelope import Headers, decode_headers


class DLQ:
    """Header names added to a dead-lettered record."""

    ERROR_CODE = "dlq-error-code"
    REASON = "dlq-reason"
    ORIGINAL_TOPIC = "dlq-original-topic"
    ORIGINAL_PARTITION = "dlq-original-partition"
    ORIGINAL_OFFSET = "dlq-original-offset"
    CONSUMER_GROUP = "dlq-consumer-group"
    FAILED_AT = "dlq-failed-at"
    # Only on the orchestrator's alert for a compensation out of attempts (not a consumer's).
    SAGA_STATUS = "dlq-saga-status"


class Replay:
    """Header names added by an operator's replay; they survive a return to the DLQ."""

    COUNT = "replay-count"  # how many times this record was replayed from a DLQ
    FROM = "replayed-from"  # "<dlq topic>/<partition>/<offset>" of the last replay


def dead_letter_headers(record: ConsumerRecord[Any, Any], error: SagaError, group: str) -> Headers:
    headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq-")]
    headers += [
        (DLQ.ERROR_CODE, error.code.encode()),
        (DLQ.REASON, str(error)[:4000].encode()),
        (DLQ.ORIGINAL_TOPIC, record.topic.encode()),
        (DLQ.ORIGINAL_PARTITION, str(record.partition).encode()),
        (DLQ.ORIGINAL_OFFSET, str(record.offset).encode()),
        (DLQ.CONSUMER_GROUP, group.encode()),
        (DLQ.FAILED_AT, str(time.time()).encode()),
    ]
    return headers


def header(record: ConsumerRecord[Any, Any], name: str) -> str | None:
    """One header of a record as text, None if absent or undecodable."""
    try:
        return decode_headers(record.headers).get(name)
    except PoisonMessage:
        return None
