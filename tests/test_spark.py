"""The same dbt models on Spark (dbt-spark over Thrift to a local Spark endpoint) give the
same membership as on DuckDB, customer by customer.

DuckDB runs the real monthly job for two months. The inputs of the second month's dbt run
(raw tables, the BG/NBD parameters, the dictionary, the previous published month) are
landed as Parquet tables on the module's local Spark endpoint
(segment_cadence/platform/spark_server.py), through the endpoint as the pipeline's Python
side does (segment_cadence/platform/spark_warehouse.py); dbt then builds that month on the
`spark` target, over Thrift to the same endpoint, with the same refresh parameters. Then
the analysis models (models/governance, models/health) are built on Spark for both months,
one after the other as the monthly job does, from the same published months, firewall
records and quarantine as on DuckDB, and their tables are compared row by row. Selected
with `-m spark` (`make test-spark`); skipped when pyspark is not installed
(tests/conftest.py).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from segment_cadence.defs.governance import governance
from segment_cadence.defs.ingest import ingest
from segment_cadence.platform import paths, spark_server, spark_warehouse, state_store, warehouse
from segment_cadence.platform.partitions import refresh_window

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
    "published": ["segment_membership"],
}
MEMBERSHIP = "customer_id, segment_id, previous_segment_id, months_in_segment"
# What the analysis models read besides INPUTS: every published month (the segment models
# see only the months before theirs), the firewall's records and the quarantine.
ANALYSIS_INPUTS = {
    "published": ["segment_membership", "segment_kpis", "customer_features"],
    "ops": ["firewall_checks", "firewall_blocked", "exception_requests"],
    "quarantine": ["rejected_rows"],
}
# The analysis tables compared, as (DuckDB schema, table, key columns, columns left out).
# The audit trail's recorded_at is the wall clock of each run.
ANALYSIS_TABLES = [
    ("governance", "red_flags", ["month_end", "metric"], []),
    ("governance", "pressure_patterns", ["month_end", "dimension", "key"], []),
    ("governance", "unsafe_attempts", ["month_end", "source", "campaign_id"], []),
    ("governance", "pause_violations", ["month_end", "send_id"], []),
    ("governance", "onboarding_violations", ["month_end", "campaign_id", "sender_id"], []),
    (
        "governance",
        "segment_audit_log",
        ["customer_id", "month_end", "definition_version"],
        ["recorded_at"],
    ),
    ("governance", "bias_audit", ["month_end", "attribute", "group_value", "segment_id"], []),
    ("health", "metrics", ["month_end", "segment_id", "metric"], []),  # health_metrics
    ("published", "segment_migration_rates", ["month_end", "segment_id"], []),
]


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

        generate(
            home / "raw",
            GeneratorConfig(customers=CUSTOMERS, end_month="2025-12", history_months=36, seed=11),
            progress=False,
        )
        yield home, env


@pytest.fixture(scope="module")
def duckdb_month(spark_home):
    """The monthly job on DuckDB for both months; the compared month's dbt vars (the churn
    fit included, as the marts' dbt run passes it)."""
    from segment_cadence.definitions import build_definitions
    from segment_cadence.defs.segments.dbt_assets import dbt_vars, marts_vars
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
    variables = dbt_vars(MONTHS[-1])
    with warehouse.connect(db, read_only=True) as con:
        fits = marts_vars(con, date.fromisoformat(variables["month_end"]))
    return db, variables | fits


@pytest.fixture(scope="module")
def spark(spark_home):
    """The module's local Spark endpoint (its own metastore and warehouse directory under the
    test's state) and a session on it, as the pipeline's Python side would have."""
    home, env = spark_home
    work = home / "spark"
    config = spark_server.SparkServerConfig(work_dir=work)
    with spark_server.running(config) as server:
        for key, value in server.environment().items():
            env.setenv(key, value)
        endpoint = spark_warehouse.SparkEndpoint(
            host=server.host,
            port=server.port,
            schema_prefix=SPARK_SCHEMA,
            landing_dir=work / "landing",
        )
        with spark_warehouse.connect(endpoint) as session:
            yield session


def load_inputs(
    db: Path,
    spark: spark_warehouse.SparkWarehouse,
    inputs: dict[str, list[str]],
    published_before: str | None,
) -> None:
    """dbt inputs, from DuckDB to Parquet to Spark tables (replacing tables already there);
    published months only before `published_before` when given."""
    with warehouse.connect(db, read_only=True) as con:
        for schema, tables in inputs.items():
            for table in tables:
                # Only what DuckDB's run could see: published months before this one.
                where = (
                    f"where month_end < date '{published_before}'"
                    if schema == "published" and published_before
                    else ""
                )
                spark.land(con, schema, table, query=f"select * from {schema}.{table} {where}")


def dbt_build_on_spark(
    variables: dict, work: Path, env: pytest.MonkeyPatch, selection: list[str]
) -> None:
    """`dbt build` on the spark target: dbt in this process, Spark behind the endpoint."""
    from dbt.cli.main import dbtRunner

    env.setenv("SEGMENT_CADENCE_DBT_TARGET", "spark")
    env.setenv("SEGMENT_CADENCE_SPARK_SCHEMA", SPARK_SCHEMA)
    env.setenv("SEGMENT_CADENCE_DBT_VARS", json.dumps(variables))
    try:
        project = str(paths.DBT_PROJECT_DIR)
        result = dbtRunner().invoke(
            [
                "build",
                "--project-dir",
                project,
                "--profiles-dir",
                project,
                "--target-path",
                str(work / "dbt_target"),
                "--log-path",
                str(work / "dbt_logs"),
                # One thread, as the product's in-process builds on Spark
                # (platform/dbt_in_process.py): PyHive's Thrift connections are not safe
                # across threads of one process ("TSocket read 0 bytes").
                "--threads",
                "1",
                # unit tests check the SQL on DuckDB (tests/test_dbt_unit_tests.py)
                *selection,
                "--exclude-resource-type",
                "unit_test",
            ]
        )
    finally:
        env.setenv("SEGMENT_CADENCE_DBT_TARGET", "duckdb")
    results = getattr(result.result, "results", None) or []
    failed = [r.node.name for r in results if str(r.status) not in ("success", "pass")]
    assert result.success, f"dbt build on Spark failed: {failed or result.exception}"


def rows_by_customer(rows) -> dict[str, tuple]:
    return {row[0]: tuple(row[1:]) for row in rows}


def same_value(a, b, rel_tol: float = 1e-12) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        # exp and ln differ in the last bit between the engines; nothing else may differ
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12)
    return a == b


@pytest.fixture(scope="module")
def spark_month(spark_home, duckdb_month, spark) -> float:
    """The compared month's segment models built on Spark; the seconds it took."""
    home, env = spark_home
    db, variables = duckdb_month
    work = home / "spark"
    started = time.perf_counter()
    load_inputs(db, spark, INPUTS, published_before=variables["month_end"])
    # The analysis models read the published month, which this comparison does not publish
    # on Spark; test_spark_analysis_tables_equal_duckdb builds them from DuckDB's. The ingest
    # models wrote the raw tables copied in (INPUTS); the quarterly candidate's models belong
    # to the strategic refresh.
    excluded = [
        "path:models/governance",
        "path:models/health",
        "path:models/ingest",
        "path:models/strategic",
    ]
    dbt_build_on_spark(variables, work, env, ["--exclude", *excluded])
    return time.perf_counter() - started


def analysis_rows(fetch, schema: str, table: str, keys: list[str], columns: list[str]):
    """The table's rows (the given columns) sorted by its key columns."""
    rows = fetch(f"select {', '.join(columns)} from {schema}.{table}")
    positions = [columns.index(key) for key in keys]
    return sorted(rows, key=lambda row: tuple(str(row[i]) for i in positions))


def test_spark_membership_equals_duckdb_customer_by_customer(
    duckdb_month, spark, spark_month: float, capsys: pytest.CaptureFixture
):
    db, variables = duckdb_month
    month_end = variables["month_end"]

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
        spark.execute(
            f"select {MEMBERSHIP} from {SPARK_SCHEMA}_build.segment_membership"
        ).fetchall()
    )
    selected = ", ".join(feature_columns)
    spark_features = rows_by_customer(
        spark.execute(f"select {selected} from {SPARK_SCHEMA}_build.customer_features").fetchall()
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
        print(
            f"\n{len(duck)} customers compared for {month_end}: same segment, previous segment and "
            f"dwell on Spark and DuckDB (Spark part {spark_month:.0f}s)"
        )


def test_spark_analysis_tables_equal_duckdb(
    spark_home, duckdb_month, spark, spark_month: float, capsys: pytest.CaptureFixture
):
    """Red flags, pressure patterns, the audit trail, the bias audit, health metrics and
    migration rates: built month after month on Spark (the second month incrementally,
    replacing its partition, then once more as a re-run), the same rows as on DuckDB."""
    from segment_cadence.defs.segments.dbt_assets import dbt_vars

    home, env = spark_home
    db, _ = duckdb_month
    work = home / "spark"
    started = time.perf_counter()
    load_inputs(db, spark, ANALYSIS_INPUTS, published_before=None)
    analysis = ["--select", "path:models/governance", "path:models/health"]
    settings = governance.dbt_vars(governance.load())
    for month in [*MONTHS, MONTHS[-1]]:  # the last month twice: a re-run changes nothing
        dbt_build_on_spark(dbt_vars(month) | settings, work, env, analysis)

    compared = {}
    with warehouse.connect(db, read_only=True) as con:
        for schema, table, keys, left_out in ANALYSIS_TABLES:
            described = con.execute(f"select * from {schema}.{table} limit 0").description
            columns = [column[0] for column in described if column[0] not in left_out]
            duck = analysis_rows(
                lambda sql: con.execute(sql).fetchall(), schema, table, keys, columns
            )
            on_spark = analysis_rows(
                lambda sql: spark.execute(sql).fetchall(),
                f"{SPARK_SCHEMA}_{schema}",
                table,
                keys,
                columns,
            )
            assert len(on_spark) == len(duck), (
                f"{table}: {len(duck)} rows on DuckDB, {len(on_spark)} on Spark"
            )
            for a, b in zip(duck, on_spark, strict=True):
                assert all(same_value(x, y, rel_tol=1e-9) for x, y in zip(a, b, strict=True)), (
                    f"{table} ({', '.join(columns)}): DuckDB {a!r}, Spark {b!r}"
                )
            compared[table] = len(duck)
    months = {
        row[0]
        for row in spark.execute(
            f"select distinct month_end from {SPARK_SCHEMA}_governance.red_flags"
        ).fetchall()
    }
    assert {m.isoformat() for m in months} == {dbt_vars(m)["month_end"] for m in MONTHS}
    assert compared["red_flags"] and compared["metrics"] and compared["bias_audit"]
    with capsys.disabled():
        print(
            f"\nanalysis tables equal on Spark and DuckDB for {len(MONTHS)} months: "
            + ", ".join(f"{t} {n}" for t, n in compared.items())
            + f" rows (Spark part {time.perf_counter() - started:.0f}s)"
        )


# Customers and day-first order lines with one refused row of each kind the rules know.
INGEST_CUSTOMERS = "Kunde;Angemeldet\nK1;01/02/2024\nK2;15/03/2024\nK3;01/01/1850\n"
INGEST_ORDERS = """LineRef;OrderRef;Client;Placed;Value;Type
A1;O1;K1;05/01/2025;450.00;rings
A2;O1;K1;05/01/2025;120.50;earrings
;O3;K2;18/03/2025;99.00;rings
A5;O4;K2;31/02/2025;300;rings
A6;O5;K2;01/04/2025;-40;repairs
A7;O6;K2;02/04/2025;98765432;watches
A1;O1;K1;05/01/2025;450.00;rings
A9;O7;K9;03/04/2025;150;rings
A10;O8;K2;04/04/2025;lots;rings
A11;O9;K2;;10;rings
A12;O10;K2;01/01/2099;10;rings
"""


def test_spark_ingest_rules_refuse_and_keep_the_same_rows_as_duckdb(spark_home, spark, tmp_path):
    """The ingest models on Spark, from the files DuckDB landed: the same rows accepted, the
    same rows refused for the same reasons (the day-first format through Spark's patterns)."""
    home, env = spark_home
    (tmp_path / "kunden.csv").write_text(INGEST_CUSTOMERS)
    (tmp_path / "orders.csv").write_text(INGEST_ORDERS)
    canonical = {
        "customer_id": "Kunde",
        "signup_date": "Angemeldet",
        "region": "Kunde",
        "age_band": "Kunde",
        "language": "Kunde",
        "email_consent": "Kunde",
    }
    orders = {
        "order_line_id": "LineRef",
        "order_id": "OrderRef",
        "customer_id": "Client",
        "order_date": "Placed",
        "amount": "Value",
        "category": "Type",
    }
    mapping = tmp_path / "sources.yaml"
    mapping.write_text(
        json.dumps(
            {
                "sources": {
                    name: {
                        "path": str(tmp_path / file),
                        "date_format": "%d/%m/%Y",
                        "csv": {"delimiter": ";"},
                        "columns": columns,
                    }
                    for name, file, columns in (
                        ("customers", "kunden.csv", canonical),
                        ("orders", "orders.csv", orders),
                    )
                }
            }
        )
    )
    config = ingest.load_config(mapping)
    db = tmp_path / "ingest.duckdb"
    with warehouse.connect(db) as con:
        loaded = ingest.load_all(con, config)
    assert loaded["orders"].rows_loaded == 2 and loaded["orders"].rows_quarantined == 9
    load_inputs(db, spark, {"landing": ["customers", "orders"]}, None)
    # The analysis test lands DuckDB's quarantine as a view over its files; the ingest models
    # replace it with their own table, partitioned by source.
    for name in ("customers", "orders"):
        with warehouse.connect(db, read_only=True) as con:
            job = ingest.landed_rules_build(con, config, name, "spark")
        dbt_build_on_spark(job.variables, home / "spark", env, ["--select", *job.select])
    with warehouse.connect(db, read_only=True) as con:
        for table in ("customers", "orders"):
            duck = sorted(con.execute(f"select * from raw.{table}").fetchall())
            on_spark = sorted(spark.execute(f"select * from {SPARK_SCHEMA}_raw.{table}").fetchall())
            assert on_spark == duck, table
        refused = "select source, source_row, reason from {} order by 1, 2"
        duck = con.execute(refused.format("quarantine.rejected_rows")).fetchall()
    on_spark = spark.execute(refused.format(f"{SPARK_SCHEMA}_quarantine.rejected_rows")).fetchall()
    assert on_spark == duck


# The whole monthly job on Spark (README, "Running on Spark"): its own Spark databases
# (<schema>_raw, _build, _published, ...), its own state directory (the DuckDB front door
# where files land, the exports, the review packs) and its own state store.
JOB_SCHEMA = "cadence_job"
# What the two runs publish and analyse, compared row by row: (table, key columns). The
# queries are the same DuckDB SQL on both engines (the Spark session translates them).
JOB_TABLES = [
    ("published.segment_kpis", ["month_end", "segment_id"]),
    ("health.metrics", ["month_end", "segment_id", "metric"]),
    ("governance.red_flags", ["month_end", "metric"]),
    ("governance.segment_audit_log", ["customer_id", "month_end", "definition_version"]),
    ("history.int_customer_orders_monthly", ["customer_id", "activity_month"]),
]
# Wall-clock columns: when each run wrote the row, not what it computed.
WALL_CLOCK = {"recorded_at", "published_at", "loaded_at"}
JOB_MEMBERSHIP = (
    "customer_id, month_end, segment_id, definition_version, previous_segment_id, months_in_segment"
)


def run_monthly_job(db: Path) -> list[str]:
    """The real monthly job (the code location's monthly_refresh) for MONTHS, in order, on
    the target the environment names; the failed steps' messages, if any."""
    from segment_cadence.definitions import build_definitions
    from segment_cadence.platform.resources import WarehouseResource, default_resources

    defs = build_definitions({**default_resources(), "warehouse": WarehouseResource(path=str(db))})
    job = defs.resolve_job_def("monthly_refresh")
    instance = dg.DagsterInstance.ephemeral()
    for month in MONTHS:
        result = job.execute_in_process(
            partition_key=month, instance=instance, raise_on_error=False
        )
        if not result.success:
            return [
                f"{month} {event.step_key}: {event.event_specific_data.error.message}"
                for event in result.all_events
                if event.is_step_failure
            ] or [f"{month}: the run failed"]
    return []


@pytest.fixture(scope="module")
def spark_job(spark_home, duckdb_month, spark):
    """The monthly job for both months with SEGMENT_CADENCE_DBT_TARGET=spark, from a copy
    of the files DuckDB's run read: ingest lands them in a DuckDB front door and the landed
    tables travel to Spark, where every model and every Python asset's SQL runs. Yields a
    session that reads the job's Spark databases with DuckDB's SQL, the job's state store
    URL and the seconds the two months took."""
    home, _ = spark_home
    job_home = home / "spark_job"
    shutil.copytree(home / "raw", job_home / "raw")
    (job_home / "dagster_home").mkdir()
    state_url = f"sqlite:///{job_home / 'state.sqlite'}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SEGMENT_CADENCE_HOME", str(job_home))
        env.setenv("SEGMENT_CADENCE_WAREHOUSE", str(job_home / "front_door.duckdb"))
        env.setenv("DAGSTER_HOME", str(job_home / "dagster_home"))
        env.setenv("SEGMENT_CADENCE_STATE_URL", state_url)
        env.setenv("SEGMENT_CADENCE_DBT_TARGET", "spark")
        env.setenv("SEGMENT_CADENCE_SPARK_SCHEMA", JOB_SCHEMA)
        env.setenv("SEGMENT_CADENCE_SPARK_LANDING", str(job_home / "spark_landing"))
        env.setenv("SEGMENT_CADENCE_DBT_VARS", "{}")
        started = time.perf_counter()
        failed = run_monthly_job(job_home / "front_door.duckdb")
        seconds = time.perf_counter() - started
    assert not failed, "the monthly job failed on Spark:\n" + "\n".join(failed)
    endpoint = spark_warehouse.SparkEndpoint(
        host=spark.endpoint.host,
        port=spark.endpoint.port,
        schema_prefix=JOB_SCHEMA,
        landing_dir=job_home / "spark_landing",
    )
    with spark_warehouse.connect(endpoint, spark_warehouse.DuckDBDialectSession) as session:
        yield session, state_url, seconds


def compared_columns(con, table: str) -> list[str]:
    """The table's columns as DuckDB has them, wall-clock columns left out."""
    described = con.execute(f"select * from {table} limit 0").description
    return [column[0] for column in described if column[0] not in WALL_CLOCK]


def assert_same_rows(table: str, columns: list[str], duck: list[tuple], on_spark: list[tuple]):
    assert duck, f"{table}: no rows on DuckDB"
    assert len(on_spark) == len(duck), (
        f"{table}: {len(duck)} rows on DuckDB, {len(on_spark)} on Spark"
    )
    for a, b in zip(duck, on_spark, strict=True):
        assert all(same_value(x, y, rel_tol=1e-9) for x, y in zip(a, b, strict=True)), (
            f"{table} ({', '.join(columns)}): DuckDB {a!r}, Spark {b!r}"
        )


def test_monthly_job_on_spark_publishes_and_analyses_as_on_duckdb(
    duckdb_month, spark_job, capsys: pytest.CaptureFixture
):
    """The whole monthly job, two months, on each engine from the same files: the same
    published membership customer by customer, and the same published KPIs, health
    metrics, red flags and audit trail row by row (floats within 1e-9 relative), from the
    same churn fit (its sample read back from each engine in the same order)."""
    db, _ = duckdb_month
    session, state_url, seconds = spark_job
    membership = f"select {JOB_MEMBERSHIP} from published.segment_membership"
    on_spark = {(row[0], row[1]): row[2:] for row in session.execute(membership).fetchall()}
    compared = {}
    with warehouse.connect(db, read_only=True) as con:
        duck = {(row[0], row[1]): row[2:] for row in con.execute(membership).fetchall()}
        assert len(duck) > CUSTOMERS  # both months (customers who signed up later in one)
        assert sorted(on_spark) == sorted(duck)
        differing = {key: (duck[key], on_spark[key]) for key in duck if on_spark[key] != duck[key]}
        assert not differing, (
            f"{len(differing)} of {len(duck)} memberships differ: {list(differing.items())[:5]}"
        )
        for table, keys in JOB_TABLES:
            columns = compared_columns(con, table)
            rows = {
                engine: analysis_rows(fetch, *table.split("."), keys, columns)
                for engine, fetch in (
                    ("duckdb", lambda sql: con.execute(sql).fetchall()),
                    ("spark", lambda sql: session.execute(sql).fetchall()),
                )
            }
            assert_same_rows(table, columns, rows["duckdb"], rows["spark"])
            compared[table] = len(rows["duckdb"])
    for month in MONTHS:
        month_end = refresh_window(month)[0]
        duck_fit = state_store.churn_fit(month_end)
        spark_fit = state_store.churn_fit(month_end, url=state_url)
        assert duck_fit and spark_fit, f"no churn fit for {month_end}"
        for name in ("n_customers", "r", "alpha", "a", "b", "log_likelihood"):
            assert same_value(duck_fit[name], spark_fit[name], rel_tol=1e-9), (
                f"churn fit {month_end} {name}: DuckDB {duck_fit[name]!r}, "
                f"Spark {spark_fit[name]!r}"
            )
    with capsys.disabled():
        print(
            f"\nmonthly job on Spark, {len(MONTHS)} months in {seconds:.0f}s: "
            f"{len(duck)} memberships, "
            + ", ".join(f"{t} {n}" for t, n in compared.items())
            + " rows, and the churn fits, as on DuckDB"
        )


def test_the_monthly_history_on_spark_keeps_a_partition_per_month_and_rebuilds_only_the_new_one(
    spark_job,
):
    """Incremental on Spark as on DuckDB: the second month's run overwrote its own month's
    partition and left every earlier slice as the first run built it."""
    session, _, _ = spark_job
    partitions = session.native(f"show partitions {JOB_SCHEMA}_history.int_customer_orders_monthly")
    months = sorted(row[0].split("=", 1)[1] for row in partitions.fetchall())
    logged = session.execute(
        "select cast(activity_month as varchar), built_at from history.slice_log "
        "where model = 'int_customer_orders_monthly' order by 1"
    ).fetchall()
    assert [month for month, _ in logged] == months
    assert months[-1] == MONTHS[-1]
    first_run = max(built_at for month, built_at in logged if month < MONTHS[-1])
    assert {built_at for month, built_at in logged if month < MONTHS[-1]} == {first_run}
    assert dict(logged)[MONTHS[-1]] > first_run
