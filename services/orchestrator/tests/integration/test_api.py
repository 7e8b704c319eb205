"""The public order API: bad input answers 4xx with a clear message and starts nothing;
Idempotency-Key replays; look-ups; admin authentication."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import orjson
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from sqlalchemy import func, select

from orchestrator.adapters.orm import Order, Saga
from sagakit.messaging.tracing import trace_id
from sagakit.outbox.tables import OutboxMessage

pytestmark = pytest.mark.integration

VALID = {
    "customer_id": "cust-api",
    "email": "buyer@example.com",
    "items": [{"product_id": "widget", "quantity": 2}],
    "payment_method": "pm_card_visa",
    "currency": "USD",
}


@pytest_asyncio.fixture
async def api(api_client: Callable[..., Awaitable[httpx.AsyncClient]]) -> httpx.AsyncClient:
    return await api_client(order_max_body_bytes=4096, rate_limit_per_minute=5)


async def count(sessions, model) -> int:  # type: ignore[no-untyped-def]
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"customer_id": None}, "customer_id"),
        ({"email": None}, "email"),
        ({"items": None}, "items"),
        ({"items": []}, "items"),
        ({"items": [{"product_id": "widget", "quantity": 0}]}, "quantity"),
        ({"items": [{"product_id": "widget", "quantity": -3}]}, "quantity"),
        ({"items": [{"product_id": "widget", "quantity": 1.5}]}, "quantity"),
        ({"items": [{"product_id": "widget", "quantity": "2"}]}, "quantity"),
        ({"currency": "XYZ"}, "unknown currency"),
        ({"currency": "usd"}, "unknown currency"),
        ({"email": "not-an-email"}, "email"),
        ({"unit_price": 1}, "unit_price"),  # prices never come from the client
        # Control characters in identifiers and addresses (NUL: PostgreSQL cannot store it).
        ({"customer_id": "c\u0000"}, "customer_id"),
        ({"customer_id": "c\u001b[2J"}, "customer_id"),
        ({"customer_id": "   "}, "customer_id"),
        ({"email": "me\u0000@example.com"}, "email"),
        ({"email": "me@example.com\n"}, "email"),
        ({"payment_method": "pm_card_visa\u0000"}, "payment_method"),
        ({"payment_method": "pm\u0085"}, "payment_method"),
        ({"currency": "US\u0000"}, "currency"),
        ({"items": [{"product_id": "wid\u0000get", "quantity": 1}]}, "product_id"),
    ],
)
async def test_bad_input_is_refused_with_a_clear_message_and_starts_nothing(
    api, orchestrator_sessions, change, needle
) -> None:
    body = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    response = await api.post("/orders", json=body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["error"] == "invalid_request"
    assert needle in problem["message"]
    assert await count(orchestrator_sessions, Order) == 0
    assert await count(orchestrator_sessions, OutboxMessage) == 0


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe\x00garbage\x80",  # not UTF-8
        bytes(range(256)),  # random bytes
        b'{"customer_id": "caf\xe9"}',  # Latin-1, not UTF-8
        b"[" * 1500 + b"]" * 1500,  # nested deeper than the parser follows
        b'{"customer_id": ' + b'{"a":' * 600 + b"1" + b"}" * 601,
    ],
)
async def test_undecodable_or_too_deep_json_is_422_in_the_one_shape(
    api, orchestrator_sessions, content
) -> None:
    response = await api.post(
        "/orders", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert set(response.json()) == {"error", "message", "details"}
    assert response.json()["error"] == "invalid_request"
    assert await count(orchestrator_sessions, Order) == 0


async def test_oversized_bodies_are_413_with_or_without_a_length(
    api, orchestrator_sessions
) -> None:
    big = orjson.dumps({**VALID, "customer_id": "x" * 10_000})  # the limit here is 4096 bytes

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    for content in (big, chunked()):
        response = await api.post(
            "/orders", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"
    assert await count(orchestrator_sessions, Order) == 0


@pytest.mark.parametrize(
    "query",
    [
        "offset=9223372036854775808",  # unknown parameters are ignored, never passed on
        "version=9223372036854775808",
        "version=-1",
        "current_step=99999999999999999999",
        "min_age_s=1e308",
        "min_age_s=inf",
        "min_age_s=nan",
        "limit=0",
        "limit=9223372036854775808",
        "customer_id=c%00",
        "definition=%00",
        "reason=x%1b",
        "cursor=%00",
        "cursor=" + "A" * 300,
    ],
)
async def test_admin_query_parameters_are_bounded(api, query) -> None:
    token = {"Authorization": "Bearer local-admin-token"}
    response = await api.get(f"/admin/sagas?{query}", headers=token)
    if query.startswith("offset"):
        assert response.status_code == 200
    else:
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "invalid_request"
    stuck = await api.get(f"/admin/sagas/stuck?grace_s={query.split('=')[1]}", headers=token)
    assert stuck.status_code in (200, 422)


async def test_admin_actions_refuse_control_characters(api, orchestrator_sessions) -> None:
    token = {"Authorization": "Bearer local-admin-token"}
    placed = (await api.post("/orders", json=VALID)).json()
    for body, headers in (
        ({"reason": "stop\u0000"}, {}),
        ({"reason": "x" * 1001}, {}),
        ({"reason": "ok"}, {"X-Operator": "eve\x7f"}),
    ):
        response = await api.post(
            f"/admin/sagas/{placed['saga_id']}/cancel", json=body, headers={**token, **headers}
        )
        assert response.status_code == 422, response.text
    async with orchestrator_sessions() as session:
        saga = await session.get(Saga, uuid.UUID(placed["saga_id"]))
    assert saga is not None
    assert saga.status == "RUNNING"


async def test_an_order_is_accepted_and_its_first_command_is_in_the_outbox(
    api, orchestrator_sessions
) -> None:
    response = await api.post("/orders", json=VALID)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "PENDING"
    order = (await api.get(f"/orders/{body['order_id']}")).json()
    assert (order["status"], order["saga_id"]) == ("PENDING", body["saga_id"])
    saga = (
        await api.get(
            f"/sagas/{body['saga_id']}", headers={"Authorization": "Bearer local-admin-token"}
        )
    ).json()
    assert saga["definition"] == {"name": "order", "version": 1}
    assert [s["status"] for s in saga["steps"]] == ["RUNNING", "PENDING", "PENDING"]
    assert saga["history"][0]["event"] == "saga_started"
    assert await count(orchestrator_sessions, OutboxMessage) == 1


async def test_an_order_joins_the_callers_trace(api, orchestrator_sessions) -> None:
    caller = "00-" + "c" * 32 + "-" + "d" * 16 + "-01"
    response = await api.post("/orders", json=VALID, headers={"traceparent": caller})
    assert response.status_code == 202
    saga_id = uuid.UUID(response.json()["saga_id"])
    async with orchestrator_sessions() as session:
        saga = await session.get(Saga, saga_id)
    assert saga is not None
    assert trace_id(saga.traceparent) == "c" * 32
    assert saga.traceparent != caller  # a span of its own in the caller's trace


async def test_the_same_idempotency_key_places_one_order(api, orchestrator_sessions) -> None:
    headers = {"Idempotency-Key": "key-123"}
    first = await api.post("/orders", json=VALID, headers=headers)
    again = await api.post("/orders", json=VALID, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["order_id"] == again.json()["order_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await count(orchestrator_sessions, Order) == 1
    assert await count(orchestrator_sessions, Saga) == 1

    other = {**VALID, "items": [{"product_id": "gadget", "quantity": 1}]}
    conflict = await api.post("/orders", json=other, headers=headers)
    assert conflict.status_code == 422
    assert conflict.json()["error"] == "idempotency_conflict"
    assert await count(orchestrator_sessions, Order) == 1


async def test_concurrent_requests_with_one_key_place_one_order(api, orchestrator_sessions) -> None:
    import asyncio

    headers = {"Idempotency-Key": "race"}
    responses = await asyncio.gather(
        *(api.post("/orders", json=VALID, headers=headers) for _ in range(5))
    )
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert await count(orchestrator_sessions, Order) == 1


async def test_the_rate_limit_answers_429(api) -> None:
    statuses = [(await api.post("/orders", json=VALID)).status_code for _ in range(6)]
    assert statuses == [202] * 5 + [429]


async def test_unknown_ids_answer_404(api) -> None:
    import uuid

    token = {"Authorization": "Bearer local-admin-token"}
    for path in (f"/orders/{uuid.uuid4()}", f"/sagas/{uuid.uuid4()}"):
        response = await api.get(path, headers=token)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    assert (await api.get("/orders/not-a-uuid")).status_code == 422


async def test_admin_endpoints_need_the_bearer_token(api) -> None:
    assert (await api.get("/admin/sagas")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (await api.get("/admin/sagas", headers=wrong)).status_code == 401
    token = {"Authorization": "Bearer local-admin-token"}
    placed = (await api.post("/orders", json=VALID)).json()
    listed = (await api.get("/admin/sagas?status=RUNNING", headers=token)).json()
    assert [s["saga_id"] for s in listed["sagas"]] == [placed["saga_id"]]
    retry = await api.post(f"/admin/sagas/{placed['saga_id']}/retry", headers=token)
    assert retry.status_code == 409  # only COMPENSATION_FAILED sagas can be retried
    assert "COMPENSATION_FAILED" in retry.json()["message"]


def refusals(surface: str) -> float:
    labels = {"surface": surface, "reason": "too_many_failures"}
    return REGISTRY.get_sample_value("saga_admin_auth_refused_total", labels) or 0.0


async def test_a_client_guessing_admin_tokens_is_refused_for_a_while(
    api_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    api = await api_client(admin_max_failed_logins=3, admin_failed_login_window_s=60)
    right, wrong = {"Authorization": "Bearer local-admin-token"}, {"Authorization": "Bearer no"}
    for _ in range(5):  # no credential: a 401 that guesses nothing, not counted
        assert (await api.get("/admin/sagas")).status_code == 401
    for _ in range(2):
        assert (await api.get("/admin/sagas", headers=wrong)).status_code == 401
    assert (await api.get("/admin/sagas", headers=right)).status_code == 200  # clears the record
    for _ in range(3):
        assert (await api.get("/admin/sagas", headers=wrong)).status_code == 401
    before = refusals("admin_api")

    refused = await api.get("/admin/sagas", headers=right)  # even the right token, for now
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"] == "rate_limited"
    assert "too many wrong admin credentials" in refused.json()["message"]
    assert refusals("admin_api") == before + 1

    # The console's login shares the record: refused too, as a page saying why.
    login = await api.post(
        "/console/login", data={"operator": "alice", "token": "local-admin-token"}
    )
    assert login.status_code == 429
    assert "Retry-After" in login.headers
    assert "Too many wrong tokens" in login.text
    assert "set-cookie" not in login.headers


async def test_wrong_console_logins_count_towards_the_limit(
    api_client: Callable[..., Awaitable[httpx.AsyncClient]],
) -> None:
    api = await api_client(admin_max_failed_logins=2)
    for _ in range(2):
        wrong = await api.post("/console/login", data={"operator": "mallory", "token": "guess"})
        assert wrong.status_code == 401
    right = {"Authorization": "Bearer local-admin-token"}
    assert (await api.get("/admin/sagas", headers=right)).status_code == 429
