"""What every refresh pays before its first step: importing the code location. The heavy
libraries only some steps use are imported by those steps (issue 15)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from segment_cadence.platform import progress

# scikit-learn is used by the quarterly refit only; matplotlib by nothing any more (the
# review pack writes its SVG charts itself), and it must not come back through an import.
LOADED_WHERE_USED = ("sklearn", "matplotlib")


@pytest.mark.slow
def test_importing_the_code_location_loads_no_library_only_a_rare_step_uses():
    probe = (
        "import json, sys; import segment_cadence.definitions; "
        f"print(json.dumps(sorted(m for m in {LOADED_WHERE_USED!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.splitlines()[-1]) == []


def test_a_refresh_prints_its_own_lines_and_dbt_speaks_in_the_run_logs(published_november):
    """At the terminal: the command's lines, not dbt's console (one line per node), nor
    Dagster's info messages, nor a warning about the job's backfill policies. dbt's lines are
    in the run's logs, one message per dbt step."""
    import dagster as dg

    home = published_november()
    stdout = (home / "refresh.stdout").read_text()
    stderr = (home / "refresh.stderr").read_text()
    assert "2025-11  published" in stdout
    steps = [line for line in stdout.splitlines() if line.startswith("    [")]
    total = int(steps[-1].split("/")[1].split()[0])
    assert len(steps) == total > 20  # a line for each step of the run, as it ended
    assert steps[-1].startswith("    [" + "#" * progress.BAR_WIDTH + "]")
    assert any(line.split()[2] == "features_inputs" for line in steps)
    for dbt_line in ("Running with dbt", "START sql", "Completed successfully", "PASS="):
        assert dbt_line not in stdout, dbt_line
    assert stderr == ""
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        run = instance.get_runs(limit=1)[0]
        said = {
            entry.step_key: entry.user_message
            for entry in instance.all_logs(run.run_id)
            if entry.user_message.startswith("dbt:")
        }
    assert set(said) >= {"features_inputs", "segment_marts", "published_models"}
    assert "Completed successfully" in said["segment_marts"]
    assert "\x1b[" not in said["segment_marts"]  # no terminal colours in the UI's text


def test_every_monthly_asset_refreshes_one_month_a_run():
    """One backfill policy across the monthly job (dagster-dbt's default would hand the dbt
    assets a backfill's whole range), so resolving the job warns of nothing."""
    import warnings

    import dagster as dg

    from segment_cadence.definitions import build_definitions

    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*varying BackfillPolicies")
        defs = build_definitions()
        job = defs.resolve_job_def("monthly_refresh")
    graph = defs.resolve_asset_graph()
    policies = {
        graph.get(key).backfill_policy
        for key in job.asset_layer.executable_asset_keys
        if graph.get(key).is_partitioned
    }
    assert policies == {dg.BackfillPolicy.multi_run(1)}


def test_a_step_line_shows_the_bar_the_count_the_step_and_its_time():
    assert progress.step_line(5, 20, "features_inputs", 1.94, "STEP_SUCCESS") == (
        "    [#####---------------]  5/20  features_inputs  1.9 s"
    )
    assert progress.step_line(20, 20, "review", None, "STEP_FAILURE") == (
        "    [####################] 20/20  review  FAILED"
    )
    assert progress.step_line(0, 0, "x", 0.0, "STEP_SKIPPED").endswith("x  0.0 s  skipped")
