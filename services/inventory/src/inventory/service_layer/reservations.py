"""Reserving and releasing orders' stock, a batch of commands at a time, in the caller's
transaction.

``StockLedger.open`` takes every lock the batch needs, in one fixed order (the orders' advisory
locks, then product rows by product id: no deadlocks), and reads the orders' reservations. The
commands are then applied in order, in memory, and ``write`` stores the result with a few
multi-row statements.

Both commands are idempotent on the order id (the business key), because the orchestrator may
re-send a command with a new message id, which the inbox cannot recognise:

- reserve again while ``held``: the stored lines, nothing changes;
- reserve after ``released`` (including a tombstone): refused with ``ORDER_RELEASED``;
- release again, or release what was never reserved: zero lines, nothing changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

import asyncpg

from inventory.adapters import reservation_store as store
from inventory.adapters.reservation_store import ReservationRow, StockRow
from inventory.domain.errors import OrderReleased
from inventory.domain.reservation import (
    Requested,
    ReservationPlan,
    ReservationStatus,
    plan_reservation,
    requested_lines,
)
from sagakit.contracts import ReleaseInventory, ReserveInventory
from sagakit.outbox.unit_of_work import UnitOfWork


class StockLedger:
    """One transaction's view of the orders and products its commands touch."""

    def __init__(
        self,
        reservations: dict[uuid.UUID, ReservationRow],
        products: dict[str, StockRow],
        now: datetime,
    ) -> None:
        self._reservations = reservations
        self._products = products
        self._now = now
        self._changed: dict[uuid.UUID, ReservationRow] = {}

    @classmethod
    async def open(
        cls, conn: asyncpg.Connection, commands: Sequence[ReserveInventory | ReleaseInventory]
    ) -> StockLedger:
        order_ids = [command.order_id for command in commands]
        await store.lock_orders(conn, order_ids)
        wanted = {
            item.product_id
            for command in commands
            if isinstance(command, ReserveInventory)
            for item in command.items
        }
        reservations, products = await store.read_and_lock(conn, order_ids, wanted)
        return cls(reservations, products, datetime.now(UTC))

    def reserve(
        self,
        *,
        order_id: uuid.UUID,
        saga_id: uuid.UUID | None,
        items: Iterable[Requested],
        currency: str,
    ) -> ReservationPlan:
        """Hold every line of the order, or nothing (raises a ``ReservationRefused``)."""
        existing = self._reservations.get(order_id)
        if existing is not None:
            if existing.status == ReservationStatus.RELEASED:
                raise OrderReleased(f"order {order_id} was already released; nothing is reserved")
            assert existing.currency is not None  # a held reservation always has one (CHECK)
            return ReservationPlan(tuple(existing.lines), existing.total, existing.currency)

        lines = requested_lines(items)
        catalog = {
            line.product_id: self._products[line.product_id]
            for line in lines
            if line.product_id in self._products
        }
        plan = plan_reservation(lines, catalog, currency)
        for line in plan.lines:
            self._products[line.product_id].move(line.quantity)
        self._keep(
            ReservationRow(
                order_id=order_id,
                saga_id=saga_id,
                status=ReservationStatus.HELD,
                total=plan.total,
                currency=plan.currency,
                lines=list(plan.lines),
                new=True,
            )
        )
        return plan

    def release(self, *, order_id: uuid.UUID, saga_id: uuid.UUID | None) -> int:
        """Give back what the order holds; returns the number of lines released (0: nothing
        held)."""
        reservation = self._reservations.get(order_id)
        if reservation is None:
            # Tombstone: a reserve arriving after its own compensation must not hold stock.
            self._keep(
                ReservationRow(
                    order_id=order_id,
                    saga_id=saga_id,
                    status=ReservationStatus.RELEASED,
                    total=0,
                    currency=None,
                    released_at=self._now,
                    new=True,
                )
            )
            return 0
        if reservation.status == ReservationStatus.RELEASED:
            return 0
        for line in reservation.lines:
            self._products[line.product_id].move(-line.quantity)
        reservation.status = ReservationStatus.RELEASED
        reservation.released_at = self._now
        reservation.released_now = True
        self._keep(reservation)
        return len(reservation.lines)

    def write(self, uow: UnitOfWork) -> None:
        """Queue the changes: they are written with the outbox rows at commit."""
        store.write(uow, self._products.values(), self._changed.values(), self._now)

    def _keep(self, reservation: ReservationRow) -> None:
        self._reservations[reservation.order_id] = reservation
        self._changed[reservation.order_id] = reservation
