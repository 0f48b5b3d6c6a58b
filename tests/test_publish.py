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
from tests.marks import slow_fixture

MONTH = date(2025, 6, 30)


def build_month(con, month_end: date, version: str, segments: dict[str, str]) -> None:
    """A minimal build: what dbt leaves in the build schema for one month."""
    con.execute(
        "create or replace table build.customer_features as select ?::date as month_end, "
        "unnest(?::varchar[]) as customer_id",
        [month_end, list(segments)],
    )
    con.execute(
        "create or replace table build.segment_membership as "
        "select unnest(?::varchar[]) as customer_id, ?::date as month_end, "
        "unnest(?::varchar[]) as segment_id, ? as definition_version, "
        "null::varchar as previous_segment_id, 1 as months_in_segment, "
        "null::varchar as holdout",
        [list(segments), month_end, list(segments.values()), version],
    )
    con.execute(
        "create or replace table build.segment_transitions as select month_end, '(new)' as "
        "from_segment_id, segment_id as to_segment_id, count(*) as customers "
        "from build.segment_membership group by all"
    )
    con.execute(
        "create or replace table build.segment_kpis as select month_end, segment_id, "
        "segment_id as segment_name, false as paused, count(*) as customers, "
        + ", ".join(f"null::{t} as {c}" for c, t in KPI_FIGURES)
        + " from build.segment_membership group by all"
    )


# The published KPIs' figures (dbt_project/models/published/published_segment_kpis.yml), left
# empty here: publishing copies them, whatever they are.
KPI_FIGURES = [
    ("share", "double"),
    ("revenue_this_month", "double"),
    ("revenue_365d", "double"),
    ("avg_lifetime_value", "double"),
    ("avg_churn_likelihood", "double"),
    ("avg_engagement_events_90d", "double"),
    ("campaign_response_rate", "double"),
    ("avg_months_in_segment", "double"),
    ("previous_customers", "bigint"),
    ("stayed", "bigint"),
    ("moved_in", "bigint"),
    ("moved_out", "bigint"),
    ("new_customers", "bigint"),
    ("retention_rate", "double"),
    ("avg_expected_purchases_12m", "double"),
    ("avg_clv", "double"),
    ("total_clv", "double"),
]


@pytest.fixture()
@slow_fixture
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
    """The writer dies after deleting the month, before commit: nothing is lost. (What
    readers see is the store's rows the ledger names: the writer empties both.)"""
    script = textwrap.dedent(
        f"""
        import os, duckdb
        con = duckdb.connect({str(published)!r})
        con.execute("begin transaction")
        con.execute("delete from published_store.segment_membership")
        con.execute("delete from published.publications")
        con.execute("insert into published_store.segment_membership (customer_id) values ('half')")
        os._exit(9)
        """
    )
    completed = subprocess.run([sys.executable, "-c", script], check=False)
    assert completed.returncode == 9
    assert [m[0] for m in membership(published)] == ["C1", "C2", "C3"]


def published_views(path: Path) -> dict[str, list[tuple]]:
    """Every view consumers read, whole, for the month."""
    with warehouse.connect(path, read_only=True) as con:
        return {
            view: con.execute(
                f"select * from published.{view} where month_end = ? order by all", [MONTH]
            ).fetchall()
            for view in (
                "segment_membership",
                "segment_transitions",
                "segment_kpis",
                "customer_features",
                "publications",
            )
        }


def store_publications(path: Path) -> set[str]:
    """The publications whose rows the store still keeps for the month."""
    with warehouse.connect(path, read_only=True) as con:
        return {
            row[0]
            for row in con.execute(
                "select distinct publication_id from published_store.segment_membership "
                "where month_end = ?",
                [MONTH],
            ).fetchall()
        }


def test_republishing_a_month_replaces_it_whole_in_every_published_view(published, tmp_path):
    with warehouse.connect(published) as con:
        build_month(con, MONTH, "v-b", {"C1": "dormant", "C2": "dormant"})
        publish.publish_month(con, MONTH, "v-b", run_id="second", export_dir=tmp_path / "exports")
    views = published_views(published)
    assert [m[:3] for m in views["segment_membership"]] == [
        ("C1", MONTH, "dormant"),
        ("C2", MONTH, "dormant"),
    ]
    assert [m[1] for m in membership(published)] == ["dormant", "dormant"]
    assert views["segment_transitions"] == [(MONTH, "(new)", "dormant", 2)]
    assert [(k[1], k[4]) for k in views["segment_kpis"]] == [("dormant", 2)]
    assert [f[1] for f in views["customer_features"]] == ["C1", "C2"]
    assert [(p[1], p[2], p[4]) for p in views["publications"]] == [("v-b", 2, "second")]
    assert store_publications(published) == {"second"}  # the superseded rows are gone


def test_a_refresh_killed_between_the_store_and_the_ledger_leaves_the_previous_publication(
    published, tmp_path
):
    """The crash point just before the ledger commit: the store has the new publication's
    rows, the ledger does not name it, and readers see the previous publication exactly."""
    before = published_views(published)
    script = textwrap.dedent(
        f"""
        import os
        from datetime import date
        from pathlib import Path
        from segment_cadence.defs.segments import publish
        from segment_cadence.platform import warehouse
        from tests.test_publish import build_month
        os.environ["SEGMENT_CADENCE_CRASH_AT"] = "publish_transaction"
        with warehouse.connect({str(published)!r}) as con:
            build_month(con, date(2025, 6, 30), "v-b", {{"C1": "dormant", "C9": "dormant"}})
            publish.publish_month(con, date(2025, 6, 30), "v-b", run_id="killed",
                                  export_dir=Path({str(tmp_path / "exports")!r}))
        """
    )
    killed = subprocess.run(
        [sys.executable, "-c", script], cwd=Path(__file__).parent.parent, check=False
    )
    assert killed.returncode == -9
    assert published_views(published) == before
    assert "killed" in store_publications(published)  # written, but not in force
    with warehouse.connect(published) as con:
        build_month(con, MONTH, "v-a", {"C1": "loyal"})
        publish.publish_month(con, MONTH, "v-a", run_id="next", export_dir=tmp_path / "exports")
    assert store_publications(published) == {"next"}  # the killed one's rows are deleted
    assert membership(published) == [("C1", "loyal", "v-a")]
