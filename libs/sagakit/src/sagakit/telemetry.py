"""OpenTelemetry tracing, on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Off (the default) installs no SDK tracer provider: the OpenTelemetry API stays a no-op, every
helper here returns after one flag check, and the ``traceparent`` strings are derived as before.
On, it installs an SDK provider exporting over OTLP/HTTP, and one order is one trace:

- ``POST /orders`` is a SERVER span, child of the caller's ``traceparent`` when there is one;
- a message is given its PRODUCER span's id when it is emitted (``UnitOfWork.emit``: the
  envelope's ``traceparent`` is the context it was created in, the outbox row gets the
  producer span's), and the span is recorded when the transaction commits;
- each handled record is a CONSUMER span, child of the producer span in its header; its id is
  chosen before the handler runs and written into the envelope the handler sees, so what the
  handler emits and calls (Stripe, SMTP) are its children;
- the database work is a ``db commit`` span under each record (and each emitting context).

Spans of a batch are recorded after the fact with ids chosen in advance (``record_span``): a
batch handler serves many sagas, hence many traces, at once, so no span can be "current".
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sagakit.messaging.tracing import child_traceparent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.id_generator import IdGenerator

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_enabled = False
# The ids the next span is given (``record_span``): read once by the id generator.
_preset_trace_id: int | None = None
_preset_span_id: int | None = None

Attributes = Mapping[str, str | int]


def tracing_enabled() -> bool:
    return _enabled


def configure_tracing(service: str, *, exporter: object | None = None) -> bool:
    """Install the SDK provider when an OTLP endpoint (or an explicit exporter) is given."""
    global _enabled
    if exporter is None and not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
    )

    provider = TracerProvider(
        resource=Resource.create({"service.name": service}), id_generator=_preset_id_generator()
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        assert isinstance(exporter, SpanExporter)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _enabled = True
    return True


@contextmanager
def span_from_traceparent(
    name: str,
    traceparent: str | None,
    *,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: dict[str, str] | None = None,
) -> Iterator[str]:
    """Open a span child of ``traceparent``; yield the traceparent to pass downstream."""
    if not _enabled:
        yield child_traceparent(traceparent)
        return
    parent = _PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})
    tracer = trace.get_tracer("sagakit")
    with tracer.start_as_current_span(name, context=parent, kind=kind, attributes=attributes):
        carrier: dict[str, str] = {}
        _PROPAGATOR.inject(carrier)
        yield carrier.get("traceparent") or child_traceparent(traceparent)


def _preset_id_generator() -> IdGenerator:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class PresetIds(RandomIdGenerator):
        """Random ids, except for a span whose ids were chosen in advance (``record_span``)."""

        def generate_span_id(self) -> int:
            global _preset_span_id
            if _preset_span_id is not None:
                span_id, _preset_span_id = _preset_span_id, None
                return span_id
            return super().generate_span_id()

        def generate_trace_id(self) -> int:
            global _preset_trace_id
            if _preset_trace_id is not None:
                trace_id, _preset_trace_id = _preset_trace_id, None
                return trace_id
            return super().generate_trace_id()

    return PresetIds()


def _parent_context(traceparent: str | None) -> Context:
    return _PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})


def record_span(
    name: str,
    traceparent: str,
    parent: str | None,
    start_ns: int,
    end_ns: int,
    *,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Attributes | None = None,
) -> None:
    """A finished span whose own ids are those of ``traceparent`` (chosen in advance and
    already sent downstream), child of ``parent``. Call only when tracing is on."""
    global _preset_trace_id, _preset_span_id
    match = _TRACEPARENT.match(traceparent)
    if match is None:
        return
    parent_match = _TRACEPARENT.match(parent or "")
    if parent_match is not None and parent_match.group(1) != match.group(1):
        parent = None  # not the same trace (a malformed header started a new one): a root
    _preset_trace_id, _preset_span_id = int(match.group(1), 16), int(match.group(2), 16)
    try:
        span = trace.get_tracer("sagakit").start_span(
            name,
            context=_parent_context(parent),
            kind=kind,
            attributes=attributes,
            start_time=start_ns,
        )
    finally:
        _preset_trace_id = _preset_span_id = None
    span.end(end_ns)


def record_child_span(
    name: str,
    parent: str,
    start_ns: int,
    end_ns: int,
    *,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Attributes | None = None,
) -> None:
    """A finished span with a new id, child of ``parent``. Call only when tracing is on."""
    trace.get_tracer("sagakit").start_span(
        name,
        context=_parent_context(parent),
        kind=kind,
        attributes=attributes,
        start_time=start_ns,
    ).end(end_ns)


@contextmanager
def client_span(
    name: str, traceparent: str | None, attributes: Attributes | None = None
) -> Iterator[None]:
    """A CLIENT span (a call to Stripe, to the SMTP server) under ``traceparent``, the handled
    record's consumer span. Off: nothing but the flag check."""
    if not _enabled:
        yield
        return
    tracer = trace.get_tracer("sagakit")
    with tracer.start_as_current_span(
        name,
        context=_parent_context(traceparent),
        kind=trace.SpanKind.CLIENT,
        attributes=attributes,
    ):
        yield


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, for log lines; None when there is none."""
    if not _enabled:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
