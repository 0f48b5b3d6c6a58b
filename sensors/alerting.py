"""The alerting sensor: breaches to Slack, on the escalation ladder, nothing lost.

Each tick takes the writer's turn if it is free, opens the warehouse, runs one pass of
segment_cadence.alert_tick and closes it: no connection is held between ticks (DuckDB has
one writer), and a tick during a refresh is skipped; the next one catches up. State lives in
the warehouse (alerts.*), so the tick is idempotent and survives restarts; the cursor
records what the last tick did, for the UI.
"""

import json
from datetime import UTC, datetime

import dagster as dg

from orchestration.jobs import quarterly_strategic_job
from orchestration.resources import WarehouseResource
from segment_cadence import slack, warehouse_lock
from segment_cadence.alert_tick import run_tick
from segment_cadence.warehouse import WarehouseBusy

# A sensor tick has a minute; DuckDB's lock (a process outside the writer's turn) gets a
# moment of it.
TICK_LOCK_WAIT_SECONDS = 5.0


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
def segment_health_alerts(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        with (
            warehouse_lock.writer("the alerting sensor", warehouse_path=warehouse.path, wait=0),
            warehouse.connect(wait=TICK_LOCK_WAIT_SECONDS) as con,
        ):
            result = run_tick(con, now, client=slack.slack_client())
    except WarehouseBusy as error:
        return dg.SkipReason(f"warehouse busy: {error}")
    summary = result.summary()
    context.log.info(summary)
    previous = json.loads(context.cursor) if context.cursor else {}
    cursor = json.dumps({
        "last_tick": now.isoformat(timespec="seconds"),
        "months_processed": (
            previous.get("months_processed", []) + [m.isoformat() for m in result.months_processed]
        )[-24:],
        "sent_total": previous.get("sent_total", 0) + result.sent,
    })  # fmt: skip
    requests = []
    if result.strategic_quarter:
        requests.append(
            dg.RunRequest(
                partition_key=result.strategic_quarter,
                run_key=f"strategic-{result.strategic_quarter}-{now:%Y%m%d}",
                tags={"segment_cadence/requested_by": "alert escalation level 3"},
            )
        )
    if not requests and not (result.sent or result.months_processed or result.failed):
        return dg.SkipReason(summary)
    return dg.SensorResult(run_requests=requests, cursor=cursor)
