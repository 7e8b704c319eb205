"""The catalog through the ORM, for the HTTP operations (products, restock, seed, reset).

The message handlers use ``reservation_store`` instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.adapters.orm import Product, Reservation, ReservationLine
from inventory.domain.catalog import NewProduct
from inventory.domain.reservation import ReservationStatus


class InventoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- products ---------------------------------------------------------------------------

    async def lock_products(self, product_ids: Iterable[str]) -> dict[str, Product]:
        """Lock the rows of these products, always in product id order, and return them.

        Locking happens row by row as the sorted result is read, so two orders that share
        products lock them in the same order and never deadlock. Unknown ids are simply absent.
        """
        stmt = (
            select(Product)
            .where(Product.product_id.in_(sorted(set(product_ids))))
            .order_by(Product.product_id)
            .with_for_update()
            .execution_options(populate_existing=True)  # the locked values, never a cached row
        )
        rows = (await self.session.scalars(stmt)).all()
        return {row.product_id: row for row in rows}

    async def get_product(self, product_id: str, *, lock: bool = False) -> Product | None:
        stmt = select(Product).where(Product.product_id == product_id)
        if lock:
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return (await self.session.scalars(stmt)).one_or_none()

    async def list_products(self) -> Sequence[Product]:
        return (await self.session.scalars(select(Product).order_by(Product.product_id))).all()

    async def add_product(self, new: NewProduct) -> Product | None:
        """Insert a product; None if one with this id exists (left untouched)."""
        stmt = (
            insert(Product)
            .values(
                product_id=new.product_id,
                name=new.name,
                price=new.price,
                currency=new.currency,
                available=new.stock,
                reserved=0,
                initial_stock=new.stock,
            )
            .on_conflict_do_nothing(index_elements=[Product.product_id])
            .returning(Product)
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def held_quantity(self, product_id: str) -> int:
        """Units of this product held by reservations that are still ``held``."""
        stmt = (
            select(func.coalesce(func.sum(ReservationLine.quantity), 0))
            .join(Reservation, Reservation.order_id == ReservationLine.order_id)
            .where(
                ReservationLine.product_id == product_id,
                Reservation.status == ReservationStatus.HELD,
            )
        )
        return int((await self.session.execute(stmt)).scalar_one())
