"""The publish gate: a month built from unusable input is held, and nothing published moves.

Real Dagster runs with real dbt on a DuckDB file, over a small generated jeweller. November
is published from good data; then the orders file is replaced by one with no usable rows
(header only, day-first dates without a date format, integer dates in Parquet) and
November is refreshed again. Each time the gate holds the month: the published membership,
its Parquet export and the firewall's answer stay byte-for-byte what they were.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from sqlalchemy import func, select

from segment_cadence.cli.main import main, publication_status
from segment_cadence.defs.governance import firewall
from segment_cadence.defs.segments import gate
from segment_cadence.platform import paths, state_store, warehouse
from tests.marks import slow_fixture

NOVEMBER = date(2025, 11, 30)
ENV = (
    "SEGMENT_CADENCE_HOME",
    "SEGMENT_CADENCE_WAREHOUSE",
    "SEGMENT_CADENCE_SOURCES",
    "SEGMENT_CADENCE_STATE_URL",
)


@pytest.fixture(scope="module")
@slow_fixture
def jeweller(tmp_path_factory: pytest.TempPathFactory):
    """A private state directory with 400 generated customers; October and November published."""
    from segment_cadence.definitions import build_definitions
    from segment_cadence.example.generator import GeneratorConfig, generate
    from segment_cadence.platform.resources import WarehouseResource, default_resources

    home = tmp_path_factory.mktemp("gate_home")
    saved = {key: os.environ.get(key) for key in ENV}
    os.environ["SEGMENT_CADENCE_HOME"] = str(home)
    os.environ["SEGMENT_CADENCE_WAREHOUSE"] = str(home / "warehouse.duckdb")
    # A state store of its own: the holds and releases of this module's November, no other's.
    os.environ["SEGMENT_CADENCE_STATE_URL"] = f"sqlite:///{home / 'state.sqlite'}"
    config = GeneratorConfig(customers=400, end_month="2025-12", history_months=24, seed=11)
    generate(home / "raw", config, progress=False)
    sources = yaml.safe_load(paths.SOURCES_FILE.read_text())
    (home / "sources.yaml").write_text(yaml.safe_dump(sources))
    os.environ["SEGMENT_CADENCE_SOURCES"] = str(home / "sources.yaml")
    resources = {
        **default_resources(),
        "warehouse": WarehouseResource(path=str(home / "warehouse.duckdb")),
    }
    job = build_definitions(resources).resolve_job_def("monthly_refresh")
    instance = dg.DagsterInstance.ephemeral()
    for month in ("2025-10-01", "2025-11-01"):
        assert job.execute_in_process(partition_key=month, instance=instance).success
    yield home, job, instance, sources
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def published_state(home: Path) -> dict:
    """What consumers of November see: rows, the export's bytes, the firewall's answer."""
    with warehouse.connect(home / "warehouse.duckdb", read_only=True) as con:
        rows = con.execute(
            "select * from published.segment_membership where month_end = ? order by all",
            [NOVEMBER],
        ).fetchall()
        export, version, run_id = con.execute(
            "select export_path, definition_version, run_id from published.publications "
            "where month_end = ?",
            [NOVEMBER],
        ).fetchone()
        campaign = firewall.parse_campaign(
            {
                "name": "Cool-down preview",
                "sender": "S001",
                "channel": "email",
                "planned_at": "2025-12-10T10:00",
                "target_segments": ["post_purchase_cooldown", "loyal_repeat"],
            }
        )
        decision = firewall.check_campaign(
            con, campaign, record=False, checked_at=datetime(2025, 12, 1)
        )
    return {
        "rows": rows,
        "export": export,
        "export_sha": hashlib.sha256(Path(export).read_bytes()).hexdigest(),
        "version": version,
        "run_id": run_id,
        "allowed": sorted(decision.allowed),
        "blocked": sorted((b.customer_id, b.reasons) for b in decision.blocked),
    }


def use_orders_file(home: Path, sources: dict, path: Path, **options) -> None:
    mapping = {**sources, "sources": {**sources["sources"]}}
    mapping["sources"]["orders"] = {**sources["sources"]["orders"], "path": str(path), **options}
    (home / "sources.yaml").write_text(yaml.safe_dump(mapping))


def orders_csv(home: Path, name: str, date_sql: str, where: str = "true") -> Path:
    target = home / name
    con = duckdb.connect()
    con.execute(
        f"copy (select order_line_id, order_id, customer_id, {date_sql} as order_date, amount, "
        f"category from '{home / 'raw' / 'orders.parquet'}' where {where}) to '{target}'"
        + (" (header)" if name.endswith(".csv") else " (format parquet)")
    )
    con.close()
    return target


def test_good_months_pass_the_gate_and_publish(jeweller):
    home, *_ = jeweller
    with warehouse.connect(home / "warehouse.duckdb", read_only=True) as con:
        months = con.execute("select month_end from published.publications order by 1").fetchall()
    with state_store.transaction() as state:
        holds = state.execute(select(func.count()).select_from(state_store.publish_holds)).scalar()
    assert months == [(date(2025, 10, 31),), (NOVEMBER,)]
    assert holds == 0


@pytest.mark.parametrize(
    "case",
    ["header_only_csv", "day_first_dates_without_format", "integer_dates_in_parquet"],
)
def test_an_orders_file_with_no_usable_rows_is_held_and_nothing_published_moves(jeweller, case):
    home, job, instance, sources = jeweller
    before = published_state(home)
    if case == "header_only_csv":
        bad = orders_csv(home, "orders-empty.csv", "order_date", where="false")
    elif case == "day_first_dates_without_format":
        bad = orders_csv(home, "orders-dayfirst.csv", "strftime(order_date, '%d/%m/%Y')")
    else:
        bad = orders_csv(home, "orders-int.parquet", "cast(strftime(order_date, '%Y%m%d') as int)")
    use_orders_file(home, sources, bad)
    try:
        result = job.execute_in_process(
            partition_key="2025-11-01", instance=instance, raise_on_error=False
        )
    finally:
        (home / "sources.yaml").write_text(yaml.safe_dump(sources))
    assert not result.success
    checks = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == "inputs_and_result_fit_to_publish"
    ]
    assert [c.passed for c in checks] == [False]
    assert "held by the publish gate" in checks[0].description
    assert published_state(home) == before
    with (
        warehouse.connect(home / "warehouse.duckdb", read_only=True) as con,
        state_store.transaction() as state,
    ):
        hold = gate.latest_hold(state, NOVEMBER, con)
    assert hold is not None and hold.run_id == result.run_id
    status, _ = publication_status(
        date(2025, 11, 1), (before["run_id"], None), result.run_id, result.success
    )
    assert status == "HELD by the publish gate (last published month unchanged)"
    found = {f.check for f in hold.findings}
    assert {"order_volume", "paused_segment_emptied"} <= found
    if case != "header_only_csv":
        assert "quarantine_rate" in found


def test_a_held_month_is_published_only_after_a_recorded_release(jeweller):
    """The release names the approver and the reason, and binds to the held inputs."""
    home, job, instance, sources = jeweller
    before = published_state(home)
    # A festive surprise: November's orders doubled twice over (every line three more times).
    surge = orders_csv(home, "orders-surge.parquet", "order_date")
    con = duckdb.connect()
    con.execute(
        f"copy (select * from '{surge}' union all "
        f"select order_line_id || '-' || k, order_id || '-' || k, customer_id, order_date, "
        f"amount, category from '{surge}', range(5) t(k) "
        f"where order_date between '2025-11-01' and '2025-11-30') "
        f"to '{home / 'orders-surge2.parquet'}' (format parquet)"
    )
    con.close()
    use_orders_file(home, sources, home / "orders-surge2.parquet")
    try:
        held = job.execute_in_process(
            partition_key="2025-11-01", instance=instance, raise_on_error=False
        )
        assert not held.success
        assert published_state(home) == before
        with (
            warehouse.connect(home / "warehouse.duckdb", read_only=True) as con,
            state_store.transaction() as state,
        ):
            hold = gate.latest_hold(state, NOVEMBER, con)
            assert [f.check for f in hold.findings] == ["order_volume"]
            gate.record_release(state, hold, "operations-lead", "Festive surge confirmed by sales")
        released = job.execute_in_process(
            partition_key="2025-11-01", instance=instance, raise_on_error=False
        )
    finally:
        (home / "sources.yaml").write_text(yaml.safe_dump(sources))
    assert released.success
    after = published_state(home)
    assert after["run_id"] == released.run_id
    assert after["export"] != before["export"] and Path(after["export"]).exists()
    assert not Path(before["export"]).exists()  # the superseded export is tidied away
    # Back on the original file: different inputs, no release needed, and none carried over.
    again = job.execute_in_process(partition_key="2025-11-01", instance=instance)
    assert again.success


def test_a_release_needs_an_approver_and_a_held_month(jeweller, capsys):
    code = main(["release", "--month", "2025-11", "--by", "intern", "--reason", "Looks fine"])
    assert code == 1
    assert "intern is not an approver" in capsys.readouterr().err
    code = main(
        ["release", "--month", "2025-10", "--by", "operations-lead", "--reason", "Looks fine"]
    )
    assert code == 1
    assert "2025-10 is not held by the publish gate" in capsys.readouterr().out
    r = state_store.publish_releases.c
    with state_store.transaction() as state:
        releases = state.execute(
            select(func.count()).where(r.month_end == date(2025, 10, 31))
        ).scalar()
    assert releases == 0
