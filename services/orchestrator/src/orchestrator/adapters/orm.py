"""Database models of the orchestrator: orders, sagas, their step states and history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sagakit.db.models import Base
from sagakit.outbox.tables import InboxMessage, OutboxMessage

__all__ = ["Base", "InboxMessage", "Order", "OutboxMessage", "Saga", "SagaEvent", "SagaStep"]

_now = func.now()


class Order(Base):
    __tablename__ = "orders"
    __mapper_args__ = {"eager_defaults": True}  # timestamps come back with the INSERT
    __table_args__ = (
        # The truth behind Idempotency-Key (Redis only caches it): one order per key and customer.
        UniqueConstraint("customer_id", "idempotency_key", name="uq_orders_customer_idempotency"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    payment_method: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20), index=True)
    total: Mapped[int | None] = mapped_column(BigInteger)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(20))  # "api" or "topic"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now)


class Saga(Base):
    __tablename__ = "sagas"
    __mapper_args__ = {"eager_defaults": True}
    __table_args__ = (
        # The scheduler's look-ups: only sagas that have a deadline or a retry due are indexed.
        Index(
            "ix_sagas_deadline_at", "deadline_at", postgresql_where=text("deadline_at IS NOT NULL")
        ),
        Index(
            "ix_sagas_next_retry_at",
            "next_retry_at",
            postgresql_where=text("next_retry_at IS NOT NULL"),
        ),
        CheckConstraint("compensation_attempts >= 0", name="compensation_attempts_non_negative"),
    )

    saga_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.order_id"), unique=True, index=False
    )
    definition_name: Mapped[str] = mapped_column(String(100))
    definition_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(30), index=True)
    # The step (position) the saga is on, and what it waits for: the command's message id and
    # the step header its reply must carry. A reply matching neither is stale and ignored.
    current_step: Mapped[int] = mapped_column(Integer)
    awaiting_step: Mapped[str | None] = mapped_column(String(120))
    awaiting_message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    compensation_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    context: Mapped[dict[str, Any]] = mapped_column(JSONB)
    traceparent: Mapped[str] = mapped_column(String(55))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now)

    steps: Mapped[list[SagaStep]] = relationship(
        order_by="SagaStep.position", lazy="selectin", cascade="all, delete-orphan"
    )


class SagaStep(Base):
    __tablename__ = "saga_steps"

    saga_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sagas.saga_id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    command_message_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now)


class SagaEvent(Base):
    """The saga's history: every transition and every ignored reply, with its time and cause."""

    __tablename__ = "saga_history"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    saga_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sagas.saga_id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=_now)
    event: Mapped[str] = mapped_column(String(40))
    step: Mapped[str | None] = mapped_column(String(120))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str | None] = mapped_column(String(30))
    cause: Mapped[str | None] = mapped_column(Text)  # the message id/type, "timeout", "operator"
    detail: Mapped[str | None] = mapped_column(Text)
