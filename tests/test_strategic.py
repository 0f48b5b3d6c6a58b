"""The quarterly re-fit recovers planted clusters, reports stability, rejects a tiny one; its
candidate and clusters become the strategic schema's dbt tables, kept per quarter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import adjusted_rand_score

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.strategic import candidate, strategic
from segment_cadence.platform import paths, warehouse
from tests.marks import slow_fixture


def planted_buyers(seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Three clear behaviours and a tiny fourth group of 40 customers."""
    rng = np.random.default_rng(seed)
    groups = [
        # recency, frequency, monetary, events_90d, channels_90d, n
        (40, 8, 15_000, 9, 3, 900),  # recent collectors
        (200, 2, 900, 2, 1, 1_200),  # occasional mid spenders
        (900, 1, 300, 0, 0, 900),  # lapsed one-timers
        (5, 60, 2_000_000, 60, 4, 40),  # a tiny group (1.3 % of buyers)
    ]
    frames, labels = [], []
    for label, (recency, frequency, monetary, events, channels, n) in enumerate(groups):
        frames.append(
            pd.DataFrame(
                {
                    "recency_days": np.clip(rng.normal(recency, recency * 0.15, n), 0, None),
                    "frequency": np.clip(
                        np.round(rng.normal(frequency, frequency * 0.15, n)), 1, None
                    ),
                    "monetary_value": monetary * rng.lognormal(0, 0.15, n),
                    "engagement_events_90d": np.clip(np.round(rng.normal(events, 1, n)), 0, None),
                    "engagement_channels_90d": np.clip(
                        np.round(rng.normal(channels, 0.3, n)), 0, 4
                    ),
                }
            )
        )
        labels += [label] * n
    return pd.concat(frames, ignore_index=True), np.array(labels)


@pytest.fixture(scope="module")
@slow_fixture
def result():
    features, planted = planted_buyers()
    return strategic.refit(features), features, planted


def test_planted_clusters_are_recovered(result):
    refit, _, planted = result
    assert adjusted_rand_score(planted, refit.labels) > 0.8


def test_stability_is_reported_and_high_for_clear_clusters(result):
    refit, *_ = result
    assert len(refit.bootstrap_ari) == strategic.StrategicSettings().bootstrap_rounds
    assert min(refit.bootstrap_ari) > 0.8
    assert refit.chosen_k in refit.k_scores


def test_a_tiny_cluster_is_rejected(result):
    """Forced to four clusters, k-means gives the 40 outliers their own; it is too small."""
    _, features, planted = result
    forced = strategic.refit(features, strategic.StrategicSettings(k_range=(4,)))
    assert forced.chosen_k == 4
    assert len(np.unique(forced.labels)) == 3
    assert len(np.unique(forced.labels[planted == 3])) == 1  # merged as a whole
    assert any("below the minimum share" in reason for reason in forced.rejected)
    assert adjusted_rand_score(planted, forced.labels) > 0.8


def test_rules_are_readable_and_reproduce_the_clusters(result):
    refit, *_ = result
    assert refit.rule_fidelity > 0.95
    for rule in refit.rules.values():
        assert any(column in rule for column in strategic.CLUSTER_FEATURES)


def test_candidate_is_a_valid_dictionary_that_keeps_protected_segments(result):
    refit, *_ = result
    production = yaml.safe_load(paths.SEGMENTS_FILE.read_text())
    candidate = strategic.candidate_dictionary(production, refit, "2025-Q4", {"vip_collectors"})
    dictionary = segment_dictionary.validate(
        candidate, "<candidate>", segment_dictionary.feature_columns()
    )
    active = [s.id for s in dictionary.segments]
    assert active[:3] == ["post_purchase_cooldown", "vip_collectors", "evaluation"]
    assert active[-2:] == ["prospects", "insufficient_data"]
    retired = {s.id for s in dictionary.all_segments if s.status == "retired"}
    assert retired == {"loyal_repeat", "new_first_purchase", "at_risk", "occasional", "dormant"}
    assert len(active) == 5 + 3


def test_too_few_buyers_is_a_clear_error():
    features, _ = planted_buyers()
    with pytest.raises(ValueError, match="too few"):
        strategic.refit(features.head(10))


def strategic_dbt(warehouse_path: Path, target: Path, variables: dict) -> None:
    """dbt builds the candidate's tables in its own process, as the quarterly asset runs it."""
    env = {
        **os.environ,
        "SEGMENT_CADENCE_WAREHOUSE": str(warehouse_path),
        "SEGMENT_CADENCE_DBT_VARS": json.dumps(variables),
    }
    project = [
        "--project-dir",
        str(paths.DBT_PROJECT_DIR),
        "--profiles-dir",
        str(paths.DBT_PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(target),
    ]
    built = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "build",
            "--select",
            "path:models/strategic",
            "--exclude-resource-type",
            "unit_test",
            "--quiet",
            *project,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr


def test_the_candidate_and_its_clusters_are_dbt_tables_kept_per_quarter_for_stability(
    result, tmp_path
):
    """The candidate's membership (the candidate compiled like production, run as the same
    CASE in dbt) and the clusters (Python's labels, handed over as Parquet) land in the
    strategic schema per quarter; the next quarter's stability is measured against them."""
    refit, features, _ = result
    month_end = date(2025, 12, 31)
    production = yaml.safe_load(paths.SEGMENTS_FILE.read_text())
    document = strategic.candidate_dictionary(production, refit, "2025-Q4", {"vip_collectors"})
    dictionary = candidate.validate_candidate(document, "2025-Q4")
    buyers = features.assign(customer_id=[f"C{i:05d}" for i in range(len(features))])
    db = tmp_path / "warehouse.duckdb"
    with warehouse.connect(db) as con:
        warehouse.ensure_schema(con)
        columns = ", ".join(f"{c} double" for c in segment_dictionary.feature_columns())
        con.execute(
            f"create table published.customer_features (customer_id varchar, month_end date, "
            f"{columns})"
        )
        frame = buyers.assign(month_end=month_end)  # noqa: F841 - DuckDB reads it by name
        con.execute("insert into published.customer_features by name select * from frame")
    target = tmp_path / "target"
    for quarter, labels in (("2025-Q3", refit.labels), ("2025-Q4", 10 - refit.labels)):
        directory = tmp_path / "candidates" / quarter
        clusters = candidate.write_clusters(directory, buyers, labels)
        strategic_dbt(db, target, candidate.dbt_vars(dictionary, quarter, month_end, clusters))
    strategic_dbt(db, target, candidate.dbt_vars(dictionary, "2025-Q4", month_end, clusters))
    case = " ".join(f"when {s.rule_sql} then '{s.id}'" for s in dictionary.ruled)
    with warehouse.connect(db, read_only=True) as con:
        staged = con.execute(
            "select c.customer_id, c.segment_id, "
            f"case {case} else '{dictionary.fallback.id}' end "
            "from strategic.candidate_membership c "
            "join published.customer_features f using (customer_id, month_end) "
            "where c.quarter = '2025-Q4'"
        ).fetchall()
        kept = con.execute(
            "select quarter, count(*) from strategic.cluster_assignments group by 1 order by 1"
        ).fetchall()
        assert candidate.previous_quarter_ari(con, "2025-Q3") is None
        assert candidate.previous_quarter_ari(con, "2025-Q4") == pytest.approx(1.0)
    assert len(staged) == len(buyers)
    assert all(placed == expected for _, placed, expected in staged)
    assert kept == [("2025-Q3", len(buyers)), ("2025-Q4", len(buyers))]  # a re-run replaces
