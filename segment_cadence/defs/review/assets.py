"""The monthly review pack asset: rendered after everything it reports on."""

from datetime import UTC, datetime

import dagster as dg

from segment_cadence.defs.alerting import alert_tick, slack
from segment_cadence.defs.dictionary import changelog
from segment_cadence.defs.health import thresholds
from segment_cadence.defs.review import review_pack
from segment_cadence.platform import markdown, paths, state_store
from segment_cadence.platform.partitions import (
    ONE_MONTH_A_RUN,
    monthly_partitions,
    refresh_window,
)
from segment_cadence.platform.resources import WAREHOUSE_POOL, ConfigFiles, WarehouseResource

PACK = dg.AssetKey(["review", "monthly_review_pack"])


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=PACK,
    group_name="review",
    owners=["team:segmentation-owner"],
    kinds={"html", "markdown", "slack"},
    partitions_def=monthly_partitions,
    backfill_policy=ONE_MONTH_A_RUN,
    deps=[
        dg.AssetKey(["governance", "pause_violations"]),
        dg.AssetKey(["governance", "pressure_patterns"]),
        dg.AssetKey(["governance", "bias_audit"]),
        dg.AssetKey(["governance", "segment_audit_trail"]),
        dg.AssetKey(["governance", "changelog"]),
        dg.AssetKey(["health", "segment_health"]),
        dg.AssetKey(["churn", "calibration"]),
    ],
    description=(
        "What the 30-minute monthly segmentation review reads, in the charter's fixed order: "
        "pause violations, dwell anomalies, suppressed volume, exception requests, where "
        "pressure showed up; then sizes, migration, KPI trends, expected value, the churn "
        "model's calibration, alerts, definition changes, the bias audit and data quality. One self-contained HTML file and a Markdown copy under "
        "review_packs/YYYY-MM/, recorded in the changelog and posted to Slack when a token is set."
    ),
)
def monthly_review_pack(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config_files: ConfigFiles
) -> dg.MaterializeResult:
    month_end, _ = refresh_window(context.partition_key)
    client = slack.slack_client()
    # Process the month's breaches first (the alerting sensor's own pass on the state store,
    # idempotent), so the pack's alert section includes the alerts this month raised.
    # No escalation here: level 3 requests the quarterly run, which only the alerting
    # sensor can do, so it alone escalates.
    tick = alert_tick.run_tick(datetime.now(UTC).replace(tzinfo=None), client, escalate=False)
    with warehouse.connect() as con:
        # The firewall records, breaches and changelog as of now (override requests made
        # since the run began count).
        state_store.copy_review_records(con)
        config = config_files.once("thresholds", thresholds.load)
        pack = review_pack.gather(con, month_end, config=config)
        written = review_pack.write(pack, paths.review_packs_dir())
        summary = review_pack.slack_summary(pack, written.html.name)
        # The pack recorded and its changelog entry added in one transaction.
        with state_store.transaction() as state:
            review_pack.record(state, month_end, written.html, summary)
            changelog.refresh_changelog(state, con)
    channel = config.settings.get("review_channel", "#segmentation-review")
    with state_store.transaction() as state:
        posted = review_pack.post_pending(state, client, channel)
    empty = [s.title for s in pack.sections if s.no_data]
    headline = markdown.table(
        ["headline", "this month", "last month"], [h.words() for h in pack.headline()]
    )
    return dg.MaterializeResult(
        metadata={
            "html": dg.MetadataValue.path(str(written.html)),
            "markdown": dg.MetadataValue.path(str(written.markdown)),
            "summary": dg.MetadataValue.md(
                f"**Review pack {month_end:%B %Y}**\n\n{headline}"
                + (f"\n\nSections with no data: {', '.join(empty)}" if empty else "")
            ),
            "slack": (
                f"posted {posted['posted']}, kept for retry {posted['failed']}"
                if client
                else "not posted: SLACK_BOT_TOKEN is not set"
            ),
            "sections": len(pack.sections),
            "alert_pass": tick.summary(),
        }
    )
