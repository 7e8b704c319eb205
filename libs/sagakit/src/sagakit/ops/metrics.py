"""Prometheus metrics shared by every service (served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_CONSUMED = Counter(
    "saga_messages_consumed_total",
    "Records taken from Kafka, by outcome (handled, duplicate, dead_lettered).",
    ["topic", "message_type", "outcome"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "saga_messages_dead_lettered_total",
    "Records sent to a dead-letter topic, by error code.",
    ["topic", "code"],
)
DLQ_RECORDS_WRITTEN = Counter(
    "saga_dlq_records_written_total",
    "Records a consumer wrote to a dead-letter topic, by DLQ topic; returned=true for a record "
    "that an operator had replayed and that failed again.",
    ["topic", "returned"],
)
DLQ_UNREPLAYED = Gauge(
    "saga_dlq_unreplayed",
    "Records in a dead-letter topic that no operator has replayed or discarded yet (refreshed "
    "periodically by the orchestrator from its dispositions).",
    ["topic"],
)
HANDLER_RETRIES = Counter(
    "saga_handler_retries_total",
    "Handler attempts that failed with an error and were retried, by error code.",
    ["topic", "code"],
)
BATCH_SECONDS = Histogram(
    "saga_batch_seconds",
    "Time to handle one batch of records: one transaction, commit included.",
    ["group"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_RECORDS = Histogram(
    "saga_batch_records",
    "Records handled together in one transaction (group commit).",
    ["group"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
OUTBOX_PUBLISHED = Counter(
    "saga_outbox_published_total", "Outbox rows published to Kafka.", ["service"]
)
OUTBOX_PENDING = Gauge(
    "saga_outbox_pending",
    "Outbox rows the relay found waiting at its last poll (at most the batch size).",
    ["service"],
)
SAGAS_STARTED = Counter(
    "saga_sagas_started_total",
    "Sagas started (counted at commit), by definition name and version.",
    ["definition", "version"],
)
SAGAS_FINISHED = Counter(
    "saga_sagas_finished_total",
    "Sagas that reached a terminal status (counted at commit), by definition, version, status.",
    ["definition", "version", "status"],
)
