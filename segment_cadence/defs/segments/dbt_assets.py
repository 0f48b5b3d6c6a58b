"""dbt models as Dagster assets: translators for their specs and three partitioned groups.

The features inputs (staging, intermediate, the per-version dictionary) and the segment marts
are separate asset definitions because the Python churn fit sits between them: it reads the
purchase history that the intermediate layer builds, and its parameters (kept in the state
store) reach the marts' run as vars, from which dbt keeps churn.bgnbd_params. The
governance and health models (red flags, the audit trail, the bias audit, health metrics,
migration rates) are a third: they read the month just published, so they run after the
publish asset and the firewall.
"""

import json
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)
from dagster_dbt.asset_utils import (
    get_manifest_and_translator_from_dbt_assets,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_event import DbtCoreCliEventMessage

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.governance import governance
from segment_cadence.defs.segments import churn, outlook
from segment_cadence.platform import dbt_in_process, state_store
from segment_cadence.platform.crash_points import crash_point
from segment_cadence.platform.partitions import ONE_MONTH_A_RUN, monthly_partitions, refresh_window
from segment_cadence.platform.resources import (
    WAREHOUSE_POOL,
    ConfigFiles,
    WarehouseResource,
    dbt_project,
    prepare_dbt_project,
)
from segment_cadence.platform.warehouse import WarehouseConnection

LAYER_GROUPS = {
    "staging": "features",
    "intermediate": "features",
    "marts": "segments",
    "governance": "governance",
    "health": "health",
    "published": "published",
    "churn": "features",
    "definitions": "definitions",
}
LAYER_OWNERS = {
    "staging": "team:data-engineering",
    "intermediate": "team:data-engineering",
    "marts": "team:segmentation-owner",
    "governance": "team:operations",
    "health": "team:segmentation-owner",
    "published": "team:segmentation-owner",
    "churn": "team:data-engineering",
    "definitions": "team:segmentation-owner",
}
PUBLISHED = dg.AssetKey(["published", "segment_membership"])
GATE = dg.AssetKey(["build", "publish_gate"])
FIREWALL = dg.AssetKey(["governance", "planned_campaign_checks"])


BUILD_PREFIX = "Build (not yet published): "


def layer_of(dbt_resource_props: Mapping[str, Any]) -> str:
    """staging, intermediate or marts: the folder under models/."""
    fqn = dbt_resource_props["fqn"]
    return fqn[1] if len(fqn) > 2 else "marts"


def fed_by(manifest: Mapping[str, Any], unique_id: str) -> list[dg.AssetKey]:
    """The Python assets whose results a model is built from as vars (its yml's meta
    segment_cadence.fed_by): upstream of the model although dbt reads no table of theirs."""
    node = manifest.get("nodes", {}).get(unique_id, {})
    meta = node.get("config", {}).get("meta", {}) or node.get("meta", {})
    return [dg.AssetKey(key) for key in meta.get("segment_cadence", {}).get("fed_by", [])]


class SegmentCadenceTranslator(DagsterDbtTranslator):
    """Groups, owners and keys for dbt resources.

    Sources keep their (schema, table) keys so that they line up with the Python assets
    that write them (raw.*). A model built from vars declares the Python asset that decides
    them (meta segment_cadence.fed_by: the churn fit, the dictionary in force). The
    published source is read only for the previous month and is written downstream by the
    publish asset, so it is not an upstream dependency (that would be a cycle).
    """

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        deps = [d for d in spec.deps if d.asset_key.path[0] != "published"]
        deps += [dg.AssetDep(key) for key in fed_by(manifest, unique_id)]
        return spec.replace_attributes(deps=deps)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        group = dbt_resource_props.get("config", {}).get("meta", {}).get("dagster", {})
        if group.get("group"):
            return group["group"]
        if dbt_resource_props["resource_type"] == "source":
            return {"raw": "ingest", "churn": "features", "governance": "definitions"}.get(
                dbt_resource_props["source_name"], "published"
            )
        return LAYER_GROUPS.get(layer_of(dbt_resource_props), "segments")

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        """The marts are the build of what gets published (build/segment_membership becomes
        published/segment_membership once its checks pass); their descriptions say so first,
        so the two are told apart at a glance in the UI."""
        description = super().get_description(dbt_resource_props)
        if (
            dbt_resource_props["resource_type"] == "model"
            and layer_of(dbt_resource_props) == "marts"
        ):
            return f"{BUILD_PREFIX}{description}"
        return description

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        layer = dbt_resource_props.get("fqn", ["", "marts"])[1]
        return [LAYER_OWNERS.get(layer, "team:data-engineering")]


class AnalysisTranslator(SegmentCadenceTranslator):
    """The governance and health models read the month just published, so the publish asset
    is a real upstream dependency here: every published.* table they read is written by it
    (one asset, published/segment_membership). The ops.* tables are the firewall's records,
    written by the planned_campaign_checks asset. The quarantine table is written by the
    ingest assets, which the raw sources already depend on."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetSpec:
        spec = DagsterDbtTranslator.get_asset_spec(self, manifest, unique_id, project)
        deps, seen = [], set()
        for dep in spec.deps:
            if dep.asset_key.path[0] == "quarantine":
                continue
            key = {"published": PUBLISHED, "ops": FIREWALL}.get(dep.asset_key.path[0])
            dep = dg.AssetDep(key) if key else dep
            if dep.asset_key not in seen:
                seen.add(dep.asset_key)
                deps.append(dep)
        return spec.replace_attributes(deps=deps)


class PublishedTranslator(SegmentCadenceTranslator):
    """The published models (models/published) read the build marts, which are their real
    upstream dependencies, and each other (the views read the store and the ledger). They
    also wait for the publish gate, a Python asset dbt knows nothing of: a held month never
    reaches them."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetSpec:
        spec = DagsterDbtTranslator.get_asset_spec(self, manifest, unique_id, project)
        if dbt_resource_type(manifest, unique_id) != "model":
            return spec
        return spec.replace_attributes(deps=[*spec.deps, dg.AssetDep(GATE)])


def dbt_resource_type(manifest: Mapping[str, Any], unique_id: str) -> str | None:
    """model, source, test, ... of a node of the manifest."""
    node = manifest.get("nodes", {}).get(unique_id) or manifest.get("sources", {}).get(unique_id)
    return node.get("resource_type") if node else None


settings = DagsterDbtTranslatorSettings(enable_asset_checks=True)
translator = SegmentCadenceTranslator(settings=settings)
published_translator = PublishedTranslator(settings=settings)
analysis_translator = AnalysisTranslator(settings=settings)


def dbt_vars(
    partition_key: str, dictionary: segment_dictionary.SegmentDictionary | None = None
) -> dict[str, Any]:
    """Everything a monthly dbt run needs: the window and the compiled dictionary (the one in
    force unless given)."""
    month_end, previous_month_end = refresh_window(partition_key)
    dictionary = dictionary or segment_dictionary.load()
    priority = {s.id: s.priority for s in dictionary.segments}
    return {
        "month_end": month_end.isoformat(),
        "previous_month_end": previous_month_end.isoformat(),
        "definition_version": segment_dictionary.definition_version(dictionary),
        "segment_ids": [s.id for s in dictionary.segments],
        "business_rules": [
            {
                "id": rule.id,
                "applies_to": rule.applies_to_sql,
                "allowed_segments": [s for s, p in priority.items() if p <= rule.max_priority],
            }
            for rule in dictionary.business_rules
        ],
        **dictionary.dbt_vars(),
    }


# A run with this tag rebuilds the incremental monthly history from scratch (dbt's
# --full-refresh) instead of only the slices the month needs; `segment-cadence refresh
# --full-rebuild` sets it. Rarely needed: changed source months and changed model SQL are
# rebuilt anyway (dbt_project/macros/monthly_slices.sql).
FULL_REBUILD_TAG = "segment_cadence/full_rebuild"


# Row counts and column types on the dbt assets (dagster-dbt's fetch_row_counts and
# fetch_column_metadata) are opt-in: SEGMENT_CADENCE_DBT_METADATA=row_counts,columns. Each
# costs about a third of a small monthly refresh (README, "Performance"): dagster-dbt reads
# them through its adapter in this process once dbt has finished (DuckDB has one writer),
# which closes the warehouse after each query (dbt_project/profiles.yml, keep_open). Asked
# for, dbt runs as dagster-dbt's own process; otherwise in this one (in_process_events).
DBT_METADATA = ("row_counts", "columns")


def dbt_metadata() -> set[str]:
    """What SEGMENT_CADENCE_DBT_METADATA asks dagster-dbt to fetch after each dbt run."""
    asked = {v.strip() for v in os.environ.get("SEGMENT_CADENCE_DBT_METADATA", "").split(",")}
    return asked & set(DBT_METADATA)


def run_dbt(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
    extra_vars: dict[str, Any] | None = None,
):
    """`dbt build` for the selected models and the partition's month, streaming results."""
    prepare_dbt_project(warehouse.path)
    with warehouse.connect():
        pass  # schemas and Python-owned tables exist before dbt reads them
    variables = dbt_vars(
        context.partition_key, config_files.once("segments", segment_dictionary.load)
    ) | (extra_vars or {})
    context.log.info(
        f"Refreshing {variables['month_end']} with definition version "
        f"{variables['definition_version']}"
    )
    # Passed through the environment, not --vars: see dbt_project/macros/cadence_var.sql.
    os.environ["SEGMENT_CADENCE_DBT_VARS"] = json.dumps(variables)
    # dbt's unit tests check the SQL, not the month's data: they run in development and CI
    # (`dbt test --select test_type:unit`, tests/test_dbt_unit_tests.py), not every refresh.
    args = ["build", "--exclude-resource-type", "unit_test"]
    if context.run.tags.get(FULL_REBUILD_TAG) == "true":
        args.append("--full-refresh")
    fetch = dbt_metadata()
    events = None if fetch else in_process_events(context, args)
    if events is None:
        events = dbt.cli(args, context=context).stream()
        if "row_counts" in fetch:
            events = events.fetch_row_counts()
        if "columns" in fetch:
            events = events.fetch_column_metadata()
    for event in events:
        yield event
        crash_point("dbt")


def in_process_events(context: dg.AssetExecutionContext, args: list[str]) -> Iterator | None:
    """The asset's dbt build run in this process (segment_cadence/platform/dbt_in_process.py)
    and its results turned into Dagster events by dagster-dbt, as `dbt.cli(...).stream()`
    does for a dbt process: the same selection for the asset subset the run asked for, the
    same materializations and check results. None when dagster-dbt would run a copy of the
    project (a selection too long for the command line), which only its own process does."""
    manifest, translator, project = get_manifest_and_translator_from_dbt_assets(
        [context.assets_def]
    )
    params = get_updated_cli_invocation_params_for_context(
        context=context, manifest=manifest, dagster_dbt_translator=translator
    )
    if params.dbt_project is not None and Path(params.dbt_project.project_dir) != Path(
        dbt_project.project_dir
    ):
        return None
    selection = list(params.selection_args)
    if params.indirect_selection:
        selection += ["--indirect-selection", params.indirect_selection]
    target = dbt_in_process.unique_target_path(context.op.name)
    return _translated(context, [*args, *selection], target, params.manifest, translator)


def _translated(
    context: dg.AssetExecutionContext,
    args: list[str],
    target: Path,
    manifest: Mapping[str, Any],
    translator: DagsterDbtTranslator,
) -> Iterator:
    console: list[str] = []
    try:
        for raw_event in dbt_in_process.stream_events(args, target, console):
            message = DbtCoreCliEventMessage(raw_event=raw_event, event_history_metadata={})
            yield from message.to_default_asset_events(
                manifest=manifest,
                dagster_dbt_translator=translator,
                context=context,
                target_path=target,
                project=dbt_project,
            )
    except dbt_in_process.DbtBuildFailed as error:
        context.log.info("dbt:\n" + "\n".join(console))
        raise dg.Failure(
            description=f"dbt build failed: {error} (dbt's log: {target / 'dbt.log'})"
        ) from None
    # What dbt would have printed, as one message in the run's logs (one event, not one a
    # line: every event is a write to the event log).
    context.log.info("dbt:\n" + "\n".join(console))
    # A build that succeeded leaves nothing to read: its compiled SQL and log would only pile
    # up, one directory a step a run (a failed one keeps them, its log named above).
    shutil.rmtree(target, ignore_errors=True)


def monthly_dbt_assets(
    name: str, select: str, dagster_dbt_translator: DagsterDbtTranslator = translator
) -> Callable:
    """What every monthly group of dbt models shares: the month's partition, the manifest
    dagster-dbt prepared, and the warehouse's one-writer pool. The groups differ only in the
    models they select, how their keys and dependencies are read, and the Python around them."""
    return dbt_assets(
        pool=WAREHOUSE_POOL,
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        select=select,
        dagster_dbt_translator=dagster_dbt_translator,
        partitions_def=monthly_partitions,
        backfill_policy=ONE_MONTH_A_RUN,
        name=name,
    )


@monthly_dbt_assets(
    "features_inputs", "path:models/staging path:models/intermediate path:models/definitions"
)
def features_inputs(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
):
    """Staging views over the raw sources, per-customer history as of the month's end, and
    the dictionary in force kept under its definition version."""
    yield from run_dbt(context, dbt, warehouse, config_files)


@monthly_dbt_assets("segment_marts", "path:models/churn path:models/marts")
def segment_marts(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
):
    """The month's churn and spend fits (from the state store, as vars) and its purchase
    outlook (a Parquet file computed here from the fit), then features, membership,
    transitions and KPIs for the month, built in the build schema."""
    month_end, _ = refresh_window(context.partition_key)
    with warehouse.connect(read_only=True) as con:
        variables = marts_vars(con, month_end)
    yield from run_dbt(context, dbt, warehouse, config_files, variables)


def marts_vars(con: WarehouseConnection, month_end: date) -> dict[str, Any]:
    """What the marts' dbt run needs beyond the month: its recorded churn and spend fits,
    and its purchase outlook, computed from them and written for dbt to read."""
    record = state_store.churn_fit(month_end)
    outlook_file = outlook.write_month_outlook(con, month_end, record)
    return {**churn.dbt_vars(record), "purchase_outlook_file": outlook_file}


@monthly_dbt_assets(
    "governance_and_health_models", "path:models/governance path:models/health", analysis_translator
)
def governance_and_health_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
):
    """The analysis tables of the published month, each kept per month: red flags, pressure
    patterns, the audit trail, the bias audit, health metrics and migration rates."""
    with warehouse.connect() as con:
        # The firewall's records as they stand now (planned_campaign_checks copied them too,
        # but a check made since then counts).
        state_store.copy_firewall_records(con)
    governance_config = config_files.once("governance", governance.load)
    yield from run_dbt(
        context, dbt, warehouse, config_files, governance.dbt_vars(governance_config)
    )
