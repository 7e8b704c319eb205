"""notifications: the ``voided`` status (the saga voided the step before anything was sent)

A void can arrive before any SendOrderConfirmation of the order, so ``email`` becomes nullable:
such a row records only that nothing may ever be sent.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_notifications_status"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_status"),
        "notifications",
        "status IN ('sending', 'sent', 'rejected', 'expired', 'voided')",
    )
    op.alter_column("notifications", "email", existing_type=sa.String(254), nullable=True)


def downgrade() -> None:
    # ``expired`` is the older "never send" state: the row keeps reason VOIDED and its detail, so
    # a re-sent command still sends nothing and gets the same NotificationFailed reply.
    op.execute("UPDATE notifications SET status = 'expired' WHERE status = 'voided'")
    op.execute("UPDATE notifications SET email = '' WHERE email IS NULL")
    op.alter_column("notifications", "email", existing_type=sa.String(254), nullable=False)
    op.drop_constraint(op.f("ck_notifications_status"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_status"),
        "notifications",
        "status IN ('sending', 'sent', 'rejected', 'expired')",
    )
