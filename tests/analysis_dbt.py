"""Build the analysis dbt models (dbt_project/models/governance, models/health) for one month
on a test's own warehouse, in this process, while the test holds its connection."""

from __future__ import annotations

import json
import os
from datetime import date, datetime

import duckdb
from dbt.cli.main import dbtRunner

from segment_cadence.defs.governance import governance
from segment_cadence.platform import paths, state_store
from segment_cadence.platform.months import month_end as last_day
from segment_cadence.platform.months import previous_month

GOVERNANCE = "path:models/governance"
HEALTH = "path:models/health"


def build_analysis(
    con: duckdb.DuckDBPyConnection,
    month_end: date,
    *,
    select: str = GOVERNANCE,
    recorded_at: datetime | None = None,
    definition_version: str = "v1hash",
) -> None:
    """`dbt build --select <select>` for the month, against the file `con` is open on."""
    state_store.copy_firewall_records(con)
    path = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()[0]
    variables = {
        "month_end": month_end.isoformat(),
        "previous_month_end": last_day(previous_month(month_end.replace(day=1))).isoformat(),
        "definition_version": definition_version,
        "recorded_at": recorded_at.isoformat(sep=" ") if recorded_at else "",
        **governance.dbt_vars(governance.default_config()),
    }
    os.environ["SEGMENT_CADENCE_WAREHOUSE"] = path
    os.environ["SEGMENT_CADENCE_DBT_VARS"] = json.dumps(variables)
    project = str(paths.DBT_PROJECT_DIR)
    result = dbtRunner().invoke(
        [
            "build",
            "--quiet",
            "--exclude-resource-type",
            "unit_test",
            "--select",
            *select.split(),
            "--project-dir",
            project,
            "--profiles-dir",
            project,
        ]
    )
    if not result.success:
        failed = [
            f"{r.node.name}: {r.message}"
            for r in (result.result or [])
            if str(r.status) in ("error", "fail")
        ]
        raise RuntimeError(f"dbt build failed: {result.exception or failed}")
