"""StripeGateway over HTTP: against stripe-mock (Stripe's official API mock, which validates every
parameter against Stripe's API spec and answers with fixtures), and against a small stub server
for the answers stripe-mock cannot give (card errors, 429, 5xx, silence, already refunded)."""

import asyncio
import contextlib
import json
import socket
import time
from typing import Any
from urllib.parse import parse_qs

import pytest

from payment.adapters.stripe_gateway import StripeGateway
from payment.adapters.stripe_http import AsyncHttpxClient
from payment.domain.gateway import ChargeDeclined, ChargeSucceeded, RefundRefused, RefundSucceeded
from sagakit.contracts import PaymentProcessed, PaymentRefunded
from sagakit.errors import GatewayUnavailable

pytestmark = pytest.mark.integration

CHARGE = {
    "amount": 2599,
    "currency": "EUR",
    "payment_method": "pm_card_visa",
    "idempotency_key": "saga-1:process_payment",
    "metadata": {"order_id": "order-1", "saga_id": "saga-1"},
}


class RecordingClient(AsyncHttpxClient):
    """The real HTTP client, noting each exchange. stripe-mock answers every PaymentIntent with
    its fixture status ``requires_payment_method``; ``intent_status`` puts in its place the status
    real Stripe gives (``succeeded`` for a confirmed pm_card_visa), nothing else is changed."""

    def __init__(self, intent_status: dict[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.intent_status = intent_status or {}
        self.exchanges: list[dict[str, Any]] = []

    async def request_async(self, method, url, headers, post_data=None):
        content, status, response_headers = await super().request_async(
            method, url, headers, post_data
        )
        self.exchanges.append(
            {
                "method": method,
                "url": url,
                "headers": dict(headers),
                "params": parse_qs(post_data or ""),
                "status": status,
                "response_headers": dict(response_headers),
            }
        )
        if status == 200 and "/v1/payment_intents" in url and method in self.intent_status:
            body = json.loads(content)
            body["status"] = self.intent_status[method]
            content = json.dumps(body).encode()
        return content, status, response_headers


@contextlib.asynccontextmanager
async def stripe_gateway(api_base: str, timeout_s: float = 5.0, **client_options):
    http = RecordingClient(timeout_s=timeout_s, **client_options)
    gateway = StripeGateway(
        api_key="sk_test_123", api_base=api_base, timeout_s=timeout_s, http_client=http
    )
    try:
        yield gateway, http
    finally:
        await gateway.close()


# --- stripe-mock ---------------------------------------------------------------------------------


async def test_a_charge_is_one_confirmed_payment_intent_with_the_idempotency_key(
    stripe_mock: str,
) -> None:
    async with stripe_gateway(stripe_mock, intent_status={"post": "succeeded"}) as (gateway, http):
        result = await gateway.charge(**CHARGE)

    assert isinstance(result, ChargeSucceeded)
    assert result.payment_id.startswith("pi_")
    [exchange] = http.exchanges
    assert exchange["status"] == 200  # stripe-mock accepted every parameter we sent
    assert exchange["method"] == "post"
    assert exchange["url"] == f"{stripe_mock}/v1/payment_intents"
    assert exchange["params"] == {
        "amount": ["2599"],
        "currency": ["eur"],
        "confirm": ["true"],
        "payment_method": ["pm_card_visa"],
        "allowed_payment_method_types[0]": ["card"],
        "error_on_requires_action": ["true"],
        "metadata[order_id]": ["order-1"],
        "metadata[saga_id]": ["saga-1"],
    }
    assert exchange["headers"]["Idempotency-Key"] == "saga-1:process_payment"
    assert exchange["response_headers"]["idempotency-key"] == "saga-1:process_payment"  # echoed


async def test_an_intent_not_succeeded_is_not_reported_as_a_charge(stripe_mock: str) -> None:
    async with stripe_gateway(stripe_mock) as (gateway, _):  # stripe-mock's own fixture status
        result = await gateway.charge(**CHARGE)
    assert isinstance(result, ChargeDeclined)
    assert result.decline_code == "payment_requires_payment_method"
    assert result.payment_id is not None
    assert result.payment_id.startswith("pi_")


async def test_a_processing_intent_is_looked_up_before_anything_is_reported(
    stripe_mock: str,
) -> None:
    async with stripe_gateway(
        stripe_mock, intent_status={"post": "processing", "get": "succeeded"}
    ) as (
        gateway,
        http,
    ):
        result = await gateway.charge(**CHARGE)
    assert isinstance(result, ChargeSucceeded)
    _create, lookup = http.exchanges
    assert lookup["method"] == "get"
    assert lookup["url"] == f"{stripe_mock}/v1/payment_intents/{result.payment_id}"


async def test_a_refund_refunds_the_payment_intent_with_the_idempotency_key(
    stripe_mock: str,
) -> None:
    async with stripe_gateway(stripe_mock) as (gateway, http):
        result = await gateway.refund(
            payment_id="pi_123", amount=2599, idempotency_key="saga-1:refund_payment:1"
        )
    assert isinstance(result, RefundSucceeded)
    assert result.refund_id.startswith("re_")
    [exchange] = http.exchanges
    assert exchange["url"] == f"{stripe_mock}/v1/refunds"
    assert exchange["params"] == {"payment_intent": ["pi_123"], "amount": ["2599"]}
    assert exchange["headers"]["Idempotency-Key"] == "saga-1:refund_payment:1"


async def test_an_unreachable_stripe_is_unavailable_not_a_decline() -> None:
    async with stripe_gateway(api_base=f"http://127.0.0.1:{closed_port()}") as (gateway, _):
        with pytest.raises(GatewayUnavailable):
            await gateway.charge(**CHARGE)
        with pytest.raises(GatewayUnavailable):
            await gateway.refund(payment_id="pi_1", amount=1, idempotency_key="k")


# --- a stub for what stripe-mock cannot answer ---------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def stub_stripe(routes: dict[tuple[str, str], tuple[int, dict[str, Any]]] | None = None):
    """An HTTP server answering ``routes[(METHOD, path)]``; a route missing means silence."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode().split("\r\n")
            method, target, _ = request_line.split(" ")
            length = 0
            for line in header_lines:
                name, _, value = line.partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            route = (routes or {}).get((method, target.split("?")[0]))
            if route is None:
                await done.wait()  # accept, never answer
                return
            status, body = route
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        finally:
            writer.close()

    done = asyncio.Event()
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        done.set()
        server.close()
        await server.wait_closed()


def error(type_: str, code: str | None = None, **fields: object) -> dict[str, Any]:
    return {"error": {"type": type_, "code": code, "message": f"{type_} {code}", **fields}}


@pytest.mark.parametrize(
    ("code", "decline_code", "expected"),
    [
        ("card_declined", "insufficient_funds", "insufficient_funds"),
        ("card_declined", "generic_decline", "generic_decline"),
        ("expired_card", None, "expired_card"),  # no decline code: Stripe's error code
    ],
)
async def test_a_card_error_is_a_decline_with_stripes_code(code, decline_code, expected) -> None:
    body = error(
        "card_error",
        code,
        decline_code=decline_code,
        payment_intent={"id": "pi_declined", "object": "payment_intent"},
    )
    async with (
        stub_stripe({("POST", "/v1/payment_intents"): (402, body)}) as base,
        stripe_gateway(api_base=base) as (gateway, _),
    ):
        result = await gateway.charge(**CHARGE)
    assert result == ChargeDeclined(
        decline_code=expected, message=f"card_error {code}", payment_id="pi_declined"
    )


async def test_an_unknown_payment_method_is_a_decline() -> None:
    body = error("invalid_request_error", "resource_missing", param="payment_method")
    async with (
        stub_stripe({("POST", "/v1/payment_intents"): (400, body)}) as base,
        stripe_gateway(api_base=base) as (gateway, _),
    ):
        result = await gateway.charge(**CHARGE)
    assert isinstance(result, ChargeDeclined)
    assert result.decline_code == "resource_missing"


@pytest.mark.parametrize(
    "status", [429, 500, 502, 503, 409], ids=["429", "500", "502", "503", "409-key-in-use"]
)
async def test_rate_limits_and_server_errors_are_unavailable_not_declines(status) -> None:
    body = error("api_error", "rate_limit" if status == 429 else None)
    routes = {
        ("POST", "/v1/payment_intents"): (status, body),
        ("POST", "/v1/refunds"): (status, body),
    }
    async with stub_stripe(routes) as base, stripe_gateway(api_base=base) as (gateway, http):
        with pytest.raises(GatewayUnavailable):
            await gateway.charge(**CHARGE)
        with pytest.raises(GatewayUnavailable):
            await gateway.refund(payment_id="pi_1", amount=1, idempotency_key="k")
    assert len(http.exchanges) == 2  # no hidden retries: the consumer retries, with the key


async def test_a_silent_stripe_times_out_as_unavailable_within_the_timeout() -> None:
    async with stub_stripe() as base, stripe_gateway(api_base=base, timeout_s=0.3) as (gateway, _):
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable):
            await gateway.charge(**CHARGE)
        assert time.monotonic() - started < 2


async def test_a_refund_of_a_refunded_payment_answers_with_the_earlier_refund() -> None:
    routes = {
        ("POST", "/v1/refunds"): (400, error("invalid_request_error", "charge_already_refunded")),
        ("GET", "/v1/refunds"): (
            200,
            {
                "object": "list",
                "url": "/v1/refunds",
                "has_more": False,
                "data": [{"id": "re_earlier", "object": "refund", "status": "succeeded"}],
            },
        ),
    }
    async with stub_stripe(routes) as base, stripe_gateway(api_base=base) as (gateway, http):
        result = await gateway.refund(payment_id="pi_1", amount=100, idempotency_key="k:2")
    assert result == RefundSucceeded(refund_id="re_earlier")
    assert "payment_intent=pi_1" in http.exchanges[1]["url"]


async def test_a_refund_stripe_refuses_is_refused_with_its_code() -> None:
    routes = {("POST", "/v1/refunds"): (400, error("invalid_request_error", "amount_too_large"))}
    async with stub_stripe(routes) as base, stripe_gateway(api_base=base) as (gateway, _):
        result = await gateway.refund(payment_id="pi_1", amount=100, idempotency_key="k:1")
    assert isinstance(result, RefundRefused)
    assert result.reason == "amount_too_large"


# --- through the handlers ------------------------------------------------------------------------


async def test_an_order_is_charged_and_refunded_through_stripe(
    harness_for, saga, stripe_mock: str
) -> None:
    async with stripe_gateway(stripe_mock, intent_status={"post": "succeeded"}) as (gateway, http):
        harness = harness_for(gateway)
        await harness.deliver(saga.process("pm_card_visa", amount=2599, currency="EUR"))
        await harness.deliver(saga.process("pm_card_visa", amount=2599, currency="EUR"))
        await harness.deliver(saga.refund())

    processed, processed_again, refunded = (r.payload for r in await harness.replies())
    assert isinstance(processed, PaymentProcessed)
    assert processed.payment_id.startswith("pi_")
    assert processed_again == processed  # the re-sent command was answered from our record
    assert isinstance(refunded, PaymentRefunded)
    assert refunded.refund_id is not None
    assert refunded.refund_id.startswith("re_")
    assert refunded.amount == 2599
    charge, refund = http.exchanges  # one charge, one refund: nothing asked twice
    assert charge["headers"]["Idempotency-Key"] == f"{saga.saga_id}:process_payment"
    assert charge["params"]["metadata[order_id]"] == [str(saga.order_id)]
    assert refund["params"] == {"payment_intent": [processed.payment_id], "amount": ["2599"]}
    assert refund["headers"]["Idempotency-Key"] == f"{saga.saga_id}:refund_payment:1"
