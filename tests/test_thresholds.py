"""Thresholds: validated configuration and the evaluation of breaches."""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pytest

from segment_cadence.defs.health import health, thresholds

MONTH = date(2025, 12, 31)


def rule(**fields) -> thresholds.ThresholdRule:
    config = thresholds.validate({"rules": [{"id": "r", "metric": "size", **fields}]}, "t.yaml")
    return config.rules[0]


def test_the_shipped_thresholds_are_valid():
    config = thresholds.load()
    assert {r.id for r in config.rules} >= {"segment_size_change", "inputs_stale"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"above": {"warn": "high"}}, "expected a number"),
        ({}, "no bounds"),
        ({"above": {"warn": 5, "critical": 3}}, "critical must not be below"),
        ({"direction": "sideways", "above": {"warn": 1}}, "direction must be one of"),
        ({"colour": "red", "above": {"warn": 1}}, "unknown field 'colour'"),
        ({"consecutive": 0, "above": {"warn": 1}}, "consecutive must be a whole number"),
    ],
)
def test_invalid_rules_name_the_file_rule_and_problem(fields, message):
    with pytest.raises(thresholds.ThresholdError) as raised:
        thresholds.validate({"rules": [{"id": "r", "metric": "size", **fields}]}, "t.yaml")
    assert "t.yaml: rule 'r'" in str(raised.value) and message in str(raised.value)


def test_unknown_metric_is_refused():
    with pytest.raises(thresholds.ThresholdError, match="unknown metric 'sise'"):
        thresholds.validate(
            {"rules": [{"id": "r", "metric": "sise", "above": {"warn": 1}}]},
            "t.yaml",
            known_metrics={"size"},
        )


def test_absolute_bounds_give_warn_and_critical():
    r = rule(above={"warn": 10, "critical": 20})
    assert thresholds.evaluate_one(r, 15, [])[0] == "warn"
    assert thresholds.evaluate_one(r, 25, [])[0:2] == ("critical", 20)
    assert thresholds.evaluate_one(r, 5, []) is None


def test_relative_change_respects_direction_and_minimum_absolute_change():
    r = rule(relative={"warn": 0.2}, direction="down", min_absolute_change=50)
    assert thresholds.evaluate_one(r, 700, [1000])[3] == "relative"
    assert thresholds.evaluate_one(r, 1300, [1000]) is None  # going up: not watched
    assert thresholds.evaluate_one(r, 7, [10]) is None  # -30 % but only 3 customers


def test_robust_z_waits_for_history_then_uses_median_and_mad():
    r = rule(robust_z={"warn": 3, "critical": 6}, min_history=6)
    assert thresholds.evaluate_one(r, 200, [100, 101, 99]) is None  # too little history
    history = [100, 102, 98, 101, 99, 100]
    severity, bound, baseline, kind = thresholds.evaluate_one(r, 130, history)
    assert (severity, kind, baseline) == ("critical", "robust_z", 100.0)
    assert thresholds.evaluate_one(r, 101, history) is None


def test_evaluate_applies_rules_to_their_segments():
    config = thresholds.validate(
        {"rules": [{"id": "r", "metric": "size", "segments": ["vip"], "above": {"warn": 10}}]}, "t"
    )
    values = {("vip", "size"): 20.0, ("other", "size"): 20.0}
    breaches = thresholds.evaluate(config, MONTH, values, {})
    assert [(b.segment_id, b.severity) for b in breaches] == [("vip", "warn")]


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(1)
    before = rng.lognormal(6, 1, 20_000)
    assert health.psi(before, rng.lognormal(6, 1, 20_000)) < 0.01
    assert health.psi(before, rng.lognormal(6.8, 1, 20_000)) > 0.25
    assert health.normalised_wasserstein(before, before) == pytest.approx(0.0)


def test_wasserstein_distance_is_scipys():
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(3)
    samples = [
        (rng.normal(size=2_000), rng.normal(0.3, 1.2, size=1_500)),
        (rng.integers(0, 20, 5_000).astype(float), rng.integers(2, 25, 3_000).astype(float)),
        (np.array([1.0]), np.array([1.0, 2.0, 2.0])),
    ]
    for u, v in samples:
        assert health.wasserstein_distance(u, v) == pytest.approx(wasserstein_distance(u, v))


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({"volume_min_ratio": "low"}, "publish_gate.volume_min_ratio must be a number >= 0"),
        ({"max_quarantine_rate": 0.1}, "publish_gate.max_quarantine_rate must map a source"),
        ({"max_input_age_days": {"orders": -1}}, "publish_gate.max_input_age_days.orders"),
        ({"volume_min_ratio": 5, "volume_max_ratio": 4}, "must not exceed volume_max_ratio"),
        ({"quarantine": 0.1}, "publish_gate has unknown field(s) quarantine"),
    ],
)
def test_invalid_publish_gate_bounds_name_the_file_and_field(gate, message):
    document = {"rules": [{"id": "r", "metric": "size", "above": {"warn": 1}}]}
    with pytest.raises(thresholds.ThresholdError, match=re.escape(message)):
        thresholds.validate({**document, "publish_gate": gate}, "thresholds.yaml")


def test_the_shipped_publish_gate_bounds_are_the_documented_defaults():
    from segment_cadence.defs.segments import gate
    from segment_cadence.platform import paths

    assert gate.load_bounds(paths.THRESHOLDS_FILE) == gate.GateBounds(
        max_quarantine_rate={"default": 0.05}
    )


@pytest.mark.parametrize("mention", ["<!subteam^oncall>", "@oncall", "<!subteam^s0abc>"])
def test_an_oncall_mention_that_pings_nobody_is_refused_at_load(mention):
    # Regression: the shipped <!subteam^oncall> rendered as text; Slack needs the group's ID.
    document = {"settings": {"oncall_mention": mention}, "rules": []}
    with pytest.raises(thresholds.ThresholdError, match="pings nobody"):
        thresholds.validate(document, "thresholds.yaml")


@pytest.mark.parametrize("mention", ["<!subteam^S0123ABCD>", "<@U0ASHA1>", "<!here>", ""])
def test_a_user_group_id_a_user_or_no_mention_is_accepted(mention):
    document = {"settings": {"oncall_mention": mention}, "rules": []}
    assert thresholds.validate(document, "thresholds.yaml").settings["oncall_mention"] == mention


def test_the_shipped_thresholds_load():
    assert thresholds.load().settings["oncall_mention"] == ""
