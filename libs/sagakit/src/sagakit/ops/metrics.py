"""Prometheus metrics shared by every service (served on ``/metrics``).

Counters and histograms are updated where things happen, after the commit that made them true
(no database round trip of their own). Gauges that describe the database (sagas by status, the
outbox backlog) and the consumer's lag are refreshed when ``/metrics`` is scraped, by the
refreshers registered with ``on_scrape`` (see ``sagakit.ops.http``). Every name starts with
``saga_``; the README's "Metrics & alerts" lists them, and ``deploy/prometheus/`` alerts on them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram

log = logging.getLogger(__name__)

# Seconds, for durations of steps and of whole sagas: milliseconds up to the step timeouts.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

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
ADMIN_AUTH_REFUSED = Counter(
    "saga_admin_auth_refused_total",
    "Admin requests and console logins refused: a wrong credential presented, or a client "
    "refused for a while after too many of them (429).",
    ["surface", "reason"],
)
DLQ_RECORDS_WRITTEN = Counter(
    "saga_dlq_records_written_total",
    "Records written to a dead-letter topic, by DLQ topic: poison a consumer set aside, and "
    "compensations out of attempts the orchestrator parks there (counted when queued in its "
    "outbox); returned=true for a record that an operator had replayed and that failed again.",
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
GC_PAUSE_SECONDS = Histogram(
    "saga_gc_pause_seconds",
    "Python garbage collections: how long each took, wall time (a collection run by another "
    "thread may include moments when the event loop ran).",
    ["generation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
)
OUTBOX_PUBLISHED = Counter(
    "saga_outbox_published_total", "Outbox rows published to Kafka.", ["service"]
)
OUTBOX_PENDING = Gauge(
    "saga_outbox_pending",
    "Outbox rows not yet published to Kafka (read from the database when scraped).",
    ["service"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "saga_outbox_oldest_age_seconds",
    "Age of the oldest outbox row not yet published (0 when the outbox is empty).",
    ["service"],
)
CONSUMER_LAG = Gauge(
    "saga_consumer_lag",
    "Records in a partition not yet taken by this consumer: high watermark minus position.",
    ["group", "topic", "partition"],
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
SAGAS_CURRENT = Gauge(
    "saga_sagas_current",
    "Sagas now in each non-terminal status, and parked ones (COMPENSATION_FAILED: the order"
    " NEEDS_ATTENTION); read from the database when scraped.",
    ["status"],
)
SAGAS_STUCK = Gauge(
    "saga_sagas_stuck",
    "Sagas stuck, by why: deadline overdue, compensation retry overdue (beyond a grace), or"
    " RUNNING too long (the operations' stuck list; read from the database when scraped).",
    ["why"],
)
STEP_SECONDS = Histogram(
    "saga_step_duration_seconds",
    "From a step's command (or compensation) sent to its outcome, by step and outcome"
    " (succeeded, failed, timed_out).",
    ["step", "outcome"],
    buckets=DURATION_BUCKETS,
)
SAGA_SECONDS = Histogram(
    "saga_order_to_terminal_seconds",
    "From the order (its saga's creation) to the saga's terminal status, by definition, status.",
    ["definition", "status"],
    buckets=DURATION_BUCKETS,
)
COMPENSATION_ATTEMPTS = Counter(
    "saga_compensation_attempts_total",
    "Compensation attempts by compensation step and outcome (succeeded, failed, timed_out).",
    ["step", "outcome"],
)
SAGAS_PARKED_BY_ERROR = Counter(
    "saga_sagas_parked_by_error_total",
    "Sagas parked (COMPENSATION_FAILED) because handling them raised a bug, not an outage.",
    ["where"],
)
SCRAPE_REFRESH_ERRORS = Counter(
    "saga_metrics_refresh_errors_total",
    "Refreshes of scrape-time gauges that failed or timed out (the gauges keep older values).",
    ["refresher"],
)

Refresher = Callable[[], Awaitable[None]]


class ScrapeRefresh:
    """Gauges computed when ``/metrics`` is scraped: each refresher at most every
    ``min_interval_s`` (several scrapers cost one query), within ``timeout_s``. A refresher that
    fails leaves its gauges as they were and counts the failure; the scrape never fails."""

    def __init__(self, *, min_interval_s: float = 2.0, timeout_s: float = 2.0) -> None:
        self.min_interval_s = min_interval_s
        self.timeout_s = timeout_s
        self._refreshers: dict[str, Refresher] = {}
        self._last: dict[str, float] = {}

    def add(self, name: str, refresher: Refresher) -> None:
        self._refreshers[name] = refresher

    async def run(self) -> None:
        now = time.monotonic()
        due = [
            name
            for name in self._refreshers
            if now - self._last.get(name, -1e9) >= self.min_interval_s
        ]
        for name in due:
            self._last[name] = now
        await asyncio.gather(*(self._one(name) for name in due))

    async def _one(self, name: str) -> None:
        try:
            await asyncio.wait_for(self._refreshers[name](), timeout=self.timeout_s)
        except Exception as exc:  # a scrape shows older values rather than fail
            SCRAPE_REFRESH_ERRORS.labels(name).inc()
            log.warning("metrics: refreshing %s failed: %s: %s", name, type(exc).__name__, exc)
