"""OpenTelemetry tracing, on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Off (the default) installs no SDK tracer provider: the OpenTelemetry API stays a no-op and
:func:`span_from_traceparent` only derives the child ``traceparent`` string, as before. On, it
installs an SDK provider exporting over OTLP/HTTP and opens a real span whose parent is the
incoming ``traceparent`` (HTTP header or Kafka envelope header), so one order is one trace.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from sagakit.messaging.tracing import child_traceparent

_PROPAGATOR = TraceContextTextMapPropagator()
_enabled = False


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

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
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


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span, for log lines; None when there is none."""
    if not _enabled:
        return None
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def record_spans(
    name: str,
    traceparents: list[str],
    start_ns: int,
    end_ns: int,
    *,
    kind: trace.SpanKind = trace.SpanKind.CONSUMER,
) -> None:
    """One finished span per record, each the child of that record's traceparent (a batch
    handled in one transaction: the records share its start and end). Call only when on."""
    tracer = trace.get_tracer("sagakit")
    for traceparent in traceparents:
        parent = _PROPAGATOR.extract({"traceparent": traceparent})
        tracer.start_span(name, context=parent, kind=kind, start_time=start_ns).end(end_ns)
