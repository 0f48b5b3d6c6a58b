"""What exactly-once delivery and the escalation ladder need: the outbox's order of creation
and the message each one waits for (an escalation goes out after what it escalates) and when a transient failure may be tried again, Slack
channel IDs resolved once from their names, and the quarterly runs level 3 requested, recorded
with the message that announces them.

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
    with op.batch_alter_table("outbox") as outbox:
        outbox.add_column(sa.Column("sequence", sa.BigInteger))
        outbox.add_column(sa.Column("after_message_id", sa.String))
        outbox.add_column(sa.Column("next_attempt_at", sa.DateTime))
    op.create_table(
        "slack_channels",
        sa.Column("name", sa.String, primary_key=True),
        sa.Column("channel_id", sa.String),
        sa.Column("resolved_at", sa.DateTime),
    )
    op.create_table(
        "strategic_requests",
        sa.Column("request_id", sa.String, primary_key=True),
        sa.Column("quarter", sa.String),
        sa.Column("alert_keys", sa.String),
        sa.Column("message_id", sa.String),
        sa.Column("requested_at", sa.DateTime),
        sa.Column("run_id", sa.String),
        sa.Column("launched_at", sa.DateTime),
    )
    with op.batch_alter_table("review_packs") as packs:
        packs.add_column(sa.Column("uploaded_at", sa.DateTime))


def downgrade() -> None:
    with op.batch_alter_table("review_packs") as packs:
        packs.drop_column("uploaded_at")
    op.drop_table("strategic_requests")
    op.drop_table("slack_channels")
    with op.batch_alter_table("outbox") as outbox:
        outbox.drop_column("next_attempt_at")
        outbox.drop_column("after_message_id")
        outbox.drop_column("sequence")
