"""One pass of the alerting loop, shared by the Dagster sensor and the CLI.

Reads breaches of months not yet processed, moves alert states, runs the time-based steps
of the escalation ladder, delivers the outbox and reads acknowledgements from Slack. Opens
one warehouse connection for the pass and closes it; every step is idempotent, so a
repeated or interrupted pass never sends a message twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import duckdb

from segment_cadence.defs.alerting import alerts, slack
from segment_cadence.defs.health import thresholds
from segment_cadence.defs.review import review_pack
from segment_cadence.platform.months import month_end as last_day
from segment_cadence.platform.months import previous_month
from segment_cadence.platform.warehouse import table_exists


@dataclass
class TickResult:
    months_processed: list[date] = field(default_factory=list)
    fired: int = 0
    suppressed: int = 0
    resolved: int = 0
    sent: int = 0
    failed: int = 0
    local: int = 0
    acknowledged: int = 0
    level_2: int = 0
    level_3: int = 0
    strategic_quarter: str | None = None

    def summary(self) -> str:
        months = ", ".join(f"{m:%Y-%m}" for m in self.months_processed) or "none"
        return (
            f"months processed: {months}; fired {self.fired}, suppressed {self.suppressed}, "
            f"resolved {self.resolved}; sent {self.sent}, kept for retry {self.failed}, "
            f"written locally {self.local}; acknowledged {self.acknowledged}; "
            f"escalated to level 2: {self.level_2}, level 3: {self.level_3}"
        )


def _breaches(con: duckdb.DuckDBPyConnection, month: date) -> tuple[list[thresholds.Breach], str]:
    rows = con.execute(
        "select month_end, rule_id, segment_id, metric, value, baseline, bound, kind, severity, "
        "runbook, definition_version from health.breaches where month_end = ?",
        [month],
    ).fetchall()
    version = con.execute(
        "select any_value(definition_version) from health.metrics where month_end = ?", [month]
    ).fetchone()[0]
    return [thresholds.Breach(*row[:10]) for row in rows], version or "unversioned"


def _owners_and_changes(
    con: duckdb.DuckDBPyConnection, month: date, version: str
) -> tuple[dict[str, str], set[str]]:  # noqa: E501
    owners = dict(
        con.execute(
            "select segment_id, owner from governance.segment_dictionary where definition_version = ?",
            [version],
        ).fetchall()
    )
    previous = con.execute(
        "select definition_version from published.publications where month_end = ?",
        [last_day(previous_month(month.replace(day=1)))],
    ).fetchone()
    changed: set[str] = set()
    if previous and previous[0] != version:
        changed = {
            r[0]
            for r in con.execute(
                """
                select coalesce(a.segment_id, b.segment_id) from
                  (select * from governance.segment_dictionary where definition_version = ?) a
                  full join
                  (select * from governance.segment_dictionary where definition_version = ?) b
                  using (segment_id)
                where a.rule is distinct from b.rule or a.priority is distinct from b.priority
                   or a.paused is distinct from b.paused or a.status is distinct from b.status
                """,
                [version, previous[0]],
            ).fetchall()
        }
    return owners, changed


def strategic_quarter_for(latest: date) -> str:
    """The latest complete quarter whose last month is published (a partition key)."""
    start = date(latest.year, (latest.month - 1) // 3 * 3 + 1, 1)
    if latest.month % 3 != 0:
        start = (
            date(start.year - 1, 10, 1)
            if start.month == 1
            else date(start.year, start.month - 3, 1)
        )
    return start.isoformat()


def run_tick(con: duckdb.DuckDBPyConnection, now: datetime, client=None,
             config: thresholds.ThresholdConfig | None = None) -> TickResult:  # fmt: skip
    config = config or thresholds.load()
    renderer = slack.Renderer()
    result = TickResult()
    alerts.ensure_tables(con)
    if not table_exists(con, "health", "metrics"):
        return result
    con.execute(
        "create table if not exists health.breaches (month_end date, rule_id varchar, "
        "segment_id varchar, metric varchar, value double, baseline double, bound double, "
        "kind varchar, severity varchar, runbook varchar, definition_version varchar)"
    )
    months = [
        r[0]
        for r in con.execute(
            "select distinct month_end from health.metrics where month_end not in "
            "(select month_end from alerts.processed_months) order by 1"
        ).fetchall()
    ]
    for month in months:
        breaches, version = _breaches(con, month)
        owners, changed = _owners_and_changes(con, month, version)
        con.execute("begin transaction")
        counts = alerts.process_refresh(
            con, month_end=month, breaches=breaches, config=config, definition_version=version,
            owners=owners, changed_segments=changed, now=now, render=renderer,
        )  # fmt: skip
        con.execute("commit")
        result.months_processed.append(month)
        result.fired += counts.get("fired", 0)
        result.suppressed += counts.get("suppressed", 0)
        result.resolved += counts.get("resolved", 0)
    con.execute("begin transaction")
    due = alerts.escalate_due(con, config, renderer, now)
    con.execute("commit")
    result.level_2, result.level_3 = due["level_2"], due["level_3"]
    if due["strategic_refresh"]:
        latest = con.execute("select max(month_end) from alerts.processed_months").fetchone()[0]
        result.strategic_quarter = strategic_quarter_for(latest) if latest else None
    delivered = slack.deliver_pending(con, client, now)
    result.sent, result.failed, result.local = (
        delivered["sent"],
        delivered["failed"],
        delivered["local"],
    )
    # Review packs that could not be posted are retried here too (nothing is lost).
    review_pack.post_pending(
        con, client, config.settings.get("review_channel", "#segmentation-review")
    )
    try:
        result.acknowledged = slack.read_acknowledgements(con, client, now)
    except Exception:  # noqa: BLE001 - Slack unreachable: acknowledgements are read next tick
        result.acknowledged = 0
    return result
