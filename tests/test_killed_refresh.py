"""A refresh killed with SIGKILL at any phase loses nothing, and the next one just works.

Each refresh is the real command (`segment-cadence refresh`) in its own process over a
small generated jeweller. SEGMENT_CADENCE_CRASH_AT makes the process kill itself, as
`kill -9` would, at a named point: loading a source, while dbt builds, inside the publish
transaction, halfway through the export. After each kill the published months and their
exports agree, no partial file is left where downstream tools read exports (a killed
export leaves its partial file in the staging folder beside them), and the next refresh
succeeds and tidies what the killed one wrote, without anyone cleaning up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from segment_cadence.platform import warehouse

REPO = Path(__file__).resolve().parent.parent
DECEMBER = date(2025, 12, 31)


@pytest.fixture(scope="module")
def home(published_november) -> Path:
    """300 generated customers over six months; November published by a first refresh
    (built once per session, tests/conftest.py)."""
    return published_november()


def refresh(home: Path, month: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {  # only this home's state: no setting another module left in this worker
        **{k: v for k, v in os.environ.items() if not k.startswith("SEGMENT_CADENCE_")},
        "PYTHONPATH": str(REPO),
        "SEGMENT_CADENCE_HOME": str(home),
        "SEGMENT_CADENCE_WAREHOUSE": str(home / "warehouse.duckdb"),
        "DAGSTER_HOME": str(home / "dagster_home"),
        "SEGMENT_CADENCE_DUCKDB_MEMORY_LIMIT": "1GB",  # as the refresh that built the home
    }
    env.pop("SLACK_BOT_TOKEN", None)
    if crash_at:
        env["SEGMENT_CADENCE_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "segment_cadence.cli", "refresh", "--month", month],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def published(home: Path) -> dict[date, tuple]:
    """Each published month: its record, and its export checked against its rows."""
    months = {}
    with warehouse.connect(home / "warehouse.duckdb", read_only=True) as con:
        records = con.execute(
            "select month_end, run_id, definition_version, export_path "
            "from published.publications order by 1"
        ).fetchall()
        for month_end, run_id, version, export in records:
            assert export and Path(export).exists(), f"{month_end}: export {export} missing"
            in_export = con.execute(
                f"select count(*), sum(hash(customer_id, segment_id)), "
                f"count(*) filter (where definition_version <> ?) from '{export}'",
                [version],
            ).fetchone()
            in_table = con.execute(
                "select count(*), sum(hash(customer_id, segment_id)), 0 "
                "from published.segment_membership where month_end = ?",
                [month_end],
            ).fetchone()
            assert in_export == in_table, f"{month_end}: the export and the table disagree"
            months[month_end] = (run_id, version, export, in_table)
    return months


def unfinished_runs(home: Path) -> list[str]:
    """Runs the local Dagster instance still believes are going."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        going = instance.get_runs(
            filters=dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]
            )
        )
    return [run.run_id for run in going]


def partial_exports(home: Path) -> list[Path]:
    """Half-written files where downstream tools read exports (never acceptable)."""
    tree = home / "exports" / "segment_membership"
    return [p for p in tree.rglob("*") if p.is_file() and p.suffix != ".parquet"]


def leftovers(home: Path) -> list[Path]:
    """Anything in the exports folder that no publication refers to."""
    referenced = {Path(r[2]) for r in published(home).values()}
    return [p for p in (home / "exports").rglob("*") if p.is_file() and p not in referenced]


@pytest.mark.parametrize("phase", ["ingest", "dbt", "publish_transaction", "export"])
def test_a_refresh_killed_at_any_phase_leaves_the_published_months_and_the_next_one_succeeds(
    home, phase
):
    before = published(home)
    if phase == "ingest":
        orders = home / "raw" / "orders.parquet"
        os.utime(orders)  # a new file to load: the refresh reaches the ingest transaction
    killed = refresh(home, "2025-12", crash_at=phase)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert published(home) == before
    assert partial_exports(home) == []

    recovered = refresh(home, "2025-12")
    assert recovered.returncode == 0, recovered.stderr[-3000:]
    assert "2025-12  published" in recovered.stdout
    after = published(home)
    assert set(after) == set(before) | {DECEMBER}
    assert after[DECEMBER][0] != before.get(DECEMBER, (None,))[0]
    assert leftovers(home) == []  # what the killed run wrote is tidied by the next one
    assert unfinished_runs(home) == []  # the dead run was marked failed, not left STARTED
