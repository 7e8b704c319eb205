"""The order saga end to end: four services as real processes on real Kafka, PostgreSQL, SMTP.

Every scenario of ``make test-saga`` runs, and then each service's own database (and the SMTP
server's mailbox) must agree with the outcome.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from sagakit.testing.kafka import read_topic
from sagakit.testing.waiting import eventually
from sagaops.client import Endpoints, SagaShop
from sagaops.scenarios import SCENARIOS, Outcome, run_all

from .conftest import System

pytestmark = pytest.mark.e2e


def mails_for(mail_dir: Path, order_id: str) -> int:
    if not mail_dir.is_dir():
        return 0
    # The server names each file after its Message-ID, which is the order's (notification's
    # message_id_for): no need to open every message of the folder.
    return sum(1 for _ in mail_dir.glob(f"*-order-{order_id}_saga-shop_local-*.eml"))


@pytest.fixture(scope="module")
async def outcomes(system) -> dict[str, Outcome]:  # type: ignore[no-untyped-def]
    shop = SagaShop(Endpoints(system.api, system.inventory_api))
    try:
        results = await run_all(shop, timeout=90)
    finally:
        await shop.close()
    return {o.scenario.name: o for o in results}


async def test_every_scenario_ends_as_expected(outcomes) -> None:
    assert len(outcomes) == len(SCENARIOS)
    wrong = {n: (o.order_status, o.saga_status, o.error) for n, o in outcomes.items() if not o.ok}
    assert wrong == {}


async def db_state(system, order_id: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    oid = uuid.UUID(order_id)
    reservation = await system.query(
        "inventory", "SELECT status, total FROM reservations WHERE order_id = $1", oid
    )
    payment = await system.query(
        "payment", "SELECT status, amount FROM payments WHERE order_id = $1", oid
    )
    refund = await system.query(
        "payment", "SELECT amount FROM refunds WHERE order_id = $1 AND amount > 0", oid
    )
    refused = await system.query(
        "payment", "SELECT count(*) AS n FROM refund_attempts WHERE order_id = $1", oid
    )
    notification = await system.query(
        "notification", "SELECT status FROM notifications WHERE order_id = $1", oid
    )
    return {
        "reservation": reservation[0]["status"] if reservation else None,
        "reserved_total": reservation[0]["total"] if reservation else None,
        "payment": payment[0]["status"] if payment else None,
        "charged": payment[0]["amount"] if payment else None,
        "refunded": refund[0]["amount"] if refund else None,
        "refused_refunds": refused[0]["n"],
        "notification": notification[0]["status"] if notification else None,
        "mails": mails_for(system.infra.smtp.mail_dir, order_id),
    }


async def test_a_confirmed_order_is_reserved_charged_once_and_mailed_once(system, outcomes) -> None:
    state = await db_state(system, outcomes["success"].order_id)
    assert state == {
        "reservation": "held",
        "reserved_total": 3998,
        "payment": "succeeded",
        "charged": 3998,
        "refunded": None,
        "refused_refunds": 0,
        "notification": "sent",
        "mails": 1,
    }


@pytest.mark.parametrize("name", ["out of stock", "unknown product"])
async def test_a_failed_reservation_touches_nothing_else(system, outcomes, name) -> None:
    state = await db_state(system, outcomes[name].order_id)
    assert state["reservation"] is None
    assert (state["payment"], state["notification"], state["mails"]) == (None, None, 0)


async def test_a_declined_card_releases_the_stock(system, outcomes) -> None:
    state = await db_state(system, outcomes["card declined"].order_id)
    assert (state["reservation"], state["payment"]) == ("released", "declined")
    assert (state["refunded"], state["notification"], state["mails"]) == (None, None, 0)


async def test_a_rejected_email_refunds_the_charge_and_releases_the_stock(system, outcomes) -> None:
    state = await db_state(system, outcomes["notification rejected"].order_id)
    assert state["reservation"] == "released"
    assert (state["payment"], state["charged"], state["refunded"]) == ("succeeded", 3998, 3998)
    assert (state["notification"], state["mails"]) == ("rejected", 0)


async def test_a_refund_that_keeps_failing_needs_attention_and_stays_visible(
    system, outcomes
) -> None:
    outcome = outcomes["refund failing"]
    state = await db_state(system, outcome.order_id)
    assert (state["payment"], state["refunded"]) == ("succeeded", None)
    assert state["refused_refunds"] == 8  # COMPENSATION_MAX_ATTEMPTS in this system
    assert state["reservation"] == "held"  # the release waits behind the refund
    alerts = await read_topic(
        system.infra.kafka_bootstrap_servers, f"{system.prefix}payment.commands.dlq", expected=1
    )
    assert [dict(a.headers)["order-id"].decode() for a in alerts] == [outcome.order_id]
    async with httpx.AsyncClient(base_url=system.api) as client:
        listed = (
            await client.get(
                "/admin/sagas?status=COMPENSATION_FAILED",
                headers={"Authorization": "Bearer local-admin-token"},
            )
        ).json()
    assert outcome.order_id in [s["order_id"] for s in listed["sagas"]]


async def test_order_events_carry_one_terminal_event_per_order(system, outcomes) -> None:
    events = await read_topic(
        system.infra.kafka_bootstrap_servers,
        f"{system.prefix}order.events",
        expected=len(outcomes) + 1,
        timeout=5,
    )
    by_order: dict[str, Any] = {}
    for record in events:
        headers = {k: v.decode() for k, v in record.headers}
        by_order.setdefault(headers["order-id"], []).append(headers["message-type"])
    expected = {
        "CONFIRMED": "OrderConfirmed",
        "CANCELLED": "OrderCancelled",
        "NEEDS_ATTENTION": "OrderNeedsAttention",
    }
    for outcome in outcomes.values():
        assert by_order[outcome.order_id] == [expected[outcome.scenario.expected_order]]


async def test_duplicated_commands_and_replies_on_kafka_change_nothing(
    system: System, outcomes: dict[str, Outcome]
) -> None:
    """Re-publish every command and reply of the successful saga, byte for byte."""
    order_id = outcomes["success"].order_id
    before = await db_state(system, order_id)
    history_sql = (
        "SELECT count(*) AS n FROM saga_history h JOIN sagas s USING (saga_id) "
        "WHERE s.order_id = $1"
    )
    history_before = (await system.query("orchestrator", history_sql, uuid.UUID(order_id)))[0]["n"]
    dropped_before = {s: await system.consumed(s, "duplicate") for s in system.processes}
    bootstrap = system.infra.kafka_bootstrap_servers
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    copied = {"orchestrator": 0, "inventory": 0, "payment": 0, "notification": 0}
    try:
        for participant in ("inventory", "payment", "notification"):
            for kind, consumer in (("commands", participant), ("replies", "orchestrator")):
                topic = f"{system.prefix}{participant}.{kind}"
                for record in await read_topic(bootstrap, topic, expected=10**6, timeout=2):
                    if dict(record.headers).get("order-id", b"").decode() == order_id:
                        await producer.send_and_wait(
                            topic, record.value, key=record.key, headers=list(record.headers)
                        )
                        copied[consumer] += 1
    finally:
        await producer.stop()
    assert copied == {"orchestrator": 3, "inventory": 1, "payment": 1, "notification": 1}

    for service, n in copied.items():

        async def seen(service: str = service, n: int = n) -> bool:
            return await system.consumed(service, "duplicate") >= dropped_before[service] + n

        await eventually(seen, timeout=20, what=f"{service} to drop {n} duplicate(s)")
    assert await db_state(system, order_id) == before
    history_after = (await system.query("orchestrator", history_sql, uuid.UUID(order_id)))[0]["n"]
    assert history_after == history_before


async def test_a_participant_that_is_down_is_compensated_then_undone_when_it_returns(
    system,
) -> None:
    inventory = system.processes["inventory"]
    shop = SagaShop(Endpoints(system.api, system.inventory_api))
    try:
        await shop.ensure_product(
            "late-widget", name="Late widget", price=700, currency="USD", stock=5
        )
        await inventory.stop()
        placed = await shop.place_order(
            {
                "customer_id": "late",
                "email": "late@example.com",
                "items": [{"product_id": "late-widget", "quantity": 2}],
                "payment_method": "pm_card_visa",
                "currency": "USD",
            }
        )

        async def compensating() -> bool:
            return bool((await shop.saga(placed["saga_id"]))["status"] == "COMPENSATING")

        await eventually(compensating, timeout=15, what="the reserve step to time out")
        await system.restart("inventory")  # processes the late reserve, then the release
        order = await shop.wait_terminal(placed["order_id"], timeout=60)
        saga = await shop.saga(placed["saga_id"])
    finally:
        await shop.close()
    assert (order["status"], saga["status"]) == ("CANCELLED", "COMPENSATED")
    assert saga["steps"][0]["status"] == "COMPENSATED"
    events = [e["event"] for e in saga["history"]]
    assert "step_timed_out" in events
    stock = await system.query(
        "inventory", "SELECT available, reserved FROM products WHERE product_id = $1", "late-widget"
    )
    assert (stock[0]["available"], stock[0]["reserved"]) == (5, 0)
    [reservation] = await system.query(
        "inventory",
        "SELECT status FROM reservations WHERE order_id = $1",
        uuid.UUID(placed["order_id"]),
    )
    assert reservation["status"] == "released"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"customer_id": "c"}, 422),
        (
            {
                "customer_id": "c",
                "email": "a@b.co",
                "items": [{"product_id": "widget", "quantity": 0}],
                "payment_method": "pm_card_visa",
                "currency": "USD",
            },
            422,
        ),
        (
            {
                "customer_id": "c",
                "email": "a@b.co",
                "items": [{"product_id": "widget", "quantity": -1}],
                "payment_method": "pm_card_visa",
                "currency": "USD",
            },
            422,
        ),
        (
            {
                "customer_id": "c",
                "email": "a@b.co",
                "items": [{"product_id": "widget", "quantity": 1}],
                "payment_method": "pm_card_visa",
                "currency": "ABC",
            },
            422,
        ),
        ({"customer_id": "c" * 100_000}, 413),
    ],
)
async def test_bad_input_to_the_running_api_starts_no_saga(system, body, status) -> None:
    before = await system.query("orchestrator", "SELECT count(*) AS n FROM orders")
    async with httpx.AsyncClient(base_url=system.api) as client:
        response = await client.post("/orders", json=body)
    assert response.status_code == status
    assert response.json()["message"]
    after = await system.query("orchestrator", "SELECT count(*) AS n FROM orders")
    assert after[0]["n"] == before[0]["n"]


async def test_every_service_exports_its_lag_and_outbox_and_the_orchestrator_its_sagas(
    system, outcomes
) -> None:
    """The scrape-time gauges, from the real processes after the scenarios (one parked)."""
    texts = {}
    for service, process in system.processes.items():
        async with httpx.AsyncClient(base_url=process.base_url) as client:
            texts[service] = (await client.get("/metrics")).text
    for service, text in texts.items():
        assert f'saga_outbox_pending{{service="{service}"}}' in text
        assert "saga_consumer_lag{" in text
    orchestrator = texts["orchestrator"]
    parked = next(
        line
        for line in orchestrator.splitlines()
        if line.startswith("saga_sagas_current{status") and "COMPENSATION_FAILED" in line
    )
    assert float(parked.rsplit(" ", 1)[1]) >= 1  # the refund-failing scenario
    assert 'saga_step_duration_seconds_count{outcome="succeeded",step="reserve_inventory"}' in (
        orchestrator
    )
    assert (
        'saga_compensation_attempts_total{outcome="failed",step="process_payment:compensate"}'
        in (orchestrator)
    )
    assert "saga_order_to_terminal_seconds_count{" in orchestrator
