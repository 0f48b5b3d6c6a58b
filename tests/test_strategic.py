"""The quarterly re-fit recovers planted clusters, reports stability, rejects a tiny one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import adjusted_rand_score

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.strategic import strategic
from segment_cadence.platform import paths


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
