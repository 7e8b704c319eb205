"""Admission control, with the bound on sagas in flight set low: a burst larger than the bound
is partly refused (503 with Retry-After) and partly accepted, and every accepted order ends
CONFIRMED: load never turns an order with stock and a good card into a cancellation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from sagakit.contracts import OrderItem, PlaceOrder
from sagakit.messaging.envelope import Envelope
from sagakit.testing.waiting import eventually
from sagaops.client import Endpoints, SagaShop

from .conftest import System, running_system

pytestmark = pytest.mark.e2e

BOUND = 4
BURST = 60


@pytest_asyncio.fixture(scope="module")
async def small_system(infra, tmp_path_factory) -> AsyncIterator[System]:  # type: ignore[no-untyped-def]
    logs = tmp_path_factory.mktemp("admission")
    async with running_system(infra, logs, SAGA_MAX_IN_FLIGHT=str(BOUND)) as system:
        shop = SagaShop(Endpoints(system.api, system.inventory_api))
        await shop.ensure_product("burst", name="Burst", price=100, currency="USD", stock=500)
        await shop.close()
        yield system


class InFlight:
    """Samples the orchestrator's sagas in flight while a burst runs."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.peak = 0
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            [row] = await self.system.query(
                "orchestrator",
                "SELECT count(*) AS n FROM sagas WHERE status IN ('RUNNING', 'COMPENSATING')",
            )
            self.peak = max(self.peak, row["n"])
            await asyncio.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()


def order(n: int) -> dict[str, object]:
    return {
        "customer_id": f"burst-{n}",
        "email": f"burst+{n}@example.com",
        "items": [{"product_id": "burst", "quantity": 1}],
        "payment_method": "pm_card_visa",
        "currency": "USD",
    }


async def finished(system: System, order_ids: list[str]) -> dict[str, str]:
    rows = await system.query(
        "orchestrator",
        "SELECT o.order_id::text AS id, o.status, s.status AS saga, s.failure_reason"
        " FROM orders o JOIN sagas s USING (order_id) WHERE o.order_id = ANY($1::uuid[])",
        [uuid.UUID(o) for o in order_ids],
    )
    return {r["id"]: f"{r['status']}/{r['saga']}/{r['failure_reason']}" for r in rows}


async def test_an_http_burst_past_the_bound_is_refused_with_retry_after_never_cancelled(
    small_system: System,
) -> None:
    sampler = InFlight(small_system)
    sampling = asyncio.create_task(sampler.run())
    async with httpx.AsyncClient(base_url=small_system.api, timeout=30) as client:
        responses = await asyncio.gather(
            *(client.post("/orders", json=order(n)) for n in range(BURST))
        )
    accepted = [r.json()["order_id"] for r in responses if r.status_code == 202]
    refused = [r for r in responses if r.status_code != 202]

    assert accepted  # the bound was not a wall
    assert refused  # and it was reached
    assert {r.status_code for r in refused} == {503}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in refused)
    assert all(r.json()["error"] == "overloaded" for r in refused)

    async def all_final() -> bool:
        states = await finished(small_system, accepted)
        return all(not s.startswith("PENDING") for s in states.values())

    await eventually(all_final, timeout=60, what="every accepted order final")
    sampler.stop()
    await sampling
    states = await finished(small_system, accepted)
    assert set(states.values()) == {"CONFIRMED/COMPLETED/None"}, states
    # A soft bound (counted a few times a second), never far past it.
    assert sampler.peak <= 2 * BOUND


async def test_a_burst_on_the_orders_topic_waits_there_and_every_order_is_confirmed(
    small_system: System,
) -> None:
    sampler = InFlight(small_system)
    sampling = asyncio.create_task(sampler.run())
    producer = AIOKafkaProducer(bootstrap_servers=small_system.infra.kafka_bootstrap_servers)
    await producer.start()
    order_ids = []
    try:
        for n in range(BURST):
            body = order(1000 + n)
            envelope = Envelope(
                payload=PlaceOrder(
                    order_id=uuid.uuid4(),
                    customer_id=str(body["customer_id"]),
                    email=str(body["email"]),
                    items=[OrderItem(product_id="burst", quantity=1)],
                    payment_method="pm_card_visa",
                    currency="USD",
                )
            )
            order_ids.append(str(envelope.payload.order_id))
            await producer.send(
                small_system.prefix + "orders",
                envelope.value(),
                key=str(envelope.payload.order_id).encode(),
                headers=envelope.headers(),
            )
        await producer.flush()
    finally:
        await producer.stop()

    async def all_confirmed() -> bool:
        states = await finished(small_system, order_ids)
        return len(states) == BURST and all(s.startswith("CONFIRMED") for s in states.values())

    await eventually(all_confirmed, timeout=90, what="every order from the topic confirmed")
    sampler.stop()
    await sampling
    assert sampler.peak <= 2 * BOUND
