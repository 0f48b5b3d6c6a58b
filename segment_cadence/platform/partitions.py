"""Partitions: one per calendar month, keyed by the month's first day (2026-10-01)."""

from __future__ import annotations

from datetime import date

import dagster as dg

from segment_cadence.platform.months import (
    month_end,
    parse_month,
    previous_month_end,
    quarter_end,
    quarter_label,
)

# History the pipeline can backfill. Months before the data starts still build (every
# customer then lands in the fallback), so an early start costs nothing but clutter.
FIRST_MONTH = "2023-01-01"

monthly_partitions = dg.MonthlyPartitionsDefinition(start_date=FIRST_MONTH)


def refresh_window(partition_key: str) -> tuple[date, date]:
    """(month_end, previous_month_end) for a monthly partition key."""
    start = parse_month(partition_key)
    return month_end(start), previous_month_end(start)


# Quarters, keyed by their first day (2025-10-01 is 2025-Q4).
quarterly_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *", start=FIRST_MONTH, fmt="%Y-%m-%d"
)


def quarter_window(partition_key: str) -> tuple[str, date]:
    """('2025-Q4', the quarter's last month end) for a quarterly partition key."""
    start = parse_month(partition_key)
    return quarter_label(start), quarter_end(start)
