"""The monthly refresh end to end: real dbt on a real DuckDB file, real Dagster runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.storage.asset_check_execution_record import (
    COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES,
)
from sqlalchemy import text

from segment_cadence.defs.dictionary import versions
from segment_cadence.platform import paths, state_store, warehouse
from tests.marks import slow_fixture

MONTHS = ["2025-10-01", "2025-11-01", "2025-12-01"]
DECEMBER = date(2025, 12, 31)


@pytest.fixture(scope="module")
@slow_fixture
def pipeline(state_home: Path, generated_data: Path):
    """Definitions bound to the test's private warehouse and state store, and the months
    refreshed once. The state store is the module's own: the session's holds what other
    modules on this worker recorded (their firewall checks would be copied into ops.*)."""
    from segment_cadence.definitions import build_definitions
    from segment_cadence.platform.resources import WarehouseResource, default_resources

    resources = {
        **default_resources(),
        "warehouse": WarehouseResource(path=str(state_home / "warehouse.duckdb")),
    }
    campaigns = state_home / "campaigns"  # the planning calendar the refresh checks
    campaigns.mkdir(exist_ok=True)
    (campaigns / "new-year.yaml").write_text(
        "name: New year edit\nsender: S001\nchannel: email\nplanned_at: 2026-01-08T10:00\n"
        "target_segments: [loyal_repeat, evaluation]\ncopy: Push them to buy before stock runs out\n"
    )
    session_campaigns = os.environ.get("SEGMENT_CADENCE_CAMPAIGNS")
    os.environ["SEGMENT_CADENCE_CAMPAIGNS"] = str(campaigns)
    session_store = os.environ.get("SEGMENT_CADENCE_STATE_URL")
    os.environ["SEGMENT_CADENCE_STATE_URL"] = f"sqlite:///{state_home / 'pipeline-state.sqlite'}"
    defs = build_definitions(resources)
    job = defs.resolve_job_def("monthly_refresh")
    instance = dg.DagsterInstance.ephemeral()
    for month in MONTHS:
        result = job.execute_in_process(
            partition_key=month, instance=instance, raise_on_error=False
        )
        assert result.success, f"refresh of {month} failed"
    yield defs, job, instance, state_home / "warehouse.duckdb"
    # The next module on this worker (and the commands it starts) must not inherit them.
    for name, value in (
        ("SEGMENT_CADENCE_STATE_URL", session_store),
        ("SEGMENT_CADENCE_CAMPAIGNS", session_campaigns),
    ):
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with warehouse.connect(path, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def stored(sql: str, params: dict | None = None, url: str | None = None) -> list[tuple]:
    """Rows from the operational state store (alerts, outbox, review packs)."""
    with state_store.transaction(url) as state:
        return [tuple(r) for r in state.execute(text(sql), params or {})]


@pytest.fixture()
def private_ledger(tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the approval ledger and of the dictionary and thresholds in force."""
    shutil.copy(paths.CONFIG_DIR / "approvals.yaml", tmp_path / "approvals.yaml")
    shutil.copytree(paths.CONFIG_DIR / "versions", tmp_path / "versions")
    shutil.copy(paths.SEGMENTS_FILE, tmp_path / "segments.yaml")
    shutil.copy(paths.THRESHOLDS_FILE, tmp_path / "thresholds.yaml")
    monkeypatch.setenv("SEGMENT_CADENCE_APPROVALS", str(tmp_path / "approvals.yaml"))
    monkeypatch.setenv("SEGMENT_CADENCE_SEGMENTS", str(tmp_path / "segments.yaml"))
    monkeypatch.setenv("SEGMENT_CADENCE_THRESHOLDS", str(tmp_path / "thresholds.yaml"))
    return tmp_path / "segments.yaml"


def set_rule(dictionary: Path, segment_id: str, rule: str) -> None:
    document = yaml.safe_load(dictionary.read_text())
    next(s for s in document["segments"] if s["id"] == segment_id)["rule"] = rule
    dictionary.write_text(yaml.safe_dump(document, sort_keys=False))


def refresh(job, instance, month: str = MONTHS[-1]):
    return job.execute_in_process(partition_key=month, instance=instance, raise_on_error=False)


def changelog() -> list[tuple]:
    """The changelog's entries (in the state store, beside the other governance records)."""
    return stored("select entry_id, summary from changelog order by entry_id")


def snapshot(path: Path, month_end: date) -> dict[str, list[tuple]]:
    return {
        table: query(
            path, f"select * from published.{table} where month_end = ? order by all", [month_end]
        )
        for table in ("segment_membership", "segment_transitions", "segment_kpis")
    }


def test_every_customer_lands_in_exactly_one_segment_each_month(pipeline):
    *_, db = pipeline
    rows = query(
        db,
        """
        select m.month_end, count(*), count(distinct m.customer_id),
               (select count(*) from raw.customers c where c.signup_date <= m.month_end)
        from published.segment_membership m group by 1 order by 1
    """,
    )
    assert [r[0] for r in rows] == [date(2025, 10, 31), date(2025, 11, 30), DECEMBER]
    for _, placed, distinct, population in rows:
        assert placed == distinct == population


def test_transitions_and_dwell_continue_from_the_previous_published_month(pipeline):
    *_, db = pipeline
    moved, total = query(
        db,
        "select sum(customers) filter (where from_segment_id <> '(new)'), "
        "sum(customers) from published.segment_transitions "
        "where month_end = ?",
        [DECEMBER],
    )[0]
    november = query(
        db,
        "select count(*) from published.segment_membership where month_end = ?",
        [date(2025, 11, 30)],
    )[0][0]
    assert moved == november
    assert (
        total
        == query(
            db, "select count(*) from published.segment_membership where month_end = ?", [DECEMBER]
        )[0][0]
    )
    dwell = query(
        db,
        "select max(months_in_segment) from published.segment_membership where month_end = ?",
        [DECEMBER],
    )[0][0]
    assert dwell == 3


def test_kpis_cover_every_active_segment_and_add_up(pipeline):
    *_, db = pipeline
    rows = query(
        db,
        "select segment_id, customers, share, paused from published.segment_kpis "
        "where month_end = ?",
        [DECEMBER],
    )
    assert len(rows) == 10
    assert (
        sum(r[1] for r in rows)
        == query(
            db, "select count(*) from published.segment_membership where month_end = ?", [DECEMBER]
        )[0][0]
    )
    assert sum(r[2] for r in rows) == pytest.approx(1.0)
    assert {r[0] for r in rows if r[3]} == {"post_purchase_cooldown", "evaluation"}


def test_membership_is_exported_as_parquet(pipeline):
    *_, db = pipeline
    export = query(
        db, "select export_path from published.publications where month_end = ?", [DECEMBER]
    )[0][0]
    assert Path(export).exists()
    assert query(db, f"select count(*) from '{export}'")[0][0] > 0


def test_rerunning_a_month_gives_identical_results_without_duplicates(pipeline):
    _, job, instance, db = pipeline
    before = snapshot(db, DECEMBER)
    assert job.execute_in_process(partition_key=MONTHS[-1], instance=instance).success
    assert snapshot(db, DECEMBER) == before
    assert (
        query(db, "select count(*) from published.publications where month_end = ?", [DECEMBER])[0][
            0
        ]
        == 1
    )


ANALYSIS_TABLES = (
    "governance.red_flags",
    "governance.pause_violations",
    "governance.onboarding_violations",
    "governance.unsafe_attempts",
    "governance.pressure_patterns",
    "governance.bias_audit",
    "governance.segment_audit_log",
    "health.metrics",
)


def analysis_rows(path: Path) -> dict[str, dict[date, list[tuple]]]:
    """Every row of the analysis tables (dbt models kept per month), by table and month."""
    rows: dict[str, dict[date, list[tuple]]] = {}
    for table in ANALYSIS_TABLES:
        for row in query(path, f"select * from {table} order by all"):
            month = next(v for v in row if isinstance(v, date))  # month_end, the first date
            rows.setdefault(table, {}).setdefault(month, []).append(row)
    return rows


def test_rerunning_a_month_replaces_its_analysis_rows_and_keeps_earlier_months(pipeline):
    """Red flags, the audit trail, the bias audit and health metrics are replaced by month:
    re-running December gives the same rows, and October's and November's are kept."""
    _, job, instance, db = pipeline
    before = analysis_rows(db)
    assert set(before["health.metrics"]) == {date(2025, 10, 31), date(2025, 11, 30), DECEMBER}
    assert set(before["governance.red_flags"]) == set(before["health.metrics"])
    assert refresh(job, instance).success
    assert analysis_rows(db) == before


def test_the_drift_metrics_in_sql_are_the_numpy_reference(pipeline):
    """PSI and the earth mover's distance of the health metrics model (SQL) agree with the
    numpy reference implementations (segment_cadence/defs/health/health.py)."""
    import numpy as np

    from segment_cadence.defs.health import health

    _, _, _, db = pipeline
    stored = dict(
        query(
            db,
            "select metric, value from health.metrics where month_end = ? and segment_id = '*'",
            [DECEMBER],
        )
    )

    def sample(feature: str, month: date) -> np.ndarray:
        # A missing value counts as 0, as the model reads it (health_metrics.sql).
        sql = f"select coalesce({feature}::double, 0) from published.customer_features "
        rows = query(db, sql + "where month_end = ?", [month])
        return np.asarray([v for (v,) in rows], dtype=float)

    for feature in health.DRIFT_FEATURES:
        samples = [sample(feature, month) for month in (date(2025, 11, 30), DECEMBER)]
        assert stored[f"psi_{feature}"] == pytest.approx(health.psi(*samples), abs=1e-9)
        assert stored[f"wasserstein_{feature}"] == pytest.approx(
            health.normalised_wasserstein(*samples), abs=1e-9
        )


def test_a_failed_check_blocks_publication_and_keeps_the_published_month(pipeline, private_ledger):
    """An approved dictionary whose business rule the data breaks: dbt's blocking test fails,
    the run fails, and December's published membership is exactly what it was."""
    _, job, instance, db = pipeline
    before = snapshot(db, DECEMBER)
    set_rule(private_ledger, "vip_collectors", "monetary_value >= 1000000")
    versions.approve(author="asha", approved_by="revops-lead", reason="test: break a business rule")
    result = refresh(job, instance)
    assert not result.success
    failed_checks = [
        e.event_specific_data.check_name
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and not e.event_specific_data.passed
    ]
    assert any("business_rules_hold" in name for name in failed_checks)
    assert snapshot(db, DECEMBER) == before


def test_dbt_tests_are_blocking_asset_checks(pipeline):
    defs, *_ = pipeline
    graph = defs.resolve_asset_graph()
    checks = {key.name: graph.get_check_spec(key) for key in graph.asset_check_keys}
    assert (
        "every_customer_in_one_segment_segment_membership_customer_id__ref_customer_features_"
        in checks
    )
    assert all(spec.blocking for name, spec in checks.items() if name.startswith("every_customer"))


def test_every_asset_has_a_group_owner_kind_and_description(pipeline):
    defs, *_ = pipeline
    for spec in defs.resolve_all_asset_specs():
        assert spec.group_name, spec.key
        assert spec.owners, spec.key
        assert spec.kinds, spec.key
        assert spec.description, spec.key


def test_the_schedule_refreshes_the_month_that_just_ended(pipeline):
    defs, *_ = pipeline
    schedule = defs.get_schedule_def("monthly_refresh_schedule")
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 12, 2, 6, 0))
    requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == ["2026-11-01"]


def test_definition_changes_go_through_review_and_roll_back_exactly(pipeline, private_ledger):
    _, job, instance, db = pipeline
    assert refresh(job, instance).success  # the changelog is current
    original = snapshot(db, DECEMBER)
    entries_before = changelog()
    in_force = versions.check_approved()

    # 1. An unapproved change is refused before anything is written.
    set_rule(private_ledger, "dormant", "frequency >= 1 and recency_days > 400")
    refused = refresh(job, instance)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure)
    assert "rule changed from" in failure.message or "rule changed from" in str(
        failure.event_specific_data.error
    )
    assert snapshot(db, DECEMBER) == original

    # 2. Approved, it publishes, and the changelog shows it once, in words.
    approved = versions.approve(
        author="asha", approved_by="revops-lead", reason="Dormancy at 400 days."
    )
    assert refresh(job, instance).success
    changed = snapshot(db, DECEMBER)
    assert changed["segment_membership"] != original["segment_membership"]
    entries = dict(changelog())
    version_entry = entries[f"version:{approved.number}"]
    assert "rule changed from `frequency >= 1 and recency_days > 730` to " in version_entry
    assert "`frequency >= 1 and recency_days > 400`" in version_entry
    labels = query(
        db, "select version_label from published.publications where month_end = ?", [DECEMBER]
    )
    assert labels == [(approved.label,)]

    # 3. Re-running adds nothing.
    assert refresh(job, instance).success
    assert dict(changelog()) == entries
    assert snapshot(db, DECEMBER) == changed

    # 4. Rollback restores the earlier version's membership exactly, and is recorded.
    rolled = versions.rollback(
        to=in_force.number, author="asha", approved_by="operations-lead", reason="Too many moved."
    )
    assert refresh(job, instance).success
    assert snapshot(db, DECEMBER) == original
    assert f"version:{rolled.number}" in dict(changelog())
    assert set(dict(changelog())) >= {e for e, _ in entries_before}


def test_a_thresholds_edit_is_published_only_under_its_own_approval(pipeline, private_ledger):
    """A bound edited in thresholds.yaml stops the run until approved, and is then recorded
    under its own version with the person who approved it, never under the one in force."""
    _, job, instance, db = pipeline
    original = snapshot(db, DECEMBER)
    in_force = versions.check_approved()
    thresholds_file = paths.thresholds_file()
    document = yaml.safe_load(thresholds_file.read_text())
    next(r for r in document["rules"] if r["id"] == "churn_rising")["relative"]["warn"] = 0.2
    thresholds_file.write_text(yaml.safe_dump(document, sort_keys=False))

    refused = refresh(job, instance)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure)
    assert "thresholds: rule 'churn_rising' changed" in str(failure.event_specific_data.error)
    assert snapshot(db, DECEMBER) == original

    approved = versions.approve(author="asha", approved_by="revops-lead", reason="Earlier churn.")
    assert refresh(job, instance).success
    # The publication in the warehouse, the definition version's approval in the state store.
    published = [
        (label, approved_by)
        for label, version in query(
            db,
            "select version_label, definition_version from published.publications "
            "where month_end = ?",
            [DECEMBER],
        )
        for (approved_by,) in stored(
            "select approved_by from definition_versions where definition_version = :version",
            {"version": version},
        )
    ]
    assert published == [(approved.label, "revops-lead")]
    assert approved.number == in_force.number + 1

    versions.rollback(
        to=in_force.number, author="asha", approved_by="operations-lead", reason="Too noisy."
    )
    assert refresh(job, instance).success
    assert snapshot(db, DECEMBER) == original


def test_quarterly_refresh_proposes_a_candidate_without_publishing_it(pipeline):
    defs, _, instance, db = pipeline
    before = snapshot(db, DECEMBER)
    job = defs.resolve_job_def("quarterly_strategic_refresh")
    result = job.execute_in_process(partition_key="2025-10-01", instance=instance)
    assert result.success
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    candidate_file = Path(metadata["candidate_file"].value)
    document = yaml.safe_load(candidate_file.read_text())
    from segment_cadence.defs.dictionary import segment_dictionary

    dictionary = segment_dictionary.validate(
        document, candidate_file, segment_dictionary.feature_columns()
    )
    assert dictionary.fallback.id == "insufficient_data"
    assert metadata["business_rule_violations"].value == 0
    assert metadata["bootstrap_ari_min"].value > 0.5
    staged = query(
        db, "select count(*) from strategic.candidate_membership where quarter = '2025-Q4'"
    )
    assert staged[0][0] == len(before["segment_membership"])
    assert "| segment | production | candidate |" in metadata["sizes"].value
    # The candidate report carries the quarter's calibration check of the churn model.
    assert "mean absolute error" in metadata["calibration"].value
    assert "| calibration repeat purchases |" in metadata["calibration"].value
    page = Path(metadata["report"].value).read_text()
    checked = page.split('<section id="calibration">')[1].split("</section>")[0]
    assert "<svg" in checked and ">predicted<" in checked
    assert '<section id="sizes">' in page and "<script" not in page
    assert snapshot(db, DECEMBER) == before  # a candidate never touches production


def test_the_quarterly_schedule_targets_the_quarter_that_just_ended(pipeline):
    defs, *_ = pipeline
    schedule = defs.get_schedule_def("quarterly_strategic_refresh_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 1, 5, 6, 0),
        repository_def=defs.get_repository_def(),
    )
    requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == ["2025-10-01"]


def test_health_checks_and_the_alert_sensor_on_published_months(pipeline, state_home):
    """Health runs in the monthly job; the sensor turns its breaches into outbox messages once."""
    from segment_cadence.defs.alerting.sensors import segment_health_alerts

    defs, _, instance, db = pipeline
    metrics = query(db, "select count(distinct month_end), count(*) from health.metrics")[0]
    assert metrics[0] == 3 and metrics[1] > 30
    graph = defs.resolve_asset_graph()
    assert any(key.name == "segment_size_change" for key in graph.asset_check_keys)

    # The sensor needs no warehouse: it reads what the runs handed over in the state store.
    with dg.build_sensor_context(instance=instance) as context:
        first = segment_health_alerts(context)
    processed = stored("select count(*) from processed_months")[0][0]
    assert processed == 3
    outbox = stored(
        "select count(*), sum(case when status = 'local' then 1 else 0 end) from outbox"
    )[0]
    assert outbox[0] == (outbox[1] or 0)  # no token: everything written to the local file
    with dg.build_sensor_context(
        instance=instance,
        cursor=first.cursor if hasattr(first, "cursor") else None,
    ) as again:
        segment_health_alerts(again)
    assert stored("select count(*) from outbox")[0][0] == outbox[0]  # idempotent
    breaches = stored("select count(*) from breaches")[0][0]
    if breaches:
        assert (state_home / "outbox" / "notices.jsonl").exists()


def test_governance_metrics_and_checks_appear_for_each_month(pipeline):
    """The red flags, audit trail, bias audit, lint and firewall run in the monthly job."""
    defs, _, instance, db = pipeline
    governance_keys = [
        k
        for k in defs.resolve_asset_graph().get_all_asset_keys()
        if k.path[0] == "governance"
        and k.path[1] not in ("changelog", "segment_dictionary", "segment_dictionary_versions")
    ]
    assert len(governance_keys) == 9
    for key in governance_keys:
        partitions = instance.get_materialized_partitions(key)
        assert set(MONTHS) <= partitions, key
    flags = dict(query(db, "select month_end || ':' || metric, value from governance.red_flags"))
    assert flags["2025-10-31:pause_violation_count"] is None  # no published month before it
    assert flags["2025-12-31:pause_violation_count"] is not None
    # The pause-violation check ran for December, and names the source when it fails. Its
    # latest *evaluation*: a later run that failed upstream (the approval tests) only planned it.
    check_key = dg.AssetCheckKey(
        dg.AssetKey(["governance", "pause_violations"]), "pause_violation_count_is_zero"
    )
    (latest,) = instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=1, status=COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES
    )
    evaluation = latest.event.dagster_event.event_specific_data
    assert evaluation.passed == (flags["2025-12-31:pause_violation_count"] == 0)
    # The planned January campaign was checked against December and its paused members blocked.
    checked = query(
        db, "select membership_month, decision, blocked_segments from ops.firewall_checks"
    )
    assert checked == [(DECEMBER, "partially_blocked", "evaluation")]
    lint = stored(
        "select phrase from language_findings where month_end = :month", {"month": DECEMBER}
    )
    assert ("push them",) in lint
    # A non-zero pause violation count is a critical breach, so it alerts through the ladder.
    breaches = stored(
        "select count(*) from breaches where month_end = :month "
        "and rule_id = 'pause_violations' and severity = 'critical'",
        {"month": DECEMBER},
    )[0][0]
    assert (breaches > 0) == (flags["2025-12-31:pause_violation_count"] > 0)
    # Earlier tests re-published December under other versions; the trail keeps each version.
    trail = query(
        db,
        "select count(*) from governance.segment_audit_log where month_end = ? "
        "and definition_version in (select definition_version from "
        "published.segment_membership where month_end = ?)",
        [DECEMBER, DECEMBER],
    )[0][0]
    changed = query(
        db,
        "select count(*) from published.segment_membership where month_end = ? "
        "and previous_segment_id is distinct from segment_id",
        [DECEMBER],
    )[0][0]
    assert trail == changed > 0


def test_the_review_pack_figures_match_the_tables(pipeline):
    """Every headline number in the pack is the number in its source table."""
    from segment_cadence.defs.review import review_pack

    *_, db = pipeline
    with warehouse.connect(db, read_only=True) as con:
        pack = review_pack.gather(con, DECEMBER)
    assert [s.id for s in pack.sections][:5] == list(review_pack.AGENDA)
    flags = dict(
        query(db, "select metric, value from governance.red_flags where month_end = ?", [DECEMBER])
    )
    assert (
        pack.section("pause_violations").figures["pause_violation_count"]
        == flags["pause_violation_count"]
    )
    assert (
        pack.section("suppressed_volume").figures["suppressed_campaign_volume"]
        == query(
            db,
            "select coalesce(sum(blocked), 0) from ops.firewall_checks "
            "where last_day(planned_at) = ?",
            [DECEMBER],
        )[0][0]
    )
    sizes = dict(
        query(
            db,
            "select segment_id, customers from published.segment_kpis where month_end = ?",
            [DECEMBER],
        )
    )
    assert pack.section("segment_sizes").figures["sizes"] == sizes
    moved = query(
        db,
        "select sum(customers) from published.segment_transitions where month_end = ? "
        "and from_segment_id <> to_segment_id and from_segment_id <> '(new)'",
        [DECEMBER],
    )[0][0]
    assert pack.section("migration").figures["customers_moved"] == moved
    dwell = stored(
        "select count(*) from breaches where month_end = :month and metric = 'dwell_months'",
        {"month": DECEMBER},
    )[0][0]
    assert pack.section("dwell_anomalies").figures["dwell_anomalies"] == dwell
    flagged = query(
        db, "select count(*) from governance.bias_audit where month_end = ? and flagged", [DECEMBER]
    )[0][0]
    assert pack.section("bias_audit").figures["flagged_cells"] == flagged
    quarantined = query(db, "select count(*) from quarantine.rejected_rows")[0][0]
    assert pack.section("data_quality").figures["quarantined_rows"] == quarantined
    # The rendered Markdown carries the same numbers in the same sections.
    markdown = review_pack.render_markdown(pack)
    sizes_part = markdown.split("## Segment sizes")[1].split("\n## ")[0]
    for segment_id, customers in sizes.items():
        assert f"| {segment_id} | {customers} |" in sizes_part
    assert "Source: published.segment_transitions" in markdown
    assert_the_review_packs_new_figures_match_the_tables(pack, db)


def assert_the_review_packs_new_figures_match_the_tables(pack, db: Path) -> None:
    """The headline's red flags (this month and last), the dwell history, the breaches, the
    firewall's reasons, the KPIs, the alerts and the decisions, each against its source."""
    from segment_cadence.defs.review import review_pack

    november = date(2025, 11, 30)
    flags = {
        (metric, month): value if evaluated else "not evaluated"
        for metric, month, value, evaluated in query(
            db,
            "select metric, month_end, value, evaluated from governance.red_flags "
            "where month_end in (?, ?)",
            [DECEMBER, november],
        )
    }
    by_label = {h.label: h for h in pack.red_flags}
    for metric in {m for m, _ in flags}:
        label = review_pack.RED_FLAG_LABELS.get(metric, metric.replace("_", " "))
        assert by_label[label].value == flags.get((metric, DECEMBER)), metric
        assert by_label[label].last_month == flags.get((metric, november)), metric
    onboarding = by_label["onboarding violations"].words()
    assert f"| {' | '.join(onboarding)} |" in review_pack.render_markdown(pack)

    dwell = pack.section("dwell_anomalies").figures
    assert (
        dwell["dwell_anomalies_last_month"]
        == query(
            db,
            "select count(distinct segment_id) from ops.breaches where month_end = ? "
            "and metric = 'dwell_months'",
            [november],
        )[0][0]
    )
    assert dwell["history_months"] == dict(
        query(
            db,
            "select m.segment_id, count(h.value) filter (where isfinite(h.value)) "
            "from health.metrics m left join health.metrics h on h.segment_id = m.segment_id "
            "and h.metric = m.metric and h.month_end < m.month_end "
            "where m.month_end = ? and m.metric = 'dwell_months' group by m.segment_id",
            [DECEMBER],
        )
    )
    assert dwell["history_needed"] == 6  # two earlier months: not judged, and says so
    assert "in line with history" not in review_pack.render_markdown(pack)

    breaches = pack.section("health_breaches").figures
    assert (
        breaches["health_breaches"]
        == query(db, "select count(*) from ops.breaches where month_end = ?", [DECEMBER])[0][0]
    )
    assert breaches["breaches_by_severity"] == dict(
        query(
            db,
            "select severity, count(*) from ops.breaches where month_end = ? group by all",
            [DECEMBER],
        )
    )

    reasons = query(
        db,
        "select reason_counts from ops.firewall_checks where last_day(planned_at) = ?",
        [DECEMBER],
    )
    blocked: dict[str, int] = {}
    for (counts,) in reasons:
        for reason, n in json.loads(counts).items():
            blocked[reason] = blocked.get(reason, 0) + n
    assert pack.section("suppressed_volume").figures["blocked_by_reason"] == blocked

    kpis = query(
        db,
        "select segment_id, retention_rate, revenue_this_month from published.segment_kpis "
        "where month_end = ?",
        [DECEMBER],
    )
    kpi = pack.section("kpi_trends").figures
    assert kpi["retention_rate"] == {s: r for s, r, _ in kpis}
    assert kpi["revenue_this_month"] == {s: v for s, _, v in kpis}
    assert pack.currency == "GBP" and "£" in review_pack.render_markdown(pack)

    # The alerts, from the state store: fired in December (in the calendar month, first
    # breached in it, or when it was processed) and still open from earlier months.
    month = {"month": DECEMBER, "start": "2025-12-01", "end": "2026-01-01"}
    fired_in_month = (
        "a.fired_at is not null and (a.first_breach_month = :month or (a.fired_at >= :start "
        "and a.fired_at < :end) or a.fired_at = (select processed_at from processed_months "
        "where month_end = :month))"
    )
    alerts = pack.section("alerts").figures
    fired = stored(
        f"select severity, count(*) from alerts a where {fired_in_month} group by 1", month
    )
    assert alerts["alerts_fired"] == sum(n for _, n in fired)
    assert alerts["fired_by_severity"] == dict(fired)
    carried = stored(
        "select count(*) from alerts a where a.state in ('pending', 'firing', 'acknowledged') "
        f"and a.first_breach_month < :month and not ({fired_in_month})",
        month,
    )[0][0]
    assert alerts["alerts_carried_over"] == carried
    assert pack.section("alerts_carried_over").figures["alerts_carried_over"] == carried
    assert (
        alerts["silences_in_force"]
        == stored(
            "select count(*) from silences where created_at <= :now and expires_at > :now "
            "and expires_at > created_at",
            {"now": pack.generated_at},
        )[0][0]
    )

    decisions = pack.section("decisions").figures["decisions_by_kind"]
    refused = query(
        db,
        "select kind || ' ' || decision, count(*) from ops.exception_requests "
        "where last_day(requested_at) = ? and decision is not null group by all",
        [DECEMBER],
    )
    for kind, n in refused:
        assert decisions[kind] == n


def test_the_pack_shows_each_segments_expected_value_and_the_quarters_calibration(pipeline):
    """December ends a quarter: its refresh made the calibration check, and the pack shows it
    with the expected purchases and CLV of each segment, each the published figure."""
    from segment_cadence.defs.review import review_pack

    *_, db = pipeline
    with warehouse.connect(db, read_only=True) as con:
        pack = review_pack.gather(con, DECEMBER)
    outlook = pack.section("value_outlook")
    assert outlook.no_data is None
    published = query(
        db,
        "select m.segment_id, avg(f.clv), sum(f.clv), avg(f.expected_purchases_12m) "
        "from published.segment_membership m join published.customer_features f "
        "using (customer_id, month_end) where month_end = ? group by all",
        [DECEMBER],
    )
    for segment_id, mean_clv, _total, purchases in published:
        if mean_clv is not None:
            assert outlook.figures["avg_clv"][segment_id] == pytest.approx(mean_clv, abs=1e-4)
            assert outlook.figures["avg_expected_purchases_12m"][segment_id] == pytest.approx(
                purchases, abs=1e-8
            )
    assert outlook.figures["total_clv"] == pytest.approx(  # each segment's to the cent
        sum(t or 0 for *_, t, _ in published), abs=0.005 * len(published)
    )
    assert any("12 months" in note and "(1 + 0.01)^k" in note for note in outlook.notes)
    assert outlook.charts and outlook.charts[0].kind == "bars"

    checked = pack.section("calibration")
    assert checked.no_data is None
    assert checked.figures["checked_for"] == DECEMBER
    (chart,) = checked.charts
    assert set(chart.data["series"]) == {"actual", "predicted"}
    assert chart.data["labels"][0] == "0"
    record = stored("select cutoff, holdout_end, model from calibrations")
    assert [tuple(map(str, r)) for r in record] == [("2025-06-30", "2025-12-31", "mbgnbd")]


def test_the_review_pack_is_written_recorded_once_and_opens_in_chromium(pipeline, state_home):
    import subprocess

    from segment_cadence.defs.dictionary import changelog as changelog_module
    from segment_cadence.defs.review import review_pack

    *_, db = pipeline
    month_dir = state_home / "review_packs" / "2025-12"
    html, markdown = month_dir / "review-pack.html", month_dir / "review-pack.md"
    assert html.exists() and markdown.exists()
    page = html.read_text()
    assert "<script" not in page and not re.search(r'(src|href)="(https?:)?//', page)  # offline
    entries = stored("select entry_id from changelog where kind = 'review_pack'")
    assert (
        sorted(e[0] for e in entries)
        == [f"review_pack:{m[:7]}" for m in ("2025-10-31", "2025-11-30", "2025-12-31")]
        or len(entries) == 3
    )
    # Re-rendering December adds nothing to the changelog.
    with state_store.transaction() as state:
        summary = state.execute(
            text("select summary from review_packs where month_end = :month"), {"month": DECEMBER}
        ).scalar()
        review_pack.record(state, DECEMBER, html, summary)
    with warehouse.connect(db, read_only=True) as con, state_store.transaction() as state:
        changelog_module.refresh_changelog(state, con)
    assert len(stored("select * from changelog where kind = 'review_pack'")) == 3

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        if os.environ.get("SEGMENT_CADENCE_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (SEGMENT_CADENCE_REQUIRE_CHROMIUM) but missing")
        pytest.skip("chromium is not installed (.ci/run installs it)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={state_home / 'chromium-profile'}",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", html.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    pack_sections = [
        s
        for s in (
            "pause_violations",
            "dwell_anomalies",
            "suppressed_volume",
            "exception_requests",
            "pressure",
            "segment_sizes",
            "migration",
            "kpi_trends",
            "value_outlook",
            "calibration",
            "scorecard",
            "lift",
            "alerts",
            "definition_changes",
            "bias_audit",
            "data_quality",
        )
    ]
    for section_id in pack_sections:
        assert f'<section id="{section_id}"' in dom, section_id
    assert dom.count("<svg") >= 2  # the sizes chart and the migration heatmap at least
    calibration_part = dom.split('<section id="calibration"')[1].split("</section>")[0]
    assert "<svg" in calibration_part and ">predicted<" in calibration_part
    # The scorecard as a table with each KPI's owner; the lift with its error bars, or the
    # words for a month that cannot measure it.
    scorecard_part = dom.split('<section id="scorecard"')[1].split("</section>")[0]
    assert "<table" in scorecard_part and "retention-marketing" in scorecard_part
    lift_part = dom.split('<section id="lift"')[1].split("</section>")[0]
    assert "<svg" in lift_part or "No data" in lift_part
    screenshot = state_home / "review-pack.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={screenshot}", "--window-size=1200,6000", html.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert screenshot.stat().st_size > 20_000


def test_the_review_pack_goes_to_slack_once_with_the_file_attached(pipeline, tmp_path):
    from segment_cadence.defs.alerting import slack
    from segment_cadence.defs.review import review_pack
    from tests.slack_server import SlackServer

    # A copy of the state store, where the posting state is kept (SQLite's backup, WAL and all).
    source = state_store.engine().url.database
    copy = f"sqlite:///{tmp_path / 'state.sqlite'}"
    with sqlite3.connect(source) as original, sqlite3.connect(tmp_path / "state.sqlite") as target:
        original.backup(target)
    server = SlackServer().start()
    try:
        client = slack.slack_client(base_url=server.base_url, token="xoxb-test")
        server.stop()  # Slack is down: the pack is kept and posted later
        down = slack.slack_client(base_url=server.base_url, token="xoxb-test")
        down.retry_handlers = []
        with state_store.transaction(copy) as state:
            assert review_pack.post_pending(state, down, "C0REVIEW") == {"posted": 0, "failed": 3}
        failed = stored("select count(*) from review_packs where last_error is not null", url=copy)
        assert failed[0][0] == 3
        server.start()
        client = slack.slack_client(base_url=server.base_url, token="xoxb-test")
        with state_store.transaction(copy) as state:
            assert review_pack.post_pending(state, client, "C0REVIEW") == {"posted": 3, "failed": 0}
            assert review_pack.post_pending(state, client, "C0REVIEW") == {"posted": 0, "failed": 0}
        month = {"month": DECEMBER}
        path = stored("select path from review_packs where month_end = :month", month, url=copy)[0][
            0
        ]
    finally:
        server.stop()
    december = [f for f in server.shared_files if "2025-12" in (f.get("title") or "")]
    assert len(server.shared_files) == 3 and len(december) == 1
    assert december[0]["bytes"] == Path(path).read_bytes()
    assert december[0]["channel_id"] == "C0REVIEW"
    assert "pause violations" in december[0]["initial_comment"]


def test_a_month_with_no_inputs_renders_a_pack_that_says_so(tmp_path, monkeypatch):
    from segment_cadence.defs.review import review_pack

    # Nothing recorded either: a state store of its own (the session's holds other tests').
    monkeypatch.setenv("SEGMENT_CADENCE_STATE_URL", f"sqlite:///{tmp_path / 'state.sqlite'}")

    with warehouse.connect(tmp_path / "empty.duckdb") as con:
        warehouse.ensure_schema(con)
        pack = review_pack.gather(con, date(2026, 1, 31))
        written = review_pack.write(pack, tmp_path / "packs")
    assert all(s.no_data for s in pack.sections)
    text = written.markdown.read_text()
    assert text.count("No data:") == len(pack.sections)
    assert "<svg" not in written.html.read_text()


def test_published_segment_sizes_are_a_table_the_ui_can_sort(pipeline):
    """Sizes, shares and paused flags as MetadataValue.table, not hand-built markdown."""
    _, _, instance, db = pipeline
    event = instance.get_latest_materialization_event(
        dg.AssetKey(["published", "segment_membership"])
    )
    metadata = event.asset_materialization.metadata
    sizes = metadata["segment_sizes"]
    assert isinstance(sizes, dg.TableMetadataValue)
    columns = [c.name for c in sizes.schema.columns]
    assert columns[:4] == ["segment_id", "customers", "share", "paused"]
    rows = {r.data["segment_id"]: r.data for r in sizes.records}
    assert sum(r["customers"] for r in rows.values()) == metadata["dagster/row_count"].value
    assert {s for s, r in rows.items() if r["paused"]} == {"post_purchase_cooldown", "evaluation"}
    published = dict(
        query(
            db,
            "select segment_id, customers from published.segment_kpis where month_end = ?",
            [DECEMBER],
        )
    )
    assert {s: r["customers"] for s, r in rows.items()} == published
