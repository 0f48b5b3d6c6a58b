"""The code location, assembled in one readable place."""

from __future__ import annotations

import dagster as dg

from assets.changelog import definition_changelog, segment_migration_rates
from assets.churn import bgnbd_params
from assets.dbt import features_inputs, segment_marts
from assets.dictionary import segment_dictionary
from assets.governance import governance_assets
from assets.health import segment_health
from assets.ingest import ingest_assets, ingest_checks
from assets.publish import (
    publish_gate,
    published_segment_membership,
    segments_above_minimum_size,
)
from assets.review import monthly_review_pack
from assets.strategic import candidate_definitions, candidate_respects_business_rules
from orchestration.jobs import monthly_refresh_job, quarterly_strategic_job
from orchestration.resources import default_resources
from orchestration.schedules import monthly_refresh_schedule, quarterly_strategic_schedule
from sensors.alerting import segment_health_alerts
from sensors.refresh_failures import dead_run_reaper, refresh_failure_notice


def build_definitions(resources: dict[str, object] | None = None) -> dg.Definitions:
    """The code location; tests pass their own resources (a private warehouse)."""
    return dg.Definitions(
        assets=[
            *ingest_assets,
            segment_dictionary,
            features_inputs,
            bgnbd_params,
            segment_marts,
            publish_gate,
            published_segment_membership,
            segment_migration_rates,
            definition_changelog,
            *governance_assets,
            segment_health,
            monthly_review_pack,
            candidate_definitions,
        ],
        asset_checks=[
            *ingest_checks,
            segments_above_minimum_size,
            candidate_respects_business_rules,
        ],
        jobs=[monthly_refresh_job, quarterly_strategic_job],
        schedules=[monthly_refresh_schedule, quarterly_strategic_schedule],
        sensors=[refresh_failure_notice, dead_run_reaper, segment_health_alerts],
        resources=resources or default_resources(),
    )


defs = build_definitions()
