"""Where a refresh's time goes, from the run's own events: the time of each step, and the
time before the first step (process start, imports, the code location, the run's launch).

Read from the Dagster instance the refresh wrote to (its DAGSTER_HOME), after the process
ended, so reading costs the refresh nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def step_seconds(dagster_home: Path) -> dict[str, float]:
    """Seconds per step of the latest run in this Dagster home (start to success or failure),
    plus `(run start to first step)` and `(last step to run end)`."""
    import dagster as dg
    from dagster._core.events import DagsterEventType

    kinds = {
        DagsterEventType.RUN_START,
        DagsterEventType.RUN_SUCCESS,
        DagsterEventType.RUN_FAILURE,
        DagsterEventType.STEP_START,
        DagsterEventType.STEP_SUCCESS,
        DagsterEventType.STEP_FAILURE,
    }
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs(limit=1)
        if not runs:
            return {}
        events = [
            entry
            for entry in instance.all_logs(runs[0].run_id)
            if entry.dagster_event and entry.dagster_event.event_type in kinds
        ]
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    run_start = run_end = None
    first_step = last_step = None
    for entry in events:
        kind = entry.dagster_event.event_type
        if kind == DagsterEventType.RUN_START:
            run_start = entry.timestamp
        elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
            run_end = entry.timestamp
        elif kind == DagsterEventType.STEP_START:
            started[entry.step_key] = entry.timestamp
            first_step = entry.timestamp if first_step is None else min(first_step, entry.timestamp)
        elif entry.step_key in started:
            seconds[entry.step_key] = entry.timestamp - started[entry.step_key]
            last_step = entry.timestamp if last_step is None else max(last_step, entry.timestamp)
    if run_start is not None and first_step is not None:
        seconds["(run start to first step)"] = first_step - run_start
    if run_end is not None and last_step is not None:
        seconds["(last step to run end)"] = run_end - last_step
    if run_start is not None and run_end is not None:
        seconds[RUN] = run_end - run_start
    return seconds


RUN = "(the run, start to end)"
BEFORE_RUN = "(process start to run start, and after the run)"


def import_seconds(module: str = "segment_cadence.definitions", env: dict | None = None) -> float:
    """Wall seconds of a fresh interpreter importing the code location, and nothing else."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        check=True,
        env=env or dict(os.environ),
        capture_output=True,
    )
    return time.perf_counter() - started
