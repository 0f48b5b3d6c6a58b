"""The audit trail, and the bias audit.

Audit trail: every change of a customer's segment (from, to, month, definition version), and
every manual override or dispute with its decision, append-only. A regulator's request ("what
did you decide about this customer, when, and under which rules?") is one query:
`segment-cadence audit customer ID`. Rows are appended once per (customer, month, definition
version); re-publishing a month under the same version adds nothing, and a month re-published
under another version keeps both, because both happened.

Bias audit: each month, the share of every segment within each region, age band and language
against the segment's overall share. The disparity ratio is group share / overall share;
above the configured bound, or below its inverse, the cell is flagged (when the group and
the expected count are big enough to mean something). Sensitive attributes are never inputs
to rules (segment_cadence/defs/dictionary/rules.py refuses them); this audit watches the outcome instead.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

import duckdb
from sqlalchemy import select, union_all

from segment_cadence.defs.governance import firewall, governance
from segment_cadence.defs.governance.governance import GovernanceConfig
from segment_cadence.platform import state_store
from segment_cadence.platform.warehouse import table_exists

TABLES = (
    """
    create table if not exists governance.segment_audit_log (
        customer_id varchar, month_end date, from_segment_id varchar, to_segment_id varchar,
        definition_version varchar, recorded_at timestamp
    )
    """,
    """
    create table if not exists governance.bias_audit (
        month_end date, attribute varchar, group_value varchar, segment_id varchar,
        members bigint, group_customers bigint, group_share double, overall_share double,
        disparity_ratio double, flagged boolean
    )
    """,
)
DISPUTE_DECISIONS = ("upheld", "rejected", "referred_to_review")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in TABLES:
        con.execute(ddl)


def record_segment_changes(con: duckdb.DuckDBPyConnection, month_end: date,
                           recorded_at: datetime | None = None) -> int:  # fmt: skip
    """Append the month's segment changes (and first assignments); returns rows added."""
    ensure_tables(con)
    before = con.execute("select count(*) from governance.segment_audit_log").fetchone()[0]
    con.execute(
        """
        insert into governance.segment_audit_log
        select m.customer_id, m.month_end, m.previous_segment_id, m.segment_id,
            m.definition_version, ?
        from published.segment_membership m
        where m.month_end = ?
          and m.previous_segment_id is distinct from m.segment_id
          and not exists (
              select 1 from governance.segment_audit_log a
              where a.customer_id = m.customer_id and a.month_end = m.month_end
                and a.definition_version = m.definition_version)
        """,
        [recorded_at or datetime.now(), month_end],
    )
    return con.execute("select count(*) from governance.segment_audit_log").fetchone()[0] - before


def record_dispute(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    *,
    raised_by: str,
    reason: str,
    decision: str,
    decided_by: str,
    raised_at: datetime | None = None,
) -> str:
    """A dispute about a customer's segment, with its decision, recorded in the state store
    (`con`, the warehouse, is only read). Disputes never move a customer by hand: an upheld
    dispute is a case for reviewing the logic."""
    if decision not in DISPUTE_DECISIONS:
        raise ValueError(
            f"decision must be one of {', '.join(DISPUTE_DECISIONS)}, got {decision!r}"
        )
    if not raised_by.strip() or not reason.strip() or not decided_by.strip():
        raise ValueError("a dispute needs who raised it, why, and who decided")
    raised_at = raised_at or datetime.now()
    segment = (
        con.execute(
            "select segment_id from published.segment_membership where customer_id = ? "
            "order by month_end desc limit 1",
            [customer_id],
        ).fetchone()
        if table_exists(con, "published", "segment_membership")
        else None
    )
    if segment is None:
        raise ValueError(f"customer {customer_id} is not in any published membership")
    request_id = hashlib.sha256(
        f"dispute|{customer_id}|{raised_by}|{raised_at.isoformat()}|{reason}".encode()
    ).hexdigest()[:16]
    with state_store.transaction() as state:
        firewall.record_exception(
            state,
            request_id=request_id,
            requested_at=raised_at,
            kind="dispute",
            requested_by=raised_by,
            team=None,
            campaign_name=None,
            channel=None,
            segment_ids=segment[0],
            customer_id=customer_id,
            reason=reason,
            decision=decision,
            decided_by=decided_by,
            response=(
                "Recorded. Membership is not changed by hand; an upheld dispute goes to the "
                "segmentation owner as a case for reviewing the logic."
            ),
        )
    return request_id


@dataclass(frozen=True)
class CustomerRecord:
    customer_id: str
    months: list[tuple]  # (month_end, segment_id, definition_version, previous_segment_id)
    changes: list[tuple]  # (month_end, from, to, definition_version, recorded_at)
    requests: list[tuple]  # (requested_at, kind, requested_by, reason, decision, decided_by)
    blocked: list[tuple]  # (planned_at, campaign_name, reason)

    def lines(self) -> list[str]:
        out = [f"customer {self.customer_id}"]
        out.append("segment by month:")
        out += [f"  {m:%Y-%m}  {s:<24} version {v}" for m, s, v, _ in self.months] or ["  none"]
        out.append("segment changes (audit log):")
        out += [
            f"  {m:%Y-%m}  {f or '(new)'} -> {t}  version {v}  recorded {at:%Y-%m-%d %H:%M}"
            for m, f, t, v, at in self.changes
        ] or ["  none"]
        out.append("overrides and disputes:")
        out += [
            f"  {at:%Y-%m-%d %H:%M}  {kind} by {who}: {why} -> {decision} ({by})"
            for at, kind, who, why, decision, by in self.requests
        ] or ["  none"]
        out.append("campaigns the firewall blocked for this customer:")
        out += [f"  {at:%Y-%m-%d}  {name}: {reason}" for at, name, reason in self.blocked] or [
            "  none"
        ]
        return out


def _customer_requests_and_blocks(customer_id: str) -> tuple[list[tuple], list[tuple]]:
    """From the state store: the customer's disputes and the override requests for campaigns
    that blocked them; and the campaigns the firewall blocked for them."""
    r = state_store.exception_requests.c
    c = state_store.firewall_checks.c
    b = state_store.firewall_blocked.c
    columns = (r.requested_at, r.kind, r.requested_by, r.reason, r.decision, r.decided_by)
    own = select(*columns).where(r.customer_id == customer_id)
    overrides = (
        select(*columns)
        .join_from(
            state_store.exception_requests,
            state_store.firewall_checks,
            c.campaign_name == r.campaign_name,
        )
        .join(state_store.firewall_blocked, b.check_id == c.check_id)
        .where(r.kind == "override", b.customer_id == customer_id)
    )
    with state_store.transaction() as state:
        both = union_all(own, overrides).subquery()
        requests = [tuple(row) for row in state.execute(select(both).order_by(both.c.requested_at))]
        blocked = [
            tuple(row)
            for row in state.execute(
                select(c.planned_at, c.campaign_name, b.all_reasons)
                .join_from(
                    state_store.firewall_blocked,
                    state_store.firewall_checks,
                    b.check_id == c.check_id,
                )
                .where(b.customer_id == customer_id)
                .order_by(c.planned_at)
            )
        ]
    return requests, blocked


def customer_record(con: duckdb.DuckDBPyConnection, customer_id: str) -> CustomerRecord:
    """Everything recorded about one customer, oldest first."""
    months = (
        con.execute(
            "select month_end, segment_id, definition_version, previous_segment_id "
            "from published.segment_membership where customer_id = ? order by month_end",
            [customer_id],
        ).fetchall()
        if table_exists(con, "published", "segment_membership")
        else []
    )
    changes = (
        con.execute(
            "select month_end, from_segment_id, to_segment_id, definition_version, recorded_at "
            "from governance.segment_audit_log where customer_id = ? order by month_end, recorded_at",
            [customer_id],
        ).fetchall()
        if table_exists(con, "governance", "segment_audit_log")
        else []
    )
    requests, blocked = _customer_requests_and_blocks(customer_id)
    return CustomerRecord(customer_id, months, changes, requests, blocked)


def measure_bias(con: duckdb.DuckDBPyConnection, month_end: date,
                 config: GovernanceConfig | None = None) -> int:  # fmt: skip
    """Replace the month's bias audit; returns the number of flagged cells."""
    config = config or governance.default_config()
    ensure_tables(con)
    con.execute("delete from governance.bias_audit where month_end = ?", [month_end])
    if not table_exists(con, "raw", "customers"):
        return 0
    columns = {r[0] for r in con.execute("describe raw.customers").fetchall()}
    missing = [a for a in config.bias_attributes if a not in columns]
    if missing:
        raise ValueError(f"bias audit: raw.customers has no column {', '.join(missing)}")
    for attribute in config.bias_attributes:
        con.execute(
            f"""
            insert into governance.bias_audit
            with members as (
                select m.segment_id, coalesce(cast(c."{attribute}" as varchar), 'unknown') as g
                from published.segment_membership m
                join raw.customers c using (customer_id)
                where m.month_end = ?
            ),
            cells as (select g, segment_id, count(*) as n from members group by g, segment_id),
            groups as (select g, count(*) as n from members group by g),
            overall as (
                select segment_id, count(*) * 1.0 / sum(count(*)) over () as share
                from members group by segment_id
            ),
            grid as (
                select groups.g, overall.segment_id, groups.n as group_n, overall.share
                from groups cross join overall
            )
            select ?, ?, grid.g, grid.segment_id, coalesce(cells.n, 0), grid.group_n,
                coalesce(cells.n, 0) * 1.0 / grid.group_n, grid.share,
                coalesce(cells.n, 0) * 1.0 / grid.group_n / grid.share,
                grid.group_n >= ? and grid.group_n * grid.share >= ?
                    and (coalesce(cells.n, 0) * 1.0 / grid.group_n / grid.share > ?
                         or coalesce(cells.n, 0) * 1.0 / grid.group_n / grid.share < 1.0 / ?)
            from grid left join cells using (g, segment_id)
            """,
            [month_end, month_end, attribute, config.min_group_customers,
             config.min_expected_members, config.max_disparity_ratio, config.max_disparity_ratio],
        )  # fmt: skip
    return con.execute(
        "select count(*) from governance.bias_audit where month_end = ? and flagged", [month_end]
    ).fetchone()[0]


def flagged_bias(con: duckdb.DuckDBPyConnection, month_end: date) -> list[tuple]:
    """The month's flagged cells, largest disparity first (for the asset and the pack)."""
    return con.execute(
        "select attribute, group_value, segment_id, members, round(group_share, 3), "
        "round(overall_share, 3), round(disparity_ratio, 2) from governance.bias_audit "
        "where month_end = ? and flagged order by abs(ln(greatest(disparity_ratio, 1e-9))) desc",
        [month_end],
    ).fetchall()
