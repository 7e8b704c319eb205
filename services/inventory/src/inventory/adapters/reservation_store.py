"""Stock and reservations as SQL, for the message handlers (the hot path).

Multi-row statements on the unit of work's connection: a batch of commands costs the same few
round trips as one. The catalog's HTTP operations keep the ORM (``repository.py``); both take
product row locks in product id order, so they never deadlock with each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from inventory.domain.reservation import ReservationStatus
from sagakit.contracts.types import PricedLine
from sagakit.db.locks import lock_keys
from sagakit.outbox.unit_of_work import UnitOfWork


@dataclass(slots=True)
class StockRow:
    """A locked product: what pricing needs, and the stock this transaction moves."""

    product_id: str
    price: int
    currency: str
    available: int
    reserved: int
    moved: int = 0  # units moved from available to reserved (negative: given back)

    def move(self, units: int) -> None:
        self.available -= units
        self.reserved += units
        self.moved += units


@dataclass(slots=True)
class ReservationRow:
    order_id: uuid.UUID
    saga_id: uuid.UUID | None
    status: ReservationStatus
    total: int
    currency: str | None
    lines: list[PricedLine] = field(default_factory=list)
    released_at: datetime | None = None
    new: bool = False  # inserted by this transaction
    released_now: bool = False  # released by this transaction


async def lock_orders(conn: asyncpg.Connection, order_ids: Iterable[uuid.UUID]) -> None:
    """Serialise every command for these orders until the transaction ends.

    The reservation row may not exist yet, so a row lock cannot do this: without it, a reserve
    re-sent while the first is in flight could hold the stock twice, and a release racing a
    reserve could miss it. Always taken before any product row lock.
    """
    await lock_keys(conn, "inventory-order", (str(o) for o in order_ids))


async def read_and_lock(
    conn: asyncpg.Connection, order_ids: Sequence[uuid.UUID], product_ids: Iterable[str]
) -> tuple[dict[uuid.UUID, ReservationRow], dict[str, StockRow]]:
    """The orders' reservations, and the products they may touch locked (``product_ids``, and
    the products their held reservations hold), in one statement. Row locks are taken in product
    id order (deadlock-free); unknown products are simply absent. Call it after
    ``lock_orders``: its snapshot then shows what other transactions did to these orders."""
    row = await conn.fetchrow(
        """
        WITH held AS (
            SELECT l.product_id
              FROM reservation_lines l JOIN reservations r ON r.order_id = l.order_id
             WHERE r.order_id = ANY($1::uuid[]) AND r.status = 'held'
        ), locked AS (
            SELECT product_id, price, currency, available, reserved
              FROM products
             WHERE product_id = ANY($2::text[]) OR product_id IN (SELECT product_id FROM held)
             ORDER BY product_id
               FOR UPDATE
        )
        SELECT
          (SELECT coalesce(jsonb_agg(jsonb_build_array(
                      r.order_id, r.saga_id, r.status, r.total, r.currency, r.released_at,
                      (SELECT coalesce(jsonb_agg(jsonb_build_array(
                                  l.product_id, l.quantity, l.unit_price, l.line_total)
                                  ORDER BY l.product_id), '[]')
                         FROM reservation_lines l WHERE l.order_id = r.order_id))), '[]')
             FROM reservations r WHERE r.order_id = ANY($1::uuid[])) AS reservations,
          (SELECT coalesce(jsonb_agg(jsonb_build_array(
                      product_id, price, currency, available, reserved) ORDER BY product_id),
                      '[]')
             FROM locked) AS products
        """,
        sorted(set(order_ids)),
        sorted(set(product_ids)),
    )
    assert row is not None
    reservations = {}
    for order_id, saga_id, status, total, currency, released_at, lines in row["reservations"]:
        reservation = ReservationRow(
            order_id=uuid.UUID(order_id),
            saga_id=uuid.UUID(saga_id) if saga_id else None,
            status=ReservationStatus(status),
            total=total,
            currency=currency,
            released_at=datetime.fromisoformat(released_at) if released_at else None,
            lines=[
                PricedLine(product_id=p, quantity=q, unit_price=u, line_total=t)
                for p, q, u, t in lines
            ],
        )
        reservations[reservation.order_id] = reservation
    products = {p[0]: StockRow(*p) for p in row["products"]}
    return reservations, products


def write(
    uow: UnitOfWork,
    products: Iterable[StockRow],
    reservations: Iterable[ReservationRow],
    now: datetime,
) -> None:
    """Queue what the transaction changed (written with its outbox rows at commit): moved
    stock, new reservations and their lines, released reservations."""
    moved = [p for p in products if p.moved]
    if moved:
        uow.write(
            """
            UPDATE products p SET available = p.available - u.moved,
                reserved = p.reserved + u.moved, updated_at = {2}
            FROM unnest({0}::text[], {1}::bigint[]) AS u(product_id, moved)
            WHERE p.product_id = u.product_id
            """,
            [p.product_id for p in moved],
            [p.moved for p in moved],
            now,
        )
    changed = list(reservations)
    new = [r for r in changed if r.new]
    if new:
        uow.write(
            """
            INSERT INTO reservations (order_id, saga_id, status, total, currency, released_at)
            SELECT * FROM unnest({0}::uuid[], {1}::uuid[], {2}::text[], {3}::bigint[], {4}::text[],
                                 {5}::timestamptz[])
            """,
            [r.order_id for r in new],
            [r.saga_id for r in new],
            [str(r.status) for r in new],
            [r.total for r in new],
            [r.currency for r in new],
            [r.released_at for r in new],
        )
        lines = [(r.order_id, line) for r in new for line in r.lines]
        if lines:
            uow.write(
                """
                INSERT INTO reservation_lines (order_id, product_id, quantity, unit_price,
                    line_total)
                SELECT * FROM unnest({0}::uuid[], {1}::text[], {2}::int[], {3}::bigint[],
                                     {4}::bigint[])
                """,
                [order_id for order_id, _ in lines],
                [line.product_id for _, line in lines],
                [line.quantity for _, line in lines],
                [line.unit_price for _, line in lines],
                [line.line_total for _, line in lines],
            )
    released = [r for r in changed if r.released_now and not r.new]
    if released:
        uow.write(
            "UPDATE reservations SET status = {1}, released_at = {2}"
            " WHERE order_id = ANY({0}::uuid[])",
            [r.order_id for r in released],
            str(ReservationStatus.RELEASED),
            now,
        )
