"""Segment health: the metrics measured after each refresh, for segments and their inputs.

The metrics are the dbt model health.metrics (dbt_project/models/health/health_metrics.sql),
read from published tables (and the raw inputs for freshness and volume), so health
describes what consumers actually see. They are kept long-form, one row per (month, segment,
metric), so thresholds can address any of them and history accumulates for robust
baselines. Input metrics use the segment id '*'. Here: reading them back, and the drift
statistics in numpy (PSI, Wasserstein) that the model's SQL computes the same way, kept as
the reference the model is tested against.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np

from segment_cadence.platform.metrics import Metric

ALL_SEGMENTS = "*"
DRIFT_FEATURES = ("recency_days", "frequency", "monetary_value", "engagement_events_90d")
PSI_BINS = 10
PSI_EPSILON = 1e-4


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


def read(con: duckdb.DuckDBPyConnection, month_end: date) -> list[Metric]:
    """The month's health metrics as the health_metrics dbt model recorded them."""
    rows = con.execute(
        "select segment_id, metric, value from health.metrics where month_end = ? "
        "order by segment_id, metric",
        [month_end],
    ).fetchall()
    return [Metric(month_end, segment_id, metric, value) for segment_id, metric, value in rows]


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
