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


async def reservations(
    conn: asyncpg.Connection, order_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ReservationRow]:
    rows = await conn.fetch(
        """
        SELECT r.order_id, r.saga_id, r.status, r.total, r.currency, r.released_at,
               coalesce((SELECT jsonb_agg(jsonb_build_array(l.product_id, l.quantity,
                                                            l.unit_price, l.line_total)
                                          ORDER BY l.product_id)
                           FROM reservation_lines l WHERE l.order_id = r.order_id), '[]')
                   AS lines
          FROM reservations r WHERE r.order_id = ANY($1::uuid[])
        """,
        list(order_ids),
    )
    return {
        row["order_id"]: ReservationRow(
            order_id=row["order_id"],
            saga_id=row["saga_id"],
            status=ReservationStatus(row["status"]),
            total=row["total"],
            currency=row["currency"],
            released_at=row["released_at"],
            lines=[
                PricedLine(product_id=p, quantity=q, unit_price=u, line_total=t)
                for p, q, u, t in row["lines"]
            ],
        )
        for row in rows
    }


async def lock_products(
    conn: asyncpg.Connection, product_ids: Iterable[str]
) -> dict[str, StockRow]:
    """Lock these products' rows, in product id order (deadlock-free), and return them.
    Unknown ids are simply absent."""
    ids = sorted(set(product_ids))
    if not ids:
        return {}
    rows = await conn.fetch(
        "SELECT product_id, price, currency, available, reserved FROM products"
        " WHERE product_id = ANY($1::text[]) ORDER BY product_id FOR UPDATE",
        ids,
    )
    return {row["product_id"]: StockRow(*row) for row in rows}


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
