"""The dictionary's churn model in a real refresh: under the modified BG/NBD a one-time buyer
who lapsed long ago is likely gone and lands in at_risk, and the warehouse's scores (P(alive),
expected purchases, expected spend, CLV) are the Python formulas with the month's fits for
every customer (issue 16)."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest

from segment_cadence.defs.segments import churn, value
from tests import commands
from tests.marks import slow_fixture

DECEMBER = date(2025, 12, 31)
# One purchase 18 to 24 months before the month's end, nothing since, modest spend: under
# BG/NBD they could never be at risk (P(alive) = 1 without a repeat purchase). Under the
# modified BG/NBD a one-time buyer's churn likelihood rises slowly with the silence (about
# 0.003 a week on this data), so the youngest sits clear of the at_risk rule's 0.45 rather
# than on it: at 450 days it was 0.444, and a change of the generated history moved it there.
PLANTED = {f"P{n:08d}": DECEMBER - timedelta(days=540 + 6 * n) for n in range(30)}


def plant_lapsed_one_time_buyers(raw: Path) -> None:
    con = duckdb.connect()
    customers = (raw / "customers.parquet").as_posix()
    orders = (raw / "orders.parquet").as_posix()
    con.execute("create table planted (customer_id varchar, day date)")
    con.executemany("insert into planted values (?, ?)", list(PLANTED.items()))
    con.execute(
        f"""copy (
            select * from read_parquet('{customers}')
            union all
            select customer_id, day, 'North', '35-44', 'en', true from planted
        ) to '{customers}.new' (format parquet)"""
    )
    con.execute(
        f"""copy (
            select * from read_parquet('{orders}')
            union all
            select 'PL' || customer_id, 'PO' || customer_id, customer_id, day, 320.0, 'rings'
            from planted
        ) to '{orders}.new' (format parquet)"""
    )
    for path in (customers, orders):
        os.replace(f"{path}.new", path)


@pytest.fixture(scope="module")
@slow_fixture
def refreshed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 generated customers over three years and the planted ones, December refreshed by
    the real command with the shipped dictionary (churn_model: mbgnbd)."""
    from segment_cadence.example.generator import GeneratorConfig, generate

    home = tmp_path_factory.mktemp("churn_model")
    config = GeneratorConfig(customers=600, end_month="2025-12", history_months=36, seed=11)
    generate(home / "raw", config, progress=False)
    plant_lapsed_one_time_buyers(home / "raw")
    commands.refresh(home, "2025-12")
    return home / "warehouse.duckdb"


def rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, [DECEMBER]).fetchall()
    finally:
        con.close()


def test_lapsed_one_time_buyers_are_likely_gone_and_land_in_at_risk(refreshed):
    found = rows(
        refreshed,
        "select f.customer_id, f.frequency, f.churn_likelihood, m.segment_id "
        "from published.customer_features f join published.segment_membership m "
        "using (customer_id, month_end) where f.month_end = ? and f.customer_id like 'P%'",
    )
    assert {r[0] for r in found} == set(PLANTED)
    assert {r[1] for r in found} == {1}
    assert min(r[2] for r in found) >= 0.45  # the shipped at_risk rule's threshold
    assert {r[3] for r in found} == {"at_risk"}


def test_the_months_fit_is_the_modified_bgnbd_and_scores_every_customer_as_python_does(
    refreshed,
):
    names = ("r", "alpha", "a", "b", "log_likelihood", "n_customers", "converged", "model")
    (fit,) = rows(
        refreshed,
        f"select {', '.join(names)}, kept_from from churn.bgnbd_params where month_end = ?",
    )
    params = churn.params_of(dict(zip(names, fit, strict=False)))
    assert params.model == "mbgnbd" and params.converged and fit[-1] is None
    scored = rows(
        refreshed,
        "select bgnbd_x, bgnbd_t_x, bgnbd_T, p_alive, churn_likelihood "
        "from published.customer_features where month_end = ? and bgnbd_T is not null",
    )
    assert len(scored) > 500
    x, t_x, big_t, p_alive, churn_likelihood = (
        np.array(c, dtype=float) for c in zip(*scored, strict=True)
    )
    np.testing.assert_allclose(p_alive, churn.p_alive(params, x, t_x, big_t), rtol=1e-9, atol=0)
    np.testing.assert_allclose(churn_likelihood, 1 - p_alive, rtol=0, atol=1e-15)
    one_time = x == 0
    assert one_time.sum() > 100 and np.median(churn_likelihood[one_time]) > 0.05


def test_expected_purchases_spend_and_clv_are_pythons_for_every_customer(refreshed):
    churn_names = ("r", "alpha", "a", "b", "log_likelihood", "n_customers", "converged", "model")
    (fit,) = rows(
        refreshed, f"select {', '.join(churn_names)} from churn.bgnbd_params where month_end = ?"
    )
    spend_names = (
        "spend_p",
        "spend_q",
        "spend_gamma",
        "spend_log_likelihood",
        "spend_n_customers",
        "spend_converged",
        "clv_horizon_months",
        "clv_monthly_discount_rate",
        "spend_frequency_correlation",
    )
    (spend_fit,) = rows(
        refreshed, f"select {', '.join(spend_names)} from churn.value_params where month_end = ?"
    )
    recorded = dict(zip(spend_names, spend_fit, strict=True))
    purchases = churn.params_of(dict(zip(churn_names, fit, strict=True)))
    spend = value.spend_params_of(recorded)
    assumptions = value.assumptions_of(recorded)
    assert spend is not None and spend.converged and spend.unsound() is None
    assert assumptions == value.DEFAULT_CLV  # the shipped dictionary keeps the defaults
    assert abs(recorded["spend_frequency_correlation"]) < 0.3

    scored = rows(
        refreshed,
        "select bgnbd_x, bgnbd_t_x, bgnbd_T, coalesce(mean_repeat_spend, 0), "
        "expected_purchases_12m, expected_spend, clv "
        "from published.customer_features where month_end = ? and bgnbd_T is not null",
    )
    assert len(scored) > 500
    x, t_x, big_t, mean_spend, purchases_12m, per_purchase, lifetime = (
        np.array(c, dtype=float) for c in zip(*scored, strict=True)
    )
    year = value.OUTLOOK_MONTHS * value.WEEKS_PER_MONTH
    np.testing.assert_allclose(
        purchases_12m, value.expected_purchases(purchases, year, x, t_x, big_t), rtol=1e-9
    )
    np.testing.assert_allclose(per_purchase, value.expected_spend(spend, x, mean_spend), rtol=1e-9)
    np.testing.assert_allclose(
        lifetime,
        value.clv(purchases, spend, assumptions, x, t_x, big_t, mean_spend),
        rtol=1e-9,
    )
    # The planted one-time buyers, long silent, are expected to buy less than recent ones.
    planted = rows(
        refreshed,
        "select max(expected_purchases_12m) from published.customer_features "
        "where month_end = ? and customer_id like 'P%'",
    )[0][0]
    recent_one_time = (x == 0) & (big_t < 8)
    assert recent_one_time.any() and planted < purchases_12m[recent_one_time].min()
