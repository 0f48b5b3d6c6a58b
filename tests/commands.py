"""The CLI as the tests start it: in a child process with this tree's code and every state
path under one home, none inherited from the session or the machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment: this tree's code, and every state path under `home`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SEGMENT_CADENCE_") and k not in ("DAGSTER_HOME", "SLACK_BOT_TOKEN")
    }
    env.update(
        PYTHONPATH=str(REPO),
        SEGMENT_CADENCE_HOME=str(home),
        SEGMENT_CADENCE_WAREHOUSE=str(home / "warehouse.duckdb"),
        DAGSTER_HOME=str(home / "dagster_home"),
        # The modules' own commands use the same (dbt's partial parse is kept for one profile).
        SEGMENT_CADENCE_DUCKDB_MEMORY_LIMIT="1GB",
        **extra,
    )
    return env


def refresh(home: Path, month: str) -> subprocess.CompletedProcess[str]:
    """`segment-cadence refresh --month MONTH` on the state under `home`; fails the test
    with everything the command printed if it does not succeed."""
    done = subprocess.run(
        [sys.executable, "-m", "segment_cadence.cli", "refresh", "--month", month],
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done
