"""The monthly review pack: what the 30-minute segmentation review reads (seed 000, part 5).

The agenda is fixed and comes first: (1) pause violations, (2) segment dwell anomalies,
(3) suppressed campaign volume, (4) exception requests and override attempts, (5) where
pressure showed up. Then the context: segment sizes over twelve months, the month's
migration matrix, KPI trends, the month's health breaches, the alerts that fired and how they
were handled, the alerts still open from earlier months, the decisions and actions of the
month, definition changes, the bias audit and data-quality notes. It is system health, not
campaign performance. The headline leads with every red flag of the month
(governance.red_flags), each beside last month's value.

Gathering is separate from rendering. `gather` reads the tables and returns sections whose
`figures` are the numbers the pack shows, raw, each section naming its source tables, so a
test can check every figure against the tables; rendering alone turns them into words
(percentages, money in the configured `currency`: presentation.py). Firewall checks,
exception requests, the month's breaches and the changelog are read from their warehouse
copies (ops.*, refreshed from the state store before the pack is gathered:
state_store.copy_review_records); alerts, silences, escalations, level-3 requests and
releases from the state store itself. A section whose source has not run, or that has nothing
this month, says so in a line instead of showing an empty chart.

"The month" for what people and the alert ladder did is the calendar month, plus the moment
the month's own breaches were processed (processed_months.processed_at): the run that
produces the pack fires the month's alerts after the month has ended, and they belong to it.
A judgement against history (dwell anomalies) says how much history it stands on, and is not
made with less than its rule's `min_history`.
"""

from __future__ import annotations

import json
import re
import statistics
import urllib.request
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import Connection, delete, insert, select, update

from segment_cadence.defs.alerting import messages, slack
from segment_cadence.defs.alerting.lifecycle import OPEN_STATES
from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.governance import audit, firewall, red_flags
from segment_cadence.defs.health import scorecard, thresholds
from segment_cadence.defs.review import charts, presentation
from segment_cadence.defs.review.presentation import MONEY, PERCENT
from segment_cadence.defs.segments import calibration, lift
from segment_cadence.platform import markdown, state_store
from segment_cadence.platform.months import add_months, previous_month_end
from segment_cadence.platform.state_store import review_packs
from segment_cadence.platform.warehouse import table_exists

AGENDA = (
    "pause_violations",
    "dwell_anomalies",
    "suppressed_volume",
    "exception_requests",
    "pressure",
)
# The red flags in the agenda's order, in the review's words; a metric the red_flags model
# adds later is shown too, after these, under its own name.
RED_FLAG_LABELS = {
    "pause_violation_count": "pause violations",
    "onboarding_violations": "onboarding violations",
    "suppressed_campaign_volume": "suppressed messages",
    "suppressed_campaigns": "campaigns blocked outright",
    "manual_override_attempts": "override attempts",
    "exception_requests": "exception requests",
    "segment_unsafe_attempts": "segment-unsafe attempts",
}
NOT_EVALUATED = "not evaluated"
MODEL_NAMES = {"bgnbd": "BG/NBD", "mbgnbd": "the modified BG/NBD"}
DWELL_METRIC = "dwell_months"


@dataclass
class Table:
    header: list[str]
    rows: list[tuple]
    # How each column is shown (presentation.PERCENT, MONEY or "" for as is); the rows keep
    # the raw numbers.
    kinds: tuple[str, ...] = ()

    def cells(self, currency: str | None) -> list[list[str]]:
        """The rows as text, each column in its kind."""
        kinds = self.kinds + ("",) * (len(self.header) - len(self.kinds))
        return [
            [presentation.cell(v, kind, currency) for v, kind in zip(row, kinds, strict=False)]
            for row in self.rows
        ]


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


@dataclass(frozen=True)
class Headline:
    """One headline figure beside last month's: None is no data, NOT_EVALUATED a red flag
    that could not be measured."""

    label: str
    value: Any
    last_month: Any

    def words(self) -> tuple[str, str, str]:
        """(label, this month, last month) as the Slack summary and the cards say them."""
        last = "n/a" if self.last_month is None else presentation.count(self.last_month)
        return self.label, presentation.count(self.value), last


@dataclass
class Pack:
    month_end: date
    generated_at: datetime
    definition_version: str | None
    sections: list[Section]
    red_flags: list[Headline] = field(default_factory=list)
    currency: str | None = None

    def section(self, section_id: str) -> Section:
        return next(s for s in self.sections if s.id == section_id)

    def headline(self) -> list[Headline]:
        """What a Slack summary and the asset's metadata lead with: every red flag of the
        month, then the dwell anomalies, each with last month's value."""
        dwell = self.section("dwell_anomalies").figures
        return [
            *self.red_flags,
            Headline(
                "dwell anomalies",
                dwell.get("dwell_anomalies"),
                dwell.get("dwell_anomalies_last_month"),
            ),
        ]


def _has(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".")
    return table_exists(con, schema, table)


def _missing(con: duckdb.DuckDBPyConnection, sources: list[str]) -> str | None:
    absent = [s for s in sources if "." in s and not _has(con, s)]
    if not absent:
        return None
    verb = "has" if len(absent) == 1 else "have"
    return f"No data: {', '.join(absent)} {verb} not been produced yet."


def _flag_value(value: Any, evaluated: bool) -> Any:
    return value if evaluated else NOT_EVALUATED


def _red_flag(con: duckdb.DuckDBPyConnection, month: date, metric: str) -> Any:
    row = con.execute(
        "select value, evaluated from governance.red_flags where month_end = ? and metric = ?",
        [month, metric],
    ).fetchone()
    return None if row is None else _flag_value(*row)


def _red_flag_headlines(con: duckdb.DuckDBPyConnection, month: date) -> list[Headline]:
    """Every red flag of the month with last month's: the known ones always (no data when
    the model has not run), any other metric the model recorded after them."""
    found: dict[tuple[str, date], Any] = {}
    if _has(con, "governance.red_flags"):
        rows = con.execute(
            "select metric, month_end, value, evaluated from governance.red_flags "
            "where month_end in (?, ?)",
            [month, previous_month_end(month)],
        ).fetchall()
        found = {(metric, m): _flag_value(v, e) for metric, m, v, e in rows}
    known = [*RED_FLAG_LABELS, *(m for m in red_flags.METRICS if m not in RED_FLAG_LABELS)]
    others = sorted({metric for metric, _ in found} - set(known))
    return [
        Headline(
            RED_FLAG_LABELS.get(metric, metric.replace("_", " ")),
            found.get((metric, month)),
            found.get((metric, previous_month_end(month))),
        )
        for metric in [*known, *others]
    ]


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
    if count == NOT_EVALUATED:
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


def history_needed(config: thresholds.ThresholdConfig | None, metric: str) -> int | None:
    """The months of history a metric's judgement against its history needs: the
    `min_history` of the rule that judges it by robust z (the rule's own, else
    `defaults.min_history`), as segment health applies it. None when no rule does."""
    rules = [
        r
        for r in (config.rules if config else ())
        if r.metric == metric and (r.robust_z.warn is not None or r.robust_z.critical is not None)
    ]
    return min((r.min_history for r in rules), default=None)


def history_words(months: int, needed: int) -> str:
    """How much history a judgement stands on: "3 of 6 months"."""
    return f"{months} of {needed} month{'s' if needed != 1 else ''}"


def _median_header(months: Iterable[int]) -> str:
    """The median column named by the months it is taken over ("median of 3 months")."""
    used = sorted(set(months))
    if not used or used[-1] == 0:
        return "median (no earlier months)"
    if len(used) == 1:
        return f"median of {used[0]} month{'s' if used[0] != 1 else ''}"
    return f"median of {used[0]}–{used[-1]} months"


def _dwell_verdict(severity: str | None, months: int, needed: int | None) -> str:
    if severity:
        return severity
    if needed is None:
        return "not judged: no rule judges dwell against history"
    if months < needed:
        return f"not judged: {history_words(months, needed)} of history"
    return "none"


def _dwell_note(anomalies: int, months: list[int], needed: int | None) -> str:
    """The section's verdict in words, never "in line with history" without enough of it."""
    if needed is None:
        return "Not judged: no threshold rule judges time in segment against its history."
    judged = [m for m in months if m >= needed]
    short = [m for m in months if m < needed]
    shortfall = history_words(max(short), needed) if short else ""
    if anomalies:
        note = (
            f"{anomalies} segments with a dwell anomaly (robust z against their own history, "
            f"judged from {needed} months on)."
        )
        if short:
            note += f" {len(short)} segments not judged: {shortfall} of history."
        return note
    if not judged:
        return (
            f"Not judged: {shortfall} of history. Time in segment is judged against each "
            f"segment's own history once {needed} earlier months exist."
        )
    if short:
        return (
            f"No dwell anomalies among the {len(judged)} segments with {needed} or more months "
            f"of history; {len(short)} segments not judged: {shortfall} of history."
        )
    return (
        f"No dwell anomalies: time in segment is in line with history ({_median_header(months)})."
    )


def _dwell(
    con: duckdb.DuckDBPyConnection, month: date, config: thresholds.ThresholdConfig | None
) -> Section:
    s = Section("dwell_anomalies", "2. Segment dwell anomalies", ["health.metrics", "ops.breaches"])
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    # The history is the one segment health judges with: every earlier finite value (the
    # range leaves out infinities and NaN, which DuckDB and Spark both sort above all else).
    rows = con.execute(
        """
        select m.segment_id, m.value,
            (select median(h.value) from health.metrics h
             where h.segment_id = m.segment_id and h.metric = ? and h.month_end < m.month_end
               and h.value between -1e308 and 1e308),
            (select count(h.value) from health.metrics h
             where h.segment_id = m.segment_id and h.metric = ? and h.month_end < m.month_end
               and h.value between -1e308 and 1e308),
            (select case when bool_or(b.severity = 'critical') then 'critical'
                         else max(b.severity) end
             from ops.breaches b
             where b.month_end = m.month_end and b.segment_id = m.segment_id and b.metric = ?)
        from health.metrics m
        where m.month_end = ? and m.metric = ?
        """,
        [DWELL_METRIC, DWELL_METRIC, DWELL_METRIC, month, DWELL_METRIC],
    ).fetchall()
    if not rows:
        s.no_data = "No data: segment health has not run for this month."
        return s
    rows.sort(key=lambda r: (r[4] is None, r[0]))
    needed = history_needed(config, DWELL_METRIC)
    months = [r[3] for r in rows]
    anomalies = [r for r in rows if r[4]]
    s.figures["dwell_anomalies"] = len(anomalies)
    s.figures["dwell_anomalies_last_month"] = con.execute(
        "select count(distinct segment_id) from ops.breaches where month_end = ? and metric = ?",
        [previous_month_end(month), DWELL_METRIC],
    ).fetchone()[0]
    s.figures["history_months"] = {r[0]: r[3] for r in rows}
    s.figures["history_needed"] = needed
    s.figures["segments_judged"] = sum(needed is not None and m >= needed for m in months)
    s.notes.append(_dwell_note(len(anomalies), months, needed))
    s.tables.append(
        Table(
            ["segment", "avg months in segment", _median_header(months), "history", "anomaly"],
            [
                (
                    segment,
                    None if value is None else round(value, 2),
                    None if median is None else round(median, 2),
                    f"{n} months" if needed is None else history_words(n, needed),
                    _dwell_verdict(severity, n, needed),
                )
                for segment, value, median, n, severity in rows
            ],
        )
    )
    return s


def _blocked_segments(text: str | None) -> list[str]:
    return [s for s in (text or "").split(",") if s]


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
        "blocked, decision, reason_counts, blocked_segments from ops.firewall_checks "
        "where last_day(planned_at) = ? order by planned_at",
        [month],
    ).fetchall()
    s.figures["campaigns_checked"] = len(checks)
    by_reason: Counter[str] = Counter()
    paused: set[str] = set()
    rows = []
    for *check, reasons, segments in checks:
        counts = json.loads(reasons or "{}")
        by_reason.update(counts)
        paused.update(_blocked_segments(segments))
        rows.append((*check, firewall.reasons_in_words(counts, _blocked_segments(segments))))
    s.figures["blocked_by_reason"] = dict(sorted(by_reason.items()))
    if not checks:
        s.notes.append("No campaigns were checked by the firewall for this month.")
    else:
        s.notes.append(
            f"The firewall kept {volume} messages from being sent, across "
            f"{len(checks)} checked campaigns ({s.figures['suppressed_campaigns']} "
            "blocked outright). Silence here is the system working."
        )
        if by_reason:
            s.notes.append(f"Why: {firewall.reasons_in_words(dict(by_reason), sorted(paused))}.")
        s.tables.append(Table(list(firewall.CHECK_COLUMNS), rows))
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
        select k.segment_id, k.retention_rate, p.retention_rate,
            k.avg_churn_likelihood, p.avg_churn_likelihood,
            k.campaign_response_rate, p.campaign_response_rate,
            k.revenue_this_month
        from published.segment_kpis k
        left join published.segment_kpis p on p.segment_id = k.segment_id and p.month_end = ?
        where k.month_end = ? order by k.customers desc, k.segment_id
        """,
        [previous, month],
    ).fetchall()
    if not rows:
        s.no_data = "No data: this month has not been published."
        return s
    s.figures["retention_rate"] = {r[0]: r[1] for r in rows}
    s.figures["avg_churn_likelihood"] = {r[0]: r[3] for r in rows}
    s.figures["campaign_response_rate"] = {r[0]: r[5] for r in rows}
    s.figures["revenue_this_month"] = {r[0]: r[7] for r in rows}
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
            ("", PERCENT, PERCENT, PERCENT, PERCENT, PERCENT, PERCENT, MONEY),
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


def _value(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    """What the churn and spend models expect of each segment: purchases in the next 12
    months and CLV, beside last month's, under the month's recorded assumptions."""
    s = Section(
        "value_outlook",
        "Expected purchases and customer lifetime value per segment",
        ["published.segment_kpis", "churn.value_params", "churn.bgnbd_params"],
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    rows = con.execute(
        """
        select k.segment_id, k.customers, k.avg_expected_purchases_12m, k.avg_clv,
            p.avg_clv, k.total_clv
        from published.segment_kpis k
        left join published.segment_kpis p on p.segment_id = k.segment_id and p.month_end = ?
        where k.month_end = ? order by k.total_clv desc nulls last, k.segment_id
        """,
        [previous_month_end(month), month],
    ).fetchall()
    if not rows:
        s.no_data = "No data: this month has not been published."
        return s
    fit = con.execute(
        """
        select c.model, c.kept_from, v.clv_horizon_months, v.clv_monthly_discount_rate,
            v.spend_p, v.spend_q, v.spend_gamma, v.spend_n_customers,
            v.spend_frequency_correlation, v.population_mean_spend, v.spend_kept_from
        from churn.bgnbd_params c join churn.value_params v using (month_end)
        where month_end = ?
        """,
        [month],
    ).fetchone()
    total = sum(r[5] or 0 for r in rows)
    s.figures["avg_clv"] = {r[0]: r[3] for r in rows}
    s.figures["total_clv"] = total
    s.figures["avg_expected_purchases_12m"] = {r[0]: r[2] for r in rows}
    s.tables.append(
        Table(
            [
                "segment",
                "customers",
                "expected purchases, 12 months",
                "mean CLV",
                "last month",
                "total CLV",
                "share of CLV",
            ],
            [(*r, (r[5] or 0) / total if total else None) for r in rows],
            ("", "", "", MONEY, MONEY, MONEY, PERCENT),
        )
    )
    if fit is None or fit[4] is None:
        s.notes.append("No spend model for this month (too few repeat buyers): nobody has a CLV.")
    else:
        model, kept, horizon, rate, p, q, gamma, fitted_on, correlation, mean, spend_kept = fit
        s.notes.append(
            f"CLV is the next {horizon} months of expected purchases ({MODEL_NAMES.get(model, model)}"
            + (f", parameters kept from {kept:%Y-%m}" if kept else "")
            + ") times the expected spend per purchase (Gamma-Gamma, p "
            f"{p:.3g}, q {q:.3g}, gamma {gamma:.4g}, fitted on {fitted_on:,} repeat buyers"
            + (f", kept from {spend_kept:%Y-%m}" if spend_kept else "")
            + f"), month k divided by (1 + {rate:g})^k."
        )
        s.notes.append(
            f"A customer without repeat purchases is expected to spend {mean:,.2f} a purchase. "
            f"Frequency and mean spend correlate at {correlation:.2f} among repeat buyers: "
            + (
                "near 0, as the spend model assumes."
                if abs(correlation) <= 0.3
                else "far from 0, so expected spend and CLV are doubtful."
            )
        )
    s.charts.append(
        Chart(
            "bars",
            "Total CLV per segment",
            {"labels": [r[0] for r in rows], "values": [r[5] or 0 for r in rows]},
            "Bar chart of the total customer lifetime value of each segment",
        )
    )
    return s


def _sentence_start(words: str) -> str:
    return words[:1].upper() + words[1:]


def _calibration(month: date) -> Section:
    """The latest quarterly calibration/holdout check of the churn model, as the standard
    chart and its table."""
    s = Section(
        "calibration",
        "Churn model calibration: predicted against actual purchases",
        ["state store: calibrations"],
    )
    # The quarter's check stands until the next quarter's: one older than that is stale.
    found = state_store.latest_calibration(month, since=add_months(month.replace(day=1), -3))
    if found is None:
        s.no_data = (
            "No data: no check in the last three months (the refresh of a quarter's last "
            "month runs it; `segment-cadence churn calibrate` runs it on demand)."
        )
        return s
    groups = json.loads(found["groups"])
    s.figures["mean_absolute_error"] = found["mean_absolute_error"]
    s.figures["checked_for"] = found["month_end"]
    s.notes.append(
        f"{_sentence_start(MODEL_NAMES.get(found['model'], found['model']))} fitted on the history to "
        f"{found['cutoff']:%Y-%m-%d} ({found['customers']:,} customers), predicting the "
        f"{found['holdout_weeks']:.0f} weeks to {found['holdout_end']:%Y-%m-%d}; checked with "
        f"the refresh of {found['month_end']:%B %Y}. Mean absolute error: "
        f"{found['mean_absolute_error']:.3f} purchases per customer."
    )
    s.tables.append(
        Table(
            [
                "calibration repeat purchases",
                "customers",
                "actual",
                "predicted",
                "MAE per customer",
            ],
            [
                (
                    g["label"],
                    g["customers"],
                    round(g["actual"], 3),
                    round(g["predicted"], 3),
                    round(g["mean_absolute_error"], 3),
                )
                for g in groups
            ],
        )
    )
    labels, series = calibration.chart_series(groups)
    s.charts.append(
        Chart(
            "lines",
            f"Holdout purchases per customer ({found['holdout_weeks']:.0f} weeks)",
            {"labels": labels, "series": series},
            calibration.CHART_ALT,
        )
    )
    return s


def _scorecard(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    """Each segment's KPIs against the targets of its maturity, with their owners: what the
    review asks of each owner."""
    s = Section("scorecard", "Segment scorecard", ["health.segment_scorecard"])
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    card = scorecard.read(con, month)
    if not card:
        s.no_data = "No data: no segment declares a KPI target (the dictionary's kpis:)."
        return s
    statuses = [r.status for r in card]
    s.figures["scorecard"] = {
        f"{r.segment_id}.{r.kpi}": {"actual": r.actual, "status": r.status} for r in card
    }
    s.notes.append(
        f"{statuses.count('met')} of {len(card)} KPI targets met, "
        f"{statuses.count('missed')} missed (each sent to its owner as an alert), "
        f"{statuses.count('no_data')} without data, {statuses.count('no_target')} without a "
        "target at the segment's maturity (new: growth targets; mature: stability targets)."
    )
    s.tables.append(Table(list(scorecard.SCORECARD_COLUMNS), [r.cells() for r in card]))
    return s


def _lift(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    """What treating each segment, and each campaign, changed against its holdout: the
    purchase-rate lift with its interval as error bars, and the tables behind it."""
    s = Section(
        "lift",
        "Lift against the holdouts",
        ["health.segment_lift_arms", "health.campaign_lift_arms"],
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    try:
        measurement = segment_dictionary.load().measurement
    except segment_dictionary.DefinitionError:
        measurement = lift.DEFAULT_MEASUREMENT
    segments = lift.segment_lifts(con, month, measurement)
    campaigns = lift.campaign_lifts(con, month, measurement)
    if not segments and not campaigns:
        s.no_data = "No data: lift is measured from the second published month."
        return s
    rates = [x.outcomes["purchase_rate"] for x in segments]
    s.figures["segment_lift"] = {
        x.segment_id: (r.difference, r.low, r.high) if r.measured else None
        for x, r in zip(segments, rates, strict=True)
    }
    s.figures["campaign_lift"] = {
        c.campaign_id: (c.purchase_rate.difference, c.purchase_rate.low, c.purchase_rate.high)
        if c.purchase_rate.measured
        else None
        for c in campaigns
    }
    level = f"{measurement.confidence:.0%}"
    s.notes.append(
        f"Members of each segment last month, treated against held out, over the "
        f"{measurement.purchase_within_days} days after the month end (intent to treat: a "
        f"treated member counts whether or not a campaign reached them). Differences with "
        f"a {level} interval (normal approximation, Welch); arms under "
        f"{measurement.min_customers_per_arm} customers give not enough data."
    )
    s.tables.append(
        Table(
            [
                "segment",
                "treated",
                "held out",
                "purchase rate",
                "revenue per customer",
                "retention",
            ],
            [
                (
                    x.segment_id,
                    x.outcomes["purchase_rate"].treated_customers,
                    x.outcomes["purchase_rate"].held_out_customers,
                    x.outcomes["purchase_rate"].in_points(),
                    x.outcomes["revenue_per_customer"].in_amounts(),
                    x.outcomes["retention"].in_points(),
                )
                for x in segments
            ],
        )
    )
    if campaigns:
        s.tables.append(
            Table(
                [
                    "campaign",
                    "segment",
                    "first sent",
                    "purchase rate",
                    "difference in differences",
                    "before the send",
                ],
                [
                    (
                        c.campaign_name,
                        c.segment_id,
                        f"{c.first_sent:%Y-%m-%d}",
                        c.purchase_rate.in_points(),
                        c.difference_in_differences.in_points(),
                        c.pre_period_difference.in_points()
                        + (" (trends differ)" if c.parallel_trends_doubtful else ""),
                    )
                    for c in campaigns
                ],
            )
        )
    labels = [x.segment_id for x in segments] + [c.campaign_name for c in campaigns]
    found = rates + [c.purchase_rate for c in campaigns]
    s.charts.append(
        Chart(
            "error_bars",
            f"Purchase-rate lift, points ({level} interval)",
            {
                "labels": labels,
                "estimates": [f.difference * 100 if f.measured else None for f in found],
                "lows": [f.low * 100 if f.measured else None for f in found],
                "highs": [f.high * 100 if f.measured else None for f in found],
            },
            "Error bars of the purchase-rate lift of each segment and campaign against its "
            "holdout, in percentage points",
        )
    )
    return s


def _health_breaches(con: duckdb.DuckDBPyConnection, month: date) -> Section:
    """The month's breaches as segment health found them, whatever the alerts made of them
    (a silenced or inhibited breach is still a breach)."""
    s = Section("health_breaches", "Health breaches this month", ["ops.breaches", "health.metrics"])
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    if not con.execute("select 1 from health.metrics where month_end = ?", [month]).fetchone():
        s.no_data = "No data: segment health has not run for this month."
        return s
    rows = con.execute(
        "select segment_id, rule_id, metric, value, bound, kind, severity from ops.breaches "
        "where month_end = ? order by severity <> 'critical', segment_id, rule_id, metric",
        [month],
    ).fetchall()
    s.figures["health_breaches"] = len(rows)
    s.figures["breaches_by_severity"] = dict(sorted(Counter(r[6] for r in rows).items()))
    s.figures["breaches"] = [(r[0], r[1], r[2], r[3], r[4], r[6]) for r in rows]
    if not rows:
        s.notes.append("No health breaches this month: every metric within its bounds.")
        return s
    s.notes.append(
        f"{len(rows)} breaches ({_by_severity_words(s.figures['breaches_by_severity'])})."
    )
    s.tables.append(
        Table(
            ["segment", "rule", "metric", "value", "bound", "severity"],
            [
                (
                    segment,
                    rule,
                    metric,
                    messages.format_value(value),
                    messages.bound_text(kind, value, bound),
                    severity,
                )
                for segment, rule, metric, value, bound, kind, severity in rows
            ],
        )
    )
    return s


def _by_severity_words(counts: dict[str, int]) -> str:
    """ "2 critical, 3 warn": critical first."""
    order = {s: i for i, s in enumerate(reversed(thresholds.SEVERITIES))}
    ranked = sorted(counts.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    return ", ".join(f"{n} {severity}" for severity, n in ranked) or "none"


def _by_level_words(counts: dict[int, int]) -> str:
    return ", ".join(f"{n} at level {level}" for level, n in sorted(counts.items(), reverse=True))


@dataclass(frozen=True)
class MonthWindow:
    """When something counts as done in the month: within the calendar month, or at the
    moment the month's breaches were processed (the run that produces the pack, after the
    month has ended)."""

    start: datetime
    end: datetime
    processed_at: datetime | None = None

    @classmethod
    def of(cls, month_end: date, processed_at: datetime | None = None) -> MonthWindow:
        start = datetime.combine(month_end.replace(day=1), time())
        return cls(start, datetime.combine(month_end + timedelta(days=1), time()), processed_at)

    def contains(self, when: datetime | None) -> bool:
        if when is None:
            return False
        return self.start <= when < self.end or when == self.processed_at


def _as_date(value: date | str | None) -> date | None:
    """The state store may hand a date back as ISO text."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


@dataclass(frozen=True)
class AlertRecords:
    """What the alert lifecycle kept that the pack reports, read from the state store in one
    transaction: every alert, silence, escalation message, level-3 request and release."""

    month_end: date
    processed_at: datetime | None
    alerts: list[dict[str, Any]]
    silences: list[dict[str, Any]]
    escalations: list[dict[str, Any]]
    strategic_requests: list[dict[str, Any]]
    releases: list[dict[str, Any]]

    @property
    def window(self) -> MonthWindow:
        return MonthWindow.of(self.month_end, self.processed_at)

    def fired(self) -> list[dict[str, Any]]:
        """The alerts that fired in the month: fired then, or first breached in the month
        (fired in the run that processed it)."""
        return [
            a
            for a in self.alerts
            if a["fired_at"] is not None
            and (
                _as_date(a["first_breach_month"]) == self.month_end
                or self.window.contains(a["fired_at"])
            )
        ]

    def carried_over(self) -> list[dict[str, Any]]:
        """The alerts still open that began in an earlier month and did not fire in this one."""
        fired = {a["alert_key"] for a in self.fired()}
        return [
            a
            for a in self.alerts
            if a["state"] in OPEN_STATES
            and a["alert_key"] not in fired
            and (_as_date(a["first_breach_month"]) or self.month_end) < self.month_end
        ]


def _every(state: Connection, table: Any, *order: Any) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in state.execute(select(table).order_by(*order))]


def _alert_records(month: date) -> AlertRecords:
    """The month's alert records, read in one transaction so they agree with each other."""
    a, q, o = state_store.alerts.c, state_store.silences.c, state_store.outbox.c
    r = state_store.strategic_requests.c
    processed = state_store.processed_months.c
    with state_store.transaction() as state:
        processed_at = state.execute(
            select(processed.processed_at).where(processed.month_end == month)
        ).scalar()
        escalations = state.execute(
            select(o.message_id, o.kind, o.created_at, o.segment_id, o.channel, o.alert_keys)
            .where(o.kind.in_(("escalation", "strategic_request")))
            .order_by(o.created_at, o.sequence)
        ).all()
        return AlertRecords(
            month,
            processed_at,
            _every(state, state_store.alerts, a.alert_key),
            _every(state, state_store.silences, q.created_at, q.silence_id),
            [dict(r._mapping) for r in escalations],
            _every(state, state_store.strategic_requests, r.requested_at),
            _every(state, state_store.publish_releases, state_store.publish_releases.c.released_at),
        )


def _hours(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds() / 3600


def _median_hours(hours: list[float]) -> float | None:
    return round(statistics.median(hours), 1) if hours else None


def _year_before(day: date) -> date:
    """The same day a year earlier (28 February for 29 February), as DuckDB's interval does."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def _is_unsilence(silence: dict[str, Any]) -> bool:
    """A zero-length window: the record that a segment was unsilenced, not a silence."""
    return silence["expires_at"] <= silence["created_at"]


def _alert_row(a: dict[str, Any]) -> tuple:
    return (
        a["alert_key"],
        a["severity"],
        a["level"] or 0,
        a["state"],
        a["fired_at"],
        a["acknowledged_by"] or "",
        a["resolved_at"],
    )


ALERT_HEADER = ["alert", "severity", "level", "state", "fired", "acknowledged by", "resolved"]


def _alerts(records: AlertRecords | None, now: datetime) -> Section:
    """What fired in the month and how it was handled; the silences in force and made."""
    s = Section(
        "alerts",
        "Alerts fired this month and how they were handled",
        ["state store: alerts", "state store: silences"],
    )
    if records is None or records.processed_at is None:
        s.no_data = "No data: the alert lifecycle has not processed this month."
        return s
    fired, carried = records.fired(), records.carried_over()
    to_ack = [
        h for h in (_hours(a["fired_at"], a["acknowledged_at"]) for a in fired) if h is not None
    ]
    to_resolve = [
        h for h in (_hours(a["fired_at"], a["resolved_at"]) for a in fired) if h is not None
    ]
    windows = [w for w in records.silences if not _is_unsilence(w)]
    in_force = [w for w in windows if w["created_at"] <= now < w["expires_at"]]
    created = [w for w in windows if records.window.contains(w["created_at"])]
    noisy = Counter(
        a["rule_id"]
        for a in records.alerts
        if (m := _as_date(a["first_breach_month"]))
        and _year_before(records.month_end) < m <= records.month_end
    )
    s.figures["alerts_fired"] = len(fired)
    s.figures["fired_by_severity"] = dict(sorted(Counter(a["severity"] for a in fired).items()))
    s.figures["fired_by_level"] = dict(sorted(Counter(a["level"] or 0 for a in fired).items()))
    s.figures["acknowledged"] = len(to_ack)
    s.figures["resolved"] = len(to_resolve)
    s.figures["median_hours_to_acknowledge"] = _median_hours(to_ack)
    s.figures["median_hours_to_resolve"] = _median_hours(to_resolve)
    s.figures["alerts_carried_over"] = len(carried)
    s.figures["silences_in_force"] = len(in_force)
    s.figures["silences_created"] = len(created)
    s.figures["noisiest_rules"] = dict(sorted(noisy.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
    hours = lambda v: "n/a" if v is None else f"{v} h"  # noqa: E731
    detail = (
        f" ({_by_severity_words(s.figures['fired_by_severity'])}; "
        f"{_by_level_words(s.figures['fired_by_level'])})"
        if fired
        else ""
    )
    s.notes.append(
        f"{len(fired)} alerts fired this month{detail}; {len(to_ack)} acknowledged (median "
        f"{hours(s.figures['median_hours_to_acknowledge'])}), {len(to_resolve)} resolved "
        f"(median {hours(s.figures['median_hours_to_resolve'])}). {len(carried)} still open "
        f"from earlier months. {len(in_force)} silences in force; {len(created)} created "
        "this month."
    )
    if fired:
        s.tables.append(Table(ALERT_HEADER, [_alert_row(a) for a in fired]))
    if in_force:
        s.tables.append(
            Table(
                ["silenced segment", "rule", "by", "why", "from", "until"],
                [
                    (
                        w["segment_id"],
                        w["rule_id"],
                        w["created_by"],
                        w["reason"],
                        w["created_at"],
                        w["expires_at"],
                    )
                    for w in in_force
                ],
            )
        )
    if noisy:
        s.tables.append(
            Table(
                ["noisiest rules (12 months)", "alerts"], list(s.figures["noisiest_rules"].items())
            )
        )
    return s


def _carried_over(records: AlertRecords | None) -> Section:
    """The alerts an earlier month raised that are still open: what the review inherits."""
    s = Section(
        "alerts_carried_over",
        "Open alerts carried over from earlier months",
        ["state store: alerts"],
    )
    if records is None or records.processed_at is None:
        s.no_data = "No data: the alert lifecycle has not processed this month."
        return s
    carried = records.carried_over()
    s.figures["alerts_carried_over"] = len(carried)
    s.figures["carried_by_severity"] = dict(sorted(Counter(a["severity"] for a in carried).items()))
    s.figures["carried_by_level"] = dict(sorted(Counter(a["level"] or 0 for a in carried).items()))
    s.figures["carried_acknowledged"] = sum(a["acknowledged_at"] is not None for a in carried)
    if not carried:
        s.notes.append("No alert from an earlier month is still open.")
        return s
    oldest = min(_as_date(a["first_breach_month"]) for a in carried)
    s.notes.append(
        f"{len(carried)} alerts from earlier months are still open "
        f"({_by_severity_words(s.figures['carried_by_severity'])}; "
        f"{_by_level_words(s.figures['carried_by_level'])}); "
        f"{s.figures['carried_acknowledged']} acknowledged; the oldest first breached in "
        f"{oldest:%B %Y}."
    )
    s.tables.append(
        Table(
            [
                "alert",
                "severity",
                "level",
                "state",
                "first breach",
                "last breach",
                "fired",
                "acknowledged by",
            ],
            [
                (
                    a["alert_key"],
                    a["severity"],
                    a["level"] or 0,
                    a["state"],
                    f"{_as_date(a['first_breach_month']):%Y-%m}",
                    f"{_as_date(a['last_breach_month']):%Y-%m}" if a["last_breach_month"] else "",
                    a["fired_at"],
                    a["acknowledged_by"] or "",
                )
                for a in carried
            ],
        )
    )
    return s


# Who acted, for what the alert ladder does by itself.
LADDER = "alert ladder"
_ACTOR = re.compile(r" (?:approved|rolled back) by (\S+) on ")


def _changelog_actions(con: duckdb.DuckDBPyConnection, month: date) -> list[tuple]:
    """Approvals, rollbacks and ungoverned edits recorded in the month (publications and
    review packs are records, not decisions)."""
    rows = con.execute(
        "select recorded_at, kind, coalesce(version_label, ''), summary from ops.changelog "
        "where kind not in ('publication', 'review_pack') and last_day(recorded_at) = ? "
        "order by recorded_at, entry_id",
        [month],
    ).fetchall()
    actions = []
    for recorded_at, kind, label, summary in rows:
        first_line = (summary or "").splitlines()[0] if summary else ""
        actor = _ACTOR.search(first_line)
        what = {"approval": "definition approved", "rollback": "definition rolled back"}.get(
            kind, f"definition {kind}"
        )
        actions.append(
            (recorded_at, what, actor.group(1) if actor else "", f"{label} {first_line}".strip())
        )
    return actions


def _exception_decisions(con: duckdb.DuckDBPyConnection, month: date) -> list[tuple]:
    rows = con.execute(
        "select requested_at, kind, requested_by, reason, decision, decided_by "
        "from ops.exception_requests where last_day(requested_at) = ? and decision is not null "
        "order by requested_at, request_id",
        [month],
    ).fetchall()
    return [
        (when, f"{kind} {decision}", decided_by or "", f"asked by {by}: {reason}")
        for when, kind, by, reason, decision, decided_by in rows
    ]


def _alert_actions(records: AlertRecords) -> list[tuple]:
    """What people and the ladder did about alerts in the month: acknowledgements, silences
    and unsilences, escalations, level-3 requests, releases of held months."""
    window, actions = records.window, []
    for a in records.alerts:
        if window.contains(a["acknowledged_at"]):
            actions.append(
                (a["acknowledged_at"], "acknowledged", a["acknowledged_by"] or "", a["alert_key"])
            )
    for w in records.silences:
        if not window.contains(w["created_at"]):
            continue
        if _is_unsilence(w):
            actions.append(
                (
                    w["created_at"],
                    "unsilenced",
                    w["created_by"],
                    f"{w['segment_id']}: {w['reason']}",
                )
            )
        else:
            actions.append(
                (
                    w["created_at"],
                    "silenced",
                    w["created_by"],
                    f"{w['segment_id']} / {w['rule_id']} until {w['expires_at']:%Y-%m-%d %H:%M}: {w['reason']}",
                )
            )
    for m in records.escalations:
        if window.contains(m["created_at"]):
            level = 3 if m["kind"] == "strategic_request" else 2
            keys = ", ".join(json.loads(m["alert_keys"] or "[]"))
            actions.append(
                (m["created_at"], f"escalated to level {level}", LADDER, f"{keys} ({m['channel']})")
            )
    for r in records.strategic_requests:
        if window.contains(r["requested_at"]):
            run = f"run {r['run_id']}" if r["run_id"] else "run not launched yet"
            keys = len(json.loads(r["alert_keys"] or "[]"))
            actions.append(
                (
                    r["requested_at"],
                    "strategic refresh requested",
                    LADDER,
                    f"quarter {r['quarter']} for {keys} alerts; {run}",
                )
            )
    for r in records.releases:
        if window.contains(r["released_at"]):
            actions.append(
                (
                    r["released_at"],
                    "held month released",
                    r["released_by"],
                    f"{_as_date(r['month_end']):%Y-%m}: {r['reason']}",
                )
            )
    return actions


def _decisions(
    con: duckdb.DuckDBPyConnection, month: date, records: AlertRecords | None
) -> Section:
    """Every decision and action of the month in one list, oldest first: definition changes,
    exceptions decided, and the alert history (who acknowledged, who silenced and why, the
    escalations and level-3 requests, releases of held months)."""
    s = Section(
        "decisions",
        "Decisions and actions this month",
        [
            "ops.changelog",
            "ops.exception_requests",
            "state store: alerts, silences, outbox, strategic_requests, publish_releases",
        ],
    )
    s.no_data = _missing(con, s.sources)
    if s.no_data:
        return s
    actions = [
        *_changelog_actions(con, month),
        *_exception_decisions(con, month),
        *(_alert_actions(records) if records else []),
    ]
    actions.sort(key=lambda r: (r[0], r[1]))
    s.figures["decisions"] = len(actions)
    s.figures["decisions_by_kind"] = dict(sorted(Counter(r[1] for r in actions).items()))
    if not actions:
        s.notes.append("No decisions or actions were recorded this month.")
        return s
    s.notes.append(
        "Recorded this month: "
        + ", ".join(f"{n} {kind}" for kind, n in s.figures["decisions_by_kind"].items())
        + "."
    )
    s.tables.append(Table(["when", "what", "who", "detail"], actions))
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
                ("", "", "", "", PERCENT, PERCENT, ""),
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


def gather(
    con: duckdb.DuckDBPyConnection,
    month_end: date,
    now: datetime | None = None,
    config: thresholds.ThresholdConfig | None = None,
) -> Pack:
    """Every section of the month's pack, read from the tables (nothing is written). `config`
    is the thresholds in force (default: loaded): the history a judgement needs and the
    currency money is shown in."""
    now = now or datetime.now()
    config = config or thresholds.load()
    version = None
    if _has(con, "published.publications"):
        row = con.execute(
            "select coalesce(version_label, definition_version) from published.publications "
            "where month_end = ? order by published_at desc limit 1",
            [month_end],
        ).fetchone()
        version = row[0] if row else None
    records = _alert_records(month_end)
    sections = [
        _pause_violations(con, month_end),
        _dwell(con, month_end, config),
        _suppressed(con, month_end),
        _exceptions(con, month_end),
        _pressure(con, month_end),
        _sizes(con, month_end),
        _migration(con, month_end),
        _kpis(con, month_end),
        _value(con, month_end),
        _calibration(month_end),
        _scorecard(con, month_end),
        _lift(con, month_end),
        _health_breaches(con, month_end),
        _alerts(records, now),
        _carried_over(records),
        _decisions(con, month_end, records),
        _definitions(con, month_end),
        _bias(con, month_end),
        _data_quality(con, month_end),
    ]
    currency = config.settings.get("currency")
    return Pack(
        month_end,
        now,
        version,
        sections,
        _red_flag_headlines(con, month_end),
        str(currency) if currency else None,
    )


# ---------------------------------------------------------------------------- rendering


def chart_svg(chart: Chart) -> str:
    """One chart as an inline SVG (text kept as text, so it is searchable and prints
    sharply), written directly (segment_cadence/defs/review/charts.py)."""
    if chart.kind == "heatmap":
        data = chart.data
        return charts.heatmap(chart.title, data["rows"], data["columns"], data["matrix"], chart.alt)
    if chart.kind == "error_bars":
        d = chart.data
        return charts.error_bars(
            chart.title, d["labels"], d["estimates"], d["lows"], d["highs"], chart.alt
        )
    if chart.kind == "bars":
        return charts.bars(chart.title, chart.data["labels"], chart.data["values"], chart.alt)
    return charts.lines(chart.title, chart.data["labels"], chart.data["series"], chart.alt)


def render_markdown(pack: Pack, chart_links: dict[str, str] | None = None) -> str:
    lines = [
        f"# Monthly segmentation review: {pack.month_end:%B %Y}",
        "",
        f"Definition version: {pack.definition_version or 'n/a'}. Generated "
        f"{pack.generated_at:%Y-%m-%d %H:%M}. System health, not campaign performance.",
        "",
    ]
    lines.append(
        markdown.table(
            ["headline", "this month", "last month"], [h.words() for h in pack.headline()]
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
            rows = [[v.replace("|", "/") for v in row] for row in table.cells(pack.currency)]
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
 .headline small { display: block; color: #5b6675; font-size: .75rem; }
 @media print { body { margin: 0; max-width: none; } a { color: inherit; } }
</style></head><body>
<h1>Monthly segmentation review: {{ pack.month_end.strftime('%B %Y') }}</h1>
<p class="source">Definition version {{ pack.definition_version or 'n/a' }} &middot; generated
{{ pack.generated_at.strftime('%Y-%m-%d %H:%M') }} &middot; system health, not campaign performance</p>
<div class="headline">{% for label, value, last in headline %}<div><b>{{ value }}</b>{{ label }}<small>last month {{ last }}</small></div>{% endfor %}</div>
{% for s in pack.sections %}
<section id="{{ s.id }}" class="{{ 'agenda' if s.id in agenda else 'context' }}">
<h2>{{ s.title }}</h2>
<p class="source">Source: {{ s.sources | join(', ') }}</p>
{% if s.no_data %}<p class="nodata">{{ s.no_data }}</p>{% else %}
{% for note in s.notes %}<p>{{ note | replace('**', '') }}</p>{% endfor %}
{% for svg in charts[s.id] %}<figure class="chart">{{ svg | safe }}</figure>{% endfor %}
{% for t in s.tables %}<table><thead><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in t.cells(pack.currency) %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>{% endfor %}
{% endif %}</section>
{% endfor %}
</body></html>
"""


def render_html(pack: Pack, charts: dict[str, list[str]] | None = None) -> str:
    """One self-contained HTML file: inline CSS and SVG charts, nothing fetched. `charts`:
    each section's charts already drawn (write() draws each once, for both files)."""
    import jinja2

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    if charts is None:
        charts = {s.id: [chart_svg(c) for c in s.charts] for s in pack.sections}
    return environment.from_string(HTML_TEMPLATE).render(
        pack=pack, charts=charts, headline=[h.words() for h in pack.headline()], agenda=AGENDA
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
    drawn: dict[str, list[str]] = {}
    for section in pack.sections:
        drawn[section.id] = [chart_svg(chart) for chart in section.charts]
        for i, svg in enumerate(drawn[section.id]):
            path = out / "charts" / f"{section.id}-{i}.svg"
            path.write_text(svg)
            links[f"{section.id}-{i}"] = f"charts/{path.name}"
            chart_files.append(path)
    html = out / "review-pack.html"
    html.write_text(render_html(pack, drawn))
    markdown = out / "review-pack.md"
    markdown.write_text(render_markdown(pack, links))
    return WrittenPack(html, markdown, chart_files)


def slack_summary(pack: Pack, file_name: str = "review-pack.html") -> str:
    """The pack's summary for Slack, in the one message model alerts use: every headline
    figure with last month's beside it."""
    message = messages.review_pack_message(
        pack.month_end, [h.words() for h in pack.headline()], file_name
    )
    return messages.fallback_text(message)


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
