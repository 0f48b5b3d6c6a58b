"""Schedules: the cadence is the product. The monthly refresh runs on the 2nd at 06:00 for
the month that just ended (the schedule is built from the partitions, so it carries the
partition key).

Each schedule is named after its job, `<job>_schedule`: Dagster keeps jobs and schedules in
separate namespaces, so a schedule may share its job's name, but one name for two things
(a job and what starts it) reads as one thing in the UI, the CLI and the logs."""

from __future__ import annotations

from datetime import date

import dagster as dg

from segment_cadence.platform.jobs import monthly_refresh_job, quarterly_strategic_job
from segment_cadence.platform.months import previous_quarter

monthly_refresh_schedule = dg.build_schedule_from_partitioned_job(
    monthly_refresh_job,
    name=f"{monthly_refresh_job.name}_schedule",
    description="Monthly tactical refresh of the month that just ended.",
    day_of_month=2,
    hour_of_day=6,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


# After the quarter's last monthly refresh (which runs on the 2nd): the 5th at 06:00 of the
# month after each quarter, for the quarter that just ended.
@dg.schedule(
    cron_schedule="0 6 5 1,4,7,10 *",
    job=quarterly_strategic_job,
    name=f"{quarterly_strategic_job.name}_schedule",
    description="Quarterly strategic re-fit of the quarter that just ended (a candidate only).",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def quarterly_strategic_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    when = context.scheduled_execution_time
    quarter = previous_quarter(date(when.year, when.month, 1))
    return dg.RunRequest(partition_key=quarter.isoformat())
