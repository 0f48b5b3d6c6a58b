"""The dictionary room's assets: the segment dictionary in force (validated, versioned and
handed to dbt as vars, which keeps it per version), the changelog and archive of retired segments shown in the
Dagster UI, and the published migration rates.
"""

import dagster as dg
from sqlalchemy import func, select

from segment_cadence.defs.dictionary import changelog, versions

# Aliased: the asset below is named segment_dictionary too.
from segment_cadence.defs.dictionary import segment_dictionary as dictionary_module
from segment_cadence.defs.health import thresholds
from segment_cadence.platform import markdown, state_store
from segment_cadence.platform.resources import WAREHOUSE_POOL, ConfigFiles, WarehouseResource


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["governance", "segment_dictionary"],
    group_name="definitions",
    owners=["team:segmentation-owner"],
    kinds={"yaml", "duckdb"},
    description=(
        "config/segments.yaml and config/thresholds.yaml, checked against the approval ledger "
        "(unapproved changes stop the run before any data is written), validated before "
        "anything runs (unknown columns, unsafe SQL, "
        "sensitive attributes, duplicate ids or priorities, missing fallback) and recorded "
        "under its definition version; its segments reach dbt as vars "
        "(governance/segment_dictionary_versions keeps them per version). Copies the firewall records from the state store to "
        "ops.firewall_checks, ops.firewall_blocked and ops.exception_requests for the "
        "governance metrics."
    ),
)
def segment_dictionary(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
) -> dg.MaterializeResult:
    try:
        dictionary = config_files.once("segments", dictionary_module.load)
        approved = versions.check_approved()
        version = dictionary_module.definition_version(dictionary)
    except (
        dictionary_module.DefinitionError,
        versions.ApprovalError,
        thresholds.ThresholdError,
    ) as error:
        # The review gate: nothing downstream (ingest included) runs on unapproved definitions
        # or thresholds.
        raise dg.Failure(description=str(error)) from None
    for warning in dictionary.warnings:
        context.log.warning(warning)
    # The dictionary's rows reach the warehouse as dbt vars: the dbt model
    # governance.segment_dictionary_versions keeps them per version (SegmentDictionary.dbt_vars).
    with warehouse.connect() as con:
        # Operational state lives in the state store: an older warehouse's alerts, firewall
        # records and governance records move there once (before this run records anything),
        # and the governance analytics downstream get this month's copy of the firewall
        # records (ops.*) before dbt and the red flags run.
        moved = state_store.migrate_from_warehouse(con)
        with state_store.transaction() as state:
            changelog.record_definition_version(state, version, approved)
        copied = state_store.copy_firewall_records(con)
    if moved:
        context.log.info(f"moved operational state from the warehouse to the state store: {moved}")
    table = markdown.table(
        ["priority", "id", "name", "paused", "rule"],
        [
            (s.priority, s.id, s.name, "paused" if s.paused else "", f"`{s.rule or 'fallback'}`")
            for s in dictionary.segments
        ],
    )
    return dg.MaterializeResult(
        metadata={
            "definition_version": version,
            "approved_version": approved.label,
            "approved_by": approved.approved_by,
            "approved_at": approved.approved_at,
            "segments": len(dictionary.segments),
            "paused_segments": dg.MetadataValue.json(
                [s.id for s in dictionary.segments if s.paused]
            ),
            "language_warnings": dg.MetadataValue.json(list(dictionary.warnings)),
            "firewall_records_copied": dg.MetadataValue.json(copied),
            "dictionary": dg.MetadataValue.md(table),
        }
    )


@dg.asset(
    pool=WAREHOUSE_POOL,
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
    with warehouse.connect() as con, state_store.transaction() as state:
        added = changelog.refresh_changelog(state, con)
        recent = changelog.recent_entries(state)
        total = state.execute(select(func.count()).select_from(state_store.changelog)).scalar_one()
        retired = changelog.retired_archive(state)
    recent = [(at, kind, label or "", summary) for at, kind, label, summary in recent]
    lines = [
        f"### {kind} {label} ({at:%Y-%m-%d})\n{summary}" for at, kind, label, summary in recent
    ]
    archive = markdown.table(
        ["segment", "rationale", "retired in", "last size"], retired, empty="No retired segments."
    )
    return dg.MaterializeResult(
        metadata={
            "entries": total,
            "added_this_run": len(added),
            "recent_entries": dg.MetadataValue.md("\n\n".join(lines) or "No entries yet."),
            "retired_segments": dg.MetadataValue.md(archive),
        }
    )
