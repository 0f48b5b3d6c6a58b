"""The monthly dbt assets build in the run's own process (segment_cadence/platform/
dbt_in_process.py): no dbt process per step, the project parsed once, the same Dagster
events dagster-dbt makes of a dbt process's results, and a failed node named in one line.
"""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

from segment_cadence.platform import dbt_in_process

STAGING_CUSTOMERS = dg.AssetKey(["staging", "stg_customers"])


@pytest.fixture()
def home(published_november, monkeypatch: pytest.MonkeyPatch) -> Path:
    """November published by the real command; this process's environment pointed at it."""
    home = published_november()
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(home))
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(home / "warehouse.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    monkeypatch.setenv("SEGMENT_CADENCE_DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.delenv("SEGMENT_CADENCE_DBT_METADATA", raising=False)
    return home


START_DBT_PROCESS = DbtCliInvocation.run.__func__


def no_dbt_build_process(cls, args, **kwargs):
    """dagster-dbt's way of starting dbt, refusing builds (its preparer's parse may run)."""
    if "build" in args:
        raise AssertionError(f"dagster-dbt started a dbt process: {' '.join(args)}")
    return START_DBT_PROCESS(cls, args, **kwargs)


def test_one_dbt_model_materialized_alone_builds_only_it_without_a_dbt_process(home, monkeypatch):
    """What a Materialize click on one dbt model's page runs: that model (and its tests),
    in the run's process, reported as dagster-dbt reports it."""
    # Bound to this test's warehouse: `defs`, imported by another module of this worker, keeps
    # the warehouse of its import (a run's process imports it afresh).
    from segment_cadence.definitions import build_definitions
    from segment_cadence.platform.resources import WarehouseResource, default_resources

    defs = build_definitions(
        {**default_resources(), "warehouse": WarehouseResource(path=str(home / "warehouse.duckdb"))}
    )
    monkeypatch.setattr(DbtCliInvocation, "run", classmethod(no_dbt_build_process))
    job = defs.resolve_implicit_job_def_def_for_assets([STAGING_CUSTOMERS])
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        result = job.execute_in_process(
            asset_selection=[STAGING_CUSTOMERS], partition_key="2025-12-01", instance=instance
        )
    assert result.success
    materialized = {
        event.asset_key
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    }
    assert materialized == {STAGING_CUSTOMERS}
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from staging.stg_customers").fetchone()[0] == 300


@pytest.mark.slow
def test_the_project_is_parsed_once_per_process_and_warehouse_name(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    first = dbt_in_process.parsed_manifest()
    assert dbt_in_process.parsed_manifest() is first
    # DuckDB names the catalog after the file, and the manifest's relations carry it.
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(tmp_path / "elsewhere.duckdb"))
    other = dbt_in_process.parsed_manifest()
    assert other is not first
    assert {node.database for node in other.nodes.values() if node.resource_type == "model"} == {
        "elsewhere"
    }


def test_a_failed_model_is_named_in_one_line_after_the_results_before_it(tmp_path, monkeypatch):
    """An empty warehouse: the staging view has no source table to read."""
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    duckdb.connect(str(tmp_path / "warehouse.duckdb")).close()
    target = tmp_path / "target"
    events = []
    with pytest.raises(dbt_in_process.DbtBuildFailed) as failed:
        for event in dbt_in_process.stream_events(
            ["build", "--select", "stg_customers", "--exclude-resource-type", "unit_test"], target
        ):
            events.append(event)
    message = str(failed.value)
    assert "\n" not in message
    assert message.startswith("stg_customers: ")
    assert "customers" in message.split(":", 1)[1]
    assert [e["data"]["node_info"]["unique_id"] for e in events] == [
        "model.segment_cadence.stg_customers"
    ]
    assert events[0]["data"]["node_info"]["node_status"] == "error"


def dbt_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dbt" and t.is_alive()]


def test_a_build_whose_reader_stops_is_cancelled_and_leaves_no_dbt_running(home, tmp_path):
    """A step interrupted mid-build (Terminate in the UI) stops reading dbt's results: the
    build must end with it, not go on writing after the step let the warehouse go."""
    target = tmp_path / "interrupted"
    args = ["build", "--select", "path:models/staging path:models/intermediate path:models/marts"]
    stream = dbt_in_process.stream_events([*args, "--exclude-resource-type", "unit_test"], target)
    first = next(stream)
    assert first["data"]["node_info"]["node_status"] in ("success", "pass")
    stream.close()
    assert dbt_threads() == []
    # dbt's adapters are the process's: the next build finds them in order.
    again = list(
        dbt_in_process.stream_events(
            ["build", "--select", "stg_customers", "--exclude-resource-type", "unit_test"],
            tmp_path / "after",
        )
    )
    assert [e["data"]["node_info"]["node_status"] for e in again] == ["success"]


def fresh_parse() -> dbt_in_process.Manifest:
    """dbt's own parse of the project, as the run's process made it before the saved parse
    was read back."""
    saved, dbt_in_process._saved_parse = dbt_in_process._saved_parse, lambda: None
    try:
        dbt_in_process._parsed.clear()
        return dbt_in_process.parsed_manifest()
    finally:
        dbt_in_process._saved_parse = saved
        dbt_in_process._parsed.clear()


@pytest.mark.slow
def test_the_saved_parse_is_the_manifest_a_parse_makes(tmp_path, monkeypatch):
    """The builds read the prepared project's saved parse instead of parsing (a second and
    more of every refresh): the same nodes, macros and graph as dbt's parse gives."""
    from segment_cadence.platform.resources import prepare_dbt_project

    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    prepare_dbt_project(str(tmp_path / "warehouse.duckdb"))
    saved = dbt_in_process._saved_parse()
    assert saved is not None
    parsed = fresh_parse()

    def shape(manifest):
        return {
            key: (type(node), node.checksum.checksum, node.raw_code, node.depends_on.nodes)
            for key, node in manifest.nodes.items()
        }

    assert shape(saved) == shape(parsed)
    assert saved.macros.keys() == parsed.macros.keys()
    assert saved.child_map == parsed.child_map
    assert saved.flat_graph.keys() == parsed.flat_graph.keys()


@pytest.mark.slow
def test_the_saved_parse_is_not_read_for_another_warehouse_or_when_a_file_is_newer(
    tmp_path, monkeypatch
):
    from segment_cadence.platform.resources import prepare_dbt_project

    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    prepare_dbt_project(str(tmp_path / "warehouse.duckdb"))
    assert dbt_in_process._saved_parse() is not None
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(tmp_path / "elsewhere.duckdb"))
    assert dbt_in_process._saved_parse() is None
    monkeypatch.setenv("SEGMENT_CADENCE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("SEGMENT_CADENCE_DBT_TARGET", "spark")
    assert dbt_in_process._saved_parse() is None
    monkeypatch.delenv("SEGMENT_CADENCE_DBT_TARGET")
    saved = dbt_in_process.dagster_target_path() / "partial_parse.msgpack"
    model = dbt_in_process.project_files()[0]
    newer = saved.stat().st_mtime + 5
    import os

    before = model.stat()
    os.utime(model, (newer, newer))
    try:
        assert dbt_in_process._saved_parse() is None
    finally:
        os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
