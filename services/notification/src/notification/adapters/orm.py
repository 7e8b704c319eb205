"""Database models of the notification service (its own PostgreSQL database)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from sagakit.db.models import Base
from sagakit.outbox.tables import InboxMessage, OutboxMessage

__all__ = ["Base", "InboxMessage", "Notification", "OutboxMessage"]


class Notification(Base):
    """One order confirmation: at most one per order (the primary key is the order id)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(
            "status IN ('sending', 'sent', 'rejected', 'expired', 'voided')", name="status"
        ),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    saga_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    # NULL only for an order voided before any SendOrderConfirmation reached us.
    email: Mapped[str | None] = mapped_column(String(254))
    smtp_message_id: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    # Deliveries of the command that started a send (more than 1: a crash or an outage).
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    reason: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
