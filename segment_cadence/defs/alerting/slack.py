"""Slack: Block Kit messages on-call can act on, and delivery from the durable outbox.

A message says what tripped, by how much, against what baseline and bound, for which
segment, owner and definition version, what to do (the rule's runbook), where to look (a
link into the Dagster UI) and how to acknowledge or silence it, all with a plain-text
fallback, within Slack's limits (header 150 characters, section text 3,000, 50 blocks).

Delivery goes through slack-sdk's WebClient with a bot token from the environment
(SLACK_BOT_TOKEN, never logged), with the SDK's retry handlers for rate limits (429 with
Retry-After), server errors and connection errors. A message that still cannot be sent
stays pending in the state store's outbox and is retried on the next sensor tick; a sent message keeps
its Slack timestamp so resolution can edit it and reply in its thread. With no token,
messages are written to the local outbox file instead, and marked as such.
"""

from __future__ import annotations

import json
import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select, update

from segment_cadence.defs.alerting.alerts import silence
from segment_cadence.defs.alerting.outbox import append_notice
from segment_cadence.platform.state_store import alerts, outbox, silences

HEADER_LIMIT = 150
TEXT_LIMIT = 3000
BLOCK_LIMIT = 50
SEVERITY_ICON = {"critical": ":red_circle:", "warn": ":large_yellow_circle:"}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _bound_text(breach: Any) -> str:
    """The bound in words: what was crossed, and how it is measured."""
    if breach.kind == "relative":
        return f"bound: a change of more than {breach.bound:.0%} against last month"
    if breach.kind == "robust_z":
        return f"bound: more than {breach.bound:g} robust deviations from the history's median"
    side = "at most" if breach.value > breach.bound else "at least"
    return f"bound: {side} {_fmt(breach.bound)}"


class Renderer:
    """Builds Block Kit payloads. Pure: the same alert renders the same JSON (golden tests)."""

    def firing(
        self,
        segment_id: str,
        owner: str | None,
        month_end: date,
        version: str,
        items: list[dict[str, Any]],
        routing: Any,
    ) -> dict[str, Any]:
        worst = "critical" if any(i["breach"].severity == "critical" for i in items) else "warn"
        header = _clip(
            f"{worst.upper()}: segment {segment_id} health, {month_end:%B %Y}", HEADER_LIMIT
        )
        link = (
            f"{routing.dagster_url}/assets/health/segment_health?partition="
            f"{month_end.replace(day=1).isoformat()}"
        )
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": header}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": _clip(
                            f"Segment *{segment_id}* · owner *{owner or 'unassigned'}* · definition version "
                            f"`{version}` · refresh {month_end:%Y-%m}",
                            TEXT_LIMIT,
                        ),
                    }
                ],
            },
        ]
        lines = []
        for item in items[: BLOCK_LIMIT - 6]:
            b = item["breach"]
            baseline = "" if b.baseline is None else f", baseline {_fmt(b.baseline)}"
            text = (
                f"{SEVERITY_ICON[b.severity]} *{b.metric}* = {_fmt(b.value)}{baseline}; "
                f"{_bound_text(b)} (rule `{b.rule_id}`, {item['consecutive']} refresh(es) "
                f"in a row)\n_Runbook:_ {b.runbook or 'see the rule in config/thresholds.yaml'}"
            )
            lines.append(text)
            blocks.append(
                {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, TEXT_LIMIT)}}
            )
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"<{link}|Open in Dagster>"}}
        )
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": (
                            "Acknowledge: react with :white_check_mark: or reply `ack`. Silence: reply "
                            "`silence 72h <reason>` or `segment-cadence alerts silence --segment "
                            f"{segment_id} --hours 72 --by NAME --reason TEXT`."
                        ),
                    }
                ],
            }
        )
        fallback = _clip(
            f"{header}. Owner {owner or 'unassigned'}, version {version}. "
            + " | ".join(
                f"{i['breach'].metric}={_fmt(i['breach'].value)} (bound {_fmt(i['breach'].bound)}, "
                f"baseline {_fmt(i['breach'].baseline)})"
                for i in items
            )
            + f". {link}",
            TEXT_LIMIT,
        )
        return {"text": fallback, "blocks": blocks[:BLOCK_LIMIT]}

    def resolved(self, key: str, month_end: date, routing: Any) -> dict[str, Any]:
        rule_id, segment_id, metric, _ = key.split("|")
        text = (
            f":white_check_mark: Resolved in {month_end:%B %Y}: {metric} of segment "
            f"{segment_id} (rule {rule_id}) is back within bounds."
        )
        return {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }

    def escalation(
        self, segment_id: str, level: int, why: str, items: list[tuple], routing: Any
    ) -> dict[str, Any]:
        metrics = ", ".join(f"{r[3]}={_fmt(r[4])} ({r[5]})" for r in items)
        mention = f"{routing.oncall_mention} " if routing.oncall_mention else ""
        if level >= 3:
            text = (
                f"{mention}Level 3: segment *{segment_id}* still breaches "
                f"({metrics}). The quarterly strategic refresh has been requested for review; "
                "thresholds trigger refinement, not overhauls."
            )
        else:
            text = (
                f"{mention}Level 2 ({why}): segment *{segment_id}* — "
                f"{metrics}. Please hold the huddle and acknowledge."
            )
        text = _clip(text, TEXT_LIMIT)
        return {
            "text": text,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
        }


def slack_client(base_url: str | None = None, token: str | None = None):
    """A WebClient with retries for rate limits, server errors and connection errors; None
    when no token is configured (messages then go to the local outbox file)."""
    token = token or os.environ.get("SLACK_BOT_TOKEN")
    if not token:
        return None
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import (
        ConnectionErrorRetryHandler,
        RateLimitErrorRetryHandler,
        ServerErrorRetryHandler,
    )

    client = WebClient(
        token=token,
        base_url=base_url or os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
        timeout=10,
    )
    client.retry_handlers = [
        ConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitErrorRetryHandler(max_retry_count=3),
        ServerErrorRetryHandler(max_retry_count=2),
    ]
    return client


def _mark(con: Connection, message_id: str, **values: Any) -> None:
    con.execute(update(outbox).where(outbox.c.message_id == message_id).values(**values))


# Errors no retry can fix: the token, or the channel, must change first.
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
PERMANENT_ERRORS = TOKEN_ERRORS | CHANNEL_ERRORS | {"missing_scope"}
PERMANENT = "permanent: "
TOKEN = "the bot token"


def permanent_error(error: BaseException) -> str | None:
    """Slack's error code when the failure is one no retry can fix, else None."""
    response = getattr(error, "response", None)
    code = response.get("error") if response is not None and hasattr(response, "get") else None
    return code if code in PERMANENT_ERRORS else None


def delivery_problems(con: Connection) -> list[str]:
    """One line per destination that refuses for good, with what to fix and how many
    messages wait for it: what the CLI and the sensor say loudly."""
    o = outbox.c
    rows = con.execute(
        select(o.channel, o.last_error, func.count())
        .where(o.status == "pending", o.last_error.like(f"{PERMANENT}%"))
        .group_by(o.channel, o.last_error)
        .order_by(o.channel)
    ).all()
    token_refused: dict[str, int] = {}
    problems: list[str] = []
    for channel, error, waiting in rows:
        code = error.removeprefix(PERMANENT)
        if code in TOKEN_ERRORS:
            token_refused[code] = token_refused.get(code, 0) + waiting
            continue
        fix = (
            "give the Slack app the scopes README On-call lists"
            if code == "missing_scope"
            else f"invite the bot to {channel} or fix the channel in config/thresholds.yaml"
        )
        problems.append(
            f"NOT DELIVERED to {channel}: Slack says {code}; {fix} ({waiting} message(s) kept)"
        )
    for code, waiting in token_refused.items():
        problems.insert(
            0,
            f"NOT DELIVERED: Slack says {code} for the bot token; set a valid SLACK_BOT_TOKEN "
            f"({waiting} message(s) kept)",
        )
    return problems


def deliver_pending(
    con: Connection, client: Any, now: datetime, local_file: Path | None = None
) -> dict[str, int]:
    """Send what is pending in the outbox, oldest first; keep what fails for the next tick."""
    o = outbox.c
    rows = con.execute(
        select(o.message_id, o.kind, o.channel, o.payload, o.reply_to)
        .where(o.status == "pending")
        .order_by(o.created_at, o.message_id)
    ).all()
    counts = {"sent": 0, "failed": 0, "local": 0}
    refused: dict[str, str] = {}  # destination (the token, or a channel) -> Slack's error
    for message_id, kind, channel, payload_json, reply_to in rows:
        payload = json.loads(payload_json)
        if client is None:
            append_notice(
                kind=f"alert_{kind}",
                summary=payload["text"],
                details={"channel": channel, "blocks": payload["blocks"]},
                path=local_file,
            )
            _mark(con, message_id, status="local", sent_at=now)
            counts["local"] += 1
            continue
        known = refused.get(TOKEN) or refused.get(channel)
        if known:
            # Refused for good this pass: not asked again until the next one, when a fixed
            # token or channel lets it through.
            _mark(con, message_id, last_error=known)
            counts["failed"] += 1
            continue
        try:
            ts, channel_id = _send(con, client, channel, payload, reply_to)
        except Exception as error:  # noqa: BLE001 - any failure keeps the message for later
            code = permanent_error(error)
            if code:
                refused[TOKEN if code in TOKEN_ERRORS else channel] = f"{PERMANENT}{code}"
            _mark(
                con,
                message_id,
                attempts=o.attempts + 1,
                last_error=f"{PERMANENT}{code}"
                if code
                else f"{type(error).__name__}: {str(error)[:300]}",
            )
            counts["failed"] += 1
            continue
        _mark(
            con,
            message_id,
            status="sent",
            sent_at=now,
            slack_ts=ts,
            slack_channel_id=channel_id,
            attempts=o.attempts + 1,
        )
        counts["sent"] += 1
    return counts


def _send(
    con: Connection, client: Any, channel: str, payload: dict[str, Any], reply_to: str | None
) -> tuple[str, str]:
    if reply_to:
        original = con.execute(
            select(outbox.c.slack_ts, outbox.c.slack_channel_id, outbox.c.payload).where(
                outbox.c.message_id == reply_to
            )
        ).first()
        if original and original[0]:
            ts, channel_id, first_payload = original
            first = json.loads(first_payload)
            edited = [
                {"type": "context", "elements": [{"type": "mrkdwn", "text": payload["text"]}]}
            ]
            client.chat_update(
                channel=channel_id,
                ts=ts,
                text=":white_check_mark: RESOLVED. " + first["text"],
                blocks=(edited + first["blocks"])[:BLOCK_LIMIT],
            )
            reply = client.chat_postMessage(
                channel=channel_id, thread_ts=ts, text=payload["text"], blocks=payload["blocks"]
            )
            return reply["ts"], channel_id
    response = client.chat_postMessage(
        channel=channel, text=payload["text"], blocks=payload["blocks"]
    )
    return response["ts"], response["channel"]


_UNIT_HOURS = {"m": 1 / 60, "h": 1.0, "d": 24.0, "w": 168.0, "": 1.0}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([mhdw]?)$")


def parse_silence(text: str) -> tuple[float, str] | None:
    """(hours, reason) of a thread reply `silence <duration> [reason]`, the duration in
    minutes, hours, days or weeks (90m, 72h, 3d, 1w; a bare number is hours); None when the
    reply is not one."""
    parts = text.strip().split(maxsplit=2)
    if len(parts) < 2 or parts[0].lower() != "silence":
        return None
    found = _DURATION.match(parts[1].lower())
    if not found or float(found.group(1)) <= 0:
        return None
    hours = float(found.group(1)) * _UNIT_HOURS[found.group(2)]
    return hours, parts[2] if len(parts) > 2 else "silenced from Slack"


def read_acknowledgements(con: Connection, client: Any, now: datetime) -> int:
    """Acknowledge and silence from Slack without a public endpoint: read reactions and thread
    replies on the firing messages of open alerts."""
    if client is None:
        return 0
    o, a = outbox.c, alerts.c
    firing_alert = (
        select(a.alert_key)
        .where(a.state == "firing", o.alert_keys.contains(a.alert_key, autoescape=False))
        .exists()
    )
    rows = con.execute(
        select(o.message_id, o.slack_channel_id, o.slack_ts, o.alert_keys, o.segment_id).where(
            o.kind == "firing", o.status == "sent", firing_alert
        )
    ).all()
    acknowledged = 0
    for _, channel_id, ts, keys_json, segment_id in rows:
        keys = json.loads(keys_json)
        reactions = (
            client.reactions_get(channel=channel_id, timestamp=ts)
            .get("message", {})
            .get("reactions", [])
        )
        ackers = [
            u
            for r in reactions
            if r.get("name") in ("white_check_mark", "eyes")
            for u in r.get("users", [])
        ]
        replies = client.conversations_replies(channel=channel_id, ts=ts).get("messages", [])[1:]
        for reply in replies:
            text = (reply.get("text") or "").strip()
            if text.lower().startswith("ack"):
                ackers.append(reply.get("user", "slack-user"))
            elif text.lower().startswith("silence"):
                command = parse_silence(text)
                if command is None:
                    continue  # malformed: never a reason to stop reading the thread
                hours, reason = command
                user = reply.get("user", "slack-user")
                already = con.execute(
                    select(silences.c.silence_id).where(
                        silences.c.segment_id == segment_id,
                        silences.c.reason == reason,
                        silences.c.created_by == user,
                    )
                ).first()
                if not already:
                    silence(
                        con,
                        segment_id=segment_id,
                        created_by=user,
                        reason=reason,
                        expires_at=now + timedelta(hours=hours),
                        now=now,
                    )
                ackers.append(user)
        if ackers:
            for key in keys:
                acknowledged += con.execute(
                    update(alerts)
                    .where(a.alert_key == key, a.state == "firing")
                    .values(state="acknowledged", acknowledged_by=ackers[0], acknowledged_at=now)
                ).rowcount
    return acknowledged
