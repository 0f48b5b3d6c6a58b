"""Which churn model each month's fit is of (bgnbd or mbgnbd: the dictionary chooses), and,
when the month's own fit was not sound (not converged, or a parameter at the search's bound),
the earlier month whose parameters were kept in its place.

Rows written before this revision are BG/NBD fits of their own month.

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
    with op.batch_alter_table("churn_fits") as churn_fits:
        churn_fits.add_column(sa.Column("model", sa.String, server_default="bgnbd"))
        churn_fits.add_column(sa.Column("kept_from", sa.Date))


def downgrade() -> None:
    with op.batch_alter_table("churn_fits") as churn_fits:
        churn_fits.drop_column("kept_from")
        churn_fits.drop_column("model")
