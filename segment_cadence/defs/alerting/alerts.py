"""The alert lifecycle: from breaches to notifications that on-call can act on.

Alerts learn from Prometheus Alertmanager, for a monthly batch cadence:
- identity: (rule, segment, metric, definition version); a new definition version is a new
  alert, because the old baseline no longer applies;
- fire after `consecutive` breaching refreshes, resolve after `clear_after` clean ones
  (hysteresis: no flapping between monthly refreshes);
- deduplicate: an open alert is not re-sent within the repeat interval;
- group: one message per refresh and segment, listing every metric that fired;
- inhibit: a data-quality breach suppresses the health alerts that depend on the inputs,
  and a definition-version change suppresses size and migration alerts of the segments
  it changed;
- silence: by segment and/or rule, with who, why and an expiry (the monitoring window);
- escalate: level 1 to the owner's channel; level 2 to the escalation channel mentioning
  on-call when critical or not acknowledged in time; level 3, when it persists, requests the
  quarterly strategic refresh for review.

Every notification goes to the durable outbox (the state store's outbox table,
segment_cadence/platform/state_store.py) in the same transaction as the state change;
delivery (segment_cadence/defs/alerting/slack.py) happens afterwards and is retried, so nothing
is lost when Slack is down. The state lives in the state store, not the warehouse, so the
lifecycle runs while a refresh writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, or_, select, update

from segment_cadence.defs.health.thresholds import Breach, ThresholdConfig
from segment_cadence.platform.state_store import alerts as alerts_table
from segment_cadence.platform.state_store import outbox, processed_months, silences, suppressed

OPEN_STATES = ("pending", "firing", "acknowledged")


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


def alert_key(rule_id: str, segment_id: str, metric: str, definition_version: str) -> str:
    return f"{rule_id}|{segment_id}|{metric}|{definition_version}"


def _active_silence(con: Connection, segment_id: str, rule_id: str, now: datetime) -> tuple | None:
    return con.execute(
        select(
            silences.c.silence_id, silences.c.created_by, silences.c.reason, silences.c.expires_at
        )
        .where(
            silences.c.expires_at > now,
            or_(silences.c.segment_id == segment_id, silences.c.segment_id == "*"),
            or_(silences.c.rule_id == rule_id, silences.c.rule_id == "*"),
        )
        .order_by(silences.c.expires_at.desc())
        .limit(1)
    ).first()


def silence(
    con: Connection,
    *,
    segment_id: str = "*",
    rule_id: str = "*",
    created_by: str,
    reason: str,
    expires_at: datetime,
    now: datetime,
) -> str:
    """A monitoring window: matching alerts are not sent until it expires."""
    if not created_by.strip() or not reason.strip():
        raise ValueError("a silence needs who and why")
    if expires_at <= now:
        raise ValueError("a silence must expire in the future")
    silence_id = f"s-{int(now.timestamp())}-{segment_id}-{rule_id}"
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


def _enqueue(
    con: Connection,
    *,
    kind: str,
    segment_id: str,
    month_end: date | None,
    channel: str,
    keys: list[str],
    payload: dict[str, Any],
    reply_to: str | None,
    now: datetime,
) -> str:
    message_id = (
        f"{kind}:{segment_id}:{month_end}:{channel}:{len(keys)}:{int(now.timestamp() * 1e6)}"
    )
    con.execute(
        insert(outbox).values(
            message_id=message_id,
            created_at=now,
            kind=kind,
            segment_id=segment_id,
            month_end=month_end,
            channel=channel,
            alert_keys=json.dumps(keys),
            payload=json.dumps(payload),
            reply_to=reply_to,
            status="pending",
            attempts=0,
        )
    )
    return message_id


def _later(month: date | str | None, than: date) -> bool:
    """Whether an alert's month comes after `than` (the state store may hand dates back as
    ISO text)."""
    if month is None:
        return False
    day = month if isinstance(month, date) else date.fromisoformat(str(month)[:10])
    return day > than


def _set(con: Connection, key: str, **values: Any) -> None:
    con.execute(update(alerts_table).where(alerts_table.c.alert_key == key).values(**values))


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
    render: Any,
) -> dict[str, int]:
    """Apply one refresh's breaches to the alert states and queue the messages, in the
    caller's state-store transaction. Idempotent: a month already processed is skipped (the
    sensor's cursor can be replayed safely)."""
    if con.execute(
        select(processed_months.c.month_end).where(processed_months.c.month_end == month_end)
    ).first():
        return {"skipped": 1}
    routing = Routing.from_settings(config.settings)
    rules = {r.id: r for r in config.rules}
    data_quality_failed = any(
        rules[b.rule_id].kind_of_alert == "data_quality" and b.severity == "critical"
        for b in breaches
    )
    counts = {"fired": 0, "suppressed": 0, "resolved": 0, "messages": 0}
    to_notify: dict[str, list[dict[str, Any]]] = {}
    breached_keys: set[str] = set()
    for breach in breaches:
        rule = rules[breach.rule_id]
        key = alert_key(breach.rule_id, breach.segment_id, breach.metric, definition_version)
        reason = None
        if data_quality_failed and rule.depends_on_inputs:
            reason = "inhibited: a data-quality check failed this refresh"
        elif breach.segment_id in changed_segments and rule.kind_of_alert in ("size", "migration"):
            reason = "inhibited: the segment's definition changed in this version"
        else:
            found = _active_silence(con, breach.segment_id, breach.rule_id, now)
            if found:
                reason = f"silenced by {found[1]} until {found[3]:%Y-%m-%d %H:%M}: {found[2]}"
        # Whatever happens to its notification, the rule still breaches: the alert is not
        # on its way to resolving (a silence hides notifications, not state).
        breached_keys.add(key)
        if reason:
            con.execute(
                insert(suppressed).values(
                    month_end=month_end, alert_key=key, reason=reason, recorded_at=now
                )
            )
            counts["suppressed"] += 1
            _set(con, key, clean_streak=0)
            continue
        row = con.execute(
            select(
                alerts_table.c.state,
                alerts_table.c.consecutive,
                alerts_table.c.last_notified_at,
                alerts_table.c.last_breach_month,
            ).where(alerts_table.c.alert_key == key)
        ).first()
        if row is not None and _later(row[3], month_end):
            continue  # an earlier month (a backfill) never changes a later month's alert
        row = row[:3] if row is not None else None
        if row is None:
            con.execute(
                insert(alerts_table).values(
                    alert_key=key,
                    rule_id=breach.rule_id,
                    segment_id=breach.segment_id,
                    metric=breach.metric,
                    definition_version=definition_version,
                    state="pending",
                    severity=breach.severity,
                    consecutive=0,
                    clean_streak=0,
                    first_breach_month=month_end,
                    last_breach_month=month_end,
                    last_value=breach.value,
                    last_baseline=breach.baseline,
                    last_bound=breach.bound,
                    level=0,
                )
            )
            row = ("pending", 0, None)
        state, consecutive, last_notified = row
        if state == "resolved":
            state, consecutive = "pending", 0
        consecutive += 1
        _set(
            con,
            key,
            consecutive=consecutive,
            clean_streak=0,
            last_breach_month=month_end,
            severity=breach.severity,
            last_value=breach.value,
            last_baseline=breach.baseline,
            last_bound=breach.bound,
            state=state,
        )
        should_fire = state == "pending" and consecutive >= rule.consecutive
        repeat_due = state in ("firing", "acknowledged") and (
            last_notified is None or now - last_notified >= routing.repeat_interval
        )
        if should_fire:
            _set(con, key, state="firing", fired_at=now, level=1)
            counts["fired"] += 1
        if should_fire or (repeat_due and state == "firing"):
            to_notify.setdefault(breach.segment_id, []).append(
                {"key": key, "breach": breach, "rule": rule, "consecutive": consecutive}
            )
    # Clean refreshes move open alerts towards resolution.
    open_alerts = con.execute(
        select(
            alerts_table.c.alert_key,
            alerts_table.c.rule_id,
            alerts_table.c.segment_id,
            alerts_table.c.clean_streak,
            alerts_table.c.last_breach_month,
        ).where(alerts_table.c.state.in_(OPEN_STATES))
    ).all()
    for key, rule_id, segment_id, clean, last_breach in open_alerts:
        if key in breached_keys or _later(last_breach, month_end):
            continue
        clean += 1
        rule = rules.get(rule_id)
        if rule is None or clean >= rule.clear_after:
            _set(con, key, state="resolved", resolved_at=now, clean_streak=clean, consecutive=0)
            first = con.execute(
                select(outbox.c.message_id)
                .where(outbox.c.kind == "firing", outbox.c.alert_keys.like(f'%"{key}"%'))
                .order_by(outbox.c.created_at)
                .limit(1)
            ).first()
            if first:
                payload = render.resolved(key, month_end, routing)
                _enqueue(
                    con,
                    kind="resolved",
                    segment_id=segment_id,
                    month_end=month_end,
                    channel=routing.channel_for(owners.get(segment_id)),
                    keys=[key],
                    payload=payload,
                    reply_to=first[0],
                    now=now,
                )
                counts["messages"] += 1
            counts["resolved"] += 1
        else:
            _set(con, key, clean_streak=clean)
    for segment_id, items in sorted(to_notify.items()):
        owner = owners.get(segment_id)
        payload = render.firing(segment_id, owner, month_end, definition_version, items, routing)
        _enqueue(
            con,
            kind="firing",
            segment_id=segment_id,
            month_end=month_end,
            channel=routing.channel_for(owner),
            keys=[i["key"] for i in items],
            payload=payload,
            reply_to=None,
            now=now,
        )
        for item in items:
            _set(con, item["key"], last_notified_at=now)
        counts["messages"] += 1
        if any(i["breach"].severity == "critical" for i in items):
            counts["messages"] += escalate_keys(
                con, [i["key"] for i in items], 2, "critical", routing, render, now
            )
    con.execute(insert(processed_months).values(month_end=month_end, processed_at=now))
    return counts


def escalate_keys(
    con: Connection,
    keys: list[str],
    level: int,
    why: str,
    routing: Routing,
    render: Any,
    now: datetime,
) -> int:
    """Raise open alerts to a level and queue the escalation message once per level."""
    a = alerts_table.c
    rows = con.execute(
        select(a.alert_key, a.segment_id, a.rule_id, a.metric, a.last_value, a.severity).where(
            a.alert_key.in_(keys), a.level < level
        )
    ).all()
    if not rows:
        return 0
    for row in rows:
        _set(con, row[0], level=level)
    by_segment: dict[str, list[tuple]] = {}
    for row in rows:
        by_segment.setdefault(row[1], []).append(tuple(row))
    for segment_id, items in by_segment.items():
        kind = "strategic_request" if level >= 3 else "escalation"
        payload = render.escalation(segment_id, level, why, items, routing)
        _enqueue(
            con,
            kind=kind,
            segment_id=segment_id,
            month_end=None,
            channel=routing.escalation_channel,
            keys=[r[0] for r in items],
            payload=payload,
            reply_to=None,
            now=now,
        )
    return len(by_segment)


def escalate_due(
    con: Connection, config: ThresholdConfig, render: Any, now: datetime
) -> dict[str, Any]:
    """Time-based steps of the ladder, evaluated by the sensor on each tick.

    Level 2: firing and not acknowledged within the ack timeout. Level 3: still open after
    `persist_refreshes` breaching refreshes: request the strategic refresh (once).
    """
    routing = Routing.from_settings(config.settings)
    a = alerts_table.c
    overdue = list(
        con.execute(
            select(a.alert_key).where(
                a.state == "firing", a.level < 2, a.fired_at <= now - routing.ack_timeout
            )
        ).scalars()
    )
    level_two = (
        escalate_keys(con, overdue, 2, "not acknowledged in time", routing, render, now)
        if overdue
        else 0
    )
    persistent = list(
        con.execute(
            select(a.alert_key).where(
                a.state.in_(("firing", "acknowledged")),
                a.consecutive >= routing.persist_refreshes,
                a.strategic_requested_at.is_(None),
            )
        ).scalars()
    )
    level_three = 0
    if persistent:
        level_three = escalate_keys(con, persistent, 3, "persists", routing, render, now)
        for key in persistent:
            _set(con, key, strategic_requested_at=now)
    return {"level_2": level_two, "level_3": level_three, "strategic_refresh": bool(persistent)}


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
