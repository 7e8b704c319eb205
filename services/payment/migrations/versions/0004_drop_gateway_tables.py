"""drop the local gateway's tables: the simulated Stripe keeps its records in a store of its own

Revision 0002 used to create ``gateway_charges`` and ``gateway_refunds`` in the service's
schema for the payment simulator. A test double has no place in the production schema:
the simulator (``payment.adapters.simulated_stripe``) now creates its own ``simulated_stripe``
schema when chosen, and nothing here recreates them on downgrade.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP TABLE IF EXISTS gateway_refunds")
    op.execute("DROP TABLE IF EXISTS gateway_charges")


def downgrade() -> None:
    pass  # the tables belonged to the simulator, which creates its own store
