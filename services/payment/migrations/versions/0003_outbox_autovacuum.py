"""vacuum the outbox after a fixed number of deletes (it is a queue)

Revision ID: 0003
Revises: 0002
"""

from sagakit.outbox.ddl import reset_outbox_autovacuum, tune_outbox_autovacuum

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tune_outbox_autovacuum()


def downgrade() -> None:
    reset_outbox_autovacuum()
