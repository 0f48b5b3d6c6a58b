"""The candidate in staging: computed for the same customers and month, compared with production.

The quarterly candidate never touches published membership. Its membership is computed in
the `strategic` schema from the published features of the quarter's last month, by the dbt
model strategic.candidate_membership fed the candidate compiled like the production
dictionary (the same vars, the same CASE); the clusters reach strategic.cluster_assignments as
a Parquet file. Both are set beside production: sizes, who moves where,
KPIs per candidate segment, business-rule violations. People read that, then approve or not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import yaml

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.review import charts
from segment_cadence.defs.segments import calibration
from segment_cadence.defs.strategic import strategic
from segment_cadence.platform import markdown
from segment_cadence.platform.warehouse import table_exists


class CandidateError(RuntimeError):
    """The candidate cannot be computed (for example, the month is not published yet)."""


def load_buyers(con: duckdb.DuckDBPyConnection, month_end: date) -> pd.DataFrame:
    if not table_exists(con, "published", "customer_features"):
        raise CandidateError("no published features yet: run the monthly refresh first")
    columns = ", ".join(strategic.CLUSTER_FEATURES)
    frame = con.execute(
        f"select customer_id, {columns} from published.customer_features "
        "where month_end = ? and frequency >= 1 order by customer_id",
        [month_end],
    ).df()
    if frame.empty:
        raise CandidateError(
            f"month {month_end} is not published (or has no buyers): publish it first"
        )
    return frame


def validate_candidate(
    document: dict[str, Any], quarter: str
) -> segment_dictionary.SegmentDictionary:
    return segment_dictionary.validate(
        document, f"<candidate {quarter}>", segment_dictionary.feature_columns()
    )


CLUSTERS_FILE = "cluster_assignments.parquet"


def write_clusters(directory: Path, buyers: pd.DataFrame, labels: np.ndarray) -> Path:
    """The quarter's k-means labels as a Parquet file beside the candidate: Python's output,
    read into strategic.cluster_assignments by dbt (models/strategic)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CLUSTERS_FILE
    frame = pd.DataFrame({"customer_id": buyers["customer_id"].astype(str), "cluster": labels})
    frame.astype({"cluster": "int32"}).to_parquet(path, index=False)
    return path


def dbt_vars(
    dictionary: segment_dictionary.SegmentDictionary,
    quarter: str,
    month_end: date,
    clusters_file: Path,
) -> dict[str, Any]:
    """What the strategic dbt models read: the candidate compiled like the production
    dictionary (the same segment_rules and fallback the membership CASE reads), the quarter,
    its last month and the clusters' file."""
    return {
        **dictionary.dbt_vars(),
        "quarter": quarter,
        "month_end": month_end.isoformat(),
        "cluster_assignments_file": str(clusters_file),
    }


def previous_quarter_ari(con: duckdb.DuckDBPyConnection, quarter: str) -> float | None:
    """The adjusted Rand index of this quarter's clusters against the latest earlier quarter's
    (strategic.cluster_assignments), over the buyers in both; None without one."""
    previous = con.execute(
        "select quarter from strategic.cluster_assignments where quarter < ? "
        "order by quarter desc limit 1",
        [quarter],
    ).fetchone()
    if previous is None:
        return None
    pairs = con.execute(
        "select a.cluster, b.cluster from strategic.cluster_assignments a "
        "join strategic.cluster_assignments b using (customer_id) "
        "where a.quarter = ? and b.quarter = ?",
        [quarter, previous[0]],
    ).fetchall()
    if not pairs:
        return None
    now, before = zip(*pairs, strict=True)
    return strategic.agreement(before, now)


def compare(
    con: duckdb.DuckDBPyConnection,
    quarter: str,
    month_end: date,
    business_rules: list[segment_dictionary.BusinessRule],
    dictionary: segment_dictionary.SegmentDictionary,
) -> dict[str, Any]:
    """Production against candidate, for the same customers and month."""
    sizes = con.execute(
        """
        with prod as (select segment_id, count(*) n from published.segment_membership
                      where month_end = ? group by 1),
             cand as (select segment_id, count(*) n from strategic.candidate_membership
                      where quarter = ? group by 1)
        select coalesce(prod.segment_id, cand.segment_id) segment_id,
               coalesce(prod.n, 0) production, coalesce(cand.n, 0) candidate
        from prod full join cand using (segment_id) order by candidate desc, production desc
        """,
        [month_end, quarter],
    ).fetchall()
    moves = con.execute(
        """
        select p.segment_id, c.segment_id, count(*)
        from published.segment_membership p
        join strategic.candidate_membership c using (customer_id)
        where p.month_end = ? and c.quarter = ?
        group by all order by 3 desc
        """,
        [month_end, quarter],
    ).fetchall()
    total = sum(n for *_, n in moves) or 1
    unchanged = sum(n for a, b, n in moves if a == b)
    kpis = con.execute(
        """
        select c.segment_id, count(*) customers, avg(f.monetary_value), avg(f.churn_likelihood),
               avg(f.engagement_events_90d),
               sum(f.campaign_responses_365d) * 1.0 / nullif(sum(f.campaign_sends_365d), 0)
        from strategic.candidate_membership c
        join published.customer_features f using (customer_id, month_end)
        where c.quarter = ? group by 1 order by 2 desc
        """,
        [quarter],
    ).fetchall()
    priority = {s.id: s.priority for s in dictionary.segments}
    violations = 0
    for rule in business_rules:
        allowed = [s for s, p in priority.items() if p <= rule.max_priority] or [""]
        violations += con.execute(
            "select count(*) from strategic.candidate_membership c "
            "join published.customer_features f using (customer_id, month_end) "
            f"where c.quarter = ? and ({rule.applies_to_sql}) and c.segment_id not in "
            f"({', '.join(repr(a) for a in allowed)})",
            [quarter],
        ).fetchone()[0]
    return {
        "sizes": sizes,
        "moves": moves,
        "unchanged_share": unchanged / total,
        "kpis": kpis,
        "business_rule_violations": violations,
    }


def write_candidate(document: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "segments.yaml"
    path.write_text(
        "# Candidate definitions from the quarterly strategic refresh. Not in force: approve\n"
        f"# with `segment-cadence definitions approve --candidate {path.name} ...`.\n"
        + yaml.safe_dump(document, sort_keys=False, width=100)
    )
    return path


@dataclass(frozen=True)
class ReportTable:
    """A table of the candidate report, its cells already formatted: the asset's metadata
    shows it as markdown, report.html as HTML."""

    title: str
    header: tuple[str, ...]
    rows: list[tuple]
    right: frozenset[int]

    def markdown(self) -> str:
        return markdown.table(self.header, self.rows, right=self.right)


def report_tables(comparison: dict[str, Any]) -> dict[str, ReportTable]:
    sizes = [(s, f"{p:,}", f"{c:,}", f"{c - p:+,}") for s, p, c in comparison["sizes"]]
    moves = [(a, b, f"{n:,}") for a, b, n in comparison["moves"][:25]]
    kpis = [
        (
            s,
            f"{n:,}",
            f"{m or 0:,.0f}",
            None if ch is None else f"{ch:.2f}",
            f"{e or 0:.1f}",
            None if r is None else f"{r:.1%}",
        )
        for s, n, m, ch, e, r in comparison["kpis"]
    ]
    return {
        "sizes": ReportTable(
            "Sizes",
            ("segment", "production", "candidate", "change"),
            sizes,
            frozenset({1, 2, 3}),
        ),
        "moves": ReportTable(
            "Who moves where (the 25 largest moves)",
            ("from (production)", "to (candidate)", "customers"),
            moves,
            frozenset({2}),
        ),
        "kpis": ReportTable(
            "KPIs per candidate segment",
            (
                "candidate segment",
                "customers",
                "avg lifetime value",
                "churn",
                "events 90d",
                "response",
            ),
            kpis,
            frozenset({1, 2, 3, 4, 5}),
        ),
    }


def markdown_tables(comparison: dict[str, Any]) -> dict[str, str]:
    return {name: t.markdown() for name, t in report_tables(comparison).items()}


def calibration_table(record: dict[str, Any]) -> ReportTable:
    """The quarter's calibration check as a report table (state store: calibrations)."""
    groups = json.loads(record["groups"])
    return ReportTable(
        "Churn model calibration",
        ("calibration repeat purchases", "customers", "actual", "predicted", "MAE per customer"),
        [
            (
                g["label"],
                f"{g['customers']:,}",
                f"{g['actual']:.3f}",
                f"{g['predicted']:.3f}",
                f"{g['mean_absolute_error']:.3f}",
            )
            for g in groups
        ],
        frozenset({1, 2, 3, 4}),
    )


def calibration_chart(record: dict[str, Any]) -> str:
    labels, series = calibration.chart_series(json.loads(record["groups"]))
    return charts.lines(
        f"Holdout purchases per customer ({record['holdout_weeks']:.0f} weeks), {record['model']}",
        labels,
        series,
        calibration.CHART_ALT,
    )


def calibration_summary(record: dict[str, Any] | None) -> str:
    if record is None:
        return (
            "No calibration check yet: the refresh of a quarter's last month makes it "
            "(`segment-cadence churn calibrate` on demand)."
        )
    return (
        f"{record['model']} fitted on the history to {record['cutoff']:%Y-%m-%d} "
        f"({record['customers']:,} customers), predicting the {record['holdout_weeks']:.0f} weeks "
        f"to {record['holdout_end']:%Y-%m-%d}: mean absolute error "
        f"{record['mean_absolute_error']:.3f} purchases per customer."
    )


REPORT_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Candidate definitions {{ quarter }}</title>
<style>
 body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #1d2733; }
 section { border-top: 1px solid #d5dbe3; padding: 1rem 0; }
 table { border-collapse: collapse; margin: .5rem 0; font-size: .85rem; }
 th, td { border-bottom: 1px solid #e3e8ee; padding: .25rem .6rem; text-align: left; }
 td.num, th.num { text-align: right; }
</style></head><body>
<h1>Candidate definitions for {{ quarter }}</h1>
<p>Computed for {{ month_end }} beside production; not in force until approved with
<code>segment-cadence definitions approve --candidate {{ candidate_file }}</code>.</p>
{% for t in tables %}<section id="{{ t.id }}"><h2>{{ t.table.title }}</h2>
<table><thead><tr>{% for h in t.table.header %}<th{% if loop.index0 in t.table.right %} class="num"{% endif %}>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in t.table.rows %}<tr>{% for v in row %}<td{% if loop.index0 in t.table.right %} class="num"{% endif %}>{{ "" if v is none else v }}</td>{% endfor %}</tr>{% endfor %}</tbody></table>
{% if t.chart %}{{ t.chart | safe }}{% endif %}{% if t.note %}<p>{{ t.note }}</p>{% endif %}
</section>{% endfor %}
</body></html>
"""


def write_report(
    directory: Path,
    quarter: str,
    month_end: date,
    comparison: dict[str, Any],
    calibration_record: dict[str, Any] | None,
) -> Path:
    """The quarter's candidate report, one self-contained HTML file (inline SVG, nothing
    fetched) beside the candidate: sizes, moves, KPIs and the churn model's calibration."""
    import jinja2

    tables = [
        {"id": k, "table": t, "chart": None, "note": None}
        for k, t in report_tables(comparison).items()
    ]
    if calibration_record is not None:
        tables.append(
            {
                "id": "calibration",
                "table": calibration_table(calibration_record),
                "chart": calibration_chart(calibration_record),
                "note": calibration_summary(calibration_record),
            }
        )
    page = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        REPORT_TEMPLATE
    )
    path = directory / "report.html"
    path.write_text(
        page.render(
            quarter=quarter,
            month_end=month_end.isoformat(),
            candidate_file=(directory / "segments.yaml").name,
            tables=tables,
        )
    )
    return path
