"""One pass of the alerting loop, shared by the Dagster sensor and the CLI.

Reads the breaches the monthly run handed over (segment_cadence/defs/alerting/alert_inputs.py)
for months not yet processed, moves alert states, runs the time-based steps of the escalation
ladder, delivers the outbox and reads acknowledgements from Slack. Everything it reads and
writes is in the state store (segment_cadence/platform/state_store.py), never the warehouse,
so a tick runs while a refresh writes; every step is idempotent, so a repeated or interrupted
pass never sends a message twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select

from segment_cadence.defs.alerting import alert_inputs, alerts, slack
from segment_cadence.defs.health import thresholds
from segment_cadence.defs.review import review_pack
from segment_cadence.platform import state_store
from segment_cadence.platform.state_store import alerts as alerts_table
from segment_cadence.platform.state_store import outbox


@dataclass
class TickResult:
    months_processed: list[date] = field(default_factory=list)
    fired: int = 0
    suppressed: int = 0
    resolved: int = 0
    sent: int = 0
    failed: int = 0
    local: int = 0
    acknowledged: int = 0
    held: int = 0
    level_2: int = 0
    level_3: int = 0
    # A level-3 request made this pass (its id is the run key the sensor requests it by).
    strategic_request: str | None = None
    review_packs_posted: int = 0
    # Destinations that refuse for good (a bad token, a missing channel), one line each.
    delivery_problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        months = ", ".join(f"{m:%Y-%m}" for m in self.months_processed) or "none"
        problems = "".join(f"\n{problem}" for problem in self.delivery_problems)
        return (
            f"months processed: {months}; fired {self.fired}, suppressed {self.suppressed}, "
            f"resolved {self.resolved}; sent {self.sent}, kept for retry {self.failed}, "
            f"written locally {self.local}, waiting for what they follow {self.held}; "
            f"review packs posted {self.review_packs_posted}; acknowledged {self.acknowledged}; "
            f"escalated to level 2: {self.level_2}, level 3: {self.level_3}"
        ) + problems


def run_tick(
    now: datetime,
    client=None,
    config: thresholds.ThresholdConfig | None = None,
    url: str | None = None,
    *,
    escalate: bool = True,
) -> TickResult:
    """One pass, on the state store alone (`url`, default paths.state_store_url()): each step
    in a transaction of its own, so writers (the sensor, the CLI, a run) take turns.

    `escalate=False` processes, delivers and reads acknowledgements but leaves escalation to
    the passes that can act on it: level 3 requests the quarterly run, which only a sensor
    can, so a pass inside a run (the review pack's) must not announce it."""
    config = config or thresholds.load()
    result = TickResult()
    with state_store.transaction(url) as state:
        months = alert_inputs.pending_months(state)
    for month in months:
        with state_store.transaction(url) as state:
            inputs = alert_inputs.read(state, month)
            outcome = alerts.process_refresh(
                state,
                month_end=month,
                breaches=inputs.breaches,
                config=config,
                definition_version=inputs.definition_version,
                owners=inputs.owners,
                changed_segments=inputs.changed_segments,
                now=now,
            )
        result.months_processed.append(month)
        result.fired += len(outcome.fired)
        result.suppressed += len(outcome.suppressed)
        result.resolved += len(outcome.resolved)
    if escalate:
        with state_store.transaction(url) as state:
            due = alerts.escalate_due(state, config, now)
        result.level_2, result.level_3 = due["level_2"], due["level_3"]
        result.strategic_request = due["strategic_request"]
    # Delivery holds the writer's turn while it sends, so two passes at once (the sensor and
    # `segment-cadence alerts run`) never send the same message twice.
    with state_store.transaction(url) as state:
        delivered = slack.deliver_pending(state, client, now)
        # Review packs that could not be posted are retried here too (nothing is lost).
        packs = review_pack.post_pending(
            state, client, config.settings.get("review_channel", "#segmentation-review")
        )
        result.review_packs_posted = packs["posted"]
        result.delivery_problems = delivery_problems(state)
    result.sent, result.failed = delivered["sent"], delivered["failed"]
    result.local, result.held = delivered["local"], delivered["held"]
    try:
        with state_store.transaction(url) as state:
            result.acknowledged = slack.read_acknowledgements(state, client, now)
    except Exception:  # noqa: BLE001 - Slack unreachable: acknowledgements are read next tick
        result.acknowledged = 0
    return result


@dataclass(frozen=True)
class Activity:
    """What the alerting did since a moment, whoever did it (the passes inside a run, the
    sensor, the CLI): what a command that ran a refresh reports, not just its last pass."""

    fired: int
    resolved: int
    sent: int
    local: int
    waiting: int

    def summary(self) -> str:
        return (
            f"during this command: fired {self.fired}, resolved {self.resolved}; sent "
            f"{self.sent}, written locally {self.local}; still waiting in the outbox "
            f"{self.waiting}"
        )


def activity_since(since: datetime, url: str | None = None) -> Activity:
    a, o = alerts_table.c, outbox.c
    with state_store.transaction(url) as state:
        return Activity(
            fired=_count(state, alerts_table, a.fired_at >= since),
            resolved=_count(state, alerts_table, a.resolved_at >= since),
            sent=_count(state, outbox, o.status == "sent", o.sent_at >= since),
            local=_count(state, outbox, o.status == "local", o.sent_at >= since),
            waiting=_count(state, outbox, o.status == "pending"),
        )


def _count(state: Connection, table: Table, *where: Any) -> int:
    return state.execute(select(func.count()).select_from(table).where(*where)).scalar() or 0


def delivery_problems(state: Connection) -> list[str]:
    """What Slack refuses for good now, one line each: the alert destinations, then the
    review packs. What the CLI summary, the sensor's log and the outbox's check say."""
    return slack.delivery_problems(state) + review_pack.posting_problems(state)
