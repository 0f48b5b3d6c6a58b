"""Partitions: one per calendar month, keyed by the month's first day (2026-10-01)."""

from __future__ import annotations

from datetime import date

import dagster as dg

from segment_cadence.months import month_end, parse_month, previous_month

# History the pipeline can backfill. Months before the data starts still build (every
# customer then lands in the fallback), so an early start costs nothing but clutter.
FIRST_MONTH = "2023-01-01"

monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH)


def refresh_window(partition_key: str) -> tuple[date, date]:
    """(month_end, previous_month_end) for a monthly partition key."""
    start = parse_month(partition_key)
    return month_end(start), month_end(previous_month(start))
