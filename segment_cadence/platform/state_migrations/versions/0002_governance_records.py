"""The governance records move out of the warehouse too: definition versions, the changelog and
the archive of retired segments, the publish gate's holds and releases, the language findings,
and the health breaches of each month. They are records of decisions (an approval, a hold, a
release, a breach), written by the CLI and by runs alike, not analytics.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.String) for name in names]


def upgrade() -> None:
    op.create_table(
        "definition_versions",
        sa.Column("definition_version", sa.String, primary_key=True),
        sa.Column("version_number", sa.Integer),
        *_text("governed_digest", "author", "reason", "approved_by", "approved_at"),
        sa.Column("recorded_at", sa.DateTime),
    )
    op.create_table(
        "changelog",
        sa.Column("entry_id", sa.String, primary_key=True),
        sa.Column("recorded_at", sa.DateTime),
        *_text("kind", "version_label", "definition_version"),
        sa.Column("month_end", sa.Date),
        sa.Column("summary", sa.String),
    )
    op.create_table(
        "retired_segments",
        sa.Column("segment_id", sa.String, primary_key=True),
        *_text("segment_name", "rationale", "retired_in_version"),
        sa.Column("last_size", sa.BigInteger),
        sa.Column("last_published_month", sa.Date),
        sa.Column("recorded_at", sa.DateTime),
    )
    op.create_table(
        "publish_holds",
        sa.Column("month_end", sa.Date),
        *_text("run_id", "inputs_fingerprint", "findings"),
        sa.Column("held_at", sa.DateTime),
    )
    op.create_index("publish_holds_by_month", "publish_holds", ["month_end"])
    op.create_table(
        "publish_releases",
        sa.Column("month_end", sa.Date),
        *_text("inputs_fingerprint", "released_by", "reason", "findings"),
        sa.Column("released_at", sa.DateTime),
    )
    op.create_index("publish_releases_by_month", "publish_releases", ["month_end"])
    op.create_table(
        "language_findings",
        sa.Column("month_end", sa.Date),
        *_text("source", "object_id", "field", "phrase", "found", "suggest"),
    )
    op.create_index("language_findings_by_month", "language_findings", ["month_end"])
    op.create_table(
        "breaches",
        sa.Column("month_end", sa.Date),
        *_text("rule_id", "segment_id", "metric"),
        sa.Column("value", sa.Float),
        sa.Column("baseline", sa.Float),
        sa.Column("bound", sa.Float),
        *_text("kind", "severity", "runbook", "definition_version"),
    )
    op.create_index("breaches_by_month", "breaches", ["month_end"])


def downgrade() -> None:
    for table in (
        "breaches",
        "language_findings",
        "publish_releases",
        "publish_holds",
        "retired_segments",
        "changelog",
        "definition_versions",
    ):
        op.drop_table(table)
