"""Load a user's own files (CSV or Parquet) into the warehouse through a column mapping.

A retailer's order log arrives with its own column names and date format. The mapping in
config/sources.yaml says which of their columns is which canonical column, so a new file
loads without code changes. This module is the front door: it reads the mapping, finds the
files, says in one line what is wrong with either, lands a changed file as it is in
landing.<source> with each row's position, and skips a file that has not changed.

The rules that decide which rows can be trusted are dbt models (dbt_project/models/ingest,
macros/ingest.sql), built here in this process right after the landing: rows with a
missing id, an unparseable or implausible date, a negative or absurd amount, a duplicate
key or an unknown customer are never dropped silently and never crash the run: they go to
`quarantine.rejected_rows` with the reason and the original record, the others to
raw.<source>, and the counts are reported.
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

from segment_cadence.platform import dbt_in_process, paths
from segment_cadence.platform.crash_points import crash_point
from segment_cadence.platform.warehouse import (
    WarehouseConnection,
    ensure_schema,
    land_from,
    table_exists,
)


def _ingest_sources() -> dict[str, dict[str, Any]]:
    """The canonical columns, kinds, keys and month columns of each source: the dbt
    project's `ingest_sources` var, which the ingest rules read too (one home for both)."""
    project = yaml.safe_load((paths.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    return project["vars"]["ingest_sources"]


INGEST_SOURCES = _ingest_sources()
# Canonical columns and their kinds, per source. The kind decides parsing and checks.
CANONICAL: dict[str, dict[str, str]] = {
    name: dict(spec["columns"]) for name, spec in INGEST_SOURCES.items()
}
PRIMARY_KEY = {name: spec["key"] for name, spec in INGEST_SOURCES.items()}
# The date that places a row in a calendar month, for the sources that monthly models read
# incrementally (raw._month_fingerprints, dbt_project/models/ingest/ingest_month_fingerprints.sql).
MONTH_COLUMN = {
    name: spec["month_column"] for name, spec in INGEST_SOURCES.items() if spec.get("month_column")
}
# Sources whose customer_id must name a loaded customer.
REFERENCES_CUSTOMERS = tuple(
    name for name, spec in INGEST_SOURCES.items() if spec.get("references_customers")
)
LOAD_ORDER = ("customers", "team_members", "orders", "engagement_events", "campaign_sends")


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


class IngestRulesFailed(RuntimeError):
    """The ingest rules (dbt) could not run on a landed file; the message says which and why."""


@dataclass(frozen=True)
class LastLoad:
    fingerprint: str
    rows_loaded: int


def _landed_relation(spec: SourceSpec) -> str:
    """How the file is landed: a view over a single Parquet file, whose row positions the
    file itself gives (nothing is copied); otherwise a table, numbered in reading order once,
    so that every rule sees the same positions."""
    return "view" if spec.format == "parquet" and len(_files(spec)) == 1 else "table"


def _landing_select(spec: SourceSpec) -> str:
    """The file's own columns, as read, and each row's position (_source_row, 1-based)."""
    if _landed_relation(spec) == "view":
        return (
            "select * exclude (file_row_number), file_row_number + 1 as _source_row "
            f"from {_reader(spec)}"
        )
    exclude = " exclude (file_row_number)" if spec.format == "parquet" else ""
    return f"select *{exclude}, row_number() over () as _source_row from {_reader(spec)} as src"


def _drop_landed(con: duckdb.DuckDBPyConnection, source: str) -> None:
    found = con.execute(
        "select table_type from information_schema.tables "
        "where table_schema = 'landing' and table_name = ?",
        [source],
    ).fetchone()
    if found:
        kind = "view" if found[0] == "VIEW" else "table"
        con.execute(f"drop {kind} landing.{source}")


def land(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """landing.<source>: the file as it is, once its mapped columns are known to be there."""
    try:
        described = con.execute(f"describe select * from {_reader(spec)}").fetchall()
    except duckdb.Error as error:
        raise IngestConfigError(f"source '{spec.name}': cannot read {spec.path}: {error}") from None
    available = [r[0] for r in described if r[0] != "file_row_number"]
    missing = [src for src in spec.columns.values() if src not in available]
    if missing:
        raise IngestConfigError(
            f"source '{spec.name}': column(s) {', '.join(missing)} named in the mapping are not in "
            f"{spec.path}; the file has: {', '.join(available)}"
        )
    # Numbering in reading order needs the order kept (dbt's settings turn it off).
    con.execute("set preserve_insertion_order = true")
    _drop_landed(con, spec.name)
    con.execute(
        f"create or replace {_landed_relation(spec)} landing.{spec.name} as {_landing_select(spec)}"
    )


def rules_build(
    spec: SourceSpec, max_order_amount: float, plausible: PlausibleDates, load_fingerprint: str
) -> dbt_in_process.DbtBuild:
    """The ingest models that check one landed source, and their parameters."""
    select = ["ingest_checked", f"ingest_{spec.name}", "ingest_rejected_rows", "ingest_loads"]
    if spec.name in MONTH_COLUMN:
        select.append("ingest_month_fingerprints")
    return dbt_in_process.DbtBuild(
        select=tuple(select),
        variables={
            "ingest_source": spec.name,
            "ingest_columns": spec.columns,
            "ingest_date_format": spec.date_format or "",
            "max_order_amount": float(max_order_amount),
            "plausible_earliest": plausible.earliest.isoformat(),
            "plausible_latest_days_ahead": plausible.latest_days_ahead,
            "ingest_fingerprint": load_fingerprint,
        },
    )


def _build(con: duckdb.DuckDBPyConnection, source: str, job: dbt_in_process.DbtBuild) -> None:
    try:
        dbt_in_process.build(con, job)
    except dbt_in_process.DbtBuildFailed as error:
        raise IngestRulesFailed(f"source '{source}': the ingest rules failed: {error}") from None


def store_month_fingerprints(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Row count and checksum per calendar month of a loaded source, in raw._month_fingerprints
    (the dbt model ingest_month_fingerprints, over raw.<source> as it stands).

    The incremental dbt models (dbt_project/macros/monthly_slices.sql) compare them with the
    fingerprints their slices were built from: a month whose rows changed (late or corrected
    data) is rebuilt on the next refresh, the others are left alone. A load does it as one of
    its rules; this is for a source loaded before fingerprints existed, or changed by hand.
    """
    if source not in MONTH_COLUMN:
        return
    job = dbt_in_process.DbtBuild(("ingest_month_fingerprints",), {"ingest_source": source})
    _build(con, source, job)


def last_load(con: WarehouseConnection, source: str) -> LastLoad | None:
    """The latest load of a source recorded in raw._loads, if any."""
    if not table_exists(con, "raw", "_loads"):
        return None
    found = con.execute(
        "select fingerprint, rows_loaded from raw._loads where source = ? "
        "order by loaded_at desc limit 1",
        [source],
    ).fetchone()
    return LastLoad(found[0], found[1]) if found else None


def quarantine_counts(con: WarehouseConnection, source: str) -> dict[str, int]:
    """Refused rows of a source by reason, as the last load left them."""
    if not table_exists(con, "quarantine", "rejected_rows"):
        return {}
    return dict(
        con.execute(
            "select reason, count(*) from quarantine.rejected_rows where source = ? "
            "group by 1 order by 1",
            [source],
        ).fetchall()
    )


def _has_month_fingerprints(con: WarehouseConnection, source: str) -> bool:
    return table_exists(con, "raw", "_month_fingerprints") and bool(
        con.execute(
            "select count(*) from raw._month_fingerprints where source = ?", [source]
        ).fetchone()[0]
    )


def load_fingerprint(
    con: WarehouseConnection,
    spec: SourceSpec,
    max_order_amount: float,
    plausible: PlausibleDates,
) -> str:
    """The source's fingerprint, with the customers' for the sources checked against them:
    the unknown-customer rule depends on the customers loaded, so reload when they change."""
    own = fingerprint(spec, max_order_amount, plausible)
    if spec.name not in REFERENCES_CUSTOMERS:
        return own
    customers = last_load(con, "customers")
    return hashlib.sha256((own + (customers.fingerprint if customers else "")).encode()).hexdigest()


def load_source(
    con: WarehouseConnection,
    spec: SourceSpec,
    max_order_amount: float,
    force: bool = False,
    *,
    plausible: PlausibleDates = PlausibleDates(),
    front: duckdb.DuckDBPyConnection | None = None,
) -> LoadResult:
    """Land one source and run its ingest rules: raw.<source> gets the accepted rows,
    quarantine.rejected_rows the refused ones. Idempotent.

    A load whose files and mapping are unchanged since the last one is skipped, so a
    24-month backfill reads each file once. A load interrupted before its rules finish
    leaves raw.<source> and raw._loads as they were (each model replaces its table whole,
    the load's record is written last), so the next refresh loads again.

    `front` is the DuckDB where the file is landed (default: `con` itself). On Spark the
    landed table travels from there to the endpoint, where the rules are built and the
    bookkeeping is read.
    """
    front = con if front is None else front
    ensure_schema(con)
    files = _files(spec)
    print_fp = load_fingerprint(con, spec, max_order_amount, plausible)
    last = last_load(con, spec.name)
    if not force and last and last.fingerprint == print_fp and table_exists(con, "raw", spec.name):
        if spec.name in MONTH_COLUMN and not _has_month_fingerprints(con, spec.name):
            store_month_fingerprints(front, spec.name)  # loaded before fingerprints existed
        quarantined = quarantine_counts(con, spec.name)
        return LoadResult(
            spec.name,
            last.rows_loaded + sum(quarantined.values()),
            last.rows_loaded,
            quarantined,
            skipped=True,
            files=files,
        )
    land(front, spec)
    land_from(front, con, "landing", spec.name)
    crash_point("ingest")
    # dbt builds on the target in use; `front` is the DuckDB file this process holds open,
    # which dbt's DuckDB profile must share (its Spark profile reads none).
    _build(front, spec.name, rules_build(spec, max_order_amount, plausible, print_fp))
    rows_read = con.execute(f"select count(*) from landing.{spec.name}").fetchone()[0]
    rows_loaded = con.execute(f"select count(*) from raw.{spec.name}").fetchone()[0]
    quarantined = quarantine_counts(con, spec.name)
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
