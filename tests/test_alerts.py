"""Alerts end to end against a Slack-compatible server on 127.0.0.1, with a simulated clock."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun
from sqlalchemy import text

from segment_cadence.defs.alerting import alert_tick, alerts, messages, slack
from segment_cadence.defs.alerting.assets import DELIVERY_CHECK, OUTBOX, alerts_are_delivered
from segment_cadence.defs.alerting.sensors import segment_health_alerts
from segment_cadence.defs.health import scorecard, thresholds
from segment_cadence.defs.review import review_pack
from segment_cadence.platform import state_store
from tests.slack_server import SlackServer

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2026, 1, 2, 6, 0)
OWNERS = {"vip_collectors": "clienteling", "dormant": "crm-ops"}
# The alert routing and ladder of these tests (and of tests/test_alert_lifecycle.py).
SETTINGS = {
    "owner_channels": {"clienteling": "#clienteling", "crm-ops": "#crm-ops"},
    "escalation_channel": "#segment-oncall",
    "oncall_mention": "<!subteam^S0ONCALL>",
    "repeat_interval_hours": 24,
    "ack_timeout_hours": 24,
    "persist_refreshes": 3,
}
CONFIG = thresholds.validate(
    {
        "settings": SETTINGS,
        "rules": [
            {
                "id": "size_change",
                "metric": "size",
                "relative": {"warn": 0.2, "critical": 0.5},
                "kind_of_alert": "size",
                "clear_after": 2,
                "runbook": "Check the migration matrix.",
            },
            {"id": "churn_rising", "metric": "churn_likelihood", "above": {"warn": 0.5}},
            {
                "id": "inputs_stale",
                "metric": "freshness_days",
                "above": {"warn": 7, "critical": 21},
                "depends_on_inputs": False,
                "kind_of_alert": "data_quality",
            },
        ],
    },
    "thresholds.yaml",
)


def breach(
    rule_id: str,
    segment: str,
    metric: str,
    value: float,
    month: date,
    severity: str = "warn",
    baseline: float | None = 100.0,
    bound: float = 0.2,
):
    return thresholds.Breach(
        month,
        rule_id,
        segment,
        metric,
        value,
        baseline,
        bound,
        "relative",
        severity,
        "Check the migration matrix.",
    )


@pytest.fixture()
def con(state_url):
    """The alert state in a fresh state store, one transaction for the test."""
    with state_store.transaction(state_url) as connection:
        yield connection


def sql(con, query: str):
    return con.execute(text(query))


@pytest.fixture()
def server():
    running = SlackServer().start()
    yield running
    running.stop()


def client_for(server: SlackServer):
    return slack.slack_client(base_url=server.base_url, token="xoxb-test-token")


def refresh(con, month: date, breaches, now: datetime, changed: set[str] | None = None):
    """One refresh through the lifecycle; what it did, counted."""
    return alerts.process_refresh(
        con,
        month_end=month,
        breaches=breaches,
        config=CONFIG,
        definition_version="abc123",
        owners=OWNERS,
        changed_segments=changed or set(),
        now=now,
    ).counts()


OCT, NOV, DEC, JAN = date(2025, 10, 31), date(2025, 11, 30), date(2025, 12, 31), date(2026, 1, 31)
JUL, AUG = date(2025, 7, 31), date(2025, 8, 31)


def test_a_breach_posts_one_grouped_message_to_the_owner_channel(con, server):
    refresh(
        con,
        OCT,
        [
            breach("size_change", "vip_collectors", "size", 140, OCT),
            breach("churn_rising", "vip_collectors", "churn_likelihood", 0.6, OCT),
        ],
        T0,
    )
    counts = slack.deliver_pending(con, client_for(server), T0)
    assert counts["sent"] == 1
    (post,) = server.posts()
    assert post["channel_name"] == "#clienteling"
    text = json.dumps(post["blocks"])
    assert "size" in text and "churn_likelihood" in text and "abc123" in text
    assert "Open in Dagster" in text and "Runbook" in text


def test_a_repeat_within_the_interval_posts_nothing_and_replays_are_idempotent(con, server):
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    slack.deliver_pending(con, client, T0)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)  # replay
    refresh(
        con,
        NOV,
        [breach("size_change", "vip_collectors", "size", 150, NOV)],
        T0 + timedelta(hours=2),
    )
    slack.deliver_pending(con, client, T0 + timedelta(hours=2))
    assert len(server.posts()) == 1


def test_resolution_edits_the_message_and_replies_in_its_thread(con, server):
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "dormant", "size", 140, OCT)], T0)
    slack.deliver_pending(con, client, T0)
    refresh(con, NOV, [], T0 + timedelta(days=30))
    assert server.updates() == []  # one clean refresh is not enough (hysteresis)
    refresh(con, DEC, [], T0 + timedelta(days=60))
    slack.deliver_pending(con, client, T0 + timedelta(days=60))
    (update,) = server.updates()
    original = server.posts(thread=False)[0]
    assert update["ts"] == server.messages[update["ts"]]["ts"]
    assert server.messages[update["ts"]]["text"].startswith(":white_check_mark: RESOLVED")
    (reply,) = server.posts(thread=True)
    assert reply["thread_ts"] == update["ts"] and "Resolved" in reply["text"]
    assert original["channel_name"] == "#crm-ops"


@pytest.mark.parametrize(("status", "retry_after"), [(429, 1), (500, None)])
def test_rate_limits_and_server_errors_are_retried_and_arrive_once(
    con, server, status, retry_after
):
    server.fail_next(status, retry_after=retry_after)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    counts = slack.deliver_pending(con, client_for(server), T0)
    assert counts == {"sent": 1, "failed": 0, "local": 0, "held": 0}
    assert len(server.posts()) == 1
    assert any(method.startswith("failed:") for method, _ in server.calls)


def test_with_slack_down_the_alert_waits_in_the_outbox_and_goes_out_once_back(con, server):
    client = client_for(server)
    port = server.port
    server.stop()
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    assert slack.deliver_pending(con, client, T0)["failed"] == 1
    status, attempts = sql(con, "select status, attempts from outbox").fetchone()
    assert (status, attempts) == ("pending", 1)
    server.port = port
    server.start()
    assert slack.deliver_pending(con, client, T0 + timedelta(minutes=5))["sent"] == 1
    assert slack.deliver_pending(con, client, T0 + timedelta(minutes=10))["sent"] == 0
    assert len(server.posts()) == 1


def test_without_a_token_alerts_land_in_the_local_outbox_file(con, tmp_path):
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    local = tmp_path / "notices.jsonl"
    assert slack.slack_client(token="") is None
    assert slack.deliver_pending(con, None, T0, local_file=local)["local"] == 1
    notice = json.loads(local.read_text().splitlines()[0])
    assert notice["details"]["channel"] == "#clienteling"


def test_a_silence_hides_notifications_until_it_expires_but_not_state(con, server):
    alerts.silence(
        con,
        segment_id="vip_collectors",
        created_by="asha",
        reason="Festive window",
        expires_at=T0 + timedelta(days=10),
        now=T0,
    )
    counts = refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    # It fires (the state moves on) but nobody hears of it while the window lasts.
    assert counts["suppressed"] == 1 and counts["fired"] == 1 and counts["messages"] == 0
    reason = sql(con, "select reason from suppressed").fetchone()[0]
    assert "silenced by asha" in reason and "Festive window" in reason
    counts = refresh(
        con,
        NOV,
        [breach("size_change", "vip_collectors", "size", 140, NOV)],
        T0 + timedelta(days=30),
    )
    assert counts["suppressed"] == 0 and counts["messages"] == 1  # still firing: now told


def test_inhibition_by_data_quality_and_by_definition_change(con):
    stale = breach(
        "inputs_stale", "*", "freshness_days", 30, OCT, severity="critical", baseline=None, bound=21
    )
    counts = refresh(
        con, OCT, [stale, breach("churn_rising", "dormant", "churn_likelihood", 0.7, OCT)], T0
    )
    assert counts["suppressed"] == 1  # the churn alert depends on the inputs
    reasons = [r[0] for r in sql(con, "select reason from suppressed").fetchall()]
    assert any("data-quality" in r for r in reasons)
    counts = refresh(
        con,
        NOV,
        [breach("size_change", "dormant", "size", 140, NOV)],
        T0 + timedelta(days=30),
        changed={"dormant"},
    )
    assert counts["suppressed"] == 1


def test_level_two_and_three_fire_on_time(con, server):
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    assert alerts.escalate_due(con, CONFIG, T0 + timedelta(hours=23))["level_2"] == 0
    assert alerts.escalate_due(con, CONFIG, T0 + timedelta(hours=25))["level_2"] == 1
    assert alerts.escalate_due(con, CONFIG, T0 + timedelta(hours=26))["level_2"] == 0
    refresh(
        con,
        NOV,
        [breach("size_change", "vip_collectors", "size", 150, NOV)],
        T0 + timedelta(days=30),
    )
    refresh(
        con,
        DEC,
        [breach("size_change", "vip_collectors", "size", 160, DEC)],
        T0 + timedelta(days=60),
    )
    due = alerts.escalate_due(con, CONFIG, T0 + timedelta(days=60, hours=1))
    assert due["level_3"] == 1 and due["strategic_request"]
    assert not alerts.escalate_due(con, CONFIG, T0 + timedelta(days=61))["strategic_request"]
    # The level-3 message waits for the run it announces.
    assert slack.deliver_pending(con, client, T0 + timedelta(days=61))["held"] == 1
    oncall = [p for p in server.posts() if p["channel_name"] == "#segment-oncall"]
    assert len(oncall) == 1
    assert "<!subteam^S0ONCALL>" in oncall[0]["text"] and "Level 2" in oncall[0]["text"]
    alerts.strategic_run_launched(
        con, due["strategic_request"], "run-0123", "http://ui", T0 + timedelta(days=61)
    )
    assert slack.deliver_pending(con, client, T0 + timedelta(days=61))["sent"] == 1
    level_3 = [p for p in server.posts() if p["channel_name"] == "#segment-oncall"][1]
    assert "strategic refresh for 2025-Q4 was requested" in level_3["text"]
    assert "http://ui/runs/run-0123" in json.dumps(level_3["blocks"])


def test_a_critical_breach_goes_straight_to_level_two(con):
    counts = refresh(
        con,
        OCT,
        [breach("size_change", "vip_collectors", "size", 300, OCT, severity="critical")],
        T0,
    )
    kinds = [r[0] for r in sql(con, "select kind from outbox order by created_at, kind").fetchall()]
    assert sorted(kinds) == ["escalation", "firing"] and counts["messages"] == 2


def test_acknowledgement_and_silence_from_slack_reactions_and_replies(con, server):
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    slack.deliver_pending(con, client, T0)
    ts = next(iter(server.messages))
    server.reactions[ts] = [{"name": "white_check_mark", "users": ["U0ASHA"], "count": 1}]
    assert slack.read_acknowledgements(con, client, T0 + timedelta(hours=1)) == 1
    state, by = sql(con, "select state, acknowledged_by from alerts").fetchone()
    assert (state, by) == ("acknowledged", "U0ASHA")
    assert alerts.escalate_due(con, CONFIG, T0 + timedelta(hours=30))["level_2"] == 0


def every_kind() -> dict[str, messages.Message]:
    """One message of each kind, built as the lifecycle builds them."""
    found = messages.finding(
        "size_change|vip_collectors|size|abc123",
        breach("size_change", "vip_collectors", "size", 140, OCT, "critical"),
        2,
    )
    firing = messages.firing_message(
        "vip_collectors", "clienteling", OCT, "abc123", (found,), "http://127.0.0.1:3000"
    )
    run = alerts.strategic_run_link("http://127.0.0.1:3000", "strategic-0123456789ab")
    return {
        "firing": firing,
        "escalation": messages.escalation_message(
            firing, 2, "not acknowledged in time", "<!subteam^S0ONCALL>"
        ),
        "strategic_request": messages.escalation_message(
            firing, 3, "persists", "<!subteam^S0ONCALL>", run, "2025-Q4"
        ),
        "resolved": messages.resolved_message("size_change|vip_collectors|size|abc123", DEC),
        "review_pack": messages.review_pack_message(
            DEC,
            [("Pause violations", "53", "41"), ("Onboarding violations", "686", "n/a")],
            "review-pack.html",
        ),
        "command_help": slack.command_help_message(),
    }


KINDS = ["firing", "escalation", "strategic_request", "resolved", "review_pack", "command_help"]


def check_golden(path: Path, rendered: str) -> None:
    if not path.exists():  # first run writes it; review it like code
        path.write_text(rendered)
    assert rendered == path.read_text()


@pytest.mark.parametrize("kind", KINDS)
def test_each_message_kind_matches_its_golden_files_and_slack_limits(kind):
    message = every_kind()[kind]
    payload = messages.to_block_kit(message)
    check_golden(GOLDEN / f"{kind}.json", json.dumps(payload, indent=2, sort_keys=True) + "\n")
    check_golden(GOLDEN / "messages" / f"{kind}.md", messages.to_markdown(message))
    check_golden(GOLDEN / "messages" / f"{kind}.html", messages.to_html(message) + "\n")
    assert_within_slack_limits(payload)


def assert_within_slack_limits(payload: dict) -> None:
    """Slack's documented limits: 50 blocks, header text 150, section and context text 3,000,
    and the fallback text (kept at 3,000 here, though Slack truncates at 40,000)."""
    assert len(payload["blocks"]) <= 50 and len(payload["text"]) <= 3000
    for block in payload["blocks"]:
        assert block["type"] in ("header", "section", "context")
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text"
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert 0 < len(block["text"]["text"]) <= 3000
        if block["type"] == "context":
            assert len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])


def test_escalations_carry_everything_level_one_said():
    kinds = every_kind()
    first = kinds["firing"]
    for kind in ("escalation", "strategic_request"):
        escalation = kinds[kind]
        assert escalation.findings == first.findings  # value, baseline, bound, runbook
        assert escalation.facts == first.facts  # segment, owner, definition version, month
        assert set(first.links) <= set(escalation.links)
        assert escalation.mention == "<!subteam^S0ONCALL>"
    assert "2025-Q4" in kinds["strategic_request"].lead
    assert any("strategic-0123456789ab" in link.url for link in kinds["strategic_request"].links)


def test_a_long_message_is_clipped_within_limits_and_says_what_it_left_out():
    findings = tuple(
        messages.finding(f"k{i}", breach("size_change", "s" * 200, f"metric_{i}" * 40, 1e9, OCT), 1)
        for i in range(80)
    )
    message = messages.firing_message("s" * 200, "o", OCT, "v", findings, "http://x")
    payload = messages.to_block_kit(message)
    assert_within_slack_limits(payload)
    assert "more metric(s)" in json.dumps(payload["blocks"][-3:])
    assert messages.to_markdown(message).count("\n- WARN: ") == 80  # the outbox keeps them all


def alert_state(con, segment: str) -> str:
    return sql(con, f"select state from alerts where segment_id = '{segment}'").fetchone()[0]


def test_a_silenced_alert_still_breaching_is_never_resolved(con):
    # Regression: a suppressed breach counted as a clean refresh, so "resolved, back within
    # bounds" went out while the segment was still breaching.
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    assert alert_state(con, "vip_collectors") == "firing"
    alerts.silence(
        con,
        segment_id="vip_collectors",
        created_by="asha",
        reason="Festive window",
        expires_at=T0 + timedelta(days=90),
        now=T0,
    )
    for month, days in ((NOV, 30), (DEC, 60)):  # clear_after is 2: two would resolve it
        counts = refresh(
            con,
            month,
            [breach("size_change", "vip_collectors", "size", 140, month)],
            T0 + timedelta(days=days),
        )
        assert counts["suppressed"] == 1 and counts["resolved"] == 0
    assert alert_state(con, "vip_collectors") == "firing"
    assert not sql(con, "select count(*) from outbox where kind = 'resolved'").fetchone()[0]


def test_backfilling_an_earlier_month_leaves_alerts_of_later_months_alone(con):
    # Regression: processing July as a backfill after November counted July as clean for the
    # alert November opened, and resolved it.
    refresh(con, NOV, [breach("size_change", "vip_collectors", "size", 140, NOV)], T0)
    assert alert_state(con, "vip_collectors") == "firing"
    for month in (JUL, AUG):
        counts = refresh(con, month, [], T0 + timedelta(hours=1))
        assert counts["resolved"] == 0
    assert alert_state(con, "vip_collectors") == "firing"
    last = sql(con, "select last_breach_month from alerts").fetchone()[0]
    assert str(last) == str(NOV)


def test_a_malformed_silence_in_a_thread_never_stops_the_replies_after_it(con, server):
    # Regression: `silence 3d ...` raised ValueError (float("3d")); the error was swallowed,
    # and every tick stopped at that reply, so the `ack` after it was never read.
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    slack.deliver_pending(con, client, T0)
    ts = next(iter(server.messages))
    server.replies[ts] = [
        {"user": "U0ASHA", "text": "silence for a while please", "ts": "1.1"},
        {"user": "U0ASHA", "text": "silence 3d festive window", "ts": "1.2"},
        {"user": "U0RAVI", "text": "ack", "ts": "1.3"},
    ]
    assert slack.read_acknowledgements(con, client, T0 + timedelta(hours=1)) == 1
    expires, reason = sql(con, "select expires_at, reason from silences").fetchone()
    assert reason == "festive window"
    assert str(expires).startswith(str((T0 + timedelta(hours=1, days=3)).date()))


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("silence 72h festive", (72.0, "festive")),
        ("silence 3d", (72.0, "silenced from Slack")),
        ("silence 1w quiet week", (168.0, "quiet week")),
        ("silence 90m", (1.5, "silenced from Slack")),
        ("silence 12 x", (12.0, "x")),
        ("silence", None),
        ("silence soon", None),
        ("silence -3h", None),
    ],
)
def test_a_silence_command_reads_its_duration_or_is_refused(text, parsed):
    assert slack.parse_silence(text) == parsed


def two_segments_breach(con) -> None:
    """October: vip_collectors (#clienteling) and dormant (#crm-ops) both fire."""
    refresh(
        con,
        OCT,
        [
            breach("size_change", "vip_collectors", "size", 140, OCT),
            breach("churn_rising", "dormant", "churn_likelihood", 0.7, OCT),
        ],
        T0,
    )


def test_a_refused_token_is_said_loudly_asked_once_per_pass_and_delivery_resumes_when_fixed(
    con, server
):
    # Regression: invalid_auth was retried silently on every message of every tick, and the
    # CLI said only "kept for retry".
    server.token = "xoxb-the-right-one"
    client = client_for(server)  # holds xoxb-test-token, which the workspace refuses
    two_segments_breach(con)
    counts = slack.deliver_pending(con, client, T0)
    assert counts["failed"] == 2 and counts["sent"] == 0
    assert [c for c, _ in server.calls if c.startswith("refused:")] == [
        "refused:conversations.list"
    ]
    [problem] = slack.delivery_problems(con)
    assert problem.startswith("NOT DELIVERED: Slack says invalid_auth for the bot token")
    assert "SLACK_BOT_TOKEN" in problem and "2 message(s) kept" in problem
    server.token = "xoxb-test-token"  # the token is fixed
    assert slack.deliver_pending(con, client, T0 + timedelta(minutes=1))["sent"] == 2
    assert slack.delivery_problems(con) == []


def test_a_missing_channel_holds_its_own_messages_only(con, server):
    server.missing_channels = {"#crm-ops"}
    client = client_for(server)
    two_segments_breach(con)
    counts = slack.deliver_pending(con, client, T0)
    assert counts == {"sent": 1, "failed": 1, "local": 0, "held": 0}
    [problem] = slack.delivery_problems(con)
    assert "NOT DELIVERED to #crm-ops: Slack says channel_not_found" in problem


def test_a_pass_inside_a_run_leaves_escalation_to_the_sensor(state_url, tmp_path, monkeypatch):
    # Regression: the review pack's alert pass raised level 3 and said "the quarterly
    # strategic refresh has been requested", but only the sensor can request a run.
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    with state_store.transaction(state_url) as connection:
        refresh(connection, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    later = T0 + timedelta(hours=30)
    inside_a_run = alert_tick.run_tick(later, None, CONFIG, state_url, escalate=False)
    assert (inside_a_run.level_2, inside_a_run.strategic_request) == (0, None)
    with state_store.transaction(state_url) as connection:
        assert sql(connection, "select level from alerts").fetchone()[0] == 1
    assert alert_tick.run_tick(later, None, CONFIG, state_url).level_2 == 1


# -- exactly once, in order, and commands from Slack (issue 14) -----------------------------


def outbox_rows(con) -> list[tuple]:
    return sql(con, "select kind, status, slack_ts from outbox order by sequence").fetchall()


def test_a_post_whose_response_was_lost_is_adopted_not_posted_twice(con, server):
    # Regression: Slack posted the message, the answer was lost, and the retry posted it again.
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    server.drop_next("chat.postMessage", when="after")
    assert slack.deliver_pending(con, client, T0)["sent"] == 1
    assert len(server.messages) == 1  # one message in Slack, found again by its metadata
    [(kind, status, ts)] = outbox_rows(con)
    assert (kind, status, ts) == ("firing", "sent", next(iter(server.messages)))
    assert any(method == "conversations.history" for method, _ in server.calls)


def test_a_connection_reset_before_the_post_is_retried_and_arrives_once(con, server):
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    server.drop_next("chat.postMessage", when="before")
    assert slack.deliver_pending(con, client, T0)["sent"] == 1
    assert len(server.messages) == 1
    assert [m for m, _ in server.calls if m.startswith("reset:")] == ["reset:chat.postMessage"]


def test_a_transient_failure_backs_off_and_is_never_sent_twice(con, server):
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    server.drop_next("chat.postMessage", when="after")  # it took effect; the answer is lost
    server.drop_next("conversations.history", when="before")  # and the look-up fails
    assert slack.deliver_pending(con, client, T0) == {
        "sent": 0,
        "failed": 1,
        "local": 0,
        "held": 0,
    }
    # Backing off: a pass a few seconds later does not ask again.
    calls = len(server.calls)
    assert slack.deliver_pending(con, client, T0 + timedelta(seconds=10))["failed"] == 1
    assert len(server.calls) == calls
    assert slack.deliver_pending(con, client, T0 + timedelta(minutes=5))["sent"] == 1
    # The later pass looked before posting and adopted the message already in Slack.
    assert len(server.messages) == 1


def test_an_escalation_goes_out_after_the_message_it_escalates_with_all_its_context(con, server):
    # Regression: level 2 went out before the level-1 message, and said only metric=value.
    server.missing_channels = {"#clienteling"}  # the owner's channel refuses at first
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 400, OCT, "critical")], T0)
    counts = slack.deliver_pending(con, client, T0)
    assert (counts["sent"], counts["held"]) == (0, 1)  # the escalation waits for level 1
    server.missing_channels = set()
    assert slack.deliver_pending(con, client, T0 + timedelta(minutes=1))["sent"] == 2
    first, escalation = server.posts()
    assert first["channel_name"] == "#clienteling"
    assert escalation["channel_name"] == "#segment-oncall"
    text = json.dumps(escalation["blocks"])
    for context in ("400", "baseline 100", "bound:", "Check the migration matrix", "abc123"):
        assert context in text
    assert "Open in Dagster" in text and "<!subteam^S0ONCALL>" in escalation["text"]


def test_an_acknowledgement_on_an_escalation_counts(con, server):
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 400, OCT, "critical")], T0)
    slack.deliver_pending(con, client, T0)
    escalation = next(ts for ts, m in server.messages.items() if "Level 2" in m["text"])
    server.reactions[escalation] = [{"name": "eyes", "users": ["U0ONCALL"], "count": 1}]
    assert slack.read_acknowledgements(con, client, T0 + timedelta(hours=1)) == 1
    assert sql(con, "select acknowledged_by from alerts").fetchone()[0] == "U0ONCALL"


@pytest.mark.parametrize(
    ("text", "verb"),
    [
        ("ack", "ack"),
        ("Acknowledged, on it", "ack"),
        ("silence 3d festive window", "silence"),
        ("silence 3x festive window", "help"),
        ("silence", "help"),
        ("snooze 2h", "help"),
        ("!mute", "help"),
        ("unsilence", "unsilence"),
        ("looking at the migration matrix now", "chat"),
    ],
)
def test_a_thread_reply_is_read_as_a_command_or_as_chat(text, verb):
    assert slack.classify_reply(text)[0] == verb


def test_an_unknown_command_gets_the_syntax_once_and_never_blocks_the_replies_after_it(con, server):
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    slack.deliver_pending(con, client, T0)
    ts = next(iter(server.messages))
    server.replies[ts] = [
        {"ts": "1700000100.000001", "user": "U0ASHA", "text": "snooze 2d"},
        {"ts": "1700000100.000002", "user": "U0ASHA", "text": "silence 3x oops"},
        {"ts": "1700000100.000003", "user": "U0RAVI", "text": "ack"},
    ]
    for minutes in (1, 2):  # read twice: still one answer per reply it could not understand
        assert slack.read_acknowledgements(con, client, T0 + timedelta(minutes=minutes)) <= 1
        slack.deliver_pending(con, client, T0 + timedelta(minutes=minutes))
    assert sql(con, "select acknowledged_by from alerts").fetchone()[0] == "U0RAVI"
    answers = [p for p in server.posts(thread=True) if "Commands in this thread" in p["text"]]
    assert len(answers) == 2 and all(a["thread_ts"] == ts for a in answers)


def test_unsilence_from_slack_ends_the_window_once(con, server):
    client = client_for(server)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    slack.deliver_pending(con, client, T0)
    ts = next(iter(server.messages))
    server.replies[ts] = [
        {"ts": "1700000100.000001", "user": "U0ASHA", "text": "silence 1w festive window"},
        {"ts": "1700000100.000002", "user": "U0ASHA", "text": "unsilence"},
    ]
    slack.read_acknowledgements(con, client, T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=2)
    assert alerts.active_silences(con, later) == []
    # A silence made after the unsilence is not ended by reading the thread again.
    alerts.silence(
        con,
        segment_id="vip_collectors",
        created_by="asha",
        reason="again",
        expires_at=T0 + timedelta(days=2),
        now=later,
    )
    slack.read_acknowledgements(con, client, T0 + timedelta(minutes=3))
    assert len(alerts.active_silences(con, T0 + timedelta(minutes=4))) == 1


def test_channel_names_are_resolved_to_ids_once(con, server):
    client = client_for(server)
    two_segments_breach(con)
    slack.deliver_pending(con, client, T0)
    refresh(
        con,
        NOV,
        [breach("size_change", "vip_collectors", "size", 300, NOV)],
        T0 + timedelta(days=30),
    )
    slack.deliver_pending(con, client, T0 + timedelta(days=30))
    assert [m for m, _ in server.calls].count("conversations.list") == 1
    assert all(p["channel"].startswith("C") for p in server.posts())


def test_a_review_pack_is_shared_by_channel_name_uploaded_once_and_its_share_retried(
    con, server, tmp_path
):
    # Regression: with the shipped config (a channel name) the pack was never shared, and
    # every tick uploaded the file again.
    pack = tmp_path / "review-pack.html"
    pack.write_text("<html><body>the pack</body></html>")
    review_pack.record(con, DEC, pack, "Monthly segmentation review pack for December 2025.")
    client = client_for(server)
    server.drop_next("files.completeUploadExternal", when="before")
    assert review_pack.post_pending(con, client, "#segmentation-review") == {
        "posted": 0,
        "failed": 1,
    }
    [problem] = review_pack.posting_problems(con)
    assert problem.startswith("REVIEW PACK 2025-12 NOT POSTED") and "only the share" in problem
    assert review_pack.post_pending(con, client, "#segmentation-review") == {
        "posted": 1,
        "failed": 0,
    }
    assert review_pack.post_pending(con, client, "#segmentation-review")["posted"] == 0
    assert len(server.uploads) == 1 and len(server.shared_files) == 1
    assert server.shared_files[0]["channel_id"] == server.channel_id("segmentation-review")
    assert server.shared_files[0]["bytes"] == pack.read_bytes()
    assert review_pack.posting_problems(con) == []


def test_the_cli_reports_what_went_out_during_the_run(state_url):
    # Regression: after `demo` or `refresh` the CLI said "fired 0 ... sent 0" although the
    # run's own pass had sent the alerts.
    with state_store.transaction(state_url) as connection:
        refresh(connection, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
        slack.deliver_pending(connection, None, T0, local_file=Path(state_url[10:]).parent / "n")
    during = alert_tick.activity_since(T0 - timedelta(minutes=1), state_url)
    assert (during.fired, during.local, during.waiting) == (1, 1, 0)
    assert "fired 1" in during.summary() and "written locally 1" in during.summary()
    assert alert_tick.activity_since(T0 + timedelta(minutes=1), state_url).fired == 0


def test_level_three_is_requested_by_the_sensor_and_its_message_links_to_the_run(
    state_url, tmp_path, monkeypatch
):
    # Regression: level 3 said "the quarterly strategic refresh has been requested" with no
    # run behind it. Now the request and its message are recorded together, the sensor
    # requests the run, and the message waits for the run and links to it.
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    with state_store.transaction(state_url) as connection:
        for month, day in ((OCT, 0), (NOV, 30), (DEC, 60)):
            refresh(
                connection,
                month,
                [breach("size_change", "vip_collectors", "size", 140, month)],
                T0 + timedelta(days=day),
            )
        request = alerts.escalate_due(connection, CONFIG, T0 + timedelta(days=61))
        request_id = request["strategic_request"]
    instance = dg.DagsterInstance.ephemeral()
    result = segment_health_alerts(dg.build_sensor_context(instance=instance))
    [run_request] = result.run_requests
    assert run_request.run_key == request_id and run_request.partition_key == "2025-10-01"
    assert run_request.tags[alerts.STRATEGIC_TAG] == request_id
    notices = (tmp_path / "outbox" / "notices.jsonl").read_text()
    assert "Level 3" not in notices  # held: no run exists yet
    instance.add_run(
        DagsterRun(job_name="quarterly_strategic", run_id="run-42", tags=run_request.tags)
    )
    result = segment_health_alerts(dg.build_sensor_context(instance=instance))
    assert not result.run_requests  # launched: not requested again
    level_3 = [
        json.loads(n) for n in (tmp_path / "outbox" / "notices.jsonl").read_text().splitlines()
    ]
    [strategic] = [n for n in level_3 if n["kind"] == "alert_strategic_request"]
    assert "/runs/run-42" in strategic["details"]["markdown"]


def test_an_episode_that_fired_while_silenced_resolves_without_replying_to_an_earlier_one(con):
    # Regression (found by the property test): the resolution of a second episode that fired
    # under a silence was posted in the thread of the first episode, already resolved.
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    refresh(con, NOV, [], T0 + timedelta(days=30))
    refresh(con, DEC, [], T0 + timedelta(days=60))  # clear_after 2: resolved
    assert alert_state(con, "vip_collectors") == "resolved"
    alerts.silence(
        con,
        segment_id="vip_collectors",
        created_by="asha",
        reason="Festive window",
        expires_at=T0 + timedelta(days=75),
        now=T0 + timedelta(days=61),
    )
    counts = refresh(
        con,
        JAN,
        [breach("size_change", "vip_collectors", "size", 140, JAN)],
        T0 + timedelta(days=62),
    )
    assert counts["fired"] == 1 and counts["messages"] == 0  # the new episode, unheard
    FEB, MAR = date(2026, 2, 28), date(2026, 3, 31)
    refresh(con, FEB, [], T0 + timedelta(days=90))
    counts = refresh(con, MAR, [], T0 + timedelta(days=120))
    assert counts["resolved"] == 1 and counts["messages"] == 0
    resolutions = sql(con, "select count(*) from outbox where kind = 'resolved'").fetchone()[0]
    assert resolutions == 1  # the first episode's only


def test_a_refused_token_turns_the_outbox_check_red_until_it_is_fixed(
    state_url, server, tmp_path, monkeypatch
):
    # Regression: a permanent Slack error showed in no asset check; on-call looking at the
    # UI saw every check green while nothing was delivered.
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("SLACK_API_URL", server.base_url)
    server.token = "xoxb-the-right-one"  # the workspace refuses the configured token
    with state_store.transaction(state_url) as connection:
        two_segments_breach(connection)
    instance = dg.DagsterInstance.ephemeral()
    context = dg.build_sensor_context(instance=instance)
    result = segment_health_alerts(context)
    [evaluation] = result.asset_events
    assert evaluation.asset_key == OUTBOX and evaluation.check_name == DELIVERY_CHECK
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "invalid_auth" in evaluation.description
    assert not alerts_are_delivered().passed  # run from the UI, it says the same
    # The next tick finds the same problem: nothing new to report.
    again = segment_health_alerts(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert not getattr(again, "asset_events", [])
    server.token = "xoxb-test-token"  # fixed
    fixed = segment_health_alerts(
        dg.build_sensor_context(instance=instance, cursor=again.cursor or result.cursor)
    )
    [green] = fixed.asset_events
    assert green.passed and alerts_are_delivered().passed
    with state_store.transaction(state_url) as connection:
        waiting = sql(connection, "select count(*) from outbox where status <> 'sent'")
        assert waiting.scalar() == 0 and len(server.posts()) >= 2


def test_a_missed_kpi_target_alerts_its_owner_apart_from_the_segment_owner(con, server):
    """A KPI owned by retention-marketing on a clienteling segment: the miss goes to the
    KPI owner's channel, the segment's health breach to the segment owner's, and the
    resolution to whom heard of the miss."""
    row = scorecard.ScorecardRow(
        OCT,
        "vip_collectors",
        "response_rate",
        "leading",
        "at_least",
        "retention-marketing",
        "warn",
        "mature",
        9,
        0.08,
        None,
        0.044,
        0.156,
        "missed",
    )
    config = thresholds.ThresholdConfig(
        CONFIG.path,
        CONFIG.rules,
        {
            **SETTINGS,
            "owner_channels": {
                **SETTINGS["owner_channels"],
                "retention-marketing": "#retention-marketing",
            },
        },
    )
    health = breach("churn_rising", "vip_collectors", "churn_likelihood", 0.6, OCT)

    def process(month, found, now):
        return alerts.process_refresh(
            con,
            month_end=month,
            breaches=found,
            config=config,
            definition_version="abc123",
            owners=OWNERS,
            changed_segments=set(),
            now=now,
        ).counts()

    assert process(OCT, [health, *scorecard.breaches([row])], T0)["fired"] == 2
    slack.deliver_pending(con, client_for(server), T0)
    posts = {p["channel_name"]: json.dumps(p["blocks"]) for p in server.posts()}
    assert set(posts) == {"#clienteling", "#retention-marketing"}
    assert "KPI targets" in posts["#retention-marketing"]
    assert "response_rate" in posts["#retention-marketing"]
    assert "target: at least 0.08" in posts["#retention-marketing"]
    assert "response_rate" not in posts["#clienteling"]
    # Met in November: resolved on the first clean month, told in the KPI owner's channel.
    assert process(NOV, [health], T0 + timedelta(days=30))["resolved"] == 1
    slack.deliver_pending(con, client_for(server), T0 + timedelta(days=30))
    resolved = [p for p in server.posts()[2:] if "response_rate" in json.dumps(p)]
    assert [p["channel_name"] for p in resolved] == ["#retention-marketing"]
