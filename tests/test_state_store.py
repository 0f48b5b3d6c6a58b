"""The operational state store: its migrations, several writers at once, the alert tick while a
refresh holds the warehouse, the copy of the firewall records into the warehouse, the move
from an older warehouse, and the same store on a real PostgreSQL on 127.0.0.1."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, inspect, select

from segment_cadence.defs.alerting import alert_inputs, alert_tick, alerts, slack
from segment_cadence.defs.alerting.sensors import segment_health_alerts
from segment_cadence.defs.dictionary import changelog, versions
from segment_cadence.defs.health import breaches, thresholds
from segment_cadence.defs.segments import churn, gate, value
from segment_cadence.platform import state_store
from tests.slack_server import SlackServer
from tests.test_deploy import free_port, postgres_bin, unavailable

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "segment_cadence"
T0 = datetime(2026, 1, 2, 6, 0)
OCT = date(2025, 10, 31)
TABLES = {
    "alerts",
    "silences",
    "outbox",
    "suppressed",
    "processed_months",
    "firewall_checks",
    "firewall_blocked",
    "exception_requests",
    "review_packs",
    "alert_input_months",
    "alert_input_breaches",
    "alert_input_owners",
    "alert_input_changed_segments",
    "churn_fits",
    "calibrations",
    "slack_channels",
    "strategic_requests",
}
# The governance records (migration 0002), and where they were in a warehouse.
GOVERNANCE_RECORDS = {
    "definition_versions": "governance",
    "changelog": "governance",
    "retired_segments": "governance",
    "publish_holds": "governance",
    "publish_releases": "governance",
    "language_findings": "governance",
    "breaches": "health",
}
HEAD = "0007"
# The columns the governance analytics read, exactly as governance.* had them before the move.
OPS_COLUMNS = {
    "firewall_checks": [
        ("check_id", "VARCHAR"),
        ("checked_at", "TIMESTAMP"),
        ("campaign_name", "VARCHAR"),
        ("sender_id", "VARCHAR"),
        ("team", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("target_segments", "VARCHAR"),
        ("planned_at", "TIMESTAMP"),
        ("membership_month", "DATE"),
        ("requested_by", "VARCHAR"),
        ("recipients", "BIGINT"),
        ("allowed", "BIGINT"),
        ("blocked", "BIGINT"),
        ("decision", "VARCHAR"),
        ("reason_counts", "VARCHAR"),
        ("blocked_segments", "VARCHAR"),
        ("held_out", "BIGINT"),
    ],
    "firewall_blocked": [
        ("check_id", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("segment_id", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("all_reasons", "VARCHAR"),
    ],
    "exception_requests": [
        ("request_id", "VARCHAR"),
        ("requested_at", "TIMESTAMP"),
        ("kind", "VARCHAR"),
        ("requested_by", "VARCHAR"),
        ("team", "VARCHAR"),
        ("campaign_name", "VARCHAR"),
        ("channel", "VARCHAR"),
        ("segment_ids", "VARCHAR"),
        ("customer_id", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("decision", "VARCHAR"),
        ("decided_by", "VARCHAR"),
        ("response", "VARCHAR"),
    ],
}


def run_python(code: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def size_breach(segment: str, month: date = OCT) -> thresholds.Breach:
    return thresholds.Breach(
        month,
        "segment_size_change",
        segment,
        "size",
        900.0,
        500.0,
        0.25,
        "relative",
        "warn",
        "Compare inputs first.",
    )


# -- schema ---------------------------------------------------------------------------------


def check_schema(url: str) -> None:
    engine = state_store.engine(url)
    assert set(inspect(engine).get_table_names()) >= TABLES | set(GOVERNANCE_RECORDS)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), state_store.metadata)
    assert differences == []  # the Table objects describe exactly what the migrations made
    state_store.migrate(engine)  # idempotent: a second upgrade changes nothing
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == HEAD


def test_a_months_churn_fit_is_kept_for_later_steps_and_a_rerun_replaces_it(state_url):
    """The fit step records the month's fit; the marts' dbt run (another step, another
    process, or a re-run of the marts alone) reads it back, exactly, as dbt vars."""
    december, november = date(2025, 12, 31), date(2025, 11, 30)
    first = churn.MonthFit(december, None, buyers=12, fitted_at=datetime(2026, 1, 2, 3, 4, 5))
    state_store.record_churn_fit(first.record(), state_url)
    params = churn.BgNbdParams(0.24251617498627953, 4.41, 0.79, 2.42, -9582.4, 2357, True)
    rerun = churn.MonthFit(december, params, buyers=3000, fitted_at=datetime(2026, 1, 3))
    spend = value.GammaGammaParams(6.2488, 3.7446, 15.4477, -4001.2, 946, True)
    priced = value.MonthSpendFit(spend, 0.114, value.ClvAssumptions(24, 0.02))
    state_store.record_churn_fit({**rerun.record(), **priced.record()}, state_url)
    kept = state_store.churn_fit(december, state_url)
    assert kept == {**rerun.record(), **priced.record()}
    assert value.spend_params_of(kept) == spend
    assert value.assumptions_of(kept) == value.ClvAssumptions(24, 0.02)
    # A month recorded before the spend model: none, and the default assumptions.
    assert value.spend_params_of(first.record()) is None
    assert value.assumptions_of(first.record()) == value.DEFAULT_CLV
    assert state_store.churn_fit(november, state_url) is None
    passed = json.loads(json.dumps(churn.dbt_vars(kept)))["bgnbd_fit"]
    assert passed["r"] == params.r and passed["month_end"] == "2025-12-31"
    assert passed["n_customers"] == 2357 and passed["converged"] is True
    assert churn.dbt_vars(None) == {"bgnbd_fit": None}
    assert churn.dbt_vars(first.record())["bgnbd_fit"]["r"] is None


def test_an_unsound_fit_gives_way_to_the_last_sound_fit_of_the_same_model(state_url):
    """A month whose fit did not converge or hit a bound is scored with the latest earlier
    sound fit of its model, and says whose; with none to keep, its own stays, flagged."""
    at = datetime(2026, 1, 2)
    sound = churn.BgNbdParams(0.5, 6.0, 0.9, 1.6, -9000.0, 2000, True, model="mbgnbd")
    other_model = churn.BgNbdParams(0.2, 4.0, 0.8, 2.4, -9500.0, 2000, True, model="bgnbd")
    october, november, december = date(2025, 10, 31), date(2025, 11, 30), date(2025, 12, 31)
    for month, params in ((october, sound), (november, other_model)):
        fit = churn.MonthFit(month, params, 3000, at, params.model)
        state_store.record_churn_fit(fit.record(), state_url)
    wall = churn.BgNbdParams(0.5, 6.0, 0.9, float(np.exp(30.0)), -8999.0, 2000, True, "mbgnbd")
    earlier = state_store.earlier_churn_fits(december, "mbgnbd", state_url)
    assert [r["month_end"] for r in earlier] == [october]
    kept, problem = churn.month_fit_to_keep(
        december, wall, earlier, buyers=3000, fitted_at=at, model="mbgnbd"
    )
    assert kept.kept_from == october and kept.params.b == sound.b
    assert problem == (
        "b ran into the search's bound (e^+-30): the likelihood is flat there; "
        "kept the parameters fitted for 2025-10"
    )
    state_store.record_churn_fit(kept.record(), state_url)
    passed = churn.dbt_vars(state_store.churn_fit(december, state_url))["bgnbd_fit"]
    assert passed["kept_from"] == "2025-10-31" and passed["model"] == "mbgnbd"
    # A month kept from another is not itself a sound fit to keep later.
    january = date(2026, 1, 31)
    later = state_store.earlier_churn_fits(january, "mbgnbd", state_url)
    stuck = dataclasses.replace(sound, converged=False)
    again, _ = churn.month_fit_to_keep(
        january, stuck, later, buyers=3000, fitted_at=at, model="mbgnbd"
    )
    assert again.kept_from == october
    alone, problem = churn.month_fit_to_keep(
        january, stuck, [], buyers=3000, fitted_at=at, model="mbgnbd"
    )
    assert alone.kept_from is None and alone.params is stuck
    assert problem == (
        "the optimiser did not converge; no earlier sound fit of mbgnbd to keep, "
        "so this month's is used"
    )


def test_the_migrations_create_the_schema_on_sqlite_in_wal_mode(state_url):
    check_schema(state_url)
    with state_store.transaction(state_url) as state:
        assert state.exec_driver_sql("pragma journal_mode").scalar() == "wal"
        assert state.exec_driver_sql("pragma busy_timeout").scalar() == state_store.BUSY_TIMEOUT_MS
        assert state_store.is_empty(state)


def test_the_default_store_is_a_sqlite_file_under_the_state_directory(monkeypatch, tmp_path):
    from segment_cadence.platform import paths

    monkeypatch.delenv("SEGMENT_CADENCE_STATE_URL")
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    assert paths.state_store_url() == f"sqlite:///{tmp_path / 'state.sqlite'}"
    monkeypatch.setenv("SEGMENT_CADENCE_STATE_URL", "postgresql://127.0.0.1/state")
    assert paths.state_store_url() == "postgresql://127.0.0.1/state"


@pytest.mark.slow
def test_concurrent_first_starters_migrate_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    starters = [
        run_python(
            f"""
            from segment_cadence.platform import state_store
            with state_store.transaction({url!r}) as state:
                print(state_store.is_empty(state))
            """
        )
        for _ in range(4)
    ]
    for starter in starters:
        out, err = starter.communicate(timeout=120)
        assert starter.returncode == 0, err
        assert out.strip() == "True"
    check_schema(url)


def test_no_operational_table_is_created_by_hand_in_product_code():
    """Tables of the state store come from its migrations, never from a CREATE string."""
    created = re.compile(r"create\s+table\s+(if\s+not\s+exists\s+)?(\w+\.)?(\w+)", re.I)
    found = []
    for path in PACKAGE.rglob("*.py"):
        if "state_migrations" in path.parts:
            continue
        for match in created.finditer(path.read_text()):
            schema, table = (match.group(2) or "").rstrip("."), match.group(3)
            if (
                schema in ("alerts", "")
                and table in TABLES
                or (
                    schema == "governance"
                    and table
                    in ("firewall_checks", "firewall_blocked", "exception_requests", "review_packs")
                )
                or (table in GOVERNANCE_RECORDS and schema in (GOVERNANCE_RECORDS[table], ""))
            ):
                found.append(f"{path.relative_to(REPO)}: {match.group(0)}")
    assert found == []


# -- several writers ------------------------------------------------------------------------

WRITER = """
    import sys
    from datetime import datetime, timedelta
    from sqlalchemy import select, update
    from segment_cadence.defs.alerting import alerts
    from segment_cadence.platform import state_store

    url, writer = sys.argv[1], sys.argv[2]
    now = datetime(2026, 1, 2, 6, 0)
    for i in range(25):
        with state_store.transaction(url) as state:
            alerts.silence(state, segment_id=f"{writer}-{i}", created_by=writer, reason="load test",
                           expires_at=now + timedelta(days=1), now=now)
        with state_store.transaction(url) as state:  # read, then write: a lost update if unsafe
            o = state_store.outbox.c
            attempts = state.execute(select(o.attempts).where(o.message_id == "shared")).scalar()
            state.execute(update(state_store.outbox).where(o.message_id == "shared")
                          .values(attempts=attempts + 1))
"""


def several_writers_lose_nothing(url: str, writers: int = 4) -> None:
    with state_store.transaction(url) as state:
        state.execute(
            insert(state_store.outbox).values(message_id="shared", status="counter", attempts=0)
        )
    started = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), url, f"w{n}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(writers)
    ]
    for process in started:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    with state_store.transaction(url) as state:
        silences = state.execute(select(func.count()).select_from(state_store.silences)).scalar()
        o = state_store.outbox.c
        attempts = state.execute(select(o.attempts).where(o.message_id == "shared")).scalar()
    assert silences == writers * 25
    assert attempts == writers * 25  # every read-modify-write took its turn


@pytest.mark.slow
def test_several_writing_processes_take_turns_without_loss(state_url):
    several_writers_lose_nothing(state_url)


# -- the tick while a refresh writes --------------------------------------------------------

HOLDER = """
    import sys, time
    from segment_cadence.platform import warehouse, warehouse_lock
    path = sys.argv[1]
    with warehouse_lock.writer("a monthly refresh", warehouse_path=path, wait=0), \\
            warehouse.connect(path) as con:
        con.execute("create schema if not exists health")
        print("holding", flush=True)
        time.sleep(120)
"""


@contextlib.contextmanager
def refresh_writing(warehouse_path: Path) -> Iterator[subprocess.Popen]:
    """Another process with the writer's turn and DuckDB's lock on the warehouse file."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(warehouse_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = holder.stdout.readline()
        assert line.strip() == "holding", holder.stderr.read()
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=30)


@pytest.mark.slow
def test_an_alert_tick_runs_and_delivers_while_a_refresh_holds_the_warehouse(
    state_url, tmp_path, monkeypatch
):
    warehouse_path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(warehouse_path))
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    server = SlackServer().start()
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("SLACK_API_URL", server.base_url)
    try:
        with state_store.transaction(state_url) as state:  # what the health asset hands over
            alert_inputs.hand_over(
                state,
                alert_inputs.AlertInputs(
                    OCT,
                    "v1",
                    [size_breach("vip_collectors")],
                    {"vip_collectors": "clienteling"},
                    set(),
                ),
                T0,
            )
        with refresh_writing(warehouse_path):
            with dg.instance_for_test() as instance:
                result = segment_health_alerts(dg.build_sensor_context(instance=instance))
            assert isinstance(result, dg.SensorResult), result
            assert json.loads(result.cursor)["months_processed"] == [OCT.isoformat()]
            (post,) = server.posts()
            assert "vip_collectors" in json.dumps(post["blocks"])
            # The CLI's alert commands do not wait for the refresh either.
            env = {**os.environ, "SEGMENT_CADENCE_COMMAND_WAIT": "0"}
            printed = {}
            for command in (["list"], ["ack", "vip_collectors", "--by", "asha"], ["run"]):
                done = subprocess.run(
                    [sys.executable, "-m", "segment_cadence.cli", "alerts", *command],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                assert done.returncode == 0, done.stderr
                printed[command[0]] = done.stdout
            assert "segment_size_change|vip_collectors|size|v1" in printed["list"]
            assert "acknowledged 1 alert(s)" in printed["ack"]
            assert "months processed: none" in printed["run"]
        with state_store.transaction(state_url) as state:
            assert alerts.unresolved(state)[0][0] == "acknowledged"
    finally:
        server.stop()


# -- the warehouse's copies and the move from an older warehouse ----------------------------


def test_the_firewall_records_are_copied_into_the_warehouse_with_their_old_columns(state_url):
    con = duckdb.connect()
    state_store.ensure_firewall_copies(con)  # present even before anything was copied
    for table in OPS_COLUMNS:
        assert con.execute(f"select count(*) from ops.{table}").fetchone()[0] == 0
    with state_store.transaction(state_url) as state:
        state.execute(
            insert(state_store.exception_requests).values(
                request_id="r1",
                requested_at=T0,
                kind="override",
                requested_by="lead",
                reason="send once",
                decision="refused",
            )
        )
    assert state_store.copy_firewall_records(con) == {
        "firewall_checks": 0,
        "firewall_blocked": 0,
        "exception_requests": 1,
    }
    for table, columns in OPS_COLUMNS.items():
        assert [tuple(r[:2]) for r in con.execute(f"describe ops.{table}").fetchall()] == columns
    assert con.execute(
        "select request_id, requested_at, kind from ops.exception_requests"
    ).fetchall() == [("r1", T0, "override")]
    state_store.copy_firewall_records(con)  # replaced whole, not appended
    assert con.execute("select count(*) from ops.exception_requests").fetchone()[0] == 1


OLD_DDL = (
    "create schema alerts",
    "create schema governance",
    """create table alerts.alerts (alert_key varchar, rule_id varchar, segment_id varchar,
        metric varchar, definition_version varchar, state varchar, severity varchar,
        consecutive integer, clean_streak integer, first_breach_month date,
        last_breach_month date, last_value double, last_baseline double, last_bound double,
        fired_at timestamp, acknowledged_by varchar, acknowledged_at timestamp,
        resolved_at timestamp, level integer, last_notified_at timestamp,
        strategic_requested_at timestamp)""",
    """create table alerts.processed_months (month_end date, processed_at timestamp)""",
    """create table governance.exception_requests (request_id varchar, requested_at timestamp,
        kind varchar, requested_by varchar, team varchar, campaign_name varchar,
        channel varchar, segment_ids varchar, customer_id varchar, reason varchar,
        decision varchar, decided_by varchar, response varchar)""",
)


@pytest.mark.slow
def test_an_older_warehouse_moves_its_state_once(state_url, tmp_path, monkeypatch):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        for statement in OLD_DDL:
            con.execute(statement)
        con.execute(
            "insert into alerts.alerts (alert_key, rule_id, segment_id, metric, state, level, "
            "consecutive, fired_at) values ('k', 'r', 'vip', 'size', 'firing', 1, 1, ?)",
            [T0],
        )
        con.execute("insert into alerts.processed_months values (?, ?)", [OCT, T0])
        con.execute(
            "insert into governance.exception_requests (request_id, requested_at, kind) "
            "values ('r1', ?, 'dispute')",
            [T0],
        )
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(path))
    done = subprocess.run(
        [sys.executable, "-m", "segment_cadence.cli", "state", "migrate"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "moved alerts.alerts: 1 row(s)" in done.stdout
    assert "moved governance.exception_requests: 1 row(s)" in done.stdout
    with state_store.transaction(state_url) as state:
        assert alerts.unresolved(state)[0][:4] == ("firing", None, 1, "k")
        assert alerts.latest_processed_month(state) == OCT
        # The lifecycle goes on from the moved state: the month is not processed again.
        assert alerts.process_refresh(
            state,
            month_end=OCT,
            breaches=[],
            config=thresholds.load(),
            definition_version="v",
            owners={},
            changed_segments=set(),
            now=T0,
        ).skipped
    again = subprocess.run(
        [sys.executable, "-m", "segment_cadence.cli", "state", "migrate"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0 and "nothing to move" in again.stdout
    with duckdb.connect(str(path)) as con:
        assert state_store.migrate_from_warehouse(con, state_url) == {}


# -- the governance records ---------------------------------------------------------------

OLD_GOVERNANCE_DDL = (
    "create schema governance",
    "create schema health",
    """create table governance.definition_versions (definition_version varchar,
        version_number integer, governed_digest varchar, author varchar, reason varchar,
        approved_by varchar, approved_at varchar, recorded_at timestamp)""",
    """create table governance.changelog (entry_id varchar, recorded_at timestamp, kind varchar,
        version_label varchar, definition_version varchar, month_end date, summary varchar)""",
    """create table governance.publish_holds (month_end date, run_id varchar,
        inputs_fingerprint varchar, findings varchar, held_at timestamp)""",
    """create table health.breaches (month_end date, rule_id varchar, segment_id varchar,
        metric varchar, value double, baseline double, bound double, kind varchar,
        severity varchar, runbook varchar, definition_version varchar)""",
)


def test_an_older_warehouse_moves_its_governance_records_once_into_a_store_already_in_use(
    state_url,
):
    """A store that already holds alerts (moved by an earlier version) still receives the
    governance records an older warehouse kept, once."""
    con = duckdb.connect()
    for statement in OLD_GOVERNANCE_DDL:
        con.execute(statement)
    con.execute(
        "insert into governance.definition_versions values ('abc', 1, 'd', 'asha', 'first', "
        "'revops-lead', '2025-10-01T09:00:00', ?)",
        [T0],
    )
    con.execute(
        "insert into governance.changelog values ('version:1', ?, 'approval', 'v1', null, null, "
        "'v1 approved'), ('published:2025-10-31:abc', ?, 'publication', 'v1', 'abc', ?, 'Pub')",
        [T0, T0, OCT],
    )
    finding = {
        "check": "order_volume",
        "subject": "orders",
        "value": 0.0,
        "bound": 1.0,
        "message": "inputs: no order lines",
    }
    con.execute(
        "insert into governance.publish_holds values (?, 'run-1', 'fp', ?, ?)",
        [OCT, json.dumps([finding]), T0],
    )
    con.execute(
        "insert into health.breaches values (?, 'segment_size_change', 'vip', 'size', 900, 500, "
        "0.25, 'relative', 'warn', 'Compare inputs first.', 'abc')",
        [OCT],
    )
    with state_store.transaction(state_url) as state:
        alerts.silence(
            state,
            segment_id="vip",
            created_by="asha",
            reason="launch week",
            expires_at=T0 + timedelta(days=1),
            now=T0,
        )
    assert state_store.migrate_from_warehouse(con, state_url) == {
        "governance.definition_versions": 1,
        "governance.changelog": 2,
        "governance.publish_holds": 1,
        "health.breaches": 1,
    }
    with state_store.transaction(state_url) as state:
        assert [e[1] for e in changelog.recent_entries(state)] == ["approval", "publication"]
        hold = gate.latest_hold(state, OCT, None)
        assert hold.run_id == "run-1" and [f.check for f in hold.findings] == ["order_volume"]
        moved = state_store.rows(state, state_store.breaches)
        assert [(b["segment_id"], b["definition_version"]) for b in moved] == [("vip", "abc")]
        (version,) = state_store.rows(state, state_store.definition_versions)
        assert (version["definition_version"], version["approved_by"]) == ("abc", "revops-lead")
    assert state_store.migrate_from_warehouse(con, state_url) == {}  # once


def test_the_breaches_and_the_changelog_are_copied_into_the_warehouse_for_the_review_pack(
    state_url,
):
    con = duckdb.connect()
    with state_store.transaction(state_url) as state:
        breaches.store_breaches(state, OCT, [size_breach("vip_collectors")], "v1")
        changelog.record(state, [changelog.Entry("edit:x", "edit", "v1", None, None, "Renamed")])
    assert state_store.copy_review_records(con, state_url) == {
        "firewall_checks": 0,
        "firewall_blocked": 0,
        "exception_requests": 0,
        "breaches": 1,
        "changelog": 1,
    }
    assert con.execute(
        "select month_end, segment_id, metric, severity, definition_version from ops.breaches"
    ).fetchall() == [(OCT, "vip_collectors", "size", "warn", "v1")]
    assert con.execute("select entry_id, kind, summary from ops.changelog").fetchall() == [
        ("edit:x", "edit", "Renamed")
    ]
    with state_store.transaction(state_url) as state:  # a month's breaches are replaced whole
        breaches.store_breaches(state, OCT, [], "v1")
    state_store.copy_review_records(con, state_url)
    assert con.execute("select count(*) from ops.breaches").fetchone()[0] == 0


def test_the_changelog_is_refreshed_in_one_transaction_and_adds_each_entry_once(state_url):
    approved = versions.check_approved()
    con = duckdb.connect()  # a warehouse with nothing published yet
    with pytest.raises(RuntimeError), state_store.transaction(state_url) as state:
        assert changelog.refresh_changelog(state, con)
        raise RuntimeError("the run dies before the transaction ends")
    with state_store.transaction(state_url) as state:
        assert state_store.rows(state, state_store.changelog) == []
        added = changelog.refresh_changelog(state, con)
    assert f"version:{approved.number}" in [e.entry_id for e in added]
    with state_store.transaction(state_url) as state:
        assert changelog.refresh_changelog(state, con) == []


def test_a_definition_version_is_recorded_once_with_its_approval(state_url):
    approved = versions.check_approved()
    for _ in range(2):  # a re-run records the version again, replacing the earlier record
        with state_store.transaction(state_url) as state:
            changelog.record_definition_version(state, "abc", approved)
    with state_store.transaction(state_url) as state:
        (version,) = state_store.rows(state, state_store.definition_versions)
    assert (version["definition_version"], version["version_number"]) == ("abc", approved.number)
    assert version["approved_by"] == approved.approved_by


# -- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for this module, with a `state` database."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        unavailable("psycopg2 is not installed (pip install -e '.[dev]')")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="segment-cadence-state-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres", "postgres")
    data, port = root / "data", free_port()

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run([*as_user, *command], capture_output=True, text=True)

    createdb = str(Path(pg_ctl).resolve().with_name("createdb"))
    try:
        assert (
            run(initdb, "-D", str(data), "-U", "state", "--auth=trust", "--no-sync").returncode == 0
        )
        started = run(
            pg_ctl,
            "-D",
            str(data),
            "-w",
            "-t",
            "60",
            "-l",
            str(root / "server.log"),
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off",
            "start",
        )
        assert started.returncode == 0, started.stderr
        for _ in range(30):
            created = run(createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "state", "state")
            if created.returncode == 0:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"could not create the database: {created.stderr}")
        yield f"postgresql+psycopg2://state@127.0.0.1:{port}/state"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_the_migrations_create_the_schema_on_postgres(postgres_url):
    check_schema(postgres_url)


@pytest.mark.slow
def test_several_writers_take_turns_on_postgres(postgres_url):
    several_writers_lose_nothing(postgres_url)


def test_the_alert_lifecycle_runs_on_postgres(postgres_url, tmp_path):
    server = SlackServer().start()
    try:
        client = slack.slack_client(base_url=server.base_url, token="xoxb-test-token")
        with state_store.transaction(postgres_url) as state:
            alert_inputs.hand_over(
                state,
                alert_inputs.AlertInputs(
                    OCT, "v1", [size_breach("dormant")], {"dormant": "crm-ops"}, {"other"}
                ),
                T0,
            )
        result = alert_tick.run_tick(T0, client=client, url=postgres_url)
        assert result.months_processed == [OCT] and result.fired == 1 and result.sent == 1
        again = alert_tick.run_tick(T0 + timedelta(minutes=1), client=client, url=postgres_url)
        assert again.months_processed == [] and again.sent == 0  # nothing twice
        assert len(server.posts()) == 1
        with state_store.transaction(postgres_url) as state:
            o = state_store.outbox.c
            assert state.execute(select(o.status).where(o.kind == "firing")).scalar() == "sent"
            assert alerts.acknowledge(state, "dormant", "asha", T0) == 1
    finally:
        server.stop()


def test_the_latest_calibration_is_found_within_its_window(state_url):
    """The pack shows a quarter's check until the next quarter's, never an older one."""
    for month in (date(2025, 6, 30), date(2025, 9, 30)):
        state_store.record_calibration(
            {"month_end": month, "model": "mbgnbd", "groups": "[]"}, state_url
        )
    assert state_store.latest_calibration(date(2025, 11, 30), url=state_url)["month_end"] == (
        date(2025, 9, 30)
    )
    assert state_store.latest_calibration(date(2025, 8, 31), url=state_url)["month_end"] == (
        date(2025, 6, 30)
    )
    assert (
        state_store.latest_calibration(date(2026, 1, 31), since=date(2025, 10, 1), url=state_url)
        is None
    )
    assert state_store.latest_calibration(date(2025, 5, 31), url=state_url) is None
