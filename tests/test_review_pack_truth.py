"""The review pack tells the truth about the month, on a tiny warehouse built by hand.

Each test builds only the tables it needs (a section whose source is absent says "No data")
and a fresh state store (the `state_url` fixture), gathers December 2025's pack and reads
what it says: the alerts that fired and those carried over, how much history a judgement
stands on, every red flag beside last month's, firewall reasons in words, shares as
percentages and money in the configured currency, the breaches and the month's decisions.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime

import duckdb
import pytest
from sqlalchemy import insert

from segment_cadence.defs.governance import firewall
from segment_cadence.defs.health import thresholds
from segment_cadence.defs.review import presentation, review_pack
from segment_cadence.platform import state_store, warehouse
from segment_cadence.platform.months import previous_month_end

DEC, NOV, OCT = date(2025, 12, 31), date(2025, 11, 30), date(2025, 10, 31)
# December's breaches are processed on the first of January, in the run that makes its pack.
PROCESSED_DEC = datetime(2026, 1, 1, 6, 0)
PROCESSED_NOV = datetime(2025, 12, 1, 6, 0)
NOW = datetime(2026, 1, 1, 7, 0)
CONFIG = thresholds.load()


def gather(con: duckdb.DuckDBPyConnection, **settings: object) -> review_pack.Pack:
    config = dataclasses.replace(CONFIG, settings={**CONFIG.settings, **settings})
    return review_pack.gather(con, DEC, now=NOW, config=config)


def ops_table(con: duckdb.DuckDBPyConnection, table, records: list[dict]) -> None:
    """An ops.* copy as state_store.copy_records makes it: the store's columns and types."""
    full = [{c.name: r.get(c.name) for c in table.columns} for r in records]
    warehouse.replace_table(con, "ops", table.name, state_store.arrow_table(table, full))


def health_metrics(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    con.execute("create schema if not exists health")
    con.execute(
        "create table if not exists health.metrics (month_end date, segment_id varchar, "
        "metric varchar, value double, definition_version varchar)"
    )
    for row in rows:
        con.execute("insert into health.metrics values (?, ?, ?, ?, 'v')", list(row))


def store(table, rows: list[dict]) -> None:
    """Rows into a state-store table, the columns not given left empty."""
    with state_store.transaction() as state:
        state.execute(insert(table), [{c.name: r.get(c.name) for c in table.columns} for r in rows])


def alert(key: str, **values: object) -> dict:
    rule, segment, metric, version = key.split("|")
    return {
        "alert_key": key,
        "rule_id": rule,
        "segment_id": segment,
        "metric": metric,
        "definition_version": version,
        "consecutive": 1,
        "clean_streak": 0,
        **values,
    }


def section_markdown(pack: review_pack.Pack, title: str) -> str:
    return review_pack.render_markdown(pack).split(f"## {title}")[1].split("\n## ")[0]


# -- defect 1: the alerts that fired in the month, and those carried over --------------------


@pytest.fixture()
def alert_history(state_url: str) -> None:
    """November processed on 1 December, December on 1 January. Three alerts fired in
    December: two when November was processed (one acknowledged), one first breached in
    December. Two fired in November and are still open; one resolved in November."""
    store(
        state_store.processed_months,
        [
            {"month_end": NOV, "processed_at": PROCESSED_NOV},
            {"month_end": DEC, "processed_at": PROCESSED_DEC},
        ],
    )
    store(
        state_store.alerts,
        [
            alert(
                "pause_violations|evaluation|pause_violations|v",
                state="acknowledged",
                severity="critical",
                level=2,
                first_breach_month=NOV,
                last_breach_month=DEC,
                fired_at=PROCESSED_NOV,
                acknowledged_by="asha",
                acknowledged_at=datetime(2025, 12, 1, 9, 0),
            ),
            alert(
                "segment_size_change|vip|size|v",
                state="firing",
                severity="critical",
                level=2,
                consecutive=2,
                first_breach_month=NOV,
                last_breach_month=DEC,
                fired_at=PROCESSED_DEC,
            ),
            alert(
                "churn_rising|lapsing|churn_likelihood|v",
                state="firing",
                severity="warn",
                level=1,
                first_breach_month=DEC,
                last_breach_month=DEC,
                fired_at=PROCESSED_DEC,
            ),
            *(
                alert(
                    f"migration_out|{segment}|migration_out_rate|v",
                    state="firing",
                    severity="warn",
                    level=1,
                    first_breach_month=OCT,
                    last_breach_month=DEC,
                    fired_at=datetime(2025, 11, 1, 6, 0),
                )
                for segment in ("evaluation", "loyal_repeat")
            ),
            alert(
                "inputs_stale|*|freshness_days|v",
                state="resolved",
                severity="warn",
                level=1,
                first_breach_month=OCT,
                last_breach_month=OCT,
                fired_at=datetime(2025, 11, 1, 6, 0),
                resolved_at=datetime(2025, 11, 30, 6, 0),
            ),
        ],
    )
    store(
        state_store.silences,
        [
            {
                "silence_id": "s-festive",
                "segment_id": "vip",
                "rule_id": "*",
                "created_by": "asha",
                "reason": "Festive window",
                "created_at": datetime(2025, 12, 10, 12, 0),
                "expires_at": datetime(2026, 2, 1),
            },
            {
                "silence_id": "s-old",
                "segment_id": "evaluation",
                "rule_id": "*",
                "created_by": "ben",
                "reason": "Migration",
                "created_at": datetime(2025, 10, 2),
                "expires_at": datetime(2025, 11, 1),
            },
        ],
    )


def test_the_alerts_section_counts_what_fired_in_the_month_not_only_first_breaches(
    alert_history: None,
):
    """Regression: "0 alerts raised; 0 silences" while alerts were firing, because only
    alerts whose first breach was in the month counted."""
    section = gather(duckdb.connect()).section("alerts")
    assert section.no_data is None
    assert section.figures["alerts_fired"] == 3
    assert section.figures["fired_by_severity"] == {"critical": 2, "warn": 1}
    assert section.figures["fired_by_level"] == {1: 1, 2: 2}
    assert section.figures["acknowledged"] == 1
    assert section.figures["median_hours_to_acknowledge"] == 3.0
    assert section.figures["alerts_carried_over"] == 2
    assert section.figures["silences_in_force"] == 1
    assert section.figures["silences_created"] == 1
    assert section.notes[0].startswith(
        "3 alerts fired this month (2 critical, 1 warn; 2 at level 2, 1 at level 1); "
        "1 acknowledged (median 3.0 h)"
    )
    fired = {row[0]: row for row in section.tables[0].rows}
    assert fired["segment_size_change|vip|size|v"][1:3] == ("critical", 2)  # severity, level


def test_alerts_still_open_from_earlier_months_are_carried_over(alert_history: None):
    pack = gather(duckdb.connect())
    section = pack.section("alerts_carried_over")
    assert section.figures["alerts_carried_over"] == 2
    assert section.figures["carried_by_severity"] == {"warn": 2}
    assert [row[0] for row in section.tables[0].rows] == [
        "migration_out|evaluation|migration_out_rate|v",
        "migration_out|loyal_repeat|migration_out_rate|v",
    ]
    assert "oldest first breached in October 2025" in section.notes[0]
    assert "| 2025-10 | 2025-12 |" in section_markdown(pack, section.title)


def test_the_months_acknowledgements_silences_and_escalations_are_decisions(
    alert_history: None,
):
    store(
        state_store.outbox,
        [
            {
                "message_id": "escalation:vip:None:7",
                "created_at": PROCESSED_DEC,
                "kind": "escalation",
                "segment_id": "vip",
                "channel": "#segment-oncall",
                "alert_keys": json.dumps(["segment_size_change|vip|size|v"]),
                "status": "local",
                "sequence": 7,
            }
        ],
    )
    store(
        state_store.strategic_requests,
        [
            {
                "request_id": "strategic-1",
                "quarter": "2025-10-01",
                "alert_keys": json.dumps(["migration_out|evaluation|migration_out_rate|v"]),
                "message_id": "[]",
                "requested_at": datetime(2025, 12, 15, 8, 0),
            }
        ],
    )
    con = duckdb.connect()
    ops_table(
        con,
        state_store.changelog,
        [
            {
                "entry_id": "version:2",
                "recorded_at": datetime(2025, 12, 5, 10, 0),
                "kind": "approval",
                "version_label": "v2",
                "summary": "v2 approved by revops-lead on 2025-12-05 (asked by asha): Looser.\n- x",
            },
            {
                "entry_id": "published:2025-12",
                "recorded_at": datetime(2025, 12, 5, 11, 0),
                "kind": "publication",
                "summary": "Published",
            },
        ],
    )
    ops_table(
        con,
        state_store.exception_requests,
        [
            {
                "request_id": "r1",
                "requested_at": datetime(2025, 12, 20, 9, 0),
                "kind": "override",
                "requested_by": "carol",
                "reason": "Send this once",
                "decision": "refused",
                "decided_by": "campaign firewall",
            }
        ],
    )
    section = gather(con).section("decisions")
    assert section.figures["decisions_by_kind"] == {
        "acknowledged": 1,
        "definition approved": 1,
        "escalated to level 2": 1,
        "override refused": 1,
        "silenced": 1,
        "strategic refresh requested": 1,
    }
    who = {row[1]: row[2] for row in section.tables[0].rows}
    assert who["acknowledged"] == "asha" and who["silenced"] == "asha"
    assert who["definition approved"] == "revops-lead"
    assert who["override refused"] == "campaign firewall"
    silenced = next(row for row in section.tables[0].rows if row[1] == "silenced")
    assert silenced[3].endswith("Festive window")


# -- defect 2: how much history a judgement stands on ----------------------------------------


def dwell_history(con: duckdb.DuckDBPyConnection, earlier_months: int) -> None:
    ends = [NOV]
    while len(ends) < earlier_months:
        ends.append(previous_month_end(ends[-1]))
    rows = [(e, s, "dwell_months", 3.0 + i % 2) for e in ends for i, s in enumerate(("a", "b"))]
    health_metrics(con, [*rows, (DEC, "a", "dwell_months", 3.1), (DEC, "b", "dwell_months", 4.0)])
    ops_table(con, state_store.breaches, [])


def test_a_dwell_judgement_without_enough_history_says_not_judged_with_the_months_it_has():
    """Regression: a "12-month median" built from 3 months, and "in line with history" when
    there was not enough of it to judge."""
    con = duckdb.connect()
    dwell_history(con, 3)
    pack = gather(con)
    section = pack.section("dwell_anomalies")
    assert section.figures["history_needed"] == 6  # defaults.min_history, as health uses it
    assert section.figures["history_months"] == {"a": 3, "b": 3}
    assert section.figures["segments_judged"] == 0
    assert section.notes[0].startswith("Not judged: 3 of 6 months of history.")
    table = section.tables[0]
    assert table.header[2] == "median of 3 months"
    assert [row[3:] for row in table.rows] == [
        ("3 of 6 months", "not judged: 3 of 6 months of history"),
    ] * 2
    assert "in line with history" not in review_pack.render_markdown(pack)


def test_a_dwell_judgement_with_enough_history_names_the_months_it_used():
    con = duckdb.connect()
    dwell_history(con, 6)
    section = gather(con).section("dwell_anomalies")
    assert section.figures["segments_judged"] == 2
    assert section.notes == [
        "No dwell anomalies: time in segment is in line with history (median of 6 months)."
    ]
    assert section.tables[0].rows[0][2] == 3.0  # the median of the six earlier months


def test_the_history_needed_is_the_rules_own_min_history_or_the_default():
    document = {
        "defaults": {"min_history": 6},
        "rules": [{"id": "d", "metric": "dwell_months", "robust_z": {"warn": 4}, "min_history": 9}],
    }
    assert review_pack.history_needed(thresholds.validate(document, "t.yaml"), "dwell_months") == 9
    assert review_pack.history_needed(CONFIG, "dwell_months") == 6
    assert review_pack.history_needed(CONFIG, "share_shift") is None  # no robust z


# -- defect 3: every red flag in the headline, beside last month's ---------------------------


def red_flags(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    con.execute("create schema if not exists governance")
    con.execute(
        "create table governance.red_flags (month_end date, metric varchar, value bigint, "
        "evaluated boolean, detail varchar)"
    )
    for month, metric, value in rows:
        con.execute(
            "insert into governance.red_flags values (?, ?, ?, ?, null)",
            [month, metric, value, value is not None],
        )


def test_the_headline_shows_every_red_flag_with_last_months_value():
    """Regression: the onboarding violations (686) were missing from the headline cards."""
    con = duckdb.connect()
    red_flags(
        con,
        [
            (DEC, "pause_violation_count", 53),
            (NOV, "pause_violation_count", 41),
            (DEC, "onboarding_violations", 686),
            (DEC, "suppressed_campaign_volume", 412),
            (NOV, "suppressed_campaign_volume", 0),
            (DEC, "suppressed_campaigns", 1),
            (DEC, "manual_override_attempts", 2),
            (DEC, "exception_requests", 3),
            (DEC, "segment_unsafe_attempts", 4),
            (NOV, "segment_unsafe_attempts", None),  # not evaluated
            (DEC, "sends_after_unsubscribe", 7),  # a red flag the model adds later
        ],
    )
    pack = gather(con)
    headline = {h.label: (h.value, h.last_month) for h in pack.headline()}
    assert headline["pause violations"] == (53, 41)
    assert headline["onboarding violations"] == (686, None)
    assert headline["suppressed messages"] == (412, 0)
    assert headline["campaigns blocked outright"] == (1, None)
    assert headline["override attempts"] == (2, None)
    assert headline["exception requests"] == (3, None)
    assert headline["segment-unsafe attempts"] == (4, "not evaluated")
    assert headline["sends after unsubscribe"] == (7, None)
    assert "| onboarding violations | 686 | n/a |" in review_pack.render_markdown(pack)
    assert "onboarding violations 686 (last month n/a)" in review_pack.slack_summary(pack)
    html = review_pack.render_html(pack)
    assert "<b>686</b>onboarding violations<small>last month n/a</small>" in html


def test_an_empty_warehouse_still_lists_the_red_flags_as_no_data():
    headline = gather(duckdb.connect()).headline()
    assert [h.label for h in headline][:2] == ["pause violations", "onboarding violations"]
    assert all(h.value is None for h in headline)


# -- defect 4: firewall reasons in words -----------------------------------------------------


def test_firewall_reasons_are_written_in_words_not_as_json():
    """Regression: the reasons column showed ops.firewall_checks.reason_counts as raw JSON."""
    con = duckdb.connect()
    red_flags(con, [(DEC, "suppressed_campaign_volume", 415), (DEC, "suppressed_campaigns", 0)])
    ops_table(
        con,
        state_store.firewall_checks,
        [
            {
                "check_id": "c1",
                "campaign_name": "New year edit",
                "sender_id": "S001",
                "channel": "email",
                "planned_at": datetime(2025, 12, 8, 10, 0),
                "allowed": 900,
                "blocked": 415,
                "decision": "partially_blocked",
                "reason_counts": json.dumps({"paused_segment": 412, "no_consent": 3}),
                "blocked_segments": "evaluation",
            }
        ],
    )
    pack = gather(con)
    section = pack.section("suppressed_volume")
    assert section.tables[0].rows[0][-1] == "412 in a paused segment (evaluation), 3 opted out"
    assert section.figures["blocked_by_reason"] == {"no_consent": 3, "paused_segment": 412}
    assert '{"' not in review_pack.render_markdown(pack)


def test_every_reason_code_has_words_in_one_place():
    assert set(firewall.REASON_WORDS) == set(firewall.REASONS)
    assert firewall.reasons_in_words({}) == "none blocked"
    assert firewall.reasons_in_words({"no_consent": 1, "sender_in_onboarding": 1200}) == (
        "1,200 because the sender is in onboarding, 1 opted out"
    )


# -- defect 5: percentages and money ---------------------------------------------------------


def kpis(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists published")
    con.execute(
        "create table published.segment_kpis (month_end date, segment_id varchar, customers "
        "bigint, retention_rate double, avg_churn_likelihood double, campaign_response_rate "
        "double, revenue_this_month double)"
    )
    con.execute(
        "insert into published.segment_kpis values "
        "(?, 'loyal_repeat', 120, 0.413, 0.2, 0.05, 12340.4), "
        "(?, 'loyal_repeat', 118, 0.4, 0.25, 0.064, 9000)",
        [DEC, NOV],
    )


def test_kpi_shares_are_percentages_and_revenue_is_in_the_configured_currency():
    """Regression: shares shown as decimals (0.413) and revenue without a currency."""
    con = duckdb.connect()
    kpis(con)
    pack = gather(con, currency="GBP")
    section = pack.section("kpi_trends")
    assert section.figures["retention_rate"] == {"loyal_repeat": 0.413}  # raw, as the table
    assert section.figures["revenue_this_month"] == {"loyal_repeat": 12340.4}
    row = section_markdown(pack, section.title).split("| loyal_repeat |")[1]
    assert row.startswith(" 41.3% | 40.0% | 20.0% | 25.0% | 5.0% | 6.4% | £12,340 |")
    assert "0.413" not in review_pack.render_html(pack)
    swiss = gather(con, currency="CHF")
    assert "CHF 12,340" in section_markdown(swiss, section.title)


@pytest.mark.parametrize(
    ("currency", "written"),
    [
        ("GBP", "£12,340"),
        ("EUR", "€12,340"),
        ("usd", "$12,340"),
        ("CHF", "CHF 12,340"),
        (None, "12,340"),
    ],
)
def test_money_is_written_with_the_currencys_symbol_or_code(currency, written):
    assert presentation.money(12340.0, currency) == written
    assert presentation.money(-5.0, "GBP") == "-£5"


def test_the_currency_is_presentation_and_changes_no_definition_version():
    document = thresholds.read_document()
    assert document["settings"]["currency"] == "GBP"
    euros = {**document, "settings": {**document["settings"], "currency": "EUR"}}
    assert thresholds.governed_digest(euros) == thresholds.governed_digest(document)


# -- defect 6: the month's health breaches ---------------------------------------------------


def test_the_months_health_breaches_are_listed_with_rule_value_bound_and_severity():
    con = duckdb.connect()
    health_metrics(con, [(DEC, "vip", "size", 140.0)])
    breach = {
        "month_end": DEC,
        "rule_id": "segment_size_change",
        "segment_id": "vip",
        "metric": "size",
        "value": 140.0,
        "baseline": 100.0,
        "bound": 0.25,
        "kind": "relative",
        "severity": "warn",
    }
    ops_table(
        con,
        state_store.breaches,
        [
            breach,
            {
                **breach,
                "rule_id": "pause_violations",
                "metric": "pause_violations",
                "value": 53.0,
                "bound": 0.0,
                "kind": "absolute",
                "severity": "critical",
                "segment_id": "evaluation",
            },
            {**breach, "month_end": NOV},
        ],
    )
    section = gather(con).section("health_breaches")
    assert section.figures["health_breaches"] == 2
    assert section.figures["breaches_by_severity"] == {"critical": 1, "warn": 1}
    assert section.notes == ["2 breaches (1 critical, 1 warn)."]
    assert section.tables[0].rows[0] == (
        "evaluation",
        "pause_violations",
        "pause_violations",
        "53",
        "bound: at most 0",
        "critical",
    )
