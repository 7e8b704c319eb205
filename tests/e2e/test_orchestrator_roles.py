"""The orchestrator's API role and its engine role in two processes (`ORCHESTRATOR_SPLIT=1`).

The API process starts sagas (their first commands) and consumes nothing; the engine process
takes every reply. Orders placed while the engine is down are accepted, and finish once it is
back: nothing of a saga's progress lives in the API process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from sagaops.client import Endpoints, SagaShop

from .conftest import System, running_split_system

pytestmark = pytest.mark.e2e

ORDER = {
    "customer_id": "roles",
    "email": "roles@example.com",
    "items": [{"product_id": "roles", "quantity": 1}],
    "payment_method": "pm_card_visa",
    "currency": "USD",
}


@pytest_asyncio.fixture(scope="module")
async def split(infra, tmp_path_factory) -> AsyncIterator[System]:  # type: ignore[no-untyped-def]
    logs = tmp_path_factory.mktemp("roles")
    # Steps may wait for a stopped engine longer than the e2e default of 4 s.
    async with running_split_system(infra, logs, SAGA_STEP_TIMEOUT_S="60") as system:
        shop = SagaShop(Endpoints(system.api, system.inventory_api))
        await shop.ensure_product("roles", name="Roles", price=250, currency="USD", stock=100)
        await shop.close()
        yield system


async def test_orders_complete_with_replies_taken_by_the_engine_process(split: System) -> None:
    shop = SagaShop(Endpoints(split.api, split.inventory_api))
    try:
        placed = await shop.place_order(ORDER)
        final = await shop.wait_terminal(placed["order_id"], timeout=30)
    finally:
        await shop.close()
    assert final["status"] == "CONFIRMED"
    assert await split.consumed("orchestrator-engine", "handled") >= 3  # a reply per step
    assert await split.consumed("orchestrator", "handled") == 0
    engine = split.processes["orchestrator-engine"].base_url
    # The engine's port serves health and metrics, not the order API.
    async with httpx.AsyncClient(timeout=5) as client:
        assert (await client.post(engine + "/orders", json=ORDER)).status_code == 404


async def test_orders_placed_while_the_engine_is_down_finish_when_it_is_back(
    split: System,
) -> None:
    engine = split.processes["orchestrator-engine"]
    await engine.stop()
    shop = SagaShop(Endpoints(split.api, split.inventory_api))
    try:
        assert await split.processes["orchestrator"].status("/readyz") == 200
        placed = [await shop.place_order({**ORDER, "customer_id": f"roles-{n}"}) for n in range(3)]
        rows = await split.query(
            "orchestrator",
            "SELECT status FROM sagas WHERE saga_id = ANY($1::uuid[])",
            [p["saga_id"] for p in placed],
        )
        assert [r["status"] for r in rows] == ["RUNNING"] * 3  # started, waiting on replies
        await split.restart("orchestrator-engine")
        finals = [await shop.wait_terminal(p["order_id"], timeout=30) for p in placed]
    finally:
        await shop.close()
    assert [f["status"] for f in finals] == ["CONFIRMED"] * 3
