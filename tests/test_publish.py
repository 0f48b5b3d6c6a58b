"""Publishing is all or nothing: a failed or killed refresh leaves the last published month."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from segment_cadence.defs.segments import publish
from segment_cadence.platform import warehouse

MONTH = date(2025, 6, 30)


def build_month(con, month_end: date, version: str, segments: dict[str, str]) -> None:
    """A minimal build: what dbt leaves in the build schema for one month."""
    con.execute("create or replace table build.customer_features as select ?::date as month_end, "
                "unnest(?::varchar[]) as customer_id", [month_end, list(segments)])  # fmt: skip
    con.execute(
        "create or replace table build.segment_membership as "
        "select unnest(?::varchar[]) as customer_id, ?::date as month_end, "
        "unnest(?::varchar[]) as segment_id, ? as definition_version, "
        "null::varchar as previous_segment_id, 1 as months_in_segment",
        [list(segments), month_end, list(segments.values()), version],
    )
    con.execute(
        "create or replace table build.segment_transitions as select month_end, '(new)' as "
        "from_segment_id, segment_id as to_segment_id, count(*) as customers "
        "from build.segment_membership group by all"
    )
    con.execute(
        "create or replace table build.segment_kpis as select month_end, segment_id, "
        "count(*) as customers from build.segment_membership group by all"
    )


@pytest.fixture()
def published(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    with warehouse.connect(path) as con:
        warehouse.ensure_schema(con)
        build_month(con, MONTH, "v-a", {"C1": "loyal", "C2": "dormant", "C3": "loyal"})
        publish.publish_month(con, MONTH, "v-a", export_dir=tmp_path / "exports")
    return path


def membership(path: Path, month: date = MONTH) -> list[tuple]:
    with warehouse.connect(path, read_only=True) as con:
        return con.execute(
            "select customer_id, segment_id, definition_version from published.segment_membership "
            "where month_end = ? order by 1",
            [month],
        ).fetchall()


def test_publish_replaces_the_month_and_never_duplicates(published, tmp_path):
    with warehouse.connect(published) as con:
        build_month(con, MONTH, "v-a", {"C1": "loyal", "C2": "dormant", "C3": "loyal"})
        result = publish.publish_month(con, MONTH, "v-a", export_dir=tmp_path / "exports")
        publications = con.execute("select count(*) from published.publications").fetchone()[0]
    assert len(membership(published)) == 3
    assert publications == 1
    assert result.segment_sizes == {"loyal": 2, "dormant": 1}
    assert Path(result.export_path).exists()


def test_a_build_for_another_month_or_version_is_refused(published):
    with warehouse.connect(published) as con:
        build_month(con, date(2025, 7, 31), "v-a", {"C1": "dormant"})
        with pytest.raises(publish.PublishError, match="not month 2025-06-30"):
            publish.publish_month(con, MONTH, "v-a")
        build_month(con, MONTH, "v-b", {"C1": "dormant"})
        with pytest.raises(publish.PublishError, match="definition version v-a"):
            publish.publish_month(con, MONTH, "v-a")
    assert membership(published)[0] == ("C1", "loyal", "v-a")


def test_an_incomplete_build_is_refused(published):
    with warehouse.connect(published) as con:
        build_month(con, MONTH, "v-a", {"C1": "dormant", "C2": "dormant"})
        con.execute("insert into build.customer_features values (?, 'C4')", [MONTH])
        with pytest.raises(publish.PublishError, match="every customer must be placed"):
            publish.publish_month(con, MONTH, "v-a")
    assert [m[1] for m in membership(published)] == ["loyal", "dormant", "loyal"]


def test_a_process_killed_mid_publish_leaves_the_published_month(published):
    """The writer dies after deleting the month, before commit: nothing is lost."""
    script = textwrap.dedent(
        f"""
        import os, duckdb
        con = duckdb.connect({str(published)!r})
        con.execute("begin transaction")
        con.execute("delete from published.segment_membership")
        con.execute("insert into published.segment_membership (customer_id) values ('half')")
        os._exit(9)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], check=False)
    assert completed.returncode == 9
    assert [m[0] for m in membership(published)] == ["C1", "C2", "C3"]
