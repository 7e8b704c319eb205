"""Reserving and releasing an order's stock, inside the caller's transaction.

Both are idempotent on the order id (the business key), because the orchestrator may re-send a
command with a new message id, which the inbox cannot recognise:

- reserve again while ``held``: the stored lines, nothing changes;
- reserve after ``released`` (including a tombstone): refused with ``ORDER_RELEASED``;
- release again, or release what was never reserved: zero lines, nothing changes.

Locks, always in this order: the order's advisory lock, then product rows by product id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from inventory.adapters.orm import Reservation, ReservationLine
from inventory.adapters.repository import InventoryRepository
from inventory.domain.errors import OrderReleased
from inventory.domain.reservation import (
    Requested,
    ReservationPlan,
    ReservationStatus,
    plan_reservation,
    requested_lines,
)
from sagakit.contracts.types import PricedLine


async def reserve(
    repo: InventoryRepository,
    *,
    order_id: uuid.UUID,
    saga_id: uuid.UUID | None,
    items: Iterable[Requested],
    currency: str,
) -> ReservationPlan:
    """Hold every line of the order, or nothing (raises a ``ReservationRefused``)."""
    await repo.lock_order(order_id)
    existing = await repo.get_reservation(order_id)
    if existing is not None:
        if existing.status == ReservationStatus.RELEASED:
            raise OrderReleased(f"order {order_id} was already released; nothing is reserved")
        return await _stored_plan(repo, existing)

    lines = requested_lines(items)
    products = await repo.lock_products(line.product_id for line in lines)
    plan = plan_reservation(lines, products, currency)

    for line in plan.lines:
        product = products[line.product_id]
        product.available -= line.quantity
        product.reserved += line.quantity
    repo.add(
        Reservation(
            order_id=order_id,
            saga_id=saga_id,
            status=ReservationStatus.HELD,
            total=plan.total,
            currency=plan.currency,
            lines=[
                ReservationLine(
                    product_id=line.product_id,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    line_total=line.line_total,
                )
                for line in plan.lines
            ],
        )
    )
    await repo.session.flush()  # constraint violations surface here, inside the handler
    return plan


async def release(
    repo: InventoryRepository, *, order_id: uuid.UUID, saga_id: uuid.UUID | None
) -> int:
    """Give back what the order holds; returns the number of lines released (0: nothing held)."""
    await repo.lock_order(order_id)
    reservation = await repo.get_reservation(order_id)
    now = datetime.now(UTC)
    if reservation is None:
        # Tombstone: a reserve arriving after its own compensation must not hold stock forever.
        repo.add(
            Reservation(
                order_id=order_id,
                saga_id=saga_id,
                status=ReservationStatus.RELEASED,
                total=0,
                currency=None,
                released_at=now,
            )
        )
        await repo.session.flush()
        return 0
    if reservation.status == ReservationStatus.RELEASED:
        return 0

    lines = await repo.reservation_lines(order_id)
    products = await repo.lock_products(line.product_id for line in lines)
    for line in lines:
        product = products[line.product_id]
        product.available += line.quantity
        product.reserved -= line.quantity
    reservation.status = ReservationStatus.RELEASED
    reservation.released_at = now
    await repo.session.flush()
    return len(lines)


async def _stored_plan(repo: InventoryRepository, reservation: Reservation) -> ReservationPlan:
    lines = await repo.reservation_lines(reservation.order_id)
    assert reservation.currency is not None  # a held reservation always has one (CHECK)
    return ReservationPlan(
        lines=tuple(
            PricedLine(
                product_id=line.product_id,
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line.line_total,
            )
            for line in lines
        ),
        total=reservation.total,
        currency=reservation.currency,
    )
