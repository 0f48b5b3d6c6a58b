"""dbt models as Dagster assets: a translator for their specs and two partitioned groups.

The features inputs (staging, intermediate) and the segment marts are separate asset
definitions because the Python churn fit sits between them: it reads the purchase history
that the intermediate layer builds and writes the parameters the marts score with.
"""

import json
import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.platform.crash_points import crash_point
from segment_cadence.platform.partitions import monthly_partitions, refresh_window
from segment_cadence.platform.resources import (
    WAREHOUSE_POOL,
    ConfigFiles,
    WarehouseResource,
    dbt_project,
    prepare_dbt_project,
)

LAYER_GROUPS = {"staging": "features", "intermediate": "features", "marts": "segments"}
LAYER_OWNERS = {"staging": "team:data-engineering", "intermediate": "team:data-engineering",
                "marts": "team:segmentation-owner"}  # fmt: skip


BUILD_PREFIX = "Build (not yet published): "


def layer_of(dbt_resource_props: Mapping[str, Any]) -> str:
    """staging, intermediate or marts: the folder under models/."""
    fqn = dbt_resource_props["fqn"]
    return fqn[1] if len(fqn) > 2 else "marts"


class SegmentCadenceTranslator(DagsterDbtTranslator):
    """Groups, owners and keys for dbt resources.

    Sources keep their (schema, table) keys so that they line up with the Python assets
    that write them (raw.*, churn.bgnbd_params, governance.segment_dictionary). The
    published source is read only for the previous month and is written downstream by the
    publish asset, so it is not an upstream dependency (that would be a cycle).
    """

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: Any
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        deps = [d for d in spec.deps if d.asset_key.path[0] != "published"]
        return spec.replace_attributes(deps=deps)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
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


translator = SegmentCadenceTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True)
)


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
# which closes the warehouse after each query (dbt_project/profiles.yml, keep_open).
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
):
    """`dbt build` for the selected models and the partition's month, streaming results."""
    prepare_dbt_project(warehouse.path)
    with warehouse.connect():
        pass  # schemas and Python-owned tables exist before dbt reads them
    variables = dbt_vars(
        context.partition_key, config_files.once("segments", segment_dictionary.load)
    )
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
    events = dbt.cli(args, context=context).stream()
    fetch = dbt_metadata()
    if "row_counts" in fetch:
        events = events.fetch_row_counts()
    if "columns" in fetch:
        events = events.fetch_column_metadata()
    for event in events:
        yield event
        crash_point("dbt")


@dbt_assets(
    pool=WAREHOUSE_POOL,
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select="path:models/staging path:models/intermediate",
    dagster_dbt_translator=translator,
    partitions_def=monthly_partitions,
    name="features_inputs",
)
def features_inputs(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
):
    """Staging views over the raw sources and per-customer history as of the month's end."""
    yield from run_dbt(context, dbt, warehouse, config_files)


@dbt_assets(
    pool=WAREHOUSE_POOL,
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select="path:models/marts",
    dagster_dbt_translator=translator,
    partitions_def=monthly_partitions,
    name="segment_marts",
)
def segment_marts(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
):
    """Features, membership, transitions and KPIs for the month, built in the build schema."""
    yield from run_dbt(context, dbt, warehouse, config_files)
