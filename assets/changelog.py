"""The changelog and the archive of retired segments, shown in the Dagster UI."""

import dagster as dg

from orchestration.resources import WarehouseResource
from segment_cadence import changelog


@dg.asset(
    key=["governance", "changelog"],
    group_name="governance",
    owners=["team:segmentation-owner"],
    kinds={"duckdb", "markdown"},
    deps=[dg.AssetKey(["published", "segment_membership"])],
    description=(
        "Append-only record of every definition version (what changed, segment by segment, in "
        "words), ungoverned edits, every publication and each month's review pack; plus the "
        "archive of retired segments with their rationale and last size. Re-running adds "
        "nothing twice."
    ),
)
def definition_changelog(warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        con.execute("begin transaction")
        added = changelog.refresh_changelog(con)
        con.execute("commit")
        recent = con.execute(
            "select recorded_at, kind, coalesce(version_label, ''), summary "
            "from governance.changelog order by recorded_at desc, entry_id desc limit 15"
        ).fetchall()
        total = con.execute("select count(*) from governance.changelog").fetchone()[0]
        retired = con.execute(
            "select segment_id, rationale, retired_in_version, last_size "
            "from governance.retired_segments order by segment_id"
        ).fetchall()
    lines = [
        f"### {kind} {label} ({at:%Y-%m-%d})\n{summary}" for at, kind, label, summary in recent
    ]
    archive = "\n".join(f"| {s} | {why} | {v} | {size} |" for s, why, v, size in retired)
    return dg.MaterializeResult(
        metadata={
            "entries": total,
            "added_this_run": len(added),
            "recent_entries": dg.MetadataValue.md("\n\n".join(lines) or "No entries yet."),
            "retired_segments": dg.MetadataValue.md(
                "| segment | rationale | retired in | last size |\n|---|---|---|---|\n" + archive
                if archive
                else "No retired segments."
            ),
        }
    )


@dg.asset(
    key=["published", "segment_migration_rates"],
    group_name="published",
    owners=["team:segmentation-owner"],
    kinds={"duckdb"},
    deps=[dg.AssetKey(["published", "segment_membership"])],
    description=(
        "Migration rates per segment and month (share of last month's members who left, share "
        "of this month's members who arrived, retention): the view "
        "published.segment_migration_rates, ready for the health thresholds."
    ),
)
def segment_migration_rates(warehouse: WarehouseResource) -> dg.MaterializeResult:
    with warehouse.connect() as con:
        rows = con.execute(
            "select month_end, segment_id, migration_out_rate, migration_in_rate "
            "from published.segment_migration_rates "
            "where month_end >= (select max(month_end) from published.segment_kpis) - interval 365 day "
            "order by segment_id, month_end"
        ).fetchall()
    table = "\n".join(
        f"| {m:%Y-%m} | {s} | {'' if o is None else f'{o:.1%}'} | {'' if i is None else f'{i:.1%}'} |"
        for m, s, o, i in rows
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(rows),
            "last_12_months": dg.MetadataValue.md(
                "| month | segment | out | in |\n|---|---|---|---|\n" + table
                if table
                else "No data."
            ),
        }
    )
