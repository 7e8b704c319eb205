"""orders, sagas, saga steps and history

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("items", postgresql.JSONB(), nullable=False),
        sa.Column("payment_method", sa.String(128), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "customer_id", "idempotency_key", name="uq_orders_customer_idempotency"
        ),
    )
    op.create_index(op.f("ix_orders_status"), "orders", ["status"])
    op.create_table(
        "sagas",
        sa.Column("saga_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("definition_name", sa.String(100), nullable=False),
        sa.Column("definition_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("awaiting_step", sa.String(120), nullable=True),
        sa.Column("awaiting_message_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("compensation_attempts", sa.Integer(), nullable=False),
        sa.Column("next_retry_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("context", postgresql.JSONB(), nullable=False),
        sa.Column("traceparent", sa.String(55), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("saga_id", name=op.f("pk_sagas")),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.order_id"], name=op.f("fk_sagas_order_id_orders")
        ),
        sa.UniqueConstraint("order_id", name=op.f("uq_sagas_order_id")),
        sa.CheckConstraint(
            "compensation_attempts >= 0", name=op.f("ck_sagas_compensation_attempts_non_negative")
        ),
    )
    op.create_index(op.f("ix_sagas_status"), "sagas", ["status"])
    op.create_index(
        "ix_sagas_deadline_at",
        "sagas",
        ["deadline_at"],
        postgresql_where=sa.text("deadline_at IS NOT NULL"),
    )
    op.create_index(
        "ix_sagas_next_retry_at",
        "sagas",
        ["next_retry_at"],
        postgresql_where=sa.text("next_retry_at IS NOT NULL"),
    )
    op.create_table(
        "saga_steps",
        sa.Column("saga_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("command_message_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("saga_id", "position", name=op.f("pk_saga_steps")),
        sa.ForeignKeyConstraint(
            ["saga_id"], ["sagas.saga_id"], name=op.f("fk_saga_steps_saga_id_sagas")
        ),
    )
    op.create_table(
        "saga_history",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("saga_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("event", sa.String(40), nullable=False),
        sa.Column("step", sa.String(120), nullable=True),
        sa.Column("from_status", sa.String(30), nullable=True),
        sa.Column("to_status", sa.String(30), nullable=True),
        sa.Column("cause", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saga_history")),
        sa.ForeignKeyConstraint(
            ["saga_id"], ["sagas.saga_id"], name=op.f("fk_saga_history_saga_id_sagas")
        ),
    )
    op.create_index(op.f("ix_saga_history_saga_id"), "saga_history", ["saga_id"])


def downgrade() -> None:
    op.drop_table("saga_history")
    op.drop_table("saga_steps")
    op.drop_table("sagas")
    op.drop_table("orders")
