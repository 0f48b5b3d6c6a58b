"""The alert lifecycle on the state store: from breaches to notifications that on-call can
act on.

Alerts learn from Prometheus Alertmanager, for a monthly batch cadence. The lifecycle itself
is a pipeline of pure stages (lifecycle.py: dispatch, inhibit, silence, transition, notify);
this module loads the state they read, writes what they return and queues the messages:
- identity: (rule, segment, metric, definition version); a new definition version is a new
  alert, because the old baseline no longer applies. Routing settings (channels, URLs,
  mentions) are not part of the definition version, so editing them changes no identity;
- fire after `consecutive` breaching refreshes, resolve after `clear_after` clean ones;
- the alert state follows the newest month: re-processing an older month (a backfill) records
  its breaches but moves no alert, so July never resolves what November opened;
- escalate: level 1 to the owner's channel; level 2 to the escalation channel mentioning
  on-call when critical or not acknowledged in time, sent after the message it escalates and
  carrying all of its context; level 3, when it persists, records a request for the quarterly
  strategic refresh together with the message that announces it. Only the alerting sensor
  launches that run (sensors.py), and the message waits for the run and links to it.

Every notification goes to the durable outbox (the state store's outbox table) in the same
transaction as the state change; delivery (slack.py) happens afterwards and is retried, so
nothing is lost when Slack is down. The state lives in the state store, not the warehouse, so
the lifecycle runs while a refresh writes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from segment_cadence.defs.alerting import lifecycle, messages
from segment_cadence.defs.alerting.lifecycle import OPEN_STATES, Alert, SilenceWindow, alert_key
from segment_cadence.defs.health.scorecard import KPI_RULE
from segment_cadence.defs.health.thresholds import Breach, ThresholdConfig, ThresholdRule
from segment_cadence.platform.months import latest_complete_quarter
from segment_cadence.platform.state_store import alerts as alerts_table
from segment_cadence.platform.state_store import (
    outbox,
    processed_months,
    silences,
    strategic_requests,
    suppressed,
)

__all__ = ["OPEN_STATES", "alert_key"]
STRATEGIC_TAG = "segment_cadence/strategic_request"


@dataclass(frozen=True)
class Routing:
    """Where messages go, from configuration (the `settings` of config/thresholds.yaml)."""

    owner_channels: dict[str, str]
    default_channel: str = "#segment-health"
    escalation_channel: str = "#segment-oncall"
    oncall_mention: str = ""
    repeat_interval: timedelta = timedelta(hours=24)
    ack_timeout: timedelta = timedelta(hours=24)
    persist_refreshes: int = 3
    dagster_url: str = "http://127.0.0.1:3000"

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Routing:
        return cls(
            owner_channels=dict(settings.get("owner_channels") or {}),
            default_channel=settings.get("default_channel", "#segment-health"),
            escalation_channel=settings.get("escalation_channel", "#segment-oncall"),
            oncall_mention=settings.get("oncall_mention", ""),
            repeat_interval=timedelta(hours=float(settings.get("repeat_interval_hours", 24))),
            ack_timeout=timedelta(hours=float(settings.get("ack_timeout_hours", 24))),
            persist_refreshes=int(settings.get("persist_refreshes", 3)),
            dagster_url=str(settings.get("dagster_url", "http://127.0.0.1:3000")),
        )

    def channel_for(self, owner: str | None) -> str:
        return self.owner_channels.get(owner or "", self.default_channel)


def silence(
    con: Connection,
    *,
    segment_id: str = "*",
    rule_id: str = "*",
    created_by: str,
    reason: str,
    expires_at: datetime,
    now: datetime,
    silence_id: str | None = None,
) -> str:
    """A monitoring window: matching alerts are not sent until it expires."""
    if not created_by.strip() or not reason.strip():
        raise ValueError("a silence needs who and why")
    if expires_at <= now:
        raise ValueError("a silence must expire in the future")
    silence_id = silence_id or f"s-{int(now.timestamp())}-{segment_id}-{rule_id}"
    con.execute(
        insert(silences).values(
            silence_id=silence_id,
            segment_id=segment_id,
            rule_id=rule_id,
            created_by=created_by,
            reason=reason,
            created_at=now,
            expires_at=expires_at,
        )
    )
    return silence_id


def unsilence(
    con: Connection, *, segment_id: str, by: str, now: datetime, marker: str | None = None
) -> int:
    """End a segment's active silences now; how many ended. With `marker` (a Slack reply's
    identity) it happens once: a zero-length window records that it did, so reading the
    thread again never ends a silence made after the reply."""
    s = silences.c
    if marker and con.execute(select(s.silence_id).where(s.silence_id == marker)).first():
        return 0
    ended = con.execute(
        update(silences)
        .where(s.expires_at > now, s.segment_id.in_((segment_id, "*")))
        .values(expires_at=now)
    ).rowcount
    if marker:
        con.execute(
            insert(silences).values(
                silence_id=marker,
                segment_id=segment_id,
                rule_id="*",
                created_by=by,
                reason=f"unsilenced from Slack ({ended} silence(s) ended)",
                created_at=now,
                expires_at=now,
            )
        )
    return ended


def acknowledge(con: Connection, key_or_segment: str, by: str, now: datetime) -> int:
    """Acknowledge open alerts by key, or all open alerts of a segment (the huddle)."""
    return con.execute(
        update(alerts_table)
        .where(
            alerts_table.c.state == "firing",
            or_(
                alerts_table.c.alert_key == key_or_segment,
                alerts_table.c.segment_id == key_or_segment,
            ),
        )
        .values(state="acknowledged", acknowledged_by=by, acknowledged_at=now)
    ).rowcount


# -- loading the state the stages read ------------------------------------------------------


def _as_date(value: date | str | None) -> date | None:
    """The state store may hand dates back as ISO text."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _alert_of(row: Any) -> Alert:
    values = dict(row._mapping)
    for name in ("first_breach_month", "last_breach_month"):
        values[name] = _as_date(values[name])
    for name in ("consecutive", "clean_streak", "level"):
        values[name] = values[name] or 0
    return Alert(**values)


def load_alerts(con: Connection, keys: set[str] | None = None) -> dict[str, Alert]:
    """Every open alert, and the alerts of `keys` whatever their state."""
    a = alerts_table.c
    where = a.state.in_(OPEN_STATES)
    if keys:
        where = or_(where, a.alert_key.in_(sorted(keys)))
    rows = con.execute(select(alerts_table).where(where))
    return {row.alert_key: _alert_of(row) for row in rows}


def active_silences(con: Connection, now: datetime) -> list[SilenceWindow]:
    s = silences.c
    rows = con.execute(
        select(s.silence_id, s.segment_id, s.rule_id, s.created_by, s.reason, s.expires_at).where(
            s.expires_at > now
        )
    )
    return [SilenceWindow(*row) for row in rows]


def _save(con: Connection, alert: Alert, exists: bool) -> None:
    values = asdict(alert)
    if exists:
        key = values.pop("alert_key")
        con.execute(update(alerts_table).where(alerts_table.c.alert_key == key).values(**values))
    else:
        con.execute(insert(alerts_table).values(**values))


def _set(con: Connection, key: str, **values: Any) -> None:
    con.execute(update(alerts_table).where(alerts_table.c.alert_key == key).values(**values))


# -- the outbox -----------------------------------------------------------------------------


def enqueue(
    con: Connection,
    *,
    message: messages.Message,
    segment_id: str,
    month_end: date | None,
    channel: str,
    keys: list[str] | tuple[str, ...],
    now: datetime,
    reply_to: str | None = None,
    after: str | None = None,
) -> str:
    """Queue a message in the outbox, after everything queued before it (`sequence`), and
    after `after` in particular: delivery holds it until that message is out. The payload
    keeps the model beside its Block Kit, so an escalation can repeat it."""
    sequence = (con.execute(select(func.max(outbox.c.sequence))).scalar() or 0) + 1
    message_id = f"{message.kind}:{segment_id}:{month_end}:{sequence}"
    payload = {**messages.to_block_kit(message), "message": message.to_dict()}
    con.execute(
        insert(outbox).values(
            message_id=message_id,
            created_at=now,
            kind=message.kind,
            segment_id=segment_id,
            month_end=month_end,
            channel=channel,
            alert_keys=json.dumps(list(keys)),
            payload=json.dumps(payload),
            reply_to=reply_to,
            status="pending",
            attempts=0,
            sequence=sequence,
            after_message_id=after,
        )
    )
    return message_id


def _rewrite(con: Connection, message_id: str, message: messages.Message) -> None:
    payload = {**messages.to_block_kit(message), "message": message.to_dict()}
    con.execute(
        update(outbox).where(outbox.c.message_id == message_id).values(payload=json.dumps(payload))
    )


def _latest_firing_message(con: Connection, key: str) -> tuple[str, messages.Message] | None:
    """The latest firing message that named an alert in its current episode: what a
    resolution replies to and an escalation repeats. None when this episode fired while
    silenced: an earlier episode's message is not this one's (its thread was resolved)."""
    fired_at = con.execute(
        select(alerts_table.c.fired_at).where(alerts_table.c.alert_key == key)
    ).scalar()
    if fired_at is None:
        return None
    row = con.execute(
        select(outbox.c.message_id, outbox.c.payload)
        .where(
            outbox.c.kind == "firing",
            outbox.c.alert_keys.like(f'%"{key}"%'),
            outbox.c.created_at >= fired_at,
        )
        .order_by(outbox.c.sequence.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return row[0], messages.Message.from_dict(json.loads(row[1])["message"])


# -- one refresh ----------------------------------------------------------------------------


def rules_of(config: ThresholdConfig) -> dict[str, ThresholdRule]:
    """The rules a breach may come from: the thresholds file's and the scorecard's KPI rule
    (defined in code: its targets are the dictionary's)."""
    return {r.id: r for r in (*config.rules, KPI_RULE)}


@dataclass
class RefreshOutcome:
    """What one refresh did to the alerts: which fired and resolved, what was muted and why."""

    skipped: bool = False
    backfill: bool = False
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    suppressed: dict[str, str] = field(default_factory=dict)
    messages: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "fired": len(self.fired),
            "suppressed": len(self.suppressed),
            "resolved": len(self.resolved),
            "messages": self.messages,
        }


def process_refresh(
    con: Connection,
    *,
    month_end: date,
    breaches: list[Breach],
    config: ThresholdConfig,
    definition_version: str,
    owners: dict[str, str],
    changed_segments: set[str],
    now: datetime,
) -> RefreshOutcome:
    """Run one refresh's breaches through the stages and queue the messages, in the caller's
    state-store transaction. Idempotent: a month already processed is skipped (the sensor's
    cursor can be replayed safely)."""
    if con.execute(
        select(processed_months.c.month_end).where(processed_months.c.month_end == month_end)
    ).first():
        return RefreshOutcome(skipped=True)
    routing = Routing.from_settings(config.settings)
    rules = rules_of(config)
    observations = lifecycle.dispatch(breaches, definition_version)
    observations = lifecycle.inhibit(observations, rules, changed_segments)
    observations = lifecycle.silence(observations, active_silences(con, now), now)
    outcome = RefreshOutcome()
    for o in observations:
        if o.muted:
            outcome.suppressed[o.key] = o.muted
            con.execute(
                insert(suppressed).values(
                    month_end=month_end, alert_key=o.key, reason=o.muted, recorded_at=now
                )
            )
    latest = _as_date(latest_processed_month(con))
    con.execute(insert(processed_months).values(month_end=month_end, processed_at=now))
    if latest is not None and latest > month_end:
        # A backfill: its breaches are recorded (health.breaches, suppressed) but the alerts
        # follow the newest month.
        outcome.backfill = True
        return outcome
    before = load_alerts(con, {o.key for o in observations})
    moved = lifecycle.transition(
        before,
        observations,
        rules,
        month_end=month_end,
        now=now,
        repeat_interval=routing.repeat_interval,
    )
    for key in sorted(moved.changed):
        _save(con, moved.alerts[key], key in before)
    outcome.fired = [e.key for e in moved.events if e.kind == "fired"]
    outcome.resolved = [e.key for e in moved.events if e.kind == "resolved"]
    by_key = {o.key: o for o in observations}
    queued: list[str | None] = []
    for notice in lifecycle.notify(moved, observations):
        owner = notice.owner or owners.get(notice.segment_id)
        channel = routing.channel_for(owner)
        message_id: str | None = None
        if notice.kind == "resolved":
            first = _latest_firing_message(con, notice.keys[0])
            if first is not None:  # else it never notified (it fired while silenced)
                message_id = enqueue(
                    con,
                    message=messages.resolved_message(notice.keys[0], month_end),
                    segment_id=notice.segment_id,
                    month_end=month_end,
                    channel=channel,
                    keys=notice.keys,
                    now=now,
                    reply_to=first[0],
                )
        elif notice.kind == "firing":
            findings = tuple(
                messages.finding(key, by_key[key].breach, moved.alerts[key].consecutive)
                for key in notice.keys
            )
            message = messages.firing_message(
                notice.segment_id,
                owner,
                month_end,
                definition_version,
                findings,
                routing.dagster_url,
            )
            message_id = enqueue(
                con,
                message=message,
                segment_id=notice.segment_id,
                month_end=month_end,
                channel=channel,
                keys=notice.keys,
                now=now,
            )
            for key in notice.keys:
                _set(con, key, last_notified_at=now)
        else:
            after = queued[notice.after] if notice.after is not None else None
            message_id = _escalate(con, notice.keys, 2, notice.why, routing, now, after)
        queued.append(message_id)
        outcome.messages += message_id is not None
    return outcome


def _escalate(
    con: Connection,
    keys: tuple[str, ...],
    level: int,
    why: str,
    routing: Routing,
    now: datetime,
    after: str | None = None,
    run_link: messages.Link | None = None,
    quarter: str | None = None,
) -> str | None:
    """Raise alerts to a level and queue one escalation that repeats their level-1 message,
    sent after it."""
    first = _latest_firing_message(con, keys[0])
    if first is None:
        return None
    first_id, first_message = first
    for key in keys:
        _set(con, key, level=level)
    message = messages.escalation_message(
        first_message.only(set(keys)), level, why, routing.oncall_mention, run_link, quarter
    )
    return enqueue(
        con,
        message=message,
        segment_id=keys[0].split("|")[1],
        month_end=None,
        channel=routing.escalation_channel,
        keys=keys,
        now=now,
        after=after or first_id,
    )


RUN_LINK_LABEL = "The quarterly run"


def strategic_run_link(dagster_url: str, request_id: str) -> messages.Link:
    """The runs page filtered to the run a level-3 request launches (by its tag)."""
    return messages.Link(
        RUN_LINK_LABEL, f"{dagster_url}/runs?q%5B0%5D=tag%3A{STRATEGIC_TAG}%3D{request_id}"
    )


def escalate_due(con: Connection, config: ThresholdConfig, now: datetime) -> dict[str, Any]:
    """Time-based steps of the ladder, evaluated on each tick.

    Level 2: notified and not acknowledged within the ack timeout. Level 3: still open after
    `persist_refreshes` breaching refreshes: one request for the quarterly strategic refresh,
    recorded with the messages that announce it, which wait until the sensor has launched it.
    """
    routing = Routing.from_settings(config.settings)
    result: dict[str, Any] = {"level_2": 0, "level_3": 0, "strategic_request": None}
    steps = lifecycle.due_escalations(
        load_alerts(con).values(),
        active_silences(con, now),
        now=now,
        ack_timeout=routing.ack_timeout,
        persist_refreshes=routing.persist_refreshes,
    )
    for step in steps:
        by_segment: dict[str, list[str]] = {}
        for key in step.keys:
            by_segment.setdefault(key.split("|")[1], []).append(key)
        if step.level == 2:
            for keys in by_segment.values():
                sent = _escalate(con, tuple(keys), 2, step.why, routing, now)
                result["level_2"] += sent is not None
            continue
        latest = _as_date(latest_processed_month(con))
        start = latest_complete_quarter(latest) if latest else None
        quarter = start.isoformat() if start else None  # the quarterly job's partition key
        label = f"{start.year}-Q{(start.month - 1) // 3 + 1}" if start else None
        digest = hashlib.sha256(f"{quarter}|{step.keys}|{now.isoformat()}".encode()).hexdigest()
        request_id = f"strategic-{digest[:12]}"
        link = strategic_run_link(routing.dagster_url, request_id)
        message_ids = []
        for keys in by_segment.values():
            message_id = _escalate(con, tuple(keys), 3, step.why, routing, now, None, link, label)
            if message_id:
                message_ids.append(message_id)
        for key in step.keys:
            _set(con, key, strategic_requested_at=now)
        con.execute(
            insert(strategic_requests).values(
                request_id=request_id,
                quarter=quarter,
                alert_keys=json.dumps(list(step.keys)),
                message_id=json.dumps(message_ids),
                requested_at=now,
            )
        )
        result["level_3"] = len(message_ids)
        result["strategic_request"] = request_id
    return result


def pending_strategic_requests(con: Connection) -> list[tuple[str, str | None]]:
    """(request id, quarter) of the level-3 requests whose run is not launched yet: the
    sensor requests each, with the request id as run key, so Dagster launches it once."""
    r = strategic_requests.c
    rows = con.execute(
        select(r.request_id, r.quarter).where(r.run_id.is_(None)).order_by(r.requested_at)
    )
    return [(row.request_id, row.quarter) for row in rows]


def held_for_strategic_run(con: Connection) -> set[str]:
    """The level-3 messages whose run is not launched yet: delivery holds them."""
    r = strategic_requests.c
    held: set[str] = set()
    for ids in con.execute(select(r.message_id).where(r.run_id.is_(None))).scalars():
        held.update(json.loads(ids or "[]"))
    return held


def strategic_run_launched(
    con: Connection, request_id: str, run_id: str, dagster_url: str, now: datetime
) -> None:
    """Record the run a level-3 request launched and point its messages at that run. They
    were held until now, so on-call never reads of a run that does not exist."""
    r = strategic_requests.c
    ids = con.execute(select(r.message_id).where(r.request_id == request_id)).scalar()
    con.execute(
        update(strategic_requests)
        .where(r.request_id == request_id)
        .values(run_id=run_id, launched_at=now)
    )
    run = messages.Link(RUN_LINK_LABEL, f"{dagster_url}/runs/{run_id}")
    for message_id in json.loads(ids or "[]"):
        row = con.execute(select(outbox.c.payload).where(outbox.c.message_id == message_id)).first()
        if row is None:
            continue
        message = messages.Message.from_dict(json.loads(row[0])["message"])
        links = tuple(run if link.label == RUN_LINK_LABEL else link for link in message.links)
        _rewrite(con, message_id, replace(message, links=links))


def unresolved(con: Connection) -> list[tuple]:
    """Open alerts for `segment-cadence alerts list`: state, severity, level, key, value, bound."""
    a = alerts_table.c
    return [
        tuple(r)
        for r in con.execute(
            select(a.state, a.severity, a.level, a.alert_key, a.last_value, a.last_bound)
            .where(a.state != "resolved")
            .order_by(a.severity, a.alert_key)
        )
    ]


def latest_processed_month(con: Connection) -> date | None:
    return con.execute(select(func.max(processed_months.c.month_end))).scalar()
