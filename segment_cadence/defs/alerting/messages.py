"""One message model for everything on-call reads: an alert, its escalation, its resolution
and the review pack's summary are built once as a `Message` and rendered three ways: Block
Kit for Slack, Markdown for the local outbox, HTML for the review pack.

Building once is what keeps the three honest: a level-2 escalation carries exactly the level-1
message's findings (value, baseline, bound, runbook, link, definition version) because it is
made from them, not re-worded from a shorter row. Slack's documented limits (header 150
characters, section text 3,000, 50 blocks, fallback text 3,000 here) are applied by the Block
Kit renderer alone; the other two renderings keep everything.
"""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from typing import Any

from segment_cadence.defs.health.thresholds import RESERVED_RULE_ID

HEADER_LIMIT = 150
TEXT_LIMIT = 3000
BLOCK_LIMIT = 50
SEVERITY_ICON = {"critical": ":red_circle:", "warn": ":large_yellow_circle:"}
SEVERITY_WORD = {"critical": "CRITICAL", "warn": "WARN"}


@dataclass(frozen=True)
class Finding:
    """One breaching metric of one alert, in words on-call can act on."""

    alert_key: str
    severity: str
    metric: str
    value: str
    baseline: str | None
    bound: str
    rule_id: str
    streak: int
    runbook: str


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Message:
    """What a notification says, before any rendering.

    `kind` is firing, escalation, strategic_request, resolved or review_pack; `facts` are the
    context line (segment, owner, definition version, refresh); `lead` is the one sentence that
    says why this message exists (an escalation's reason, a resolution), `mention` whom it
    pings (a validated Slack mention, or empty)."""

    kind: str
    title: str
    severity: str | None = None
    facts: tuple[tuple[str, str], ...] = ()
    lead: str = ""
    findings: tuple[Finding, ...] = ()
    links: tuple[Link, ...] = ()
    actions: str = ""
    mention: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(
            kind=data["kind"],
            title=data["title"],
            severity=data.get("severity"),
            facts=tuple(tuple(f) for f in data.get("facts", ())),
            lead=data.get("lead", ""),
            findings=tuple(Finding(**f) for f in data.get("findings", ())),
            links=tuple(Link(**link) for link in data.get("links", ())),
            actions=data.get("actions", ""),
            mention=data.get("mention", ""),
        )

    def only(self, alert_keys: set[str]) -> Message:
        """The same message about some of its alerts (an escalation of part of a group)."""
        return replace(self, findings=tuple(f for f in self.findings if f.alert_key in alert_keys))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the words of a finding, shared by every rendering --------------------------------------


def finding_text(finding: Finding, bold: tuple[str, str] = ("", "")) -> str:
    """`metric = value, baseline b; bound (rule r, n refreshes in a row)`, the metric in the
    renderer's bold markers."""
    open_, close = bold
    baseline = "" if finding.baseline is None else f", baseline {finding.baseline}"
    streak = "1 refresh" if finding.streak == 1 else f"{finding.streak} refreshes in a row"
    return (
        f"{open_}{finding.metric}{close} = {finding.value}{baseline}; {finding.bound} "
        f"(rule {finding.rule_id}, {streak})"
    )


def fallback_text(message: Message) -> str:
    """The plain text Slack shows in notifications and where blocks cannot render."""
    parts = [message.title + "."]
    if message.mention:
        parts.insert(0, message.mention)
    if message.lead:
        parts.append(message.lead)
    if message.facts:
        parts.append(", ".join(f"{label} {value}" for label, value in message.facts) + ".")
    parts.extend(finding_text(f) + "." for f in message.findings)
    parts.extend(link.url for link in message.links[:1])
    return clip(" ".join(parts), TEXT_LIMIT)


# -- Block Kit ------------------------------------------------------------------------------


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, TEXT_LIMIT)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, TEXT_LIMIT)}]}


def to_block_kit(message: Message) -> dict[str, Any]:
    """Slack's payload: `text` (the fallback) and `blocks`, within Slack's limits. Findings
    beyond what 50 blocks hold are counted in one closing line rather than dropped silently."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(message.title, 150)}}
    ]
    if message.facts:
        blocks.append(_context(" · ".join(f"{label} *{value}*" for label, value in message.facts)))
    if message.lead or message.mention:
        blocks.append(_section(" ".join(p for p in (message.mention, message.lead) if p)))
    tail: list[dict[str, Any]] = []
    if message.links:
        tail.append(_section(" · ".join(f"<{link.url}|{link.label}>" for link in message.links)))
    if message.actions:
        tail.append(_context(message.actions))
    room = BLOCK_LIMIT - len(blocks) - len(tail) - 1
    shown = message.findings[:room]
    for finding in shown:
        icon = SEVERITY_ICON.get(finding.severity, "")
        blocks.append(
            _section(
                f"{icon} {finding_text(finding, ('*', '*'))}\n_Runbook:_ {finding.runbook}".strip()
            )
        )
    if len(message.findings) > len(shown):
        blocks.append(
            _context(f"…and {len(message.findings) - len(shown)} more metric(s) in the UI.")
        )
    return {"text": fallback_text(message), "blocks": blocks + tail}


# -- Markdown (the local outbox) and HTML (the review pack) ---------------------------------


def to_markdown(message: Message) -> str:
    lines = [f"### {message.title}"]
    if message.facts:
        lines.append(" · ".join(f"{label} **{value}**" for label, value in message.facts))
    if message.lead or message.mention:
        lines += ["", " ".join(p for p in (message.mention, message.lead) if p)]
    if message.findings:
        lines.append("")
        for finding in message.findings:
            word = SEVERITY_WORD.get(finding.severity, finding.severity)
            lines.append(f"- {word}: {finding_text(finding, ('**', '**'))}")
            if finding.runbook:
                lines.append(f"  - Runbook: {finding.runbook}")
    if message.links:
        lines += ["", " · ".join(f"[{link.label}]({link.url})" for link in message.links)]
    if message.actions:
        lines += ["", f"_{message.actions}_"]
    return "\n".join(lines) + "\n"


def to_html(message: Message) -> str:
    e = html.escape
    parts = [f'<div class="message {e(message.kind)}"><h4>{e(message.title)}</h4>']
    if message.facts:
        parts.append(
            "<p>"
            + " · ".join(
                f"{e(label)} <strong>{e(value)}</strong>" for label, value in message.facts
            )
            + "</p>"
        )
    if message.lead:
        parts.append(f"<p>{e(message.lead)}</p>")
    if message.findings:
        parts.append("<ul>")
        for finding in message.findings:
            word = SEVERITY_WORD.get(finding.severity, finding.severity)
            runbook = f"<br><em>Runbook:</em> {e(finding.runbook)}" if finding.runbook else ""
            parts.append(f"<li>{e(word)}: {e(finding_text(finding))}{runbook}</li>")
        parts.append("</ul>")
    if message.links:
        parts.append(
            "<p>"
            + " · ".join(f'<a href="{e(link.url)}">{e(link.label)}</a>' for link in message.links)
            + "</p>"
        )
    parts.append("</div>")
    return "".join(parts)


@dataclass(frozen=True)
class Rendered:
    """What the outbox keeps for a message: the model and its Slack payload."""

    message: Message
    payload: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, message: Message) -> Rendered:
        return cls(message, to_block_kit(message))


# -- what each kind of message says ---------------------------------------------------------

ACK_HINT = (
    "Acknowledge: react with :white_check_mark: or reply `ack` (here or on any message about "
    "this alert). Silence: reply `silence 72h <reason>` (m, h, d or w), or "
    "`segment-cadence alerts silence --segment {segment} --hours 72 --by NAME --reason TEXT`."
)


def format_value(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def bound_text(kind: str, value: float, bound: float) -> str:
    """The bound in words: what was crossed, and how it is measured."""
    if kind == "relative":
        return f"bound: a change of more than {bound:.0%} against last month"
    if kind == "robust_z":
        return f"bound: more than {bound:g} robust deviations from the history's median"
    side = "at most" if value > bound else "at least"
    if kind == "target":
        return f"target: {side} {format_value(bound)}"
    return f"bound: {side} {format_value(bound)}"


def health_link(dagster_url: str, month_end: date) -> Link:
    return Link(
        "Open in Dagster",
        f"{dagster_url}/assets/health/segment_health?partition="
        f"{month_end.replace(day=1).isoformat()}",
    )


def finding(key: str, breach: Any, streak: int) -> Finding:
    """A finding from a health breach (segment_cadence.defs.health.thresholds.Breach)."""
    return Finding(
        alert_key=key,
        severity=breach.severity,
        metric=breach.metric,
        value=format_value(breach.value),
        baseline=None if breach.baseline is None else format_value(breach.baseline),
        bound=bound_text(breach.kind, breach.value, breach.bound),
        rule_id=breach.rule_id,
        streak=streak,
        runbook=breach.runbook or "see the rule in config/thresholds.yaml",
    )


def firing_message(
    segment_id: str,
    owner: str | None,
    month_end: date,
    definition_version: str,
    findings: tuple[Finding, ...],
    dagster_url: str,
) -> Message:
    worst = "critical" if any(f.severity == "critical" for f in findings) else "warn"
    # A KPI owner's message is about their targets, not the segment's health.
    subject = "KPI targets" if all(f.rule_id == RESERVED_RULE_ID for f in findings) else "health"
    return Message(
        kind="firing",
        title=f"{SEVERITY_WORD[worst]}: segment {segment_id} {subject}, {month_end:%B %Y}",
        severity=worst,
        facts=(
            ("Segment", segment_id),
            ("owner", owner or "unassigned"),
            ("definition version", definition_version),
            ("refresh", f"{month_end:%Y-%m}"),
        ),
        findings=findings,
        links=(health_link(dagster_url, month_end),),
        actions=ACK_HINT.format(segment=segment_id),
    )


def escalation_message(
    first: Message,
    level: int,
    why: str,
    mention: str,
    run_link: Link | None = None,
    quarter: str | None = None,
) -> Message:
    """Level 2 or 3: everything the level-1 message said, with why it escalates and whom it
    pings. Level 3 names the quarterly run it requested, linked."""
    segment = dict(first.facts).get("Segment", "?")
    if level >= 3:
        lead = (
            f"Level 3: segment {segment} still breaches after repeated refreshes. The quarterly "
            f"strategic refresh{f' for {quarter}' if quarter else ''} was requested for "
            "review; thresholds trigger refinement, not overhauls."
        )
    else:
        lead = (
            f"Level 2 ({why}): segment {segment} needs on-call. Please hold the huddle and "
            "acknowledge."
        )
    return replace(
        first,
        kind="strategic_request" if level >= 3 else "escalation",
        title=clip(f"Level {level}: {first.title}", HEADER_LIMIT),
        lead=lead,
        mention=mention,
        links=(*first.links, *((run_link,) if run_link else ())),
    )


def resolved_message(key: str, month_end: date) -> Message:
    rule_id, segment_id, metric, version = key.split("|")
    return Message(
        kind="resolved",
        title=f"Resolved in {month_end:%B %Y}: {metric} of segment {segment_id}",
        lead=(
            f":white_check_mark: Resolved in {month_end:%B %Y}: {metric} of segment "
            f"{segment_id} (rule {rule_id}) is back within bounds."
        ),
        facts=(("Segment", segment_id), ("definition version", version)),
    )


def review_pack_message(
    month_end: date, headline: list[tuple[str, str, str]], file_name: str
) -> Message:
    """The review pack's summary in Slack: each headline figure with last month's beside
    it ((label, this month, last month) in words), the file attached below it."""
    return Message(
        kind="review_pack",
        title=f"Monthly segmentation review pack, {month_end:%B %Y}",
        facts=tuple((label, f"{now} (last month {before})") for label, now, before in headline),
        lead=f"The pack is attached ({file_name}); the review reads it in the charter's order.",
    )
