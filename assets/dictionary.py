"""The segment dictionary in force: validated, versioned and written where dbt can join it."""

import dagster as dg

from orchestration.resources import WarehouseResource
from segment_cadence import definitions, thresholds, versions


@dg.asset(
    key=["governance", "segment_dictionary"],
    group_name="definitions",
    owners=["team:segmentation-owner"],
    kinds={"yaml", "duckdb"},
    description=(
        "config/segments.yaml and config/thresholds.yaml, checked against the approval ledger "
        "(unapproved changes stop the run before any data is written), validated before "
        "anything runs (unknown columns, unsafe SQL, "
        "sensitive attributes, duplicate ids or priorities, missing fallback) and recorded "
        "under its definition version."
    ),
)
def segment_dictionary(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    try:
        dictionary = definitions.load()
        approved = versions.check_approved()
        version = definitions.definition_version(dictionary)
    except (
        definitions.DefinitionError,
        versions.ApprovalError,
        thresholds.ThresholdError,
    ) as error:
        # The review gate: nothing downstream (ingest included) runs on unapproved definitions
        # or thresholds.
        raise dg.Failure(description=str(error)) from None
    for warning in dictionary.warnings:
        context.log.warning(warning)
    rows = [
        (version, s.id, s.name, s.description, s.owner, s.priority, s.rule, s.paused,
         s.pause_reason, s.min_size, s.status, s.fallback)
        for s in dictionary.all_segments
    ]  # fmt: skip
    with warehouse.connect() as con:
        con.execute("begin transaction")
        con.execute(
            "delete from governance.segment_dictionary where definition_version = ?", [version]
        )
        con.executemany(
            "insert into governance.segment_dictionary values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        con.execute(
            "delete from governance.definition_versions where definition_version = ?", [version]
        )
        con.execute(
            "insert into governance.definition_versions "
            "values (?, ?, ?, ?, ?, ?, ?, current_timestamp)",
            [
                version,
                approved.number,
                approved.digest,
                approved.author,
                approved.reason,
                approved.approved_by,
                approved.approved_at,
            ],  # fmt: skip
        )
        con.execute("commit")
    table = "\n".join(
        f"| {s.priority} | {s.id} | {s.name} | {'paused' if s.paused else ''} | "
        f"`{s.rule or 'fallback'}` |"
        for s in dictionary.segments
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
            "dictionary": dg.MetadataValue.md(
                "| priority | id | name | paused | rule |\n|---|---|---|---|---|\n" + table
            ),
        }
    )
