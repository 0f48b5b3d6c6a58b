"""Forward-looking value against published and independent figures on CDNOW: Gamma-Gamma's
published fit, and lifetimes' expected purchases, expected spend and CLV for every customer
(segment_cadence/defs/segments/value.py, issue 16)."""

from __future__ import annotations

import dataclasses
import warnings
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segment_cadence.defs.segments import churn, value

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import lifetimes

# Fader, Hardie & Lee (2005), "RFM and CLV": Gamma-Gamma on the CDNOW sample's 946 repeat
# buyers' mean spend.
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
BGNBD = churn.BgNbdParams(0.242593, 4.413532, 0.792886, 2.425752, 0.0, 2357, True)
MBGNBD = churn.BgNbdParams(0.524843, 6.183082, 0.891360, 1.614003, 0.0, 2357, True, "mbgnbd")
LIFETIMES_WEEKS_PER_MONTH = 4.345  # lifetimes' customer_lifetime_value, freq="W"


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """x, t_x, T (weeks) and zbar, the mean spend of the repeat purchases, per customer."""
    return pd.read_csv(churn._lifetimes_dataset("cdnow_customers_summary_with_transactions.csv"))


@pytest.fixture(scope="module")
def spend(cdnow: pd.DataFrame) -> value.GammaGammaParams:
    repeat = cdnow[cdnow["x"] > 0]
    return value.fit_gamma_gamma(repeat["x"], repeat["zbar"])


def lifetimes_model(params: churn.BgNbdParams):
    fitter = (
        lifetimes.ModifiedBetaGeoFitter() if params.model == "mbgnbd" else lifetimes.BetaGeoFitter()
    )
    fitter.params_ = pd.Series(dict(zip(("r", "alpha", "a", "b"), params.as_array(), strict=True)))
    fitter.predict = fitter.conditional_expected_number_of_purchases_up_to_time  # as fit() sets
    return fitter


def lifetimes_spend(params: value.GammaGammaParams):
    fitter = lifetimes.GammaGammaFitter()
    fitter.params_ = pd.Series({"p": params.p, "q": params.q, "v": params.gamma})
    return fitter


def test_gamma_gamma_on_cdnows_repeat_buyers_reproduces_the_published_fit(spend):
    assert spend.n_customers == 946 and spend.converged
    for name, published in PUBLISHED_GAMMA_GAMMA.items():
        assert getattr(spend, name) == pytest.approx(published, rel=0.01), name


def test_the_independence_the_spend_model_assumes_is_measured(cdnow):
    # The paper reports a correlation of 0.11 between frequency and mean spend on CDNOW.
    assert value.spend_frequency_correlation(cdnow["x"], cdnow["zbar"]) == pytest.approx(
        0.11, abs=0.005
    )


def test_expected_spend_is_lifetimes_for_every_customer_and_the_mean_without_repeats(cdnow, spend):
    repeat = cdnow[cdnow["x"] > 0]
    theirs = lifetimes_spend(spend).conditional_expected_average_profit(repeat["x"], repeat["zbar"])
    np.testing.assert_allclose(
        value.expected_spend(spend, repeat["x"], repeat["zbar"]), theirs, rtol=1e-9
    )
    assert value.expected_spend(spend, [0], [0.0])[0] == pytest.approx(spend.population_mean)


@pytest.mark.parametrize("params", [BGNBD, MBGNBD], ids=["bgnbd", "mbgnbd"])
def test_expected_purchases_in_a_year_are_lifetimes_for_every_customer(cdnow, params):
    ours = value.expected_purchases(params, 52.0, cdnow["x"], cdnow["t_x"], cdnow["T"])
    theirs = lifetimes_model(params).conditional_expected_number_of_purchases_up_to_time(
        52.0, cdnow["x"], cdnow["t_x"], cdnow["T"]
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
    assert (ours > 0).all()


def test_clv_is_lifetimes_for_every_customer(cdnow, spend):
    assumptions = value.ClvAssumptions(12, 0.01, LIFETIMES_WEEKS_PER_MONTH)
    ours = value.clv(BGNBD, spend, assumptions, cdnow["x"], cdnow["t_x"], cdnow["T"], cdnow["zbar"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = lifetimes_spend(spend).customer_lifetime_value(
            lifetimes_model(BGNBD),
            cdnow["x"],
            cdnow["t_x"],
            cdnow["T"],
            cdnow["zbar"],
            time=12,
            discount_rate=0.01,
            freq="W",
        )
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


histories = st.tuples(
    st.integers(min_value=0, max_value=30),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(min_value=1.0, max_value=300.0),
)


@settings(max_examples=50, deadline=None)
@given(histories, st.sampled_from([BGNBD, MBGNBD]))
def test_more_time_means_more_expected_purchases_and_discounting_means_less_value(history, params):
    x, share, big_t = history
    t_x = 0.0 if x == 0 else share * big_t
    grows = [value.expected_purchases(params, t, [x], [t_x], [big_t])[0] for t in (0, 4, 26, 52)]
    assert grows[0] == 0 and all(b >= a for a, b in zip(grows, grows[1:], strict=False))
    spend = value.GammaGammaParams(6.25, 3.74, 15.44, 0.0, 946, True)
    worth = [
        value.clv(params, spend, value.ClvAssumptions(12, rate), [x], [t_x], [big_t], [30.0])[0]
        for rate in (0.0, 0.01, 0.05)
    ]
    assert worth[0] >= worth[1] >= worth[2] >= 0


def test_assumptions_and_inputs_out_of_range_are_refused_in_words():
    with pytest.raises(ValueError, match="horizon_months must be a whole number >= 1; got 0"):
        value.ClvAssumptions(0, 0.01)
    with pytest.raises(ValueError, match="monthly_discount_rate must be at least 0"):
        value.ClvAssumptions(12, 1.5)
    with pytest.raises(ValueError, match="repeat buyers with a positive mean spend"):
        value.fit_gamma_gamma([0, 2], [10.0, 20.0])
    with pytest.raises(ValueError, match="forecast horizon"):
        value.expected_purchases(BGNBD, -1.0, [1], [1.0], [2.0])


def test_the_outlook_per_x_and_t_times_p_alive_is_the_expectation_and_the_clv(cdnow, spend):
    """The warehouse multiplies P(alive) by the outlook of each distinct (x, T): the same
    numbers as computing per customer."""
    x, t_x, big_t, zbar = (cdnow[c].to_numpy(float) for c in ("x", "t_x", "T", "zbar"))
    assumptions = value.ClvAssumptions(18, 0.02)
    outlook = value.purchase_outlook(MBGNBD, assumptions, x, big_t)
    assert len(outlook.x) == len({(a, b) for a, b in zip(x, big_t, strict=True)}) < len(x)
    lookup = {
        (a, b): (p, d)
        for a, b, p, d in zip(
            outlook.x,
            outlook.T,
            outlook.alive_purchases_12m,
            outlook.discounted_alive_purchases,
            strict=True,
        )
    }
    factors = np.array([lookup[(a, b)] for a, b in zip(x, big_t, strict=True)])
    alive = churn.p_alive(MBGNBD, x, t_x, big_t)
    year = value.OUTLOOK_MONTHS * value.WEEKS_PER_MONTH
    np.testing.assert_allclose(
        alive * factors[:, 0], value.expected_purchases(MBGNBD, year, x, t_x, big_t), rtol=1e-12
    )
    per_purchase = value.expected_spend(spend, x, np.where(x > 0, zbar, 0.0))
    np.testing.assert_allclose(
        alive * per_purchase * factors[:, 1],
        value.clv(MBGNBD, spend, assumptions, x, t_x, big_t, np.where(x > 0, zbar, 0.0)),
        rtol=1e-12,
    )


def test_an_unsound_spend_fit_gives_way_to_the_last_sound_one_and_says_so():
    sound = value.GammaGammaParams(6.25, 3.74, 15.44, -4000.0, 946, True)
    record = {
        "month_end": date(2025, 10, 31),
        **value.MonthSpendFit(sound, 0.1, value.DEFAULT_CLV).record(),
    }
    infinite_mean = value.GammaGammaParams(2.0, 0.8, 10.0, -3990.0, 900, True)
    kept, problem = value.month_spend_fit_to_keep(infinite_mean, 0.1, [record], value.DEFAULT_CLV)
    assert kept.params == sound and kept.kept_from == date(2025, 10, 31)
    assert problem == (
        "spend model: q = 0.8 <= 1: the population's mean spend per purchase is infinite; "
        "kept the parameters fitted for 2025-10"
    )
    stuck = dataclasses.replace(sound, converged=False)
    alone, problem = value.month_spend_fit_to_keep(stuck, 0.1, [], value.DEFAULT_CLV)
    assert alone.params is stuck and alone.kept_from is None
    assert problem.endswith("no earlier sound fit to keep, so this month's is used")
    wall = dataclasses.replace(sound, gamma=float(np.exp(30.0)))
    assert wall.unsound().startswith("gamma ran into the search's bound")
    # A month that itself kept an earlier fit is not a sound fit to keep later.
    borrowed = {**record, "spend_kept_from": date(2025, 9, 30)}
    again, _ = value.month_spend_fit_to_keep(stuck, 0.1, [borrowed], value.DEFAULT_CLV)
    assert again.params is stuck
