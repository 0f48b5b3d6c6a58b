"""Threshold breaches of a month, as the health asset stores them (the state store's breaches).

Kept apart from the metrics (a dbt model, health.metrics): breaches are the outcome of the
threshold evaluation in Python (thresholds.py), a record of what was found, written by the
health asset in the same state-store transaction that hands them to the alerting tick. The
review pack reads them in SQL from their warehouse copy, ops.breaches
(state_store.copy_review_records).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, delete, insert

from segment_cadence.defs.health.thresholds import Breach
from segment_cadence.platform.state_store import breaches as breaches_table


def store_breaches(
    state: Connection, month_end: date, breaches: list[Breach], definition_version: str
) -> None:
    """Replace the month's breaches: one row per breach (idempotent)."""
    state.execute(delete(breaches_table).where(breaches_table.c.month_end == month_end))
    if not breaches:
        return
    state.execute(
        insert(breaches_table),
        [
            {
                "month_end": b.month_end,
                "rule_id": b.rule_id,
                "segment_id": b.segment_id,
                "metric": b.metric,
                "value": b.value,
                "baseline": b.baseline,
                "bound": b.bound,
                "kind": b.kind,
                "severity": b.severity,
                "runbook": b.runbook,
                "owner": b.owner,
                "definition_version": definition_version,
            }
            for b in breaches
        ],
    )
