"""The DuckDB warehouse: short-lived connections and the schemas Python owns.

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

from segment_cadence.platform import paths

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

# Tables owned by Python (not dbt). The ingest's tables (raw.*, quarantine.rejected_rows and
# the bookkeeping raw._loads, raw._month_fingerprints) are dbt models: dbt_project/models/ingest.
# Published tables mirror the dbt marts column for column;
# publish inserts BY NAME so column order does not matter.
DDL = (
    """
    create table if not exists churn.bgnbd_params (
        month_end date, r double, alpha double, a double, b double, log_likelihood double,
        n_customers bigint, converged boolean, fitted_at timestamp
    )
    """,
    """
    create table if not exists governance.segment_dictionary (
        definition_version varchar, segment_id varchar, segment_name varchar, description varchar,
        owner varchar, priority integer, rule varchar, paused boolean, pause_reason varchar,
        min_size integer, status varchar, is_fallback boolean
    )
    """,
    """
    create table if not exists published.segment_membership (
        customer_id varchar, month_end date, segment_id varchar, definition_version varchar,
        previous_segment_id varchar, months_in_segment integer
    )
    """,
    """
    create table if not exists published.segment_transitions (
        month_end date, from_segment_id varchar, to_segment_id varchar, customers bigint
    )
    """,
    """
    create table if not exists published.segment_kpis (
        month_end date, segment_id varchar, segment_name varchar, paused boolean,
        customers bigint, share double, revenue_this_month double, revenue_365d double,
        avg_lifetime_value double, avg_churn_likelihood double, avg_engagement_events_90d double,
        campaign_response_rate double, avg_months_in_segment double, previous_customers bigint,
        stayed bigint, moved_in bigint, moved_out bigint, new_customers bigint,
        retention_rate double
    )
    """,
    """
    create table if not exists governance.definition_versions (
        definition_version varchar, version_number integer, governed_digest varchar,
        author varchar, reason varchar, approved_by varchar, approved_at varchar,
        recorded_at timestamp
    )
    """,
    """
    create table if not exists governance.changelog (
        entry_id varchar, recorded_at timestamp, kind varchar, version_label varchar,
        definition_version varchar, month_end date, summary varchar
    )
    """,
    """
    create table if not exists governance.retired_segments (
        segment_id varchar, segment_name varchar, rationale varchar, retired_in_version varchar,
        last_size bigint, last_published_month date, recorded_at timestamp
    )
    """,
    """
    create table if not exists published.publications (
        month_end date, definition_version varchar, customers bigint, published_at timestamp,
        run_id varchar, export_path varchar
    )
    """,
    # The publish gate (segment_cadence/defs/segments/gate.py): months held, and releases by an approver.
    """
    create table if not exists governance.publish_holds (
        month_end date, run_id varchar, inputs_fingerprint varchar, findings varchar,
        held_at timestamp
    )
    """,
    """
    create table if not exists governance.publish_releases (
        month_end date, inputs_fingerprint varchar, released_by varchar, reason varchar,
        findings varchar, released_at timestamp
    )
    """,
)


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


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schemas and Python-owned tables if they do not exist (idempotent)."""
    for schema in SCHEMAS:
        con.execute(f"create schema if not exists {schema}")
    for statement in DDL:
        con.execute(statement)
    con.execute("alter table published.publications add column if not exists version_label varchar")


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])


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
