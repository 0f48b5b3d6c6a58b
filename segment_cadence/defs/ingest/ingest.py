"""Load a user's own files (CSV or Parquet) into the warehouse through a column mapping.

A retailer's order log arrives with its own column names and date format. The mapping in
config/sources.yaml says which of their columns is which canonical column, so a new file
loads without code changes. Rows that cannot be trusted (missing id, unparseable or
implausible date, negative or absurd amount, duplicate key, unknown customer) are never
dropped silently and never crash the run: they go to `quarantine.rejected_rows` with the
reason and the original record, and the counts are reported.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from segment_cadence.platform import paths
from segment_cadence.platform.crash_points import crash_point
from segment_cadence.platform.warehouse import ensure_schema, table_exists, transaction

# Canonical columns and their kinds, per source. The kind decides parsing and checks.
CANONICAL: dict[str, dict[str, str]] = {
    "customers": {
        "customer_id": "id",
        "signup_date": "date",
        "region": "text",
        "age_band": "text",
        "language": "text",
        "email_consent": "bool",
    },
    "team_members": {"sender_id": "id", "name": "text", "team": "text", "joined_date": "date"},
    "orders": {
        "order_line_id": "id",
        "order_id": "id",
        "customer_id": "id",
        "order_date": "date",
        "amount": "amount",
        "category": "text",
    },
    "engagement_events": {
        "event_id": "id",
        "customer_id": "id",
        "event_type": "text",
        "channel": "text",
        "event_at": "timestamp",
    },
    "campaign_sends": {
        "send_id": "id",
        "campaign_id": "id",
        "campaign_name": "text",
        "customer_id": "id",
        "sender_id": "text",
        "channel": "text",
        "targeted_segment": "text",
        "sent_at": "timestamp",
    },
}
PRIMARY_KEY = {
    "customers": "customer_id",
    "team_members": "sender_id",
    "orders": "order_line_id",
    "engagement_events": "event_id",
    "campaign_sends": "send_id",
}
# The date that places a row in a calendar month, for the sources that monthly models read
# incrementally (see month_fingerprints below).
MONTH_COLUMN = {
    "orders": "order_date",
    "engagement_events": "event_at",
    "campaign_sends": "sent_at",
}
# Sources whose customer_id must name a loaded customer.
REFERENCES_CUSTOMERS = ("orders", "engagement_events", "campaign_sends")
LOAD_ORDER = ("customers", "team_members", "orders", "engagement_events", "campaign_sends")
SQL_TYPES = {"id": "varchar", "text": "varchar", "date": "date", "timestamp": "timestamp",
             "amount": "double", "bool": "boolean"}  # fmt: skip


class IngestConfigError(ValueError):
    """The mapping or the file it points at is unusable; the message says how to fix it."""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    path: str
    format: str
    columns: dict[str, str]
    date_format: str | None = None
    csv_delimiter: str = ","
    csv_header: bool = True


@dataclass(frozen=True)
class PlausibleDates:
    """The days a date or timestamp may fall on to be believed (both ends included).

    An order dated 1800-01-01 or 2099-01-01 parses, but it is a typing or export error, and
    loaded it would distort recency and tenure for years. The latest day moves with the load
    (today plus `latest_days_ahead`; tomorrow by default, so a time zone ahead of the warehouse
    is not refused).
    """

    earliest: date = date(1900, 1, 1)
    latest_days_ahead: int = 1


# Far enough for any business calendar; beyond it the date arithmetic would overflow.
MAX_DAYS_AHEAD = 36_500


@dataclass(frozen=True)
class IngestConfig:
    sources: dict[str, SourceSpec]
    max_order_amount: float = 1_000_000.0
    plausible_dates: PlausibleDates = PlausibleDates()


@dataclass
class LoadResult:
    source: str
    rows_read: int
    rows_loaded: int
    quarantined: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    files: list[str] = field(default_factory=list)

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())


def _resolve(path: str, base: Path) -> str:
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else base / candidate)


def _earliest_day(value: Any, path: Path) -> date:
    # YAML reads 1900-01-01 as a date, and '1900-01-01 12:00' as a datetime (a date subclass).
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = date.fromisoformat(value)
    if not isinstance(value, date) or isinstance(value, datetime):
        raise IngestConfigError(
            f"{path}: plausible_dates.earliest: must be a date such as 1900-01-01, got {value!r}"
        )
    if value >= date.today():
        raise IngestConfigError(
            f"{path}: plausible_dates.earliest: {value} is not in the past; every date "
            "would be quarantined"
        )
    return value


def _days_ahead(value: Any, path: Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS_AHEAD:
        raise IngestConfigError(
            f"{path}: plausible_dates.latest_days_ahead: must be a whole number of days from 0 "
            f"to {MAX_DAYS_AHEAD} (1 = nothing after tomorrow), got {value!r}"
        )
    return value


def _plausible_dates(raw: Any, path: Path) -> PlausibleDates:
    """The `plausible_dates` section of the mapping, checked; the defaults when it is absent."""
    if raw is None:
        return PlausibleDates()
    if not isinstance(raw, dict):
        raise IngestConfigError(
            f"{path}: plausible_dates: expected a mapping with 'earliest' and "
            f"'latest_days_ahead', got {raw!r}"
        )
    unknown = sorted(set(map(str, raw)) - {"earliest", "latest_days_ahead"})
    if unknown:
        raise IngestConfigError(
            f"{path}: plausible_dates: unknown field {', '.join(repr(u) for u in unknown)}; "
            "the fields are 'earliest' and 'latest_days_ahead'"
        )
    default = PlausibleDates()
    return PlausibleDates(
        earliest=_earliest_day(raw.get("earliest", default.earliest), path),
        latest_days_ahead=_days_ahead(
            raw.get("latest_days_ahead", default.latest_days_ahead), path
        ),
    )


def load_config(path: Path | str = paths.SOURCES_FILE, base: Path | None = None) -> IngestConfig:
    """Read and check the source mapping; relative data paths resolve against `base`."""
    path = Path(path)
    base = base or paths.state_dir()
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise IngestConfigError(f"{path}: source mapping not found") from None
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
        raise IngestConfigError(f"{path}: expected a mapping with a 'sources' section")
    specs: dict[str, SourceSpec] = {}
    for name, raw in document["sources"].items():
        if name not in CANONICAL:
            raise IngestConfigError(
                f"{path}: unknown source '{name}'; known sources: {', '.join(CANONICAL)}"
            )
        if not isinstance(raw, dict) or not raw.get("path"):
            raise IngestConfigError(f"{path}: source '{name}' needs a 'path'")
        columns = dict(raw.get("columns") or {c: c for c in CANONICAL[name]})
        unknown = sorted(set(columns) - set(CANONICAL[name]))
        if unknown:
            raise IngestConfigError(
                f"{path}: source '{name}' maps unknown canonical column(s) {', '.join(unknown)}; "
                f"canonical columns are {', '.join(CANONICAL[name])}"
            )
        missing = [c for c in CANONICAL[name] if c not in columns]
        if missing:
            raise IngestConfigError(
                f"{path}: source '{name}' does not map canonical column(s) {', '.join(missing)}"
            )
        data_path = _resolve(str(raw["path"]), base)
        fmt = str(
            raw.get("format") or ("csv" if data_path.endswith((".csv", ".csv.gz")) else "parquet")
        )
        if fmt not in ("csv", "parquet"):
            raise IngestConfigError(f"{path}: source '{name}' format must be csv or parquet")
        csv_options = raw.get("csv") or {}
        specs[name] = SourceSpec(
            name=name,
            path=data_path,
            format=fmt,
            columns=columns,
            date_format=raw.get("date_format"),
            csv_delimiter=str(csv_options.get("delimiter", ",")),
            csv_header=bool(csv_options.get("header", True)),
        )
    return IngestConfig(
        sources=specs,
        max_order_amount=float(document.get("max_order_amount", 1_000_000)),
        plausible_dates=_plausible_dates(document.get("plausible_dates"), path),
    )


def _files(spec: SourceSpec) -> list[str]:
    found = sorted(glob.glob(spec.path))
    if not found:
        raise IngestConfigError(
            f"source '{spec.name}': no file at {spec.path}; generate data with "
            "`segment-cadence generate` or point config/sources.yaml at your file"
        )
    return found


def fingerprint(
    spec: SourceSpec, max_order_amount: float, plausible: PlausibleDates = PlausibleDates()
) -> str:
    """Identity of what a load would read and check: the mapping, the row checks' settings
    (a changed bound reloads) and each file's size and mtime."""
    checks = [max_order_amount, plausible.earliest.isoformat(), plausible.latest_days_ahead]
    digest = hashlib.sha256(json.dumps([spec.__dict__, *checks], sort_keys=True).encode())
    for name in _files(spec):
        stat = Path(name).stat()
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _reader(spec: SourceSpec) -> str:
    files = _files(spec)
    listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    if spec.format == "parquet":
        return f"read_parquet({listing}, union_by_name = true, file_row_number = true)"
    delimiter = spec.csv_delimiter.replace("'", "''")
    return (
        f"read_csv({listing}, all_varchar = true, header = {str(spec.csv_header).lower()}, "
        f"delim = '{delimiter}', union_by_name = true)"
    )


def _row_number(spec: SourceSpec) -> str:
    """Position of a row in its source, 1-based. A single Parquet file reports it cheaply;
    otherwise rows are numbered in reading order."""
    single_parquet = spec.format == "parquet" and len(_files(spec)) == 1
    return "src.file_row_number + 1" if single_parquet else "row_number() over ()"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


NATIVE_TYPES = {
    "date": ("DATE",),
    "timestamp": ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "DATE"),
    "amount": ("DOUBLE", "FLOAT", "REAL", "INTEGER", "BIGINT", "SMALLINT", "HUGEINT"),
    "bool": ("BOOLEAN",),
}


def _parse_expr(
    kind: str, column: str, date_format: str | None, source_type: str = "VARCHAR"
) -> str:
    """Typed value of a source column, NULL when it cannot be read as its kind.

    Columns already of the right type (Parquet usually) are cast directly; text is trimmed
    and parsed, with the mapping's date format when one is given.
    """
    raw = f"src.{_quote(column)}"
    if (
        source_type.upper() in NATIVE_TYPES.get(kind, ())
        or source_type.upper().startswith("DECIMAL")
        and kind == "amount"
    ):
        return f"cast({raw} as {SQL_TYPES[kind]})"
    text = f"nullif(trim(cast({raw} as varchar)), '')"
    if kind in ("id", "text"):
        return text
    if kind in ("date", "timestamp"):
        target = SQL_TYPES[kind]
        parsed = f"try_cast({text} as {target})"
        if date_format:
            fmt = date_format.replace("'", "''")
            parsed = f"coalesce(try_strptime({text}, '{fmt}')::{target}, {parsed})"
        return parsed
    if kind == "amount":
        return f"try_cast({text} as double)"
    if kind == "bool":
        return f"try_cast({text} as boolean)"
    raise AssertionError(kind)


def _implausible(column: str, plausible: PlausibleDates) -> str:
    """SQL true when a date or timestamp falls outside the plausible days. The latest day is
    computed by the warehouse at load time; a timestamp is implausible from the first instant
    of the day after it."""
    first_day_after = plausible.latest_days_ahead + 1
    return (
        f"{column} < date '{plausible.earliest.isoformat()}' "
        f"or {column} >= current_date + {first_day_after}"
    )


def _reason_expr(source: str, max_amount: float, plausible: PlausibleDates) -> str:
    """The first reason a typed row cannot be loaded, or NULL when it is fine."""
    whens: list[str] = []
    kinds = CANONICAL[source]
    key = PRIMARY_KEY[source]
    for column, kind in kinds.items():
        if kind == "id":
            whens.append(f"when {column} is null then 'missing {column}'")
    for column, kind in kinds.items():
        if kind in ("date", "timestamp"):
            whens.append(f"when {column} is null and _blank_{column} then 'missing {column}'")
            whens.append(f"when {column} is null then 'unparseable {column}'")
            whens.append(f"when {_implausible(column, plausible)} then 'implausible {column}'")
        if kind == "amount":
            whens.append(f"when {column} is null and _blank_{column} then 'missing {column}'")
            whens.append(f"when {column} is null then 'unparseable {column}'")
            whens.append(f"when isnan({column}) or isinf({column}) then 'absurd {column}'")
            whens.append(f"when {column} < 0 then 'negative {column}'")
            whens.append(f"when {column} > {max_amount!r} then 'absurd {column}'")
    whens.append(f"when _is_duplicate then 'duplicate {key}'")
    if source in REFERENCES_CUSTOMERS:
        whens.append("when not _known_customer then 'unknown customer_id'")
    return "case " + " ".join(whens) + " end"


def store_month_fingerprints(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Row count and checksum per calendar month of a loaded source, in raw._month_fingerprints.

    The incremental dbt models (dbt_project/macros/monthly_slices.sql) compare them with the
    fingerprints their slices were built from: a month whose rows changed (late or corrected
    data) is rebuilt on the next refresh, the others are left alone. One scan of the table,
    done only when the source is (re)loaded.
    """
    if source not in MONTH_COLUMN:
        return
    columns = ", ".join(CANONICAL[source])
    con.execute("delete from raw._month_fingerprints where source = ?", [source])
    con.execute(
        f"""
        insert into raw._month_fingerprints
        select ?, cast(date_trunc('month', {MONTH_COLUMN[source]}) as date), count(*),
               cast(sum(hash({columns})) as varchar)
        from raw.{source} group by 2
        """,
        [source],
    )


def load_source(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    max_order_amount: float,
    force: bool = False,
    *,
    plausible: PlausibleDates = PlausibleDates(),
) -> LoadResult:
    """Load one source into raw.<source>, quarantining bad rows. Idempotent.

    A load whose files and mapping are unchanged since the last one is skipped, so a
    24-month backfill reads each file once.
    """
    ensure_schema(con)
    files = _files(spec)
    print_fp = fingerprint(spec, max_order_amount, plausible)
    if spec.name in REFERENCES_CUSTOMERS:
        # The unknown-customer check depends on the customers loaded: reload when they change.
        customers = con.execute(
            "select fingerprint from raw._loads where source = 'customers' "
            "order by loaded_at desc limit 1"
        ).fetchone()
        print_fp = hashlib.sha256(
            (print_fp + (customers[0] if customers else "")).encode()
        ).hexdigest()
    last = con.execute(
        "select fingerprint, rows_loaded from raw._loads where source = ? "
        "order by loaded_at desc limit 1",
        [spec.name],
    ).fetchone()
    if not force and last and last[0] == print_fp and table_exists(con, "raw", spec.name):
        if (
            spec.name in MONTH_COLUMN
            and not con.execute(
                "select count(*) from raw._month_fingerprints where source = ?", [spec.name]
            ).fetchone()[0]
        ):
            store_month_fingerprints(con, spec.name)  # loaded before fingerprints existed
        quarantined = dict(
            con.execute(
                "select reason, count(*) from quarantine.rejected_rows where source = ? group by 1",
                [spec.name],
            ).fetchall()
        )
        return LoadResult(spec.name, last[1] + sum(quarantined.values()), last[1], quarantined,
                          skipped=True, files=files)  # fmt: skip

    try:
        con.execute(f"create or replace temp view _src as select * from {_reader(spec)}")
        described = con.execute("describe _src").fetchall()
        available = [r[0] for r in described]
        source_types = {r[0]: str(r[1]) for r in described}
    except duckdb.Error as error:
        raise IngestConfigError(f"source '{spec.name}': cannot read {spec.path}: {error}") from None
    missing = [src for src in spec.columns.values() if src not in available]
    if missing:
        raise IngestConfigError(
            f"source '{spec.name}': column(s) {', '.join(missing)} named in the mapping are not in "
            f"{spec.path}; the file has: {', '.join(available)}"
        )

    kinds = CANONICAL[spec.name]
    key = PRIMARY_KEY[spec.name]
    typed = [
        f"{_parse_expr(kind, spec.columns[c], spec.date_format, source_types[spec.columns[c]])} as {c}"
        for c, kind in kinds.items()
    ]
    # Only columns that can be unparseable need to know whether the source value was blank.
    typed += [
        f"src.{_quote(spec.columns[c])} is null as _blank_{c}"
        if source_types[spec.columns[c]] != "VARCHAR"
        else f"nullif(trim(src.{_quote(spec.columns[c])}), '') is null as _blank_{c}"
        for c, kind in kinds.items()
        if kind in ("date", "timestamp", "amount")
    ]
    known = (
        "customer_id in (select customer_id from raw.customers)"
        if spec.name in REFERENCES_CUSTOMERS
        else "true"
    )
    # Typed rows are never stored: each pass streams from the source. One aggregate finds the
    # duplicated keys (the first occurrence stays); one scan writes the good rows; only when
    # some rows were refused does another scan set them aside with their original record.
    single_parquet = spec.format == "parquet" and len(files) == 1
    numbered = f"(select *, {_row_number(spec)} as _row from _src as src)"
    key_expr = _parse_expr(
        kinds[key], spec.columns[key], spec.date_format, source_types[spec.columns[key]]
    )
    checked = f"""
        select *, {_reason_expr(spec.name, max_order_amount, plausible)} as _reason
        from (
            select typed.*,
                coalesce(typed._row <> d._first_row, false) as _is_duplicate,
                {known} as _known_customer
            from (select _row, {", ".join(typed)} from {numbered} as src) as typed
            left join _first_of_duplicates as d on d._key = typed.{key}
        )
    """
    columns = ", ".join(kinds)
    if single_parquet:
        # Rows are numbered by their position in the file, so the order in which they are
        # processed does not matter, and DuckDB need not keep it (less memory, more threads).
        con.execute("set preserve_insertion_order = false")
    try:
        con.execute(
            f"""
            create or replace temp table _first_of_duplicates as
            select {key_expr} as _key, min(_row) as _first_row
            from {numbered} as src
            where {key_expr} is not null
            group by 1 having count(*) > 1
            """
        )
        rows_read = con.execute("select count(*) from _src").fetchone()[0]
        with transaction(con):
            con.execute(
                f"create or replace table raw.{spec.name} as select {columns} from ({checked}) "
                "where _reason is null"
            )
            rows_loaded = con.execute(f"select count(*) from raw.{spec.name}").fetchone()[0]
            store_month_fingerprints(con, spec.name)
            con.execute("delete from quarantine.rejected_rows where source = ?", [spec.name])
            if rows_loaded < rows_read:
                # The original record, as read, only for the rows that are kept aside.
                con.execute(
                    "insert into quarantine.rejected_rows "
                    "select ?, bad._row, bad._reason, cast(to_json(src) as varchar), current_timestamp "
                    f"from (select _row, _reason from ({checked}) where _reason is not null) as bad "
                    f"join {numbered} as src using (_row)",
                    [spec.name],
                )
            quarantined = dict(
                con.execute(
                    "select reason, count(*) from quarantine.rejected_rows where source = ? "
                    "group by 1 order by 1",
                    [spec.name],
                ).fetchall()
            )
            con.execute(
                "insert into raw._loads values (?, ?, current_timestamp, ?, ?)",
                [spec.name, print_fp, rows_loaded, sum(quarantined.values())],
            )
            crash_point("ingest")
    finally:
        con.execute("drop table if exists _first_of_duplicates")
        if single_parquet:
            con.execute("reset preserve_insertion_order")
    return LoadResult(spec.name, rows_read, rows_loaded, quarantined, skipped=False, files=files)


def load_all(
    con: duckdb.DuckDBPyConnection, config: IngestConfig, force: bool = False
) -> dict[str, LoadResult]:
    """Load every configured source in dependency order (customers before what refers to them)."""
    results: dict[str, LoadResult] = {}
    for name in LOAD_ORDER:
        if name in config.sources:
            results[name] = load_source(
                con,
                config.sources[name],
                config.max_order_amount,
                force,
                plausible=config.plausible_dates,
            )
    return results


def summary(result: LoadResult) -> dict[str, Any]:
    """Plain numbers for asset metadata and the CLI."""
    return {
        "rows_read": result.rows_read,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "quarantine_reasons": result.quarantined,
        "unchanged_since_last_load": result.skipped,
    }
