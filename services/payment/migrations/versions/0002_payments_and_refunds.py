"""payments, refunds, refused refund attempts

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


def _created_at() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("saga_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("payment_method", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("gateway_payment_id", sa.String(255), nullable=True),
        sa.Column("decline_code", sa.String(64), nullable=True),
        sa.Column("decline_message", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        _created_at(),
        sa.CheckConstraint("status IN ('succeeded', 'declined')", name=op.f("ck_payments_status")),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_payments_amount")),
        sa.CheckConstraint(
            "(status = 'succeeded' AND gateway_payment_id IS NOT NULL)"
            " OR (status = 'declined' AND decline_code IS NOT NULL)",
            name=op.f("ck_payments_outcome"),
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_payments")),
    )
    op.create_table(
        "refunds",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("saga_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("payment_id", sa.String(255), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("refund_id", sa.String(255), nullable=True),
        _created_at(),
        sa.CheckConstraint("status = 'succeeded'", name=op.f("ck_refunds_status")),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_refunds_amount")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_refunds")),
    )
    op.create_table(
        "refund_attempts",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("saga_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        _created_at(),
        sa.PrimaryKeyConstraint("order_id", "attempt", name=op.f("pk_refund_attempts")),
    )


def downgrade() -> None:
    op.drop_table("refund_attempts")
    op.drop_table("refunds")
    op.drop_table("payments")
