"""The saga-level metrics move: step durations and outcomes, compensation attempts, time from
order to terminal status, sagas by status, stuck sagas and the outbox backlog (real database)."""

import uuid

import pytest
from prometheus_client import REGISTRY

from orchestrator.service_layer.operations import Operations
from sagakit.contracts import (
    InventoryReleased,
    InventoryReserved,
    PaymentDeclined,
    PricedLine,
)
from sagakit.messaging.envelope import Envelope
from sagakit.runtime import outbox_metrics_refresher

pytestmark = pytest.mark.integration

LINES = [PricedLine(product_id="widget", quantity=2, unit_price=1999, line_total=3998)]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def snapshot() -> dict[str, float]:
    reserve = {"step": "reserve_inventory"}
    release = {"step": "reserve_inventory:compensate", "outcome": "succeeded"}
    return {
        "reserved_count": sample(
            "saga_step_duration_seconds_count", **reserve, outcome="succeeded"
        ),
        "reserved_sum": sample("saga_step_duration_seconds_sum", **reserve, outcome="succeeded"),
        "declined": sample(
            "saga_step_duration_seconds_count", step="process_payment", outcome="failed"
        ),
        "timed_out": sample("saga_step_duration_seconds_count", **reserve, outcome="timed_out"),
        "release_attempts": sample("saga_compensation_attempts_total", **release),
        "to_terminal": sample(
            "saga_order_to_terminal_seconds_count", definition="order", status="COMPENSATED"
        ),
        "to_terminal_sum": sample(
            "saga_order_to_terminal_seconds_sum", definition="order", status="COMPENSATED"
        ),
    }


async def test_step_durations_compensations_and_time_to_terminal_are_measured(harness) -> None:
    before = snapshot()
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    harness.clock.advance(1.5)
    await harness.reply(
        saga_id, InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    )
    harness.clock.advance(0.25)
    await harness.reply(saga_id, PaymentDeclined(order_id=order_id, reason="generic_decline"))
    harness.clock.advance(0.5)
    await harness.reply(saga_id, InventoryReleased(order_id=order_id, released_lines=1))

    after = snapshot()
    assert after["reserved_count"] == before["reserved_count"] + 1
    assert after["reserved_sum"] - before["reserved_sum"] == pytest.approx(1.5)
    assert after["declined"] == before["declined"] + 1
    assert after["release_attempts"] == before["release_attempts"] + 1
    assert after["to_terminal"] == before["to_terminal"] + 1
    assert after["to_terminal_sum"] - before["to_terminal_sum"] == pytest.approx(2.25)

    timed_out = await harness.place()  # a silent participant: its step times out
    harness.clock.advance(10.1)
    assert await harness.scheduler.tick() == 1
    assert snapshot()["timed_out"] == after["timed_out"] + 1
    assert (await harness.saga(timed_out.saga.saga_id)).status == "COMPENSATING"


async def test_an_ignored_reply_does_not_restart_the_step_clock(harness) -> None:
    """Regression (found by the state machine on the real database): an ignored reply (late,
    duplicated, for another command) rewrote the saga's ``updated_at``, which is when its
    awaited step was sent: the step's duration was then measured from the ignored reply, and
    the saga read back after a restart was not the one the engine had decided."""
    before = snapshot()
    placed = await harness.place()
    saga_id, order_id = placed.saga.saga_id, placed.order.order_id
    sent_at = (await harness.saga(saga_id)).updated_at
    reserve = await harness.last_command(saga_id)
    ok = InventoryReserved(order_id=order_id, lines=LINES, total=3998, currency="USD")
    harness.clock.advance(1.0)
    stale = Envelope(
        payload=ok,
        saga_id=saga_id,
        order_id=order_id,
        step=reserve.step,
        causation_id=uuid.uuid4(),
    )
    await harness.deliver(stale)
    assert [e.event for e in await harness.history(saga_id)][-1] == "reply_ignored"
    assert (await harness.saga(saga_id)).updated_at == sent_at

    harness.clock.advance(0.5)
    await harness.reply(saga_id, ok, to=reserve)
    after = snapshot()
    assert after["reserved_count"] == before["reserved_count"] + 1
    assert after["reserved_sum"] - before["reserved_sum"] == pytest.approx(1.5)


async def test_sagas_by_status_and_stuck_sagas_are_counted_when_scraped(harness) -> None:
    ops = Operations(harness.uow, harness.sagas, clock=harness.clock)
    await harness.place()
    await harness.place()
    await ops.refresh_metrics()
    assert sample("saga_sagas_current", status="RUNNING") == 2
    assert sample("saga_sagas_current", status="COMPENSATING") == 0
    assert sample("saga_sagas_stuck", why="deadline_overdue") == 0

    # Deadlines passed long ago and no scheduler ran: both are stuck.
    harness.clock.advance(10 + 31)
    await ops.refresh_metrics()
    assert sample("saga_sagas_stuck", why="deadline_overdue") == 2
    await harness.scheduler.tick()
    await ops.refresh_metrics()
    assert sample("saga_sagas_current", status="RUNNING") == 0
    assert sample("saga_sagas_current", status="COMPENSATING") == 2
    assert sample("saga_sagas_stuck", why="deadline_overdue") == 0


async def test_the_outbox_backlog_and_its_oldest_row_are_read_when_scraped(harness) -> None:
    refresh = outbox_metrics_refresher(harness.database, "orchestrator-test")
    await refresh()
    assert sample("saga_outbox_pending", service="orchestrator-test") == 0
    assert sample("saga_outbox_oldest_age_seconds", service="orchestrator-test") == 0
    await harness.place()  # no dispatcher here: its command stays in the outbox
    await harness.database.fetchval(
        "UPDATE outbox SET created_at = now() - interval '90 seconds' RETURNING 1"
    )
    await refresh()
    assert sample("saga_outbox_pending", service="orchestrator-test") >= 1
    assert sample("saga_outbox_oldest_age_seconds", service="orchestrator-test") >= 90
