"""BG/NBD: the published CDNOW fit, and SQL scoring that matches the Python closed form."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from segment_cadence import churn


def test_fit_reproduces_the_published_cdnow_parameters():
    """Fader, Hardie & Lee (2005): r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4."""
    summary = churn.cdnow_summary()
    assert len(summary) == 2357
    params = churn.fit_bgnbd(summary["x"], summary["t_x"], summary["T"])
    assert params.r == pytest.approx(0.243, rel=0.01)
    assert params.alpha == pytest.approx(4.414, rel=0.01)
    assert params.a == pytest.approx(0.793, rel=0.01)
    assert params.b == pytest.approx(2.426, rel=0.01)
    assert params.log_likelihood == pytest.approx(-9582.4, abs=0.5)


def test_p_alive_sql_matches_the_python_closed_form():
    params = churn.BgNbdParams(0.243, 4.414, 0.793, 2.426, 0.0, 0, True)
    x = np.array([0, 1, 2, 5, 20, 150, 3, 0])
    t_x = np.array([0, 10, 30, 35, 38, 38.5, 2, 0])
    big_t = np.array([38, 38, 38, 38, 38, 39, 200, 5])
    expected = churn.p_alive(params, x, t_x, big_t)
    con = duckdb.connect()
    con.execute("create table h as select * from (select unnest(?) as x, unnest(?) as t_x, unnest(?) as T)",
                [x.tolist(), t_x.tolist(), big_t.tolist()])  # fmt: skip
    sql = churn.p_alive_sql(params.r, params.alpha, params.a, params.b)
    got = np.array([r[0] for r in con.execute(f"select {sql} from h").fetchall()])
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_p_alive_is_one_without_repeat_purchases_and_falls_with_silence():
    params = churn.BgNbdParams(0.243, 4.414, 0.793, 2.426, 0.0, 0, True)
    assert churn.p_alive(params, [0], [0], [50])[0] == 1.0
    silence = churn.p_alive(params, [3, 3, 3], [10, 10, 10], [20, 40, 80])
    assert silence[0] > silence[1] > silence[2]


def simulate(n: int, r: float, alpha: float, a: float, b: float, horizon: float, seed: int):
    """BG/NBD's story, told forward: gamma purchase rates, beta dropout after each purchase."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(r, 1 / alpha, n)
    dropouts = rng.beta(a, b, n)
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rates[i])
            if t > horizon:
                break
            x[i] += 1
            t_x[i] = t
            if rng.random() < dropouts[i]:
                break
    return x, t_x, np.full(n, horizon)


def test_fit_recovers_parameters_from_simulated_customers():
    x, t_x, big_t = simulate(6000, r=0.5, alpha=5.0, a=0.8, b=3.0, horizon=52.0, seed=3)
    params = churn.fit_bgnbd(x, t_x, big_t)
    assert params.r == pytest.approx(0.5, rel=0.25)
    assert params.alpha == pytest.approx(5.0, rel=0.3)
    assert params.a / (params.a + params.b) == pytest.approx(0.8 / 3.8, rel=0.3)


@pytest.mark.parametrize(
    ("x", "t_x", "big_t", "message"),
    [
        ([], [], [], "empty input"),
        ([1, 2], [5, 50], [40, 40], "after T"),
        ([-1, 2], [5, 5], [40, 40], "negative"),
        ([0, 0], [0, 0], [40, 40], "no repeat buyers"),
        ([1, np.nan], [5, 5], [40, 40], "finite"),
    ],
)
def test_fit_rejects_bad_input_with_a_clear_message(x, t_x, big_t, message):
    with pytest.raises(ValueError, match=message):
        churn.fit_bgnbd(x, t_x, big_t)


def test_sample_for_fit_is_reproducible():
    x = np.arange(1000.0)
    first = churn.sample_for_fit(x, x, x + 1, max_n=100, seed=5)
    second = churn.sample_for_fit(x, x, x + 1, max_n=100, seed=5)
    np.testing.assert_array_equal(first[0], second[0])
    assert len(first[0]) == 100
