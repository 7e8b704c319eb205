"""One order is one connected trace across the four real processes.

The services export over OTLP/HTTP to a receiver in this test process (protobuf export requests,
decoded with opentelemetry-proto); the order comes with the caller's ``traceparent``. Then every
span of every service is in that one trace, every span's parent is in it (the one root is the
``POST /orders`` request, child of the caller's span), and each Kafka hop is a PRODUCER span in
one service parent of a CONSUMER span in the next. The payment gateway call (the local gateway
here: stripe-mock declines every charge, so no order would reach notification) and the SMTP
send are CLIENT spans under the command they serve.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import pytest_asyncio
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanPb

from sagakit.testing.waiting import eventually
from sagaops.client import Endpoints, SagaShop

from .conftest import System, running_system

pytestmark = pytest.mark.e2e

SERVICES = {"orchestrator", "inventory", "payment", "notification"}
# The command/reply hops of a confirmed order: topic (without the run's prefix) -> (from, to).
HOPS = {
    f"{p}.{kind}": (("orchestrator", p) if kind == "commands" else (p, "orchestrator"))
    for p in ("inventory", "payment", "notification")
    for kind in ("commands", "replies")
}


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, str]


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces with an ExportTraceServiceRequest."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.collect(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def collect(self, request: ExportTraceServiceRequest) -> None:
        spans = []
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans.append(
                        Span(
                            service,
                            span.name,
                            span.kind,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            {
                                a.key: a.value.string_value or str(a.value.int_value)
                                for a in span.attributes
                            },
                        )
                    )
        with self._lock:
            self.spans += spans

    def snapshot(self) -> list[Span]:
        with self._lock:
            return list(self.spans)

    def __enter__(self) -> Receiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest_asyncio.fixture(scope="module")
async def traced_system(infra, receiver, tmp_path_factory) -> AsyncIterator[System]:  # type: ignore[no-untyped-def]
    async with running_system(
        infra,
        tmp_path_factory.mktemp("tracing"),
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
        OTEL_BSP_SCHEDULE_DELAY="100",  # ms: spans reach the receiver at once
        LOG_FORMAT="json",
    ) as system:
        yield system


def gaps(spans: list[Span], caller_span: str) -> list[str]:
    """What is still missing from the trace (spans arrive in batches): empty when complete."""
    ids = {s.span_id for s in spans} | {caller_span}
    missing = [f"parent of {s.service}:{s.name}" for s in spans if s.parent_id not in ids]
    consumed = {(s.service, s.attributes.get("messaging.destination.name")) for s in spans}
    for topic, (_, to) in HOPS.items():
        if not any(t and t.endswith(topic) for service, t in consumed if service == to):
            missing.append(f"{to} consuming {topic}")
    if not any(s.name == "smtp send" for s in spans):
        missing.append("smtp send")
    return missing


async def test_one_order_is_one_connected_trace_across_the_four_services(
    traced_system: System, receiver: Receiver
) -> None:
    shop = SagaShop(Endpoints(traced_system.api, traced_system.inventory_api))
    try:
        await shop.ensure_product("traced", name="Traced", price=700, currency="USD", stock=5)
        caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)
        async with httpx.AsyncClient(base_url=traced_system.api) as http:
            response = await http.post(
                "/orders",
                json={
                    "customer_id": "tracer",
                    "email": "tracer@example.com",
                    "items": [{"product_id": "traced", "quantity": 1}],
                    "payment_method": "pm_card_visa",
                    "currency": "USD",
                },
                headers={"traceparent": f"00-{caller_trace}-{caller_span}-01"},
            )
        assert response.status_code == 202, response.text
        order_id = response.json()["order_id"]
        final = await shop.wait_terminal(order_id, timeout=20)
        saga = await shop.saga(response.json()["saga_id"])
        assert final["status"] == "CONFIRMED", (saga.get("failure_reason"), saga.get("steps"))
    finally:
        await shop.close()

    async def complete() -> list[Span] | None:
        spans = [s for s in receiver.snapshot() if s.trace_id == caller_trace]
        return None if gaps(spans, caller_span) else spans

    try:
        spans = await eventually(complete, timeout=10, what="the whole trace")
    except AssertionError:
        spans = [s for s in receiver.snapshot() if s.trace_id == caller_trace]
        raise AssertionError(f"incomplete trace: {gaps(spans, caller_span)}") from None
    await asyncio.sleep(0.5)  # a last export batch, to see nothing strays outside the trace
    everything = receiver.snapshot()

    # One trace: every span any service exported is in it.
    assert [s for s in everything if s.trace_id != caller_trace] == []
    assert {s.service for s in spans} == SERVICES  # type: ignore[union-attr]
    by_id = {s.span_id: s for s in spans}  # type: ignore[union-attr]
    assert len(by_id) == len(spans)  # type: ignore[arg-type]  # no id given twice

    # Connected, one root: the request, child of the caller's span.
    roots = [s for s in spans if s.parent_id not in by_id]  # type: ignore[union-attr]
    assert [(r.service, r.name, r.kind, r.parent_id) for r in roots] == [
        ("orchestrator", "POST /orders", SpanPb.SPAN_KIND_SERVER, caller_span)
    ]

    # Each Kafka hop: a PRODUCER span of the sender, parent of the receiver's CONSUMER span.
    consumers = [s for s in spans if s.kind == SpanPb.SPAN_KIND_CONSUMER]  # type: ignore[union-attr]
    hops = set()
    for consumer in consumers:
        producer = by_id[consumer.parent_id]
        topic = consumer.attributes["messaging.destination.name"]
        assert producer.kind == SpanPb.SPAN_KIND_PRODUCER, (producer, consumer)
        assert producer.attributes["messaging.destination.name"] == topic
        assert (
            producer.attributes["messaging.message.id"]
            == (consumer.attributes["messaging.message.id"])
        )
        assert consumer.attributes["order.id"] == order_id
        hops.add((topic.removeprefix(traced_system.prefix), producer.service, consumer.service))
    assert hops == {(topic, sender, to) for topic, (sender, to) in HOPS.items()}
    # What a consumer emits is its child: a reply's producer span is under the command's
    # consumer span, and the orchestrator's next command under the reply's.
    producers = [s for s in spans if s.kind == SpanPb.SPAN_KIND_PRODUCER]  # type: ignore[union-attr]
    assert {by_id[p.parent_id].kind for p in producers} == {
        SpanPb.SPAN_KIND_SERVER,  # the first command, emitted by the request
        SpanPb.SPAN_KIND_CONSUMER,
    }

    # The database work, and the calls out: Stripe (stripe-mock) and SMTP.
    assert {s.service for s in spans if s.name == "db commit"} == SERVICES  # type: ignore[union-attr]
    [stripe] = [s for s in spans if s.name == "payment gateway charge"]  # type: ignore[union-attr]
    [smtp] = [s for s in spans if s.name == "smtp send"]  # type: ignore[union-attr]
    assert (stripe.service, stripe.kind, stripe.attributes["payment.gateway"]) == (
        "payment",
        SpanPb.SPAN_KIND_CLIENT,
        "simulatedstripe",
    )
    assert (smtp.service, smtp.kind) == ("notification", SpanPb.SPAN_KIND_CLIENT)
    for call in (stripe, smtp):
        assert by_id[call.parent_id].kind == SpanPb.SPAN_KIND_CONSUMER
        assert call.attributes["order.id"] == order_id
