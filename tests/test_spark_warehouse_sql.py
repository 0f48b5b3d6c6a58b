"""The SQL text the Python side sends to Spark (segment_cadence/platform/spark_warehouse.py):
`?` placeholders bound to typed Spark literals, DuckDB schema names mapped to Spark
databases, and the local endpoint's launch settings. Plain string work: no Spark, no Java;
tests/test_spark_endpoint.py runs the same against a real endpoint."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from segment_cadence.platform import spark_server
from segment_cadence.platform.spark_warehouse import (
    SparkEndpoint,
    SparkWarehouseError,
    bind,
    duckdb_to_spark,
    sql_literal,
)


def test_placeholders_become_typed_spark_literals() -> None:
    sql = bind(
        "select * from t where d = ? and ts = ? and x = ? and n = ? and f = ? and ok = ? and m = ?",
        [date(2025, 12, 31), datetime(2025, 1, 2, 3, 4, 5), 7, Decimal("2.50"), 1.5, True, None],
    )
    assert sql == (
        "select * from t where d = DATE '2025-12-31' and ts = TIMESTAMP '2025-01-02 03:04:05' "
        "and x = 7 and n = 2.50BD and f = 1.5D and ok = TRUE and m = NULL"
    )


def test_numpy_scalars_and_aware_datetimes_have_literals() -> None:
    assert sql_literal(np.int64(3)) == "3"
    assert sql_literal(np.float64(0.25)) == "0.25D"
    assert sql_literal(np.bool_(False)) == "FALSE"
    assert sql_literal(float("nan")) == "CAST('nan' AS DOUBLE)"
    paris = timezone(timedelta(hours=1))
    assert (
        sql_literal(datetime(2025, 1, 1, 1, 0, tzinfo=paris)) == "TIMESTAMP '2025-01-01 00:00:00'"
    )
    assert sql_literal(datetime(2025, 1, 1, tzinfo=UTC)) == "TIMESTAMP '2025-01-01 00:00:00'"


def test_string_values_escape_quotes_and_backslashes() -> None:
    assert sql_literal("it's") == "'it\\'s'"
    # a trailing backslash cannot escape the closing quote
    assert bind("select ?, ?", ["a\\", " or 1=1 --"]) == "select 'a\\\\', ' or 1=1 --'"


def test_question_marks_in_strings_identifiers_and_comments_are_not_placeholders() -> None:
    sql = "select '?', \"?\", `a?b`, 'it\\'s ?' -- why?\n, ? /* ? */"
    assert bind(sql, [1]) == "select '?', \"?\", `a?b`, 'it\\'s ?' -- why?\n, 1 /* ? */"
    assert bind("select '100%' like ?", ["%"]) == "select '100%' like '%'"


def test_placeholders_and_values_must_match() -> None:
    with pytest.raises(SparkWarehouseError, match="more \\? placeholders"):
        bind("select ?, ?", [1])
    with pytest.raises(SparkWarehouseError, match="2 values for 1"):
        bind("select ?", [1, 2])
    with pytest.raises(SparkWarehouseError, match="no Spark literal"):
        sql_literal(object())


def test_duckdb_schema_maps_to_prefixed_spark_database() -> None:
    endpoint = SparkEndpoint(schema_prefix="cadence")
    assert endpoint.database("build") == "cadence_build"
    assert endpoint.table("raw", "orders") == "`cadence_raw`.`orders`"


def test_duckdb_sql_of_the_assets_becomes_spark_sql_on_the_prefixed_databases() -> None:
    """What the Python assets write once, the DuckDB way, reaches Spark translated: every
    schema-qualified table in its database, CTE names and placeholders left alone, and
    DuckDB's meaning kept where Spark's default differs (NULLs sort last)."""
    sql = duckdb_to_spark(
        "with m as (select segment_id, count(*) as n from published.segment_membership "
        "where month_end = ? group by 1) select m.segment_id, m.n, k.share::varchar "
        "from m join build.segment_kpis k using (segment_id) order by n desc, 1",
        "cadence",
    )
    assert "`cadence_published`.segment_membership" in sql
    assert "`cadence_build`.segment_kpis" in sql
    assert "FROM m JOIN" in sql and "month_end = ?" in sql
    assert "CAST(k.share AS STRING)" in sql
    assert sql.endswith("ORDER BY n DESC, 1 NULLS LAST")
    assert bind(sql, [date(2025, 12, 31)]).count("DATE '2025-12-31'") == 1


def test_endpoint_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    for name in ("HOST", "PORT", "SCHEMA", "LANDING", "USER"):
        monkeypatch.delenv(f"SEGMENT_CADENCE_SPARK_{name}", raising=False)
    default = SparkEndpoint.from_env()
    assert (default.host, default.port, default.schema_prefix) == (
        "127.0.0.1",
        10000,
        "segment_cadence",
    )
    assert default.landing_dir == tmp_path.resolve() / "spark" / "landing"
    monkeypatch.setenv("SEGMENT_CADENCE_SPARK_PORT", "10123")
    monkeypatch.setenv("SEGMENT_CADENCE_SPARK_SCHEMA", "shop2")
    monkeypatch.setenv("SEGMENT_CADENCE_SPARK_LANDING", str(tmp_path / "land"))
    configured = SparkEndpoint.from_env()
    assert (configured.port, configured.database("raw")) == (10123, "shop2_raw")
    assert configured.landing_dir == tmp_path / "land"


def test_local_endpoint_is_small_utc_loopback_only_and_keeps_its_metastore_in_its_dir(
    tmp_path: Path,
) -> None:
    config = spark_server.SparkServerConfig(work_dir=tmp_path)
    confs = spark_server.spark_confs(config)
    assert confs["spark.sql.shuffle.partitions"] == "4"
    assert confs["spark.sql.session.timeZone"] == "UTC"
    assert confs["spark.ui.enabled"] == "false"
    assert confs["spark.driver.bindAddress"] == "127.0.0.1"
    assert str(tmp_path) in confs["spark.hadoop.javax.jdo.option.ConnectionURL"]
    assert confs["spark.sql.warehouse.dir"].startswith(str(tmp_path))
    command = spark_server.launch_command(config, Path("/spark"), 10555)
    assert command[:3] == ["/spark/bin/spark-submit", "--class", spark_server.THRIFT_SERVER_CLASS]
    assert "hive.server2.thrift.port=10555" in command
    assert "hive.server2.thrift.bind.host=127.0.0.1" in command


def test_local_endpoint_without_java_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java there
    with pytest.raises(spark_server.SparkServerError, match="needs Java 17") as raised:
        spark_server.start(spark_server.SparkServerConfig(work_dir=tmp_path / "spark"))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "spark").exists()  # nothing started, nothing written
