"""The monthly review pack: what the 30-minute segmentation review reads (seed 000, part 5).

The agenda is fixed and comes first: (1) pause violations, (2) segment dwell anomalies,
(3) suppressed campaign volume, (4) exception requests and override attempts, (5) where
pressure showed up. Then the context: segment sizes over twelve months, the month's
migration matrix, KPI trends, alerts and how they were handled, definition changes, the
bias audit and data-quality notes. It is system health, not campaign performance.

Gathering is separate from rendering. `gather` reads the tables and returns sections whose
`figures` are the numbers the pack shows, each section naming its source tables, so a test
can check every figure against the tables. Firewall checks, exception requests, the month's
breaches and the changelog are read from their warehouse copies (ops.*, refreshed from the
state store before the pack is gathered: state_store.copy_review_records); alerts and silences
from the state store itself. A section whose source has not run, or that has
nothing this month, says so in a line instead of showing an empty chart.
"""

from __future__ import annotations

import io
import re
import statistics
import urllib.request
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import Connection, delete, func, insert, select, update

from segment_cadence.defs.alerting import slack
from segment_cadence.defs.governance import audit, firewall
from segment_cadence.platform import markdown, state_store
from segment_cadence.platform.months import previous_month_end
from segment_cadence.platform.state_store import review_packs
from segment_cadence.platform.warehouse import table_exists

AGENDA = (
    "pause_violations",
    "dwell_anomalies",
    "suppressed_volume",
    "exception_requests",
    "pressure",
)


@dataclass
class Table:
    header: list[str]
    rows: list[tuple]


@dataclass
class Chart:
    kind: str  # lines / heatmap / bars
    title: str
    data: dict[str, Any]
    alt: str


@dataclass
class Section:
    id: str
    title: str
    sources: list[str]
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    no_data: str | None = None


@dataclass
class Pack:
    month_end: date
    generated_at: datetime
    definition_version: str | None
    sections: list[Section]

    def section(self, section_id: str) -> Section:
        return next(s for s in self.sections if s.id == section_id)

    def headline(self) -> dict[str, Any]:
        """The figures a Slack summary and the asset's metadata lead with."""
        get = {s.id: s.figures for s in self.sections}
        return {
            "pause violations": get["pause_violations"].get("pause_violation_count"),
            "dwell anomalies": get["dwell_anomalies"].get("dwell_anomalies"),
            "suppressed messages": get["suppressed_volume"].get("suppressed_campaign_volume"),
            "override attempts": get["exception_requests"].get("manual_override_attempts"),
            "segment-unsafe attempts": get["pressure"].get("segment_unsafe_attempts"),
        }


def _has(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".")
    return table_exists(con, schema, table)


def _missing(con: duckdb.DuckDBPyConnection, sources: list[str]) -> str | None:
    absent = [s for s in sources if not _has(con, s)]
    if not absent:
        return None
    verb = "has" if len(absent) == 1 else "have"
    return f"No data: {', '.join(absent)} {verb} not been produced yet."


def _red_flag(con: duckdb.DuckDBPyConnection, month: date, metric: str) -> Any:
    row = con.execute(
        "select value, evaluated from governance.red_flags where month_end = ? and metric = ?",
        [month, metric],
    ).fetchone()
    if row is None:
        return None
    return row[0] if row[1] else "not evaluated"


def _pause_violations(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section(
        "pause_violations",
        "1. Pause violations",
        ["governance.red_flags", "governance.pause_violations", "governance.onboarding_violations"],
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    count = _red_flag(con, month, "pause_violation_count")
    if count is None:
        s.no_data = "No data: the governance metrics have not run for this month."
        return s
    s.figures["pause_violation_count"] = count
    s.figures["onboarding_sends"] = _red_flag(con, month, "onboarding_violations") or 0
    if count == "not evaluated":
        s.notes.append(
            "Not evaluated: the month before was not published, so membership at "
            "send time is unknown."
        )
    elif count == 0:
        s.notes.append("Zero sends reached a paused segment. The target is zero.")
    else:
        s.notes.append(
            f"**{count} sends reached customers in paused segments.** Target zero: "
            "each source below is reviewed and the leak fixed."
        )
        s.tables.append(
            Table(
                ["campaign", "name", "sender", "sender name", "team", "paused segment", "sends"],
                con.execute(
                    "select campaign_id, any_value(campaign_name), sender_id, any_value(sender_name), "
                    "any_value(team), segment_id, count(*) from governance.pause_violations "
                    "where month_end = ? group by campaign_id, sender_id, segment_id order by 7 desc",
                    [month],
                ).fetchall(),
            )
        )
    onboarding = con.execute(
        "select sender_id, sender_name, team, joined_date, campaign_name, days_after_joining, sends "
        "from governance.onboarding_violations where month_end = ? order by sender_id",
        [month],
    ).fetchall()
    if onboarding:
        s.notes.append(
            f"Onboarding rule: {s.figures['onboarding_sends']} sends by team members "
            "in their first 30 days."
        )
        s.tables.append(
            Table(["sender", "name", "team", "joined", "campaign", "day", "sends"], onboarding)
        )
    return s


def _dwell(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section("dwell_anomalies", "2. Segment dwell anomalies", ["health.metrics", "ops.breaches"])
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    rows = con.execute(
        """
        select m.segment_id, round(m.value, 2),
            (select round(median(h.value), 2) from health.metrics h
             where h.segment_id = m.segment_id and h.metric = 'dwell_months'
               and h.month_end < m.month_end and h.month_end >= m.month_end - interval 12 month),
            coalesce(b.severity, '')
        from health.metrics m
        left join ops.breaches b on b.month_end = m.month_end and b.segment_id = m.segment_id
            and b.metric = 'dwell_months'
        where m.month_end = ? and m.metric = 'dwell_months'
        order by (b.severity is null), m.segment_id
        """,
        [month],
    ).fetchall()
    if not rows:
        s.no_data = "No data: segment health has not run for this month."
        return s
    anomalies = [r for r in rows if r[3]]
    s.figures["dwell_anomalies"] = len(anomalies)
    s.notes.append(
        f"{len(anomalies)} segments with a dwell anomaly (robust z against their history)."
        if anomalies
        else "No dwell anomalies: time in segment is in line with history."
    )
    s.tables.append(Table(["segment", "avg months in segment", "12-month median", "anomaly"], rows))
    return s


def _suppressed(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section(
        "suppressed_volume",
        "3. Suppressed campaign volume",
        ["governance.red_flags", "ops.firewall_checks"],
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    volume = _red_flag(con, month, "suppressed_campaign_volume")
    if volume is None:
        s.no_data = "No data: the governance metrics have not run for this month."
        return s
    s.figures["suppressed_campaign_volume"] = volume
    s.figures["suppressed_campaigns"] = _red_flag(con, month, "suppressed_campaigns")
    checks = con.execute(
        "select campaign_name, sender_id, channel, strftime(planned_at, '%Y-%m-%d'), allowed, "
        "blocked, decision, reason_counts from ops.firewall_checks "
        "where last_day(planned_at) = ? order by planned_at",
        [month],
    ).fetchall()
    s.figures["campaigns_checked"] = len(checks)
    if not checks:
        s.notes.append("No campaigns were checked by the firewall for this month.")
    else:
        s.notes.append(
            f"The firewall kept {volume} messages from being sent, across "
            f"{len(checks)} checked campaigns ({s.figures['suppressed_campaigns']} "
            "blocked outright). Silence here is the system working."
        )
        s.tables.append(Table(list(firewall.CHECK_COLUMNS), checks))
    return s


def _exceptions(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section(
        "exception_requests",
        "4. Exception requests and override attempts",
        ["ops.exception_requests"],
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    rows = con.execute(
        "select strftime(requested_at, '%Y-%m-%d %H:%M'), kind, requested_by, coalesce(team, ''), "
        "coalesce(campaign_name, customer_id, ''), coalesce(segment_ids, ''), reason, decision "
        "from ops.exception_requests where last_day(requested_at) = ? order by requested_at",
        [month],
    ).fetchall()
    s.figures["exception_requests"] = len(rows)
    s.figures["manual_override_attempts"] = sum(r[1] == "override" for r in rows)
    s.figures["disputes"] = sum(r[1] == "dispute" for r in rows)
    if not rows:
        s.notes.append("No exception requests this month.")
    else:
        s.notes.append(
            f"{len(rows)} requests, {s.figures['manual_override_attempts']} of them to "
            "override the firewall (all refused: exceptions change logic through "
            "review, never bypass it)."
        )
        s.tables.append(
            Table(
                [
                    "when",
                    "kind",
                    "who",
                    "team",
                    "campaign / customer",
                    "segments",
                    "why",
                    "decision",
                ],
                rows,
            )
        )
    return s


def _pressure(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section(
        "pressure",
        "5. Where did pressure show up this month?",
        ["governance.pressure_patterns", "governance.unsafe_attempts"],
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    s.figures["segment_unsafe_attempts"] = con.execute(
        "select count(*) from governance.unsafe_attempts where month_end = ?", [month]
    ).fetchone()[0]
    rows = con.execute(
        "select dimension, key, attempts, previous_attempts, change from "
        "governance.pressure_patterns where month_end = ? order by abs(change) desc, attempts desc, "
        "dimension, key",
        [month],
    ).fetchall()
    if not rows or not any(r[2] or r[3] for r in rows):
        s.notes.append("No segment-unsafe or override attempts this month or last.")
        return s
    by_team = [(r[1], r[2]) for r in rows if r[0] == "team" and r[2]]
    s.figures["attempts_by_team"] = dict(sorted(by_team))
    top = rows[0]
    s.notes.append(
        f"{s.figures['segment_unsafe_attempts']} segment-unsafe attempts. Largest "
        f"change against last month: {top[0]} '{top[1]}' ({top[3]} -> {top[2]})."
    )
    s.tables.append(Table(["by", "who / what", "attempts", "last month", "change"], rows[:15]))
    weeks = sorted((r[1], r[2]) for r in rows if r[0] == "week")
    if weeks:
        s.charts.append(
            Chart(
                "bars",
                "Attempts by week",
                {"labels": [w for w, _ in weeks], "values": [v for _, v in weeks]},
                "Bar chart of segment-unsafe and override attempts by week",
            )
        )
    return s


def _sizes(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section(
        "segment_sizes", "Segment sizes over the last 12 months", ["published.segment_kpis"]
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    rows = con.execute(
        "select month_end, segment_id, customers from published.segment_kpis "
        "where month_end <= ? and month_end > ? - interval 12 month order by month_end, segment_id",
        [month, month],
    ).fetchall()
    current = {seg: n for m, seg, n in rows if m == month}
    if not current:
        s.no_data = "No data: this month has not been published."
        return s
    s.figures["sizes"] = current
    s.figures["customers"] = sum(current.values())
    months = sorted({m for m, _, _ in rows})
    series = {
        seg: [next((n for m2, s2, n in rows if m2 == m and s2 == seg), 0) for m in months]
        for seg in sorted({seg for _, seg, _ in rows})
    }
    s.charts.append(
        Chart(
            "lines",
            "Customers per segment",
            {"labels": [f"{m:%Y-%m}" for m in months], "series": series},
            f"Line chart of segment sizes over {len(months)} months",
        )
    )
    s.tables.append(Table(["segment", "customers"], sorted(current.items(), key=lambda kv: -kv[1])))
    return s


def _migration(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section("migration", "Migration matrix", ["published.segment_transitions"])
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    rows = con.execute(
        "select coalesce(from_segment_id, '(new)'), to_segment_id, customers "
        "from published.segment_transitions where month_end = ?",
        [month],
    ).fetchall()
    if not rows:
        s.no_data = "No data: no transitions were published for this month."
        return s
    s.figures["customers_moved"] = sum(n for f, t, n in rows if f != t and f != "(new)")
    s.figures["new_customers"] = sum(n for f, _, n in rows if f == "(new)")
    sources = sorted({f for f, _, _ in rows})
    targets = sorted({t for _, t, _ in rows})
    matrix = [
        [next((n for f2, t2, n in rows if f2 == f and t2 == t), 0) for t in targets]
        for f in sources
    ]
    s.charts.append(
        Chart(
            "heatmap",
            "Who moved where (rows: last month, columns: this month)",
            {"rows": sources, "columns": targets, "matrix": matrix},
            "Heatmap of customers moving between segments",
        )
    )
    s.notes.append(
        f"{s.figures['customers_moved']} customers changed segment; "
        f"{s.figures['new_customers']} were new."
    )
    return s


def _kpis(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section("kpi_trends", "KPI trends per segment", ["published.segment_kpis"])
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    previous = previous_month_end(month)
    rows = con.execute(
        """
        select k.segment_id, round(k.retention_rate, 3), round(p.retention_rate, 3),
            round(k.avg_churn_likelihood, 3), round(p.avg_churn_likelihood, 3),
            round(k.campaign_response_rate, 3), round(p.campaign_response_rate, 3),
            round(k.revenue_this_month, 0)
        from published.segment_kpis k
        left join published.segment_kpis p on p.segment_id = k.segment_id and p.month_end = ?
        where k.month_end = ? order by k.customers desc
        """,
        [previous, month],
    ).fetchall()
    if not rows:
        s.no_data = "No data: this month has not been published."
        return s
    s.figures["retention_rate"] = {r[0]: r[1] for r in rows}
    s.tables.append(
        Table(
            [
                "segment",
                "retention",
                "last month",
                "churn likelihood",
                "last month",
                "response rate",
                "last month",
                "revenue this month",
            ],
            rows,
        )
    )
    history = con.execute(
        "select month_end, segment_id, retention_rate from published.segment_kpis "
        "where month_end <= ? and month_end > ? - interval 12 month order by month_end",
        [month, month],
    ).fetchall()
    months = sorted({m for m, _, _ in history})
    if len(months) > 1:
        series = {
            seg: [next((v for m2, s2, v in history if m2 == m and s2 == seg), None) for m in months]
            for seg in sorted({seg for _, seg, _ in history})
        }
        s.charts.append(
            Chart(
                "lines",
                "Retention rate per segment",
                {"labels": [f"{m:%Y-%m}" for m in months], "series": series},
                "Line chart of retention rate per segment",
            )
        )
    return s


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds() / 3600


def _year_before(day: date) -> date:
    """The same day a year earlier (28 February for 29 February), as DuckDB's interval does."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def _alerts(con: duckdb.DuckDBPyConnection, month: date, now: datetime) -> Section:
    """From the state store, where the alert lifecycle keeps them (the warehouse is not used)."""
    s = Section(
        "alerts",
        "Alerts raised and how they were handled",
        ["state store: alerts", "state store: silences"],
    )
    a, q = state_store.alerts.c, state_store.silences.c
    processed = state_store.processed_months.c
    with state_store.transaction() as state:
        if not state.execute(
            select(processed.month_end).where(processed.month_end == month)
        ).first():
            s.no_data = "No data: the alert lifecycle has not processed this month."
            return s
        raised = state.execute(
            select(
                a.alert_key,
                a.rule_id,
                a.segment_id,
                a.severity,
                a.state,
                a.level,
                a.fired_at,
                a.acknowledged_at,
                a.resolved_at,
            )
            .where(a.first_breach_month == month)
            .order_by(a.alert_key)
        ).all()
        silences = [
            (*r[:4], f"{r[4]:%Y-%m-%d %H:%M}")
            for r in state.execute(
                select(q.segment_id, q.rule_id, q.created_by, q.reason, q.expires_at)
                .where(q.created_at <= now, q.expires_at > now)
                .order_by(q.expires_at)
            )
        ]
        noisy = [
            tuple(r)
            for r in state.execute(
                select(a.rule_id, func.count().label("alerts"))
                .where(a.first_breach_month <= month, a.first_breach_month > _year_before(month))
                .group_by(a.rule_id)
                .order_by(func.count().desc(), a.rule_id)
                .limit(5)
            )
        ]
    to_ack = [h for h in (_hours(r[6], r[7]) for r in raised) if h is not None]
    to_resolve = [h for h in (_hours(r[6], r[8]) for r in raised) if h is not None]
    s.figures["alerts_raised"] = len(raised)
    s.figures["acknowledged"] = len(to_ack)
    s.figures["resolved"] = len(to_resolve)
    s.figures["median_hours_to_acknowledge"] = (
        round(statistics.median(to_ack), 1) if to_ack else None
    )
    s.figures["median_hours_to_resolve"] = (
        round(statistics.median(to_resolve), 1) if to_resolve else None
    )
    s.figures["silences_in_force"] = len(silences)
    s.figures["noisiest_rules"] = dict(noisy)
    fmt = lambda v: "n/a" if v is None else f"{v} h"  # noqa: E731
    s.notes.append(
        f"{len(raised)} alerts raised; {len(to_ack)} acknowledged (median "
        f"{fmt(s.figures['median_hours_to_acknowledge'])}), {len(to_resolve)} resolved "
        f"(median {fmt(s.figures['median_hours_to_resolve'])}); {len(silences)} "
        "silences in force."
    )
    if raised:
        s.tables.append(
            Table(
                ["alert", "severity", "state", "level"], [(r[0], r[3], r[4], r[5]) for r in raised]
            )
        )
    if silences:
        s.tables.append(Table(["segment", "rule", "by", "why", "expires"], silences))
    if noisy:
        s.tables.append(Table(["noisiest rules (12 months)", "alerts"], noisy))
    return s


def _definitions(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section(
        "definition_changes",
        "Definition changes this month",
        ["ops.changelog", "published.publications"],
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    rows = con.execute(
        "select strftime(recorded_at, '%Y-%m-%d'), kind, coalesce(version_label, ''), summary "
        "from ops.changelog where kind not in ('publication', 'review_pack') "
        "and last_day(recorded_at) = ? order by recorded_at, entry_id",
        [month],
    ).fetchall()
    labels = con.execute(
        "select month_end, coalesce(version_label, definition_version) from published.publications "
        "where month_end in (?, ?) qualify row_number() over (partition by month_end "
        "order by published_at desc) = 1",
        [month, previous_month_end(month)],
    ).fetchall()
    published = dict(labels)
    if month not in published:
        s.no_data = "No data: this month has not been published."
        return s
    s.figures["definition_changes"] = len(rows)
    s.figures["published_under"] = published.get(month)
    previous = [v for m, v in published.items() if m != month]
    if previous and previous[0] != published.get(month):
        s.notes.append(f"Published under {published.get(month)}; last month was {previous[0]}.")
    elif published.get(month):
        s.notes.append(f"Published under {published.get(month)}, unchanged from last month.")
    if rows:
        s.tables.append(Table(["recorded", "kind", "version", "what changed"], rows))
    else:
        s.notes.append("No definition changes were recorded this month.")
    return s


def _bias(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section("bias_audit", "Bias audit", ["governance.bias_audit"])
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    rows = audit.flagged_bias(con, month)
    cells = con.execute(
        "select count(*) from governance.bias_audit where month_end = ?", [month]
    ).fetchone()[0]
    if not cells:
        s.no_data = "No data: the bias audit has not run for this month."
        return s
    s.figures["flagged_cells"] = len(rows)
    s.notes.append(f"{cells} (attribute, group, segment) cells audited; {len(rows)} flagged.")
    if rows:
        s.tables.append(
            Table(
                [
                    "attribute",
                    "group",
                    "segment",
                    "members",
                    "group share",
                    "overall share",
                    "ratio",
                ],
                rows,
            )
        )
    return s


def _data_quality(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    s = Section(
        "data_quality", "Data-quality notes", ["health.metrics", "quarantine.rejected_rows"]
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    metrics = dict(
        con.execute(
            "select metric, value from health.metrics where month_end = ? and segment_id = '*' "
            "and metric in ('freshness_days', 'quarantine_rate', 'order_lines_in_month')",
            [month],
        ).fetchall()
    )
    if not metrics:
        s.no_data = "No data: input health has not run for this month."
        return s
    s.figures["freshness_days"] = metrics.get("freshness_days")
    s.figures["quarantine_rate"] = metrics.get("quarantine_rate")
    reasons = con.execute(
        "select source, reason, count(*) from quarantine.rejected_rows group by all order by 3 desc"
    ).fetchall()
    s.figures["quarantined_rows"] = sum(r[2] for r in reasons)
    freshness = metrics.get("freshness_days")
    newest = (
        "No order on or before the month end"
        if freshness is None
        else f"Newest order {freshness:.0f} days before month end"
    )
    s.notes.append(f"{newest}; {s.figures['quarantined_rows']} rows quarantined in all loads.")
    if reasons:
        s.tables.append(Table(["source", "reason", "rows"], reasons))
    return s


def gather(con: duckdb.DuckDBPyConnection, month_end: date, now: datetime | None = None) -> Pack:
    """Every section of the month's pack, read from the tables (nothing is written)."""
    now = now or datetime.now()
    version = None
    if _has(con, "published.publications"):
        row = con.execute(
            "select coalesce(version_label, definition_version) from published.publications "
            "where month_end = ? order by published_at desc limit 1",
            [month_end],
        ).fetchone()
        version = row[0] if row else None
    sections = [
        _pause_violations(con, month_end),
        _dwell(con, month_end),
        _suppressed(con, month_end),
        _exceptions(con, month_end),
        _pressure(con, month_end),
        _sizes(con, month_end),
        _migration(con, month_end),
        _kpis(con, month_end),
        _alerts(con, month_end, now),
        _definitions(con, month_end),
        _bias(con, month_end),
        _data_quality(con, month_end),
    ]
    return Pack(month_end, now, version, sections)


# ---------------------------------------------------------------------------- rendering


def chart_svg(chart: Chart) -> str:
    """One chart as an inline SVG (text kept as text, so it is searchable and prints sharply)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "segment-cadence", "font.size": 9})
    if chart.kind == "heatmap":
        rows, columns = chart.data["rows"], chart.data["columns"]
        fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(columns), 1.0 + 0.4 * len(rows)))
        image = ax.imshow(chart.data["matrix"], cmap="Blues", aspect="auto")
        ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        peak = max((max(r) for r in chart.data["matrix"]), default=0) or 1
        for i, row in enumerate(chart.data["matrix"]):
            for j, value in enumerate(row):
                if value:
                    ax.text(
                        j,
                        i,
                        str(value),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if value > peak / 2 else "black",
                    )
        fig.colorbar(image, ax=ax, shrink=0.8)
    else:
        fig, ax = plt.subplots(figsize=(8, 3.4))
        if chart.kind == "bars":
            ax.bar(chart.data["labels"], chart.data["values"], color="#4c72b0")
        else:
            for name, values in chart.data["series"].items():
                ax.plot(chart.data["labels"], values, marker="o", markersize=3, label=name)
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
            ax.tick_params(axis="x", rotation=40)
        ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(chart.title, fontsize=10, loc="left")
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    svg = buffer.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.DOTALL)  # no RDF boilerplate
    return svg[svg.index("<svg") :]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, datetime | date):
        return value.isoformat()[:16].replace("T", " ")
    return str(value)


def render_markdown(pack: Pack, chart_links: dict[str, str] | None = None) -> str:
    lines = [
        f"# Monthly segmentation review: {pack.month_end:%B %Y}",
        "",
        f"Definition version: {pack.definition_version or 'n/a'}. Generated "
        f"{pack.generated_at:%Y-%m-%d %H:%M}. System health, not campaign performance.",
        "",
    ]
    headline = pack.headline().items()
    lines.append(
        markdown.table(
            ["headline", "value"],
            [(k, _cell(v) if v is not None else "no data") for k, v in headline],
        )
    )
    for section in pack.sections:
        lines += ["", f"## {section.title}", "", f"*Source: {', '.join(section.sources)}*", ""]
        if section.no_data:
            lines.append(section.no_data)
            continue
        lines += [*section.notes]
        for i, chart in enumerate(section.charts):
            link = (chart_links or {}).get(f"{section.id}-{i}")
            lines += ["", f"![{chart.alt}]({link})" if link else f"*Chart: {chart.alt}*"]
        for table in section.tables:
            rows = [[_cell(v).replace("|", "/") for v in row] for row in table.rows]
            lines += ["", markdown.table(table.header, rows)]
    return "\n".join(lines) + "\n"


HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Segmentation review {{ pack.month_end.strftime('%Y-%m') }}</title>
<style>
 body { font: 14px/1.45 system-ui, sans-serif; color: #1c2430; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
 h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin: 0 0 .4rem; }
 section { border-top: 1px solid #d5dbe3; padding: 1rem 0; break-inside: avoid; page-break-inside: avoid; }
 .agenda h2 { color: #7a2e12; } .source { color: #5b6675; font-size: .8rem; margin: 0 0 .5rem; }
 .nodata { color: #5b6675; font-style: italic; }
 table { border-collapse: collapse; margin: .5rem 0; font-size: .85rem; }
 th, td { border: 1px solid #d5dbe3; padding: .2rem .45rem; text-align: left; }
 th { background: #f1f4f8; } .chart svg { max-width: 100%; height: auto; }
 .headline { display: flex; flex-wrap: wrap; gap: .6rem; margin: 1rem 0; }
 .headline div { border: 1px solid #d5dbe3; border-radius: 6px; padding: .4rem .7rem; }
 .headline b { display: block; font-size: 1.3rem; }
 @media print { body { margin: 0; max-width: none; } a { color: inherit; } }
</style></head><body>
<h1>Monthly segmentation review: {{ pack.month_end.strftime('%B %Y') }}</h1>
<p class="source">Definition version {{ pack.definition_version or 'n/a' }} &middot; generated
{{ pack.generated_at.strftime('%Y-%m-%d %H:%M') }} &middot; system health, not campaign performance</p>
<div class="headline">{% for k, v in pack.headline().items() %}<div><b>{{ cell(v) if v is not none else 'no data' }}</b>{{ k }}</div>{% endfor %}</div>
{% for s in pack.sections %}
<section id="{{ s.id }}" class="{{ 'agenda' if s.id in agenda else 'context' }}">
<h2>{{ s.title }}</h2>
<p class="source">Source: {{ s.sources | join(', ') }}</p>
{% if s.no_data %}<p class="nodata">{{ s.no_data }}</p>{% else %}
{% for note in s.notes %}<p>{{ note | replace('**', '') }}</p>{% endfor %}
{% for svg in charts[s.id] %}<figure class="chart">{{ svg | safe }}</figure>{% endfor %}
{% for t in s.tables %}<table><thead><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in t.rows %}<tr>{% for v in row %}<td>{{ cell(v) }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>{% endfor %}
{% endif %}</section>
{% endfor %}
</body></html>
"""


def render_html(pack: Pack) -> str:
    """One self-contained HTML file: inline CSS and SVG charts, nothing fetched."""
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    charts = {s.id: [chart_svg(c) for c in s.charts] for s in pack.sections}
    return environment.from_string(HTML_TEMPLATE).render(
        pack=pack, charts=charts, cell=_cell, agenda=AGENDA
    )


@dataclass(frozen=True)
class WrittenPack:
    html: Path
    markdown: Path
    charts: list[Path]


def write(pack: Pack, directory: Path) -> WrittenPack:
    """Write the pack under directory/YYYY-MM/: review-pack.html, review-pack.md, charts/."""
    out = directory / f"{pack.month_end:%Y-%m}"
    (out / "charts").mkdir(parents=True, exist_ok=True)
    links, chart_files = {}, []
    for section in pack.sections:
        for i, chart in enumerate(section.charts):
            path = out / "charts" / f"{section.id}-{i}.svg"
            path.write_text(chart_svg(chart))
            links[f"{section.id}-{i}"] = f"charts/{path.name}"
            chart_files.append(path)
    html = out / "review-pack.html"
    html.write_text(render_html(pack))
    markdown = out / "review-pack.md"
    markdown.write_text(render_markdown(pack, links))
    return WrittenPack(html, markdown, chart_files)


def slack_summary(pack: Pack) -> str:
    figures = ", ".join(
        f"{k}: {v if v is not None else 'no data'}" for k, v in pack.headline().items()
    )
    return f"Monthly segmentation review pack for {pack.month_end:%B %Y}. {figures}."


def record(state: Connection, month_end: date, path: Path, summary: str) -> None:
    """Note the pack in the state store's review_packs (the changelog reads it; one row per
    month). A re-render keeps whether it was already posted, so Slack gets each month once."""
    existing = state.execute(
        select(review_packs.c.posted_at, review_packs.c.slack_file_id).where(
            review_packs.c.month_end == month_end
        )
    ).first()
    state.execute(delete(review_packs).where(review_packs.c.month_end == month_end))
    posted_at, slack_file_id = existing or (None, None)
    state.execute(
        insert(review_packs).values(
            month_end=month_end,
            path=str(path),
            rendered_at=datetime.now(),
            summary=summary,
            posted_at=posted_at,
            slack_file_id=slack_file_id,
        )
    )


def post_pending(state: Connection, client: Any, channel: str) -> dict[str, int]:
    """Share every pack not yet in Slack: the summary with the HTML file attached, in the
    channel given by name or ID (names are resolved once, as alert channels are).

    In two steps, each recorded: the file is uploaded once (its Slack file id kept), and only
    the share is retried after a failure, so a pass that cannot share never uploads the file
    again. A failure is kept (last_error, which the alert pass reports) and retried on the
    next call; with no client nothing is attempted."""
    if client is None:
        return {"posted": 0, "failed": 0}
    r = review_packs.c
    pending = state.execute(
        select(r.month_end, r.path, r.summary, r.slack_file_id, r.uploaded_at)
        .where(r.posted_at.is_(None))
        .order_by(r.month_end)
    ).all()
    posted = failed = 0
    for month_end, path, summary, file_id, uploaded_at in pending:
        this_month = update(review_packs).where(r.month_end == month_end)
        try:
            target = slack.channel_id(state, client, channel)
            if target is None:
                raise LookupError(
                    f"Slack lists no channel {channel}: invite the bot to it, or set "
                    "review_channel to its ID, in config/thresholds.yaml"
                )
            if file_id is None or uploaded_at is None:
                file_id = _upload(client, Path(path))
                state.execute(this_month.values(slack_file_id=file_id, uploaded_at=datetime.now()))
            client.files_completeUploadExternal(
                files=[{"id": file_id, "title": f"Segmentation review {month_end:%Y-%m}"}],
                channel_id=target,
                initial_comment=summary,
            )
            state.execute(this_month.values(posted_at=datetime.now(), last_error=None))
            posted += 1
        except Exception as error:  # noqa: BLE001 - Slack unreachable or refusing: retry later
            code = slack.permanent_error(error)
            reason = f"Slack says {code}" if code else f"{type(error).__name__}: {error}"
            state.execute(this_month.values(last_error=reason[:500]))
            failed += 1
    return {"posted": posted, "failed": failed}


def _upload(client: Any, path: Path) -> str:
    """Upload a file to Slack without sharing it (files.getUploadURLExternal, then the bytes
    to the URL it gives); its file id."""
    data = path.read_bytes()
    ticket = client.files_getUploadURLExternal(filename=path.name, length=len(data))
    request = urllib.request.Request(
        ticket["upload_url"],
        data=data,
        method="POST",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != 200:
            raise OSError(f"upload of {path.name} answered HTTP {response.status}")
    return ticket["file_id"]


def posting_problems(state: Connection) -> list[str]:
    """One line per pack Slack has not taken, with why: what the CLI and the sensor say."""
    r = review_packs.c
    rows = state.execute(
        select(r.month_end, r.last_error, r.uploaded_at)
        .where(r.posted_at.is_(None), r.last_error.is_not(None))
        .order_by(r.month_end)
    ).all()
    return [
        f"REVIEW PACK {month_end:%Y-%m} NOT POSTED: {error}"
        + (" (the file is uploaded; only the share is retried)" if uploaded_at else "")
        for month_end, error, uploaded_at in rows
    ]
