"""Publishing a month: from the build schema to what consumers read, all or nothing.

dbt rebuilds a month in the `build` schema. Consumers (campaign tools, the firewall,
reports) read only `published`. The published tables are dbt models (models/published,
macros/publication.sql): store models keep each publication's rows by (month_end,
publication_id), the ledger `published.publications` names the publication in force per
month, and the views consumers read join the two. Replacing the ledger's row is the single
commit point, so a refresh that fails or is killed before it leaves the last published month
exactly as it was, and re-publishing a month replaces it, never appends.

What is not SQL stays here: refusing a build that is missing, incomplete or for another
month; the Parquet export, written from the build before the commit and recorded in the
ledger; tidying exports no publication refers to. The dbt run sits between the two halves
(`prepare_publication`, then dbt, then `complete_publication` or `abandon_publication`):
the Dagster asset runs it through dagster-dbt, `publish_month` through dbt's own runner.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb

from segment_cadence.platform import dbt_in_process
from segment_cadence.platform.crash_points import crash_point
from segment_cadence.platform.warehouse import export_parquet, table_exists

PUBLISHED_TABLES = ("segment_membership", "segment_transitions", "segment_kpis")

# dbt's selection of the published models, and the variable dbt reads the refresh's
# parameters from (dbt_project/macros/cadence_var.sql).
PUBLISHED_MODELS = "path:models/published"
DBT_VARS_ENV = "SEGMENT_CADENCE_DBT_VARS"


class PublishError(RuntimeError):
    """The build is not fit to publish, or the publication did not commit; what readers see
    was not changed."""


@dataclass(frozen=True)
class PublicationRequest:
    """One publication on its way: checked, exported, not yet committed by the ledger."""

    month_end: date
    definition_version: str
    publication_id: str
    run_id: str
    customers: int
    export_path: str | None
    version_label: str | None

    def dbt_vars(self) -> dict[str, Any]:
        """What the published models need of it (dbt_project/macros/publication.sql)."""
        return {
            "month_end": self.month_end.isoformat(),
            "definition_version": self.definition_version,
            "publication_id": self.publication_id,
            "run_id": self.run_id,
            "export_path": self.export_path or "",
            "version_label": self.version_label or "",
        }


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


def prepare_publication(
    con: duckdb.DuckDBPyConnection,
    month_end: date,
    definition_version: str,
    run_id: str = "",
    export_dir: Path | None = None,
    version_label: str | None = None,
) -> PublicationRequest:
    """Check the build and write its export, before dbt writes anything readers could see.

    The export goes to a path of its own (the month and the run) that the ledger will
    record; until then no reader follows it.
    """
    customers = check_build(con, month_end, definition_version)
    if export_dir is not None:
        tidy_exports(con, Path(export_dir))
    export_path = (
        str(export_build(con, month_end, Path(export_dir), run_id)) if export_dir else None
    )
    return PublicationRequest(
        month_end=month_end,
        definition_version=definition_version,
        publication_id=run_id or f"adhoc-{uuid.uuid4().hex}",
        run_id=run_id,
        customers=customers,
        export_path=export_path,
        version_label=version_label,
    )


def publication_in_force(con: duckdb.DuckDBPyConnection, month_end: date) -> str | None:
    """The publication the ledger names for the month, if any."""
    if not table_exists(con, "published", "publications"):
        return None
    row = con.execute(
        "select publication_id from published.publications where month_end = ?", [month_end]
    ).fetchone()
    return row[0] if row else None


def committed(con: duckdb.DuckDBPyConnection, request: PublicationRequest) -> bool:
    return publication_in_force(con, request.month_end) == request.publication_id


def abandon_publication(con: duckdb.DuckDBPyConnection, request: PublicationRequest) -> None:
    """After a failed dbt run: remove the export unless the ledger committed it (a failure
    after the commit, a view's test for one, leaves a publication that refers to it)."""
    if request.export_path and not committed(con, request):
        Path(request.export_path).unlink(missing_ok=True)


def complete_publication(
    con: duckdb.DuckDBPyConnection, request: PublicationRequest, export_dir: Path | None = None
) -> Publication:
    """After dbt: make sure the ledger committed this publication, then tidy the exports."""
    if not committed(con, request):
        raise PublishError(
            f"the ledger does not name publication {request.publication_id} for "
            f"{request.month_end}: the published models did not run; nothing was changed"
        )
    if export_dir is not None:
        tidy_exports(con, Path(export_dir))
    return Publication(
        month_end=request.month_end,
        definition_version=request.definition_version,
        customers=request.customers,
        segment_sizes=segment_sizes(con, request.month_end),
        export_path=request.export_path,
    )


def publish_month(
    con: duckdb.DuckDBPyConnection,
    month_end: date,
    definition_version: str,
    run_id: str = "",
    export_dir: Path | None = None,
    version_label: str | None = None,
    run_models: Callable[[duckdb.DuckDBPyConnection, PublicationRequest], None] | None = None,
) -> Publication:
    """Replace the month in `published` with the build and its export, as one unit.

    The export is written first, from the build, to a path of its own; the dbt run of the
    published models then writes the store and commits the ledger, which records that path.
    Readers follow the ledger, so they see either the old month with its old export or the
    new month with its new one: a failure or a kill before the commit leaves the old pair in
    force, and the next publish removes the unreferenced file. `run_models` runs the
    published models (default: dbt's own runner in this process, `run_published_models`).
    """
    request = prepare_publication(
        con, month_end, definition_version, run_id, export_dir, version_label
    )
    try:
        (run_models or run_published_models)(con, request)
    except BaseException:
        crash_point("publish_transaction")
        abandon_publication(con, request)
        raise
    return complete_publication(con, request, export_dir)


def run_published_models(con: duckdb.DuckDBPyConnection, request: PublicationRequest) -> None:
    """`dbt build` of the published models in this process, on the connection's warehouse
    (the same DuckDB file, shared within the process). For callers outside Dagster; the
    asset runs the same models through dagster-dbt."""
    try:
        dbt_in_process.build(con, dbt_in_process.DbtBuild((PUBLISHED_MODELS,), request.dbt_vars()))
    except dbt_in_process.DbtBuildFailed as error:
        raise PublishError(
            f"the published models failed for {request.month_end}: {error}"
        ) from None


EXPORT_COLUMNS = (
    "customer_id, month_end, segment_id, definition_version, months_in_segment, holdout"
)


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
    export_parquet(
        con,
        f"select {EXPORT_COLUMNS} from build.segment_membership where month_end = ? "
        "order by customer_id",
        [month_end],
        partial,
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
        for (path,) in (
            con.execute(
                "select export_path from published.publications where export_path is not null"
            ).fetchall()
            if table_exists(con, "published", "publications")
            else []
        )
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
