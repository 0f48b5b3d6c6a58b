"""Resources: the warehouse and the dbt project, and the manifest they need at import.

`@dbt_assets` reads dbt's manifest when the code location is imported. Set-up, CI and
the tests build it (`segment-cadence parse`); if it is still missing or older than the
project files, it is built here, so importing the code location never fails for want of it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from importlib import metadata
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, DbtProject
from packaging import version

from segment_cadence.platform import paths, warehouse, warehouse_lock
from segment_cadence.platform.jobs import monthly_refresh_job
from segment_cadence.platform.reaper import PID_TAG, process_tags

# dbt reads the warehouse path and DuckDB's memory limit from the environment
# (dbt_project/profiles.yml).
os.environ.setdefault("SEGMENT_CADENCE_WAREHOUSE", str(paths.warehouse_path()))
os.environ.setdefault("SEGMENT_CADENCE_DUCKDB_MEMORY_LIMIT", warehouse.memory_limit())


def manifest_is_stale(project_dir: Path = paths.DBT_PROJECT_DIR) -> bool:
    manifest = project_dir / "target" / "manifest.json"
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [
        project_dir / "dbt_project.yml",
        *project_dir.rglob("*.sql"),
        *project_dir.rglob("*.yml"),
    ]
    return any(f.stat().st_mtime > built for f in sources if "target" not in f.parts and f.exists())


def build_manifest(project_dir: Path = paths.DBT_PROJECT_DIR) -> Path:
    """Run `dbt parse` in-process and return the manifest path."""
    from dbt.cli.main import dbtRunner

    os.environ.setdefault("SEGMENT_CADENCE_WAREHOUSE", str(paths.warehouse_path()))

    result = dbtRunner().invoke(
        ["parse", "--quiet", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    )
    if not result.success:
        raise RuntimeError(f"dbt parse failed: {result.exception}")
    return project_dir / "target" / "manifest.json"


def ensure_manifest(project_dir: Path = paths.DBT_PROJECT_DIR) -> Path:
    if manifest_is_stale(project_dir):
        build_manifest(project_dir)
    return project_dir / "target" / "manifest.json"


def prepare_partial_parse(warehouse_path: str, project_dir: Path = paths.DBT_PROJECT_DIR) -> None:
    """Re-parse once when the warehouse (part of dbt's profile) differs from the last parse.

    dagster-dbt starts each invocation from target/partial_parse.msgpack. dbt discards it
    when the rendered profile changed, and then re-parses the whole project on every run;
    parsing once for this warehouse lets every later run parse only what changed.
    """
    marker = project_dir / "target" / ".parsed_for_warehouse"
    os.environ["SEGMENT_CADENCE_WAREHOUSE"] = warehouse_path
    if (
        manifest_is_stale(project_dir)
        or not marker.exists()
        or marker.read_text() != warehouse_path
    ):
        build_manifest(project_dir)
        marker.write_text(warehouse_path)


ensure_manifest()

dbt_project = DbtProject(project_dir=paths.DBT_PROJECT_DIR, profiles_dir=paths.DBT_PROJECT_DIR)


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
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.path, read_only=read_only, wait=wait) as con:
            if not read_only:
                warehouse.ensure_schema(con)
            yield con


class CadenceDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource, without two costs paid in this process per run.

    - Before every dbt invocation dagster-dbt loads the dbt profile and project here and
      parses every macro (2-4 s, twice a month) for an adapter that serves only column
      metadata and row counts on request; these assets request neither.
    - To learn dbt's version it starts `dbt --version`, a whole dbt process (2-4 s); the
      dbt run here is the one installed beside this Python, whose version is known.
    The dbt processes that build the models are unchanged.
    """

    def _initialize_dbt_core_adapter(self, args):  # type: ignore[override]
        return None

    @cached_property
    def _cli_version(self) -> version.Version:  # type: ignore[override]
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            return version.parse(metadata.version("dbt-core"))
        return DbtCliResource._cli_version.func(self)


def dbt_executable() -> str:
    """dbt from this environment (the venv's bin), else whatever is on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def default_resources() -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(path=str(paths.warehouse_path())),
        "dbt": CadenceDbtCliResource(
            project_dir=dbt_project,
            profiles_dir=str(paths.DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
        ),
    }
