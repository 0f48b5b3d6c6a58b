"""dbt's unit tests of the tricky SQL pass: the 365-day window around 29 February, the monthly
slices, the segment CASE (priority order, a paused segment, the fallback) and the business
rule; the ingest rules' plausible days and amount bounds; the tables built from vars (the
month's BG/NBD fit, the per-version dictionary, quotes and NULLs kept); in the analysis
models, the onboarding rule's day 30, pressure patterns against last month, the bias audit's
ratios and bounds; and the published views' join on the publication ledger
(dbt_project/models/**/*.yml, `unit_tests:`).

They run as a developer would run them, through the project's profile against a private
warehouse: the sources loaded from the session's generated jeweller, every model built
empty (`dbt run --empty`: dbt reads the column types of a unit test's inputs from the
warehouse), then `dbt test --select test_type:unit`. The monthly refresh leaves them out
(segment_cadence/defs/segments/dbt_assets.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from segment_cadence.defs.ingest import ingest
from segment_cadence.platform import paths, state_store, warehouse
from tests.marks import slow_fixture

UNIT_TESTS = {
    "window_365d_ending_on_29_february",
    "window_365d_spanning_29_february",
    "window_365d_of_whole_months",
    "monthly_slices_first_build",
    "monthly_slices_incremental_rebuilds_only_what_changed",
    "segment_case_priority_pause_and_fallback",
    "business_rule_high_value_never_below_priority_2",
    "onboarding_rule_counts_sends_before_day_30_only",
    "pressure_counts_this_month_against_last_and_weeks_of_this_month_only",
    "bias_ratios_are_group_share_over_overall_share_flagged_beyond_the_bound",
    "implausible_dates_are_refused_outside_the_plausible_days_both_ends_included",
    "amounts_are_refused_below_zero_and_above_the_maximum_not_at_either_bound",
    "bgnbd_params_keep_the_fit_exactly_and_a_failed_fit_scores_nobody",
    "bgnbd_params_of_a_month_not_fitted_have_no_parameters",
    "value_params_keep_the_spend_fit_and_its_assumptions",
    "value_params_of_a_fit_recorded_before_the_spend_model",
    "dictionary_rows_keep_quotes_and_nulls_of_the_rules_as_written",
    "published_membership_is_the_publication_the_ledger_names",
    "segment_lift_counts_the_window_after_last_month_per_arm",
    "campaign_lift_windows_meet_at_the_first_send",
    "segment_scorecard_applies_the_target_of_the_segments_maturity",
    "segment_scorecard_measures_lift_only_with_enough_held_out",
}


def dbt(warehouse_path: Path, target: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "SEGMENT_CADENCE_DBT_VARS"}
    env["SEGMENT_CADENCE_WAREHOUSE"] = str(warehouse_path)
    project = [
        "--project-dir",
        str(paths.DBT_PROJECT_DIR),
        "--profiles-dir",
        str(paths.DBT_PROJECT_DIR),
    ]
    command = [str(Path(sys.executable).parent / "dbt"), *args, *project]
    command += ["--target-path", str(target), "--log-path", str(target)]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
@slow_fixture
def empty_models(state_home: Path, generated_data: Path, tmp_path_factory) -> tuple[Path, Path]:
    """A private warehouse with the sources loaded and every model built with no rows."""
    root = tmp_path_factory.mktemp("dbt_unit")
    warehouse_path, target = root / "warehouse.duckdb", root / "target"
    config = ingest.load_config(paths.sources_file(), base=state_home)
    with warehouse.connect(warehouse_path) as con:
        warehouse.ensure_schema(con)
        ingest.load_all(con, config)
        state_store.ensure_firewall_copies(con)
    # The analysis models read the published views, which dbt knows as sources only: they
    # are built once the published models exist, as in the monthly refresh.
    analysis = ["path:models/governance", "path:models/health"]
    built = dbt(warehouse_path, target, "run", "--empty", "--quiet", "--exclude", *analysis)
    assert built.returncode == 0, built.stdout + built.stderr
    built = dbt(warehouse_path, target, "run", "--empty", "--quiet", "--select", *analysis)
    assert built.returncode == 0, built.stdout + built.stderr
    return warehouse_path, target


def test_dbt_unit_tests_pass(empty_models: tuple[Path, Path]) -> None:
    warehouse_path, target = empty_models
    result = dbt(warehouse_path, target, "test", "--select", "test_type:unit")
    assert result.returncode == 0, result.stdout + result.stderr
    run_results = json.loads((target / "run_results.json").read_text())["results"]
    outcomes = {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in run_results}
    assert outcomes == dict.fromkeys(UNIT_TESTS, "pass")
