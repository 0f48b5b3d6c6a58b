"""The operational state moves out of the warehouse: alerts, silences, the outbox, suppressed
alerts, processed months, firewall checks and blocked customers, exception requests (override
attempts, disputes), review-pack posting state, and the alert inputs a monthly run hands over.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _text(*names: str) -> list[sa.Column]:
    return [sa.Column(name, sa.String) for name in names]


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_key", sa.String, primary_key=True),
        *_text("rule_id", "segment_id", "metric", "definition_version", "state", "severity"),
        sa.Column("consecutive", sa.Integer),
        sa.Column("clean_streak", sa.Integer),
        sa.Column("first_breach_month", sa.Date),
        sa.Column("last_breach_month", sa.Date),
        sa.Column("last_value", sa.Float),
        sa.Column("last_baseline", sa.Float),
        sa.Column("last_bound", sa.Float),
        sa.Column("fired_at", sa.DateTime),
        sa.Column("acknowledged_by", sa.String),
        sa.Column("acknowledged_at", sa.DateTime),
        sa.Column("resolved_at", sa.DateTime),
        sa.Column("level", sa.Integer),
        sa.Column("last_notified_at", sa.DateTime),
        sa.Column("strategic_requested_at", sa.DateTime),
    )
    op.create_index("alerts_by_state", "alerts", ["state"])
    op.create_table(
        "silences",
        *_text("silence_id", "segment_id", "rule_id", "created_by", "reason"),
        sa.Column("created_at", sa.DateTime),
        sa.Column("expires_at", sa.DateTime),
    )
    op.create_table(
        "outbox",
        sa.Column("message_id", sa.String),
        sa.Column("created_at", sa.DateTime),
        *_text("kind", "segment_id"),
        sa.Column("month_end", sa.Date),
        *_text("channel", "alert_keys", "payload", "reply_to", "status"),
        sa.Column("attempts", sa.Integer),
        sa.Column("last_error", sa.String),
        sa.Column("sent_at", sa.DateTime),
        *_text("slack_ts", "slack_channel_id"),
    )
    op.create_index("outbox_by_status", "outbox", ["status"])
    op.create_index("outbox_by_message", "outbox", ["message_id"])
    op.create_table(
        "suppressed",
        sa.Column("month_end", sa.Date),
        *_text("alert_key", "reason"),
        sa.Column("recorded_at", sa.DateTime),
    )
    op.create_table(
        "processed_months",
        sa.Column("month_end", sa.Date, primary_key=True),
        sa.Column("processed_at", sa.DateTime),
    )
    op.create_table(
        "firewall_checks",
        sa.Column("check_id", sa.String, primary_key=True),
        sa.Column("checked_at", sa.DateTime),
        *_text("campaign_name", "sender_id", "team", "channel", "target_segments"),
        sa.Column("planned_at", sa.DateTime),
        sa.Column("membership_month", sa.Date),
        sa.Column("requested_by", sa.String),
        sa.Column("recipients", sa.BigInteger),
        sa.Column("allowed", sa.BigInteger),
        sa.Column("blocked", sa.BigInteger),
        *_text("decision", "reason_counts", "blocked_segments"),
    )
    op.create_table(
        "firewall_blocked",
        *_text("check_id", "customer_id", "segment_id", "reason", "all_reasons"),
    )
    op.create_index("firewall_blocked_by_check", "firewall_blocked", ["check_id"])
    op.create_table(
        "exception_requests",
        sa.Column("request_id", sa.String, primary_key=True),
        sa.Column("requested_at", sa.DateTime),
        *_text("kind", "requested_by", "team", "campaign_name", "channel", "segment_ids"),
        *_text("customer_id", "reason", "decision", "decided_by", "response"),
    )
    op.create_table(
        "review_packs",
        sa.Column("month_end", sa.Date, primary_key=True),
        sa.Column("path", sa.String),
        sa.Column("rendered_at", sa.DateTime),
        sa.Column("summary", sa.String),
        sa.Column("posted_at", sa.DateTime),
        *_text("slack_file_id", "last_error"),
    )
    op.create_table(
        "alert_input_months",
        sa.Column("month_end", sa.Date, primary_key=True),
        sa.Column("definition_version", sa.String),
        sa.Column("recorded_at", sa.DateTime),
    )
    op.create_table(
        "alert_input_breaches",
        sa.Column("month_end", sa.Date),
        *_text("rule_id", "segment_id", "metric"),
        sa.Column("value", sa.Float),
        sa.Column("baseline", sa.Float),
        sa.Column("bound", sa.Float),
        *_text("kind", "severity", "runbook", "definition_version"),
    )
    op.create_index("alert_input_breaches_by_month", "alert_input_breaches", ["month_end"])
    op.create_table(
        "alert_input_owners",
        sa.Column("month_end", sa.Date),
        *_text("segment_id", "owner"),
    )
    op.create_table(
        "alert_input_changed_segments",
        sa.Column("month_end", sa.Date),
        sa.Column("segment_id", sa.String),
    )


def downgrade() -> None:
    for table in (
        "alert_input_changed_segments",
        "alert_input_owners",
        "alert_input_breaches",
        "alert_input_months",
        "review_packs",
        "exception_requests",
        "firewall_blocked",
        "firewall_checks",
        "processed_months",
        "suppressed",
        "outbox",
        "silences",
        "alerts",
    ):
        op.drop_table(table)
