"""The incremental monthly history gives exactly what a full rebuild gives.

dbt runs in this process against a private warehouse loaded from the session's generated
jeweller. customer_features for a month built incrementally (month after month, re-runs,
months out of order, skipped months, history corrected after the fact) must equal the same
month rebuilt from the whole history with --full-refresh.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from segment_cadence.defs.ingest import ingest
from segment_cadence.platform import paths, warehouse
from segment_cadence.platform.months import month_end, previous_month
from tests.marks import slow_fixture

SELECT = ["--select", "+customer_features"]
MONTHLY = "history.int_customer_orders_monthly"
# Churn parameters for every month the tests build, passed as the pipeline passes the fit
# (the BG/NBD fit itself is not under test).
FITTED_MONTHS = ("2024-02-29", "2025-10-31", "2025-11-30", "2025-12-31")
FIT = {
    "r": 0.24,
    "alpha": 4.4,
    "a": 0.79,
    "b": 2.4,
    "log_likelihood": 0,
    "n_customers": 0,
    "converged": True,
    "fitted_at": "2026-01-02 00:00:00",
}


class Warehouse:
    """A private warehouse and a dbt that builds it as of a given month."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path = path
        self.target = target

    def dbt(self, month: str, *args: str) -> None:
        """dbt in its own process, as the pipeline runs it (dbt-duckdb keeps the database open
        in the process that ran it)."""
        start = date.fromisoformat(month + "-01")
        variables = {
            "month_end": month_end(start).isoformat(),
            "previous_month_end": month_end(previous_month(start)).isoformat(),
        }
        variables["bgnbd_fit"] = FIT if variables["month_end"] in FITTED_MONTHS else None
        env = {
            **os.environ,
            "SEGMENT_CADENCE_WAREHOUSE": str(self.path),
            "SEGMENT_CADENCE_DBT_VARS": json.dumps(variables),
        }
        result = subprocess.run(
            [
                str(Path(sys.executable).parent / "dbt"),
                "run",
                *SELECT,
                *args,
                "--quiet",
                "--project-dir",
                str(paths.DBT_PROJECT_DIR),
                "--profiles-dir",
                str(paths.DBT_PROJECT_DIR),
                "--target-path",
                str(self.target),
                "--log-path",
                str(self.target),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, (
            f"dbt run for {month} failed:\n{result.stdout}{result.stderr}"
        )

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with warehouse.connect(self.path, read_only=True) as con:
            return con.execute(sql, params or []).fetchall()

    def features(self) -> list[dict]:
        with warehouse.connect(self.path, read_only=True) as con:
            cursor = con.execute("select * from build.customer_features order by customer_id")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def compiled_slice_filter(self) -> str:
        compiled = self.target / "compiled" / "segment_cadence" / "models" / "intermediate"
        return (compiled / "int_customer_orders_monthly.sql").read_text()


@pytest.fixture(scope="module")
@slow_fixture
def history(state_home: Path, generated_data: Path, tmp_path_factory) -> Warehouse:
    """The generated jeweller's sources loaded into a private warehouse."""
    root = tmp_path_factory.mktemp("incremental")
    wh = Warehouse(root / "warehouse.duckdb", root / "target")
    config = ingest.load_config(paths.sources_file(), base=state_home)
    with warehouse.connect(wh.path) as con:
        warehouse.ensure_schema(con)
        ingest.load_all(con, config)
    return wh


def assert_same_features(got: list[dict], expected: list[dict]) -> None:
    assert len(got) == len(expected) > 0
    for row, want in zip(got, expected, strict=True):
        for column, value in want.items():
            if isinstance(value, float) and isinstance(row[column], float):
                assert math.isclose(row[column], value, rel_tol=1e-9, abs_tol=1e-9), (
                    row["customer_id"],
                    column,
                    row[column],
                    value,
                )
            else:
                assert row[column] == value, (row["customer_id"], column, row[column], value)


def full_rebuild(wh: Warehouse, month: str) -> list[dict]:
    wh.dbt(month, "--full-refresh")
    return wh.features()


def assert_slices_add_up(wh: Warehouse) -> None:
    """One row per customer and month, and each month holds exactly that month's orders."""
    rows, keys = wh.query(
        f"select count(*), count(distinct (customer_id, activity_month)) from {MONTHLY}"
    )[0]
    assert rows == keys
    built = dict(wh.query(f"select activity_month, sum(orders) from {MONTHLY} group by 1"))
    source = dict(
        wh.query(
            "select cast(date_trunc('month', order_date) as date), count(distinct order_id) "
            "from raw.orders group by 1"
        )
    )
    for month, orders in built.items():
        assert orders == source[month], month


def test_month_after_month_matches_a_full_rebuild_and_builds_only_the_new_month(history):
    wh = history
    wh.dbt("2025-10")  # first build: every month up to October at once
    wh.dbt("2025-11")
    wh.dbt("2025-12")
    compiled = wh.compiled_slice_filter()
    assert "2025-12-01" in compiled and "2025-11-01" not in compiled  # December's slice only
    incremental = wh.features()
    assert_slices_add_up(wh)
    assert_same_features(incremental, full_rebuild(wh, "2025-12"))


def test_reruns_old_months_and_months_out_of_order_never_count_twice(history):
    wh = history
    expected = full_rebuild(wh, "2025-12")
    wh.dbt("2025-10")  # an old month again, after December
    wh.dbt("2025-12")
    wh.dbt("2025-12")  # and the same month twice
    assert_slices_add_up(wh)
    assert_same_features(wh.features(), expected)

    # A leap-year month, whose 365-day window starts mid-month, out of order.
    wh.dbt("2024-02")
    leap = wh.features()
    assert_same_features(leap, full_rebuild(wh, "2024-02"))


def test_skipped_months_are_built_when_a_later_month_runs(history):
    wh = history
    expected = full_rebuild(wh, "2025-12")
    full_rebuild(wh, "2025-10")  # history up to October only
    wh.dbt("2025-12")  # November was never built: it is built now, with December
    assert "2025-11-01" in wh.compiled_slice_filter()
    assert_slices_add_up(wh)
    assert_same_features(wh.features(), expected)


def test_corrected_history_is_rebuilt_from_its_fingerprint(history):
    """Late or corrected rows for an earlier month change that month's fingerprint at ingest;
    the next refresh rebuilds that month (and only the months that changed)."""
    wh = history
    wh.dbt("2025-12")
    with warehouse.connect(wh.path) as con:
        con.execute(
            "delete from raw.orders where order_date >= '2024-06-01' and order_date < '2024-07-01' "
            "and customer_id in (select customer_id from raw.orders order by customer_id limit 200)"
        )
        con.execute("delete from raw.orders where order_date < '2023-02-01'")  # a month gone
        ingest.store_month_fingerprints(con, "orders")
    wh.dbt("2025-12")
    compiled = wh.compiled_slice_filter()
    assert "2024-06-01" in compiled and "2023-01-01" in compiled and "2024-05-01" not in compiled
    assert wh.query(f"select count(*) from {MONTHLY} where activity_month = '2023-01-01'") == [(0,)]
    assert_slices_add_up(wh)
    incremental = wh.features()
    assert_same_features(incremental, full_rebuild(wh, "2025-12"))
