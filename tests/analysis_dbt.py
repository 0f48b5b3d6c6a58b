"""Build the analysis dbt models (dbt_project/models/governance, models/health) for one month
on a test's own warehouse, in this process, while the test holds its connection."""

from __future__ import annotations

from datetime import date, datetime

import duckdb

from segment_cadence.defs.governance import governance
from segment_cadence.platform import dbt_in_process, state_store
from segment_cadence.platform.months import month_end as last_day
from segment_cadence.platform.months import previous_month

GOVERNANCE = "path:models/governance"
HEALTH_METRICS = "health_metrics"


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
    variables = {
        "month_end": month_end.isoformat(),
        "previous_month_end": last_day(previous_month(month_end.replace(day=1))).isoformat(),
        "definition_version": definition_version,
        "recorded_at": recorded_at.isoformat(sep=" ") if recorded_at else "",
        **governance.dbt_vars(governance.default_config()),
    }
    dbt_in_process.build(con, dbt_in_process.DbtBuild(tuple(select.split()), variables))
