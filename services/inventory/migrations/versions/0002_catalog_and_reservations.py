"""catalog (products) and reservations

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


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("price", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("available", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("initial_stock", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_products")),
        sa.CheckConstraint("price >= 0", name=op.f("ck_products_price_not_negative")),
        sa.CheckConstraint("available >= 0", name=op.f("ck_products_available_not_negative")),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_products_reserved_not_negative")),
        sa.CheckConstraint(
            "available + reserved = initial_stock", name=op.f("ck_products_stock_accounted")
        ),
        sa.CheckConstraint("char_length(currency) = 3", name=op.f("ck_products_currency_iso")),
    )
    op.create_table(
        "reservations",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("saga_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_reservations")),
        sa.CheckConstraint(
            "status IN ('held', 'released')", name=op.f("ck_reservations_status_known")
        ),
        sa.CheckConstraint("total >= 0", name=op.f("ck_reservations_total_not_negative")),
        sa.CheckConstraint(
            "(status = 'released') = (released_at IS NOT NULL)",
            name=op.f("ck_reservations_released_at"),
        ),
        sa.CheckConstraint(
            "status = 'released' OR currency IS NOT NULL",
            name=op.f("ck_reservations_held_has_currency"),
        ),
    )
    op.create_table(
        "reservation_lines",
        sa.Column("order_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("product_id", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("line_total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "product_id", name=op.f("pk_reservation_lines")),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["reservations.order_id"],
            name=op.f("fk_reservation_lines_order_id_reservations"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_reservation_lines_quantity_positive")),
        sa.CheckConstraint(
            "unit_price >= 0", name=op.f("ck_reservation_lines_unit_price_not_negative")
        ),
        sa.CheckConstraint(
            "line_total = unit_price * quantity",
            name=op.f("ck_reservation_lines_line_total_priced"),
        ),
    )
    op.create_index(op.f("ix_reservation_lines_product_id"), "reservation_lines", ["product_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reservation_lines_product_id"), table_name="reservation_lines")
    op.drop_table("reservation_lines")
    op.drop_table("reservations")
    op.drop_table("products")
