"""The alert lifecycle as stages, in the shape of Alertmanager's pipeline, each a small pure
function over plain data: dispatch -> inhibit -> silence -> transition -> notify.

- dispatch: one refresh's breaches become observations, one per alert identity (rule,
  segment, metric, definition version);
- inhibit: a critical data-quality breach holds the health alerts that depend on the inputs,
  and a definition change holds the size and migration alerts of the segments it changed.
  An inhibited observation neither advances nor clears its alert: the measurement is not
  trusted, either way;
- silence: a monitoring window marks observations silenced. It hides notifications, never
  state: a silenced alert still fires, still counts as breaching and so never resolves;
- transition: the state machine (pending -> firing -> acknowledged -> resolved), with
  `consecutive` breaching refreshes to fire and `clear_after` clean ones to resolve;
- notify: what on-call hears of the transitions not silenced or inhibited, grouped into one
  message per segment, each level-2 escalation after the message it escalates.

The state store wrapper (alerts.py) loads the state these stages read and writes what they
return; tests/test_alert_lifecycle.py checks the invariants over random event sequences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta

from segment_cadence.defs.health.thresholds import Breach, ThresholdRule

OPEN_STATES = ("pending", "firing", "acknowledged")


def alert_key(rule_id: str, segment_id: str, metric: str, definition_version: str) -> str:
    return f"{rule_id}|{segment_id}|{metric}|{definition_version}"


@dataclass(frozen=True)
class Alert:
    """The state of one alert identity: a row of the state store's alerts table."""

    alert_key: str
    rule_id: str
    segment_id: str
    metric: str
    definition_version: str
    state: str = "pending"
    severity: str = "warn"
    consecutive: int = 0
    clean_streak: int = 0
    first_breach_month: date | None = None
    last_breach_month: date | None = None
    last_value: float | None = None
    last_baseline: float | None = None
    last_bound: float | None = None
    fired_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    level: int = 0
    last_notified_at: datetime | None = None
    strategic_requested_at: datetime | None = None
    # Who hears of it when not the segment's owner: a KPI's owner (None: the segment's).
    owner: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


@dataclass(frozen=True)
class SilenceWindow:
    silence_id: str
    segment_id: str
    rule_id: str
    created_by: str
    reason: str
    expires_at: datetime

    def matches(self, segment_id: str, rule_id: str, now: datetime) -> bool:
        return (
            self.expires_at > now
            and self.segment_id in ("*", segment_id)
            and self.rule_id in ("*", rule_id)
        )


@dataclass(frozen=True)
class Observation:
    """One alert identity breaching in one refresh, and why on-call will not hear of it."""

    key: str
    breach: Breach
    inhibited: str | None = None
    silenced: str | None = None

    @property
    def muted(self) -> str | None:
        return self.inhibited or self.silenced


@dataclass(frozen=True)
class Event:
    """A transition worth telling: `fired`, `repeat` (still firing after the repeat
    interval) or `resolved`."""

    kind: str
    key: str


@dataclass(frozen=True)
class Transition:
    alerts: dict[str, Alert]
    events: tuple[Event, ...]
    changed: frozenset[str]


@dataclass(frozen=True)
class Notice:
    """A message to queue: `kind` firing, escalation or resolved, about `keys` of one
    segment. `after` is the index (in the same list) of the notice it must follow."""

    kind: str
    segment_id: str
    keys: tuple[str, ...]
    level: int = 1
    after: int | None = None
    why: str = ""
    # Whom it goes to when not the segment's owner (a KPI's owner).
    owner: str | None = None


_SEVERITY_RANK = {"warn": 1, "critical": 2}


def dispatch(breaches: Iterable[Breach], definition_version: str) -> list[Observation]:
    """One observation per alert identity; of two breaches of the same identity, the worse."""
    chosen: dict[str, Breach] = {}
    for breach in breaches:
        key = alert_key(breach.rule_id, breach.segment_id, breach.metric, definition_version)
        held = chosen.get(key)
        if held is None or _SEVERITY_RANK.get(breach.severity, 0) > _SEVERITY_RANK.get(
            held.severity, 0
        ):
            chosen[key] = breach
    return [Observation(key, breach) for key, breach in chosen.items()]


def inhibit(
    observations: list[Observation],
    rules: Mapping[str, ThresholdRule],
    changed_segments: set[str],
) -> list[Observation]:
    data_quality_failed = any(
        rules[o.breach.rule_id].kind_of_alert == "data_quality" and o.breach.severity == "critical"
        for o in observations
    )
    marked = []
    for o in observations:
        rule = rules[o.breach.rule_id]
        reason = None
        if data_quality_failed and rule.depends_on_inputs:
            reason = "inhibited: a data-quality check failed this refresh"
        elif o.breach.segment_id in changed_segments and rule.kind_of_alert in (
            "size",
            "migration",
        ):
            reason = "inhibited: the segment's definition changed in this version"
        marked.append(replace(o, inhibited=reason) if reason else o)
    return marked


def silence(
    observations: list[Observation], windows: Iterable[SilenceWindow], now: datetime
) -> list[Observation]:
    windows = sorted(windows, key=lambda w: w.expires_at, reverse=True)
    marked = []
    for o in observations:
        found = next(
            (w for w in windows if w.matches(o.breach.segment_id, o.breach.rule_id, now)), None
        )
        if found and not o.inhibited:
            o = replace(
                o,
                silenced=(
                    f"silenced by {found.created_by} until {found.expires_at:%Y-%m-%d %H:%M}: "
                    f"{found.reason}"
                ),
            )
        marked.append(o)
    return marked


def transition(
    alerts: Mapping[str, Alert],
    observations: list[Observation],
    rules: Mapping[str, ThresholdRule],
    *,
    month_end: date,
    now: datetime,
    repeat_interval: timedelta,
) -> Transition:
    """Move every alert this refresh touches. `alerts` holds the observed alerts that exist
    and every open one; the result holds the same keys, new ones added."""
    current = dict(alerts)
    events: list[Event] = []
    changed: set[str] = set()
    breaching = {o.key for o in observations}
    for o in observations:
        b = o.breach
        alert = current.get(o.key) or Alert(
            o.key,
            b.rule_id,
            b.segment_id,
            b.metric,
            o.key.rsplit("|", 1)[-1],
            first_breach_month=month_end,
            owner=b.owner,
        )
        if o.inhibited:
            current[o.key] = replace(alert, clean_streak=0)
            changed.add(o.key)
            continue
        state, consecutive = alert.state, alert.consecutive
        if state == "resolved":
            state, consecutive = "pending", 0
            # A new episode: it fires, escalates and resolves afresh.
            alert = replace(
                alert,
                first_breach_month=month_end,
                level=0,
                resolved_at=None,
                fired_at=None,
                acknowledged_by=None,
                acknowledged_at=None,
                last_notified_at=None,
                strategic_requested_at=None,
            )
        consecutive += 1
        alert = replace(
            alert,
            state=state,
            consecutive=consecutive,
            clean_streak=0,
            last_breach_month=month_end,
            severity=b.severity,
            last_value=b.value,
            last_baseline=b.baseline,
            last_bound=b.bound,
            owner=b.owner,
        )
        if state == "pending" and consecutive >= rules[b.rule_id].consecutive:
            alert = replace(alert, state="firing", fired_at=now, level=max(alert.level, 1))
            events.append(Event("fired", o.key))
        elif state == "firing" and (
            alert.last_notified_at is None or now - alert.last_notified_at >= repeat_interval
        ):
            events.append(Event("repeat", o.key))
        current[o.key] = alert
        changed.add(o.key)
    for key, alert in list(current.items()):
        if key in breaching or not alert.is_open:
            continue
        clean = alert.clean_streak + 1
        rule = rules.get(alert.rule_id)
        if rule is None or clean >= rule.clear_after:
            current[key] = replace(
                alert, state="resolved", resolved_at=now, clean_streak=clean, consecutive=0
            )
            if alert.fired_at is not None:  # a pending alert that never fired ends unheard
                events.append(Event("resolved", key))
        else:
            current[key] = replace(alert, clean_streak=clean)
        changed.add(key)
    return Transition(current, tuple(events), frozenset(changed))


def notify(transition_: Transition, observations: list[Observation]) -> list[Notice]:
    """One firing message per segment and owner for what fired or is due a repeat, unless
    muted (a KPI's owner hears of its KPI apart from the segment's owner, who hears of its
    health); a level-2 escalation right after it when a finding is critical; one resolution
    per resolved alert, to whom heard of it."""
    muted = {o.key for o in observations if o.muted}
    severity = {o.key: o.breach.severity for o in observations}
    by_recipient: dict[tuple[str, str], list[str]] = {}
    resolved: list[Event] = []
    for event in transition_.events:
        if event.kind == "resolved":
            resolved.append(event)
        elif event.key not in muted:
            alert = transition_.alerts[event.key]
            by_recipient.setdefault((alert.segment_id, alert.owner or ""), []).append(event.key)
    notices: list[Notice] = []
    for event in resolved:
        alert = transition_.alerts[event.key]
        notices.append(Notice("resolved", alert.segment_id, (event.key,), owner=alert.owner))
    for (segment_id, owner), keys in sorted(by_recipient.items()):
        notices.append(Notice("firing", segment_id, tuple(keys), owner=owner or None))
        critical = tuple(
            k for k in keys if severity.get(k) == "critical" and transition_.alerts[k].level < 2
        )
        if critical:
            notices.append(
                Notice(
                    "escalation",
                    segment_id,
                    critical,
                    2,
                    after=len(notices) - 1,
                    why="critical",
                    owner=owner or None,
                )
            )
    return notices


@dataclass(frozen=True)
class Escalation:
    level: int
    why: str
    keys: tuple[str, ...] = field(default_factory=tuple)


def due_escalations(
    alerts: Iterable[Alert],
    windows: Iterable[SilenceWindow],
    *,
    now: datetime,
    ack_timeout: timedelta,
    persist_refreshes: int,
) -> list[Escalation]:
    """The time-based steps of the ladder. Level 2: notified, not acknowledged within the
    ack timeout. Level 3: still open after `persist_refreshes` breaching refreshes (once per
    episode). A silenced alert is not escalated: a silence hides notifications."""
    windows = list(windows)
    overdue, persistent = [], []
    for alert in alerts:
        if any(w.matches(alert.segment_id, alert.rule_id, now) for w in windows):
            continue
        if (
            alert.state == "firing"
            and alert.level < 2
            and alert.last_notified_at is not None
            and now - alert.last_notified_at >= ack_timeout
        ):
            overdue.append(alert.alert_key)
        if (
            alert.state in ("firing", "acknowledged")
            and alert.consecutive >= persist_refreshes
            and alert.strategic_requested_at is None
            and alert.last_notified_at is not None
        ):
            persistent.append(alert.alert_key)
    found = []
    if overdue:
        found.append(Escalation(2, "not acknowledged in time", tuple(sorted(overdue))))
    if persistent:
        found.append(Escalation(3, "persists", tuple(sorted(persistent))))
    return found
