"""The quarterly strategic refresh: a candidate definition version, proven in staging."""

import json
import os
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.strategic import candidate, strategic
from segment_cadence.platform import paths, state_store, yaml_text
from segment_cadence.platform.partitions import quarter_window, quarterly_partitions
from segment_cadence.platform.resources import (
    WAREHOUSE_POOL,
    ConfigFiles,
    WarehouseResource,
    prepare_dbt_project,
)

# The candidate's tables (models/strategic), built by the quarterly re-fit alone.
STRATEGIC_MODELS = "path:models/strategic"


def build_strategic_models(
    dbt: DbtCliResource, warehouse: WarehouseResource, variables: dict[str, Any]
) -> None:
    """`dbt build` of the candidate's tables with the quarter's vars (through the environment,
    as the monthly dbt assets pass theirs), their tests included; a failure stops the step."""
    manifest = prepare_dbt_project(warehouse.path)
    os.environ["SEGMENT_CADENCE_DBT_VARS"] = json.dumps(variables)
    args = ["build", "--select", STRATEGIC_MODELS, "--exclude-resource-type", "unit_test"]
    dbt.cli(args, manifest=manifest).wait()


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["strategic", "candidate_definitions"],
    group_name="strategic",
    owners=["team:segmentation-owner"],
    kinds={"scikitlearn", "duckdb", "yaml"},
    partitions_def=quarterly_partitions,
    deps=[dg.AssetKey(["published", "segment_membership"])],
    description=(
        "Quarterly re-fit: k-means on standardised RFM and engagement features of buyers (k by "
        "best silhouette), stability by bootstrap and previous-quarter adjusted Rand index, "
        "small or indistinct clusters rejected, readable threshold rules from a shallow tree. "
        "The candidate dictionary is computed for the quarter's last published month by the "
        "dbt models of the strategic schema (candidate_membership from the compiled candidate, "
        "cluster_assignments from the labels' Parquet file) and compared with production, in "
        "report.html beside the candidate with the quarter's calibration check of the churn "
        "model. It goes live only through `segment-cadence definitions approve --candidate ...`."
    ),
)
def candidate_definitions(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    config_files: ConfigFiles,
    dbt: DbtCliResource,
) -> dg.MaterializeResult:
    quarter, month_end = quarter_window(context.partition_key)
    production_document = yaml_text.load(paths.segments_file().read_text())
    production = config_files.once("segments", segment_dictionary.load)
    protected = {
        s.id
        for rule in production.business_rules
        for s in production.segments
        if s.priority <= rule.max_priority and not s.fallback
    }
    with warehouse.connect(read_only=True) as con:
        try:
            buyers = candidate.load_buyers(con, month_end)
        except candidate.CandidateError as error:
            raise dg.Failure(description=f"{quarter}: {error}") from None
    result = strategic.refit(buyers)
    document = strategic.candidate_dictionary(production_document, result, quarter, protected)
    staged = candidate.validate_candidate(document, quarter)
    directory = paths.state_dir() / "candidates" / quarter
    path = candidate.write_candidate(document, directory)
    clusters = candidate.write_clusters(directory, buyers, result.labels)
    build_strategic_models(dbt, warehouse, candidate.dbt_vars(staged, quarter, month_end, clusters))
    with warehouse.connect(read_only=True) as con:
        previous_ari = candidate.previous_quarter_ari(con, quarter)
        comparison = candidate.compare(con, quarter, month_end, list(staged.business_rules), staged)
    tables = candidate.markdown_tables(comparison)
    checked = state_store.latest_calibration(month_end)
    report = candidate.write_report(directory, quarter, month_end, comparison, checked)
    scores = ", ".join(f"k={k}: {s:.3f}" for k, s in result.k_scores.items())
    return dg.MaterializeResult(
        metadata={
            "quarter": quarter,
            "month_end": month_end.isoformat(),
            "buyers_clustered": len(buyers),
            "chosen_k": result.chosen_k,
            "k_criterion": f"highest silhouette score on a sample ({scores})",
            "clusters_kept": len(set(result.labels.tolist())),
            "rejected_clusters": dg.MetadataValue.json(result.rejected),
            "bootstrap_ari_mean": sum(result.bootstrap_ari) / len(result.bootstrap_ari),
            "bootstrap_ari_min": min(result.bootstrap_ari),
            "previous_quarter_ari": previous_ari
            if previous_ari is not None
            else "no previous quarter",
            "rule_fidelity": result.rule_fidelity,
            "unchanged_share": comparison["unchanged_share"],
            "business_rule_violations": comparison["business_rule_violations"],
            "candidate_file": dg.MetadataValue.path(str(path)),
            "report": dg.MetadataValue.path(str(report)),
            "calibration": dg.MetadataValue.md(
                candidate.calibration_summary(checked)
                + ("\n\n" + candidate.calibration_table(checked).markdown() if checked else "")
            ),
            "sizes": dg.MetadataValue.md(tables["sizes"]),
            "who_moves_where": dg.MetadataValue.md(tables["moves"]),
            "candidate_kpis": dg.MetadataValue.md(tables["kpis"]),
            "rules": dg.MetadataValue.md(
                "\n".join(
                    f"- **{s['id']}** (priority {s['priority']}): `{s.get('rule') or 'fallback'}`"
                    for s in document["segments"]
                    if s.get("status") == "active"
                )
            ),
        }
    )


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=candidate_definitions,
    name="candidate_respects_business_rules",
    description="The candidate never puts a high-value customer in a low-priority segment.",
    blocking=True,
)
def candidate_respects_business_rules(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    partition = context.run.tags.get("dagster/partition")
    quarter, month_end = quarter_window(partition)
    document = yaml_text.load(
        (paths.state_dir() / "candidates" / quarter / "segments.yaml").read_text()
    )
    dictionary = segment_dictionary.validate(
        document, "<candidate>", segment_dictionary.feature_columns()
    )
    with warehouse.connect(read_only=True) as con:
        result = candidate.compare(
            con, quarter, month_end, list(dictionary.business_rules), dictionary
        )
    return dg.AssetCheckResult(
        passed=result["business_rule_violations"] == 0,
        metadata={"violations": result["business_rule_violations"]},
    )
