"""The code location's shape, pinned: asset keys with their groups, asset checks, jobs,
schedules and sensors of `segment_cadence.definitions.defs`, compared with a golden file.
A move that changes none of them leaves this test passing; anything else shows in the diff.
Regenerate after a deliberate change with `python -m tests.test_definitions_snapshot`."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

GOLDEN = Path(__file__).parent / "golden" / "definitions.json"


def snapshot(defs) -> dict[str, object]:
    graph = defs.resolve_asset_graph()
    assets = {
        key.to_user_string(): graph.get(key).group_name
        for key in sorted(graph.get_all_asset_keys(), key=lambda key: key.to_user_string())
    }
    checks = sorted(
        f"{check.asset_key.to_user_string()}:{check.name}" for check in graph.asset_check_keys
    )
    repository = defs.get_repository_def()
    jobs = sorted(job.name for job in repository.get_all_jobs() if not job.name.startswith("__"))
    return {
        "assets": assets,
        "asset_checks": checks,
        "jobs": jobs,
        "schedules": sorted(s.name for s in repository.schedule_defs),
        "sensors": sorted(s.name for s in repository.sensor_defs),
    }


def load_defs():
    from segment_cadence.definitions import defs

    return defs


def test_definitions_match_the_golden_snapshot() -> None:
    assert snapshot(load_defs()) == json.loads(GOLDEN.read_text())


def test_each_schedule_is_named_after_its_job() -> None:
    """One name for each thing: a schedule is `<job>_schedule`, never its job's own name."""
    repository = load_defs().get_repository_def()
    assert {s.name: s.job_name for s in repository.schedule_defs} == {
        f"{job}_schedule": job for job in ("monthly_refresh", "quarterly_strategic_refresh")
    }


def test_build_and_published_membership_are_told_apart() -> None:
    """In the UI the build and the published tables differ by key prefix, group and the
    first words of their description."""
    graph = load_defs().resolve_asset_graph()
    for table in ("segment_membership", "segment_transitions", "segment_kpis", "customer_features"):
        build = graph.get(dg.AssetKey(["build", table]))
        assert build.group_name == "segments"
        assert build.description.startswith("Build (not yet published): "), table
    for table in ("segment_membership", "segment_migration_rates"):
        published = graph.get(dg.AssetKey(["published", table]))
        assert published.group_name == "published"
        assert published.description.startswith("Published: "), table


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(snapshot(load_defs()), indent=2) + "\n")
