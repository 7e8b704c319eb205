"""One live order of every kind, with the outcome each must reach.

Used by ``make test-saga`` against running services and by the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from sagaops.client import SagaShop


@dataclass(frozen=True)
class Scenario:
    name: str
    expected_order: str
    expected_saga: str
    product_id: str = "widget"
    quantity: int = 2
    payment_method: str = "pm_card_visa"
    email: str = "buyer@example.com"

    def body(self, run: str) -> dict[str, Any]:
        return {
            "customer_id": f"test-saga-{run}",
            "email": self.email,
            "items": [{"product_id": self.product_id, "quantity": self.quantity}],
            "payment_method": self.payment_method,
            "currency": "USD",
        }


SCENARIOS = (
    Scenario("success", "CONFIRMED", "COMPLETED"),
    Scenario("out of stock", "CANCELLED", "FAILED", product_id="sold-out", quantity=1),
    Scenario("unknown product", "CANCELLED", "FAILED", product_id="no-such-product"),
    Scenario("card declined", "CANCELLED", "COMPENSATED", payment_method="pm_card_chargeDeclined"),
    Scenario("notification rejected", "CANCELLED", "COMPENSATED", email="buyer+reject@example.com"),
    Scenario(
        "refund failing",
        "NEEDS_ATTENTION",
        "COMPENSATION_FAILED",
        payment_method="pm_card_refundFail",
        email="buyer+reject@example.com",
    ),
)

CATALOG = (
    # product_id, name, price in cents, currency, stock the scenarios need at least
    ("widget", "Widget", 1999, "USD", 100),
    ("sold-out", "Sold-out item", 2500, "USD", 0),
)


@dataclass
class Outcome:
    scenario: Scenario
    order_id: str = ""
    order_status: str = "-"
    saga_status: str = "-"
    steps: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and self.order_status == self.scenario.expected_order
            and self.saga_status == self.scenario.expected_saga
        )


async def prepare_catalog(shop: SagaShop) -> None:
    for product_id, name, price, currency, stock in CATALOG:
        await shop.ensure_product(
            product_id, name=name, price=price, currency=currency, stock=stock
        )


async def run_scenario(shop: SagaShop, scenario: Scenario, run: str, timeout: float) -> Outcome:
    outcome = Outcome(scenario)
    started = time.monotonic()
    try:
        placed = await shop.place_order(scenario.body(run))
        outcome.order_id = placed["order_id"]
        order = await shop.wait_terminal(outcome.order_id, timeout=timeout)
        saga = await shop.saga(placed["saga_id"])
        outcome.order_status, outcome.saga_status = order["status"], saga["status"]
        outcome.steps = steps_taken(saga)
    except Exception as exc:  # reported in the table, never raised: every scenario runs
        outcome.error = f"{type(exc).__name__}: {exc}"
    outcome.seconds = time.monotonic() - started
    return outcome


async def run_all(shop: SagaShop, *, timeout: float = 120.0) -> list[Outcome]:
    await prepare_catalog(shop)
    run = uuid.uuid4().hex[:8]
    return list(await asyncio.gather(*(run_scenario(shop, s, run, timeout) for s in SCENARIOS)))


_MARKS = {
    "step_succeeded": "ok",
    "step_failed": "FAILED",
    "step_timed_out": "TIMED OUT",
    "step_compensated": "undone",
    "compensation_failed": "undo failed",
}


def steps_taken(saga: dict[str, Any]) -> list[str]:
    """The saga's history as people read it: ``reserve_inventory ok``, ``... undone``."""
    out: list[str] = []
    repeats: list[int] = []
    for event in saga["history"]:
        mark = _MARKS.get(event["event"])
        if mark is None:
            continue
        text = f"{(event['step'] or '').replace(':compensate', '')} {mark}"
        if out and out[-1] == text:
            repeats[-1] += 1
        else:
            out.append(text)
            repeats.append(1)
    return [t if n == 1 else f"{t} x{n}" for t, n in zip(out, repeats, strict=True)]
