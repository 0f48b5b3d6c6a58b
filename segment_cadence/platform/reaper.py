"""The dead-run reaper: a run whose process died is marked failed, so the run queue moves on
and on-call hears of it.

Dagster's run monitoring (dagster.yaml) watches the runs the daemon launches, and the code
server fails a run whose worker it started and lost. Neither sees a run the CLI started with
execute_in_process in its own process: killed, it stays STARTED forever and keeps the queue's
one warehouse slot. So every run records the process and host that run it (the tags below:
the CLI sets them at launch, WarehouseResource for other runs), and a run of this host that is
not finished while its process is gone is marked failed through the instance, and the
concurrency-pool slot it died holding is given back. The CLI reaps
before every refresh; the dead_run_reaper sensor reaps every minute while the daemon runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import dagster as dg

from segment_cadence.defs.alerting.outbox import record_refresh_failure
from segment_cadence.platform import processes
from segment_cadence.platform.jobs import monthly_refresh_job

PID_TAG = "segment_cadence/pid"
HOST_TAG = "segment_cadence/host"
PROCESS_STARTED_TAG = "segment_cadence/process_started"

UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def process_tags() -> dict[str, str]:
    """Tags naming this process, for a run it executes."""
    return {
        PID_TAG: str(os.getpid()),
        HOST_TAG: processes.host_name(),
        PROCESS_STARTED_TAG: f"{processes.started_at():.2f}",
    }


def process_died(
    tags: Mapping[str, str], host: str, alive: Callable[[int, float | None], bool]
) -> bool:
    """Whether the process a run's tags name is known to be gone. Only a process on this
    host can be looked at; a run without the tags, or of another host, is not ours to judge."""
    if tags.get(HOST_TAG) != host:
        return False
    try:
        pid = int(tags[PID_TAG])
        started = float(tags[PROCESS_STARTED_TAG]) if PROCESS_STARTED_TAG in tags else None
    except (KeyError, ValueError):
        return False
    return not alive(pid, started)


def death_message(tags: Mapping[str, str]) -> str:
    return (
        f"The process running this run (pid {tags.get(PID_TAG)} on {tags.get(HOST_TAG)}) died "
        "before the run finished; marked failed by the dead-run reaper."
    )


def reap_dead_runs(instance: dg.DagsterInstance, host: str | None = None) -> list[str]:
    """Mark failed every unfinished run of this host whose process is gone, and write the
    refresh-failure notice for monthly refreshes (the run-failure sensor does not see runs
    the CLI started). Returns the run ids it marked."""
    host = host or processes.host_name()
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: host})):
        if not process_died(run.tags, host, processes.process_alive):
            continue
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.is_finished:
            continue
        running_steps = [
            s.step_key for s in instance.get_run_step_stats(run.run_id) if s.end_time is None
        ]
        message = death_message(run.tags)
        instance.report_run_failed(current, message)
        if run.job_name == monthly_refresh_job.name:
            record_refresh_failure(
                run.run_id, run.tags.get("dagster/partition"), running_steps, message
            )
        reaped.append(run.run_id)
    free_pool_slots_of_finished_runs(instance)
    return reaped


def free_pool_slots_of_finished_runs(instance: dg.DagsterInstance) -> list[str]:
    """Give back the warehouse pool's slot a dead run died holding.

    A step claims its concurrency-pool slot in the instance and gives it back when it ends;
    a process killed mid-step never does, and with a pool limit of one every later step would
    wait for ever. The daemon frees the slots of finished runs after
    `run_monitoring.free_slots_after_run_end_seconds`; the CLI has no daemon, so it frees
    them here, once the dead run is marked failed. Returns the runs whose slots were freed.
    """
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    holders = storage.get_concurrency_run_ids()
    if not holders:
        return []
    finished = instance.get_runs(filters=dg.RunsFilter(run_ids=list(holders)))
    freed = []
    for run in finished:
        if run.is_finished:
            storage.free_concurrency_slots_for_run(run.run_id)
            freed.append(run.run_id)
    return freed
