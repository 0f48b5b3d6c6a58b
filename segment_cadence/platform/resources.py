"""Resources: the warehouse and the dbt project, and the manifest they need at import.

`@dbt_assets` reads dbt's manifest when the code location is imported. The manifest is
prepared the dagster-dbt way: `DbtProject.prepare_if_dev()` re-parses on load under
`dagster dev`, and everywhere else dagster-dbt's own preparer (`dbt parse`) runs when the
manifest is missing or older than the project files. Set-up, CI and the tests prepare it
ahead (`segment-cadence parse`, or `dagster-dbt project prepare-and-package --file
segment_cadence/platform/resources.py`), so importing the code location never fails for
want of it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, DbtProject
from pydantic import PrivateAttr

from segment_cadence.platform import dbt_in_process, paths, warehouse, warehouse_lock
from segment_cadence.platform.jobs import monthly_refresh_job
from segment_cadence.platform.reaper import PID_TAG, process_tags

T = TypeVar("T")

# dbt reads the warehouse path and DuckDB's memory limit from the environment
# (dbt_project/profiles.yml).
os.environ.setdefault("SEGMENT_CADENCE_WAREHOUSE", str(paths.warehouse_path()))
os.environ.setdefault("SEGMENT_CADENCE_DUCKDB_MEMORY_LIMIT", warehouse.memory_limit())

# dbt is the one installed beside this Python (the venv's bin), also when that bin is not on
# PATH (`.venv/bin/python -m ...`, `.venv/bin/dagster dev`): dagster-dbt's preparer and
# resource run the `dbt` they find on PATH.
ENVIRONMENT_BIN = Path(sys.executable).parent
if (ENVIRONMENT_BIN / "dbt").exists() and str(ENVIRONMENT_BIN) not in os.environ.get(
    "PATH", ""
).split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([str(ENVIRONMENT_BIN), os.environ.get("PATH", "")])

# dbt's own DBT_TARGET_PATH (relative to the project, default "target") says where the
# manifest and partial-parse file are prepared; dagster-dbt reads it too, for each run's own
# target directory. Two processes refreshing two warehouses side by side (the test suite's
# workers) each set their own, so neither re-parses for the other's warehouse.
dbt_project = DbtProject(
    project_dir=paths.DBT_PROJECT_DIR,
    profiles_dir=paths.DBT_PROJECT_DIR,
    target_path=os.environ.get("DBT_TARGET_PATH", "target"),
)


def project_files(project: DbtProject = dbt_project) -> list[Path]:
    """The files whose change means a new parse (dbt_in_process.project_files)."""
    return dbt_in_process.project_files(Path(project.project_dir))


def manifest_is_stale(project: DbtProject = dbt_project) -> bool:
    """No manifest yet, or a model, macro or yml file changed since it was prepared."""
    return dbt_in_process.manifest_is_stale(project.manifest_path, Path(project.project_dir))


def prepare_dbt_project(warehouse_path: str | None = None) -> Path:
    """Prepare the manifest with dagster-dbt's preparer when it is missing or stale, or when
    the warehouse (or target, or Spark schema) differs from the one it was parsed for, which
    is recorded beside it; return the manifest path.

    The warehouse path is part of dbt's rendered profile, and dbt discards its partial-parse
    file (target/partial_parse.msgpack, which dagster-dbt copies into each run's own target
    directory) when the profile changed: every run would then parse the whole project again.
    Preparing once for this warehouse lets every later run parse only what changed, and
    the builds in the run's process read this manifest instead of parsing at all
    (dbt_in_process.parsed_manifest).
    """
    warehouse_path = warehouse_path or os.environ["SEGMENT_CADENCE_WAREHOUSE"]
    os.environ["SEGMENT_CADENCE_WAREHOUSE"] = warehouse_path
    target = Path(dbt_project.project_dir) / dbt_project.target_path
    identity = dbt_in_process.parse_identity()
    if manifest_is_stale() or dbt_in_process.prepared_for(target) != identity:
        dbt_project.preparer.prepare(dbt_project)
        dbt_in_process.record_prepared_for(target, identity)
    return dbt_project.manifest_path


# Under `dagster dev` dagster-dbt re-parses on every load; elsewhere only when needed.
dbt_project.prepare_if_dev()
if manifest_is_stale():
    prepare_dbt_project()


def run_activity(run: dg.DagsterRun) -> tuple[str, str | None]:
    """How a run is named to whoever waits for its turn, and the months it refreshes."""
    partition = run.tags.get("dagster/partition")
    if run.job_name == monthly_refresh_job.name and partition:
        return warehouse_lock.refresh_activity(partition[:7]), partition[:7]
    return f"the {run.job_name} run" + (f" for {partition}" if partition else ""), None


# Every asset and asset check that reads or writes the warehouse is in this Dagster
# concurrency pool, limited to one step at a time by the instance (orchestration/dagster.yaml,
# `concurrency.pools.default_limit: 1`). The pool is on the assets themselves, so it holds
# whatever starts the run: the schedule, a job launched from the UI, a single-asset
# Materialize or a backfill from an asset page (an implicit asset job with none of our job
# tags), or the CLI. The writer lock in WarehouseResource keeps a whole run to itself.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse. Hands out one short-lived connection per unit of work, and
    holds the writer's turn for each run that uses it (segment_cadence.platform.warehouse_lock)."""

    path: str

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[WarehouseResource]:
        """A run that uses the warehouse holds the writer's turn from its first step to its
        last, however it was launched: the jobs (which the run queue also keeps to one at a
        time) and assets materialized by hand from the UI (which it does not). A CLI refresh
        has taken the turn already, in this same process: then this is the same turn again,
        never a wait for itself. Outside a run (a sensor) no turn is taken here.

        The run is also tagged with its process, if the launcher did not, so that the dead-run
        reaper can fail it should the process die.
        """
        run = context.dagster_run
        if run is None:
            yield self
            return
        if context.instance is not None and PID_TAG not in run.tags:
            context.instance.add_run_tags(run.run_id, process_tags())
        activity, months = run_activity(run)
        with warehouse_lock.writer(
            activity,
            warehouse_path=self.path,
            months=months,
            run_id=run.run_id,
            on_wait=context.log.info if context.log else None,
        ):
            yield self

    @contextmanager
    def connect(
        self, read_only: bool = False, wait: float | None = None
    ) -> Iterator[warehouse.WarehouseConnection]:
        """The warehouse of the target in use (SEGMENT_CADENCE_DBT_TARGET): the DuckDB file,
        or a session on the Spark endpoint that takes the same SQL."""
        with warehouse.connect_target(self.path, read_only=read_only, wait=wait) as con:
            yield con

    @contextmanager
    def front_door(self, con: warehouse.WarehouseConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        """Where files are landed as they are: the warehouse itself on DuckDB; on Spark the
        DuckDB file at `path`, from which the landed tables travel to Spark."""
        if not warehouse.on_spark(con):
            yield con
            return
        with warehouse.connect(self.path) as front:
            warehouse.ensure_schema(front)
            yield front


class ConfigFiles(dg.ConfigurableResource):
    """The configuration files (config/segments.yaml, thresholds.yaml, governance.yaml,
    sources.yaml), each read once per run, on first use, and handed to every asset of the
    run that asks: all steps of a run see the same file, even if it is edited mid-run, and
    none reads it again. A run is one resource initialisation (the jobs run in process).

    The loader is the plain module's own (`segment_dictionary.load`, `thresholds.load`, ...),
    named by the asset, so this platform piece imports no domain room.
    """

    _loaded: dict[str, Any] = PrivateAttr(default_factory=dict)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._loaded = {}

    def once(self, name: str, load: Callable[[], T]) -> T:
        """The file `name` as `load` reads it, read on the run's first call only."""
        if name not in self._loaded:
            self._loaded[name] = load()
        return self._loaded[name]


def default_resources() -> dict[str, object]:
    return {
        "config_files": ConfigFiles(),
        "warehouse": WarehouseResource(path=str(paths.warehouse_path())),
        "dbt": DbtCliResource(project_dir=dbt_project),
    }
