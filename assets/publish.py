"""Publishing the month: visible to consumers only after every blocking check passed."""

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from assets.dbt import segment_marts
from orchestration.partitions import monthly_partitions, refresh_window
from orchestration.resources import WarehouseResource
from segment_cadence import definitions, gate, paths, publish, versions

GATE = dg.AssetKey(["build", "publish_gate"])
MARTS = [
    get_asset_key_for_model([segment_marts], model)
    for model in ("segment_membership", "segment_transitions", "segment_kpis")
]


@dg.asset(
    key=GATE,
    group_name="published",
    owners=["team:segmentation-owner"],
    kinds={"duckdb"},
    partitions_def=monthly_partitions,
    deps=MARTS,
    check_specs=[
        dg.AssetCheckSpec(
            "inputs_and_result_fit_to_publish",
            asset=GATE,
            blocking=True,
            description=(
                "Holds the month in build when its inputs or its result are unusable: no or "
                "too few order lines, a volume far from recent months, a source quarantined "
                "beyond its bound, stale inputs, too many customers moved into the fallback, "
                "or a paused segment emptied. Bounds: publish_gate in config/thresholds.yaml."
            ),
        )
    ],
    description=(
        "The publish gate: measures the month's inputs and its build against governed bounds "
        "before anything is published. A held month stays in build and the last published "
        "month stays in force; `segment-cadence release` lets an approver publish it."
    ),
)
def publish_gate(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    month_end, _ = refresh_window(context.partition_key)
    dictionary = definitions.load()
    version = definitions.definition_version(dictionary)
    try:
        bounds = gate.load_bounds(paths.thresholds_file())
    except gate.GateConfigError as error:
        raise dg.Failure(description=str(error)) from None
    with warehouse.connect() as con:
        decision = gate.evaluate(con, month_end, version, dictionary.fallback.id, bounds)
        if decision.held:
            gate.record_hold(con, decision, context.run_id)
    findings = [
        {"check": f.check, "subject": f.subject, "value": f.value, "bound": f.bound}
        for f in decision.findings
    ]
    if decision.held:
        context.log.error(decision.summary())
    elif decision.findings:
        context.log.warning(decision.summary())
    metadata = {
        "month_end": month_end.isoformat(),
        "held": decision.held,
        "inputs_fingerprint": decision.inputs_fingerprint,
        "findings": dg.MetadataValue.json(findings),
        **{k: v for k, v in decision.measured.items() if v is not None},
    }
    if decision.release is not None:
        metadata["released_by"] = decision.release.released_by
        metadata["release_reason"] = decision.release.reason
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name="inputs_and_result_fit_to_publish",
        passed=not decision.held,
        severity=dg.AssetCheckSeverity.ERROR,
        description=decision.summary()
        + (
            ""
            if not decision.held
            else "\nTo publish it anyway, an approver runs: segment-cadence release --month "
            f"{month_end:%Y-%m} --by APPROVER --reason TEXT"
        ),
        metadata={"findings": dg.MetadataValue.json(findings)},
    )


@dg.asset(
    key=["published", "segment_membership"],
    group_name="published",
    owners=["team:segmentation-owner"],
    kinds={"duckdb", "parquet"},
    partitions_def=monthly_partitions,
    deps=[*MARTS, GATE],
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
