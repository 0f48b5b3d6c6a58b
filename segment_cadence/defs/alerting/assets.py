"""The alerting room's asset: the durable outbox, with the check that turns red when Slack
refuses it for good.

The outbox is filled and drained by the alerting sensor, never built by a run, so it is an
external asset (an AssetSpec): it gives the check a place in the UI beside the other checks.
`alerts_are_delivered` is ERROR while a destination refuses with an error no retry can fix
(a token Slack does not accept, a missing channel, a missing scope) or a review pack cannot
be shared, and names what to fix. The sensor reports its evaluation whenever the answer
changes; it can also be run from the asset's page to look again.
"""

from __future__ import annotations

import dagster as dg

from segment_cadence.defs.alerting import alert_tick
from segment_cadence.platform import state_store

OUTBOX = dg.AssetKey(["alerting", "outbox"])
DELIVERY_CHECK = "alerts_are_delivered"

alert_outbox = dg.AssetSpec(
    OUTBOX,
    group_name="alerting",
    owners=["team:data-engineering"],
    kinds={"slack"},
    description=(
        "The durable outbox of alert messages in the state store: queued with each alert "
        "change, delivered to Slack (or the local outbox file) by the segment_health_alerts "
        "sensor, exactly once."
    ),
)


def delivery_problems() -> list[str]:
    with state_store.transaction() as state:
        return alert_tick.delivery_problems(state)


def delivery_evaluation(problems: list[str]) -> dg.AssetCheckEvaluation:
    """The check's answer for these problems, as the sensor reports it."""
    return dg.AssetCheckEvaluation(
        asset_key=OUTBOX,
        check_name=DELIVERY_CHECK,
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description=problems[0] if problems else "Slack accepts every destination.",
        metadata={"problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")},
    )


@dg.asset_check(
    asset=OUTBOX,
    name=DELIVERY_CHECK,
    description=(
        "ERROR while Slack refuses a destination for good (token, channel, scope) or a "
        "review pack cannot be shared; messages are kept and go out once it is fixed."
    ),
)
def alerts_are_delivered() -> dg.AssetCheckResult:
    evaluation = delivery_evaluation(delivery_problems())
    return dg.AssetCheckResult(
        passed=evaluation.passed,
        severity=evaluation.severity,
        description=evaluation.description,
        metadata=evaluation.metadata,
    )
