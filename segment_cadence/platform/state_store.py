"""The operational state store: alerts, the outbox, silences, firewall records, override
requests and disputes, review-pack posting state, the alert inputs a run hands over, each
month's BG/NBD fit on its way from the fit step to the marts' dbt run, and the governance
records (definition versions, the changelog and retired segments, the publish gate's holds and
releases, language findings, health breaches).

This state needs transactions and several writers (the alerting sensor, the CLI, a monthly
run), which the single-writer DuckDB warehouse cannot give while a refresh writes. It lives
in a database of its own, reached through SQLAlchemy: by default a SQLite file under the
state directory (WAL mode, a busy timeout and `BEGIN IMMEDIATE`, so writers take turns
rather than fail), or PostgreSQL when SEGMENT_CADENCE_STATE_URL names one (an advisory lock
per transaction gives the same one-writer-at-a-time order).

The tables are created by the Alembic migrations shipped with the package
(segment_cadence/platform/state_migrations), applied on first use; the `Table` objects here
describe them for queries and must match (tests/test_state_store.py compares the two).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa
from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.pool import NullPool

from segment_cadence.platform import paths
from segment_cadence.platform.warehouse import WarehouseConnection, replace_table, table_exists

MIGRATIONS_DIR = Path(__file__).resolve().parent / "state_migrations"
# How long a writer waits for its turn on SQLite. Generous, like the warehouse's lock timeout:
# the tick keeps its turn while it delivers to Slack, so a message is never sent twice.
BUSY_TIMEOUT_MS = 300_000
# Any constant: the PostgreSQL advisory lock that makes writers take turns.
PG_WRITER_LOCK = 7_261_612

metadata = MetaData()

alerts = Table(
    "alerts",
    metadata,
    Column("alert_key", String, primary_key=True),
    Column("rule_id", String),
    Column("segment_id", String),
    Column("metric", String),
    Column("definition_version", String),
    Column("state", String),
    Column("severity", String),
    Column("consecutive", Integer),
    Column("clean_streak", Integer),
    Column("first_breach_month", Date),
    Column("last_breach_month", Date),
    Column("last_value", Float),
    Column("last_baseline", Float),
    Column("last_bound", Float),
    Column("fired_at", DateTime),
    Column("acknowledged_by", String),
    Column("acknowledged_at", DateTime),
    Column("resolved_at", DateTime),
    Column("level", Integer),
    Column("last_notified_at", DateTime),
    Column("strategic_requested_at", DateTime),
    # Who hears of it when not the segment's owner: a KPI's owner (migration 0007).
    Column("owner", String),
)
silences = Table(
    "silences",
    metadata,
    Column("silence_id", String),
    Column("segment_id", String),
    Column("rule_id", String),
    Column("created_by", String),
    Column("reason", String),
    Column("created_at", DateTime),
    Column("expires_at", DateTime),
)
outbox = Table(
    "outbox",
    metadata,
    Column("message_id", String),
    Column("created_at", DateTime),
    Column("kind", String),
    Column("segment_id", String),
    Column("month_end", Date),
    Column("channel", String),
    Column("alert_keys", String),
    Column("payload", String),
    Column("reply_to", String),
    Column("status", String),
    Column("attempts", Integer),
    Column("last_error", String),
    Column("sent_at", DateTime),
    Column("slack_ts", String),
    Column("slack_channel_id", String),
    # The order messages were queued in, and the message one waits for (an escalation is
    # sent after the alert it escalates).
    Column("sequence", BigInteger),
    Column("after_message_id", String),
    # After a transient failure, not before this (backing off between passes).
    Column("next_attempt_at", DateTime),
)
# Slack channel names resolved to IDs once (file sharing and history need IDs).
slack_channels = Table(
    "slack_channels",
    metadata,
    Column("name", String, primary_key=True),
    Column("channel_id", String),
    Column("resolved_at", DateTime),
)
# The quarterly strategic runs level 3 requested, with the message that announces each.
strategic_requests = Table(
    "strategic_requests",
    metadata,
    Column("request_id", String, primary_key=True),
    Column("quarter", String),
    Column("alert_keys", String),
    Column("message_id", String),
    Column("requested_at", DateTime),
    Column("run_id", String),
    Column("launched_at", DateTime),
)
suppressed = Table(
    "suppressed",
    metadata,
    Column("month_end", Date),
    Column("alert_key", String),
    Column("reason", String),
    Column("recorded_at", DateTime),
)
processed_months = Table(
    "processed_months",
    metadata,
    Column("month_end", Date, primary_key=True),
    Column("processed_at", DateTime),
)
firewall_checks = Table(
    "firewall_checks",
    metadata,
    Column("check_id", String, primary_key=True),
    Column("checked_at", DateTime),
    Column("campaign_name", String),
    Column("sender_id", String),
    Column("team", String),
    Column("channel", String),
    Column("target_segments", String),
    Column("planned_at", DateTime),
    Column("membership_month", Date),
    Column("requested_by", String),
    Column("recipients", BigInteger),
    Column("allowed", BigInteger),
    Column("blocked", BigInteger),
    Column("decision", String),
    Column("reason_counts", String),
    Column("blocked_segments", String),
    # Customers kept out only because they are held out to measure lift (migration 0007):
    # not counted in `blocked`, which the red flags read.
    Column("held_out", BigInteger),
)
firewall_blocked = Table(
    "firewall_blocked",
    metadata,
    Column("check_id", String),
    Column("customer_id", String),
    Column("segment_id", String),
    Column("reason", String),
    Column("all_reasons", String),
)
exception_requests = Table(
    "exception_requests",
    metadata,
    Column("request_id", String, primary_key=True),
    Column("requested_at", DateTime),
    Column("kind", String),
    Column("requested_by", String),
    Column("team", String),
    Column("campaign_name", String),
    Column("channel", String),
    Column("segment_ids", String),
    Column("customer_id", String),
    Column("reason", String),
    Column("decision", String),
    Column("decided_by", String),
    Column("response", String),
)
review_packs = Table(
    "review_packs",
    metadata,
    Column("month_end", Date, primary_key=True),
    Column("path", String),
    Column("rendered_at", DateTime),
    Column("summary", String),
    Column("posted_at", DateTime),
    Column("slack_file_id", String),
    Column("last_error", String),
    # When the file went up: a failed share is retried without uploading it again.
    Column("uploaded_at", DateTime),
)
# What the monthly run hands the alerting tick: per refreshed month, the evaluated breaches,
# the definition version, the segment owners and the segments whose definition changed.
alert_input_months = Table(
    "alert_input_months",
    metadata,
    Column("month_end", Date, primary_key=True),
    Column("definition_version", String),
    Column("recorded_at", DateTime),
)
alert_input_breaches = Table(
    "alert_input_breaches",
    metadata,
    Column("month_end", Date),
    Column("rule_id", String),
    Column("segment_id", String),
    Column("metric", String),
    Column("value", Float),
    Column("baseline", Float),
    Column("bound", Float),
    Column("kind", String),
    Column("severity", String),
    Column("runbook", String),
    Column("definition_version", String),
    # Who the breach goes to when not the segment's owner: a KPI's owner (migration 0007).
    Column("owner", String),
)
alert_input_owners = Table(
    "alert_input_owners",
    metadata,
    Column("month_end", Date),
    Column("segment_id", String),
    Column("owner", String),
)
alert_input_changed_segments = Table(
    "alert_input_changed_segments",
    metadata,
    Column("month_end", Date),
    Column("segment_id", String),
)
# Each month's BG/NBD fit (segment_cadence/defs/segments/churn.py), recorded by the fit step and
# read by every later dbt run of the month's marts (a separate step, a separate process, or a
# re-run of the marts alone), which passes it to dbt as vars: the dbt model churn.bgnbd_params
# keeps the per-month history in the warehouse. A month whose fit failed has a row with no
# parameters; a month never fitted has none. Either way nobody is scored that month.
churn_fits = Table(
    "churn_fits",
    metadata,
    Column("month_end", Date, primary_key=True),
    Column("r", Float),
    Column("alpha", Float),
    Column("a", Float),
    Column("b", Float),
    Column("log_likelihood", Float),
    Column("n_customers", BigInteger),
    Column("converged", Boolean),
    Column("fitted_at", DateTime),
    Column("model", String, server_default="bgnbd"),
    Column("kept_from", Date),
    # The month's spend model and CLV assumptions (migration 0006; value.MonthSpendFit).
    Column("spend_p", Float),
    Column("spend_q", Float),
    Column("spend_gamma", Float),
    Column("spend_log_likelihood", Float),
    Column("spend_n_customers", BigInteger),
    Column("spend_converged", Boolean),
    Column("spend_kept_from", Date),
    Column("spend_frequency_correlation", Float),
    Column("clv_horizon_months", Integer),
    Column("clv_monthly_discount_rate", Float),
)
# Each quarter's calibration/holdout check of the churn model (migration 0006;
# segment_cadence/defs/segments/calibration.py), made by the refresh of the quarter's last
# month and shown by its review pack and the quarter's candidate report. `groups` is the
# chart's data, one entry per calibration frequency, as JSON.
calibrations = Table(
    "calibrations",
    metadata,
    Column("month_end", Date, primary_key=True),
    Column("cutoff", Date),
    Column("holdout_end", Date),
    Column("holdout_weeks", Float),
    Column("model", String),
    Column("r", Float),
    Column("alpha", Float),
    Column("a", Float),
    Column("b", Float),
    Column("customers", BigInteger),
    Column("mean_absolute_error", Float),
    Column("groups", Text),
    Column("computed_at", DateTime),
)

# The governance records (migration 0002): decisions written by the CLI and by runs alike, kept
# beside the rest of the operational state rather than in the single-writer warehouse.
definition_versions = Table(
    "definition_versions",
    metadata,
    Column("definition_version", String, primary_key=True),
    Column("version_number", Integer),
    Column("governed_digest", String),
    Column("author", String),
    Column("reason", String),
    Column("approved_by", String),
    Column("approved_at", String),
    Column("recorded_at", DateTime),
)
changelog = Table(
    "changelog",
    metadata,
    Column("entry_id", String, primary_key=True),
    Column("recorded_at", DateTime),
    Column("kind", String),
    Column("version_label", String),
    Column("definition_version", String),
    Column("month_end", Date),
    Column("summary", String),
)
retired_segments = Table(
    "retired_segments",
    metadata,
    Column("segment_id", String, primary_key=True),
    Column("segment_name", String),
    Column("rationale", String),
    Column("retired_in_version", String),
    Column("last_size", BigInteger),
    Column("last_published_month", Date),
    Column("recorded_at", DateTime),
)
publish_holds = Table(
    "publish_holds",
    metadata,
    Column("month_end", Date),
    Column("run_id", String),
    Column("inputs_fingerprint", String),
    Column("findings", String),
    Column("held_at", DateTime),
)
publish_releases = Table(
    "publish_releases",
    metadata,
    Column("month_end", Date),
    Column("inputs_fingerprint", String),
    Column("released_by", String),
    Column("reason", String),
    Column("findings", String),
    Column("released_at", DateTime),
)
language_findings = Table(
    "language_findings",
    metadata,
    Column("month_end", Date),
    Column("source", String),
    Column("object_id", String),
    Column("field", String),
    Column("phrase", String),
    Column("found", String),
    Column("suggest", String),
)
breaches = Table(
    "breaches",
    metadata,
    Column("month_end", Date),
    Column("rule_id", String),
    Column("segment_id", String),
    Column("metric", String),
    Column("value", Float),
    Column("baseline", Float),
    Column("bound", Float),
    Column("kind", String),
    Column("severity", String),
    Column("runbook", String),
    Column("definition_version", String),
    # Who the breach goes to when not the segment's owner: a KPI's owner (migration 0007).
    Column("owner", String),
)

# Indexes for the tick's lookups (the migration creates them; the comparison test checks).
Index("alerts_by_state", alerts.c.state)
Index("outbox_by_status", outbox.c.status)
Index("outbox_by_message", outbox.c.message_id)
Index("firewall_blocked_by_check", firewall_blocked.c.check_id)
Index("alert_input_breaches_by_month", alert_input_breaches.c.month_end)
Index("publish_holds_by_month", publish_holds.c.month_end)
Index("publish_releases_by_month", publish_releases.c.month_end)
Index("language_findings_by_month", language_findings.c.month_end)
Index("breaches_by_month", breaches.c.month_end)

# The firewall records the monthly job's governance analytics count, copied into the
# warehouse (ops.*) under the names and columns they had as governance.* tables.
FIREWALL_RECORDS = (firewall_checks, firewall_blocked, exception_requests)
# What the review pack reads in SQL beside the firewall records: the month's breaches (joined
# with health.metrics) and the changelog, copied as ops.breaches and ops.changelog.
REVIEW_RECORDS = (*FIREWALL_RECORDS, breaches, changelog)
# The tables an existing warehouse kept, and where they go (`segment-cadence state migrate`), in
# the groups the store's migrations introduced: each group moves once, while its tables in the
# store are still empty, so a store that already holds the alerts still receives the
# governance records when it meets an older warehouse that has them.
WAREHOUSE_MOVES = (
    {
        "alerts.alerts": alerts,
        "alerts.silences": silences,
        "alerts.outbox": outbox,
        "alerts.suppressed": suppressed,
        "alerts.processed_months": processed_months,
        "governance.firewall_checks": firewall_checks,
        "governance.firewall_blocked": firewall_blocked,
        "governance.exception_requests": exception_requests,
        "governance.review_packs": review_packs,
    },
    {
        "governance.definition_versions": definition_versions,
        "governance.changelog": changelog,
        "governance.retired_segments": retired_segments,
        "governance.publish_holds": publish_holds,
        "governance.publish_releases": publish_releases,
        "governance.language_findings": language_findings,
        "health.breaches": breaches,
    },
    {"churn.bgnbd_params": churn_fits},
)
WAREHOUSE_TABLES = {qualified: t for group in WAREHOUSE_MOVES for qualified, t in group.items()}

_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_guard = threading.Lock()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling off: `begin` below issues BEGIN IMMEDIATE, so a
    # writer takes the lock when it starts rather than failing when it first writes.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"pragma busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("pragma journal_mode = wal")
    cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql("begin immediate")


def _new_engine(url: str) -> Engine:
    is_sqlite = url.startswith("sqlite")
    if is_sqlite and url.startswith("sqlite:///") and url != "sqlite://":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        poolclass=NullPool,  # short-lived connections, safe across fork and threads
        connect_args={"timeout": BUSY_TIMEOUT_MS / 1000} if is_sqlite else {},
    )
    if is_sqlite:
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _lock_writers(connection: Connection) -> None:
    """One writer at a time on PostgreSQL too (SQLite's BEGIN IMMEDIATE does it there)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("select pg_advisory_xact_lock(:key)"), {"key": PG_WRITER_LOCK})


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (`alembic upgrade head`). Idempotent, and safe
    when several processes start at once: the upgrade runs inside the writer's turn."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        _lock_writers(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def engine(url: str | None = None) -> Engine:
    """The engine for the store at `url` (default paths.state_store_url()), migrated once
    per process."""
    url = url or paths.state_store_url()
    with _guard:
        if url not in _engines:
            _engines[url] = _new_engine(url)
        if url not in _migrated:
            migrate(_engines[url])
            _migrated.add(url)
        return _engines[url]


@contextmanager
def transaction(url: str | None = None) -> Iterator[Connection]:
    """One unit of work on the store: committed when the block ends, rolled back on error.
    Writers take turns (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL)."""
    with engine(url).begin() as connection:
        _lock_writers(connection)
        yield connection


def rows(connection: Connection, table: Table) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in connection.execute(select(table))]


def _all_empty(connection: Connection, tables: Sequence[Table]) -> bool:
    return not any(
        connection.execute(select(func.count()).select_from(t)).scalar_one() for t in tables
    )


def is_empty(connection: Connection) -> bool:
    """No operational state recorded yet (the store is new)."""
    return _all_empty(connection, list(WAREHOUSE_TABLES.values()))


_ARROW_TYPES = {
    String: pa.string(),
    Integer: pa.int32(),
    BigInteger: pa.int64(),
    Float: pa.float64(),
    Date: pa.date32(),
    DateTime: pa.timestamp("us"),
}


def arrow_table(table: Table, records: Sequence[dict[str, Any]]) -> pa.Table:
    """Records as an Arrow table with the store's column types (typed even when empty)."""
    return pa.table(
        {
            c.name: pa.array([r[c.name] for r in records], type=_ARROW_TYPES[type(c.type)])
            for c in table.columns
        }
    )


def _replace_in_warehouse(
    warehouse: WarehouseConnection, table: Table, records: Sequence[dict[str, Any]]
) -> None:
    replace_table(warehouse, "ops", table.name, arrow_table(table, records))


def copy_records(
    warehouse: WarehouseConnection, tables: Sequence[Table], url: str | None = None
) -> dict[str, int]:
    """Replace ops.<table> in the warehouse with the store's rows, for each table: the copy the
    analytics read in SQL beside the warehouse's own tables. Read in one transaction, so the
    copies agree with each other. Always present afterwards, possibly empty."""
    with transaction(url) as connection:
        copied = {t.name: rows(connection, t) for t in tables}
    for table in tables:
        _replace_in_warehouse(warehouse, table, copied[table.name])
    return {name: len(found) for name, found in copied.items()}


def ensure_firewall_copies(warehouse: WarehouseConnection) -> None:
    """The ops.* copies exist (empty when never copied), so the analytics can always read them."""
    for table in FIREWALL_RECORDS:
        if not _warehouse_has(warehouse, f"ops.{table.name}"):
            _replace_in_warehouse(warehouse, table, [])


def copy_firewall_records(warehouse: WarehouseConnection, url: str | None = None) -> dict:
    """Replace ops.firewall_checks, ops.firewall_blocked and ops.exception_requests in the
    warehouse with the store's records, so the monthly job's governance analytics (red flags,
    pressure patterns, the review pack) count them. Always present, possibly empty."""
    return copy_records(warehouse, FIREWALL_RECORDS, url)


def copy_review_records(warehouse: WarehouseConnection, url: str | None = None) -> dict:
    """The firewall records, the breaches and the changelog as of now, in ops.*, for the review
    pack's SQL (override requests made and breaches found since the run began count)."""
    return copy_records(warehouse, REVIEW_RECORDS, url)


def _warehouse_has(con: WarehouseConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return table_exists(con, schema, name)


def _move_table(
    connection: Connection, warehouse: WarehouseConnection, qualified: str, table: Table
) -> int:
    """Copy one warehouse table's rows into the store table, by column name (columns the
    warehouse never had stay empty)."""
    present = {r[0] for r in warehouse.execute(f"describe {qualified}").fetchall()}
    names = [c.name for c in table.columns if c.name in present]
    found = warehouse.execute(f"select {', '.join(names)} from {qualified}").fetchall()
    if found:
        connection.execute(insert(table), [dict(zip(names, r, strict=True)) for r in found])
    return len(found)


def migrate_from_warehouse(warehouse: WarehouseConnection, url: str | None = None) -> dict:
    """Copy the operational tables an older warehouse kept (alerts.*, governance.firewall_*,
    governance.exception_requests, governance.review_packs; then the governance records:
    definition versions, changelog, retired segments, publish holds and releases, language
    findings, health.breaches) into the store, once per group (WAREHOUSE_MOVES): only while
    the group's tables in the store are still empty. Returns the rows copied per table ({}
    when nothing was done). The warehouse tables are left in place, untouched."""
    copied: dict[str, int] = {}
    with transaction(url) as connection:
        for group in WAREHOUSE_MOVES:
            if not _all_empty(connection, list(group.values())):
                continue
            for qualified, table in group.items():
                if _warehouse_has(warehouse, qualified):
                    copied[qualified] = _move_table(connection, warehouse, qualified, table)
    return copied


def record_churn_fit(fit: dict[str, Any], url: str | None = None) -> None:
    """Keep the month's fit (the columns of churn_fits), replacing any earlier one: a re-run
    of the fit step supersedes the last."""
    with transaction(url) as connection:
        connection.execute(delete(churn_fits).where(churn_fits.c.month_end == fit["month_end"]))
        connection.execute(insert(churn_fits), [fit])


def earlier_churn_fits(
    before: date, model: str | None = None, url: str | None = None
) -> list[dict[str, Any]]:
    """The fits (of `model`, or of any model) recorded for months before `before`, latest
    first."""
    query = select(churn_fits).where(churn_fits.c.month_end < before)
    if model is not None:
        query = query.where(churn_fits.c.model == model)
    with transaction(url) as connection:
        found = connection.execute(query.order_by(churn_fits.c.month_end.desc())).all()
    return [dict(row._mapping) for row in found]


def churn_fit(month_end: date, url: str | None = None) -> dict[str, Any] | None:
    """The month's recorded fit, or None when the fit step never ran for it."""
    with transaction(url) as connection:
        found = connection.execute(
            select(churn_fits).where(churn_fits.c.month_end == month_end)
        ).first()
    return dict(found._mapping) if found else None


def record_calibration(calibration: dict[str, Any], url: str | None = None) -> None:
    """Keep the quarter's calibration (the columns of calibrations), replacing any earlier
    one of the same month."""
    with transaction(url) as connection:
        connection.execute(
            delete(calibrations).where(calibrations.c.month_end == calibration["month_end"])
        )
        connection.execute(insert(calibrations), [calibration])


def latest_calibration(
    on_or_before: date, since: date | None = None, url: str | None = None
) -> dict[str, Any] | None:
    """The latest calibration made for a month up to `on_or_before` (and after `since`, when
    given), or None."""
    query = select(calibrations).where(calibrations.c.month_end <= on_or_before)
    if since is not None:
        query = query.where(calibrations.c.month_end > since)
    with transaction(url) as connection:
        found = connection.execute(query.order_by(calibrations.c.month_end.desc()).limit(1)).first()
    return dict(found._mapping) if found else None
