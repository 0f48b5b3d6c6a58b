"""Threshold breaches of a month, as the health asset stores them (health.breaches).

Kept apart from the metrics (now a dbt model, health.metrics): breaches are the outcome of the
threshold evaluation in Python (thresholds.py), written by the health asset.
"""

from __future__ import annotations

from datetime import date

import duckdb


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
