"""Tell on-call when a refresh fails. The last published month stays in place; the notice
says which month failed, where, and what to do."""

import dagster as dg

from orchestration.jobs import monthly_refresh_job
from segment_cadence.outbox import append_notice


@dg.run_failure_sensor(
    name="refresh_failure_notice",
    monitored_jobs=[monthly_refresh_job],
    description="Records a notice in the outbox when a monthly refresh fails.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def refresh_failure_notice(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    month = run.tags.get("dagster/partition", "unpartitioned")
    failed_steps = [e.step_key for e in context.get_step_failure_events()]
    path = append_notice(
        kind="refresh_failed",
        summary=f"Monthly refresh for {month} failed; the last published membership is unchanged.",
        details={
            "run_id": run.run_id,
            "month": month,
            "failed_steps": failed_steps,
            "error": context.failure_event.message,
            "runbook": "Open the run in the Dagster UI, fix the cause, re-run the partition.",
        },
    )
    context.log.info(f"Refresh failure notice for {month} written to {path}")
