"""The code location (Dagster's Definitions), assembled in one readable place: every room's
assets, checks and sensors (segment_cadence/defs/) with the platform's jobs, schedules and
resources (segment_cadence/platform/)."""

from __future__ import annotations

import dagster as dg

from segment_cadence.defs.alerting.assets import alert_outbox, alerts_are_delivered
from segment_cadence.defs.alerting.sensors import (
    dead_run_reaper,
    refresh_failure_notice,
    segment_health_alerts,
)
from segment_cadence.defs.dictionary.assets import definition_changelog, segment_dictionary
from segment_cadence.defs.governance.assets import governance_assets, governance_checks
from segment_cadence.defs.health.assets import segment_health, segment_lift
from segment_cadence.defs.ingest.assets import ingest_assets, ingest_checks
from segment_cadence.defs.review.assets import monthly_review_pack
from segment_cadence.defs.segments.assets import (
    bgnbd_fit,
    churn_calibration,
    publish_gate,
    published_models,
    segments_above_minimum_size,
)
from segment_cadence.defs.segments.dbt_assets import (
    features_inputs,
    governance_and_health_models,
    segment_marts,
)
from segment_cadence.defs.strategic.assets import (
    candidate_definitions,
    candidate_respects_business_rules,
)
from segment_cadence.platform.jobs import monthly_refresh_job, quarterly_strategic_job
from segment_cadence.platform.progress import terminal_progress
from segment_cadence.platform.resources import default_resources
from segment_cadence.platform.schedules import (
    monthly_refresh_schedule,
    quarterly_strategic_schedule,
)


def build_definitions(resources: dict[str, object] | None = None) -> dg.Definitions:
    """The code location; tests pass their own resources (a private warehouse)."""
    return dg.Definitions(
        assets=[
            *ingest_assets,
            segment_dictionary,
            features_inputs,
            bgnbd_fit,
            churn_calibration,
            segment_marts,
            publish_gate,
            published_models,
            definition_changelog,
            *governance_assets,
            governance_and_health_models,
            segment_health,
            segment_lift,
            monthly_review_pack,
            candidate_definitions,
            alert_outbox,
        ],
        asset_checks=[
            *ingest_checks,
            *governance_checks,
            segments_above_minimum_size,
            candidate_respects_business_rules,
            alerts_are_delivered,
        ],
        jobs=[monthly_refresh_job, quarterly_strategic_job],
        schedules=[monthly_refresh_schedule, quarterly_strategic_schedule],
        sensors=[refresh_failure_notice, dead_run_reaper, segment_health_alerts],
        resources=resources or default_resources(),
        # Dagster's console logger as ever, and the CLI's step lines when a run asks for them.
        loggers={"console": dg.colored_console_logger, "terminal_progress": terminal_progress},
    )


defs = build_definitions()
