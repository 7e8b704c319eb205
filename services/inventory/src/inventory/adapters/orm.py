"""Database models of the inventory service (its own PostgreSQL database).

CHECK constraints repeat the invariants the code keeps, so a bug fails loudly instead of
overselling: stock is never negative, and every unit ever added is either available or reserved.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sagakit.db.models import Base
from sagakit.outbox.tables import InboxMessage, OutboxMessage

__all__ = ["Base", "InboxMessage", "OutboxMessage", "Product", "Reservation", "ReservationLine"]


class Product(Base):
    """A catalog entry with its price and stock.

    ``initial_stock`` counts every unit ever added (created or restocked); reserve and release only
    move units between ``available`` and ``reserved``, so ``available + reserved = initial_stock``.
    """

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("price >= 0", name="price_not_negative"),
        CheckConstraint("available >= 0", name="available_not_negative"),
        CheckConstraint("reserved >= 0", name="reserved_not_negative"),
        CheckConstraint("available + reserved = initial_stock", name="stock_accounted"),
        CheckConstraint("char_length(currency) = 3", name="currency_iso"),
    )

    product_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[int] = mapped_column(BigInteger)  # integer cents
    currency: Mapped[str] = mapped_column(String(3))
    available: Mapped[int] = mapped_column(BigInteger)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    initial_stock: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Reservation(Base):
    """What one order holds (``held``) or held (``released``); one row per order.

    A ``released`` row without lines is a tombstone: a release arrived before (or instead of)
    the reserve, and a late reserve for that order is refused rather than holding stock forever.
    """

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("status IN ('held', 'released')", name="status_known"),
        CheckConstraint("total >= 0", name="total_not_negative"),
        CheckConstraint("(status = 'released') = (released_at IS NOT NULL)", name="released_at"),
        CheckConstraint("status = 'released' OR currency IS NOT NULL", name="held_has_currency"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    saga_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(BigInteger, default=0)  # integer cents
    currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    lines: Mapped[list[ReservationLine]] = relationship(
        order_by="ReservationLine.product_id", lazy="raise"
    )


class ReservationLine(Base):
    __tablename__ = "reservation_lines"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint("line_total = unit_price * quantity", name="line_total_priced"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("reservations.order_id"), primary_key=True
    )
    # No foreign key to products: a reservation keeps its history even if the catalog changes.
    product_id: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    line_total: Mapped[int] = mapped_column(BigInteger)
