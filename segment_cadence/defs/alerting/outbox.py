"""The local outbox: notices that must not be lost, kept as JSON lines on disk.

With no Slack token set, this file is where on-call notices land. Writing is append-only
and one line per notice, so a crash mid-write loses at most the notice being written.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segment_cadence.platform import paths

REFRESH_FAILED = "refresh_failed"


def outbox_file() -> Path:
    return paths.outbox_dir() / "notices.jsonl"


def _about_run(line: str, kind: str, run_id: str) -> bool:
    try:
        notice = json.loads(line)
    except ValueError:  # the torn last line of a crashed write
        return False
    return notice.get("kind") == kind and (notice.get("details") or {}).get("run_id") == run_id


def append_notice(
    kind: str, summary: str, details: dict[str, Any], path: Path | None = None
) -> Path:
    """Append one notice; returns the file it went to.

    A notice about a run (its details carry the run_id) is written once per kind: the same
    failed run can be seen by the sensor, by the CLI that ran it and by the dead-run reaper,
    and on-call should hear of it once. The check and the append hold an flock on the file,
    so two processes noticing at once still write one line.
    """
    target = path or outbox_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    notice = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "kind": kind,
        "summary": summary,
        "details": details,
    }
    run_id = details.get("run_id")
    with target.open("a+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        if run_id is not None:
            handle.seek(0)
            if any(_about_run(line, kind, run_id) for line in handle):
                return target
        handle.write(json.dumps(notice, default=str, sort_keys=True) + "\n")
    return target


def step_failure_text(step_failure_events: Sequence[Any]) -> str | None:
    """What a failed step said to its user: the description of a deliberate failure (a
    user's mistake in the mapping, a held month), not the framework's "step failed". Read
    from Dagster's step-failure events by attribute, so this module needs no Dagster."""
    for event in step_failure_events:
        data = getattr(event, "step_failure_data", None)
        user = getattr(data, "user_failure_data", None)
        if user is not None and getattr(user, "description", None):
            return f"{event.step_key}: {user.description}"
    return None


def record_refresh_failure(
    run_id: str,
    month: str | None,
    failed_steps: Sequence[str],
    error: str | None,
    path: Path | None = None,
) -> Path:
    """The notice that a monthly refresh failed, wherever the failure was seen: the
    refresh_failure_notice sensor (runs launched from the UI or the schedule), the CLI (its
    own runs) and the dead-run reaper (runs whose process died). One home, so on-call reads
    the same notice whichever saw it."""
    month = month or "unpartitioned"
    held = any("publish_gate" in step for step in failed_steps)
    summary = (
        f"Monthly refresh for {month} was held by the publish gate; the last published "
        "membership stays in force."
        if held
        else f"Monthly refresh for {month} failed; the last published membership is unchanged."
    )
    runbook = (
        "Read the findings of the inputs_and_result_fit_to_publish check on build/publish_gate. "
        "Fix the input and re-run the partition, or an approver runs `segment-cadence release "
        f"--month {month[:7]} --by NAME --reason TEXT`."
        if held
        else "Open the run in the Dagster UI, fix the cause, re-run the partition."
    )
    return append_notice(
        kind=REFRESH_FAILED,
        summary=summary,
        details={
            "run_id": run_id,
            "month": month,
            "failed_steps": list(failed_steps),
            "error": error,
            "runbook": runbook,
        },
        path=path,
    )


def read_notices(path: Path | None = None) -> list[dict[str, Any]]:
    target = path or outbox_file()
    if not target.exists():
        return []
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line]
