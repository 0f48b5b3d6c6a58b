"""Schedules: the cadence is the product. The monthly refresh runs on the 2nd at 06:00 for
the month that just ended (the schedule is built from the partitions, so it carries the
partition key)."""

from __future__ import annotations

import dagster as dg

from orchestration.jobs import monthly_refresh_job

monthly_refresh_schedule = dg.build_schedule_from_partitioned_job(
    monthly_refresh_job,
    name="monthly_tactical_refresh",
    description="Monthly tactical refresh of the month that just ended.",
    day_of_month=2,
    hour_of_day=6,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
