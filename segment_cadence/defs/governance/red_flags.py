"""The charter's three red-flag metrics, and what the monthly review needs beside them.

Everything is measured from what actually happened in the month: the send log
(raw.campaign_sends), the team list, the firewall's records and the exception requests.

- pause violations: sends that reached a customer whose segment was paused at send time.
  "At send time" means the membership in force then: the latest month published before the
  send, with the pause behaviour of the definition version that produced it. For sends in
  month M that is month M-1; if M-1 was never published the metric is "not evaluated", not 0.
- segment-unsafe attempts: campaigns in the send log that targeted a paused segment or were
  sent by someone in their first 30 days, and campaigns the firewall blocked (wholly or in
  part), one row per campaign and source.
- manual override attempts: who, when, why, and the segments involved.
- the onboarding rule: sends by team members in their first 30 days.
- suppressed campaign volume (messages the firewall kept from being sent) and exception
  requests of every kind; pressure patterns (attempts by team, channel, segment and week,
  against last month).

The tables are dbt models (dbt_project/models/governance: pause_violations,
onboarding_violations, unsafe_attempts, pressure_patterns, red_flags), each kept per month and
replaced as a whole, so re-running a month gives the same rows. This module reads them back for
the checks, the escalation and the review pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from segment_cadence.platform.metrics import Metric
from segment_cadence.platform.warehouse import table_exists

METRICS = (
    "pause_violation_count",
    "segment_unsafe_attempts",
    "manual_override_attempts",
    "onboarding_violations",
    "suppressed_campaign_volume",
    "suppressed_campaigns",
    "exception_requests",
)


@dataclass(frozen=True)
class RedFlags:
    month_end: date
    values: dict[str, int | None]
    details: dict[str, str]

    @property
    def pause_violations_evaluated(self) -> bool:
        return self.values["pause_violation_count"] is not None


def read(con: duckdb.DuckDBPyConnection, month_end: date) -> RedFlags:
    """The month's red flags as the red_flags model recorded them (None: not evaluated, or
    the month not measured yet)."""
    rows = (
        con.execute(
            "select metric, value, detail from governance.red_flags where month_end = ?",
            [month_end],
        ).fetchall()
        if table_exists(con, "governance", "red_flags")
        else []
    )
    values: dict[str, int | None] = dict.fromkeys(METRICS)
    details: dict[str, str] = {}
    for metric, value, detail in rows:
        values[metric] = value
        if detail:
            details[metric] = detail
    return RedFlags(month_end, values, details)


def health_metrics(con: duckdb.DuckDBPyConnection, month_end: date) -> list[Metric]:
    """Pause violations per paused segment (0 for a clean segment), as the health metrics
    model recorded them for the alerting layer; none when they were not evaluated."""
    if not table_exists(con, "health", "metrics"):
        return []
    rows = con.execute(
        "select segment_id, value from health.metrics "
        "where month_end = ? and metric = 'pause_violations'",
        [month_end],
    ).fetchall()
    return [Metric(month_end, segment_id, "pause_violations", value) for segment_id, value in rows]
