"""Alerts end to end against a Slack-compatible server on 127.0.0.1, with a simulated clock."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from segment_cadence.defs.alerting import alert_tick, alerts, slack
from segment_cadence.defs.health import thresholds
from segment_cadence.platform import state_store
from tests.slack_server import SlackServer

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2026, 1, 2, 6, 0)
OWNERS = {"vip_collectors": "clienteling", "dormant": "crm-ops"}
CONFIG = thresholds.validate(
    {
        "settings": {
            "owner_channels": {"clienteling": "#clienteling", "crm-ops": "#crm-ops"},
            "escalation_channel": "#segment-oncall",
            "oncall_mention": "<!subteam^S0ONCALL>",
            "repeat_interval_hours": 24,
            "ack_timeout_hours": 24,
            "persist_refreshes": 3,
        },
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
    return alerts.process_refresh(
        con,
        month_end=month,
        breaches=breaches,
        config=CONFIG,
        definition_version="abc123",
        owners=OWNERS,
        changed_segments=changed or set(),
        now=now,
        render=slack.Renderer(),
    )


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
    assert post["channel"] == "#clienteling"
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
    assert original["channel"] == "#crm-ops"


@pytest.mark.parametrize(("status", "retry_after"), [(429, 1), (500, None)])
def test_rate_limits_and_server_errors_are_retried_and_arrive_once(
    con, server, status, retry_after
):
    server.fail_next(status, retry_after=retry_after)
    refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    counts = slack.deliver_pending(con, client_for(server), T0)
    assert counts == {"sent": 1, "failed": 0, "local": 0}
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


def test_a_silence_suppresses_until_it_expires(con, server):
    alerts.silence(
        con,
        segment_id="vip_collectors",
        created_by="asha",
        reason="Festive window",
        expires_at=T0 + timedelta(days=10),
        now=T0,
    )
    counts = refresh(con, OCT, [breach("size_change", "vip_collectors", "size", 140, OCT)], T0)
    assert counts["suppressed"] == 1 and counts["messages"] == 0
    reason = sql(con, "select reason from suppressed").fetchone()[0]
    assert "silenced by asha" in reason and "Festive window" in reason
    counts = refresh(
        con,
        NOV,
        [breach("size_change", "vip_collectors", "size", 140, NOV)],
        T0 + timedelta(days=30),
    )
    assert counts["fired"] == 1


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
    assert (
        alerts.escalate_due(con, CONFIG, slack.Renderer(), T0 + timedelta(hours=23))["level_2"] == 0
    )
    assert (
        alerts.escalate_due(con, CONFIG, slack.Renderer(), T0 + timedelta(hours=25))["level_2"] == 1
    )
    assert (
        alerts.escalate_due(con, CONFIG, slack.Renderer(), T0 + timedelta(hours=26))["level_2"] == 0
    )
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
    due = alerts.escalate_due(con, CONFIG, slack.Renderer(), T0 + timedelta(days=60, hours=1))
    assert due["level_3"] == 1 and due["strategic_refresh"]
    assert not alerts.escalate_due(con, CONFIG, slack.Renderer(), T0 + timedelta(days=61))[
        "strategic_refresh"
    ]
    slack.deliver_pending(con, client, T0 + timedelta(days=61))
    oncall = [p for p in server.posts() if p["channel"] == "#segment-oncall"]
    assert len(oncall) == 2
    assert "<!subteam^S0ONCALL>" in oncall[0]["text"] and "Level 2" in oncall[0]["text"]
    assert "strategic refresh has been requested" in oncall[1]["text"]


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
    assert (
        alerts.escalate_due(con, CONFIG, slack.Renderer(), T0 + timedelta(hours=30))["level_2"] == 0
    )


def render_all() -> dict[str, dict]:
    routing = alerts.Routing.from_settings(CONFIG.settings)
    renderer = slack.Renderer()
    items = [
        {
            "key": "k",
            "consecutive": 2,
            "rule": CONFIG.rules[0],
            "breach": breach("size_change", "vip_collectors", "size", 140, OCT),
        }
    ]
    rows = [("k", "vip_collectors", "size_change", "size", 140.0, "warn")]
    return {
        "firing": renderer.firing("vip_collectors", "clienteling", OCT, "abc123", items, routing),
        "resolved": renderer.resolved("size_change|vip_collectors|size|abc123", DEC, routing),
        "escalation": renderer.escalation(
            "vip_collectors", 2, "not acknowledged in time", rows, routing
        ),
        "strategic_request": renderer.escalation("vip_collectors", 3, "persists", rows, routing),
    }


@pytest.mark.parametrize("kind", ["firing", "resolved", "escalation", "strategic_request"])
def test_block_kit_matches_the_golden_file_and_slack_limits(kind):
    payload = render_all()[kind]
    golden = GOLDEN / f"{kind}.json"
    if not golden.exists():  # first run writes it; review it like code
        golden.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    assert payload == json.loads(golden.read_text())
    assert len(payload["blocks"]) <= 50 and len(payload["text"]) <= 3000
    for block in payload["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000


def test_a_long_message_is_clipped_within_limits():
    routing = alerts.Routing.from_settings(CONFIG.settings)
    items = [
        {
            "key": f"k{i}",
            "consecutive": 1,
            "rule": CONFIG.rules[0],
            "breach": breach("size_change", "s" * 200, f"metric_{i}" * 40, 1e9, OCT),
        }
        for i in range(80)
    ]
    payload = slack.Renderer().firing("s" * 200, "o", OCT, "v", items, routing)
    assert len(payload["blocks"]) <= 50 and len(payload["text"]) <= 3000
    assert len(payload["blocks"][0]["text"]["text"]) <= 150


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
    assert [c for c, _ in server.calls if c.startswith("refused:")] == ["refused:chat.postMessage"]
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
    assert counts == {"sent": 1, "failed": 1, "local": 0}
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
    assert (inside_a_run.level_2, inside_a_run.strategic_quarter) == (0, None)
    with state_store.transaction(state_url) as connection:
        assert sql(connection, "select level from alerts").fetchone()[0] == 1
    assert alert_tick.run_tick(later, None, CONFIG, state_url).level_2 == 1
