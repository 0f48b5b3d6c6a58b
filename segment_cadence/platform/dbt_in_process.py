"""dbt run inside this process, against the warehouse file a caller holds open.

DuckDB lets one process write a file. A plain module that holds the warehouse open and needs
a few dbt models built on it (the ingest rules, right after a file is landed) cannot start a
dbt process: that process could not open the file. dbt in this process opens the same
database instance instead (its profile passes no connection config, only settings), so the
models are built while the caller keeps its connection.

The parameters go through SEGMENT_CADENCE_DBT_VARS, as for the refresh
(dbt_project/macros/cadence_var.sql), so a new parameter value re-parses nothing; the parse
is kept apart from dagster-dbt's (its own target directory, `<DBT_TARGET_PATH>/in_process`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from dbt.cli.main import dbtRunner

from segment_cadence.platform import paths


class DbtBuildFailed(RuntimeError):
    """A model or test of the selection failed; the message names each with dbt's words."""


@dataclass(frozen=True)
class DbtBuild:
    """What to build: dbt selectors and the run's parameters."""

    select: tuple[str, ...]
    variables: dict[str, Any]


def database_path(con: duckdb.DuckDBPyConnection) -> str:
    """The file `con` is open on: the warehouse dbt is pointed at."""
    return con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()[0]


def target_path() -> Path:
    """dbt's target directory for in-process builds, beside dagster-dbt's."""
    return paths.DBT_PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target") / "in_process"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def failures(result: Any) -> list[str]:
    """One line per failed node of a dbt invocation, or its exception."""
    found = [
        f"{r.node.name}: {' '.join(str(r.message).split())}"
        for r in (result.result or [])
        if str(r.status) in ("error", "fail")
    ]
    if not found and result.exception is not None:
        found.append(" ".join(str(result.exception).split()))
    return found


def build(con: duckdb.DuckDBPyConnection, job: DbtBuild) -> None:
    """`dbt build` of the selection (its data tests included, unit tests left out) on the
    warehouse `con` is open on; raises DbtBuildFailed when anything fails."""
    project = str(paths.DBT_PROJECT_DIR)
    target = str(target_path())
    environment = {
        "SEGMENT_CADENCE_WAREHOUSE": database_path(con),
        "SEGMENT_CADENCE_DBT_VARS": json.dumps(job.variables),
    }
    with _environment(environment):
        result = dbtRunner().invoke(
            [
                "build",
                "--quiet",
                "--exclude-resource-type",
                "unit_test",
                "--select",
                *job.select,
                "--project-dir",
                project,
                "--profiles-dir",
                project,
                "--target-path",
                target,
                "--log-path",
                target,
            ]
        )
    if not result.success:
        raise DbtBuildFailed("; ".join(failures(result)) or "dbt build failed")
