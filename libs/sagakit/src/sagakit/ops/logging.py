"""Readable logs for people at a terminal, one JSON object per line for machines."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import orjson

from sagakit.telemetry import current_ids

# The saga and order the current work is about, for JSON log lines: set where one saga is
# handled (a request, a record handled alone, a call to Stripe or SMTP), never per record of a
# batch (many sagas at once). A log call may also pass them: ``extra={"saga_id": ...}``.
_LOG_IDS: ContextVar[tuple[str | None, str | None, str | None] | None] = ContextVar(
    "log_ids", default=None
)


@contextmanager
def log_ids(
    saga_id: uuid.UUID | str | None,
    order_id: uuid.UUID | str | None,
    traceparent: str | None = None,
) -> Iterator[None]:
    """Log lines written inside carry ``saga_id`` and ``order_id`` (the JSON format), and the
    ids of ``traceparent`` when no span is current (a record handled by the consumer: its span
    is recorded after the fact; with tracing off, the trace id of the message's header)."""
    token = _LOG_IDS.set(
        (str(saga_id) if saga_id else None, str(order_id) if order_id else None, traceparent)
    )
    try:
        yield
    finally:
        _LOG_IDS.reset(token)


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str = "") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        saga_id, order_id, traceparent = _LOG_IDS.get() or (None, None, None)
        ids = current_ids()  # None (no cost) unless tracing is on
        if ids is None and traceparent and len(traceparent) == 55:
            ids = traceparent[3:35], traceparent[36:52]
        if ids is not None:
            data["trace_id"], data["span_id"] = ids
        saga_id = getattr(record, "saga_id", None) or saga_id
        order_id = getattr(record, "order_id", None) or order_id
        if saga_id:
            data["saga_id"] = str(saga_id)
        if order_id:
            data["order_id"] = str(order_id)
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data).decode()


class RepeatFilter(logging.Filter):
    """Lets each distinct message through once per ``window_s``; the next one that passes says
    how many were held back. A broker outage makes aiokafka log the same line thousands of
    times; the on-call engineer needs it once, with a count."""

    def __init__(self, prefixes: tuple[str, ...], window_s: float = 30.0) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.window_s = window_s
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, str(record.msg))
        now = time.monotonic()
        last, held = self._seen.get(key, (0.0, 0))
        if now - last < self.window_s:
            self._seen[key] = (last, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {self.window_s:g}s)"
        return True


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)-5s {service} %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every reconnect attempt at ERROR while the broker is down: say it once.
    handler.addFilter(RepeatFilter(("aiokafka",)))
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
