"""The charter's three red-flag metrics, and what the monthly review needs beside them.

Everything is measured from what actually happened in the month: the send log
(raw.campaign_sends), the team list, the firewall's records and the exception requests. The
last two live in the state store; the monthly job copies them into the warehouse as
ops.firewall_checks, ops.firewall_blocked and ops.exception_requests before these run
(state_store.copy_firewall_records), and that copy is what is read here.

- pause violations: sends that reached a customer whose segment was paused at send time.
  "At send time" means the membership in force then: the latest month published before the
  send, with the pause behaviour of the definition version that produced it. For sends in
  month M that is month M-1; if M-1 was never published the metric is "not evaluated", not 0.
- segment-unsafe attempts: campaigns in the send log that targeted a paused segment or were
  sent by someone in their first 30 days, and campaigns the firewall blocked (wholly or in
  part), one row per campaign and source.
- manual override attempts: who, when, why, and the segments involved.
- the onboarding rule: sends by team members in their first 30 days.
- suppressed campaign volume (messages the firewall kept from being sent) and exception
  requests of every kind; pressure patterns (attempts by team, channel, segment and week,
  against last month).

Each month is replaced as a whole, so re-running a month gives the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from segment_cadence.defs.governance import governance
from segment_cadence.defs.governance.governance import GovernanceConfig
from segment_cadence.platform import state_store
from segment_cadence.platform.metrics import Metric
from segment_cadence.platform.months import month_end as last_day
from segment_cadence.platform.months import previous_month
from segment_cadence.platform.warehouse import table_exists

TABLES = (
    """
    create table if not exists governance.pause_violations (
        month_end date, send_id varchar, sent_at timestamp, campaign_id varchar,
        campaign_name varchar, sender_id varchar, sender_name varchar, team varchar,
        channel varchar, customer_id varchar, segment_id varchar, targeted_segment varchar,
        membership_month date
    )
    """,
    """
    create table if not exists governance.onboarding_violations (
        month_end date, campaign_id varchar, campaign_name varchar, sender_id varchar,
        sender_name varchar, team varchar, joined_date date, first_send_at timestamp,
        days_after_joining integer, sends bigint
    )
    """,
    """
    create table if not exists governance.unsafe_attempts (
        month_end date, source varchar, campaign_id varchar, campaign_name varchar,
        sender_id varchar, team varchar, channel varchar, segment_ids varchar,
        attempted_at timestamp, week date, reasons varchar, customers bigint
    )
    """,
    """
    create table if not exists governance.pressure_patterns (
        month_end date, dimension varchar, key varchar, attempts bigint,
        previous_attempts bigint, change bigint
    )
    """,
    """
    create table if not exists governance.red_flags (
        month_end date, metric varchar, value bigint, evaluated boolean, detail varchar
    )
    """,
)
METRICS = (
    "pause_violation_count",
    "segment_unsafe_attempts",
    "manual_override_attempts",
    "onboarding_violations",
    "suppressed_campaign_volume",
    "suppressed_campaigns",
    "exception_requests",
)


@dataclass(frozen=True)
class RedFlags:
    month_end: date
    values: dict[str, int | None]
    details: dict[str, str]

    @property
    def pause_violations_evaluated(self) -> bool:
        return self.values["pause_violation_count"] is not None


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    state_store.ensure_firewall_copies(con)
    for ddl in TABLES:
        con.execute(ddl)


def _window(month_end: date) -> tuple[date, date]:
    return month_end.replace(day=1), month_end


def _has_sends(con: duckdb.DuckDBPyConnection) -> bool:
    return table_exists(con, "raw", "campaign_sends") and table_exists(con, "raw", "team_members")


def _paused_in(con: duckdb.DuckDBPyConnection, membership_month: date) -> None:
    """A temp table of the segments paused in the version(s) that produced a month."""
    con.execute(
        """
        create or replace temp table _paused as
        select distinct d.definition_version, d.segment_id
        from governance.segment_dictionary d
        where d.paused and d.definition_version in (
            select distinct definition_version from published.segment_membership
            where month_end = ?)
        """,
        [membership_month],
    )


def measure_pause_violations(con: duckdb.DuckDBPyConnection, month_end: date) -> int | None:
    """Replace the month's pause violations; the count, or None when not evaluable."""
    con.execute("delete from governance.pause_violations where month_end = ?", [month_end])
    start, end = _window(month_end)
    membership_month = last_day(previous_month(start))
    published = (
        table_exists(con, "published", "segment_membership")
        and con.execute(
            "select count(*) > 0 from published.segment_membership where month_end = ?",
            [membership_month],
        ).fetchone()[0]
    )
    if not published or not _has_sends(con):
        return None
    _paused_in(con, membership_month)
    con.execute(
        """
        insert into governance.pause_violations
        select ?, s.send_id, s.sent_at, s.campaign_id, s.campaign_name, s.sender_id, t.name,
            t.team, s.channel, s.customer_id, m.segment_id, s.targeted_segment, m.month_end
        from raw.campaign_sends s
        join published.segment_membership m
            on m.customer_id = s.customer_id and m.month_end = ?
        join _paused p
            on p.definition_version = m.definition_version and p.segment_id = m.segment_id
        left join raw.team_members t on t.sender_id = s.sender_id
        where cast(s.sent_at as date) between ? and ?
        """,
        [month_end, membership_month, start, end],
    )
    return con.execute(
        "select count(*) from governance.pause_violations where month_end = ?", [month_end]
    ).fetchone()[0]


def measure_onboarding(con: duckdb.DuckDBPyConnection, month_end: date,
                       config: GovernanceConfig) -> int | None:  # fmt: skip
    """Replace the month's sends by team members in their first N days; the send count."""
    con.execute("delete from governance.onboarding_violations where month_end = ?", [month_end])
    if not _has_sends(con):
        return None
    start, end = _window(month_end)
    con.execute(
        """
        insert into governance.onboarding_violations
        select ?, s.campaign_id, any_value(s.campaign_name), s.sender_id, any_value(t.name),
            any_value(t.team), any_value(t.joined_date), min(s.sent_at),
            min(date_diff('day', t.joined_date, cast(s.sent_at as date))), count(*)
        from raw.campaign_sends s
        join raw.team_members t on t.sender_id = s.sender_id
        where cast(s.sent_at as date) between ? and ?
          and cast(s.sent_at as date) < t.joined_date + to_days(cast(? as integer))
        group by s.campaign_id, s.sender_id
        """,
        [month_end, start, end, config.onboarding_days],
    )
    return con.execute(
        "select coalesce(sum(sends), 0) from governance.onboarding_violations where month_end = ?",
        [month_end],
    ).fetchone()[0]


def measure_unsafe_attempts(con: duckdb.DuckDBPyConnection, month_end: date,
                            config: GovernanceConfig) -> int:  # fmt: skip
    """Replace the month's segment-unsafe attempts: one row per campaign and source."""
    con.execute("delete from governance.unsafe_attempts where month_end = ?", [month_end])
    start, end = _window(month_end)
    membership_month = last_day(previous_month(start))
    if _has_sends(con) and table_exists(con, "published", "segment_membership"):
        _paused_in(con, membership_month)
        con.execute(
            """
            insert into governance.unsafe_attempts
            with sends as (
                select s.*, t.team, t.joined_date,
                    s.targeted_segment in (select segment_id from _paused) as paused_target,
                    cast(s.sent_at as date) < t.joined_date + to_days(cast(? as integer))
                        as onboarding
                from raw.campaign_sends s
                left join raw.team_members t on t.sender_id = s.sender_id
                where cast(s.sent_at as date) between ? and ?
            )
            select ?, 'send_log', campaign_id, any_value(campaign_name), any_value(sender_id),
                any_value(team), any_value(channel), string_agg(distinct targeted_segment, ','),
                min(sent_at), cast(date_trunc('week', min(sent_at)) as date),
                concat_ws(',',
                    case when bool_or(paused_target) then 'targeted_paused_segment' end,
                    case when bool_or(onboarding) then 'sender_in_onboarding' end),
                count(distinct customer_id)
            from sends
            group by campaign_id
            having bool_or(paused_target) or bool_or(onboarding)
            """,
            [config.onboarding_days, start, end, month_end],
        )
    con.execute(
        """
        insert into governance.unsafe_attempts
        select ?, 'firewall', check_id, campaign_name, sender_id, team, channel,
            coalesce(nullif(blocked_segments, ''), target_segments), planned_at,
            cast(date_trunc('week', planned_at) as date),
            array_to_string(json_keys(reason_counts), ','),
            blocked
        from ops.firewall_checks
        where decision <> 'clear' and cast(planned_at as date) between ? and ?
        """,
        [month_end, start, end],
    )
    return con.execute(
        "select count(*) from governance.unsafe_attempts where month_end = ?", [month_end]
    ).fetchone()[0]


def _pressure(con: duckdb.DuckDBPyConnection, month_end: date) -> None:
    """Attempts (unsafe and override) by team, channel, segment and week, against last month."""
    con.execute("delete from governance.pressure_patterns where month_end = ?", [month_end])
    previous = last_day(previous_month(month_end.replace(day=1)))
    con.execute(
        """
        insert into governance.pressure_patterns
        with attempts as (
            select month_end, team, channel, segment_ids, week
            from governance.unsafe_attempts where month_end in (?, ?)
            union all
            select last_day(requested_at), team, channel, segment_ids,
                cast(date_trunc('week', requested_at) as date)
            from ops.exception_requests
            where kind = 'override' and last_day(requested_at) in (?, ?)
        ),
        keyed as (
            select month_end, 'team' as dimension, coalesce(team, 'unknown') as key from attempts
            union all
            select month_end, 'channel', coalesce(channel, 'unknown') from attempts
            union all
            select month_end, 'segment', unnest(string_split(coalesce(nullif(segment_ids, ''),
                'none'), ',')) from attempts
            union all
            select month_end, 'week', strftime(week, '%Y-%m-%d') from attempts
            where month_end = ?
        ),
        counted as (
            select dimension, key,
                count(*) filter (where month_end = ?) as attempts,
                count(*) filter (where month_end = ?) as previous_attempts
            from keyed group by dimension, key
        )
        select ?, dimension, key, attempts, previous_attempts, attempts - previous_attempts
        from counted
        """,
        [month_end, previous, month_end, previous, month_end, month_end, previous, month_end],
    )


def measure(con: duckdb.DuckDBPyConnection, month_end: date,
            config: GovernanceConfig | None = None) -> RedFlags:  # fmt: skip
    """Every governance metric of a month, stored (idempotent) and returned."""
    config = config or governance.default_config()
    ensure_tables(con)
    start, end = _window(month_end)
    values: dict[str, int | None] = {}
    details: dict[str, str] = {}
    values["pause_violation_count"] = measure_pause_violations(con, month_end)
    if values["pause_violation_count"] is None:
        details["pause_violation_count"] = (
            "not evaluated: the previous month's membership is not published or there is no send log"
        )
    values["onboarding_violations"] = measure_onboarding(con, month_end, config)
    values["segment_unsafe_attempts"] = measure_unsafe_attempts(con, month_end, config)
    values["manual_override_attempts"] = con.execute(
        "select count(*) from ops.exception_requests where kind = 'override' "
        "and cast(requested_at as date) between ? and ?",
        [start, end],
    ).fetchone()[0]
    values["exception_requests"] = con.execute(
        "select count(*) from ops.exception_requests "
        "where cast(requested_at as date) between ? and ?",
        [start, end],
    ).fetchone()[0]
    volume, campaigns = con.execute(
        "select coalesce(sum(blocked), 0), count(*) filter (where decision = 'blocked') "
        "from ops.firewall_checks where cast(planned_at as date) between ? and ?",
        [start, end],
    ).fetchone()
    values["suppressed_campaign_volume"], values["suppressed_campaigns"] = volume, campaigns
    _pressure(con, month_end)
    con.execute("delete from governance.red_flags where month_end = ?", [month_end])
    con.executemany(
        "insert into governance.red_flags values (?, ?, ?, ?, ?)",
        [(month_end, m, values[m], values[m] is not None, details.get(m)) for m in METRICS],
    )
    return RedFlags(month_end, values, details)


def health_metrics(con: duckdb.DuckDBPyConnection, month_end: date) -> list[Metric]:
    """Pause violations per paused segment, for the alerting layer (0 for a clean segment)."""
    if not table_exists(con, "governance", "red_flags"):
        return []
    evaluated = con.execute(
        "select evaluated from governance.red_flags "
        "where month_end = ? and metric = 'pause_violation_count'",
        [month_end],
    ).fetchone()
    if not evaluated or not evaluated[0]:
        return []
    rows = con.execute(
        """
        select d.segment_id, count(v.send_id)
        from (select distinct segment_id from governance.segment_dictionary where paused
              and definition_version in (select distinct definition_version
                  from published.segment_membership where month_end = ?)) d
        left join governance.pause_violations v
            on v.segment_id = d.segment_id and v.month_end = ?
        group by d.segment_id
        """,
        [last_day(previous_month(month_end.replace(day=1))), month_end],
    ).fetchall()
    return [Metric(month_end, segment_id, "pause_violations", float(n)) for segment_id, n in rows]
