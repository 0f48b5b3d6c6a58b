"""The same dbt models on Spark (dbt-spark, session method, local mode) give the same
membership as on DuckDB, customer by customer.

DuckDB runs the real monthly job for two months. The inputs of the second month's dbt run
(raw tables, the BG/NBD parameters, the dictionary, the previous published month) are
exported to Parquet and registered in a local Spark metastore; dbt then builds that month
on the `spark` target with the same refresh parameters, in this process, so dbt-spark's
session method picks up the SparkSession created here. Selected with `-m spark`
(`make test-spark`); skipped when pyspark is not installed (tests/conftest.py).
"""

from __future__ import annotations

import json
import math
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from segment_cadence.platform import paths, warehouse

pytestmark = [
    pytest.mark.spark,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]

MONTHS = ["2025-11-01", "2025-12-01"]  # the second is the one compared
CUSTOMERS = 800
SPARK_SCHEMA = "cadence_test"  # the profile's schema: <schema>_raw, <schema>_build, ...
INPUTS = {
    "raw": ["customers", "orders", "engagement_events", "campaign_sends", "team_members"],
    "churn": ["bgnbd_params"],
    "governance": ["segment_dictionary"],
    "published": ["segment_membership"],
}
MEMBERSHIP = "customer_id, segment_id, previous_segment_id, months_in_segment"


@pytest.fixture(scope="module")
def spark_home(tmp_path_factory: pytest.TempPathFactory):
    """A private state directory, environment and generated jeweller for this module."""
    home = tmp_path_factory.mktemp("spark_home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SEGMENT_CADENCE_HOME", str(home))
        env.setenv("SEGMENT_CADENCE_WAREHOUSE", str(home / "warehouse.duckdb"))
        env.setenv("DAGSTER_HOME", str(home / "dagster_home"))
        env.setenv("SEGMENT_CADENCE_DBT_VARS", "{}")
        env.setenv("SEGMENT_CADENCE_DBT_TARGET", "duckdb")
        env.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        env.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        (home / "dagster_home").mkdir()
        from segment_cadence.example.generator import GeneratorConfig, generate

        generate(home / "raw", GeneratorConfig(customers=CUSTOMERS, end_month="2025-12",
                                               history_months=36, seed=11), progress=False)  # fmt: skip
        yield home, env


@pytest.fixture(scope="module")
def duckdb_month(spark_home):
    """The monthly job on DuckDB for both months; the compared month's dbt vars."""
    from segment_cadence.definitions import build_definitions
    from segment_cadence.defs.segments.dbt_assets import dbt_vars
    from segment_cadence.platform.resources import WarehouseResource, default_resources

    home, _ = spark_home
    db = home / "warehouse.duckdb"
    defs = build_definitions({**default_resources(), "warehouse": WarehouseResource(path=str(db))})
    job = defs.resolve_job_def("monthly_refresh")
    instance = dg.DagsterInstance.ephemeral()
    for month in MONTHS:
        result = job.execute_in_process(
            partition_key=month, instance=instance, raise_on_error=False
        )
        assert result.success, f"DuckDB refresh of {month} failed"
    return db, dbt_vars(MONTHS[-1])


@pytest.fixture(scope="module")
def spark(spark_home):
    """A local Spark with its own metastore and warehouse directory under the test's state."""
    from pyspark.sql import SparkSession

    home, _ = spark_home
    work = home / "spark"
    session = (
        SparkSession.builder.master("local[2]")
        .appName("segment-cadence-test")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(work / "warehouse"))
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={work / 'metastore_db'};create=true",
        )  # fmt: skip
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={work}")
        .enableHiveSupport()
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def load_inputs(db: Path, spark, month_end: str, out: Path) -> None:
    """The compared month's dbt inputs, from DuckDB to Parquet to Spark tables."""
    with warehouse.connect(db, read_only=True) as con:
        for schema, tables in INPUTS.items():
            spark.sql(f"create database if not exists {SPARK_SCHEMA}_{schema}")
            for table in tables:
                # Only what DuckDB's run could see: published months before this one.
                where = f"where month_end < date '{month_end}'" if schema == "published" else ""
                folder = out / f"{schema}.{table}"
                folder.mkdir(parents=True)
                con.execute(f"copy (select * from {schema}.{table} {where}) "
                            f"to '{folder / 'part-0.parquet'}' (format parquet)")  # fmt: skip
                spark.sql(f"create table {SPARK_SCHEMA}_{schema}.{table} "
                          f"using parquet location '{folder}'")  # fmt: skip


def dbt_build_on_spark(variables: dict, work: Path, env: pytest.MonkeyPatch) -> None:
    """`dbt build` on the spark target, in this process (the session method needs that)."""
    from dbt.cli.main import dbtRunner

    env.setenv("SEGMENT_CADENCE_DBT_TARGET", "spark")
    env.setenv("SEGMENT_CADENCE_SPARK_SCHEMA", SPARK_SCHEMA)
    env.setenv("SEGMENT_CADENCE_DBT_VARS", json.dumps(variables))
    try:
        project = str(paths.DBT_PROJECT_DIR)
        result = dbtRunner().invoke(
            ["build", "--project-dir", project, "--profiles-dir", project,
             "--target-path", str(work / "dbt_target"), "--log-path", str(work / "dbt_logs"),
             # The governance and health models (DuckDB SQL today) read the published month,
             # which this comparison does not publish on Spark; unit tests run on DuckDB.
             "--exclude", "path:models/governance", "path:models/health",
             "--exclude-resource-type", "unit_test"]
        )  # fmt: skip
    finally:
        env.setenv("SEGMENT_CADENCE_DBT_TARGET", "duckdb")
    results = getattr(result.result, "results", None) or []
    failed = [r.node.name for r in results if str(r.status) not in ("success", "pass")]
    assert result.success, f"dbt build on Spark failed: {failed or result.exception}"


def rows_by_customer(rows) -> dict[str, tuple]:
    return {row[0]: tuple(row[1:]) for row in rows}


def same_value(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        # exp and ln differ in the last bit between the engines; nothing else may differ
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b


def test_spark_membership_equals_duckdb_customer_by_customer(
    spark_home, duckdb_month, spark, capsys: pytest.CaptureFixture
):
    home, env = spark_home
    db, variables = duckdb_month
    month_end = variables["month_end"]
    work = home / "spark"
    started = time.perf_counter()
    load_inputs(db, spark, month_end, work)
    dbt_build_on_spark(variables, work, env)

    with warehouse.connect(db, read_only=True) as con:
        duck = rows_by_customer(
            con.execute(
                f"select {MEMBERSHIP} from published.segment_membership where month_end = ?",
                [date.fromisoformat(month_end)],
            ).fetchall()
        )
        features = con.execute("select * from build.customer_features")
        feature_columns = [column[0] for column in features.description]
        duck_features = rows_by_customer(features.fetchall())
    on_spark = rows_by_customer(
        spark.sql(f"select {MEMBERSHIP} from {SPARK_SCHEMA}_build.segment_membership").collect()
    )
    selected = ", ".join(feature_columns)
    spark_features = rows_by_customer(
        spark.sql(f"select {selected} from {SPARK_SCHEMA}_build.customer_features").collect()
    )

    assert len(duck) == CUSTOMERS
    assert sorted(on_spark) == sorted(duck)
    differing = {c: (duck[c], on_spark[c]) for c in duck if on_spark[c] != duck[c]}
    assert not differing, (
        f"{len(differing)} of {len(duck)} customers differ: {list(differing.items())[:5]}"
    )
    assert {segment for segment, *_ in duck.values()} > {variables["fallback_segment"]}
    assert any(previous is not None for _, previous, _ in duck.values())  # dwell was compared

    assert sorted(spark_features) == sorted(duck_features)
    for customer, values in duck_features.items():
        for column, a, b in zip(feature_columns[1:], values, spark_features[customer], strict=True):
            assert same_value(a, b), f"{customer} {column}: DuckDB {a!r}, Spark {b!r}"
    with capsys.disabled():
        print(f"\n{len(duck)} customers compared for {month_end}: same segment, previous segment and "
          f"dwell on Spark and DuckDB (Spark part {time.perf_counter() - started:.0f}s)")  # fmt: skip
