"""Governance: the campaign firewall, override attempts, the red-flag metrics from a send log
with planted violations, the language lint, the audit trail and the bias audit.

The warehouse here is built directly (small, seeded), so the planted counts are exact: the
ordinary campaigns only reach eligible customers, and every violation is placed on purpose.
"""

from __future__ import annotations

import random
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from segment_cadence.defs.governance import audit, firewall, governance, red_flags
from segment_cadence.defs.governance.firewall import Campaign, CampaignError
from segment_cadence.platform import state_store, warehouse
from tests.analysis_dbt import GOVERNANCE, HEALTH_METRICS, build_analysis

SEPTEMBER, OCTOBER, NOVEMBER = date(2026, 9, 30), date(2026, 10, 31), date(2026, 11, 30)
SEGMENTS = [  # id, name, paused
    ("post_purchase_cooldown", "Post-purchase cool-down", True),
    ("evaluation", "Evaluation", True),
    ("loyal_repeat", "Loyal repeat buyers", False),
    ("occasional", "Occasional buyers", False),
    ("prospects", "Prospects", False),
]
PAUSED = {s for s, _, p in SEGMENTS if p}
TEAM = [  # sender, name, team, joined
    ("S001", "Asha", "crm", date(2023, 1, 9)),
    ("S002", "Ben", "ecommerce", date(2024, 5, 1)),
    ("S003", "Chloe", "stores", date(2022, 3, 14)),
    ("S004", "Dev", "crm", date(2026, 10, 1)),  # new: first 30 days end 2026-10-31
    ("S005", "Esme", "ecommerce", date(2026, 10, 20)),  # new
]


@pytest.fixture()
def con(tmp_path: Path, state_url: str):
    """A small warehouse, and a fresh state store for the firewall's records."""
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_schema(connection)
    yield connection
    connection.close()


def copied(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """The firewall records, as the monthly job copies them from the state store (ops.*)."""
    state_store.copy_firewall_records(con)
    return con


def build(con: duckdb.DuckDBPyConnection, customers: int = 400, seed: int = 11) -> dict:
    """Customers, a dictionary, two published months and a send log with planted violations.

    Returns the planted truth: October's pause violations and onboarding sends.
    """
    rng = random.Random(seed)
    con.execute(
        "create table raw.customers (customer_id varchar, signup_date date, region varchar, "
        "age_band varchar, language varchar, email_consent boolean)"
    )
    con.execute(
        "create table raw.team_members (sender_id varchar, name varchar, team varchar, "
        "joined_date date)"
    )
    con.execute(
        "create table raw.campaign_sends (send_id varchar, campaign_id varchar, "
        "campaign_name varchar, customer_id varchar, sender_id varchar, channel varchar, "
        "targeted_segment varchar, sent_at timestamp)"
    )
    ids = [f"C{i:05d}" for i in range(customers)]
    con.executemany(
        "insert into raw.customers values (?, date '2020-01-01', ?, ?, ?, ?)",
        [
            (
                c,
                rng.choice(["north", "south", "east", "west"]),
                rng.choice(["18-34", "35-54", "55+"]),
                rng.choice(["en", "hi"]),
                i % 10 != 0,
            )
            for i, c in enumerate(ids)
        ],
    )
    con.executemany("insert into raw.team_members values (?, ?, ?, ?)", TEAM)
    # The per-version dictionary as the dbt model keeps it (dbt is not under test here).
    con.execute(
        "create table governance.segment_dictionary_versions (definition_version varchar, "
        "segment_id varchar, segment_name varchar, description varchar, owner varchar, "
        "priority integer, rule varchar, paused boolean, pause_reason varchar, "
        "min_size integer, status varchar, is_fallback boolean)"
    )
    con.executemany(
        "insert into governance.segment_dictionary_versions values ('v1hash', ?, ?, 'd', 'crm-ops', ?, "
        "'true', ?, 'paused for a reason', 20, 'active', false)",
        [(s, n, i + 1, p) for i, (s, n, p) in enumerate(SEGMENTS)],
    )
    # Stands in for the published view (dbt_project/models/published): the rows a
    # publication leaves, written directly.
    con.execute(
        "create table if not exists published.segment_membership (customer_id varchar, "
        "month_end date, segment_id varchar, definition_version varchar, "
        "previous_segment_id varchar, months_in_segment integer)"
    )
    # The health models read the published KPIs and features too; none published here.
    con.execute(
        "create table if not exists published.segment_kpis (month_end date, segment_id varchar, "
        "segment_name varchar, paused boolean, customers bigint, share double, "
        "revenue_this_month double, revenue_365d double, avg_lifetime_value double, "
        "avg_churn_likelihood double, avg_engagement_events_90d double, "
        "campaign_response_rate double, avg_months_in_segment double, "
        "previous_customers bigint, stayed bigint, moved_in bigint, moved_out bigint, "
        "new_customers bigint, retention_rate double)"
    )
    con.execute(
        "create table if not exists published.customer_features (customer_id varchar, "
        "month_end date, recency_days bigint, frequency bigint, monetary_value double, "
        "engagement_events_90d bigint, repeat_purchase_velocity double, "
        "churn_likelihood double, campaign_response_rate double, spend_this_month double)"
    )
    membership: dict[date, dict[str, str]] = {}
    previous: dict[str, str] = {}
    for month in (SEPTEMBER, OCTOBER):
        current = {
            c: (previous[c] if previous and rng.random() < 0.8 else rng.choice(SEGMENTS)[0])
            for c in ids
        }
        con.executemany(
            "insert into published.segment_membership values (?, ?, ?, 'v1hash', ?, 1)",
            [(c, month, s, previous.get(c)) for c, s in current.items()],
        )
        membership[month] = current
        previous = current

    september = membership[SEPTEMBER]
    eligible = [c for c in ids if september[c] not in PAUSED and int(c[1:]) % 10 != 0]
    in_pause = [c for c in ids if september[c] in PAUSED]
    sends, planted_pause, planted_onboarding = [], 0, 0
    n = 0
    for k, (sender, channel) in enumerate(
        [
            ("S001", "email"),
            ("S002", "sms"),
            ("S003", "email"),
            ("S001", "whatsapp"),
            ("S004", "email"),
        ]
    ):
        campaign = f"CMP{k:03d}"
        day = datetime(2026, 10, 3 + 5 * k, 10)
        recipients = rng.sample(eligible, 30)
        leaked = rng.sample(in_pause, k) if k in (1, 3) else []  # planted: 1 + 3 leaks
        for customer in recipients + leaked:
            n += 1
            sends.append(
                (
                    f"SND{n:06d}",
                    campaign,
                    f"Campaign {k}",
                    customer,
                    sender,
                    channel,
                    "loyal_repeat",
                    day,
                )
            )
        planted_pause += len(leaked)
        if sender == "S004":  # Dev sends on 2026-10-23, within 30 days of joining
            planted_onboarding += len(recipients) + len(leaked)
    # A send on 2026-11-02 by Dev is after his first 30 days: not an October violation.
    sends.append(
        (
            "SND999999",
            "CMP900",
            "November",
            eligible[0],
            "S004",
            "email",
            "loyal_repeat",
            datetime(2026, 11, 2, 9),
        )
    )
    con.executemany("insert into raw.campaign_sends values (?, ?, ?, ?, ?, ?, ?, ?)", sends)
    return {
        "pause": planted_pause,
        "onboarding": planted_onboarding,
        "membership": membership,
        "in_pause": in_pause,
        "eligible": eligible,
    }


def measure(con: duckdb.DuckDBPyConnection, month: date) -> red_flags.RedFlags:
    """The month's red flags: the governance dbt models built, then read back."""
    build_analysis(con, month)
    return red_flags.read(con, month)


def record_segment_changes(
    con: duckdb.DuckDBPyConnection, month: date, recorded_at: datetime | None = None
) -> int:
    """Build the audit trail for the month; the rows it added."""
    count = "select count(*) from governance.segment_audit_log"
    before = (
        con.execute(count).fetchone()[0]
        if warehouse.table_exists(con, "governance", "segment_audit_log")
        else 0
    )
    build_analysis(con, month, recorded_at=recorded_at)
    return con.execute(count).fetchone()[0] - before


def measure_bias(con: duckdb.DuckDBPyConnection, month: date) -> int:
    """Build the bias audit for the month; the flagged cells."""
    build_analysis(con, month)
    return audit.count_flagged(con, month)


def campaign(**overrides) -> Campaign:
    fields = {
        "name": "Autumn edit",
        "sender_id": "S001",
        "channel": "email",
        "planned_at": datetime(2026, 11, 10, 9),
        "target_segments": ("loyal_repeat",),
    }
    return Campaign(**(fields | overrides))


def test_a_campaign_targeting_a_paused_segment_is_blocked_and_recorded(con):
    truth = build(con)
    decision = firewall.check_campaign(
        con,
        campaign(target_segments=("evaluation", "loyal_repeat")),
        checked_at=datetime(2026, 11, 5),
    )
    october = truth["membership"][OCTOBER]
    evaluation = {c for c, s in october.items() if s == "evaluation"}
    assert decision.membership_month == OCTOBER
    assert decision.decision == "partially_blocked"
    blocked_paused = {b.customer_id for b in decision.blocked if b.reasons[0] == "paused_segment"}
    assert blocked_paused == evaluation
    assert all(october[c] == "loyal_repeat" for c in decision.allowed)
    assert decision.blocked_segments() == {"evaluation": len(evaluation)}
    row = (
        copied(con)
        .execute("select decision, blocked, blocked_segments from ops.firewall_checks")
        .fetchall()
    )
    assert row == [("partially_blocked", len(decision.blocked), "evaluation")]
    # Checking the same campaign again records nothing new.
    again = firewall.check_campaign(con, campaign(target_segments=("evaluation", "loyal_repeat")))
    assert not again.recorded
    assert copied(con).execute("select count(*) from ops.firewall_checks").fetchone()[0] == 1


def test_customers_without_consent_or_outside_the_targets_are_blocked_with_reasons(con):
    truth = build(con)
    october = truth["membership"][OCTOBER]
    outsider = next(c for c, s in october.items() if s == "occasional" and int(c[1:]) % 10)
    no_consent = next(c for c, s in october.items() if s == "loyal_repeat" and int(c[1:]) % 10 == 0)
    decision = firewall.check_campaign(
        con, campaign(customer_ids=(outsider, no_consent, "C99999")), record=False
    )
    reasons = {b.customer_id: b.reasons for b in decision.blocked}
    assert reasons[outsider] == ("not_in_targeted_segment",)
    assert reasons[no_consent] == ("no_consent",)
    assert reasons["C99999"] == ("unknown_customer",)
    # SMS has no consent column here: the same customer may be reached by SMS.
    sms = firewall.check_campaign(
        con, campaign(channel="sms", customer_ids=(no_consent,)), record=False
    )
    assert no_consent in sms.allowed
    # The firewall reports retired language in what it checks (advice, not a block).
    worded = firewall.check_campaign(
        con, campaign(name="Wake them up", copy="Our warm leads will love it"), record=False
    )
    assert [f.phrase for f in worded.language] == ["wake them up", "warm lead"]


def test_a_sender_in_their_first_30_days_is_blocked(con):
    build(con)
    decision = firewall.check_campaign(con, campaign(sender_id="S005"))
    assert decision.decision == "blocked" and not decision.allowed
    assert {b.reasons[0] for b in decision.blocked} == {"sender_in_onboarding"}
    assert decision.onboarding_until == date(2026, 11, 19)
    # After 30 days the same sender may send.
    later = firewall.check_campaign(
        con, campaign(sender_id="S005", planned_at=datetime(2026, 11, 19, 9))
    )
    assert later.allowed and later.onboarding_until is None
    assert {b.reasons for b in later.blocked} == {("no_consent",)}


def test_malformed_campaigns_get_clear_errors(con, tmp_path):
    build(con)
    with pytest.raises(CampaignError, match="unknown target segments nonesuch"):
        firewall.check_campaign(con, campaign(target_segments=("nonesuch",)))
    with pytest.raises(CampaignError, match="unknown channel 'pigeon'"):
        firewall.check_campaign(con, campaign(channel="pigeon"))
    with pytest.raises(CampaignError, match="sender 'S404' is not a known team member"):
        firewall.check_campaign(con, campaign(sender_id="S404"))
    with pytest.raises(CampaignError, match="no membership published before 2026-09-01"):
        firewall.check_campaign(con, campaign(planned_at=datetime(2026, 9, 1)))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nsender: S001\nchannel: email\nplanned_at: someday\ntarget_segments: [a]\n"
    )
    with pytest.raises(CampaignError, match="planned_at 'someday' is not a date"):
        firewall.load_campaign(bad)
    bad.write_text("name: x\nsender: S001\nchannel: email\nplanned_at: 2026-11-10\n")
    with pytest.raises(CampaignError, match="give target_segments, customers, or both"):
        firewall.load_campaign(bad)
    bad.write_text("name: x\nsender: S001\nchannel: email\nplanned_at: 2026-11-10\nforce: true\n")
    with pytest.raises(CampaignError, match="unknown fields force"):
        firewall.load_campaign(bad)


@pytest.mark.slow
def test_an_override_is_refused_and_recorded_with_who_when_why(con):
    build(con)
    at = datetime(2026, 11, 6, 14, 30)
    answer = firewall.request_override(
        con,
        campaign(target_segments=("evaluation",)),
        requested_by="marketing-lead",
        reason="Festive target is behind; send this once",
        requested_at=at,
    )
    assert answer.refused and answer.segments == ("evaluation",)
    assert "They're currently in Evaluation." in answer.message
    assert "increases hesitation" in answer.message  # the risk, from governance.yaml
    assert "review the logic, not bypass it" in answer.message  # the protocol
    rows = (
        copied(con)
        .execute(
            "select kind, requested_by, requested_at, reason, segment_ids, decision, team "
            "from ops.exception_requests"
        )
        .fetchall()
    )
    assert rows == [
        (
            "override",
            "marketing-lead",
            at,
            "Festive target is behind; send this once",
            "evaluation",
            "refused",
            "crm",
        )
    ]
    flags = measure(con, NOVEMBER)
    assert flags.values["manual_override_attempts"] == 1


@pytest.mark.slow
def test_planted_violations_in_a_generated_send_log_give_the_exact_counts(con):
    truth = build(con)
    flags = measure(con, OCTOBER)
    assert flags.values["pause_violation_count"] == truth["pause"] == 4
    assert flags.values["onboarding_violations"] == truth["onboarding"] == 30
    names = con.execute(
        "select distinct campaign_id, sender_id from governance.pause_violations order by 1"
    ).fetchall()
    assert names == [("CMP001", "S002"), ("CMP003", "S001")]
    unsafe = con.execute(
        "select campaign_id, reasons from governance.unsafe_attempts where month_end = ?",
        [OCTOBER],
    ).fetchall()
    assert unsafe == [("CMP004", "sender_in_onboarding")]
    # Re-running the month gives the same rows, not more.
    measure(con, OCTOBER)
    assert con.execute("select count(*) from governance.pause_violations").fetchone()[0] == 4
    # September has no published month before it: not evaluated, never a silent zero.
    assert measure(con, SEPTEMBER).values["pause_violation_count"] is None
    # The metrics only: the lift models need the staged orders, which this warehouse lacks.
    build_analysis(con, OCTOBER, select=f"{GOVERNANCE} {HEALTH_METRICS}")
    metrics = {m.segment_id: m.value for m in red_flags.health_metrics(con, OCTOBER)}
    assert set(metrics) == PAUSED and sum(metrics.values()) == 4


def test_pressure_patterns_group_attempts_by_team_channel_segment_and_week(con):
    build(con)
    for i, (sender, by) in enumerate([("S001", "asha"), ("S002", "ben"), ("S001", "asha")]):
        firewall.request_override(
            con,
            campaign(sender_id=sender, name=f"Push {i}", target_segments=("evaluation",)),
            requested_by=by,
            reason="quarter end",
            requested_at=datetime(2026, 11, 3 + 7 * i),
        )
    measure(con, NOVEMBER)
    rows = dict(
        con.execute(
            "select dimension || ':' || key, attempts from governance.pressure_patterns "
            "where month_end = ?",
            [NOVEMBER],
        ).fetchall()
    )
    # Each override also recorded a blocked firewall check: two attempts per request.
    assert rows["team:crm"] == 4 and rows["team:ecommerce"] == 2
    assert rows["segment:evaluation"] == 6
    assert rows["channel:email"] == 6
    assert sum(v for k, v in rows.items() if k.startswith("week:")) == 6


@pytest.mark.parametrize(
    "text, phrase",
    [
        ("Our warm leads deserve a nudge", "warm lead"),
        ("Top HOT PROSPECTS this week", "hot prospect"),
        ("Re-engagement series, part 2", "re-engagement"),
        ("Let's reengage lapsed buyers", "re-engagement"),
        ("Time to wake them up with a sale", "wake them up"),
        ("Push them towards the festive range", "push them"),
    ],
)
def test_the_language_lint_catches_each_retired_phrase(text, phrase):
    findings = governance.lint_text(text, source="campaign", object_id="c", field="copy")
    assert [f.phrase for f in findings] == [phrase]
    assert findings[0].suggest in governance.default_config().promoted


def test_the_language_lint_passes_clean_copy_and_the_shipped_dictionary():
    from segment_cadence.defs.dictionary import segment_dictionary

    clean = (
        "A quiet note for customers in their current segment: new pieces are in store, "
        "visit when you are ready. Pause respected; readiness observed."
    )
    assert governance.lint_text(clean, source="campaign", object_id="c", field="copy") == []
    assert governance.lint_segments(list(segment_dictionary.load().segments)) == []


def test_governance_settings_are_validated_with_clear_errors():
    with pytest.raises(governance.GovernanceConfigError, match="unknown sections: firewal"):
        governance.validate({"firewal": {}})
    with pytest.raises(
        governance.GovernanceConfigError, match=r"retired\[0\].pattern is not a valid regular"
    ):
        governance.validate(
            {
                "firewall": {"channels": {"email": None}},
                "language": {"retired": [{"phrase": "x", "pattern": "(", "suggest": "y"}]},
            }
        )
    with pytest.raises(governance.GovernanceConfigError, match="does not match its own phrase"):
        governance.validate(
            {
                "firewall": {"channels": {"email": None}},
                "language": {"retired": [{"phrase": "x", "pattern": "y", "suggest": "z"}]},
            }
        )


@pytest.mark.slow
def test_the_audit_trail_answers_for_one_customer_across_months(con):
    truth = build(con)
    for month in (SEPTEMBER, OCTOBER):
        record_segment_changes(con, month, recorded_at=datetime(2026, 11, 2))
    again = record_segment_changes(con, OCTOBER)
    assert again == 0  # append-only, never twice
    customer = next(
        c
        for c in truth["membership"][OCTOBER]
        if truth["membership"][OCTOBER][c] != truth["membership"][SEPTEMBER][c]
    )
    audit.record_dispute(
        con,
        customer,
        raised_by="customer-care",
        reason="asked why no offers",
        decision="rejected",
        decided_by="segmentation-owner",
        raised_at=datetime(2026, 11, 7),
    )
    record = audit.customer_record(con, customer)
    assert [(m, s) for m, s, _, _ in record.months] == [
        (SEPTEMBER, truth["membership"][SEPTEMBER][customer]),
        (OCTOBER, truth["membership"][OCTOBER][customer]),
    ]
    assert [(m, f, t) for m, f, t, _, _ in record.changes] == [
        (SEPTEMBER, None, truth["membership"][SEPTEMBER][customer]),
        (OCTOBER, truth["membership"][SEPTEMBER][customer], truth["membership"][OCTOBER][customer]),
    ]
    assert record.requests[0][1:] == (
        "dispute",
        "customer-care",
        "asked why no offers",
        "rejected",
        "segmentation-owner",
    )
    text = "\n".join(record.lines())
    assert "dispute by customer-care" in text and "version v1hash" in text


@pytest.mark.slow
def test_the_bias_audit_flags_a_planted_disparity(con):
    build(con, customers=1200)
    flagged = measure_bias(con, OCTOBER)
    assert flagged == 0  # random assignment: no group is over- or under-represented 2x
    # Plant: everyone in the west region goes to prospects.
    con.execute(
        "update published.segment_membership set segment_id = 'prospects' where month_end = ? "
        "and customer_id in (select customer_id from raw.customers where region = 'west')",
        [OCTOBER],
    )
    assert measure_bias(con, OCTOBER) > 0
    rows = con.execute(
        "select attribute, group_value, segment_id from governance.bias_audit "
        "where month_end = ? and flagged and disparity_ratio > 1",
        [OCTOBER],
    ).fetchall()
    assert rows == [("region", "west", "prospects")]
    # Re-running replaces the month.
    measure_bias(con, OCTOBER)
    total = con.execute("select count(*) from governance.bias_audit").fetchone()[0]
    assert total == (4 + 3 + 2) * len(SEGMENTS)


def test_the_commands_check_refuse_audit_and_lint(tmp_path, monkeypatch, capsys):
    from segment_cadence.cli import main

    db = tmp_path / "cli.duckdb"
    connection = duckdb.connect(str(db))
    warehouse.ensure_schema(connection)
    truth = build(connection)
    connection.close()
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(db))
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "name: Wake them up\nsender: S002\nchannel: email\nplanned_at: 2026-11-12T10:00\n"
        "target_segments: [evaluation, loyal_repeat]\n"
    )
    allowed = tmp_path / "allowed.csv"
    assert main(["campaign", "check", str(plan), "--allowed-out", str(allowed)]) == 3
    out = capsys.readouterr().out
    assert "paused segment Evaluation (evaluation)" in out and "recorded as a segment-unsafe" in out
    assert allowed.read_text().startswith("customer_id\n")
    assert main(["campaign", "override", str(plan), "--by", "ben", "--reason", "target"]) == 4
    assert "They're currently in Evaluation." in capsys.readouterr().out
    customer = truth["in_pause"][0]
    assert main(["audit", "customer", customer]) == 0
    assert f"customer {customer}" in capsys.readouterr().out
    assert main(["lint", str(plan)]) == 1
    assert "say 'pause respected' instead" in capsys.readouterr().out
    plan.write_text(
        "name: x\nsender: S002\nchannel: fax\nplanned_at: 2026-11-12\ncustomers: [C1]\n"
    )
    assert main(["campaign", "check", str(plan)]) == 1
    assert "unknown channel 'fax'" in capsys.readouterr().err
