"""Publishing a month: from the build schema to what consumers read, all or nothing.

dbt rebuilds a month in the `build` schema. Consumers (campaign tools, the firewall,
reports) read only `published`. A month moves from one to the other in a single
transaction, after every blocking check has passed, and only if the build is complete and
for the month asked. A refresh that fails or is killed before this point leaves the last
published membership exactly as it was. Re-publishing a month replaces it, never appends.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from segment_cadence.warehouse import ensure_schema, table_exists

PUBLISHED_TABLES = ("segment_membership", "segment_transitions", "segment_kpis")


class PublishError(RuntimeError):
    """The build is not fit to publish; nothing was changed."""


@dataclass(frozen=True)
class Publication:
    month_end: date
    definition_version: str
    customers: int
    segment_sizes: dict[str, int]
    export_path: str | None


def check_build(con: duckdb.DuckDBPyConnection, month_end: date, definition_version: str) -> int:
    """Refuse a build that is missing, for another month or version, or incomplete."""
    for table in (*PUBLISHED_TABLES, "customer_features"):
        if not table_exists(con, "build", table):
            raise PublishError(f"build.{table} does not exist; run the dbt models for {month_end}")
    months = con.execute(
        "select distinct month_end, definition_version from build.segment_membership"
    ).fetchall()
    if months != [(month_end, definition_version)]:
        raise PublishError(
            f"build.segment_membership holds {months}, not month {month_end} with definition "
            f"version {definition_version}; rebuild before publishing"
        )
    members, features = con.execute(
        "select (select count(*) from build.segment_membership), "
        "(select count(*) from build.customer_features)"
    ).fetchone()
    if members != features:
        raise PublishError(
            f"build.segment_membership has {members} rows but build.customer_features has "
            f"{features}: every customer must be placed exactly once"
        )
    if members == 0:
        raise PublishError(f"no customers to publish for {month_end}: the inputs are empty")
    return members


def publish_month(
    con: duckdb.DuckDBPyConnection,
    month_end: date,
    definition_version: str,
    run_id: str = "",
    export_dir: Path | None = None,
    version_label: str | None = None,
) -> Publication:
    """Replace the month in `published` with the build, atomically, then export it."""
    ensure_schema(con)
    customers = check_build(con, month_end, definition_version)
    con.execute("begin transaction")
    try:
        for table in PUBLISHED_TABLES:
            con.execute(f"delete from published.{table} where month_end = ?", [month_end])
            con.execute(
                f"insert into published.{table} by name "
                f"select * from build.{table} where month_end = ?",
                [month_end],
            )
        # Features as published, for the quarterly re-fit and drift against earlier months.
        con.execute(
            "create table if not exists published.customer_features as "
            "select * from build.customer_features where false"
        )
        con.execute("delete from published.customer_features where month_end = ?", [month_end])
        con.execute(
            "insert into published.customer_features by name select * from build.customer_features"
        )
        con.execute("delete from published.publications where month_end = ?", [month_end])
        con.execute(
            "insert into published.publications (month_end, definition_version, customers, "
            "published_at, run_id, export_path, version_label) "
            "values (?, ?, ?, current_timestamp, ?, ?, ?)",
            [month_end, definition_version, customers, run_id, None, version_label],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    export_path = export_membership(con, month_end, export_dir) if export_dir else None
    if export_path:
        con.execute(
            "update published.publications set export_path = ? where month_end = ?",
            [export_path, month_end],
        )
    return Publication(
        month_end=month_end,
        definition_version=definition_version,
        customers=customers,
        segment_sizes=segment_sizes(con, month_end),
        export_path=export_path,
    )


def export_membership(con: duckdb.DuckDBPyConnection, month_end: date, export_dir: Path) -> str:
    """Write the month's published membership as Parquet for downstream tools.

    Written to a temporary name and renamed, so a reader never sees half a file.
    """
    target_dir = Path(export_dir) / "segment_membership" / f"month_end={month_end.isoformat()}"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / "membership.parquet"
    partial = target_dir / ".membership.parquet.partial"
    con.execute(
        f"copy (select customer_id, month_end, segment_id, definition_version, months_in_segment "
        f"from published.segment_membership where month_end = ? order by customer_id) "
        f"to '{str(partial).replace(chr(39), chr(39) * 2)}' (format parquet, compression zstd)",
        [month_end],
    )
    os.replace(partial, target)
    return str(target)


def segment_sizes(con: duckdb.DuckDBPyConnection, month_end: date) -> dict[str, int]:
    """Published members per segment for a month, largest first."""
    rows = con.execute(
        "select segment_id, count(*) from published.segment_membership where month_end = ? "
        "group by 1 order by 2 desc, 1",
        [month_end],
    ).fetchall()
    return {segment: count for segment, count in rows}


def published_months(con: duckdb.DuckDBPyConnection) -> list[date]:
    if not table_exists(con, "published", "publications"):
        return []
    rows = con.execute(
        "select distinct month_end from published.publications order by 1"
    ).fetchall()
    return [r[0] for r in rows]
