"""The outbox and inbox tables as an Alembic operation, used by each service's first migration."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def create_outbox_and_inbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("message_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("message_type", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=True),
        sa.Column("headers", postgresql.JSONB(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_table(
        "inbox",
        sa.Column("message_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("message_type", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_inbox")),
    )


def drop_outbox_and_inbox() -> None:
    op.drop_table("inbox")
    op.drop_table("outbox")


# The outbox is a queue: every row is deleted within milliseconds of its insert, so the default
# trigger (a fifth of the table dead) never fires on a table that is nearly always empty while
# tens of thousands of dead rows pile up. Vacuum it after a fixed number of deletes instead.
OUTBOX_AUTOVACUUM = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "5000",
    "autovacuum_vacuum_cost_delay": "0",
}


def tune_outbox_autovacuum() -> None:
    settings = ", ".join(f"{name} = {value}" for name, value in OUTBOX_AUTOVACUUM.items())
    op.execute(f"ALTER TABLE outbox SET ({settings})")


def reset_outbox_autovacuum() -> None:
    op.execute(f"ALTER TABLE outbox RESET ({', '.join(OUTBOX_AUTOVACUUM)})")
