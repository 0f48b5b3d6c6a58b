"""A refresh started from the CLI shows on its job's page in the UI: its run record carries
the remote origin of the code location `segment_cadence` (from workspace.yaml) and the
repository label the UI filters a job's runs by, as a run launched from the webserver does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

REPO = Path(__file__).resolve().parents[1]
MONTH = "2025-12"


def test_a_cli_refresh_is_a_run_of_the_code_locations_job(tmp_path: Path) -> None:
    from segment_cadence.example.generator import GeneratorConfig, generate

    generate(
        tmp_path / "raw",
        GeneratorConfig(customers=300, end_month=MONTH, history_months=6, seed=3),
        progress=False,
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SEGMENT_CADENCE_") and k not in ("DAGSTER_HOME", "SLACK_BOT_TOKEN")
    }
    env.update(
        PYTHONPATH=str(REPO),
        SEGMENT_CADENCE_HOME=str(tmp_path),
        SEGMENT_CADENCE_WAREHOUSE=str(tmp_path / "warehouse.duckdb"),
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        SEGMENT_CADENCE_DUCKDB_MEMORY_LIMIT="1GB",
    )
    refresh = subprocess.run(
        [sys.executable, "-m", "segment_cadence.cli", "refresh", "--month", MONTH],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert refresh.returncode == 0, refresh.stdout + refresh.stderr

    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        # The query behind a job's page: its name and its code location's repository label.
        on_the_jobs_page = instance.get_runs(
            dg.RunsFilter(
                job_name="monthly_refresh",
                tags={REPOSITORY_LABEL_TAG: "__repository__@segment_cadence"},
            )
        )
        assert len(on_the_jobs_page) == 1
        run = on_the_jobs_page[0]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == f"{MONTH}-01"
        origin = run.remote_job_origin
        assert origin is not None
        assert origin.job_name == "monthly_refresh"
        assert origin.repository_origin.repository_name == "__repository__"
        location = origin.repository_origin.code_location_origin
        assert location.location_name == "segment_cadence"
        assert location.loadable_target_origin.module_name == "segment_cadence.definitions"
