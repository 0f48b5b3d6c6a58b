"""What a monthly run hands the alerting tick, through the state store.

The health asset evaluates the thresholds inside the run, where the warehouse is open; it
then records, per refreshed month, the breaches, the definition version, the segment owners
and the segments whose definition changed since the previous month. The tick reads only
these (segment_cadence/defs/alerting/alert_tick.py), so it never needs the warehouse and runs
while a refresh writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import duckdb
from sqlalchemy import Connection, delete, insert, select

from segment_cadence.defs.health.thresholds import Breach
from segment_cadence.platform.months import previous_month_end
from segment_cadence.platform.state_store import (
    alert_input_breaches,
    alert_input_changed_segments,
    alert_input_months,
    alert_input_owners,
    processed_months,
)

BREACH_FIELDS = (
    "month_end",
    "rule_id",
    "segment_id",
    "metric",
    "value",
    "baseline",
    "bound",
    "kind",
    "severity",
    "runbook",
    "owner",
)


@dataclass(frozen=True)
class AlertInputs:
    """One refreshed month, as the alert lifecycle needs it."""

    month_end: date
    definition_version: str
    breaches: list[Breach]
    owners: dict[str, str]
    changed_segments: set[str]


def owners_and_changes(
    con: duckdb.DuckDBPyConnection, month: date, version: str
) -> tuple[dict[str, str], set[str]]:
    """From the warehouse, in the run: the owners of the version's segments, and the segments
    whose rule, priority, pause or status differ from the version published the month before."""
    owners = dict(
        con.execute(
            "select segment_id, owner from governance.segment_dictionary_versions "
            "where definition_version = ?",
            [version],
        ).fetchall()
    )
    previous = con.execute(
        "select definition_version from published.publications where month_end = ?",
        [previous_month_end(month)],
    ).fetchone()
    changed: set[str] = set()
    if previous and previous[0] != version:
        changed = {
            r[0]
            for r in con.execute(
                """
                select coalesce(a.segment_id, b.segment_id) from
                  (select * from governance.segment_dictionary_versions
                   where definition_version = ?) a
                  full join
                  (select * from governance.segment_dictionary_versions
                   where definition_version = ?) b
                  using (segment_id)
                where a.rule is distinct from b.rule or a.priority is distinct from b.priority
                   or a.paused is distinct from b.paused or a.status is distinct from b.status
                """,
                [version, previous[0]],
            ).fetchall()
        }
    return owners, changed


def hand_over(state: Connection, inputs: AlertInputs, now: datetime) -> None:
    """Replace the month's alert inputs in the store (a re-run of the month replaces them)."""
    month = inputs.month_end
    for table in (
        alert_input_breaches,
        alert_input_owners,
        alert_input_changed_segments,
        alert_input_months,
    ):
        state.execute(delete(table).where(table.c.month_end == month))
    state.execute(
        insert(alert_input_months).values(
            month_end=month, definition_version=inputs.definition_version, recorded_at=now
        )
    )
    if inputs.breaches:
        state.execute(
            insert(alert_input_breaches),
            [
                {f: getattr(b, f) for f in BREACH_FIELDS}
                | {"definition_version": inputs.definition_version}
                for b in inputs.breaches
            ],
        )
    if inputs.owners:
        state.execute(
            insert(alert_input_owners),
            [{"month_end": month, "segment_id": s, "owner": o} for s, o in inputs.owners.items()],
        )
    if inputs.changed_segments:
        state.execute(
            insert(alert_input_changed_segments),
            [{"month_end": month, "segment_id": s} for s in sorted(inputs.changed_segments)],
        )


def pending_months(state: Connection) -> list[date]:
    """Months handed over and not yet processed by the alert lifecycle, oldest first."""
    done = select(processed_months.c.month_end)
    return list(
        state.execute(
            select(alert_input_months.c.month_end)
            .where(alert_input_months.c.month_end.not_in(done))
            .order_by(alert_input_months.c.month_end)
        ).scalars()
    )


def read(state: Connection, month: date) -> AlertInputs:
    version = state.execute(
        select(alert_input_months.c.definition_version).where(
            alert_input_months.c.month_end == month
        )
    ).scalar()
    b = alert_input_breaches.c
    breaches = [
        Breach(*row)
        for row in state.execute(select(*(b[f] for f in BREACH_FIELDS)).where(b.month_end == month))
    ]
    owners = dict(
        state.execute(
            select(alert_input_owners.c.segment_id, alert_input_owners.c.owner).where(
                alert_input_owners.c.month_end == month
            )
        ).all()
    )
    changed = set(
        state.execute(
            select(alert_input_changed_segments.c.segment_id).where(
                alert_input_changed_segments.c.month_end == month
            )
        ).scalars()
    )
    return AlertInputs(month, version or "unversioned", breaches, owners, changed)
