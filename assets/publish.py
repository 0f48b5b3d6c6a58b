"""Publishing the month: visible to consumers only after every blocking check passed."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from assets.dbt import segment_marts
from orchestration.partitions import monthly_partitions, refresh_window
from orchestration.resources import WarehouseResource
from segment_cadence import definitions, paths, publish, versions


@dg.asset(
    key=["published", "segment_membership"],
    group_name="published",
    owners=["team:segmentation-owner"],
    kinds={"duckdb", "parquet"},
    partitions_def=monthly_partitions,
    deps=[
        get_asset_key_for_model([segment_marts], model)
        for model in ("segment_membership", "segment_transitions", "segment_kpis")
    ],
    description=(
        "Published membership, transitions and KPIs for the month, replaced atomically from "
        "the build once its checks passed, and exported as Parquet for downstream tools. "
        "A failed refresh never reaches this step, so the last published month stays in place."
    ),
)
def published_segment_membership(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    month_end, _ = refresh_window(context.partition_key)
    version = definitions.definition_version(definitions.load())
    label = versions.check_approved().label
    with warehouse.connect() as con:
        try:
            publication = publish.publish_month(
                con,
                month_end,
                version,
                run_id=context.run_id,
                export_dir=paths.exports_dir(),
                version_label=label,
            )
        except publish.PublishError as error:
            raise dg.Failure(description=str(error)) from None
        kpis = con.execute(
            "select segment_id, customers, share, retention_rate, avg_churn_likelihood "
            "from published.segment_kpis where month_end = ? order by customers desc",
            [month_end],
        ).fetchall()
    table = "\n".join(
        f"| {s} | {n:,} | {share:.1%} | {'' if ret is None else f'{ret:.1%}'} | "
        f"{'' if churn is None else f'{churn:.2f}'} |"
        for s, n, share, ret, churn in kpis
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": publication.customers,
            "month_end": month_end.isoformat(),
            "definition_version": version,
            "approved_version": label,
            "export_path": dg.MetadataValue.path(publication.export_path or ""),
            "segment_sizes": dg.MetadataValue.md(
                "| segment | customers | share | retention | churn likelihood |\n"
                "|---|---|---|---|---|\n" + table
            ),
        }
    )


@dg.asset_check(
    asset=published_segment_membership,
    name="segments_above_minimum_size",
    description="Warns when an active segment has fewer members than its dictionary minimum.",
)
def segments_above_minimum_size(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    dictionary = definitions.load()
    partition = context.run.tags.get("dagster/partition")
    with warehouse.connect(read_only=True) as con:
        if partition:
            latest = refresh_window(partition)[0]
        else:
            latest = con.execute("select max(month_end) from published.publications").fetchone()[0]
        sizes = publish.segment_sizes(con, latest) if latest else {}
    small = {
        s.id: sizes.get(s.id, 0) for s in dictionary.segments if sizes.get(s.id, 0) < s.min_size
    }
    return dg.AssetCheckResult(
        passed=not small,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"month_end": str(latest), "below_minimum": dg.MetadataValue.json(small)},
    )
