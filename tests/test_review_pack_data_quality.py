"""The review pack's data-quality section reads what a month without orders leaves."""

from __future__ import annotations

from datetime import date

import duckdb

from segment_cadence.defs.review import review_pack

MONTH = date(2025, 11, 30)


def test_a_month_without_orders_gets_a_data_quality_note_not_a_crash():
    """Regression: freshness is NULL when no order precedes the month end, and formatting it
    raised `TypeError: unsupported format string passed to NoneType.__format__`."""
    con = duckdb.connect()
    con.execute("create schema health")
    con.execute("create schema quarantine")
    con.execute(
        "create table health.metrics (month_end date, segment_id varchar, metric varchar, "
        "value double, definition_version varchar)"
    )
    con.execute(
        "insert into health.metrics values (?, '*', 'freshness_days', null, 'v'), "
        "(?, '*', 'quarantine_rate', 1.0, 'v'), (?, '*', 'order_lines_in_month', 0, 'v')",
        [MONTH, MONTH, MONTH],
    )
    con.execute(
        "create table quarantine.rejected_rows (source varchar, source_row bigint, "
        "reason varchar, record varchar, loaded_at timestamp)"
    )
    con.execute(
        "insert into quarantine.rejected_rows values "
        "('orders', 1, 'unparseable order_date', '{}', now())"
    )
    pack = review_pack.gather(con, MONTH)
    section = next(s for s in pack.sections if s.id == "data_quality")
    assert section.notes == [
        "No order on or before the month end; 1 rows quarantined in all loads."
    ]
    assert "No order on or before the month end" in review_pack.render_markdown(pack)
