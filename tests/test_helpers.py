"""The helpers written once: months and quarters, the warehouse transaction, markdown
tables, and the stored dictionary of a published month."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from segment_cadence.defs.dictionary import stored
from segment_cadence.platform import markdown, months
from segment_cadence.platform.warehouse import transaction


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2024, 3, 31), date(2024, 2, 29)),
        (date(2024, 3, 1), date(2024, 2, 29)),
        (date(2026, 1, 15), date(2025, 12, 31)),
    ],
)
def test_previous_month_end(day: date, expected: date) -> None:
    assert months.previous_month_end(day) == expected


def test_quarters() -> None:
    assert months.quarter_start(date(2025, 11, 30)) == date(2025, 10, 1)
    assert months.quarter_label(date(2025, 11, 30)) == "2025-Q4"
    assert months.quarter_end(date(2024, 1, 1)) == date(2024, 3, 31)
    assert months.previous_quarter(date(2026, 1, 5)) == date(2025, 10, 1)
    # The latest quarter whose last month is published.
    assert months.latest_complete_quarter(date(2025, 12, 1)) == date(2025, 10, 1)
    assert months.latest_complete_quarter(date(2026, 2, 1)) == date(2025, 10, 1)
    assert months.latest_complete_quarter(date(2026, 1, 1)) == date(2025, 10, 1)


def test_a_transaction_commits_whole_or_not_at_all() -> None:
    con = duckdb.connect()
    con.execute("create table t (x int)")
    with transaction(con):
        con.execute("insert into t values (1)")
    with pytest.raises(RuntimeError), transaction(con):
        con.execute("insert into t values (2)")
        raise RuntimeError("halfway")
    assert con.execute("select x from t").fetchall() == [(1,)]


def test_markdown_table() -> None:
    assert markdown.table(["a", "b"], [(1, None), ("x", 2.5)], right={1}) == (
        "| a | b |\n|---|---:|\n| 1 |  |\n| x | 2.5 |"
    )
    assert markdown.table(["a"], [], empty="None this month.") == "None this month."
    assert markdown.table(["a"], []) == "| a |\n|---|"


def test_the_paused_segments_are_those_of_the_version_that_produced_the_month() -> None:
    con = duckdb.connect()
    con.execute("create schema governance")
    con.execute("create schema published")
    con.execute(
        "create table governance.segment_dictionary_versions "
        "(definition_version varchar, segment_id varchar, segment_name varchar, paused boolean)"
    )
    con.execute(
        "insert into governance.segment_dictionary_versions values "
        "('v1', 'evaluation', 'Evaluation', true), ('v1', 'loyal', 'Loyal', false), "
        "('v2', 'evaluation', 'Evaluation', false), ('v2', 'loyal', 'Loyal', true)"
    )
    con.execute(
        "create table published.segment_membership (month_end date, definition_version varchar)"
    )
    con.execute("insert into published.segment_membership values ('2025-11-30', 'v1')")
    month = date(2025, 11, 30)
    assert stored.paused_segments_of_month(con, month) == {"evaluation"}
    assert stored.segments_of_month(con, month) == {"evaluation": "Evaluation", "loyal": "Loyal"}


def test_dbt_metadata_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from segment_cadence.defs.segments.dbt_assets import dbt_metadata

    monkeypatch.delenv("SEGMENT_CADENCE_DBT_METADATA", raising=False)
    assert dbt_metadata() == set()
    monkeypatch.setenv("SEGMENT_CADENCE_DBT_METADATA", "row_counts, columns,unknown")
    assert dbt_metadata() == {"row_counts", "columns"}


def test_the_manifest_is_stale_only_when_a_file_of_the_project_itself_changed(tmp_path):
    """Every run leaves compiled SQL under a target directory: those files are neither
    looked at nor counted (walking them made each check slower, run after run)."""
    from segment_cadence.platform import resources

    (tmp_path / "models").mkdir()
    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    model = tmp_path / "models" / "a.sql"
    model.write_text("select 1")
    manifest = tmp_path / "target" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    compiled = tmp_path / "target-gw0" / "features_inputs-abc" / "compiled" / "a.sql"
    compiled.parent.mkdir(parents=True)
    compiled.write_text("select 1")
    project = SimpleNamespace(project_dir=tmp_path, manifest_path=manifest)
    os.utime(compiled, (manifest.stat().st_mtime + 10,) * 2)
    assert sorted(p.relative_to(tmp_path) for p in resources.project_files(project)) == [
        Path("dbt_project.yml"),
        Path("models/a.sql"),
    ]
    assert not resources.manifest_is_stale(project)
    os.utime(model, (manifest.stat().st_mtime + 10,) * 2)
    assert resources.manifest_is_stale(project)
