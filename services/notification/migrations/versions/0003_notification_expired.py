"""notifications: the ``expired`` status (not sent: the saga's deadline had passed)

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_notifications_status"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_status"),
        "notifications",
        "status IN ('sending', 'sent', 'rejected', 'expired')",
    )


def downgrade() -> None:
    # ``rejected`` is the older final failure: the row keeps reason EXPIRED and its detail, so a
    # re-sent command still sends nothing and gets the same NotificationFailed reply.
    op.execute("UPDATE notifications SET status = 'rejected' WHERE status = 'expired'")
    op.drop_constraint(op.f("ck_notifications_status"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_status"),
        "notifications",
        "status IN ('sending', 'sent', 'rejected')",
    )
