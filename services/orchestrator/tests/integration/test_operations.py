"""The admin operations surface: filtered keyset listing, timeline, stuck sagas, audited
cancel and retry (participants are silent here, so a placed saga waits on its first step)."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

pytestmark = pytest.mark.integration

TOKEN = {"Authorization": "Bearer local-admin-token", "X-Operator": "alice"}


def order(customer: str) -> dict[str, object]:
    return {
        "customer_id": customer,
        "email": "buyer@example.com",
        "items": [{"product_id": "widget", "quantity": 1}],
        "payment_method": "pm_card_visa",
        "currency": "USD",
    }


@pytest_asyncio.fixture
async def api(api_client: Callable[..., Awaitable[httpx.AsyncClient]]) -> httpx.AsyncClient:
    return await api_client()


async def place(api: httpx.AsyncClient, customer: str) -> dict[str, str]:
    response = await api.post("/orders", json=order(customer))
    assert response.status_code == 202, response.text
    body: dict[str, str] = response.json()
    return body


async def test_cancel_mid_saga_compensates_and_is_audited(api, orchestrator_sessions) -> None:  # type: ignore[no-untyped-def]
    placed = await place(api, "cust-cancel")
    saga_id = placed["saga_id"]
    response = await api.post(
        f"/admin/sagas/{saga_id}/cancel", json={"reason": "customer called"}, headers=TOKEN
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] != "RUNNING"
    detail = (await api.get(f"/sagas/{placed['order_id']}", headers=TOKEN)).json()
    assert detail["saga_id"] == saga_id
    cancel_lines = [h for h in detail["history"] if "alice" in (h["cause"] or "")]
    assert cancel_lines
    assert "customer called" in str(cancel_lines)
    # Only the step that was started is compensated; later steps never ran.
    started = [s for s in detail["steps"] if s["command_message_id"] is not None]
    assert [s["position"] for s in started] == [0]
    async with orchestrator_sessions() as session:
        rows = (
            await session.execute(
                text("SELECT operator, action, reason, outcome FROM admin_actions WHERE target=:t"),
                {"t": f"saga:{saga_id}"},
            )
        ).all()
    assert [tuple(r) for r in rows] == [("alice", "cancel", "customer called", "done")]


async def test_cancel_of_a_terminal_saga_is_409_and_changes_nothing(
    api, orchestrator_sessions
) -> None:  # type: ignore[no-untyped-def]
    placed = await place(api, "cust-terminal")
    saga_id = placed["saga_id"]
    async with orchestrator_sessions() as session:
        await session.execute(
            text("UPDATE sagas SET status='COMPLETED' WHERE saga_id=:s"), {"s": saga_id}
        )
        await session.commit()
    before = (await api.get(f"/sagas/{saga_id}", headers=TOKEN)).json()
    response = await api.post(
        f"/admin/sagas/{saga_id}/cancel", json={"reason": "too late"}, headers=TOKEN
    )
    assert response.status_code == 409
    assert response.json()["error"] == "not_cancellable"
    after = (await api.get(f"/sagas/{saga_id}", headers=TOKEN)).json()
    assert after == before
    missing = await api.post(
        f"/admin/sagas/{uuid.uuid4()}/cancel", json={"reason": "x"}, headers=TOKEN
    )
    assert missing.status_code == 404


async def test_concurrent_cancels_one_wins(api) -> None:  # type: ignore[no-untyped-def]
    placed = await place(api, "cust-race")
    url = f"/admin/sagas/{placed['saga_id']}/cancel"
    responses = await asyncio.gather(
        *(api.post(url, json={"reason": f"r{i}"}, headers=TOKEN) for i in range(2))
    )
    assert sorted(r.status_code for r in responses) == [202, 409]


async def test_list_filters_and_keyset_paging(api) -> None:  # type: ignore[no-untyped-def]
    customer = f"cust-{uuid.uuid4().hex[:8]}"
    placed = [await place(api, customer) for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"customer_id": customer, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/admin/sagas", params=params, headers=TOKEN)).json()
        seen += [s["saga_id"] for s in page["sagas"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [p["saga_id"] for p in reversed(placed)]
    bad = await api.get("/admin/sagas", params={"cursor": "nope"}, headers=TOKEN)
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_request"
    stuck = await api.get("/admin/sagas/stuck", params={"running_over_s": 0}, headers=TOKEN)
    assert {p["saga_id"] for p in placed} <= {s["saga"]["saga_id"] for s in stuck.json()["stuck"]}
