"""Database models of the payment service (its own PostgreSQL database).

``payments``, ``refunds`` and ``refund_attempts`` are the service's records, written in the
handler's unit of work. (The simulated Stripe keeps its own records in a schema it creates
itself: see ``payment.adapters.simulated_stripe``.)
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from sagakit.db.models import Base
from sagakit.outbox.tables import InboxMessage, OutboxMessage

__all__ = [
    "Base",
    "InboxMessage",
    "OutboxMessage",
    "Payment",
    "Refund",
    "RefundAttempt",
]


class Payment(Base):
    """The outcome of an order's charge; one per order, so a re-sent command never charges."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("status IN ('succeeded', 'declined')", name="status"),
        CheckConstraint("amount >= 0", name="amount"),
        CheckConstraint(
            "(status = 'succeeded' AND gateway_payment_id IS NOT NULL)"
            " OR (status = 'declined' AND decline_code IS NOT NULL)",
            name="outcome",
        ),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    saga_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    payment_method: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    gateway_payment_id: Mapped[str | None] = mapped_column(String(255))
    decline_code: Mapped[str | None] = mapped_column(String(64))
    decline_message: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Refund(Base):
    """The order's compensation, done. ``payment_id``/``refund_id`` are NULL when nothing had been
    charged: the row still records that the order was compensated, so a late charge is refused."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("status = 'succeeded'", name="status"),
        CheckConstraint("amount >= 0", name="amount"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    saga_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    payment_id: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    refund_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RefundAttempt(Base):
    """A refund the gateway refused. Their count numbers the next attempt's idempotency key."""

    __tablename__ = "refund_attempts"
    __table_args__ = (PrimaryKeyConstraint("order_id", "attempt"),)

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    attempt: Mapped[int] = mapped_column(Integer)
    saga_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
