"""Dead runs are noticed; commands wait their turn (issue 11, section 3).

The CLI runs as an operator would run it: separate processes on one small warehouse (300
customers, six months), started at once, killed with SIGKILL, or meeting an open read-only
connection from another tool.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

from segment_cadence.platform.instance_storage import instance_yaml
from tests import commands

REPO = Path(__file__).resolve().parent.parent
MONTH = "2025-12"
CAMPAIGN = (
    "name: New year edit\nsender: S001\nchannel: email\nplanned_at: 2026-01-08T10:00\n"
    "target_segments: [loyal_repeat, evaluation]\n"
)
BUSY_LINE = re.compile(r"^the warehouse is being refreshed \(2025-12, pid \d+\); try again")


@dataclass
class Command:
    """A CLI process, its output going to files (a full pipe would stall it)."""

    process: subprocess.Popen
    out: Path
    err: Path

    def finish(self, timeout: float = 240) -> subprocess.CompletedProcess:
        try:
            code = self.process.wait(timeout)
        finally:
            kill_group(self.process)
        return subprocess.CompletedProcess(
            self.process.args, code, self.out.read_text(), self.err.read_text()
        )


def kill_group(process: subprocess.Popen) -> None:
    """End whatever the command left behind (a dbt orphaned by a kill): its own session."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


_counter = iter(range(10_000))


def start(home: Path, *args: str, **extra: str) -> Command:
    n = next(_counter)
    out, err = home / "logs" / f"{n}.out", home / "logs" / f"{n}.err"
    out.parent.mkdir(exist_ok=True)
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "segment_cadence.cli", *args],
            env=commands.cli_env(home, **extra),
            stdout=stdout,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    return Command(process, out, err)


def cli(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return start(home, *args, **extra).finish()


def instance(home: Path) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(home / "dagster_home"))


def run_ids(output: str) -> list[str]:
    return re.findall(r"run ([0-9a-f]{8})\)", output)


def refresh_notices(home: Path, run_id_prefix: str) -> list[dict]:
    outbox = home / "outbox" / "notices.jsonl"
    lines = outbox.read_text().splitlines() if outbox.exists() else []
    return [
        n
        for n in map(json.loads, lines)
        if n["kind"] == "refresh_failed" and n["details"]["run_id"].startswith(run_id_prefix)
    ]


def wait_for_started_run(home: Path, command: Command, known: set[str]) -> dg.DagsterRun:
    """The refresh's run, once Dagster records it as STARTED (the command is then mid-run)."""
    deadline = time.monotonic() + 120
    with instance(home) as dagster:
        while time.monotonic() < deadline:
            assert command.process.poll() is None, command.finish()
            for run in dagster.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
                if run.run_id not in known:
                    return run
            time.sleep(0.2)
    pytest.fail("the refresh never started a run")


def all_run_ids(home: Path) -> set[str]:
    with instance(home) as dagster:
        return {r.run_id for r in dagster.get_runs()}


@pytest.fixture(scope="module")
def home(published_november) -> Iterator[Path]:
    """A small jeweller with November published, so reads have something to read (built
    once per session by the real command, tests/conftest.py)."""
    home = published_november()
    (home / "campaign.yaml").write_text(CAMPAIGN)
    yield home


def test_the_local_instance_monitors_runs(tmp_path):
    """The instance the CLI and `make ui` create: run monitoring on, the warehouse queue kept."""
    (tmp_path / "dagster.yaml").write_text(instance_yaml(tmp_path))
    with dg.DagsterInstance.from_config(str(tmp_path)) as dagster:
        assert dagster.run_monitoring_enabled
        assert dagster.run_monitoring_max_resume_run_attempts == 0
        assert 0 < dagster.run_monitoring_poll_interval_seconds <= 60
        assert type(dagster.run_coordinator).__name__ == "QueuedRunCoordinator"


def test_two_refreshes_started_at_once_both_succeed_one_after_the_other(home):
    commands = [start(home, "refresh", "--month", MONTH) for _ in range(2)]
    results = [c.finish() for c in commands]
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
    waited = [r for r in results if "waiting for the refresh of 2025-12 (pid" in r.stdout]
    assert len(waited) == 1, [r.stdout for r in results]
    assert re.search(
        r"waiting for the refresh of 2025-12 \(pid \d+, started \d\d:\d\d:\d\d\) "
        r"to finish\.\.\.",
        waited[0].stdout,
    )
    prefixes = [run_ids(r.stdout)[0] for r in results]
    with instance(home) as dagster:
        records = [
            r for r in dagster.get_run_records(limit=10) if r.dagster_run.run_id[:8] in prefixes
        ]
    assert len(records) == 2
    first, second = sorted(records, key=lambda r: r.start_time)
    assert second.start_time >= first.end_time  # one after the other, not side by side


def test_read_commands_during_a_refresh_wait_and_say_so_in_one_line(home):
    refresh = start(home, "refresh", "--month", MONTH)
    wait_for_started_run(home, refresh, all_run_ids(home))
    campaign = str(home / "campaign.yaml")
    reads = [
        start(home, *args, SEGMENT_CADENCE_COMMAND_WAIT="1")
        for args in (
            ["sizes"],
            ["alerts", "list"],
            ["campaign", "check", campaign],
            ["audit", "customer", "C00000001"],
            ["alerts", "run"],
        )
    ]
    results = [r.finish() for r in reads]
    refreshed = refresh.finish()
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    for result in results:
        assert "Traceback" not in result.stderr, result.stderr
        if result.returncode == 2:
            assert BUSY_LINE.match(result.stderr) and len(result.stderr.splitlines()) == 1
        else:  # it ran before or after the refresh wrote: 3 is a blocked campaign
            assert result.returncode in (0, 3), result.args[-3:]
            assert not result.stderr.strip(), result.stderr


def test_a_read_command_waits_briefly_for_a_refresh_then_says_so(home):
    """Deterministic: a process holds the refresh's turn while `sizes` asks for the warehouse."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom segment_cadence.platform import warehouse_lock\n"
            "with warehouse_lock.writer('the refresh of 2025-12', months='2025-12'):\n"
            "    print('holding', flush=True); time.sleep(60)",
        ],
        env=commands.cli_env(home),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        result = cli(home, "sizes", SEGMENT_CADENCE_COMMAND_WAIT="2")
        waited = time.monotonic() - started
        assert result.returncode == 2
        assert result.stderr == (
            f"the warehouse is being refreshed (2025-12, pid {holder.pid}); "
            "try again when it finishes\n"
        )
        assert waited >= 2
        # A kill -9 of the holder frees the turn at once: the next read goes through.
        kill_group(holder)
        again = cli(home, "sizes", SEGMENT_CADENCE_COMMAND_WAIT="2")
        assert again.returncode == 0, again.stderr
        assert "Segment sizes" in again.stdout
    finally:
        kill_group(holder)


def test_a_refresh_waits_for_an_open_read_only_connection(home):
    reader = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        refresh = start(home, "refresh", "--month", MONTH)
        deadline = time.monotonic() + 8  # today it fails 1.4 s into its run
        while time.monotonic() < deadline and refresh.process.poll() is None:
            time.sleep(0.2)
        assert refresh.process.poll() is None, refresh.finish()
    finally:
        reader.close()
    result = refresh.finish()
    assert result.returncode == 0, result.stdout + result.stderr


def test_opening_a_held_warehouse_waits_then_names_the_file_and_the_holder(home):
    """DuckDB's own lock (held by another tool here): a bounded wait, then one plain line."""
    reader = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    script = (
        "import sys\nfrom segment_cadence.platform import warehouse\n"
        "try:\n    with warehouse.connect(): pass\n"
        "except Exception as error:\n    print(type(error).__name__); print(error)\n"
    )
    try:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", script],
            env=commands.cli_env(home, SEGMENT_CADENCE_LOCK_TIMEOUT="2"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        waited = time.monotonic() - started
    finally:
        reader.close()
    kind, message = result.stdout.splitlines()
    assert kind == "WarehouseBusy"
    assert str(home / "warehouse.duckdb") in message
    assert f"locked by another process (pid {os.getpid()})" in message
    assert "read-only" not in message
    assert waited >= 2


def test_a_killed_refresh_is_marked_failed_and_noticed_once(home, monkeypatch):
    refresh = start(home, "refresh", "--month", MONTH)
    run = wait_for_started_run(home, refresh, all_run_ids(home))
    time.sleep(1.0)
    refresh.process.send_signal(signal.SIGKILL)  # kill -9 of the CLI process only
    refresh.process.wait()
    try:
        with instance(home) as dagster:
            assert dagster.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        following = cli(home, "refresh", "--month", MONTH)
    finally:
        kill_group(refresh.process)
    assert following.returncode == 0, following.stdout + following.stderr
    assert f"run {run.run_id[:8]} was left unfinished by a process that died" in following.stdout
    with instance(home) as dagster:
        dead = dagster.get_run_by_id(run.run_id)
        assert dead.status == dg.DagsterRunStatus.FAILURE
        failure = dagster.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert f"(pid {refresh.process.pid} on " in failure[-1].dagster_event.message
        assert "died" in failure[-1].dagster_event.message
        # The daemon's sensor, ticking afterwards, finds nothing more to do.
        from segment_cadence.defs.alerting.sensors import dead_run_reaper

        monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(home))
        skipped = dead_run_reaper(dg.build_sensor_context(instance=dagster))
        assert skipped.skip_message == "no dead runs on this host"
    notices = refresh_notices(home, run.run_id)
    assert len(notices) == 1
    assert notices[0]["details"]["month"] == "2025-12-01"


def test_the_reaper_sensor_fails_a_dead_run_and_the_notice_is_written_once(tmp_path, monkeypatch):
    """With the daemon running: the sensor reaps, and the run-failure sensor's notice for the
    same run adds nothing."""
    from segment_cadence.defs.alerting.outbox import record_refresh_failure
    from segment_cadence.defs.alerting.sensors import dead_run_reaper
    from segment_cadence.platform.jobs import monthly_refresh_job
    from segment_cadence.platform.reaper import process_tags

    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    tags = {
        **process_tags(),
        "segment_cadence/pid": str(gone.pid),
        "dagster/partition": "2025-12-01",
    }
    alive_tags = {**process_tags(), "dagster/partition": "2025-11-01"}
    with dg.DagsterInstance.ephemeral() as dagster:
        dead = dagster.add_run(
            dg.DagsterRun(
                job_name=monthly_refresh_job.name,
                run_id="dead-run",
                status=dg.DagsterRunStatus.STARTED,
                tags=tags,
            )
        )
        live = dagster.add_run(
            dg.DagsterRun(
                job_name=monthly_refresh_job.name,
                run_id="live-run",
                status=dg.DagsterRunStatus.STARTED,
                tags=alive_tags,
            )
        )
        result = dead_run_reaper(dg.build_sensor_context(instance=dagster))
        assert result.skip_message == "marked failed: dead-run"
        assert dagster.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
        assert dagster.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
        record_refresh_failure(dead.run_id, "2025-12-01", [], "seen by the run-failure sensor")
        again = dead_run_reaper(dg.build_sensor_context(instance=dagster))
        assert again.skip_message == "no dead runs on this host"
    assert len(refresh_notices(tmp_path, "dead-run")) == 1


def test_a_failed_cli_refresh_writes_the_failure_notice_once(home, tmp_path, monkeypatch):
    # An order log that reads well for as long as anyone samples it and breaks further on
    # (a line with more fields than the header), so the refresh starts and its ingest step
    # fails. (A missing file no longer starts a run: the CLI refuses it first, exit 4.)
    sources = yaml.safe_load((REPO / "config" / "sources.yaml").read_text())
    lines = ["order_line_id,order_id,customer_id,order_date,amount,category"]
    lines += [f"L{i},O{i},C{i % 7},2025-11-{i % 28 + 1:02d},10.0,rings" for i in range(30_000)]
    (tmp_path / "orders.csv").write_text("\n".join([*lines, "L,O,C,2025-11-02,1,rings,extra"]))
    sources["sources"]["orders"]["path"] = str(tmp_path / "orders.csv")
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources))
    result = cli(
        home, "refresh", "--month", MONTH, SEGMENT_CADENCE_SOURCES=str(tmp_path / "sources.yaml")
    )
    assert result.returncode == 1
    assert "step raw__orders: source 'orders': cannot read" in result.stderr
    [prefix] = run_ids(result.stdout)
    [notice] = refresh_notices(home, prefix)
    assert notice["details"]["month"] == "2025-12-01"
    assert "raw__orders" in notice["details"]["failed_steps"]
    assert notice["details"]["error"].startswith("raw__orders: source 'orders': cannot read")
    # Should a daemon's run-failure sensor see the run too, it writes nothing more.
    from segment_cadence.defs.alerting.outbox import record_refresh_failure

    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(home))
    record_refresh_failure(notice["details"]["run_id"], "2025-12-01", ["raw__orders"], "again")
    assert len(refresh_notices(home, prefix)) == 1


def test_a_run_holds_the_writers_turn_and_takes_it_again_without_waiting(tmp_path):
    """A run launched from the UI takes the turn in WarehouseResource; inside a CLI refresh,
    which holds it already, the same process takes it again rather than wait for itself."""
    from segment_cadence.platform import warehouse_lock
    from segment_cadence.platform.jobs import WAREHOUSE_TAG
    from segment_cadence.platform.reaper import PID_TAG
    from segment_cadence.platform.resources import WarehouseResource

    db = tmp_path / "warehouse.duckdb"
    seen = []

    @dg.asset(required_resource_keys={"warehouse"})
    def look(context) -> None:
        seen.append(warehouse_lock.read_holder(warehouse_lock.lock_file(db)))
        with context.resources.warehouse.connect() as con:
            con.execute("select 1")

    job = dg.define_asset_job(
        "writes", selection=[look], tags=WAREHOUSE_TAG, executor_def=dg.in_process_executor
    )
    defs = dg.Definitions(
        assets=[look], jobs=[job], resources={"warehouse": WarehouseResource(path=str(db))}
    )
    with dg.DagsterInstance.ephemeral() as dagster:
        result = defs.resolve_job_def("writes").execute_in_process(instance=dagster)
        assert result.success
        assert seen[0].pid == os.getpid() and seen[0].run_id == result.run_id
        assert dagster.get_run_by_id(result.run_id).tags[PID_TAG] == str(os.getpid())
        with warehouse_lock.writer("the refresh of 2025-12", warehouse_path=db, months="2025-12"):
            again = defs.resolve_job_def("writes").execute_in_process(instance=dagster)
        assert again.success
        assert seen[1].activity == "the refresh of 2025-12"  # the CLI's turn, taken again
    assert warehouse_lock.lock_file(db).read_text() == ""  # let go: nobody holds it


def test_every_asset_and_check_is_in_the_warehouse_pool(tmp_path):
    """The pool is on the assets, so it holds whatever starts the run: a Materialize click or a
    backfill from an asset page runs an implicit asset job that carries none of our tags."""
    from segment_cadence.definitions import defs
    from segment_cadence.platform.resources import WAREHOUSE_POOL

    graph = defs.resolve_asset_graph()
    steps = {graph.assets_def_for_key(key) for key in graph.get_all_asset_keys()}
    steps |= {graph.assets_def_for_key(key) for key in graph.asset_check_keys}
    pools = {step.op.name: step.op.pool for step in steps if step.is_executable}
    # The outbox's delivery check reads the state store only, never the warehouse, so it
    # must not wait behind a refresh (as the alerting sensor does not).
    assert pools.pop("alerting__outbox_alerts_are_delivered") is None
    assert pools and set(pools.values()) == {WAREHOUSE_POOL}, pools
    (tmp_path / "dagster.yaml").write_text(instance_yaml(tmp_path))
    with dg.DagsterInstance.from_config(str(tmp_path)) as dagster:
        assert dagster.get_concurrency_config().pool_config.default_pool_limit == 1


MATERIALIZE_ONE_ASSET = """
import dagster as dg
from segment_cadence.definitions import defs

key = dg.AssetKey(["raw", "customers"])
job = defs.resolve_implicit_job_def_def_for_assets([key])
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(asset_selection=[key], instance=instance)
print("materialized", result.success, result.run_id, flush=True)
"""


def test_an_asset_materialized_during_a_refresh_waits_its_turn_and_succeeds(home):
    """What a Materialize click on an asset page does while the monthly refresh runs."""
    refresh = start(home, "refresh", "--month", MONTH)
    running = wait_for_started_run(home, refresh, all_run_ids(home))
    materialize = subprocess.run(
        [sys.executable, "-c", MATERIALIZE_ONE_ASSET],
        env=commands.cli_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    refreshed = refresh.finish()
    assert refreshed.returncode == 0, refreshed.stdout + refreshed.stderr
    assert materialize.returncode == 0, materialize.stderr[-3000:]
    assert "IOException" not in materialize.stderr
    done = re.search(r"materialized (True|False) ([0-9a-f-]{36})", materialize.stdout)
    assert done and done.group(1) == "True", materialize.stdout + materialize.stderr[-2000:]
    with instance(home) as dagster:
        first = dagster.get_run_record_by_id(running.run_id)
        second = dagster.get_run_record_by_id(done.group(2))
        events = dagster.all_logs(second.dagster_run.run_id)
    assert first.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    step_started = min(
        e.timestamp for e in events if e.dagster_event and e.dagster_event.is_step_start
    )
    assert step_started >= first.end_time  # it waited for the refresh, then ran


def test_a_cli_refresh_shows_on_its_jobs_page(home):
    """A refresh started from the CLI is a run of the code location's job, as one launched
    from the webserver: found by the query behind the job's page (the job's name and the
    repository label of `segment_cadence`), with the remote origin of that code location."""
    with instance(home) as dagster:
        on_the_jobs_page = dagster.get_runs(
            dg.RunsFilter(
                job_name="monthly_refresh",
                tags={REPOSITORY_LABEL_TAG: "__repository__@segment_cadence"},
            )
        )
        first = [r for r in on_the_jobs_page if r.tags.get("dagster/partition") == "2025-11-01"]
        assert first, "the CLI refresh of the home fixture is not on the job's page"
        origin = first[-1].remote_job_origin
        assert origin is not None
        assert origin.job_name == "monthly_refresh"
        assert origin.repository_origin.repository_name == "__repository__"
        location = origin.repository_origin.code_location_origin
        assert location.location_name == "segment_cadence"
        assert location.loadable_target_origin.module_name == "segment_cadence.definitions"
