"""The campaign firewall: who a campaign may reach, and why the rest are blocked.

A campaign is checked against the *published* membership in force at its planned time (the
latest month published before that date) and the pause behaviour of the definition version
that produced it. Each customer is allowed or blocked with reasons:

- `sender_in_onboarding`: the sender joined less than 30 days before the planned time (the
  charter's one rule for onboarding; it blocks the whole campaign);
- `paused_segment`: the customer is in a paused segment;
- `not_in_targeted_segment`: an explicit customer list names someone outside the segments
  the campaign targets;
- `unknown_customer`: not in the published membership;
- `no_consent`: the channel needs consent the customer has not given.

There is no flag that skips the firewall. A campaign that needs any customer blocked is a
segment-unsafe attempt and is recorded as one (once per campaign content and membership, so
re-checking the same campaign adds nothing). The records (checks, blocked customers,
exception requests) live in the state store (segment_cadence/platform/state_store.py), so a
check or an override request is recorded while a refresh writes; the check itself reads the
published membership from the warehouse, which may be opened read-only. A request to override ("send this once") is
always refused, recorded with who, when, why and the segments involved, and answered the
charter's way: name the segment, name the risk, offer the protocol.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml
from sqlalchemy import Connection, insert, select

from segment_cadence.defs.dictionary import stored
from segment_cadence.defs.governance import governance
from segment_cadence.defs.governance.governance import GovernanceConfig, LanguageFinding
from segment_cadence.platform import state_store, yaml_text
from segment_cadence.platform.state_store import exception_requests, firewall_blocked
from segment_cadence.platform.state_store import firewall_checks as checks
from segment_cadence.platform.warehouse import table_exists

# The columns of a firewall check as the review pack and the Dagster UI show it.
CHECK_COLUMNS = (
    "campaign",
    "sender",
    "channel",
    "planned",
    "allowed",
    "blocked",
    "decision",
    "reasons",
)
REASONS = (
    "sender_in_onboarding",
    "paused_segment",
    "not_in_targeted_segment",
    "unknown_customer",
    "no_consent",
    "holdout",
)
# Held out to measure lift: kept from the campaign like the others, but not an unsafe
# attempt; a customer blocked for this reason alone is counted apart (held_out), never in
# the red flags.
HOLDOUT = "holdout"
# Each reason in a reviewer's words, after a count ("412 in a paused segment"): the one place
# a reason code becomes text (the check's summary, an override's answer, the review pack).
REASON_WORDS = {
    "sender_in_onboarding": "because the sender is in onboarding",
    "paused_segment": "in a paused segment",
    "not_in_targeted_segment": "outside the targeted segments",
    "unknown_customer": "not in the published membership",
    "no_consent": "opted out",
    "holdout": "held out to measure lift",
}
CAMPAIGN_FIELDS = {
    "name",
    "sender",
    "channel",
    "planned_at",
    "target_segments",
    "customers",
    "copy",
    "requested_by",
    "team",
}


class CampaignError(ValueError):
    """A campaign definition that cannot be checked (the message says why)."""


@dataclass(frozen=True)
class Campaign:
    name: str
    sender_id: str
    channel: str
    planned_at: datetime
    target_segments: tuple[str, ...] = ()
    customer_ids: tuple[str, ...] = ()
    copy: str = ""
    requested_by: str | None = None

    def fingerprint(self) -> str:
        content = asdict(self) | {"planned_at": self.planned_at.isoformat()}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class BlockedCustomer:
    customer_id: str
    segment_id: str | None
    reasons: tuple[str, ...]


@dataclass
class FirewallDecision:
    check_id: str
    campaign: Campaign
    membership_month: date
    team: str | None
    allowed: list[str]
    blocked: list[BlockedCustomer]
    segment_names: dict[str, str] = field(default_factory=dict)
    paused_segments: set[str] = field(default_factory=set)
    language: list[LanguageFinding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    onboarding_until: date | None = None
    recorded: bool = False

    @property
    def held_out(self) -> list[BlockedCustomer]:
        """Customers kept out only because they are in a holdout."""
        return [b for b in self.blocked if b.reasons == (HOLDOUT,)]

    @property
    def unsafe(self) -> list[BlockedCustomer]:
        """Customers blocked for a governance reason (the ones the red flags count)."""
        return [b for b in self.blocked if b.reasons != (HOLDOUT,)]

    @property
    def decision(self) -> str:
        """clear, partially_blocked or blocked, from the governance blocks only: a campaign
        whose audience loses only its held-out customers is clear."""
        if not self.unsafe:
            return "clear"
        return "blocked" if not self.allowed else "partially_blocked"

    def reason_counts(self, include_holdout: bool = True) -> dict[str, int]:
        counts: dict[str, int] = {}
        for customer in self.blocked if include_holdout else self.unsafe:
            counts[customer.reasons[0]] = counts.get(customer.reasons[0], 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: REASONS.index(kv[0])))

    def blocked_segments(self) -> dict[str, int]:
        """Paused segments whose members were blocked, with how many."""
        counts: dict[str, int] = {}
        for customer in self.blocked:
            if "paused_segment" in customer.reasons and customer.segment_id:
                counts[customer.segment_id] = counts.get(customer.segment_id, 0) + 1
        return dict(sorted(counts.items()))

    def summary(self) -> str:
        c = self.campaign
        lines = [
            f"campaign '{c.name}' by {c.sender_id} on {c.channel}, planned {c.planned_at:%Y-%m-%d %H:%M}",
            f"checked against membership published for {self.membership_month:%Y-%m}",
            f"decision: {self.decision.replace('_', ' ')}: {len(self.allowed)} may be sent to, "
            f"{len(self.unsafe)} blocked"
            + (f", {len(self.held_out)} held out to measure lift" if self.held_out else ""),
        ]
        for reason, count in self.reason_counts().items():
            lines.append(f"  blocked, {reason_words(reason)}: {count}")
        for segment_id, count in self.blocked_segments().items():
            name = self.segment_names.get(segment_id, segment_id)
            lines.append(f"  paused segment {name} ({segment_id}): {count} customers protected")
        if self.onboarding_until:
            lines.append(
                f"  {c.sender_id} is in their first 30 days and may send from "
                f"{self.onboarding_until:%Y-%m-%d}"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"language: {f.message()}" for f in self.language]
        return "\n".join(lines)


def reason_words(reason: str) -> str:
    """A reason code in words (an unknown code as its words, underscores dropped)."""
    return REASON_WORDS.get(reason, reason.replace("_", " "))


def reasons_in_words(counts: dict[str, int], paused_segments: Sequence[str] = ()) -> str:
    """Blocked customers by reason, in words and in REASONS order: "412 in a paused segment
    (evaluation), 3 opted out". `paused_segments` names the paused segments involved."""
    known = {r: i for i, r in enumerate(REASONS)}
    ordered = sorted(counts.items(), key=lambda kv: (known.get(kv[0], len(known)), kv[0]))
    parts = []
    for reason, n in ordered:
        words = f"{n:,} {reason_words(reason)}"
        if reason == "paused_segment" and paused_segments:
            words += f" ({', '.join(paused_segments)})"
        parts.append(words)
    return ", ".join(parts) or "none blocked"


def _as_datetime(value: Any, label: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise CampaignError(
            f"{label}: planned_at {value!r} is not a date or date-time "
            "(use 2026-11-10 or 2026-11-10T09:00)"
        ) from None


def _string_list(value: Any, key: str, label: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise CampaignError(f"{label}: {key} must be a list of ids")
    return tuple(str(v) for v in value)


def parse_campaign(document: Any, label: str = "campaign") -> Campaign:
    """A Campaign from a mapping (a parsed YAML file or a Python dict)."""
    if not isinstance(document, dict):
        raise CampaignError(f"{label}: expected a mapping with name, sender, channel, planned_at")
    unknown = set(document) - CAMPAIGN_FIELDS
    if unknown:
        raise CampaignError(
            f"{label}: unknown fields {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(CAMPAIGN_FIELDS))}"
        )
    missing = [k for k in ("name", "sender", "channel", "planned_at") if not document.get(k)]
    if missing:
        raise CampaignError(f"{label}: missing {', '.join(missing)}")
    targets = _string_list(document.get("target_segments"), "target_segments", label)
    customers = _string_list(document.get("customers"), "customers", label)
    if not targets and not customers:
        raise CampaignError(f"{label}: give target_segments, customers, or both")
    return Campaign(
        name=str(document["name"]),
        sender_id=str(document["sender"]),
        channel=str(document["channel"]).lower(),
        planned_at=_as_datetime(document["planned_at"], label),
        target_segments=targets,
        customer_ids=customers,
        copy=str(document.get("copy") or ""),
        requested_by=None
        if document.get("requested_by") is None
        else str(document["requested_by"]),
    )


def load_campaign(path: Path | str) -> Campaign:
    path = Path(path)
    try:
        document = yaml_text.load(path.read_text())
    except FileNotFoundError:
        raise CampaignError(f"{path}: campaign file not found") from None
    except yaml.YAMLError as error:
        raise CampaignError(f"{path}: not valid YAML: {error}") from None
    return parse_campaign(document, str(path))


def membership_month_for(con: duckdb.DuckDBPyConnection, when: date) -> date | None:
    """The month whose published membership is in force on a date: the latest before it."""
    if not table_exists(con, "published", "segment_membership"):
        return None
    return con.execute(
        "select max(month_end) from published.segment_membership where month_end < ?", [when]
    ).fetchone()[0]


def _sender(con: duckdb.DuckDBPyConnection, sender_id: str) -> tuple[str | None, date] | None:
    if not table_exists(con, "raw", "team_members"):
        return None
    row = con.execute(
        "select team, joined_date from raw.team_members where sender_id = ?", [sender_id]
    ).fetchone()
    return None if row is None else (row[0], row[1])


def check_campaign(
    con: duckdb.DuckDBPyConnection,
    campaign: Campaign,
    *,
    config: GovernanceConfig | None = None,
    record: bool = True,
    checked_at: datetime | None = None,
) -> FirewallDecision:
    """Who the campaign may reach and who is blocked, with reasons; recorded (in the state
    store) when blocking. `con` is the warehouse, read-only is enough."""
    config = config or governance.default_config()
    if campaign.channel not in config.channels:
        raise CampaignError(
            f"campaign '{campaign.name}': unknown channel '{campaign.channel}'; "
            f"known: {', '.join(config.channels)}"
        )
    month = membership_month_for(con, campaign.planned_at.date())
    if month is None:
        raise CampaignError(
            f"campaign '{campaign.name}': no membership published before "
            f"{campaign.planned_at:%Y-%m-%d}; run the monthly refresh first"
        )
    names = stored.segments_of_month(con, month)
    holdout_column = (
        "m.holdout"
        if "holdout" in _columns(con, "published", "segment_membership")
        else "cast(null as varchar)"
    )
    paused = stored.paused_segments_of_month(con, month)
    unknown_targets = [s for s in campaign.target_segments if s not in names]
    if unknown_targets:
        raise CampaignError(
            f"campaign '{campaign.name}': unknown target segments {', '.join(unknown_targets)}; "
            f"segments in force: {', '.join(sorted(names))}"
        )
    sender = _sender(con, campaign.sender_id)
    if sender is None:
        raise CampaignError(
            f"campaign '{campaign.name}': sender '{campaign.sender_id}' is not a known team "
            "member (raw.team_members); every sender must be on the team list"
        )
    team, joined = sender
    onboarding_until = joined + timedelta(days=config.onboarding_days)
    in_onboarding = campaign.planned_at.date() < onboarding_until
    consent_column = config.channels[campaign.channel]

    con.execute("create or replace temp table _fw_targets (segment_id varchar)")
    con.execute("create or replace temp table _fw_listed (customer_id varchar)")
    if campaign.target_segments:
        con.executemany(
            "insert into _fw_targets values (?)", [[s] for s in campaign.target_segments]
        )
    if campaign.customer_ids:
        con.executemany(
            "insert into _fw_listed values (?)", [[c] for c in set(campaign.customer_ids)]
        )
    consent = f"c.{consent_column}" if consent_column else "true"
    listed_only = "true" if not campaign.target_segments else "false"
    rows = con.execute(
        f"""
        with membership as (
            select * from published.segment_membership where month_end = ?
        ),
        recipients as (
            select customer_id from membership where segment_id in (select segment_id from _fw_targets)
            union
            select customer_id from _fw_listed
        )
        select r.customer_id, m.segment_id,
            m.customer_id is null as unknown,
            {listed_only} or m.segment_id in (select segment_id from _fw_targets) as targeted,
            coalesce({consent}, false) as consented,
            {holdout_column} as holdout
        from recipients r
        left join membership m using (customer_id)
        left join raw.customers c using (customer_id)
        order by r.customer_id
        """,
        [month],
    ).fetchall()
    con.execute("drop table _fw_targets")
    con.execute("drop table _fw_listed")

    allowed: list[str] = []
    blocked: list[BlockedCustomer] = []
    for customer_id, segment_id, unknown, targeted, consented, holdout in rows:
        reasons = []
        if in_onboarding:
            reasons.append("sender_in_onboarding")
        if unknown:
            reasons.append("unknown_customer")
        else:
            if segment_id in paused:
                reasons.append("paused_segment")
            if not targeted:
                reasons.append("not_in_targeted_segment")
            if not consented:
                reasons.append("no_consent")
            if holdout:
                reasons.append(HOLDOUT)
        if reasons:
            reasons.sort(key=REASONS.index)
            blocked.append(BlockedCustomer(customer_id, segment_id, tuple(reasons)))
        else:
            allowed.append(customer_id)

    warnings = []
    age = (campaign.planned_at.date() - month).days
    if age > config.stale_membership_days:
        warnings.append(
            f"the newest published membership ({month:%Y-%m}) is {age} days older than the "
            "planned time; refresh before sending"
        )
    if not rows:
        warnings.append("the campaign reaches nobody: its targets have no members")
    language = governance.lint_text(
        campaign.name, source="campaign", object_id=campaign.name, field="name", config=config
    )
    language += governance.lint_text(
        campaign.copy, source="campaign", object_id=campaign.name, field="copy", config=config
    )
    check_id = hashlib.sha256(f"{campaign.fingerprint()}|{month}".encode()).hexdigest()[:16]
    decision = FirewallDecision(
        check_id=check_id,
        campaign=campaign,
        membership_month=month,
        team=team,
        allowed=allowed,
        blocked=blocked,
        segment_names=names,
        paused_segments=paused,
        language=language,
        warnings=warnings,
        onboarding_until=onboarding_until if in_onboarding else None,
    )
    if record:
        with state_store.transaction() as state:
            decision.recorded = record_check(state, decision, checked_at or datetime.now())
    return decision


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    """The columns of a warehouse relation (a membership published before holdouts existed
    has no holdout column)."""
    return {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }


def record_check(state: Connection, decision: FirewallDecision, checked_at: datetime) -> bool:
    """Record a check once (by campaign content and membership month); False if already there."""
    if state.execute(
        select(checks.c.check_id).where(checks.c.check_id == decision.check_id)
    ).first():
        return False
    c = decision.campaign
    state.execute(
        insert(checks).values(
            check_id=decision.check_id,
            checked_at=checked_at,
            campaign_name=c.name,
            sender_id=c.sender_id,
            team=decision.team,
            channel=c.channel,
            target_segments=",".join(c.target_segments),
            planned_at=c.planned_at,
            membership_month=decision.membership_month,
            requested_by=c.requested_by or c.sender_id,
            recipients=len(decision.allowed) + len(decision.blocked),
            allowed=len(decision.allowed),
            blocked=len(decision.unsafe),
            held_out=len(decision.held_out),
            decision=decision.decision,
            reason_counts=json.dumps(decision.reason_counts(include_holdout=False)),
            blocked_segments=",".join(decision.blocked_segments()),
        )
    )
    if decision.blocked:
        state.execute(
            insert(firewall_blocked),
            [
                {
                    "check_id": decision.check_id,
                    "customer_id": b.customer_id,
                    "segment_id": b.segment_id,
                    "reason": b.reasons[0],
                    "all_reasons": ",".join(b.reasons),
                }
                for b in decision.blocked
            ],
        )
    return True


@dataclass(frozen=True)
class OverrideAnswer:
    request_id: str
    refused: bool
    segments: tuple[str, ...]
    message: str


def request_override(
    con: duckdb.DuckDBPyConnection,
    campaign: Campaign,
    *,
    requested_by: str,
    reason: str,
    requested_at: datetime | None = None,
    config: GovernanceConfig | None = None,
) -> OverrideAnswer:
    """ "Can we just send this once?" Always refused and recorded; the answer names the
    segment, the risk and the protocol (seed 000, part 3)."""
    if not requested_by.strip() or not reason.strip():
        raise CampaignError("an override request needs who asks (--by) and why (--reason)")
    config = config or governance.default_config()
    requested_at = requested_at or datetime.now()
    decision = check_campaign(con, campaign, config=config, checked_at=requested_at)
    segments = tuple(decision.blocked_segments())
    parts = [f"Refused: the firewall is not bypassed, not even once ('{campaign.name}')."]
    for segment_id in segments:
        name = decision.segment_names.get(segment_id, segment_id)
        parts.append(f"They're currently in {name}. {config.risk(segment_id)}")
    if decision.onboarding_until:
        parts.append(
            f"{campaign.sender_id} is in their first {config.onboarding_days} days on the team "
            f"and may send from {decision.onboarding_until:%Y-%m-%d}; until then, observe "
            "segmentation and review suppressed campaigns."
        )
    other = {
        r: n
        for r, n in decision.reason_counts().items()
        if r not in ("paused_segment", "sender_in_onboarding")
    }
    if other:
        parts.append(f"Also blocked: {reasons_in_words(other)}.")
    if not decision.unsafe:
        parts.append("Nothing is blocked for this campaign, so there is nothing to override.")
    parts.append(config.protocol)
    message = " ".join(parts)
    request_id = hashlib.sha256(
        f"{campaign.fingerprint()}|{requested_by}|{requested_at.isoformat()}|{reason}".encode()
    ).hexdigest()[:16]
    with state_store.transaction() as state:
        record_exception(
            state,
            request_id=request_id,
            requested_at=requested_at,
            kind="override",
            requested_by=requested_by,
            team=decision.team,
            campaign_name=campaign.name,
            channel=campaign.channel,
            segment_ids=",".join(segments),
            customer_id=None,
            reason=reason,
            decision="refused",
            decided_by="campaign firewall",
            response=message,
        )
    return OverrideAnswer(request_id, True, segments, message)


def record_exception(state: Connection, **row: Any) -> bool:
    """Append one exception request (override, dispute, logic review) to the state store;
    never twice."""
    r = exception_requests.c
    if state.execute(select(r.request_id).where(r.request_id == row["request_id"])).first():
        return False
    state.execute(insert(exception_requests).values({c.name: row.get(c.name) for c in r}))
    return True
