"""Partitions: one per calendar month, keyed by the month's first day (2026-10-01), over the
months that can be refreshed (segment_cadence/platform/history.py): from where the data
starts to the last complete month, or further when the data runs further."""

from __future__ import annotations

import warnings
from datetime import date

import dagster as dg

from segment_cadence.platform import history
from segment_cadence.platform.months import (
    last_complete_month,
    month_end,
    parse_month,
    previous_month_end,
    quarter_end,
    quarter_label,
    quarter_start,
)

# The months the pipeline can refresh or backfill, as this code location loads.
REFRESH_RANGE = history.refresh_range()
FIRST_MONTH = REFRESH_RANGE.first.isoformat()


def _months_after(first: date, last: date) -> int:
    return max(0, (last.year - first.year) * 12 + last.month - first.month)


# Months with data after the last complete month are partitions too (end_offset).
_MONTHS_AHEAD = _months_after(last_complete_month(date.today()), REFRESH_RANGE.last)

monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date=FIRST_MONTH, end_offset=_MONTHS_AHEAD
)

# Every monthly asset refreshes one month a run (its parameters are one month's), so a
# backfill of many months is as many runs; one policy for all of them, or Dagster warns that
# the job's assets differ (dagster-dbt's default would give the dbt assets the whole range).
ONE_MONTH_A_RUN = dg.BackfillPolicy.multi_run(1)
# The parameter is marked beta on @asset (not on @dbt_assets, where dagster-dbt sets it
# anyway); the warning says nothing a user can act on.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)


def refresh_window(partition_key: str) -> tuple[date, date]:
    """(month_end, previous_month_end) for a monthly partition key."""
    start = parse_month(partition_key)
    return month_end(start), previous_month_end(start)


# Quarters, keyed by their first day (2025-10-01 is 2025-Q4).
quarterly_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 1 1,4,7,10 *",
    start=quarter_start(REFRESH_RANGE.first).isoformat(),
    fmt="%Y-%m-%d",
    end_offset=(_MONTHS_AHEAD + 2) // 3,
)


def quarter_window(partition_key: str) -> tuple[str, date]:
    """('2025-Q4', the quarter's last month end) for a quarterly partition key."""
    start = parse_month(partition_key)
    return quarter_label(start), quarter_end(start)
