"""Load a user's own files (CSV or Parquet) into the warehouse through a column mapping.

A retailer's order log arrives with its own column names and date format. The mapping in
config/sources.yaml says which of their columns is which canonical column, so a new file
loads without code changes. Rows that cannot be trusted (missing id, unparseable date,
negative or absurd amount, duplicate key, unknown customer) are never dropped silently and
never crash the run: they go to `quarantine.rejected_rows` with the reason and the original
record, and the counts are reported.
"""

from __future__ import annotations

import glob
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from segment_cadence import paths
from segment_cadence.warehouse import ensure_schema, table_exists

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
class IngestConfig:
    sources: dict[str, SourceSpec]
    max_order_amount: float = 1_000_000.0


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
        sources=specs, max_order_amount=float(document.get("max_order_amount", 1_000_000))
    )


def _files(spec: SourceSpec) -> list[str]:
    found = sorted(glob.glob(spec.path))
    if not found:
        raise IngestConfigError(
            f"source '{spec.name}': no file at {spec.path}; generate data with "
            "`segment-cadence generate` or point config/sources.yaml at your file"
        )
    return found


def fingerprint(spec: SourceSpec, max_order_amount: float) -> str:
    """Identity of what a load would read: the mapping and each file's size and mtime."""
    digest = hashlib.sha256(json.dumps([spec.__dict__, max_order_amount], sort_keys=True).encode())
    for name in _files(spec):
        stat = Path(name).stat()
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _reader(spec: SourceSpec) -> str:
    files = _files(spec)
    listing = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    if spec.format == "parquet":
        return f"read_parquet({listing}, union_by_name = true)"
    delimiter = spec.csv_delimiter.replace("'", "''")
    return (
        f"read_csv({listing}, all_varchar = true, header = {str(spec.csv_header).lower()}, "
        f"delim = '{delimiter}', union_by_name = true)"
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _parse_expr(kind: str, column: str, date_format: str | None) -> str:
    raw = f"src.{_quote(column)}"
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


def _reason_expr(source: str, max_amount: float) -> str:
    """The first reason a typed row cannot be loaded, or NULL when it is fine."""
    whens: list[str] = []
    kinds = CANONICAL[source]
    key = PRIMARY_KEY[source]
    for column, kind in kinds.items():
        if kind == "id":
            whens.append(f"when {column} is null then 'missing {column}'")
    for column, kind in kinds.items():
        if kind in ("date", "timestamp"):
            whens.append(f"when {column} is null and _raw_{column} is null then 'missing {column}'")
            whens.append(f"when {column} is null then 'unparseable {column}'")
        if kind == "amount":
            whens.append(f"when {column} is null and _raw_{column} is null then 'missing {column}'")
            whens.append(f"when {column} is null then 'unparseable {column}'")
            whens.append(f"when isnan({column}) or isinf({column}) then 'absurd {column}'")
            whens.append(f"when {column} < 0 then 'negative {column}'")
            whens.append(f"when {column} > {max_amount!r} then 'absurd {column}'")
    whens.append(f"when _key_rank > 1 then 'duplicate {key}'")
    if source in REFERENCES_CUSTOMERS:
        whens.append("when not _known_customer then 'unknown customer_id'")
    return "case " + " ".join(whens) + " end"


def load_source(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, max_order_amount: float, force: bool = False
) -> LoadResult:
    """Load one source into raw.<source>, quarantining bad rows. Idempotent.

    A load whose files and mapping are unchanged since the last one is skipped, so a
    24-month backfill reads each file once.
    """
    ensure_schema(con)
    files = _files(spec)
    print_fp = fingerprint(spec, max_order_amount)
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
        available = [r[0] for r in con.execute("describe _src").fetchall()]
    except duckdb.Error as error:
        raise IngestConfigError(f"source '{spec.name}': cannot read {spec.path}: {error}") from None
    missing = [src for src in spec.columns.values() if src not in available]
    if missing:
        raise IngestConfigError(
            f"source '{spec.name}': column(s) {', '.join(missing)} named in the mapping are not in "
            f"{spec.path}; the file has: {', '.join(available)}"
        )

    kinds = CANONICAL[spec.name]
    typed = []
    for column, kind in kinds.items():
        source_column = spec.columns[column]
        typed.append(f"{_parse_expr(kind, source_column, spec.date_format)} as {column}")
        typed.append(
            f"nullif(trim(cast(src.{_quote(source_column)} as varchar)), '') as _raw_{column}"
        )
    key = PRIMARY_KEY[spec.name]
    known = (
        "customer_id in (select customer_id from raw.customers)"
        if spec.name in REFERENCES_CUSTOMERS
        else "true"
    )
    con.execute(
        f"""
        create or replace temp table _typed as
        with numbered as (
            select row_number() over () as _row, src.* from _src as src
        ),
        parsed as (
            select _row, to_json(src) as _record, {", ".join(typed)}
            from numbered as src
        ),
        ranked as (
            select *,
                case when {key} is null then 1
                     else row_number() over (partition by {key} order by _row) end as _key_rank,
                {known} as _known_customer
            from parsed
        )
        select *, {_reason_expr(spec.name, max_order_amount)} as _reason from ranked
        """
    )
    columns = ", ".join(kinds)
    rows_read = con.execute("select count(*) from _typed").fetchone()[0]
    con.execute("begin transaction")
    try:
        con.execute(
            f"create or replace table raw.{spec.name} as "
            f"select {columns} from _typed where _reason is null order by _row"
        )
        con.execute("delete from quarantine.rejected_rows where source = ?", [spec.name])
        con.execute(
            "insert into quarantine.rejected_rows "
            "select ?, _row, _reason, cast(_record as varchar), current_timestamp "
            "from _typed where _reason is not null",
            [spec.name],
        )
        quarantined = dict(
            con.execute(
                "select _reason, count(*) from _typed where _reason is not null group by 1 order by 1"
            ).fetchall()
        )
        rows_loaded = rows_read - sum(quarantined.values())
        con.execute(
            "insert into raw._loads values (?, ?, current_timestamp, ?, ?)",
            [spec.name, print_fp, rows_loaded, sum(quarantined.values())],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        con.execute("drop table if exists _typed")
    return LoadResult(spec.name, rows_read, rows_loaded, quarantined, skipped=False, files=files)


def load_all(
    con: duckdb.DuckDBPyConnection, config: IngestConfig, force: bool = False
) -> dict[str, LoadResult]:
    """Load every configured source in dependency order (customers before what refers to them)."""
    results: dict[str, LoadResult] = {}
    for name in LOAD_ORDER:
        if name in config.sources:
            results[name] = load_source(con, config.sources[name], config.max_order_amount, force)
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
