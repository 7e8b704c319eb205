"""vacuum the outbox after a fixed number of deletes (it is a queue)

Revision ID: 0005
Revises: 0004
"""

from sagakit.outbox.ddl import reset_outbox_autovacuum, tune_outbox_autovacuum

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tune_outbox_autovacuum()


def downgrade() -> None:
    reset_outbox_autovacuum()
