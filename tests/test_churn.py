"""BG/NBD: the published CDNOW fit, recovery of known parameters, SQL scoring that matches
the Python closed form, and clear refusals of data the model cannot be fitted on."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import beta as beta_fn
from scipy.special import gamma as gamma_fn

from segment_cadence.defs.segments import churn

# Fader, Hardie & Lee (2005), section 5: the BG/NBD fit to CDNOW's 39-week calibration period.
PUBLISHED = churn.BgNbdParams(
    r=0.243,
    alpha=4.414,
    a=0.793,
    b=2.426,
    log_likelihood=-9582.4,
    n_customers=2357,
    converged=True,
)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return churn.cdnow_summary()


def test_fit_reproduces_published_cdnow_parameters(cdnow: pd.DataFrame) -> None:
    """r 0.243, alpha 4.414, a 0.793, b 2.426 and LL -9582.4 on 2,357 customers."""
    assert len(cdnow) == 2357
    params = churn.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert params.converged
    assert params.n_customers == 2357
    assert params.r == pytest.approx(PUBLISHED.r, rel=0.01)
    assert params.alpha == pytest.approx(PUBLISHED.alpha, rel=0.01)
    assert params.a == pytest.approx(PUBLISHED.a, rel=0.01)
    assert params.b == pytest.approx(PUBLISHED.b, rel=0.01)
    assert params.log_likelihood == pytest.approx(PUBLISHED.log_likelihood, abs=0.1)
    # It is a maximum: the published (rounded) parameters cannot do better.
    assert params.log_likelihood >= churn.bgnbd_log_likelihood(
        PUBLISHED.as_array(), cdnow["x"], cdnow["t_x"], cdnow["T"]
    )


def test_cdnow_transaction_log_matches_the_precomputed_summary(cdnow: pd.DataFrame) -> None:
    """Our CDNOW convention (repeat purchase days, weeks to 1997-09-30) is the paper's."""
    precomputed = churn.cdnow_summary(source="summary")
    np.testing.assert_array_equal(cdnow.index.to_numpy(), precomputed.index.to_numpy())
    np.testing.assert_array_equal(cdnow["x"].to_numpy(), precomputed["x"].to_numpy())
    # The CSV rounds to 0.01 week.
    np.testing.assert_allclose(cdnow["t_x"], precomputed["t_x"], rtol=0, atol=0.005 + 1e-9)
    np.testing.assert_allclose(cdnow["T"], precomputed["T"], rtol=0, atol=0.005 + 1e-9)


# Parameters and five customers for the likelihoods computed naively, term by term.
NAIVE_PARAMS = (0.7, 3.0, 1.2, 2.5)
NAIVE_HISTORY = (
    np.array([0, 1, 2, 4, 7]),
    np.array([0.0, 3.5, 10.0, 20.0, 31.0]),
    np.array([12.0, 20.0, 30.0, 32.0, 40.0]),
)


def test_log_likelihood_matches_equation_6_evaluated_directly() -> None:
    """The log-space rearrangement equals the paper's likelihood computed naively."""
    (r, alpha, a, b), (x, t_x, big_t) = NAIVE_PARAMS, NAIVE_HISTORY
    gamma_part = gamma_fn(r + x) * alpha**r / gamma_fn(r)
    expected = np.log(
        beta_fn(a, b + x) / beta_fn(a, b) * gamma_part / (alpha + big_t) ** (r + x)
        + np.where(x > 0, beta_fn(a + 1, b + x - 1), 0.0)
        / beta_fn(a, b)
        * gamma_part
        / (alpha + t_x) ** (r + x)
    ).sum()
    got = churn.bgnbd_log_likelihood(np.array([r, alpha, a, b]), x, t_x, big_t)
    assert got == pytest.approx(expected, rel=1e-12)
    # Heavy buyers underflow the naive form, not ours; parameters <= 0 have likelihood 0.
    assert np.isfinite(churn.bgnbd_log_likelihood([r, alpha, a, b], [900], [100.0], [5000.0]))
    assert churn.bgnbd_log_likelihood([r, alpha, -a, b], x, t_x, big_t) == -np.inf


customers = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=6),
        st.sampled_from([0.0, 2.5, 10.0]),
        st.sampled_from([10.0, 30.0]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(customers, st.randoms(use_true_random=False))
def test_the_grouped_likelihood_is_the_sum_over_customers_in_any_order(rows, rng) -> None:
    """The fit evaluates each distinct (x, t_x, T) once, weighted by its count: the same
    total as every customer's own term, whatever the order and however many repeat."""
    rows = [(x, 0.0 if x == 0 else t_x, big_t) for x, t_x, big_t in rows]
    params = np.array([0.7, 3.0, 1.2, 2.5])
    one_by_one = sum(churn.bgnbd_log_likelihood(params, [x], [t], [T]) for x, t, T in rows)
    rng.shuffle(rows)
    x, t_x, big_t = (np.array(column) for column in zip(*rows, strict=True))
    assert churn.bgnbd_log_likelihood(params, x, t_x, big_t) == pytest.approx(one_by_one, rel=1e-12)
    grouped = churn.group_history(x, t_x, big_t)
    assert grouped.n_customers == len(rows)
    assert len(grouped.count) == len(set(rows))


def test_p_alive_sql_matches_python() -> None:
    x = np.array([0, 1, 2, 5, 20, 150, 3, 0, 400, 60, 1, 20])
    t_x = np.array([0, 10, 30, 35, 38, 38.5, 2, 0, 1.0, 200.0, 0.5, 5.0])
    big_t = np.array([38, 38, 38, 38, 38, 39, 200, 5, 2000.0, 200.0, 0.5, 100.0])
    expected = churn.p_alive(PUBLISHED, x, t_x, big_t)
    assert ((expected >= 0) & (expected <= 1)).all()
    # Row 8 (400 purchases in the first week, then 2,000 weeks of silence) is where a naive
    # EXP overflows: it must come out as 0, not NaN or an error. Row 11 is tiny but nonzero,
    # so the relative comparison below covers the far tail too; row 9 bought right up to T.
    assert expected[8] == 0.0 and 0 < expected[11] < 1e-15 and expected[9] > 0.98

    con = duckdb.connect()
    history = pd.DataFrame({"id": range(len(x)), "x": x, "t_x": t_x, "T": big_t})
    con.register("history", history)
    sql = churn.p_alive_sql(PUBLISHED.r, PUBLISHED.alpha, PUBLISHED.a, PUBLISHED.b)
    rows = con.execute(f"select {sql} from history order by id").fetchall()
    np.testing.assert_allclose([row[0] for row in rows], expected, rtol=1e-9, atol=0)

    # Column names are parameters; qualified names work, and NULL histories stay NULL.
    renamed = churn.p_alive_sql(
        PUBLISHED.r,
        PUBLISHED.alpha,
        PUBLISHED.a,
        PUBLISHED.b,
        x_col="h.repeat_days",
        t_x_col="h.last_week",
        T_col="h.weeks",
    )
    rows = con.execute(
        f"select {renamed} from (select id, x as repeat_days, t_x as last_week, T as weeks "
        "from history union all select 99, null, null, null) h order by id"
    ).fetchall()
    np.testing.assert_allclose([row[0] for row in rows[:-1]], expected, rtol=1e-9, atol=0)
    assert rows[-1][0] is None


def test_p_alive_sql_renders_parameters_exactly_and_rejects_nonsense() -> None:
    r, alpha, a, b = 0.24259452055711614, 4.413601922348749, 1e-05, 2.4259067896280846
    sql = churn.p_alive_sql(r, alpha, a, b)
    for value in (r, alpha, a, b):
        assert repr(value) in sql
    with pytest.raises(ValueError, match="alpha must be"):
        churn.p_alive_sql(0.2, float("nan"), 0.8, 2.4)
    with pytest.raises(ValueError, match="b must be"):
        churn.p_alive_sql(0.2, 4.0, 0.8, -1.0)


def test_p_alive_is_one_for_no_repeat_purchases() -> None:
    ones = churn.p_alive(PUBLISHED, [0, 0, 0], [0, 0, 0], [0.5, 50, 5000])
    np.testing.assert_array_equal(ones, 1.0)


def test_p_alive_decreases_as_t_grows_with_t_x_fixed() -> None:
    big_t = np.array([10, 20, 40, 80, 160.0])
    silence = churn.p_alive(PUBLISHED, np.full(5, 3), np.full(5, 10.0), big_t)
    # Bought at T itself: the power term is 1, leaving 1 / (1 + a / (b + x - 1)).
    assert silence[0] == pytest.approx(1 / (1 + PUBLISHED.a / (PUBLISHED.b + 2)))
    assert (np.diff(silence) < 0).all()
    # ... and a customer who just bought is more likely alive than one who went quiet.
    recent, quiet = churn.p_alive(PUBLISHED, [3, 3], [39.0, 5.0], [39.0, 39.0])
    assert recent > quiet


def simulate_bgnbd(
    n: int, r: float, alpha: float, a: float, b: float, horizon: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Generate (x, t_x, T) from BG/NBD's own story, vectorised.

    lambda ~ Gamma(r, rate alpha) and p ~ Beta(a, b) per customer. While alive, purchases
    arrive as a Poisson process, so the number K in (0, horizon] is Poisson(lambda horizon)
    and, given K, their times are K sorted uniforms. After each repeat purchase the customer
    drops out with probability p, so they make at most G ~ Geometric(p) (support 1, 2, ...)
    repeat purchases: x = min(K, G). The x-th of K sorted uniforms is Beta(x, K - x + 1).
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(shape=r, scale=1 / alpha, size=n)
    dropout = rng.beta(a, b, size=n)
    arrivals = rng.poisson(rate * horizon)
    x = np.minimum(arrivals, rng.geometric(dropout))
    repeat = x > 0
    t_x = np.zeros(n)
    t_x[repeat] = horizon * rng.beta(x[repeat], arrivals[repeat] - x[repeat] + 1)
    return x.astype(float), t_x, np.full(n, horizon)


def test_fit_recovers_parameters_from_simulated_data() -> None:
    # 10,000 customers: a and b are the least well identified; over 30 seeds the worst
    # relative error of any parameter was 16%, so 25% is loose without being meaningless.
    truth = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 3.0}
    x, t_x, big_t = simulate_bgnbd(10_000, **truth, horizon=52.0, seed=2005)
    params = churn.fit_bgnbd(x, t_x, big_t)
    assert params.converged
    for name, value in truth.items():
        assert getattr(params, name) == pytest.approx(value, rel=0.25), name
    # The fit is at least as likely as the truth the data came from.
    assert params.log_likelihood >= churn.bgnbd_log_likelihood(list(truth.values()), x, t_x, big_t)


@pytest.mark.parametrize(
    ("x", "t_x", "big_t", "message"),
    [
        ([], [], [], "empty input"),
        ([1, 2], [5, 50], [40, 40], r"t_x > T for 1 customer"),
        ([-1, 2], [5, 5], [40, 40], "x must not be negative"),
        ([1, 2], [5, 5], [40, -40], "T must not be negative"),
        ([0, 0], [0, 0], [40, 40], "no repeat buyers"),
        ([1, np.nan], [5, 5], [40, 40], "x must be finite"),
        ([1.5, 2], [5, 5], [40, 40], "whole number"),
        ([1, 2, 3], [5, 5], [40, 40], "same length"),
    ],
    ids=["empty", "t_x>T", "negative-x", "negative-T", "no-repeat", "nan", "fractional", "ragged"],
)
def test_fit_rejects_bad_input(x: list, t_x: list, big_t: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        churn.fit_bgnbd(x, t_x, big_t)


def test_summarise_transactions_counts_repeat_purchase_days_in_weeks() -> None:
    log = pd.DataFrame(
        {
            "customer": ["a", "a", "a", "a", "b", "c"],
            "ordered_at": pd.to_datetime(
                [
                    "2024-01-01 09:00",
                    "2024-01-01 17:00",
                    "2024-01-15 12:00",
                    "2024-03-01 10:00",
                    "2024-01-29 08:30",
                    "2024-02-05 19:45",
                ]
            ),
        }
    )
    summary = churn.summarise_transactions(log, "customer", "ordered_at", "2024-02-26")
    # a: the two orders on 1 January are one purchase day; the March order is after the end.
    assert summary.loc["a"].tolist() == [1.0, 2.0, 8.0]
    assert summary.loc["b"].tolist() == [0.0, 0.0, 4.0]
    assert summary.loc["c"].tolist() == [0.0, 0.0, 3.0]
    days = churn.summarise_transactions(log, "customer", "ordered_at", "2024-02-26", freq_days=1)
    assert days.loc["a", "T"] == 56.0


def test_sample_for_fit_is_reproducible() -> None:
    x = np.arange(1000.0)
    first = churn.sample_for_fit(x, x, x + 1, max_n=100, seed=5)
    second = churn.sample_for_fit(x, x, x + 1, max_n=100, seed=5)
    other = churn.sample_for_fit(x, x, x + 1, max_n=100, seed=6)
    for left, right in zip(first, second, strict=True):
        np.testing.assert_array_equal(left, right)
    assert len(first[0]) == 100 and len(np.unique(first[0])) == 100
    np.testing.assert_array_equal(first[2], first[0] + 1)  # rows stay aligned
    assert not np.array_equal(first[0], other[0])
    small = churn.sample_for_fit(x[:10], x[:10], x[:10], max_n=100)
    np.testing.assert_array_equal(small[0], x[:10])


# The modified BG/NBD (Batislam, Denizel & Filiztekin 2007) on the same CDNOW calibration
# period, as the independent implementation in the lifetimes wheel fits it
# (ModifiedBetaGeoFitter().fit(x, t_x, T), lifetimes 0.11.3).
LIFETIMES_MBGNBD = {"r": 0.524843, "alpha": 6.183082, "a": 0.891360, "b": 1.614003}
MBGNBD_CDNOW = churn.BgNbdParams(
    **LIFETIMES_MBGNBD, log_likelihood=0.0, n_customers=2357, converged=True, model="mbgnbd"
)


def test_mbgnbd_on_cdnow_matches_the_independent_implementation(cdnow: pd.DataFrame) -> None:
    params = churn.fit(cdnow["x"], cdnow["t_x"], cdnow["T"], model="mbgnbd")
    assert params.model == "mbgnbd" and params.converged and not params.at_bound
    for name, expected in LIFETIMES_MBGNBD.items():
        assert getattr(params, name) == pytest.approx(expected, rel=0.01), name


def test_mbgnbd_p_alive_equals_lifetimes_for_every_cdnow_customer(cdnow: pd.DataFrame) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import ModifiedBetaGeoFitter

    params = MBGNBD_CDNOW
    theirs = ModifiedBetaGeoFitter()
    theirs.params_ = pd.Series(LIFETIMES_MBGNBD)
    expected = np.asarray(
        theirs.conditional_probability_alive(cdnow["x"], cdnow["t_x"], cdnow["T"]), dtype=float
    )
    np.testing.assert_allclose(
        churn.p_alive(params, cdnow["x"], cdnow["t_x"], cdnow["T"]), expected, rtol=1e-9
    )


def test_mbgnbd_log_likelihood_matches_its_formula_evaluated_directly() -> None:
    (r, alpha, a, b), (x, t_x, big_t) = NAIVE_PARAMS, NAIVE_HISTORY
    gamma_part = gamma_fn(r + x) * alpha**r / gamma_fn(r)
    expected = np.log(
        beta_fn(a, b + x + 1) / beta_fn(a, b) * gamma_part / (alpha + big_t) ** (r + x)
        + beta_fn(a + 1, b + x) / beta_fn(a, b) * gamma_part / (alpha + t_x) ** (r + x)
    ).sum()
    got = churn.log_likelihood([r, alpha, a, b], x, t_x, big_t, model="mbgnbd")
    assert got == pytest.approx(expected, rel=1e-12)


def test_under_mbgnbd_a_one_time_buyer_fades_as_the_silence_grows() -> None:
    params = MBGNBD_CDNOW
    weeks = np.array([1.0, 10, 52, 104, 260])
    alive = churn.p_alive(params, np.zeros(5), np.zeros(5), weeks)
    assert (np.diff(alive) < 0).all() and alive[0] < 0.7 and alive[-1] < 0.25
    # BG/NBD keeps the same customers alive for ever: the reason MBG/NBD exists.
    bg = churn.p_alive(PUBLISHED, np.zeros(5), np.zeros(5), weeks)
    assert (bg == 1.0).all()


def test_mbgnbd_p_alive_sql_matches_python() -> None:
    params = MBGNBD_CDNOW
    x = np.array([0, 0, 1, 5, 400, 60, 0])
    t_x = np.array([0, 0, 10, 35, 1.0, 200.0, 0])
    big_t = np.array([1, 300, 38, 38, 2000.0, 200.0, 0.5])
    expected = churn.p_alive(params, x, t_x, big_t)
    con = duckdb.connect()
    con.register("history", pd.DataFrame({"id": range(len(x)), "x": x, "t_x": t_x, "T": big_t}))
    sql = churn.p_alive_sql(params.r, params.alpha, params.a, params.b, model="mbgnbd")
    rows = con.execute(f"select {sql} from history order by id").fetchall()
    np.testing.assert_allclose([row[0] for row in rows], expected, rtol=1e-9, atol=0)
    assert expected[1] < expected[0] < 1 and expected[4] == 0.0


def test_a_fit_whose_parameter_ran_into_the_wall_says_so() -> None:
    wall = float(np.exp(30.0))
    assert churn.BgNbdParams(0.2, 4.0, 0.8, wall, -1.0, 10, True).at_bound
    assert not PUBLISHED.at_bound


def test_an_unknown_churn_model_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="bgnbd, mbgnbd; got 'pareto'"):
        churn.fit([1, 0], [1.0, 0.0], [2.0, 2.0], model="pareto")
