"""The Python side's connection to the Spark SQL endpoint, in the shape of a DuckDB one.

On Spark every client talks to one endpoint (segment_cadence/platform/spark_server.py starts
a local one; a cluster has its own): dbt over dbt-spark's `thrift` method, and the Python
assets through this module, over the same Thrift protocol with PyHive. The operations are
the ones the assets use on DuckDB today, so that an asset can take either: execute(sql,
params) with `?` placeholders, fetchall/fetchone, fetchnumpy/df, table_exists, plus what
only Spark needs: the schema names mapped to Spark databases, DuckDB tables landed on Spark
as Parquet (the files landed by ingest travel this way), and a query's result written as
Parquet (the membership export). The assets' own SQL is written once, for DuckDB: the
session they are handed (DuckDBDialectSession) translates it to Spark's.

Spark has no transactions: a statement is its own unit of work. The pipeline keeps one
writer at a time (the writer lock) on Spark as on DuckDB.
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from segment_cadence.platform import paths
from segment_cadence.platform.spark_server import DEFAULT_PORT, LOCALHOST

try:  # the spark extra (dbt-spark[PyHive]); the DuckDB default runs without it
    from pyhive import hive
except ImportError:  # pragma: no cover - depends on the installed extras
    hive = None

# What every session on the endpoint runs with, dbt's and Python's alike: dbt-spark turns ANSI
# mode off in its sessions (Spark 4 turns it on by default), and month ends and timestamps
# are read in UTC, as the local endpoint's default and DuckDB do.
SESSION_CONFIGURATION = {"spark.sql.ansi.enabled": "false", "spark.sql.session.timeZone": "UTC"}
FETCH_BATCH = 10_000  # rows per Thrift fetch (PyHive's default of 1000 costs a round trip each)


class SparkWarehouseError(RuntimeError):
    """A misuse or a missing piece, said in one line (no PyHive, placeholders that do not
    match the parameters, a value that has no Spark literal)."""


@dataclass(frozen=True)
class SparkEndpoint:
    """Where the Spark SQL endpoint is and how this deployment's names map onto it.

    `schema_prefix` is the dbt profile's schema: the DuckDB schema `build` is the Spark
    database `<prefix>_build`, the rule of dbt_project/macros/generate_schema_name.sql, so
    that one metastore can hold more than one deployment. `landing_dir` is where DuckDB
    writes the Parquet files that Spark tables are then defined over: the endpoint must be
    able to read it (any local directory for the local endpoint; shared storage for a
    cluster).
    """

    host: str = LOCALHOST
    port: int = DEFAULT_PORT
    user: str = "segment_cadence"
    schema_prefix: str = "segment_cadence"
    landing_dir: Path = Path("var/spark/landing")

    @classmethod
    def from_env(cls) -> SparkEndpoint:
        """The endpoint dbt's `spark` target uses (dbt_project/profiles.yml reads the same
        variables), and the landing directory (default <state dir>/spark/landing)."""
        landing = os.environ.get("SEGMENT_CADENCE_SPARK_LANDING")
        return cls(
            host=os.environ.get("SEGMENT_CADENCE_SPARK_HOST", LOCALHOST),
            port=int(os.environ.get("SEGMENT_CADENCE_SPARK_PORT", DEFAULT_PORT)),
            user=os.environ.get("SEGMENT_CADENCE_SPARK_USER", "segment_cadence"),
            schema_prefix=os.environ.get("SEGMENT_CADENCE_SPARK_SCHEMA", "segment_cadence"),
            landing_dir=Path(landing) if landing else paths.state_dir() / "spark" / "landing",
        )

    def database(self, schema: str) -> str:
        """The Spark database of a DuckDB schema: `build` -> `<prefix>_build`."""
        return spark_database(self.schema_prefix, schema)

    def table(self, schema: str, table: str) -> str:
        """The quoted Spark name of a DuckDB schema's table, for SQL text."""
        return f"{quote_identifier(self.database(schema))}.{quote_identifier(table)}"


def spark_database(schema_prefix: str, schema: str) -> str:
    return f"{schema_prefix}_{schema}"


def quote_identifier(name: str) -> str:
    """A Spark identifier in backticks (a backtick inside is doubled)."""
    return "`" + name.replace("`", "``") + "`"


def string_literal(value: str) -> str:
    """A Spark string literal. Spark reads backslash escapes inside quotes, so a backslash
    is escaped as well as the quote: a value ending in a backslash cannot reach past its
    closing quote."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sql_literal(value: Any) -> str:
    """The Spark SQL literal of a Python value, typed as Spark would type the column: dates
    as DATE, datetimes as TIMESTAMP (aware ones in UTC, the session's zone), floats as
    DOUBLE (not DECIMAL, which a bare 1.5 is in Spark)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool | np.bool_):
        return "TRUE" if value else "FALSE"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise SparkWarehouseError(f"no Spark literal for the decimal {value}")
        return f"{value}BD"
    if isinstance(value, numbers.Real):
        number = float(value)
        return f"{number!r}D" if math.isfinite(number) else f"CAST('{number!r}' AS DOUBLE)"
    if isinstance(value, str):
        return string_literal(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    raise SparkWarehouseError(f"no Spark literal for {type(value).__name__} value {value!r}")


def bind(sql: str, params: Sequence[Any] | None) -> str:
    """`?` placeholders (DuckDB's style) replaced by the values' Spark literals.

    Placeholders inside string literals, quoted identifiers and comments are text, not
    placeholders. The literals are made here rather than by PyHive's pyformat, whose
    escaping of strings is the same (backslash and quote) but which types values by their
    Python form: a date or datetime becomes a string, a float a DECIMAL literal (a bare 1.5
    is DECIMAL in Spark), a Decimal or numpy integer is refused, and every `%` in the SQL
    must be doubled. Here each value keeps the type DuckDB would have given it.
    """
    values = list(params or [])
    out: list[str] = []
    used = 0
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"`":
            end = literal_end(sql, i)
            out.append(sql[i:end])
            i = end
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(sql[i:end])
            i = end
        elif char == "?":
            if used == len(values):
                raise SparkWarehouseError(f"more ? placeholders than the {len(values)} values")
            out.append(sql_literal(values[used]))
            used += 1
            i += 1
        else:
            out.append(char)
            i += 1
    if used != len(values):
        raise SparkWarehouseError(f"{len(values)} values for {used} ? placeholders")
    return "".join(out)


def literal_end(sql: str, start: int) -> int:
    """The index just past the quoted text starting at `start` (a string in '' or "" with
    backslash escapes, or an identifier in `` with doubled backticks)."""
    quote = sql[start]
    i = start + 1
    while i < len(sql):
        if sql[i] == "\\" and quote != "`":
            i += 2
            continue
        if sql[i] == quote:
            if quote == "`" and sql.startswith("``", i):
                i += 2
                continue
            return i + 1
        i += 1
    return len(sql)


def typed_value(value: Any, type_code: str) -> Any:
    """A value as the Python type DuckDB returns for the column: PyHive hands DATE columns
    over as text (timestamps and decimals it converts itself)."""
    if value is None:
        return None
    if type_code == "DATE_TYPE" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def parquet_path(folder: Path) -> str:
    """Spark's name for the Parquet files of a folder, as a relation."""
    text = str(folder)
    if "`" in text:
        raise ValueError(f"a landing folder may not contain a backtick: {text}")
    return f"parquet.`{text}`"


def duckdb_path_literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class SparkWarehouse:
    """One session on the Spark endpoint, used like a DuckDB connection:
    `sw.execute(sql, [value]).fetchall()`. Open it with connect()."""

    def __init__(self, endpoint: SparkEndpoint, connection: Any) -> None:
        self.endpoint = endpoint
        self.connection = connection
        self.cursor = connection.cursor(arraysize=FETCH_BATCH)

    # The DuckDB-shaped part -----------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> SparkWarehouse:
        """Spark SQL with `?` placeholders (see DuckDBDialectSession for DuckDB's SQL)."""
        return self.native(sql, params)

    def native(self, sql: str, params: Sequence[Any] | None = None) -> SparkWarehouse:
        """Spark SQL as written: what this class's own helpers send, whatever `execute`
        takes in a subclass."""
        self.cursor.execute(bind(sql, params))
        return self

    @property
    def description(self) -> list[tuple]:
        return self.cursor.description or []

    def columns(self) -> list[str]:
        """The result's column names, without the table prefix Hive may put on them."""
        return [column[0].rsplit(".", 1)[-1] for column in self.description]

    def convert(self, rows: list[tuple]) -> list[tuple]:
        types = [column[1] for column in self.description]
        if "DATE_TYPE" not in types:
            return [tuple(row) for row in rows]
        return [tuple(typed_value(v, t) for v, t in zip(row, types, strict=True)) for row in rows]

    def fetchall(self) -> list[tuple]:
        return self.convert(self.cursor.fetchall())

    def fetchone(self) -> tuple | None:
        row = self.cursor.fetchone()
        return None if row is None else self.convert([row])[0]

    def df(self) -> pd.DataFrame:
        columns = self.columns()
        return pd.DataFrame.from_records(self.fetchall(), columns=columns)

    def fetchnumpy(self) -> dict[str, np.ndarray]:
        """The result as one numpy array per column, as DuckDB's fetchnumpy. The rows come
        over Thrift: fine for a sample or a month's summary, not for millions of rows (write
        those as Parquet with write_parquet and read the files)."""
        frame = self.df()
        return {column: frame[column].to_numpy() for column in frame.columns}

    # Names ------------------------------------------------------------------------------

    def database(self, schema: str) -> str:
        return self.endpoint.database(schema)

    def table(self, schema: str, table: str) -> str:
        return self.endpoint.table(schema, table)

    def ensure_database(self, schema: str) -> None:
        self.native(f"create database if not exists {quote_identifier(self.database(schema))}")

    def ensure_databases(self, schemas: Sequence[str]) -> None:
        """The schemas' databases, those missing created: one listing rather than a CREATE
        each (the metastore logs every CREATE of an existing database as an error)."""
        present = {str(row[0]).lower() for row in self.native("show databases").fetchall()}
        for schema in schemas:
            if self.database(schema).lower() not in present:
                self.ensure_database(schema)

    def table_exists(self, schema: str, table: str) -> bool:
        """Whether the DuckDB schema's table exists on Spark (in <prefix>_<schema>)."""
        database = self.database(schema).lower()
        databases = {str(row[0]).lower() for row in self.native("show databases").fetchall()}
        if database not in databases:
            return False
        rows = self.native(f"show tables in {quote_identifier(database)}").fetchall()
        # SHOW TABLES: (database, tableName, isTemporary)
        return any(str(row[1]).lower() == table.lower() for row in rows)

    def view_exists(self, schema: str, table: str) -> bool:
        """Whether <prefix>_<schema>.<table> is a view on Spark."""
        if not self.table_exists(schema, table):
            return False
        database = quote_identifier(self.database(schema).lower())
        rows = self.native(f"show views in {database}").fetchall()
        # SHOW VIEWS: (namespace, viewName, isTemporary)
        return any(str(row[1]).lower() == table.lower() for row in rows)

    # Moving data ------------------------------------------------------------------------

    def land(
        self,
        con: duckdb.DuckDBPyConnection,
        schema: str,
        table: str,
        query: str | None = None,
        params: Sequence[Any] | None = None,
    ) -> Path:
        """A DuckDB table (or query) as the Spark relation <prefix>_<schema>.<table>.

        DuckDB writes it as Parquet to a new folder under the landing directory, and a Spark
        view over that folder (no copy through Spark) replaces the one before, whose folder
        is then removed. A new folder each time, so that no view ever reads a half-written
        file. Returns the folder.
        """
        folder = self.new_landing_folder(schema, table)
        source = query or f'select * from "{schema}"."{table}"'
        con.execute(
            f"copy ({source}) to {duckdb_path_literal(folder / 'part-0.parquet')} "
            "(format parquet, compression zstd)",
            list(params or []),
        )
        self.point_view_at(schema, table, folder)
        return folder

    def land_arrow(self, schema: str, table: str, data: pa.Table) -> Path:
        """Rows held in Python (the state store's records the analytics read) as the Spark
        relation <prefix>_<schema>.<table>, the way land() does it: one Parquet file, a view
        over it. Typed by the Arrow schema, so an empty copy still has its columns."""
        folder = self.new_landing_folder(schema, table)
        pq.write_table(data, folder / "part-0.parquet", compression="zstd")
        self.point_view_at(schema, table, folder)
        return folder

    def landing_base(self, schema: str, table: str) -> Path:
        return self.endpoint.landing_dir.resolve() / f"{self.database(schema)}.{table}"

    def new_landing_folder(self, schema: str, table: str) -> Path:
        """A new folder for one landing of a relation: a new one each time, so that no view
        ever reads a half-written file."""
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{time.monotonic_ns()}"
        folder = self.landing_base(schema, table) / stamp
        folder.mkdir(parents=True)
        return folder

    def point_view_at(self, schema: str, table: str, folder: Path) -> None:
        """The Spark view <prefix>_<schema>.<table> over the folder's Parquet files, replacing
        the relation before in one statement; the earlier folders are removed."""
        self.ensure_databases([schema])
        name = self.table(schema, table)
        if self.table_exists(schema, table) and not self.view_exists(schema, table):
            self.native(f"drop table {name}")  # a table landed by an earlier version
        # A view over the files, not a table: Spark reads the Parquet where it was written,
        # and the next landing replaces the view in one statement.
        self.native(f"create or replace view {name} as select * from {parquet_path(folder)}")
        for earlier in self.landing_base(schema, table).iterdir():
            if earlier != folder:
                shutil.rmtree(earlier, ignore_errors=True)

    def write_parquet(self, sql: str, params: Sequence[Any] | None, directory: str) -> None:
        """A query's result as Parquet files in `directory` (replaced), written by Spark: a
        path the endpoint can write (a local one for the local endpoint)."""
        self.native(
            f"insert overwrite directory {string_literal(directory)} using parquet "
            f"select /*+ COALESCE(1) */ * from ({sql})",
            params,
        )

    def export_parquet_file(self, sql: str, params: Sequence[Any] | None, target: Path) -> Path:
        """A query's result as one Parquet file at `target`, for an endpoint that shares this
        machine's file system (the local one). Spark writes a folder beside the target, its
        one part file is renamed to the target (order kept: the result is coalesced, not
        shuffled), and the folder removed, so no reader finds half a file at `target`."""
        target = target.resolve()
        scratch = target.parent / f".{target.name}.spark"
        self.write_parquet(sql, params, str(scratch))
        parts = sorted(scratch.glob("part-*.parquet"))
        if len(parts) != 1:
            raise SparkWarehouseError(f"Spark wrote {len(parts)} Parquet files in {scratch}")
        os.replace(parts[0], target)
        shutil.rmtree(scratch, ignore_errors=True)
        return target

    def close(self) -> None:
        try:
            self.cursor.close()
        finally:
            self.connection.close()


@lru_cache(maxsize=1024)
def duckdb_to_spark(sql: str, schema_prefix: str) -> str:
    """DuckDB's SQL as Spark's, for the Python side's queries: sqlglot translates the
    dialect (functions, casts, literals; `?` placeholders stay), and every schema-qualified
    table is moved to its Spark database (`build.x` -> `<prefix>_build.x`, the rule of
    dbt_project/macros/generate_schema_name.sql). The Python side writes its SQL once, the
    DuckDB way, and this is the one place where Spark's spelling is made."""
    statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    for statement in statements:
        for table in statement.find_all(exp.Table):
            if table.args.get("db") is not None and table.args.get("catalog") is None:
                database = spark_database(schema_prefix, table.db)
                table.set("db", exp.to_identifier(database, quoted=True))
    return ";\n".join(statement.sql(dialect="spark") for statement in statements)


class DuckDBDialectSession(SparkWarehouse):
    """A session on the endpoint that takes the SQL the assets write for DuckDB: the
    warehouse connection the Python side gets when the target is spark
    (segment_cadence.platform.warehouse). The helpers of SparkWarehouse (land, table_exists,
    the Parquet export) still send Spark's own SQL."""

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> SparkWarehouse:
        return self.native(duckdb_to_spark(sql, self.endpoint.schema_prefix), params)

    def write_parquet(self, sql: str, params: Sequence[Any] | None, directory: str) -> None:
        """The result of DuckDB's SQL written by Spark as Parquet (see SparkWarehouse)."""
        spark_sql = duckdb_to_spark(sql, self.endpoint.schema_prefix)
        super().write_parquet(spark_sql, params, directory)


@contextmanager
def connect(
    endpoint: SparkEndpoint | None = None, session: type[SparkWarehouse] = SparkWarehouse
) -> Iterator[SparkWarehouse]:
    """A session on the endpoint for one unit of work, always closed (like
    segment_cadence.platform.warehouse.connect for DuckDB); `session` says which SQL its
    execute() takes (Spark's, or DuckDB's with DuckDBDialectSession)."""
    if hive is None:
        raise SparkWarehouseError(
            "the Spark endpoint needs PyHive: pip install -c constraints.txt -e '.[spark]'"
        )
    endpoint = endpoint or SparkEndpoint.from_env()
    connection = hive.connect(
        host=endpoint.host,
        port=endpoint.port,
        username=endpoint.user,
        auth="NONE",
        configuration=SESSION_CONFIGURATION,
    )
    opened = session(endpoint, connection)
    try:
        yield opened
    finally:
        opened.close()
