"""Slack: delivery from the durable outbox, exactly once, and commands read back from Slack.

What a message says is built once in messages.py; this module sends its Block Kit rendering
through slack-sdk's WebClient with a bot token from the environment (SLACK_BOT_TOKEN, never
logged) to SLACK_API_URL (default Slack's own API).

Exactly once, even when a response is lost: every message carries its outbox id in Slack
message metadata. The SDK retries only rate limits (429 with Retry-After: Slack did nothing);
after any other failure the outcome is unknown, so before sending again the sender reads the
channel's recent history (or the thread's replies) and adopts the message it finds. Transient
failures back off between passes; permanent ones (a refused token, a missing channel or
scope) stop that destination until its config is fixed, and are said loudly
(`delivery_problems`). Channel names are resolved to IDs once (conversations.list) and
cached in the state store, so a name works for history and file sharing too.

With no token, messages go to the local outbox file as Markdown instead, marked as such.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from segment_cadence.defs.alerting import messages
from segment_cadence.defs.alerting.alerts import (
    enqueue,
    held_for_strategic_run,
    silence,
    unsilence,
)
from segment_cadence.defs.alerting.outbox import append_notice
from segment_cadence.platform.state_store import alerts, outbox, silences, slack_channels

METADATA_EVENT = "segment_cadence_message"
# Kinds on-call can acknowledge or silence from (a reaction or a thread reply on any of them).
ACTIONABLE = ("firing", "escalation", "strategic_request")
HISTORY_LIMIT = 200
MAX_BACKOFF = timedelta(minutes=30)


def slack_client(base_url: str | None = None, token: str | None = None):
    """A WebClient that retries rate limits only (a 429 means Slack did nothing, so a retry
    cannot duplicate); None when no token is configured (messages then go to the local
    outbox file). Other failures are retried by `deliver_pending`, which first looks for the
    message in Slack."""
    token = token or os.environ.get("SLACK_BOT_TOKEN")
    if not token:
        return None
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    client = WebClient(
        token=token,
        base_url=base_url or os.environ.get("SLACK_API_URL", "https://slack.com/api/"),
        timeout=10,
    )
    client.retry_handlers = [RateLimitErrorRetryHandler(max_retry_count=3)]
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


_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


def channel_id(con: Connection, client: Any, channel: str) -> str | None:
    """The ID of a channel given by name ('#name' or 'name') or ID: from the cache, else
    from one listing of the workspace's channels (all of them cached); None when the bot
    cannot see it listed (posting by name may still work; Slack then says)."""
    if _CHANNEL_ID.match(channel):
        return channel
    name = channel.lstrip("#")
    cached = con.execute(
        select(slack_channels.c.channel_id).where(slack_channels.c.name == name)
    ).scalar()
    if cached:
        return cached
    found: dict[str, str] = {}
    cursor = None
    while True:
        page = client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
        )
        found.update({c["name"]: c["id"] for c in page.get("channels", [])})
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    remember_channels(con, found)
    return found.get(name)


def remember_channels(con: Connection, found: dict[str, str]) -> None:
    if not found:
        return
    now = datetime.now()
    con.execute(delete(slack_channels).where(slack_channels.c.name.in_(sorted(found))))
    con.execute(
        insert(slack_channels),
        [{"name": n, "channel_id": i, "resolved_at": now} for n, i in sorted(found.items())],
    )


def _ours(message: dict[str, Any], message_id: str) -> bool:
    metadata = message.get("metadata") or {}
    return (
        metadata.get("event_type") == METADATA_EVENT
        and (metadata.get("event_payload") or {}).get("message_id") == message_id
    )


def find_posted(
    client: Any, channel: str, message_id: str, thread_ts: str | None = None
) -> str | None:
    """The ts of a message already in Slack with this outbox id in its metadata: in the
    thread when it is a reply, else in the channel's recent history."""
    if thread_ts:
        found = client.conversations_replies(
            channel=channel, ts=thread_ts, include_all_metadata=True, limit=HISTORY_LIMIT
        ).get("messages", [])
    else:
        found = client.conversations_history(
            channel=channel, include_all_metadata=True, limit=HISTORY_LIMIT
        ).get("messages", [])
    return next((m["ts"] for m in found if _ours(m, message_id)), None)


def _backoff(attempts: int) -> timedelta:
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


def deliver_pending(
    con: Connection, client: Any, now: datetime, local_file: Path | None = None
) -> dict[str, int]:
    """Send what is pending in the outbox in the order it was queued; keep what fails for a
    later pass. A message waits for the one it follows (an escalation for the alert it
    escalates) and a level-3 message for the run it announces (`held`)."""
    o = outbox.c
    rows = con.execute(
        select(
            o.message_id,
            o.kind,
            o.channel,
            o.payload,
            o.reply_to,
            o.attempts,
            o.last_error,
            o.after_message_id,
            o.next_attempt_at,
        )
        .where(o.status == "pending")
        .order_by(func.coalesce(o.sequence, 0), o.created_at, o.message_id)
    ).all()
    counts = {"sent": 0, "failed": 0, "local": 0, "held": 0}
    held = held_for_strategic_run(con)
    refused: dict[str, str] = {}  # destination (the token, or a channel) -> Slack's error
    for row in rows:
        message_id, kind, channel, payload_json, reply_to = row[:5]
        attempts, last_error, after, next_attempt_at = row[5:]
        waiting_for = after and con.execute(select(o.status).where(o.message_id == after)).scalar()
        if message_id in held or waiting_for == "pending":
            counts["held"] += 1
            continue
        payload = json.loads(payload_json)
        if client is None:
            model = payload.get("message")
            append_notice(
                kind=f"alert_{kind}",
                summary=payload["text"],
                details={
                    "channel": channel,
                    "markdown": messages.to_markdown(messages.Message.from_dict(model))
                    if model
                    else payload["text"],
                    "blocks": payload["blocks"],
                },
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
        if next_attempt_at is not None and next_attempt_at > now:
            counts["failed"] += 1
            continue
        unknown_outcome = bool(attempts) and not (last_error or "").startswith(PERMANENT)
        try:
            ts, where = _deliver(
                con, client, message_id, channel, payload, reply_to, unknown_outcome
            )
        except Exception as first_error:  # noqa: BLE001 - the outcome is unknown: look, then retry
            code = permanent_error(first_error)
            error: Exception = first_error
            if code is None:
                try:
                    ts, where = _deliver(con, client, message_id, channel, payload, reply_to, True)
                    error = None
                except Exception as second_error:  # noqa: BLE001 - kept for a later pass
                    error, code = second_error, permanent_error(second_error)
            if error is not None:
                if code:
                    refused[TOKEN if code in TOKEN_ERRORS else channel] = f"{PERMANENT}{code}"
                _mark(
                    con,
                    message_id,
                    attempts=o.attempts + 1,
                    next_attempt_at=None if code else now + _backoff((attempts or 0) + 1),
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
            slack_channel_id=where,
            attempts=o.attempts + 1,
            last_error=None,
            next_attempt_at=None,
        )
        counts["sent"] += 1
    return counts


def _deliver(
    con: Connection,
    client: Any,
    message_id: str,
    channel: str,
    payload: dict[str, Any],
    reply_to: str | None,
    look_first: bool,
) -> tuple[str, str]:
    """Post one message (a resolution also edits the message it resolves), unless an earlier
    attempt whose answer was lost already did: then adopt that one."""
    metadata = {"event_type": METADATA_EVENT, "event_payload": {"message_id": message_id}}
    thread_ts = None
    if reply_to:
        original = con.execute(
            select(outbox.c.slack_ts, outbox.c.slack_channel_id, outbox.c.payload).where(
                outbox.c.message_id == reply_to
            )
        ).first()
        if original and original[0]:
            thread_ts, where, first_payload = original
            if payload.get("message", {}).get("kind") == "resolved":
                first = json.loads(first_payload)
                edited = [messages._context(payload["text"])]
                client.chat_update(  # idempotent: the same edit twice is one edit
                    channel=where,
                    ts=thread_ts,
                    text=":white_check_mark: RESOLVED. " + first["text"],
                    blocks=(edited + first["blocks"])[: messages.BLOCK_LIMIT],
                )
    if thread_ts is None:
        where = channel_id(con, client, channel) or channel
    if look_first and _CHANNEL_ID.match(where):
        found = find_posted(client, where, message_id, thread_ts)
        if found:
            return found, where
    response = client.chat_postMessage(
        channel=where,
        text=payload["text"],
        blocks=payload["blocks"],
        thread_ts=thread_ts,
        metadata=metadata,
    )
    if not _CHANNEL_ID.match(where):  # posted by name: remember the ID Slack answered with
        remember_channels(con, {where.lstrip("#"): response["channel"]})
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


COMMAND_SYNTAX = (
    "Commands in this thread: `ack`, `silence <duration> [reason]` (90m, 72h, 3d, 1w) and "
    "`unsilence`. Or from a shell: `segment-cadence alerts ack|silence|unsilence`."
)
# First words that mean someone tried a command this bot does not know.
_COMMAND_LIKE = frozenset({"help", "mute", "unmute", "snooze", "unsnooze", "resolve", "close"})


def classify_reply(text: str) -> tuple[str, Any]:
    """What a thread reply asks: ("ack", None), ("silence", (hours, reason)), ("unsilence",
    None), ("help", why) for an unknown or malformed command, or ("chat", None) for anything
    else (people talk in threads; that is not a command)."""
    words = text.strip().split()
    first = words[0].lower().lstrip("!/").rstrip(":,.") if words else ""
    if first.startswith("ack"):
        return "ack", None
    if first == "unsilence":
        return "unsilence", None
    if first == "silence":
        parsed = parse_silence(text.strip().lstrip("!/"))
        return ("silence", parsed) if parsed else ("help", "malformed")
    if first in _COMMAND_LIKE or (words and words[0][:1] in "!/"):
        return "help", "unknown"
    return "chat", None


def command_help_message() -> messages.Message:
    return messages.Message(
        kind="command_help", title="Command not understood", lead=COMMAND_SYNTAX
    )


def _help_reply(
    con: Connection, parent_id: str, parent_channel: str, reply_ts: str, now: datetime
) -> None:
    """Queue one short reply with the syntax in the thread, once per reply it answers."""
    o = outbox.c
    marker = f'"{reply_ts}"'
    already = con.execute(
        select(o.message_id).where(
            o.kind == "command_help", o.reply_to == parent_id, o.alert_keys == f"[{marker}]"
        )
    ).first()
    if already:
        return
    enqueue(
        con,
        message=command_help_message(),
        segment_id="",
        month_end=None,
        channel=parent_channel,
        keys=[reply_ts],
        now=now,
        reply_to=parent_id,
    )


def read_acknowledgements(con: Connection, client: Any, now: datetime) -> int:
    """Acknowledge and silence from Slack without a public endpoint: read reactions and thread
    replies on every message about an open alert (level 1, 2 or 3). One message that cannot
    be read, or one reply that cannot be understood, never stops the others."""
    if client is None:
        return 0
    o, a = outbox.c, alerts.c
    open_alert = (
        select(a.alert_key)
        .where(
            a.state.in_(("firing", "acknowledged")),
            o.alert_keys.contains(a.alert_key, autoescape=False),
        )
        .exists()
    )
    rows = con.execute(
        select(o.message_id, o.slack_channel_id, o.slack_ts, o.alert_keys, o.segment_id)
        .where(o.kind.in_(ACTIONABLE), o.status == "sent", open_alert)
        .order_by(o.sequence)
    ).all()
    acknowledged = 0
    for message_id, channel, ts, keys_json, segment_id in rows:
        try:
            acknowledged += _read_one(
                con, client, now, message_id, channel, ts, json.loads(keys_json), segment_id
            )
        except Exception:  # noqa: BLE001 - Slack refused this one: read it next pass
            continue
    return acknowledged


def _read_one(
    con: Connection,
    client: Any,
    now: datetime,
    message_id: str,
    channel: str,
    ts: str,
    keys: list[str],
    segment_id: str,
) -> int:
    reactions = (
        client.reactions_get(channel=channel, timestamp=ts).get("message", {}).get("reactions", [])
    )
    ackers = [
        u
        for r in reactions
        if r.get("name") in ("white_check_mark", "eyes")
        for u in r.get("users", [])
    ]
    replies = client.conversations_replies(channel=channel, ts=ts).get("messages", [])[1:]
    for reply in replies:
        if reply.get("bot_id"):
            continue  # our own replies (resolutions, syntax help)
        user = reply.get("user", "slack-user")
        verb, detail = classify_reply(reply.get("text") or "")
        if verb == "ack":
            ackers.append(user)
        elif verb == "silence":
            hours, reason = detail
            silence_from_slack(con, segment_id, user, reason, hours, reply["ts"], now)
            ackers.append(user)
        elif verb == "unsilence":
            marker = f"slack-unsilence-{reply['ts']}-{segment_id}"
            unsilence(con, segment_id=segment_id, by=user, now=now, marker=marker)
        elif verb == "help":
            _help_reply(con, message_id, channel, reply["ts"], now)
    acknowledged = 0
    if ackers:
        for key in keys:
            acknowledged += con.execute(
                update(alerts)
                .where(alerts.c.alert_key == key, alerts.c.state == "firing")
                .values(state="acknowledged", acknowledged_by=ackers[0], acknowledged_at=now)
            ).rowcount
    return acknowledged


def silence_from_slack(
    con: Connection,
    segment_id: str,
    user: str,
    reason: str,
    hours: float,
    reply_ts: str,
    now: datetime,
) -> None:
    """A silence asked for in a thread, made once however often the thread is read (the
    reply's ts is its identity)."""
    silence_id = f"slack-{reply_ts}-{segment_id}"
    if con.execute(
        select(silences.c.silence_id).where(silences.c.silence_id == silence_id)
    ).first():
        return
    expires_at = now + timedelta(hours=hours)
    silence(
        con,
        segment_id=segment_id,
        created_by=user,
        reason=reason,
        expires_at=expires_at,
        now=now,
        silence_id=silence_id,
    )
