"""Holdouts and the scorecard: how many customers each firewall check held out (apart from
the blocked, which count toward the red flags), and the owner a breach is routed to (a KPI's
owner role, which may differ from the segment's owner; NULL routes to the segment's owner),
kept on the breach, the alert input and the alert.

Rows written before this revision held nobody out and route to the segment's owner.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("firewall_checks") as checks:
        checks.add_column(sa.Column("held_out", sa.BigInteger))
    for table in ("alert_input_breaches", "breaches", "alerts"):
        with op.batch_alter_table(table) as breaches:
            breaches.add_column(sa.Column("owner", sa.String))


def downgrade() -> None:
    for table in ("alerts", "breaches", "alert_input_breaches"):
        with op.batch_alter_table(table) as breaches:
            breaches.drop_column("owner")
    with op.batch_alter_table("firewall_checks") as checks:
        checks.drop_column("held_out")
