"""The warehouse: short-lived DuckDB connections and the schemas Python owns; and, with
SEGMENT_CADENCE_DBT_TARGET=spark, a Spark session in their place (connect_target) with the
few operations whose spelling differs by engine.

DuckDB allows one writer per file, so nothing here keeps a connection open: every caller
opens one, does its work and closes it (`connect()` is a context manager). Runs and commands
that write take turns through the writer lock (segment_cadence/platform/warehouse_lock.py); DuckDB's
own file lock can still be met (a dbt process orphaned by a killed run, another tool reading
the file), so opening the file waits for it, for a bounded time, rather than failing at once.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from segment_cadence.platform import paths, spark_warehouse
from segment_cadence.platform.spark_warehouse import DuckDBDialectSession, SparkWarehouse

# Python declares no tables here. Every table in the warehouse is a dbt model
# (dbt_project/models: the ingest rules, the build, the BG/NBD parameters and the dictionary
# fed by vars, the published store, ledger and views, the analysis tables); the governance
# records and the rest of the operational state live in the state store
# (segment_cadence/platform/state_store.py); the ingest front door lands files as they are in
# `landing`. The schemas exist from the start so that a first read finds them.
SCHEMAS = (
    "landing",
    "raw",
    "quarantine",
    "churn",
    "governance",
    "build",
    "staging",
    "published",
    "strategic",
)


# What the Python side is handed for the warehouse: a DuckDB connection, or on Spark a session
# that takes the same DuckDB SQL (spark_warehouse.DuckDBDialectSession). The few operations
# that are not one SQL statement for both (whether a table exists, a Parquet export, rows
# from Python as a table) are the functions below, each with one branch per engine.
WarehouseConnection = duckdb.DuckDBPyConnection | SparkWarehouse


def target() -> str:
    """The engine in use: dbt's target (dbt_project/profiles.yml reads the same variable),
    so dbt and the Python side always work on the same warehouse."""
    return os.environ.get("SEGMENT_CADENCE_DBT_TARGET", "duckdb")


def on_spark(con: WarehouseConnection) -> bool:
    return isinstance(con, SparkWarehouse)


def memory_limit() -> str:
    """DuckDB's memory limit for the warehouse, in Python and in dbt alike.

    SEGMENT_CADENCE_DUCKDB_MEMORY_LIMIT (for example "8GB") when set, else 40 % of the
    machine's memory. DuckDB spills to disk beyond it (next to the warehouse file), so a
    refresh of 10 million customers stays within a fixed budget on a shared machine rather
    than taking DuckDB's default of 80 %.
    """
    configured = os.environ.get("SEGMENT_CADENCE_DUCKDB_MEMORY_LIMIT")
    if configured:
        return configured
    import psutil

    return f"{int(psutil.virtual_memory().total * 0.4 / 2**20)}MB"


class WarehouseBusy(RuntimeError):
    """Another process has the warehouse and did not let go in time. The message is one line
    for the person at the terminal: who has it, and what to do."""


class NoWarehouse(RuntimeError):
    """A read found no warehouse file: nothing has been refreshed there yet."""


DEFAULT_LOCK_TIMEOUT_SECONDS = 300.0


def lock_timeout() -> float:
    """How long opening the warehouse waits for DuckDB's file lock, in seconds.

    SEGMENT_CADENCE_LOCK_TIMEOUT when set, else five minutes: long enough for a dbt process
    orphaned by a killed run to finish, short enough that a stuck holder is reported.
    """
    configured = os.environ.get("SEGMENT_CADENCE_LOCK_TIMEOUT")
    return float(configured) if configured else DEFAULT_LOCK_TIMEOUT_SECONDS


def is_lock_conflict(error: BaseException) -> bool:
    """DuckDB's refusal because another process holds the file (not any other I/O error)."""
    return isinstance(error, duckdb.IOException) and "Could not set lock" in str(error)


def lock_conflict_message(target: Path, error: BaseException, waited: float) -> str:
    """One line naming the file and the holder. DuckDB's own text suggests read-only mode,
    which would only mislead here: the holder is the problem, not the mode."""
    found = re.search(r"\(PID (\d+)\)", str(error))
    holder = f"another process (pid {found.group(1)})" if found else "another process"
    return (
        f"the warehouse {target} is locked by {holder}; waited {waited:.0f}s for it to let go; "
        "try again when it finishes"
    )


def open_waiting(target: Path, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    """duckdb.connect, retried while another process holds the file, for up to `wait` s."""
    deadline = time.monotonic() + wait
    pause = 0.05
    while True:
        try:
            return duckdb.connect(str(target), read_only=read_only)
        except duckdb.IOException as error:
            if read_only and "database does not exist" in str(error):
                raise NoWarehouse(
                    f"no warehouse at {target} yet: run `segment-cadence refresh` first"
                ) from None
            if not is_lock_conflict(error):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WarehouseBusy(lock_conflict_message(target, error, wait)) from None
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 1.0)


@contextmanager
def connect(
    path: Path | str | None = None, read_only: bool = False, wait: float | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for one unit of work and always close it.

    While another process holds DuckDB's lock on the file, opening waits up to `wait`
    seconds (default: lock_timeout()) and then raises WarehouseBusy.
    """
    target = Path(path) if path else paths.warehouse_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    con = open_waiting(target, read_only, lock_timeout() if wait is None else wait)
    try:
        # A setting rather than connection config, which would clash with another
        # connection to the same file in this process (dbt run in-process, for one).
        con.execute(f"set memory_limit = '{memory_limit()}'")
        yield con
    finally:
        con.close()


@contextmanager
def connect_target(
    path: Path | str | None = None, read_only: bool = False, wait: float | None = None
) -> Iterator[WarehouseConnection]:
    """The warehouse of the target in use for one unit of work: the DuckDB file at `path`,
    or a session on the Spark endpoint (SparkEndpoint.from_env) that takes the same SQL.
    The schemas exist when it is opened for writing."""
    if target() != "spark":
        with connect(path, read_only=read_only, wait=wait) as con:
            if not read_only:
                ensure_schema(con)
            yield con
        return
    with spark_warehouse.connect(session=DuckDBDialectSession) as session:
        if not read_only:
            ensure_schema(session)
        yield session


def ensure_schema(con: WarehouseConnection) -> None:
    """Create the schemas if they do not exist (idempotent); on Spark, their databases."""
    if on_spark(con):
        con.ensure_databases(SCHEMAS)
        return
    for schema in SCHEMAS:
        con.execute(f"create schema if not exists {schema}")


def table_exists(con: WarehouseConnection, schema: str, table: str) -> bool:
    if on_spark(con):
        return con.table_exists(schema, table)
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])


def land_from(
    front: duckdb.DuckDBPyConnection, con: WarehouseConnection, schema: str, table: str
) -> None:
    """A table of the DuckDB front door (where files are landed) made readable in `con`:
    nothing to do on DuckDB, where the two are one database; on Spark it travels as
    Parquet (SparkWarehouse.land)."""
    if on_spark(con):
        con.land(front, schema, table)


def export_parquet(con: WarehouseConnection, sql: str, params: list, target: Path) -> None:
    """A query's result as one Parquet file at `target` (zstd), its order kept."""
    if on_spark(con):
        con.export_parquet_file(sql, params, target)
        return
    con.execute(
        f"copy ({sql}) to '{str(target).replace(chr(39), chr(39) * 2)}' "
        "(format parquet, compression zstd)",
        params,
    )


def replace_table(con: WarehouseConnection, schema: str, table: str, data: pa.Table) -> None:
    """<schema>.<table> replaced by rows held in Python (the state store's copies the
    analytics read in SQL): a DuckDB table, or on Spark a view over a Parquet file."""
    if on_spark(con):
        con.land_arrow(schema, table, data)
        return
    con.execute(f"create schema if not exists {schema}")
    con.execute(f"create or replace table {schema}.{table} as select * from data")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One unit of work on the warehouse: committed whole when the block ends, rolled back if
    it raises (a crash point, a failed insert), so readers never see half of it."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
