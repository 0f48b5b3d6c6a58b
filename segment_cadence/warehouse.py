"""The DuckDB warehouse: short-lived connections and the schemas Python owns.

DuckDB allows one writer per file, so nothing here keeps a connection open: every caller
opens one, does its work and closes it (`connect()` is a context manager). Orchestration
serialises runs that write (one in-process executor per run, one warehouse run at a time).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from segment_cadence import paths

SCHEMAS = ("raw", "quarantine", "churn", "governance", "build", "staging", "published", "strategic")

# Tables owned by Python (not dbt). Published tables mirror the dbt marts column for column;
# publish inserts BY NAME so column order does not matter.
DDL = (
    """
    create table if not exists raw._loads (
        source varchar, fingerprint varchar, loaded_at timestamp, rows_loaded bigint,
        rows_quarantined bigint
    )
    """,
    """
    create table if not exists raw._month_fingerprints (
        source varchar, month date, row_count bigint, fingerprint varchar
    )
    """,
    """
    create table if not exists quarantine.rejected_rows (
        source varchar, source_row bigint, reason varchar, record varchar, loaded_at timestamp
    )
    """,
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
    # The publish gate (segment_cadence/gate.py): months held, and releases by an approver.
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


@contextmanager
def connect(
    path: Path | str | None = None, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for one unit of work and always close it."""
    target = Path(path) if path else paths.warehouse_path()
    if not read_only:
        target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(target), read_only=read_only)
    try:
        # A setting rather than connection config, which would clash with another
        # connection to the same file in this process (dbt run in-process, for one).
        con.execute(f"set memory_limit = '{memory_limit()}'")
        yield con
    finally:
        con.close()


MIGRATION_RATES_VIEW = """
    create or replace view published.segment_migration_rates as
    select
        month_end, segment_id, customers, previous_customers, stayed, moved_in, moved_out,
        new_customers,
        moved_out * 1.0 / nullif(previous_customers, 0) as migration_out_rate,
        moved_in * 1.0 / nullif(customers, 0) as migration_in_rate,
        retention_rate
    from published.segment_kpis
"""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the schemas and Python-owned tables if they do not exist (idempotent)."""
    for schema in SCHEMAS:
        con.execute(f"create schema if not exists {schema}")
    for statement in DDL:
        con.execute(statement)
    con.execute("alter table published.publications add column if not exists version_label varchar")
    con.execute(MIGRATION_RATES_VIEW)


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(found and found[0])
