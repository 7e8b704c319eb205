"""Reserving an order's lines: merging, validating and pricing them. Pure logic, no I/O.

The service layer locks the catalog rows, hands them here, and applies the plan only if this
module raised nothing: the reservation is all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from inventory.domain.errors import (
    CurrencyMismatch,
    InsufficientStock,
    InvalidQuantity,
    UnknownProduct,
)
from sagakit.contracts.types import MAX_ITEMS, MAX_QUANTITY, PricedLine


class ReservationStatus(StrEnum):
    HELD = "held"
    RELEASED = "released"


class Requested(Protocol):
    """A line as the order asked for it (``sagakit.contracts.RequestedItem`` is one)."""

    @property
    def product_id(self) -> str: ...

    @property
    def quantity(self) -> int: ...


class CatalogEntry(Protocol):
    """What pricing and stock checks need of a product (the ORM model is one)."""

    @property
    def product_id(self) -> str: ...

    @property
    def price(self) -> int: ...

    @property
    def currency(self) -> str: ...

    @property
    def available(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RequestedLine:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class ReservationPlan:
    """Priced lines, in product id order, and their total: what the reserve reply carries."""

    lines: tuple[PricedLine, ...]
    total: int
    currency: str


def requested_lines(items: Iterable[Requested]) -> list[RequestedLine]:
    """One line per product (duplicate lines summed), sorted by product id, or InvalidQuantity.

    The sort is what makes row locks deadlock-free: every transaction locks in the same order.
    """
    totals: dict[str, int] = {}
    for item in items:
        if item.quantity <= 0 or item.quantity > MAX_QUANTITY:
            raise InvalidQuantity(
                f"product {item.product_id!r}: quantity {item.quantity} is not between "
                f"1 and {MAX_QUANTITY}"
            )
        totals[item.product_id] = totals.get(item.product_id, 0) + item.quantity
    if not totals:
        raise InvalidQuantity("the order has no lines")
    if len(totals) > MAX_ITEMS:
        raise InvalidQuantity(f"the order has {len(totals)} products; at most {MAX_ITEMS}")
    for product_id, quantity in totals.items():
        if quantity > MAX_QUANTITY:
            raise InvalidQuantity(
                f"product {product_id!r}: quantity {quantity} (duplicate lines summed) is more "
                f"than {MAX_QUANTITY}"
            )
    return [RequestedLine(pid, totals[pid]) for pid in sorted(totals)]


def plan_reservation(
    lines: Sequence[RequestedLine], catalog: Mapping[str, CatalogEntry], currency: str
) -> ReservationPlan:
    """Check every line against the (locked) catalog and price it, or raise the refusal.

    Checks run over all lines, most fundamental first (unknown product, then currency, then
    stock), so the reason names every product at fault, not just the first one.
    """
    unknown = [line.product_id for line in lines if line.product_id not in catalog]
    if unknown:
        raise UnknownProduct(f"unknown product(s): {_names(unknown)}")

    mismatched = [
        line.product_id for line in lines if catalog[line.product_id].currency != currency
    ]
    if mismatched:
        detail = ", ".join(f"{pid!r} is priced in {catalog[pid].currency}" for pid in mismatched)
        raise CurrencyMismatch(f"the order is in {currency} but {detail}")

    short = [line for line in lines if catalog[line.product_id].available < line.quantity]
    if short:
        raise InsufficientStock(
            "; ".join(
                f"product {line.product_id!r}: requested {line.quantity}, "
                f"available {catalog[line.product_id].available}"
                for line in short
            )
        )

    priced = tuple(
        PricedLine(
            product_id=line.product_id,
            quantity=line.quantity,
            unit_price=catalog[line.product_id].price,
            line_total=catalog[line.product_id].price * line.quantity,
        )
        for line in lines
    )
    return ReservationPlan(
        lines=priced, total=sum(line.line_total for line in priced), currency=currency
    )


def _names(product_ids: Iterable[str]) -> str:
    return ", ".join(repr(pid) for pid in product_ids)
