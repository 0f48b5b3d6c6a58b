"""Each month's spend model (Gamma-Gamma, fitted beside the churn model), the check of the
independence it assumes, and the CLV assumptions the month was valued with; and each
quarter's calibration/holdout check of the churn model (calibrations).

Rows written before this revision have no spend model: their months have no expected spend
or CLV until they are refreshed again.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = (
    ("spend_p", sa.Float),
    ("spend_q", sa.Float),
    ("spend_gamma", sa.Float),
    ("spend_log_likelihood", sa.Float),
    ("spend_n_customers", sa.BigInteger),
    ("spend_converged", sa.Boolean),
    ("spend_kept_from", sa.Date),
    ("spend_frequency_correlation", sa.Float),
    ("clv_horizon_months", sa.Integer),
    ("clv_monthly_discount_rate", sa.Float),
)


def upgrade() -> None:
    with op.batch_alter_table("churn_fits") as churn_fits:
        for name, kind in COLUMNS:
            churn_fits.add_column(sa.Column(name, kind))
    op.create_table(
        "calibrations",
        sa.Column("month_end", sa.Date, primary_key=True),
        sa.Column("cutoff", sa.Date),
        sa.Column("holdout_end", sa.Date),
        sa.Column("holdout_weeks", sa.Float),
        sa.Column("model", sa.String),
        sa.Column("r", sa.Float),
        sa.Column("alpha", sa.Float),
        sa.Column("a", sa.Float),
        sa.Column("b", sa.Float),
        sa.Column("customers", sa.BigInteger),
        sa.Column("mean_absolute_error", sa.Float),
        sa.Column("groups", sa.Text),
        sa.Column("computed_at", sa.DateTime),
    )


def downgrade() -> None:
    op.drop_table("calibrations")
    with op.batch_alter_table("churn_fits") as churn_fits:
        for name, _ in reversed(COLUMNS):
            churn_fits.drop_column(name)
