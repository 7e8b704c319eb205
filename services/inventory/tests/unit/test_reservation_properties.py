"""Reservation planning checked by properties: a plan never takes stock below zero, and it is
all-or-nothing (every requested line reserved in full, or a refusal and nothing at all)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.domain.errors import (
    CurrencyMismatch,
    InsufficientStock,
    InvalidQuantity,
    ReservationRefused,
    UnknownProduct,
)
from inventory.domain.reservation import plan_reservation, requested_lines
from sagakit.contracts.types import MAX_QUANTITY

pytestmark = pytest.mark.unit

PRODUCTS = ["a", "b", "c", "d", "e"]


@dataclass(frozen=True)
class Item:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class Entry:
    product_id: str
    price: int
    currency: str
    available: int


catalogs = st.dictionaries(
    st.sampled_from(PRODUCTS[:4]),
    st.tuples(st.integers(0, 10**6), st.sampled_from(["USD", "EUR"]), st.integers(0, 50)),
).map(lambda d: {pid: Entry(pid, *values) for pid, values in d.items()})
items = st.lists(
    st.builds(Item, st.sampled_from(PRODUCTS), st.integers(-2, 60) | st.just(MAX_QUANTITY + 1)),
    max_size=8,
)


@given(catalog=catalogs, order=items, currency=st.sampled_from(["USD", "EUR"]))
def test_a_plan_never_oversells_and_is_all_or_nothing(
    catalog: dict[str, Entry], order: list[Item], currency: str
) -> None:
    wanted: dict[str, int] = {}
    for item in order:
        wanted[item.product_id] = wanted.get(item.product_id, 0) + item.quantity
    try:
        plan = plan_reservation(requested_lines(order), catalog, currency)
        refusal: ReservationRefused | None = None
    except ReservationRefused as exc:
        refusal = exc
    if refusal is not None:
        # Refused only for a reason that holds, so nothing is reserved.
        reasons = {
            InvalidQuantity: not order
            or any(i.quantity <= 0 or i.quantity > MAX_QUANTITY for i in order)
            or any(q > MAX_QUANTITY for q in wanted.values()),
            UnknownProduct: any(pid not in catalog for pid in wanted),
            CurrencyMismatch: any(
                pid in catalog and catalog[pid].currency != currency for pid in wanted
            ),
            InsufficientStock: any(
                pid in catalog and catalog[pid].available < q for pid, q in wanted.items()
            ),
        }
        assert reasons[type(refusal)], str(refusal)
        return
    # Reserved: every product in full, each within its stock (none goes below zero).
    assert {line.product_id: line.quantity for line in plan.lines} == wanted
    for line in plan.lines:
        assert 0 < line.quantity <= catalog[line.product_id].available
        assert catalog[line.product_id].available - line.quantity >= 0
        assert catalog[line.product_id].currency == currency
        assert line.line_total == line.quantity * catalog[line.product_id].price
    assert plan.total == sum(line.line_total for line in plan.lines)
    assert [line.product_id for line in plan.lines] == sorted(wanted)
