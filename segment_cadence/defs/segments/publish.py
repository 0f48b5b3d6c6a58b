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
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from segment_cadence.platform.crash_points import crash_point
from segment_cadence.platform.warehouse import ensure_schema, table_exists, transaction

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
    """Replace the month in `published` with the build and its export, as one unit.

    The export is written first, from the build, to a path of its own (the month and the
    run); the transaction that replaces the month records that path. Readers follow the
    record, so they see either the old month with its old export or the new month with its
    new one: a failure or a kill before the commit leaves the old pair in force, and the
    next publish removes the unreferenced file.
    """
    ensure_schema(con)
    customers = check_build(con, month_end, definition_version)
    if export_dir is not None:
        tidy_exports(con, Path(export_dir))
    export_path = (
        str(export_build(con, month_end, Path(export_dir), run_id)) if export_dir else None
    )
    try:
        with transaction(con):
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
                [month_end, definition_version, customers, run_id, export_path, version_label],
            )
            crash_point("publish_transaction")
    except BaseException:
        if export_path:
            Path(export_path).unlink(missing_ok=True)
        raise
    if export_dir is not None:
        tidy_exports(con, Path(export_dir))
    return Publication(
        month_end=month_end,
        definition_version=definition_version,
        customers=customers,
        segment_sizes=segment_sizes(con, month_end),
        export_path=export_path,
    )


EXPORT_COLUMNS = "customer_id, month_end, segment_id, definition_version, months_in_segment"


def month_export_dir(export_dir: Path, month_end: date) -> Path:
    return Path(export_dir) / "segment_membership" / f"month_end={month_end.isoformat()}"


def staging_dir(export_dir: Path) -> Path:
    """Where exports are written before they are complete: beside, never inside, the tree
    that downstream tools read."""
    return Path(export_dir) / ".staging"


def export_build(
    con: duckdb.DuckDBPyConnection, month_end: date, export_dir: Path, run_id: str
) -> Path:
    """Write the build's membership for the month as Parquet, under a name of its own.

    Written in the staging folder and renamed into the month's folder once complete, so
    no reader ever finds half a file where exports live.
    """
    target_dir = month_export_dir(export_dir, month_end)
    target_dir.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(export_dir)
    staging.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    name = f"membership-{stamp}-{(run_id or 'adhoc')[:8]}.parquet"
    partial = staging / f"{month_end.isoformat()}-{name}.partial"
    con.execute(
        f"copy (select {EXPORT_COLUMNS} from build.segment_membership where month_end = ? "
        f"order by customer_id) to '{str(partial).replace(chr(39), chr(39) * 2)}' "
        "(format parquet, compression zstd)",
        [month_end],
    )
    crash_point("export")
    target = target_dir / name
    os.replace(partial, target)
    return target


def tidy_exports(con: duckdb.DuckDBPyConnection, export_dir: Path) -> list[Path]:
    """Remove what a failed or killed publish left behind: partial files in staging, and
    export files no publication refers to. Returns what was removed."""
    referenced = {
        str(Path(path).resolve())
        for (path,) in con.execute(
            "select export_path from published.publications where export_path is not null"
        ).fetchall()
    }
    removed: list[Path] = []
    staging = staging_dir(export_dir)
    if staging.exists():
        for leftover in staging.iterdir():
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    tree = Path(export_dir) / "segment_membership"
    if tree.exists():
        for file in tree.glob("month_end=*/*.parquet"):
            if str(file.resolve()) not in referenced:
                file.unlink(missing_ok=True)
                removed.append(file)
        for leftover in tree.glob("month_end=*/.*.partial"):
            leftover.unlink(missing_ok=True)  # written by earlier versions
            removed.append(leftover)
    return removed


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
