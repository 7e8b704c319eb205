"""Merging, validating and pricing an order's lines (pure domain logic)."""

from dataclasses import dataclass

import pytest

from inventory.domain.errors import (
    CurrencyMismatch,
    InsufficientStock,
    InvalidQuantity,
    UnknownProduct,
)
from inventory.domain.reservation import RequestedLine, plan_reservation, requested_lines
from sagakit.contracts import PricedLine, RequestedItem
from sagakit.contracts.types import MAX_ITEMS, MAX_QUANTITY

pytestmark = pytest.mark.unit


@dataclass
class Entry:
    product_id: str
    price: int
    currency: str
    available: int


CATALOG = {
    "widget": Entry("widget", 1999, "USD", 10),
    "gadget": Entry("gadget", 4999, "USD", 2),
    "euro-widget": Entry("euro-widget", 1899, "EUR", 5),
}


def items(*pairs: tuple[str, int]) -> list[RequestedItem]:
    return [RequestedItem(product_id=p, quantity=q) for p, q in pairs]


def test_duplicate_lines_are_merged_and_sorted_by_product_id() -> None:
    lines = requested_lines(items(("widget", 2), ("gadget", 1), ("widget", 3)))
    assert lines == [RequestedLine("gadget", 1), RequestedLine("widget", 5)]


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
def test_a_quantity_out_of_range_is_invalid(quantity: int) -> None:
    with pytest.raises(InvalidQuantity) as refused:
        requested_lines(items(("widget", 1), ("gadget", quantity)))
    assert refused.value.reason == "INVALID_QUANTITY"
    assert "'gadget'" in refused.value.message
    assert str(quantity) in refused.value.message


def test_a_negative_line_cannot_cancel_out_a_positive_duplicate() -> None:
    with pytest.raises(InvalidQuantity):
        requested_lines(items(("widget", 5), ("widget", -3)))


def test_duplicate_lines_summing_past_the_maximum_are_invalid() -> None:
    with pytest.raises(InvalidQuantity, match="duplicate lines summed"):
        requested_lines(items(("widget", MAX_QUANTITY), ("widget", 1)))


def test_the_maximum_quantity_itself_is_valid() -> None:
    assert requested_lines(items(("widget", MAX_QUANTITY))) == [
        RequestedLine("widget", MAX_QUANTITY)
    ]


def test_an_order_without_lines_is_invalid() -> None:
    with pytest.raises(InvalidQuantity, match="no lines"):
        requested_lines([])


def test_too_many_distinct_products_is_invalid() -> None:
    with pytest.raises(InvalidQuantity, match=f"at most {MAX_ITEMS}"):
        requested_lines(items(*((f"p{i}", 1) for i in range(MAX_ITEMS + 1))))


def test_lines_are_priced_from_the_catalog_in_integer_cents() -> None:
    plan = plan_reservation(
        [RequestedLine("gadget", 2), RequestedLine("widget", 3)], CATALOG, "USD"
    )
    assert plan.lines == (
        PricedLine(product_id="gadget", quantity=2, unit_price=4999, line_total=9998),
        PricedLine(product_id="widget", quantity=3, unit_price=1999, line_total=5997),
    )
    assert plan.total == 15995
    assert isinstance(plan.total, int)
    assert plan.currency == "USD"


def test_unknown_products_are_all_named() -> None:
    with pytest.raises(UnknownProduct) as refused:
        plan_reservation(
            [RequestedLine("nope", 1), RequestedLine("widget", 1), RequestedLine("zilch", 1)],
            CATALOG,
            "USD",
        )
    assert refused.value.reason == "UNKNOWN_PRODUCT"
    assert "'nope'" in refused.value.message
    assert "'zilch'" in refused.value.message
    assert "widget" not in refused.value.message


def test_an_unknown_product_is_reported_before_a_stock_shortage() -> None:
    with pytest.raises(UnknownProduct):
        plan_reservation([RequestedLine("gadget", 99), RequestedLine("nope", 1)], CATALOG, "USD")


def test_a_product_in_another_currency_is_a_mismatch() -> None:
    with pytest.raises(CurrencyMismatch) as refused:
        plan_reservation([RequestedLine("euro-widget", 1)], CATALOG, "USD")
    assert refused.value.reason == "CURRENCY_MISMATCH"
    assert "USD" in refused.value.message
    assert "'euro-widget' is priced in EUR" in refused.value.message


def test_insufficient_stock_says_which_product_requested_and_available() -> None:
    with pytest.raises(InsufficientStock) as refused:
        plan_reservation([RequestedLine("gadget", 3), RequestedLine("widget", 10)], CATALOG, "USD")
    assert refused.value.reason == "INSUFFICIENT_STOCK"
    assert refused.value.message == "product 'gadget': requested 3, available 2"


def test_exactly_the_available_stock_can_be_reserved() -> None:
    plan = plan_reservation([RequestedLine("gadget", 2)], CATALOG, "USD")
    assert plan.total == 2 * 4999
