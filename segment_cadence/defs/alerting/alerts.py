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

Every notification goes to the durable outbox (alerts.outbox) in the same transaction as
the state change; delivery (segment_cadence/defs/alerting/slack.py) happens afterwards and is retried,
so nothing is lost when Slack is down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import duckdb

from segment_cadence.defs.health.thresholds import Breach, ThresholdConfig

DDL = (
    "create schema if not exists alerts",
    """
    create table if not exists alerts.alerts (
        alert_key varchar, rule_id varchar, segment_id varchar, metric varchar,
        definition_version varchar, state varchar, severity varchar, consecutive integer,
        clean_streak integer, first_breach_month date, last_breach_month date,
        last_value double, last_baseline double, last_bound double, fired_at timestamp,
        acknowledged_by varchar, acknowledged_at timestamp, resolved_at timestamp,
        level integer, last_notified_at timestamp, strategic_requested_at timestamp
    )
    """,
    """
    create table if not exists alerts.silences (
        silence_id varchar, segment_id varchar, rule_id varchar, created_by varchar,
        reason varchar, created_at timestamp, expires_at timestamp
    )
    """,
    """
    create table if not exists alerts.outbox (
        message_id varchar, created_at timestamp, kind varchar, segment_id varchar,
        month_end date, channel varchar, alert_keys varchar, payload varchar,
        reply_to varchar, status varchar, attempts integer, last_error varchar,
        sent_at timestamp, slack_ts varchar, slack_channel_id varchar
    )
    """,
    """
    create table if not exists alerts.suppressed (
        month_end date, alert_key varchar, reason varchar, recorded_at timestamp
    )
    """,
    "create table if not exists alerts.processed_months (month_end date, processed_at timestamp)",
)


@dataclass(frozen=True)
class Routing:
    """Where messages go, from configuration (the `settings` of config/thresholds.yaml)."""

    owner_channels: dict[str, str]
    default_channel: str = "#segment-health"
    escalation_channel: str = "#segment-oncall"
    oncall_mention: str = "<!subteam^oncall>"
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
            oncall_mention=settings.get("oncall_mention", "<!subteam^oncall>"),
            repeat_interval=timedelta(hours=float(settings.get("repeat_interval_hours", 24))),
            ack_timeout=timedelta(hours=float(settings.get("ack_timeout_hours", 24))),
            persist_refreshes=int(settings.get("persist_refreshes", 3)),
            dagster_url=str(settings.get("dagster_url", "http://127.0.0.1:3000")),
        )

    def channel_for(self, owner: str | None) -> str:
        return self.owner_channels.get(owner or "", self.default_channel)


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL:
        con.execute(statement)


def alert_key(rule_id: str, segment_id: str, metric: str, definition_version: str) -> str:
    return f"{rule_id}|{segment_id}|{metric}|{definition_version}"


def _active_silence(con, segment_id: str, rule_id: str, now: datetime) -> tuple | None:
    return con.execute(
        "select silence_id, created_by, reason, expires_at from alerts.silences "
        "where expires_at > ? and (segment_id = ? or segment_id = '*') "
        "and (rule_id = ? or rule_id = '*') order by expires_at desc limit 1",
        [now, segment_id, rule_id],
    ).fetchone()


def silence(con: duckdb.DuckDBPyConnection, *, segment_id: str = "*", rule_id: str = "*",
            created_by: str, reason: str, expires_at: datetime, now: datetime) -> str:  # fmt: skip
    """A monitoring window: matching alerts are not sent until it expires."""
    ensure_tables(con)
    if not created_by.strip() or not reason.strip():
        raise ValueError("a silence needs who and why")
    if expires_at <= now:
        raise ValueError("a silence must expire in the future")
    silence_id = f"s-{int(now.timestamp())}-{segment_id}-{rule_id}"
    con.execute(
        "insert into alerts.silences values (?, ?, ?, ?, ?, ?, ?)",
        [silence_id, segment_id, rule_id, created_by, reason, now, expires_at],
    )
    return silence_id


def acknowledge(con: duckdb.DuckDBPyConnection, key_or_segment: str, by: str, now: datetime) -> int:
    """Acknowledge open alerts by key, or all open alerts of a segment (the huddle)."""
    ensure_tables(con)
    return (
        con.execute(
            "update alerts.alerts set state = 'acknowledged', acknowledged_by = ?, acknowledged_at = ? "
            "where state = 'firing' and (alert_key = ? or segment_id = ?) returning alert_key",
            [by, now, key_or_segment, key_or_segment],
        )
        .fetchall()
        .__len__()
    )


def _enqueue(con, *, kind: str, segment_id: str, month_end: date | None, channel: str,
             keys: list[str], payload: dict[str, Any], reply_to: str | None, now: datetime) -> str:  # fmt: skip
    message_id = (
        f"{kind}:{segment_id}:{month_end}:{channel}:{len(keys)}:{int(now.timestamp() * 1e6)}"
    )
    con.execute(
        "insert into alerts.outbox values (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, null, null, null, null)",
        [
            message_id,
            now,
            kind,
            segment_id,
            month_end,
            channel,
            json.dumps(keys),
            json.dumps(payload),
            reply_to,
        ],  # fmt: skip
    )
    return message_id


def process_refresh(
    con: duckdb.DuckDBPyConnection,
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
    """Apply one refresh's breaches to the alert states and queue the messages. Idempotent:
    a month already processed is skipped (the sensor's cursor can be replayed safely)."""
    ensure_tables(con)
    if con.execute(
        "select 1 from alerts.processed_months where month_end = ?", [month_end]
    ).fetchone():
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
        if reason:
            con.execute(
                "insert into alerts.suppressed values (?, ?, ?, ?)", [month_end, key, reason, now]
            )
            counts["suppressed"] += 1
            continue
        breached_keys.add(key)
        row = con.execute(
            "select state, consecutive, last_notified_at from alerts.alerts where alert_key = ?",
            [key],
        ).fetchone()
        if row is None:
            con.execute(
                "insert into alerts.alerts values (?, ?, ?, ?, ?, 'pending', ?, 0, 0, ?, ?, ?, ?, ?, "
                "null, null, null, null, 0, null, null)",
                [
                    key,
                    breach.rule_id,
                    breach.segment_id,
                    breach.metric,
                    definition_version,
                    breach.severity,
                    month_end,
                    month_end,
                    breach.value,
                    breach.baseline,
                    breach.bound,
                ],  # fmt: skip
            )
            row = ("pending", 0, None)
        state, consecutive, last_notified = row
        if state == "resolved":
            state, consecutive = "pending", 0
        consecutive += 1
        con.execute(
            "update alerts.alerts set consecutive = ?, clean_streak = 0, last_breach_month = ?, "
            "severity = ?, last_value = ?, last_baseline = ?, last_bound = ?, state = ? "
            "where alert_key = ?",
            [
                consecutive,
                month_end,
                breach.severity,
                breach.value,
                breach.baseline,
                breach.bound,
                state,
                key,
            ],  # fmt: skip
        )
        should_fire = state == "pending" and consecutive >= rule.consecutive
        repeat_due = state in ("firing", "acknowledged") and (
            last_notified is None or now - last_notified >= routing.repeat_interval
        )
        if should_fire:
            con.execute(
                "update alerts.alerts set state = 'firing', fired_at = ?, level = 1 where alert_key = ?",
                [now, key],
            )
            counts["fired"] += 1
        if should_fire or (repeat_due and state == "firing"):
            to_notify.setdefault(breach.segment_id, []).append(
                {"key": key, "breach": breach, "rule": rule, "consecutive": consecutive}
            )
    # Clean refreshes move open alerts towards resolution.
    open_alerts = con.execute(
        "select alert_key, rule_id, segment_id, clean_streak from alerts.alerts "
        "where state in ('pending', 'firing', 'acknowledged')"
    ).fetchall()
    for key, rule_id, segment_id, clean in open_alerts:
        if key in breached_keys:
            continue
        clean += 1
        rule = rules.get(rule_id)
        if rule is None or clean >= rule.clear_after:
            con.execute(
                "update alerts.alerts set state = 'resolved', resolved_at = ?, clean_streak = ?, "
                "consecutive = 0 where alert_key = ?",
                [now, clean, key],
            )
            first = con.execute(
                "select message_id from alerts.outbox where kind = 'firing' and alert_keys like ? "
                "order by created_at limit 1",
                [f'%"{key}"%'],
            ).fetchone()
            if first:
                payload = render.resolved(key, month_end, routing)
                _enqueue(con, kind="resolved", segment_id=segment_id, month_end=month_end,
                         channel=routing.channel_for(owners.get(segment_id)), keys=[key],
                         payload=payload, reply_to=first[0], now=now)  # fmt: skip
                counts["messages"] += 1
            counts["resolved"] += 1
        else:
            con.execute(
                "update alerts.alerts set clean_streak = ? where alert_key = ?", [clean, key]
            )
    for segment_id, items in sorted(to_notify.items()):
        owner = owners.get(segment_id)
        payload = render.firing(segment_id, owner, month_end, definition_version, items, routing)
        _enqueue(con, kind="firing", segment_id=segment_id, month_end=month_end,
                 channel=routing.channel_for(owner), keys=[i["key"] for i in items],
                 payload=payload, reply_to=None, now=now)  # fmt: skip
        con.executemany(
            "update alerts.alerts set last_notified_at = ? where alert_key = ?",
            [(now, i["key"]) for i in items],
        )
        counts["messages"] += 1
        if any(i["breach"].severity == "critical" for i in items):
            counts["messages"] += escalate_keys(con, [i["key"] for i in items], 2, "critical",
                                                routing, render, now)  # fmt: skip
    con.execute("insert into alerts.processed_months values (?, ?)", [month_end, now])
    return counts


def escalate_keys(con, keys: list[str], level: int, why: str, routing: Routing, render: Any,
                  now: datetime) -> int:  # fmt: skip
    """Raise open alerts to a level and queue the escalation message once per level."""
    rows = con.execute(
        f"select alert_key, segment_id, rule_id, metric, last_value, severity from alerts.alerts "
        f"where alert_key in ({', '.join('?' for _ in keys)}) and level < ?",
        [*keys, level],
    ).fetchall()
    if not rows:
        return 0
    con.executemany(
        "update alerts.alerts set level = ? where alert_key = ?", [(level, r[0]) for r in rows]
    )
    by_segment: dict[str, list[tuple]] = {}
    for row in rows:
        by_segment.setdefault(row[1], []).append(row)
    for segment_id, items in by_segment.items():
        kind = "strategic_request" if level >= 3 else "escalation"
        payload = render.escalation(segment_id, level, why, items, routing)
        _enqueue(con, kind=kind, segment_id=segment_id, month_end=None,
                 channel=routing.escalation_channel, keys=[r[0] for r in items],
                 payload=payload, reply_to=None, now=now)  # fmt: skip
    return len(by_segment)


def escalate_due(con: duckdb.DuckDBPyConnection, config: ThresholdConfig, render: Any,
                 now: datetime) -> dict[str, Any]:  # fmt: skip
    """Time-based steps of the ladder, evaluated by the sensor on each tick.

    Level 2: firing and not acknowledged within the ack timeout. Level 3: still open after
    `persist_refreshes` breaching refreshes: request the strategic refresh (once).
    """
    ensure_tables(con)
    routing = Routing.from_settings(config.settings)
    overdue = [
        r[0]
        for r in con.execute(
            "select alert_key from alerts.alerts where state = 'firing' and level < 2 "
            "and fired_at <= ?",
            [now - routing.ack_timeout],
        ).fetchall()
    ]
    level_two = (
        escalate_keys(con, overdue, 2, "not acknowledged in time", routing, render, now)
        if overdue
        else 0
    )  # noqa: E501
    persistent = [
        r[0]
        for r in con.execute(
            "select alert_key from alerts.alerts where state in ('firing', 'acknowledged') "
            "and consecutive >= ? and strategic_requested_at is null",
            [routing.persist_refreshes],
        ).fetchall()
    ]
    level_three = 0
    if persistent:
        level_three = escalate_keys(con, persistent, 3, "persists", routing, render, now)
        con.executemany(
            "update alerts.alerts set strategic_requested_at = ? where alert_key = ?",
            [(now, k) for k in persistent],
        )
    return {"level_2": level_two, "level_3": level_three, "strategic_refresh": bool(persistent)}
