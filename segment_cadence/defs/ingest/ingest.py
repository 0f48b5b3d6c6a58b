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
import dataclasses
import glob
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from segment_cadence.defs.ingest import file_shapes, identity, value_formats
from segment_cadence.defs.ingest.errors import IngestConfigError, SourceFileError
from segment_cadence.defs.ingest.file_shapes import FileShape, quoted
from segment_cadence.defs.ingest.value_formats import ValueFormats
from segment_cadence.platform import dbt_in_process, paths, yaml_text
from segment_cadence.platform.crash_points import crash_point
from segment_cadence.platform.history import DataMonths
from segment_cadence.platform.warehouse import (
    WarehouseConnection,
    ensure_schema,
    land_from,
    table_exists,
)


def _ingest_sources() -> dict[str, dict[str, Any]]:
    """The canonical columns, kinds, keys and month columns of each source: the dbt
    project's `ingest_sources` var, which the ingest rules read too (one home for both)."""
    project = yaml_text.load((paths.DBT_PROJECT_DIR / "dbt_project.yml").read_text())
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
# The columns a file may leave out and what stands in for each (dbt_project.yml documents
# the words); every other canonical column must be mapped.
OPTIONAL: dict[str, dict[str, str]] = {
    name: dict(spec.get("optional") or {}) for name, spec in INGEST_SOURCES.items()
}
REQUIRED: dict[str, tuple[str, ...]] = {
    name: tuple(c for c in CANONICAL[name] if c not in OPTIONAL[name]) for name in CANONICAL
}
# The sources a mapping may leave out: `empty` (no rows) or `from_orders` (customers: one
# per customer_id of the orders). Orders are the one source every refresh needs.
OPTIONAL_SOURCE = {
    name: spec["optional_source"]
    for name, spec in INGEST_SOURCES.items()
    if spec.get("optional_source")
}
# Mapping entries that are not canonical columns but make one: an order line's amount may
# be written as a unit price and a quantity (a shop's line-item export).
LINE_ITEM_INPUTS = {"orders": ("unit_price", "quantity")}
# Where a load's source came from, as the asset metadata says it.
FROM_FILE, FROM_ORDERS, NOT_CONFIGURED = "file", "derived from orders", "not configured"

__all__ = ["IngestConfigError", "SourceFileError"]


@dataclass(frozen=True)
class SourceSpec:
    """One configured source: where its files are, their shape, how its dates and amounts
    are written, and which of its columns is which canonical column (the optional columns
    it leaves out are not in `columns`). `cache_dir` holds the copies DuckDB cannot read
    in place (zip archives, other encodings)."""

    name: str
    path: str
    columns: dict[str, str]
    shape: FileShape = FileShape()
    formats: ValueFormats = ValueFormats()
    cache_dir: str = ""
    identity: identity.Identity | None = None

    @property
    def matched_by_identity(self) -> bool:
        """Its customer_id comes from the identity map (it names customers by email or phone)."""
        return self.identity is not None and "customer_id" not in self.columns

    @property
    def format(self) -> str:
        return self.shape.format

    @property
    def absent(self) -> tuple[str, ...]:
        """Optional columns the file leaves out and nothing derives: NULL, unchecked."""
        return tuple(
            c
            for c in CANONICAL[self.name]
            if c not in self.columns and OPTIONAL[self.name].get(c) in ("none", "first_purchase")
        )

    @property
    def derived(self) -> tuple[str, ...]:
        """Optional columns the file leaves out that the front door makes (row, customer_day)."""
        return tuple(
            c
            for c in CANONICAL[self.name]
            if c not in self.columns and OPTIONAL[self.name].get(c) in ("row", "customer_day")
        )


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
    origin: str = FROM_FILE

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


SOURCE_FIELDS = (
    "path",
    "format",
    "columns",
    "file",
    "csv",
    "date_format",
    "decimal_separator",
    "thousands_separator",
    "identity",
)


def _source_spec(name: str, raw: Any, path: Path, base: Path) -> SourceSpec:
    where = f"{path}: sources.{name}"
    if name not in CANONICAL:
        raise IngestConfigError(
            f"{path}: unknown source '{name}'; known sources: {', '.join(CANONICAL)}"
        )
    if not isinstance(raw, dict) or not raw.get("path"):
        raise IngestConfigError(f"{where}: needs a 'path' (a file, or a glob of several)")
    unknown_fields = sorted(set(map(str, raw)) - set(SOURCE_FIELDS))
    if unknown_fields:
        raise IngestConfigError(
            f"{where}: unknown field {', '.join(repr(u) for u in unknown_fields)}; "
            f"the fields are {', '.join(SOURCE_FIELDS)}"
        )
    columns = raw.get("columns")
    if columns is None:
        columns = {c: c for c in CANONICAL[name]}
    if not isinstance(columns, dict):
        raise IngestConfigError(f"{where}.columns: expected canonical column: your column")
    columns = {str(k): str(v) for k, v in columns.items() if v not in (None, "")}
    inputs = LINE_ITEM_INPUTS.get(name, ())
    unknown = sorted(set(columns) - set(CANONICAL[name]) - set(inputs))
    if unknown:
        raise IngestConfigError(
            f"{where}.columns: unknown canonical column(s) {', '.join(unknown)}; "
            f"canonical columns are {', '.join([*CANONICAL[name], *inputs])}"
        )
    if "quantity" in columns and "unit_price" not in columns:
        raise IngestConfigError(f"{where}.columns: quantity needs a unit_price to make the amount")
    if "unit_price" in columns and "amount" in columns:
        raise IngestConfigError(
            f"{where}.columns: map either amount or unit_price (with quantity), not both"
        )
    named_by = identity.parse_identity(raw.get("identity"), where)
    required = REQUIRED[name]
    if named_by is not None and name != "customers":
        required = tuple(c for c in required if c != "customer_id")
    if "unit_price" in columns:
        required = tuple(c for c in required if c != "amount")
    missing = [c for c in required if c not in columns]
    if missing:
        raise IngestConfigError(
            f"{where}.columns: does not map canonical column(s) {', '.join(missing)} "
            f"(required; optional: {', '.join(OPTIONAL[name]) or 'none'})"
        )
    data_path = _resolve(str(raw["path"]), base)
    return SourceSpec(
        name=name,
        path=data_path,
        columns=columns,
        shape=file_shapes.parse_shape(raw, data_path, where),
        formats=value_formats.parse_value_formats(raw, where),
        cache_dir=str(base / "landing-cache" / name),
        identity=named_by,
    )


def _identity_declared(specs: dict[str, SourceSpec], path: Path) -> None:
    """A source matched by email or phone needs the customers to say theirs."""
    customers = specs.get("customers")
    for spec in specs.values():
        if not spec.matched_by_identity or spec.name == "customers":
            continue
        kind = spec.identity.kind  # type: ignore[union-attr]
        if customers is None or customers.identity is None or customers.identity.kind != kind:
            raise IngestConfigError(
                f"{path}: sources.{spec.name}.identity names customers by {kind}, but "
                f"sources.customers declares no {kind} column; add identity: {{{kind}: COLUMN}} "
                "to the customers"
            )


def load_config(path: Path | str = paths.SOURCES_FILE, base: Path | None = None) -> IngestConfig:
    """Read and check the source mapping; relative data paths resolve against `base`."""
    path = Path(path)
    base = base or paths.state_dir()
    try:
        document = yaml_text.load(path.read_text())
    except FileNotFoundError:
        raise IngestConfigError(f"{path}: source mapping not found") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise IngestConfigError(f"{path}: not valid YAML{at}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
        raise IngestConfigError(f"{path}: expected a mapping with a 'sources' section")
    specs = {
        str(name): _source_spec(str(name), raw, path, base)
        for name, raw in document["sources"].items()
    }
    _identity_declared(specs, path)
    if "orders" not in specs:
        raise IngestConfigError(
            f"{path}: sources.orders is missing; the orders are the one source every "
            "refresh needs (customer, date and amount of each purchase)"
        )
    return IngestConfig(
        sources=specs,
        max_order_amount=float(document.get("max_order_amount", 1_000_000)),
        plausible_dates=_plausible_dates(document.get("plausible_dates"), path),
    )


def _files(spec: SourceSpec) -> list[str]:
    found = sorted(glob.glob(spec.path))
    if not found:
        raise SourceFileError(
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
    described = dataclasses.asdict(spec)
    digest = hashlib.sha256(json.dumps([described, *checks], sort_keys=True).encode())
    for name in _files(spec):
        stat = Path(name).stat()
        digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def _readable(spec: SourceSpec) -> tuple[list[str], FileShape]:
    try:
        return file_shapes.readable_files(_files(spec), spec.shape, Path(spec.cache_dir))
    except (OSError, UnicodeDecodeError) as error:
        raise IngestConfigError(f"source '{spec.name}': cannot read {spec.path}: {error}") from None


def _reader(spec: SourceSpec) -> str:
    files, shape = _readable(spec)
    return file_shapes.reader(files, shape)


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


def _positioned_select(spec: SourceSpec, reader: str) -> str:
    """The file's own columns, as read, and each row's position (_source_row, 1-based)."""
    if _landed_relation(spec) == "view":
        return (
            f"select * exclude (file_row_number), file_row_number + 1 as _source_row from {reader}"
        )
    exclude = " exclude (file_row_number)" if spec.format == "parquet" else ""
    return f"select *{exclude}, row_number() over () as _source_row from {reader} as src"


def canonical_rewrites(spec: SourceSpec, types: dict[str, str]) -> dict[str, str]:
    """{canonical column: DuckDB expression} for the landing's `_as_<column>` columns: the
    dates and amounts the file writes in another format, rewritten as canonical text
    (value_formats), and the optional columns the front door derives."""
    kinds = CANONICAL[spec.name]
    native = {"date": ("DATE",), "timestamp": ("TIMESTAMP", "DATE")}
    rewrites: dict[str, str] = {}
    for column, file_column in spec.columns.items():
        if column not in kinds:  # a line item's unit price and quantity
            continue
        kind, file_type = kinds[column], types.get(file_column, "VARCHAR").upper()
        source = quoted(file_column)
        if kind in ("date", "timestamp") and file_type not in native[kind]:
            text = file_type == "VARCHAR"
            if spec.formats.date_formats or (kind == "timestamp" and text):
                rewrites[column] = value_formats.date_expression(source, kind, spec.formats)
        elif kind == "amount" and file_type == "VARCHAR":
            rewrites[column] = value_formats.amount_expression(source, spec.formats)
    if "unit_price" in spec.columns:
        quantity = spec.columns.get("quantity")
        rewrites["amount"] = value_formats.line_amount_expression(
            quoted(spec.columns["unit_price"]),
            quoted(quantity) if quantity else None,
            spec.formats,
        )
    if spec.matched_by_identity:
        rewrites["customer_id"] = identity.customer_id_sql(spec.identity)  # type: ignore[arg-type]
    for column in spec.derived:
        if OPTIONAL[spec.name][column] == "row":
            rewrites[column] = "cast(_source_row as varchar)"
        else:  # customer_day: an order is a customer's purchases on one day
            day = f"left({rewrites.get('order_date', quoted(spec.columns['order_date']))}, 10)"
            customer = rewrites.get(
                "customer_id", f"trim(cast({quoted(spec.columns['customer_id'])} as varchar))"
            )
            rewrites[column] = f"{customer} || '|' || cast({day} as varchar)"
    return rewrites


def landed_columns(spec: SourceSpec) -> dict[str, str]:
    """{canonical column: landed column} that the rules read: the file's own column, or
    its rewrite (_as_<column>)."""
    rewritten = set(spec.derived)
    mapping = dict(spec.columns)
    for column in CANONICAL[spec.name]:
        if column in rewritten:
            mapping[column] = f"_as_{column}"
    return mapping


def _replace_landed(
    con: duckdb.DuckDBPyConnection, name: str, select: str, relation: str = "table"
) -> None:
    """landing.<name> as `select`, a table or a view, whatever was there before."""
    _drop_landed(con, name)
    con.execute(f"create or replace {relation} landing.{name} as {select}")


def _drop_landed(con: duckdb.DuckDBPyConnection, source: str) -> None:
    found = con.execute(
        "select table_type from information_schema.tables "
        "where table_schema = 'landing' and table_name = ?",
        [source],
    ).fetchone()
    if found:
        kind = "view" if found[0] == "VIEW" else "table"
        con.execute(f"drop {kind} landing.{source}")


def _describe(con: duckdb.DuckDBPyConnection, spec: SourceSpec, reader: str) -> dict[str, str]:
    try:
        described = con.execute(f"describe select * from {reader}").fetchall()
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0]
        raise SourceFileError(f"source '{spec.name}': cannot read {spec.path}: {first}") from None
    return {r[0]: str(r[1]) for r in described if r[0] != "file_row_number"}


def read_columns(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> tuple[str, dict[str, str]]:
    """The relation that reads the source's files and {file column: type}; raises
    SourceFileError when a file is missing or unreadable, and IngestConfigError when a
    mapped column is not in the file."""
    reader = _reader(spec)
    reader, types = _text_json(reader, _describe(con, spec, reader))
    named = [*spec.columns.values(), *([spec.identity.column] if spec.identity else [])]
    missing = [src for src in named if src not in types]
    if missing:
        raise IngestConfigError(
            f"source '{spec.name}': column(s) {', '.join(missing)} named in the mapping are not in "
            f"{spec.path}; the file has: {', '.join(types)}"
        )
    return reader, types


# How many of a file's first values check_readable tries for each date column.
DATE_SAMPLE = 1000


def _dates_read(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, reader: str, types: dict[str, str]
) -> None:
    """A date column none of whose first values reads under the mapping's date format is a
    wrong format, not a file of bad rows: say so rather than quarantine every row."""
    rewrites = canonical_rewrites(spec, types)
    kinds = CANONICAL[spec.name]
    for column, file_column in spec.columns.items():
        kind = kinds.get(column)
        if kind not in ("date", "timestamp"):
            continue
        value = rewrites.get(column, quoted(file_column))
        raw = f"nullif(trim(cast({quoted(file_column)} as varchar)), '')"
        found = con.execute(
            f"select count(*), count(try_cast({value} as {kind})), any_value({raw}) "
            f"from (select * from {reader} where {raw} is not null limit {DATE_SAMPLE})"
        ).fetchone()
        if found[0] and not found[1]:
            declared = ", ".join(spec.formats.date_formats) or "ISO (no date_format set)"
            raise IngestConfigError(
                f"source '{spec.name}': column {file_column} of {spec.path}: no value in the "
                f"first {found[0]:,} reads as {declared}, e.g. {found[2]!r}; set date_format"
            )


def check_readable(config: IngestConfig) -> None:
    """Every mapped file is there, readable as its shape says, with its mapped columns and
    dates the format reads: what a refresh checks before it starts, so that a mistake is
    one line, not a failed run."""
    con = duckdb.connect()
    try:
        for spec in config.sources.values():
            reader, types = read_columns(con, spec)
            _dates_read(con, spec, reader, types)
    finally:
        con.close()


def _text_json(reader: str, types: dict[str, str]) -> tuple[str, dict[str, str]]:
    """JSON Lines fields of mixed kinds (a number here, a string there) come as JSON values,
    whose text would keep its quotes: read them as their plain text instead."""
    mixed = [c for c, t in types.items() if t == "JSON"]
    if not mixed:
        return reader, types
    replaced = ", ".join(f"{quoted(c)} ->> '$' as {quoted(c)}" for c in mixed)
    return (
        f"(select * replace ({replaced}) from {reader})",
        {c: "VARCHAR" if t == "JSON" else t for c, t in types.items()},
    )


def land(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> dict[str, str]:
    """landing.<source>: the file as it is, once its mapped columns are known to be there,
    with the canonical rewrites of its dates and amounts beside. Returns the landed column
    of each canonical column."""
    reader, types = read_columns(con, spec)
    rewrites = canonical_rewrites(spec, types)
    select = _positioned_select(spec, reader)
    if rewrites:
        extra = ", ".join(f"{sql} as _as_{column}" for column, sql in rewrites.items())
        select = f"select *, {extra} from ({select})"
    # Numbering in reading order needs the order kept (dbt's settings turn it off).
    con.execute("set preserve_insertion_order = true")
    try:
        _replace_landed(con, spec.name, select, _landed_relation(spec))
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0]
        raise SourceFileError(f"source '{spec.name}': cannot read {spec.path}: {first}") from None
    if spec.name == "customers" and spec.identity is not None:
        _replace_landed(
            con,
            identity.MAP_NAME,
            identity.map_select(
                spec.identity, quoted(spec.columns["customer_id"]), "landing.customers"
            ),
        )
    mapping = landed_columns(spec)
    mapping.update({column: f"_as_{column}" for column in rewrites})
    return mapping


def land_absent(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """landing.<source> for a source the mapping leaves out: its canonical columns, no rows."""
    columns = ", ".join(f"cast(null as varchar) as {c}" for c in CANONICAL[source])
    _replace_landed(
        con, source, f"select {columns}, cast(null as bigint) as _source_row where false"
    )


def land_customers_from_orders(con: duckdb.DuckDBPyConnection, orders: SourceSpec) -> None:
    """landing.customers when the mapping has no customers: one row per customer_id of the
    orders, in order of first appearance. The other columns are unknown (NULL); the signup
    is the first purchase (customer_features)."""
    customer = f"nullif(trim(cast({quoted(orders.columns['customer_id'])} as varchar)), '')"
    reader, _ = read_columns(con, orders)
    con.execute("set preserve_insertion_order = true")
    _replace_landed(
        con,
        "customers",
        "select customer_id, row_number() over (order by first_row) as _source_row from ("
        f"select {customer} as customer_id, min(_row) as first_row from ("
        f"select *, row_number() over () as _row from {reader}) "
        "where customer_id is not null group by 1)",
    )


def rules_build(
    source: str,
    columns: dict[str, str],
    absent: tuple[str, ...],
    max_order_amount: float,
    plausible: PlausibleDates,
    load_fingerprint: str,
    identity_kind: str = "",
) -> dbt_in_process.DbtBuild:
    """The ingest models that check one landed source, and their parameters: which landed
    column is each canonical column, and which optional columns the file leaves out."""
    select = ["ingest_checked", f"ingest_{source}", "ingest_rejected_rows", "ingest_loads"]
    if source in MONTH_COLUMN:
        select.append("ingest_month_fingerprints")
    return dbt_in_process.DbtBuild(
        select=tuple(select),
        variables={
            "ingest_source": source,
            "ingest_columns": columns,
            "ingest_absent": list(absent),
            "ingest_identity": identity_kind,
            "max_order_amount": float(max_order_amount),
            "plausible_earliest": plausible.earliest.isoformat(),
            "plausible_latest_days_ahead": plausible.latest_days_ahead,
            "ingest_fingerprint": load_fingerprint,
        },
    )


def landed_rules_build(
    front: duckdb.DuckDBPyConnection, config: IngestConfig, source: str, load_fingerprint: str
) -> dbt_in_process.DbtBuild:
    """The rules build for a mapped source already landed in `front` (its canonical
    rewrites read from the landed table): to build the same rules elsewhere, on Spark."""
    spec = config.sources[source]
    landed = {
        row[0]
        for row in front.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'landing' and table_name = ?",
            [source],
        ).fetchall()
    }
    columns = landed_columns(spec)
    columns.update({c: f"_as_{c}" for c in CANONICAL[source] if f"_as_{c}" in landed})
    kind = spec.identity.kind if spec.matched_by_identity else ""  # type: ignore[union-attr]
    return rules_build(
        source,
        columns,
        spec.absent,
        config.max_order_amount,
        config.plausible_dates,
        load_fingerprint,
        kind,
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


def _checks_digest(max_order_amount: float, plausible: PlausibleDates) -> str:
    checks = [max_order_amount, plausible.earliest.isoformat(), plausible.latest_days_ahead]
    return json.dumps(checks)


def load_fingerprint(
    con: WarehouseConnection,
    spec: SourceSpec,
    max_order_amount: float,
    plausible: PlausibleDates,
) -> str:
    """The source's fingerprint, with the customers' for the sources checked against them:
    the unknown-customer rule depends on the customers loaded, so reload when they change."""
    own = fingerprint(spec, max_order_amount, plausible)
    return _with_customers(con, spec.name, own)


def _with_customers(con: WarehouseConnection, source: str, own: str) -> str:
    if source not in REFERENCES_CUSTOMERS:
        return own
    customers = last_load(con, "customers")
    return hashlib.sha256((own + (customers.fingerprint if customers else "")).encode()).hexdigest()


@dataclass(frozen=True)
class _Landing:
    """What one load lands and how its rules read it."""

    source: str
    origin: str
    fingerprint: str
    files: list[str]
    absent: tuple[str, ...]
    land: Callable[[duckdb.DuckDBPyConnection], dict[str, str]]  # -> {canonical: landed}
    identity_kind: str = ""  # email or phone: its customers are matched through the map


def _file_landing(
    con: WarehouseConnection, spec: SourceSpec, max_order_amount: float, plausible: PlausibleDates
) -> _Landing:
    return _Landing(
        spec.name,
        FROM_FILE,
        load_fingerprint(con, spec, max_order_amount, plausible),
        _files(spec),
        spec.absent,
        lambda front: land(front, spec),
        spec.identity.kind if spec.matched_by_identity else "",  # type: ignore[union-attr]
    )


def _unmapped_landing(con: WarehouseConnection, source: str, config: IngestConfig) -> _Landing:
    """A source the mapping leaves out: customers from the orders, the others empty."""
    if source not in OPTIONAL_SOURCE:
        raise IngestConfigError(f"config/sources.yaml has no source '{source}', which is required")
    checks = _checks_digest(config.max_order_amount, config.plausible_dates)
    canonical = {c: c for c in CANONICAL[source]}
    if OPTIONAL_SOURCE[source] == "from_orders":
        orders = config.sources["orders"]
        if orders.matched_by_identity:
            raise IngestConfigError(
                "sources.orders names its customers by identity, which needs a customers source"
            )
        own = fingerprint(orders, config.max_order_amount, config.plausible_dates)
        absent = tuple(c for c in CANONICAL[source] if c != "customer_id")

        def land_derived(front: duckdb.DuckDBPyConnection) -> dict[str, str]:
            land_customers_from_orders(front, orders)
            return canonical

        return _Landing(
            source,
            FROM_ORDERS,
            hashlib.sha256(f"{FROM_ORDERS}:{own}".encode()).hexdigest(),
            _files(orders),
            absent,
            land_derived,
        )

    def land_empty(front: duckdb.DuckDBPyConnection) -> dict[str, str]:
        land_absent(front, source)
        return canonical

    own = hashlib.sha256(f"{NOT_CONFIGURED}:{source}:{checks}".encode()).hexdigest()
    return _Landing(source, NOT_CONFIGURED, _with_customers(con, source, own), [], (), land_empty)


def _load(
    con: WarehouseConnection,
    landing: _Landing,
    max_order_amount: float,
    plausible: PlausibleDates,
    force: bool,
    front: duckdb.DuckDBPyConnection,
) -> LoadResult:
    ensure_schema(con)
    source = landing.source
    last = last_load(con, source)
    if (
        not force
        and last
        and last.fingerprint == landing.fingerprint
        and table_exists(con, "raw", source)
    ):
        if source in MONTH_COLUMN and not _has_month_fingerprints(con, source):
            store_month_fingerprints(front, source)  # loaded before fingerprints existed
        quarantined = quarantine_counts(con, source)
        return LoadResult(
            source,
            last.rows_loaded + sum(quarantined.values()),
            last.rows_loaded,
            quarantined,
            skipped=True,
            files=landing.files,
            origin=landing.origin,
        )
    columns = landing.land(front)
    land_from(front, con, "landing", source)
    crash_point("ingest")
    # dbt builds on the target in use; `front` is the DuckDB file this process holds open,
    # which dbt's DuckDB profile must share (its Spark profile reads none).
    job = rules_build(
        source,
        columns,
        landing.absent,
        max_order_amount,
        plausible,
        landing.fingerprint,
        landing.identity_kind,
    )
    _build(front, source, job)
    rows_read = con.execute(f"select count(*) from landing.{source}").fetchone()[0]
    rows_loaded = con.execute(f"select count(*) from raw.{source}").fetchone()[0]
    quarantined = quarantine_counts(con, source)
    return LoadResult(
        source,
        rows_read,
        rows_loaded,
        quarantined,
        skipped=False,
        files=landing.files,
        origin=landing.origin,
    )


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
    landing = _file_landing(con, spec, max_order_amount, plausible)
    return _load(con, landing, max_order_amount, plausible, force, front)


def load(
    con: WarehouseConnection,
    config: IngestConfig,
    source: str,
    force: bool = False,
    *,
    front: duckdb.DuckDBPyConnection | None = None,
) -> LoadResult:
    """Load a source as the mapping has it: its file, or, when the mapping leaves it out,
    the customers of the orders or no rows (OPTIONAL_SOURCE)."""
    front = con if front is None else front
    if source in config.sources:
        landing = _file_landing(
            con, config.sources[source], config.max_order_amount, config.plausible_dates
        )
    else:
        landing = _unmapped_landing(con, source, config)
    return _load(con, landing, config.max_order_amount, config.plausible_dates, force, front)


def load_all(
    con: duckdb.DuckDBPyConnection, config: IngestConfig, force: bool = False
) -> dict[str, LoadResult]:
    """Load the mapped sources in dependency order (customers before what refers to them),
    and the customers of the orders when the mapping has none. The refresh job loads every
    source, the unmapped ones as no rows."""
    names = [
        n for n in LOAD_ORDER if n in config.sources or OPTIONAL_SOURCE.get(n) == "from_orders"
    ]
    return {name: load(con, config, name, force) for name in names}


def identity_summary(front: duckdb.DuckDBPyConnection, spec: SourceSpec) -> dict[str, Any]:
    """The identity map's size (customers) or match rate (a source matched through it), as
    the last load left them; empty when the source uses no identity."""
    if spec.identity is None or not table_exists(front, "landing", spec.name):
        return {}
    if spec.name == "customers":
        keys, ambiguous = front.execute(
            "select count(*), count(*) filter (where customers > 1) from landing.identity_map"
        ).fetchone()
        return {"identity": spec.identity.kind, "keys": keys, "ambiguous_keys": ambiguous}
    if not spec.matched_by_identity:
        return {}
    matched, unmatched = front.execute(
        "select count(*) filter (where not starts_with(_as_customer_id, ?)), "
        f"count(*) filter (where starts_with(_as_customer_id, ?)) from landing.{spec.name}",
        [identity.UNMATCHED_PREFIX, identity.UNMATCHED_PREFIX],
    ).fetchone()
    total = matched + unmatched
    return {
        "identity": spec.identity.kind,
        "rows_matched": matched,
        "rows_unmatched": unmatched,
        "match_rate": matched / total if total else 0.0,
    }


def _plausible_days_sql(plausible: PlausibleDates) -> str:
    return (
        f"between date '{plausible.earliest.isoformat()}' "
        f"and current_date + {plausible.latest_days_ahead}"
    )


def order_months(config: IngestConfig) -> DataMonths | None:
    """The first and last month of the orders' plausible dates, read from the file through
    the mapping (nothing is written): what the refreshable months follow."""
    spec = config.sources["orders"]
    con = duckdb.connect()
    try:
        reader, types = read_columns(con, spec)
        day = canonical_rewrites(spec, types).get("order_date", quoted(spec.columns["order_date"]))
        found = con.execute(
            f"select min(day), max(day) from (select try_cast({day} as date) as day "
            f"from {reader}) where day {_plausible_days_sql(config.plausible_dates)}"
        ).fetchone()
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0]
        raise SourceFileError(f"source 'orders': cannot read {spec.path}: {first}") from None
    finally:
        con.close()
    return DataMonths(found[0].replace(day=1), found[1].replace(day=1)) if found[0] else None


def loaded_order_months(con: WarehouseConnection) -> DataMonths | None:
    """The first and last month of the loaded orders (raw.orders)."""
    found = con.execute("select min(order_date), max(order_date) from raw.orders").fetchone()
    return DataMonths(found[0].replace(day=1), found[1].replace(day=1)) if found[0] else None


def summary(result: LoadResult) -> dict[str, Any]:
    """Plain numbers for asset metadata and the CLI."""
    return {
        "rows_read": result.rows_read,
        "rows_loaded": result.rows_loaded,
        "rows_quarantined": result.rows_quarantined,
        "quarantine_reasons": result.quarantined,
        "unchanged_since_last_load": result.skipped,
        "origin": result.origin,
    }
