"""The firewall's records where the governance dbt models read them: the `ops` source.

The red-flag models read the firewall checks and the exception requests from ops.* (the
dbt source `ops`, dbt_project/models/governance/_sources.yml). Today the firewall writes them
to governance.* in the warehouse, so ops.* are views over those tables; once the firewall
records live in their own state store, the monthly run copies them into ops.* instead and
this stand-in goes.
"""

from __future__ import annotations

import duckdb

from segment_cadence.defs.governance import firewall

OPS_TABLES = ("firewall_checks", "firewall_blocked", "exception_requests")


def stand_in_ops_views(con: duckdb.DuckDBPyConnection) -> None:
    """ops.firewall_checks, ops.firewall_blocked, ops.exception_requests as views over the
    firewall's governance tables (created first if need be). Idempotent."""
    firewall.ensure_tables(con)
    con.execute("create schema if not exists ops")
    for table in OPS_TABLES:
        con.execute(f"create or replace view ops.{table} as select * from governance.{table}")
