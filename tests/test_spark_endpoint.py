"""The local Spark endpoint and the Python side's connection to it, for real: one Thrift
server for the module (segment_cadence/platform/spark_server.py), dbt building a model over
Thrift, DuckDB tables landed on Spark and read back, parameters that carry quotes, and the
membership export written by Spark and read by DuckDB
(segment_cadence/platform/spark_warehouse.py). Selected with `-m spark` (`make test-spark`).
"""

from __future__ import annotations

import json
import socket
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from segment_cadence.platform import paths, spark_server
from segment_cadence.platform.spark_warehouse import SparkEndpoint, SparkWarehouse, connect

pytestmark = [pytest.mark.spark, pytest.mark.slow]

PREFIX = "endpoint_test"  # Spark databases endpoint_test_raw, endpoint_test_staging, ...


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The module's one endpoint. Its teardown checks that stopping it ends the JVM and
    frees the port."""
    work = tmp_path_factory.mktemp("spark_endpoint")
    running = spark_server.start(spark_server.SparkServerConfig(work_dir=work))
    print(f"\nSpark endpoint listening after {running.startup_seconds:.1f}s")
    yield running
    started = time.perf_counter()
    running.stop()
    assert running.process.poll() is not None, "the Thrift server is still running"
    assert not spark_server.accepts_connections(running.host, running.port)
    print(f"\nSpark endpoint stopped in {time.perf_counter() - started:.1f}s")


@pytest.fixture(scope="module")
def spark(server, tmp_path_factory: pytest.TempPathFactory):
    endpoint = SparkEndpoint(
        host=server.host,
        port=server.port,
        schema_prefix=PREFIX,
        landing_dir=tmp_path_factory.mktemp("landing"),
    )
    with connect(endpoint) as session:
        yield session


@pytest.fixture()
def duck():
    con = duckdb.connect()
    con.execute("create schema raw; create schema build")
    yield con
    con.close()


def test_spark_server_listens_on_loopback_and_answers_sql(server, spark: SparkWarehouse):
    assert server.host == "127.0.0.1"
    assert spark_server.accepts_connections(server.host, server.port)
    assert server.process.poll() is None
    assert spark.execute("select 1 + 1").fetchone() == (2,)
    assert spark.execute("select current_timezone()").fetchone() == ("UTC",)
    assert "HiveThriftServer2 started" in server.log_path.read_text()


def test_spark_server_refuses_a_port_in_use(server, tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = spark_server.SparkServerConfig(work_dir=tmp_path, port=port)
        with pytest.raises(spark_server.SparkServerError, match="already in use"):
            spark_server.start(config)


def test_spark_server_that_exits_says_why_in_one_line(tmp_path: Path):
    config = spark_server.SparkServerConfig(work_dir=tmp_path, driver_memory="lots")
    with pytest.raises(spark_server.SparkServerError, match="exited with code") as raised:
        spark_server.start(config)
    assert "\n" not in str(raised.value)
    assert str(config.log_path) in str(raised.value)


def test_landed_duckdb_table_reads_back_equal_row_by_row(spark: SparkWarehouse, duck):
    duck.execute(
        "create table raw.customers as select 'c' || i as customer_id, "
        "date '2024-02-28' + i::int as signup_date, "
        "timestamp '2024-02-28 23:30:00' + interval (i) minute as seen_at, "
        "i * 0.5::double as score, (i * 1.25)::decimal(12, 2) as balance, i % 2 = 0 as consent, "
        "case when i % 3 = 0 then null else 'région ' || i end as region, i::bigint as n "
        "from range(25) r(i)"
    )
    assert not spark.table_exists("raw", "customers")
    spark.land(duck, "raw", "customers")
    assert spark.table_exists("raw", "customers")
    expected = duck.execute("select * from raw.customers order by n").fetchall()
    table = spark.table("raw", "customers")
    landed = spark.execute(f"select * from {table} order by n").fetchall()
    assert landed == expected
    assert isinstance(landed[0][1], date) and isinstance(landed[0][2], datetime)
    assert isinstance(landed[0][4], Decimal)
    assert [c[0] for c in spark.description] == [c[0] for c in duck.description]

    # landing again replaces the table and its files (ingest refreshes the raw tables)
    duck.execute("delete from raw.customers where n >= 10")
    folder = spark.land(duck, "raw", "customers")
    assert spark.execute(f"select count(*) from {table}").fetchone() == (10,)
    assert [p for p in folder.parent.iterdir()] == [folder]

    columns = spark.execute(f"select n, score from {table} order by n").fetchnumpy()
    assert columns["n"].tolist() == list(range(10))
    frame = spark.execute(f"select customer_id, consent from {table} where n < ?", [3]).df()
    assert frame.to_dict("list") == {
        "customer_id": ["c0", "c1", "c2"],
        "consent": [True, False, True],
    }


def test_query_params_with_quotes_are_safe(spark: SparkWarehouse, duck):
    duck.execute("create table raw.notes as select 1 as id, 'kept' as note")
    spark.land(duck, "raw", "notes")
    table = spark.table("raw", "notes")
    awkward = [
        "it's",
        "''",
        "a\\",
        "\\'; drop table x; --",
        "?",
        "%s %(x)s",
        "\\u0041",
        "two\nlines",
        '"double"',
        "日本語",
    ]
    for value in awkward:
        assert spark.execute("select ?, '?'", [value]).fetchone() == (value, "?"), value
    # a value ending in a backslash followed by one that reads as SQL stays two strings
    tricky = spark.execute(
        f"select count(*) from {table} where note = ? or note = ?", ["x\\", " or 1=1 --"]
    )
    assert tricky.fetchone() == (0,)
    month = spark.execute("select ? + interval 1 day, ? * 2", [date(2025, 12, 31), 0.25])
    assert month.fetchone() == (date(2026, 1, 1), 0.5)
    assert spark.execute(f"select note from {table} where id = ?", [1]).fetchall() == [("kept",)]


def test_membership_export_writes_parquet_that_duckdb_reads(
    spark: SparkWarehouse, duck, tmp_path: Path
):
    duck.execute(
        "create table build.segment_membership as select 'c' || lpad(i::varchar, 3, '0') "
        "as customer_id, date '2025-12-31' - ((i % 2) * 30)::int as month_end, "
        "['vip', 'it''s'][i % 2 + 1] as segment_id, 'v1' as definition_version "
        "from range(300) r(i)"
    )
    spark.land(duck, "build", "segment_membership")
    target = tmp_path / "exports" / "month_end=2025-12-31" / "membership-test.parquet"
    target.parent.mkdir(parents=True)
    written = spark.export_parquet_file(
        f"select customer_id, segment_id, definition_version "
        f"from {spark.table('build', 'segment_membership')} where month_end = ? "
        "order by customer_id",
        [date(2025, 12, 31)],
        target,
    )
    assert written == target.resolve()
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # nothing beside
    # (the folder's name is a Hive partition, which DuckDB would add as a column)
    exported = duck.execute(
        f"select * from read_parquet('{target}', hive_partitioning = false)"
    ).fetchall()
    expected = duck.execute(
        "select customer_id, segment_id, definition_version from build.segment_membership "
        "where month_end = date '2025-12-31' order by customer_id"
    ).fetchall()
    assert exported == expected  # the same rows, in customer order
    assert len(exported) == 150


def test_dbt_builds_a_model_over_thrift(
    server, spark: SparkWarehouse, duck, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from dbt.cli.main import dbtRunner

    duck.execute(
        "create table raw.customers as select 'c' || i as customer_id, "
        "date '2024-01-01' + i::int as signup_date, 'north' as region, '35-44' as age_band, "
        "'en' as language, i % 2 = 0 as email_consent from range(40) r(i)"
    )
    spark.land(duck, "raw", "customers")
    for key, value in server.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SEGMENT_CADENCE_DBT_TARGET", "spark")
    monkeypatch.setenv("SEGMENT_CADENCE_SPARK_SCHEMA", PREFIX)
    monkeypatch.setenv("SEGMENT_CADENCE_DBT_VARS", json.dumps({}))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    project = str(paths.DBT_PROJECT_DIR)
    arguments = ["--project-dir", project, "--profiles-dir", project]
    arguments += ["--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")]
    started = time.perf_counter()
    result = dbtRunner().invoke(
        ["build", *arguments, "--select", "stg_customers", "--exclude-resource-type", "unit_test"]
    )
    seconds = time.perf_counter() - started
    assert result.success, result.exception
    print(f"\ndbt build of one model over Thrift: {seconds:.1f}s")
    built = spark.table("staging", "stg_customers")
    counted = spark.execute(f"select count(*), count(distinct customer_id) from {built}")
    assert counted.fetchone() == (40, 40)
