"""Each month's BG/NBD fit, recorded by the fit step for the marts' dbt run: the four
parameters, the log likelihood, the customers fitted on and whether the optimiser converged.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "churn_fits",
        sa.Column("month_end", sa.Date, primary_key=True),
        *[sa.Column(name, sa.Float) for name in ("r", "alpha", "a", "b", "log_likelihood")],
        sa.Column("n_customers", sa.BigInteger),
        sa.Column("converged", sa.Boolean),
        sa.Column("fitted_at", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("churn_fits")
