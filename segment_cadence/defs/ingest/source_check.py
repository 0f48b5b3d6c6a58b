"""A dry run of the ingest: every source read through the mapping and checked by the same
rules as a load, in a scratch warehouse that is thrown away. The user's warehouse and state
are not touched, so it can run before the first refresh and while one is going.

`segment-cadence sources check` prints it; the first hour with one's own export is a loop
of editing config/sources.yaml and running it until every source reads.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from segment_cadence.defs.ingest import ingest
from segment_cadence.platform import history, warehouse
from segment_cadence.platform.warehouse import table_exists


@dataclass(frozen=True)
class RefusedExample:
    reason: str
    rows: int
    source_row: int
    record: dict[str, object]


@dataclass
class SourceReport:
    source: str
    origin: str
    files: list[str]
    rows_read: int = 0
    rows_loaded: int = 0
    refused: list[RefusedExample] = field(default_factory=list)
    first_day: date | None = None
    last_day: date | None = None
    error: str | None = None

    @property
    def rows_quarantined(self) -> int:
        return sum(r.rows for r in self.refused)


@dataclass
class CheckReport:
    sources: list[SourceReport]
    refreshable: history.RefreshRange

    @property
    def unreadable(self) -> list[SourceReport]:
        return [s for s in self.sources if s.error]


@contextmanager
def _embedded_target() -> Iterator[None]:
    """The rules run on the embedded DuckDB whatever target is in use: a dry run never
    writes to a shared Spark warehouse."""
    before = os.environ.get("SEGMENT_CADENCE_DBT_TARGET")
    os.environ["SEGMENT_CADENCE_DBT_TARGET"] = "duckdb"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SEGMENT_CADENCE_DBT_TARGET", None)
        else:
            os.environ["SEGMENT_CADENCE_DBT_TARGET"] = before


def _examples(con: duckdb.DuckDBPyConnection, source: str) -> list[RefusedExample]:
    rows = con.execute(
        "select reason, count(*), min(source_row), arg_min(record, source_row) "
        "from quarantine.rejected_rows where source = ? group by 1 order by 2 desc, 1",
        [source],
    ).fetchall()
    return [RefusedExample(r[0], r[1], r[2], json.loads(r[3]) if r[3] else {}) for r in rows]


def _days(con: duckdb.DuckDBPyConnection, source: str) -> tuple[date | None, date | None]:
    column = ingest.MONTH_COLUMN.get(source) or (
        "signup_date" if source == "customers" else "joined_date"
    )
    first, last = con.execute(
        f"select cast(min({column}) as date), cast(max({column}) as date) from raw.{source}"
    ).fetchone()
    return first, last


def check(config: ingest.IngestConfig) -> CheckReport:
    """Load every source into a scratch warehouse and report what a load would do."""
    reports: list[SourceReport] = []
    with tempfile.TemporaryDirectory(prefix="segment-cadence-check-") as scratch:
        specs = {
            name: dataclasses.replace(spec, cache_dir=str(Path(scratch) / "cache" / name))
            for name, spec in config.sources.items()
        }
        config = dataclasses.replace(config, sources=specs)
        with _embedded_target(), warehouse.connect(Path(scratch) / "check.duckdb") as con:
            for name in ingest.LOAD_ORDER:
                try:
                    result = ingest.load(con, config, name)
                except (ingest.IngestConfigError, ingest.IngestRulesFailed) as error:
                    # The others still say what they can.
                    reports.append(SourceReport(name, ingest.FROM_FILE, [], error=str(error)))
                    continue
                first, last = _days(con, name)
                reports.append(
                    SourceReport(
                        name,
                        result.origin,
                        result.files,
                        result.rows_read,
                        result.rows_loaded,
                        _examples(con, name),
                        first,
                        last,
                    )
                )
            loaded = None
            if table_exists(con, "raw", "orders"):
                loaded = ingest.loaded_order_months(con)
    return CheckReport(reports, history.refresh_range(data=loaded))
