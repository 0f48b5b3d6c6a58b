"""dbt's unit tests of the analysis models (the `unit_tests:` in dbt_project/models/governance
and models/health): the onboarding rule's day 30, pressure patterns against last month, the
bias audit's ratios and bounds. Fixed fixtures, so an empty warehouse will do; the monthly
refresh leaves them out (they check the logic, not the month)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from segment_cadence.platform import paths


def test_the_analysis_models_pass_their_dbt_unit_tests(tmp_path: Path) -> None:
    dbt = Path(sys.executable).parent / "dbt"
    env = os.environ | {"SEGMENT_CADENCE_WAREHOUSE": str(tmp_path / "unit.duckdb")}
    env.pop("SEGMENT_CADENCE_DBT_VARS", None)
    project = str(paths.DBT_PROJECT_DIR)
    result = subprocess.run(
        [
            str(dbt),
            "test",
            "--select",
            "test_type:unit",
            "--project-dir",
            project,
            "--profiles-dir",
            project,
            "--target-path",
            str(tmp_path / "target"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    passed = [line for line in result.stdout.splitlines() if " PASS " in line]
    assert len(passed) >= 3, result.stdout[-3000:]
