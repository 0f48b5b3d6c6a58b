"""The alerting room's sensors: health breaches to Slack, refresh failures to on-call, and dead
runs failed.

The alerting sensor sends breaches to Slack, on the escalation ladder, nothing lost. Each tick
runs one pass of segment_cadence.defs.alerting.alert_tick on the state store
(segment_cadence/platform/state_store.py) and never opens the warehouse: the monthly run hands
it the breaches through the store, so a tick runs while a refresh writes. State lives in the
store, so the tick is idempotent and survives restarts; the cursor records what the last tick
did, for the UI.

The refresh-failure sensor tells on-call when a refresh fails, and the reaper fails the runs
whose process died. The last published month stays in place; the notice says which month
failed, where, and what to do. The notice itself is built in one place
(segment_cadence.defs.alerting.outbox), shared with the CLI and the dead-run reaper, and
written once per run whoever sees the failure first.
"""

import json
from datetime import UTC, datetime

import dagster as dg

from segment_cadence.defs.alerting import alerts, slack
from segment_cadence.defs.alerting.alert_tick import run_tick
from segment_cadence.defs.alerting.assets import delivery_evaluation
from segment_cadence.defs.alerting.outbox import record_refresh_failure, step_failure_text
from segment_cadence.defs.health import thresholds
from segment_cadence.platform import state_store
from segment_cadence.platform.jobs import monthly_refresh_job, quarterly_strategic_job
from segment_cadence.platform.reaper import reap_dead_runs


@dg.sensor(
    name="segment_health_alerts",
    minimum_interval_seconds=60,
    jobs=[quarterly_strategic_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Turns health breaches into grouped Slack alerts (or the local outbox without "
        "SLACK_BOT_TOKEN), escalates on time, retries what could not be sent, reads "
        "acknowledgements, and requests the quarterly strategic refresh at level 3."
    ),
)
def segment_health_alerts(context: dg.SensorEvaluationContext):
    now = datetime.now(UTC).replace(tzinfo=None)
    launched = record_launched_strategic_runs(context.instance, now)
    result = run_tick(now, client=slack.slack_client())
    summary = result.summary()
    context.log.info(summary)
    for problem in result.delivery_problems:
        context.log.error(problem)
    previous = json.loads(context.cursor) if context.cursor else {}
    cursor = json.dumps(
        {
            "last_tick": now.isoformat(timespec="seconds"),
            "months_processed": (
                previous.get("months_processed", [])
                + [m.isoformat() for m in result.months_processed]
            )[-24:],
            "sent_total": previous.get("sent_total", 0) + result.sent,
            "delivery_problems": result.delivery_problems,
        }
    )
    # The ERROR check on the outbox, reported when its answer changes (and on the first
    # tick that finds a problem), so the UI shows a refused token or channel while it lasts.
    checks = (
        [delivery_evaluation(result.delivery_problems)]
        if result.delivery_problems != previous.get("delivery_problems", [])
        else []
    )
    with state_store.transaction() as state:
        pending = alerts.pending_strategic_requests(state)
    # Every request not yet launched, each time: the run key is the request id, so Dagster
    # launches it once, and a tick that died after recording a request still launches it.
    requests = [
        dg.RunRequest(
            partition_key=quarter,
            run_key=request_id,
            tags={
                alerts.STRATEGIC_TAG: request_id,
                "segment_cadence/requested_by": "alert escalation level 3",
            },
        )
        for request_id, quarter in pending
        if quarter
    ]
    if not (
        requests or checks or launched or result.sent or result.months_processed or result.failed
    ):
        return dg.SkipReason(summary)
    return dg.SensorResult(run_requests=requests, cursor=cursor, asset_events=checks)


def record_launched_strategic_runs(instance: dg.DagsterInstance, now: datetime) -> int:
    """Find the runs the pending level-3 requests launched and record them, so their held
    messages go out linked to the run. How many were found."""
    with state_store.transaction() as state:
        pending = alerts.pending_strategic_requests(state)
        if not pending:
            return 0
        url = alerts.Routing.from_settings(thresholds.load().settings).dagster_url
        found = 0
        for request_id, _ in pending:
            runs = instance.get_runs(
                filters=dg.RunsFilter(tags={alerts.STRATEGIC_TAG: request_id}), limit=1
            )
            if runs:
                alerts.strategic_run_launched(state, request_id, runs[0].run_id, url, now)
                found += 1
        return found


@dg.run_failure_sensor(
    name="refresh_failure_notice",
    monitored_jobs=[monthly_refresh_job],
    description="Records a notice in the outbox when a monthly refresh fails.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def refresh_failure_notice(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    month = run.tags.get("dagster/partition", "unpartitioned")
    failures = context.get_step_failure_events()
    path = record_refresh_failure(
        run.run_id,
        month,
        [e.step_key for e in failures],
        step_failure_text(failures) or context.failure_event.message,
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
