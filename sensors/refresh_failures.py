"""Tell on-call when a refresh fails, and fail the runs whose process died.

The last published month stays in place; the notice says which month failed, where, and
what to do. The notice itself is built in one place (segment_cadence.outbox), shared with the
CLI and the dead-run reaper, and written once per run whoever sees the failure first.
"""

import dagster as dg

from orchestration.jobs import monthly_refresh_job
from orchestration.reaper import reap_dead_runs
from segment_cadence.outbox import record_refresh_failure


@dg.run_failure_sensor(
    name="refresh_failure_notice",
    monitored_jobs=[monthly_refresh_job],
    description="Records a notice in the outbox when a monthly refresh fails.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def refresh_failure_notice(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    month = run.tags.get("dagster/partition", "unpartitioned")
    path = record_refresh_failure(
        run.run_id,
        month,
        [e.step_key for e in context.get_step_failure_events()],
        context.failure_event.message,
    )
    context.log.info(f"Refresh failure notice for {month} written to {path}")


@dg.sensor(
    name="dead_run_reaper",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Marks failed the runs on this host whose process died (a CLI refresh killed mid-run), "
        "so they free the run queue and produce the refresh-failure notice."
    ),
)
def dead_run_reaper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance)
    for run_id in reaped:
        context.log.warning(f"run {run_id}: its process died; marked failed")
    return dg.SkipReason(
        f"marked failed: {', '.join(reaped)}" if reaped else "no dead runs on this host"
    )
