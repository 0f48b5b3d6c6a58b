"""Raw sources: the user's files loaded through config/sources.yaml, bad rows quarantined."""

import dagster as dg

from segment_cadence.defs.ingest import ingest
from segment_cadence.platform import history, markdown, paths
from segment_cadence.platform.resources import (
    WAREHOUSE_POOL,
    ConfigFiles,
    WarehouseResource,
    prepare_dbt_project,
)

QUARANTINE_WARN_RATE = 0.01


def _source_asset(source: str, deps: list[str]) -> dg.AssetsDefinition:
    @dg.asset(
        pool=WAREHOUSE_POOL,
        name=source,
        key_prefix="raw",
        group_name="ingest",
        owners=["team:data-engineering"],
        kinds={"duckdb", "parquet"},
        # After the review gate: unapproved definitions stop the run before any data is written.
        deps=[dg.AssetKey(["raw", d]) for d in deps]
        + [dg.AssetKey(["governance", "segment_dictionary"])],
        description=(
            f"The {source.replace('_', ' ')} file mapped to canonical columns "
            "(config/sources.yaml). Rows that cannot be trusted go to quarantine.rejected_rows "
            "with the reason; unchanged files are not reloaded."
        ),
        tags={"segment_cadence/layer": "ingest"},
    )
    def _load(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
    ) -> dg.MaterializeResult:
        # The ingest rules are the run's first dbt builds: the project is prepared for this
        # warehouse before dbt parses it, as the dbt assets do, so that the run parses once
        # (preparing later would make every parse of this process stale).
        prepare_dbt_project(warehouse.path)
        try:
            config = config_files.once("sources", lambda: ingest.load_config(paths.sources_file()))
            with warehouse.connect() as con, warehouse.front_door(con) as front:
                result = ingest.load(con, config, source, front=front)
                months = ingest.loaded_order_months(con) if source == "orders" else None
                spec = config.sources.get(source)
                matching = ingest.identity_summary(front, spec) if spec else {}
        except (ingest.IngestConfigError, ingest.IngestRulesFailed) as error:
            # A user's mistake: the step fails with the one line the CLI would print, and
            # the failure notice carries it; no traceback.
            raise dg.Failure(description=str(error), allow_retries=False) from None
        if months and not result.skipped and history.record_months(months):
            context.log.info(
                f"orders cover {months.first:%Y-%m} to {months.last:%Y-%m}: the refreshable "
                "months follow when the code location reloads"
            )
        if result.rows_quarantined:
            context.log.warning(
                f"{source}: {result.rows_quarantined} row(s) quarantined: {result.quarantined}"
            )
        reasons = markdown.table(
            ["reason", "rows"], sorted(result.quarantined.items()), empty="No rows quarantined."
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows_loaded,
                "rows_read": result.rows_read,
                "rows_quarantined": result.rows_quarantined,
                "quarantine_rate": (result.rows_quarantined / result.rows_read)
                if result.rows_read
                else 0.0,
                "quarantine_reasons": dg.MetadataValue.md(reasons),
                "unchanged_since_last_load": result.skipped,
                "origin": result.origin,
                **({"identity_map": dg.MetadataValue.json(matching)} if matching else {}),
                "files": dg.MetadataValue.json(result.files),
            }
        )

    @dg.asset_check(
        pool=WAREHOUSE_POOL,
        asset=_load,
        name="quarantine_rate_below_1pct",
        description="Warns when more than 1% of the rows read were quarantined.",
        blocking=False,
    )
    def _quarantine_rate(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as con:
            loaded, quarantined = con.execute(
                f"select (select count(*) from raw.{source}), "
                "(select count(*) from quarantine.rejected_rows where source = ?)",
                [source],
            ).fetchone()
        total = loaded + quarantined
        rate = quarantined / total if total else 0.0
        return dg.AssetCheckResult(
            passed=rate <= QUARANTINE_WARN_RATE,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"quarantine_rate": rate, "rows_quarantined": quarantined},
        )

    return _load, _quarantine_rate


_DEPS = {
    "orders": ["customers"],
    "engagement_events": ["customers"],
    "campaign_sends": ["customers"],
}
ingest_assets = []
ingest_checks = []
for _source in ingest.LOAD_ORDER:
    _asset, _check = _source_asset(_source, _DEPS.get(_source, []))
    ingest_assets.append(_asset)
    ingest_checks.append(_check)


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["raw", "identity_map"],
    group_name="ingest",
    owners=["team:data-engineering"],
    kinds={"duckdb"},
    deps=[dg.AssetKey(["raw", source]) for source in ingest.LOAD_ORDER],
    description=(
        "The identity map: customers matched by normalised email or phone where a source "
        "names them that way (identity in config/sources.yaml). Its size, the keys two "
        "customers share, and each matched source's match rate; built with the customers."
    ),
    tags={"segment_cadence/layer": "ingest"},
)
def identity_map(warehouse: WarehouseResource, config_files: ConfigFiles) -> dg.MaterializeResult:
    config = config_files.once("sources", lambda: ingest.load_config(paths.sources_file()))
    with warehouse.connect(read_only=True) as con, warehouse.front_door(con) as front:
        summaries = {
            name: ingest.identity_summary(front, spec) for name, spec in config.sources.items()
        }
    summaries = {name: summary for name, summary in summaries.items() if summary}
    rates = {name: s["match_rate"] for name, s in summaries.items() if "match_rate" in s}
    customers = summaries.get("customers", {})
    return dg.MaterializeResult(
        metadata={
            "in_use": bool(summaries),
            "matched_on": customers.get("identity", "none"),
            "keys": customers.get("keys", 0),
            "ambiguous_keys": customers.get("ambiguous_keys", 0),
            "match_rates": dg.MetadataValue.json(rates),
            "sources": dg.MetadataValue.json(summaries),
        }
    )


ingest_assets.append(identity_map)
