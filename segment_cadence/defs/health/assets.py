"""Segment health after each refresh: threshold checks over the health metrics (the dbt model
health.metrics, dbt_project/models/health), and the breaches (in the state store)."""

import os
from datetime import UTC, datetime

import dagster as dg

from segment_cadence.defs.alerting import alert_inputs
from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.health import breaches as breach_store
from segment_cadence.defs.health import health, scorecard, thresholds
from segment_cadence.defs.segments import lift
from segment_cadence.platform import markdown, paths, state_store
from segment_cadence.platform.partitions import (
    ONE_MONTH_A_RUN,
    monthly_partitions,
    refresh_window,
)
from segment_cadence.platform.resources import WAREHOUSE_POOL, ConfigFiles, WarehouseResource

THRESHOLDS = thresholds.load()
KPI_CHECK = "kpi_targets_are_met"


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["health", "segment_health"],
    group_name="health",
    owners=["team:segmentation-owner"],
    kinds={"duckdb", "python"},
    partitions_def=monthly_partitions,
    backfill_policy=ONE_MONTH_A_RUN,
    deps=[dg.AssetKey(["health", "metrics"]), dg.AssetKey(["health", "segment_scorecard"])],
    description=(
        "Health of each segment and of the inputs for the published month (the dbt model "
        "health.metrics: size and share shift, migration in and out, dwell, churn likelihood, "
        "engagement depth, repeat-purchase velocity, campaign response; freshness, volume, "
        "quarantine and null rates, feature drift (PSI, Wasserstein) against last month; pause "
        "violations), evaluated against config/thresholds.yaml, and the segment scorecard (the "
        "dbt model health.segment_scorecard: each KPI the dictionary declares against the "
        "target of the segment's maturity), a missed target a breach of the rule kpi_target "
        "routed to the KPI's owner: one row per breach in the state store (breaches), one "
        "check per threshold rule and one for the KPI targets; the breaches, owners and "
        "changed segments are handed to the alerting sensor through the state store."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            name=rule.id,
            asset=["health", "segment_health"],
            description=f"{rule.metric}: {rule.runbook}",
        )
        for rule in THRESHOLDS.rules
    ]
    + [
        dg.AssetCheckSpec(
            name=KPI_CHECK,
            asset=["health", "segment_health"],
            description=(
                "Every segment meets the KPI targets the dictionary sets for its maturity "
                "(a miss goes to the KPI's owner)."
            ),
        )
    ],
)
def segment_health(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
):
    month_end, _ = refresh_window(context.partition_key)
    config = config_files.once("thresholds", thresholds.load)
    version = segment_dictionary.definition_version(
        config_files.once("segments", segment_dictionary.load)
    )
    with warehouse.connect() as con:
        metrics = health.read(con, month_end)
        history = health.history(con, month_end)
        values = {(m.segment_id, m.metric): m.value for m in metrics}
        breaches = thresholds.evaluate(config, month_end, values, history)
        card = scorecard.read(con, month_end)
        breaches += scorecard.breaches(card)
        owners, changed = alert_inputs.owners_and_changes(con, month_end, version)
    # The breaches are recorded, and handed to the alerting tick (which reads only the state
    # store: the month's breaches, version, owners and changed segments), in one transaction.
    with state_store.transaction() as state:
        breach_store.store_breaches(state, month_end, breaches, version)
        alert_inputs.hand_over(
            state,
            alert_inputs.AlertInputs(month_end, version, breaches, owners, changed),
            datetime.now(UTC).replace(tzinfo=None),
        )
    by_rule: dict[str, list[thresholds.Breach]] = {}
    for breach in breaches:
        by_rule.setdefault(breach.rule_id, []).append(breach)
    for rule in THRESHOLDS.rules:
        found = by_rule.get(rule.id, [])
        critical = any(b.severity == "critical" for b in found)
        yield dg.AssetCheckResult(
            check_name=rule.id,
            passed=not found,
            severity=dg.AssetCheckSeverity.ERROR if critical else dg.AssetCheckSeverity.WARN,
            metadata={
                "breaches": len(found),
                "segments": dg.MetadataValue.json(
                    {
                        b.segment_id: {
                            "value": b.value,
                            "bound": b.bound,
                            "baseline": b.baseline,
                            "kind": b.kind,
                            "severity": b.severity,
                        }
                        for b in found
                    }
                ),
            },
        )
    missed = [r for r in card if r.status == "missed"]
    yield dg.AssetCheckResult(
        check_name=KPI_CHECK,
        passed=not missed,
        severity=(
            dg.AssetCheckSeverity.ERROR
            if any(r.severity == "critical" for r in missed)
            else dg.AssetCheckSeverity.WARN
        ),
        metadata={
            "missed": len(missed),
            "measured": sum(r.status in ("met", "missed") for r in card),
            "missed_targets": dg.MetadataValue.json(
                {f"{r.segment_id}.{r.kpi}": {"owner": r.owner, "target": r.target} for r in missed}
            ),
        },
    )
    table = markdown.table(
        ["severity", "rule", "segment", "value", "baseline", "bound", "kind"],
        [
            (
                b.severity,
                b.rule_id,
                b.segment_id,
                f"{b.value:.4g}",
                None if b.baseline is None else f"{b.baseline:.4g}",
                f"{b.bound:.4g}",
                b.kind,
            )
            for b in sorted(breaches, key=lambda b: (b.severity != "critical", b.rule_id))
        ],
        empty="No breaches.",
    )
    yield dg.MaterializeResult(
        metadata={
            "metrics": len(metrics),
            "breaches": len(breaches),
            "critical": sum(b.severity == "critical" for b in breaches),
            "alerts_go_to": (
                "Slack (SLACK_BOT_TOKEN is set), via the segment_health_alerts sensor"
                if os.environ.get("SLACK_BOT_TOKEN")
                else f"the local outbox {paths.outbox_dir() / 'notices.jsonl'} (no SLACK_BOT_TOKEN), "
                "via the segment_health_alerts sensor"
            ),
            "breach_table": dg.MetadataValue.md(table),
            "kpis_missed": len(missed),
            "scorecard": scorecard_table(card),
        }
    )


def scorecard_table(card: list[scorecard.ScorecardRow]) -> dg.TableMetadataValue:
    """The scorecard as the Dagster UI shows a table: one row per segment and KPI."""
    names = [c.replace(" ", "_").lower() for c in scorecard.SCORECARD_COLUMNS]
    return dg.MetadataValue.table(
        records=[dg.TableRecord(dict(zip(names, r.cells(), strict=True))) for r in card],
        schema=dg.TableSchema(columns=[dg.TableColumn(n, "string") for n in names]),
    )


LIFT_CHECKS = ("lift_is_measured", "campaign_pre_periods_are_parallel")


def lift_rows(segments: list[lift.SegmentLift]) -> list[tuple]:
    """The segment lift table as people read it: purchase-rate lift in points, revenue."""
    rows = []
    for s in segments:
        rate, revenue = s.outcomes["purchase_rate"], s.outcomes["revenue_per_customer"]
        rows.append(
            (
                s.segment_id,
                rate.treated_customers,
                rate.held_out_customers,
                rate.in_points(),
                revenue.in_amounts(),
                s.outcomes["retention"].in_points(),
            )
        )
    return rows


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["health", "lift"],
    group_name="health",
    owners=["team:segmentation-owner"],
    kinds={"duckdb", "python"},
    partitions_def=monthly_partitions,
    backfill_policy=ONE_MONTH_A_RUN,
    deps=[
        dg.AssetKey(["health", "segment_lift_arms"]),
        dg.AssetKey(["health", "campaign_lift_arms"]),
    ],
    description=(
        "What treating a segment, and each campaign, changed against its holdout (the "
        "dictionary's holdouts): per segment, last month's treated members against the held "
        "out over the next days (purchase rate, revenue per customer, retention); per "
        "campaign whose post-send window ended this month, the same on its targeted segment "
        "with the difference in differences and the pre-send difference. Differences with a "
        "Welch normal interval (segment_cadence/defs/segments/lift.py); 'not enough data' "
        "below the minimum arm size."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            name="lift_is_measured",
            asset=["health", "lift"],
            description="Every segment with a holdout has enough held-out members to measure.",
        ),
        dg.AssetCheckSpec(
            name="campaign_pre_periods_are_parallel",
            asset=["health", "lift"],
            description=(
                "Before each campaign's send, treated and held-out members bought alike (the "
                "pre-period difference's interval covers 0), so its difference in "
                "differences can be trusted."
            ),
        ),
    ],
)
def segment_lift(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
):
    month_end, _ = refresh_window(context.partition_key)
    dictionary = config_files.once("segments", segment_dictionary.load)
    measurement = dictionary.measurement
    with warehouse.connect() as con:
        segments = lift.segment_lifts(con, month_end, measurement)
        campaigns = lift.campaign_lifts(con, month_end, measurement)
    with_holdout = {s.id for s in dictionary.segments if dictionary.holdouts.share_of(s.id) > 0}
    unmeasured = [
        s.segment_id
        for s in segments
        if s.segment_id in with_holdout and not s.outcomes["purchase_rate"].measured
    ]
    yield dg.AssetCheckResult(
        check_name="lift_is_measured",
        passed=not unmeasured,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"not_enough_data": dg.MetadataValue.json(unmeasured)},
    )
    doubtful = [c.campaign_id for c in campaigns if c.parallel_trends_doubtful]
    yield dg.AssetCheckResult(
        check_name="campaign_pre_periods_are_parallel",
        passed=not doubtful,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"doubtful": dg.MetadataValue.json(doubtful)},
    )
    segment_table = markdown.table(
        ["segment", "treated", "held out", "purchase rate", "revenue per customer", "retention"],
        lift_rows(segments),
        empty="No segment was published last month.",
    )
    campaign_table = markdown.table(
        [
            "campaign",
            "segment",
            "first sent",
            "reached",
            "purchase rate",
            "diff. in diff.",
            "before the send",
        ],
        [
            (
                f"{c.campaign_name} ({c.campaign_id})",
                c.segment_id,
                f"{c.first_sent}",
                "" if c.reached_share is None else f"{c.reached_share:.0%}",
                c.purchase_rate.in_points(),
                c.difference_in_differences.in_points(),
                c.pre_period_difference.in_points(),
            )
            for c in campaigns
        ],
        empty="No campaign's post-send window ended this month.",
    )
    yield dg.MaterializeResult(
        metadata={
            "segments_measured": sum(s.outcomes["purchase_rate"].measured for s in segments),
            "campaigns_measured": sum(c.purchase_rate.measured for c in campaigns),
            "confidence": measurement.confidence,
            "segment_lift": dg.MetadataValue.md(segment_table),
            "campaign_lift": dg.MetadataValue.md(campaign_table),
        }
    )
