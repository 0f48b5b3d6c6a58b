"""Segment health: the metrics measured after each refresh, for segments and their inputs.

Everything is read from published tables (and the raw inputs for freshness and volume),
so health describes what consumers actually see. Metrics are kept long-form, one row per
(month, segment, metric), so thresholds can address any of them and history accumulates
for robust baselines. Input metrics use the segment id '*'.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np

from segment_cadence.defs.governance.red_flags import health_metrics
from segment_cadence.platform.metrics import Metric
from segment_cadence.platform.months import month_end as last_day
from segment_cadence.platform.months import previous_month
from segment_cadence.platform.warehouse import table_exists

ALL_SEGMENTS = "*"
DRIFT_FEATURES = ("recency_days", "frequency", "monetary_value", "engagement_events_90d")
PSI_BINS = 10
PSI_EPSILON = 1e-4

# Segment metrics computed from published KPIs and features: name -> SQL over the month.
SEGMENT_METRICS = {
    "size": "k.customers",
    "share": "k.share",
    "migration_out_rate": "k.moved_out * 1.0 / nullif(k.previous_customers, 0)",
    "migration_in_rate": "k.moved_in * 1.0 / nullif(k.customers, 0)",
    "dwell_months": "k.avg_months_in_segment",
    "churn_likelihood": "k.avg_churn_likelihood",
    "engagement_depth": "k.avg_engagement_events_90d",
    "campaign_response_rate": "k.campaign_response_rate",
    "repeat_purchase_velocity": "f.repeat_purchase_velocity",
}


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index with quantile bins taken from the expected (earlier) sample.

    Quantile edges make every expected bin equally likely, so PSI reacts to shape, not to
    the feature's scale; an epsilon keeps empty bins finite. Rule of thumb: < 0.1 stable,
    0.1-0.25 moderate shift, > 0.25 major shift.
    """
    expected = expected[np.isfinite(expected)]
    actual = actual[np.isfinite(actual)]
    if expected.size == 0 or actual.size == 0:
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:
        return 0.0 if np.allclose(actual, edges[0]) else float("inf")
    inner = edges[1:-1]
    e = np.bincount(np.searchsorted(inner, expected, side="right"), minlength=len(inner) + 1)
    a = np.bincount(np.searchsorted(inner, actual, side="right"), minlength=len(inner) + 1)
    e_share = np.maximum(e / e.sum(), PSI_EPSILON)
    a_share = np.maximum(a / a.sum(), PSI_EPSILON)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


def wasserstein_distance(u: np.ndarray, v: np.ndarray) -> float:
    """The 1-Wasserstein (earth mover's) distance between two samples, as
    scipy.stats.wasserstein_distance computes it: the area between their distribution
    functions. Over the distinct values with their counts, so a feature of 10 million
    customers costs two sorts, not the argsorts and searches over every value scipy does.
    """
    u_values, u_counts = np.unique(u, return_counts=True)
    v_values, v_counts = np.unique(v, return_counts=True)
    grid = np.union1d(u_values, v_values)
    u_cdf = np.concatenate(([0], np.cumsum(u_counts)))[
        np.searchsorted(u_values, grid[:-1], "right")
    ]
    v_cdf = np.concatenate(([0], np.cumsum(v_counts)))[
        np.searchsorted(v_values, grid[:-1], "right")
    ]
    return float(np.sum(np.abs(u_cdf / u.size - v_cdf / v.size) * np.diff(grid)))


def normalised_wasserstein(expected: np.ndarray, actual: np.ndarray) -> float:
    """Earth mover's distance in units of the earlier month's standard deviation."""
    expected = expected[np.isfinite(expected)]
    actual = actual[np.isfinite(actual)]
    if expected.size == 0 or actual.size == 0:
        return float("nan")
    scale = float(np.std(expected)) or 1.0
    return float(wasserstein_distance(expected, actual) / scale)


def segment_metrics(con: duckdb.DuckDBPyConnection, month_end: date) -> list[Metric]:
    columns = ", ".join(f"{sql} as {name}" for name, sql in SEGMENT_METRICS.items())
    rows = con.execute(
        f"""
        with velocity as (
            select m.segment_id, avg(f.repeat_purchase_velocity) as repeat_purchase_velocity
            from published.segment_membership m
            join published.customer_features f using (customer_id, month_end)
            where m.month_end = ? group by 1
        )
        select k.segment_id, {columns}
        from published.segment_kpis k left join velocity f using (segment_id)
        where k.month_end = ?
        """,
        [month_end, month_end],
    ).fetchall()
    names = list(SEGMENT_METRICS)
    metrics = [
        Metric(month_end, row[0], name, None if value is None else float(value))
        for row in rows
        for name, value in zip(names, row[1:], strict=True)
    ]
    previous = last_day(previous_month(month_end.replace(day=1)))
    shares = dict(
        con.execute(
            "select segment_id, share from published.segment_kpis where month_end = ?", [previous]
        ).fetchall()
    )
    for row in rows:
        before = shares.get(row[0])
        shift = None if before is None or row[2] is None else float(row[2] - before)
        metrics.append(Metric(month_end, row[0], "share_shift", shift))
    return metrics


def input_metrics(con: duckdb.DuckDBPyConnection, month_end: date) -> list[Metric]:
    """Freshness, volume, quarantine and null rates, and feature drift against last month."""
    start = month_end.replace(day=1)
    freshness, volume = con.execute(
        "select ? - max(order_date), count(*) filter (where order_date >= ?) "
        "from raw.orders where order_date <= ?",
        [month_end, start, month_end],
    ).fetchone()
    loaded = sum(
        con.execute(f"select count(*) from raw.{t}").fetchone()[0]
        for t in ("customers", "orders", "engagement_events", "campaign_sends")
        if table_exists(con, "raw", t)
    )
    quarantined = con.execute("select count(*) from quarantine.rejected_rows").fetchone()[0]
    null_rate = con.execute(
        "select avg(case when churn_likelihood is null then 1.0 else 0.0 end) "
        "from published.customer_features where month_end = ? and frequency >= 1",
        [month_end],
    ).fetchone()[0]
    metrics = [
        Metric(
            month_end,
            ALL_SEGMENTS,
            "freshness_days",
            None if freshness is None else float(freshness),
        ),
        Metric(month_end, ALL_SEGMENTS, "order_lines_in_month", float(volume or 0)),
        Metric(
            month_end,
            ALL_SEGMENTS,
            "quarantine_rate",
            quarantined / (loaded + quarantined) if loaded + quarantined else 0.0,
        ),  # fmt: skip
        Metric(
            month_end,
            ALL_SEGMENTS,
            "churn_null_rate_among_buyers",
            None if null_rate is None else float(null_rate),
        ),  # fmt: skip
    ]
    previous = last_day(previous_month(start))
    for feature in DRIFT_FEATURES:
        now = _column(con, feature, month_end)
        before = _column(con, feature, previous)
        if before.size == 0:
            continue
        metrics.append(Metric(month_end, ALL_SEGMENTS, f"psi_{feature}", psi(before, now)))
        metrics.append(
            Metric(
                month_end,
                ALL_SEGMENTS,
                f"wasserstein_{feature}",
                normalised_wasserstein(before, now),
            )
        )
    return metrics


def _column(con: duckdb.DuckDBPyConnection, feature: str, month_end: date) -> np.ndarray:
    values = con.execute(
        f"select {feature}::double as v from published.customer_features where month_end = ?",
        [month_end],
    ).fetchnumpy()["v"]
    return np.asarray(values, dtype=float)


def measure(con: duckdb.DuckDBPyConnection, month_end: date) -> list[Metric]:
    """Every health metric for a published month, with the pause violations measured by the
    governance assets (so a non-zero count alerts through the same ladder)."""
    return (
        segment_metrics(con, month_end)
        + input_metrics(con, month_end)
        + health_metrics(con, month_end)
    )


def store(con: duckdb.DuckDBPyConnection, metrics: list[Metric], definition_version: str) -> None:
    """Replace the month's metrics (idempotent)."""
    con.execute("create schema if not exists health")
    con.execute(
        "create table if not exists health.metrics (month_end date, segment_id varchar, "
        "metric varchar, value double, definition_version varchar)"
    )
    months = {m.month_end for m in metrics}
    for month in months:
        con.execute("delete from health.metrics where month_end = ?", [month])
    if not metrics:
        return
    con.executemany(
        "insert into health.metrics values (?, ?, ?, ?, ?)",
        [(m.month_end, m.segment_id, m.metric, m.value, definition_version) for m in metrics],
    )


def history(con: duckdb.DuckDBPyConnection, month_end: date) -> dict[tuple[str, str], list[float]]:
    """Earlier values of every (segment, metric), oldest first."""
    rows = con.execute(
        "select segment_id, metric, value from health.metrics where month_end < ? "
        "order by month_end",
        [month_end],
    ).fetchall()
    earlier: dict[tuple[str, str], list[float]] = {}
    for segment_id, metric, value in rows:
        earlier.setdefault((segment_id, metric), []).append(value)
    return earlier


def store_breaches(con: duckdb.DuckDBPyConnection, month_end: date, breaches: list,
                   definition_version: str) -> None:  # fmt: skip
    """Replace the month's breaches: one row per breach (idempotent)."""
    con.execute(
        "create table if not exists health.breaches (month_end date, rule_id varchar, "
        "segment_id varchar, metric varchar, value double, baseline double, bound double, "
        "kind varchar, severity varchar, runbook varchar, definition_version varchar)"
    )
    con.execute("delete from health.breaches where month_end = ?", [month_end])
    if not breaches:
        return
    con.executemany(
        "insert into health.breaches values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                b.month_end,
                b.rule_id,
                b.segment_id,
                b.metric,
                b.value,
                b.baseline,
                b.bound,
                b.kind,
                b.severity,
                b.runbook,
                definition_version,
            )
            for b in breaches
        ],  # fmt: skip
    )
