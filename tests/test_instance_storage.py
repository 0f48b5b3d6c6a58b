"""The local instance (orchestration/dagster.yaml) keeps its event log's connections open,
and what it writes is Dagster's ordinary history: another instance on the same home reads it."""

from __future__ import annotations

import dagster as dg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from segment_cadence.cli.main import prepare_dagster_home
from segment_cadence.platform.instance_storage import KeptOpenSqliteEventLogStorage, instance_yaml


@dg.op
def one() -> int:
    return 1


@dg.op
def plus_one(n: int) -> int:
    return n + 1


@dg.job
def three_steps():
    plus_one(plus_one(one()))


@dg.asset(check_specs=[dg.AssetCheckSpec(f"check_{n}", asset="checked_table") for n in range(6)])
def checked_table():
    yield dg.MaterializeResult(metadata={"rows": 1})
    for n in range(6):
        yield dg.AssetCheckResult(check_name=f"check_{n}", passed=True)


def event_log_connections(instance: dg.DagsterInstance, run) -> tuple[list[str], int]:
    """The DBAPI connections opened to the event log's files (the run storage's own are not
    its business) while `run` runs, and how many events it wrote."""
    opened = []

    def count(dbapi_connection, _record):
        path = dbapi_connection.execute("PRAGMA database_list").fetchone()[2]
        if "/history/runs/" in path.replace("\\", "/"):
            opened.append(path)

    event.listen(Engine, "connect", count)
    try:
        result = run()
    finally:
        event.remove(Engine, "connect", count)
    assert result.success
    return opened, len(instance.all_logs(result.run_id))


@pytest.fixture
def local_home(tmp_path, monkeypatch):
    """A home as the CLI makes it; DAGSTER_HOME is left unset, as in a test or a script."""
    monkeypatch.setenv("SEGMENT_CADENCE_HOME", str(tmp_path))
    home = prepare_dagster_home()
    monkeypatch.delenv("DAGSTER_HOME")
    return home


def test_a_run_reuses_its_event_log_connections_instead_of_opening_one_per_event(local_home):
    with dg.DagsterInstance.from_config(str(local_home)) as instance:
        assert isinstance(instance.event_log_storage, KeptOpenSqliteEventLogStorage)
        opened, events = event_log_connections(
            instance, lambda: three_steps.execute_in_process(instance=instance)
        )
    # Dagster's own SQLite event log opened a connection (or several) for every event.
    assert events > 20
    assert len(opened) < 10, f"{len(opened)} connections for {events} events"


def test_asset_and_check_events_ask_whether_a_table_exists_without_a_connection_each(
    local_home,
):
    """Each materialization and check result asks the index whether a table exists (asset
    checks, tags); Dagster's answer opens a connection of its own every time."""
    with dg.DagsterInstance.from_config(str(local_home)) as instance:
        runs = [
            event_log_connections(
                instance, lambda: dg.materialize([checked_table], instance=instance)
            )
            for _ in range(2)
        ]
    (first, events), (second, _) = runs
    assert events > 20
    assert len(first) < 10, f"{len(first)} connections for {events} events"
    assert len(second) <= 4, f"a second run opened {len(second)}: {second}"


def test_another_instance_on_the_same_home_reads_the_run_as_dagster_wrote_it(local_home):
    with dg.DagsterInstance.from_config(str(local_home)) as writer:
        result = three_steps.execute_in_process(instance=writer)
        written = [e.dagster_event_type for e in writer.all_logs(result.run_id)]
        # The reader, like the UI or the daemon, is another instance on the same files.
        with dg.DagsterInstance.from_config(str(local_home)) as reader:
            read = [e.dagster_event_type for e in reader.all_logs(result.run_id)]
            assert reader.get_run_by_id(result.run_id).is_success
    assert read == written
    assert dg.DagsterEventType.RUN_SUCCESS in read


def test_a_dagster_yaml_copied_from_another_home_is_refused_in_one_line(tmp_path):
    elsewhere, here = tmp_path / "elsewhere", tmp_path / "here"
    elsewhere.mkdir()
    here.mkdir()
    (here / "dagster.yaml").write_text(instance_yaml(elsewhere))
    with pytest.raises(ValueError, match="another instance's home") as refused:
        dg.DagsterInstance.from_config(str(here))
    assert str(here / "dagster.yaml") in str(refused.value)
