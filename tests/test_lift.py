"""Lift against holdouts: the interval arithmetic, the "not enough data" state, and the
example data's planted campaigns recovered over a fixed set of seeds."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_cadence.defs.segments import lift
from segment_cadence.defs.segments.lift import Arm, Measurement
from segment_cadence.example import generator
from segment_cadence.example.generator import GeneratorConfig

SEEDS = range(101, 121)  # 20 fixed seeds


def arm_of(values: list[float]) -> Arm:
    return Arm(len(values), sum(values), sum(v * v for v in values))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=60))
def test_an_arm_from_sums_has_the_sample_mean_and_variance(values):
    arm = arm_of(values)
    mean = sum(values) / len(values)
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    assert arm.mean == pytest.approx(mean, abs=1e-6)
    assert arm.variance == pytest.approx(variance, rel=1e-6, abs=1e-3)


def test_the_interval_is_welchs_normal_approximation():
    treated, held = Arm(400, 80, 80), Arm(100, 10, 10)  # 20 % against 10 %
    found = lift.difference(treated, held)
    error = math.sqrt(0.2 * 0.8 * 400 / 399 / 400 + 0.1 * 0.9 * 100 / 99 / 100)
    assert found.measured and found.difference == pytest.approx(0.1)
    assert found.low == pytest.approx(0.1 - 1.959964 * error, abs=1e-6)
    assert found.high == pytest.approx(0.1 + 1.959964 * error, abs=1e-6)
    assert found.excludes_zero
    wider = lift.difference(treated, held, Measurement(confidence=0.99))
    assert wider.low < found.low and wider.high > found.high


def test_an_arm_below_the_minimum_size_gives_not_enough_data_and_no_number():
    found = lift.difference(Arm(500, 50, 50), Arm(29, 3, 3))
    assert found.status == lift.NOT_ENOUGH_DATA
    assert found.difference is None and found.low is None and not found.excludes_zero
    assert (found.treated_customers, found.held_out_customers) == (500, 29)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (
            {"purchase_within_days": 40},
            "lift.purchase_within_days must be a whole number from 1 to 28 (the window must end within the next month), got 40",
        ),
        ({"confidence": 1}, "lift.confidence must be a level from 0.5 up to (not including) 1"),
        ({"window": 3}, "lift: unknown key 'window'"),
    ],
)
def test_measurement_settings_out_of_range_are_one_line_problems(raw, says):
    problems: list[str] = []
    lift.parse_measurement(raw, problems)
    assert len(problems) == 1 and problems[0].startswith(says)


def planted_estimates(
    out: Path, config: GeneratorConfig
) -> dict[str, tuple[lift.LiftEstimate, float]]:
    """Each planted campaign's lift on its look-alikes (bought within 28 days of the send,
    treated against held out) and the true effect among the treated: the share whose only
    purchase in the window is a planted one."""
    generator.generate(out, config, progress=False)
    sent = generator.planted_send_date(config)
    first = generator.first_planted_order(config)
    con = duckdb.connect()
    bought = dict(
        con.execute(
            f"""
            select customer_id,
                bool_or(cast(substr(order_id, 2) as bigint) < {first}) as organic
            from '{out / "orders.parquet"}'
            where order_date >= ? and order_date < ?
            group by customer_id
            """,
            [sent, sent + timedelta(days=28)],
        ).fetchall()
    )
    found = {}
    for campaign_id, *_ in generator.PLANTED_CAMPAIGNS:
        rows = [
            (c, held)
            for k, c, held in generator.planted_look_alikes(out, config)
            if k == campaign_id
        ]
        treated = [1.0 if c in bought else 0.0 for c, held in rows if not held]
        held = [1.0 if c in bought else 0.0 for c, held in rows if held]
        caused = [1.0 if bought.get(c) is False else 0.0 for c, h in rows if not h]
        found[campaign_id] = (
            lift.difference(arm_of(treated), arm_of(held)),
            sum(caused) / len(caused),
        )
    return found


@pytest.mark.slow
def test_the_planted_lift_is_recovered_and_the_no_effect_campaign_covers_zero(tmp_path):
    """Over 20 fixed seeds: the loyal campaign's interval excludes 0 every time and covers
    the effect planted among its treated customers at least 17 times; the occasional one's
    covers 0 at least 17 times."""
    covers_truth = excludes_zero = covers_zero = 0
    for seed in SEEDS:
        config = GeneratorConfig(customers=6_000, end_month="2025-12", history_months=14, seed=seed)
        found = planted_estimates(tmp_path / str(seed), config)
        effect, truth = found["CMP9001"]
        null, null_truth = found["CMP9002"]
        assert effect.measured and null.measured, (seed, effect, null)
        assert null_truth == 0
        assert 0.15 < truth < generator.PLANTED_LIFT
        covers_truth += effect.covers(truth)
        excludes_zero += effect.excludes_zero and effect.low > 0
        covers_zero += null.covers(0.0)
    assert excludes_zero == len(SEEDS)
    assert covers_truth >= 17
    assert covers_zero >= 17


def test_a_random_holdout_gives_intervals_that_cover_zero_about_95_times_in_100():
    """No effect, 400 simulated campaigns: the stated 95 % is close to what happens."""
    rng = random.Random(3)
    covered = 0
    for _ in range(400):
        outcomes = [1.0 if rng.random() < 0.08 else 0.0 for _ in range(1_200)]
        held = [rng.random() < 0.12 for _ in outcomes]
        found = lift.difference(
            arm_of([o for o, h in zip(outcomes, held, strict=True) if not h]),
            arm_of([o for o, h in zip(outcomes, held, strict=True) if h]),
        )
        covered += found.covers(0.0)
    assert 0.92 <= covered / 400 <= 0.98
