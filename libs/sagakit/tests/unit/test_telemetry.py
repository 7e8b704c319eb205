"""One order, one connected trace: spans chained only through traceparent strings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sagakit import telemetry
from sagakit.messaging.tracing import child_traceparent, new_traceparent, trace_id


def _produce(traceparent: str) -> str:
    with telemetry.span_from_traceparent("produce", traceparent, kind=SpanKind.PRODUCER) as header:
        return header


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    assert telemetry.configure_tracing("test", exporter=memory)
    yield memory
    telemetry._enabled = False


def test_off_derives_child_traceparent_without_spans(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "_enabled", False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert not telemetry.configure_tracing("test")
    incoming = new_traceparent()
    with telemetry.span_from_traceparent("x", incoming) as outgoing:
        assert trace_id(outgoing) == trace_id(incoming)
        assert telemetry.current_ids() is None


def test_hops_through_traceparent_make_one_connected_trace(
    exporter: InMemorySpanExporter,
) -> None:
    exporter.clear()
    incoming = new_traceparent()  # the client's header
    with telemetry.span_from_traceparent("POST /orders", incoming, kind=SpanKind.SERVER) as tp1:
        header = _produce(tp1)
    # another process: only the Kafka header crosses
    with telemetry.span_from_traceparent("consume", header, kind=SpanKind.CONSUMER) as tp2:
        ids = telemetry.current_ids()
        with telemetry.span_from_traceparent("reply", tp2, kind=SpanKind.PRODUCER):
            pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"POST /orders", "produce", "consume", "reply"}
    assert {format(s.context.trace_id, "032x") for s in spans.values()} == {trace_id(incoming)}
    parent_of = {n: s.parent.span_id if s.parent else None for n, s in spans.items()}
    assert parent_of["produce"] == spans["POST /orders"].context.span_id
    assert parent_of["consume"] == spans["produce"].context.span_id
    assert parent_of["reply"] == spans["consume"].context.span_id
    assert ids == (trace_id(incoming), format(spans["consume"].context.span_id, "016x"))


def test_json_log_lines_carry_service_and_trace_ids(exporter: InMemorySpanExporter) -> None:
    import logging

    import orjson

    from sagakit.ops.logging import JsonFormatter

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    incoming = new_traceparent()
    with telemetry.span_from_traceparent("work", incoming):
        line = orjson.loads(JsonFormatter("payment").format(record))
    assert line["service"] == "payment"
    assert line["trace_id"] == trace_id(incoming)
    assert len(line["span_id"]) == 16


def test_recorded_spans_keep_the_ids_sent_downstream_in_advance(
    exporter: InMemorySpanExporter,
) -> None:
    """A batch's records belong to different traces: each CONSUMER span's id is chosen before
    the handler runs (what it emits names it as parent), and the span is recorded after."""
    exporter.clear()
    first, second = new_traceparent(), new_traceparent()
    consumed = [child_traceparent(first), child_traceparent(second)]
    for produced, own in zip([first, second], consumed, strict=True):
        telemetry.record_span("t process", own, produced, 1_000, 2_000, kind=SpanKind.CONSUMER)
    telemetry.record_child_span("db commit", consumed[0], 1_500, 1_900)
    spans = exporter.get_finished_spans()
    assert [_tp_ids(s) for s in spans[:2]] == [own.split("-")[1:3] for own in consumed]
    assert [format(s.parent.span_id, "016x") for s in spans if s.parent] == [
        first.split("-")[2],
        second.split("-")[2],
        consumed[0].split("-")[2],
    ]
    assert spans[2].context.trace_id == spans[0].context.trace_id
    # the next span gets fresh ids again
    with telemetry.span_from_traceparent("next", first):
        pass
    assert exporter.get_finished_spans()[-1].context.span_id not in {
        s.context.span_id for s in spans
    }


def test_a_span_whose_parent_is_from_another_trace_is_a_root(
    exporter: InMemorySpanExporter,
) -> None:
    exporter.clear()
    own = new_traceparent()
    telemetry.record_span("x", own, new_traceparent(), 1_000, 2_000)
    [span] = exporter.get_finished_spans()
    assert span.parent is None
    assert _tp_ids(span) == own.split("-")[1:3]


def test_client_span_is_a_child_of_the_record_and_free_when_off(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter.clear()
    consumed = new_traceparent()
    with telemetry.client_span("smtp send", consumed, {"order.id": "o"}):
        pass
    [span] = exporter.get_finished_spans()
    assert (span.name, span.kind, format(span.parent.span_id, "016x")) == (  # type: ignore[union-attr]
        "smtp send",
        SpanKind.CLIENT,
        consumed.split("-")[2],
    )
    monkeypatch.setattr(telemetry, "_enabled", False)
    with telemetry.client_span("smtp send", consumed):
        pass
    assert len(exporter.get_finished_spans()) == 1


def _tp_ids(span: ReadableSpan) -> list[str]:
    return [format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")]


def test_json_log_lines_name_the_saga_the_order_and_the_record_trace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no current span (a consumer's record, or tracing off), the ids come from the
    record's traceparent; saga and order ids from ``log_ids`` or the log call's extra."""
    import logging

    import orjson

    from sagakit.ops.logging import JsonFormatter, log_ids

    monkeypatch.setattr(telemetry, "_enabled", False)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    consumed = new_traceparent()
    with log_ids("s-1", "o-1", consumed):
        line = orjson.loads(JsonFormatter("payment").format(record))
    assert (line["saga_id"], line["order_id"]) == ("s-1", "o-1")
    assert (line["trace_id"], line["span_id"]) == tuple(consumed.split("-")[1:3])
    plain = orjson.loads(JsonFormatter("payment").format(record))
    assert not {"saga_id", "order_id", "trace_id"} & set(plain)
    record.saga_id = "s-2"
    assert orjson.loads(JsonFormatter("payment").format(record))["saga_id"] == "s-2"
