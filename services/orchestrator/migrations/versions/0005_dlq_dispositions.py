"""dlq_dispositions: what operators did with each dead-lettered record (replayed or discarded)

Kafka records cannot be deleted, so a record's fate is kept here, keyed by where it sits.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dlq_dispositions",
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("disposition", sa.String(20), nullable=False),
        sa.Column("operator", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        # Where the replayed copy went: "<topic>/<partition>/<offset>" (replayed only).
        sa.Column("replayed_to", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("topic", "partition", "offset", name=op.f("pk_dlq_dispositions")),
        sa.CheckConstraint(
            "disposition IN ('replayed', 'discarded')",
            name=op.f("ck_dlq_dispositions_disposition"),
        ),
    )


def downgrade() -> None:
    op.drop_table("dlq_dispositions")
