"""The dictionary as the warehouse keeps it, one row per segment and definition version
(governance.segment_dictionary_versions, the dbt model built from the dictionary the
segment_dictionary asset validated), read for a published month: its segments are those of
the version(s) that produced it, not the dictionary in force today. The firewall asks this of a month; this is the one place in Python
the question is written (the governance dbt models ask it in SQL)."""

from __future__ import annotations

from datetime import date

import duckdb

# The definition version(s) behind a published month (one, unless the month was re-run).
VERSIONS_OF_MONTH = (
    "select distinct definition_version from published.segment_membership where month_end = ?"
)

# The paused segments of those versions, as (definition_version, segment_id) rows.
PAUSED_IN_MONTH = f"""
    select distinct d.definition_version, d.segment_id
    from governance.segment_dictionary_versions d
    where d.paused and d.definition_version in ({VERSIONS_OF_MONTH})
"""


def segments_of_month(con: duckdb.DuckDBPyConnection, month_end: date) -> dict[str, str]:
    """{segment id: name} in the version(s) that produced the month."""
    rows = con.execute(
        "select distinct d.segment_id, d.segment_name from governance.segment_dictionary_versions d "
        f"where d.definition_version in ({VERSIONS_OF_MONTH})",
        [month_end],
    ).fetchall()
    return dict(rows)


def paused_segments_of_month(con: duckdb.DuckDBPyConnection, month_end: date) -> set[str]:
    """The segments paused in the version(s) that produced the month: nobody may target them."""
    rows = con.execute(f"select segment_id from ({PAUSED_IN_MONTH})", [month_end]).fetchall()
    return {segment_id for (segment_id,) in rows}
