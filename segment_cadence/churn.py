"""BG/NBD churn likelihood (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

For non-contractual retail nobody tells you they have left; BG/NBD infers it from the
rhythm of purchases. Each customer buys at a Poisson rate (gamma distributed across
customers: r, alpha) and after each purchase may drop out with probability p (beta
distributed: a, b). The four parameters are fitted once a month on a sample of buyers (here,
by maximum likelihood with scipy); every customer is then scored in SQL with the closed
form of P(alive | x, t_x, T), so scoring scales with the warehouse, not with Python.

x is the number of repeat purchase days, t_x the time of the latest purchase and T the
time since the first purchase, both in weeks from the first purchase.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import gammaln


@dataclass(frozen=True)
class BgNbdParams:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    n_customers: int
    converged: bool


def _as_arrays(x, t_x, big_t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.asarray(x, dtype=float),
        np.asarray(t_x, dtype=float),
        np.asarray(big_t, dtype=float),
    )


def _individual_log_likelihood(params: np.ndarray, x, t_x, big_t) -> np.ndarray:
    """Per-customer log-likelihood, eq. (6) of the paper, in log space for stability."""
    r, alpha, a, b = params
    common = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        + gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    )  # fmt: skip
    term_alive = -(r + x) * np.log(alpha + big_t)
    # The dropout term exists only for repeat buyers: a / (b + x - 1) * (alpha + t_x)^-(r + x).
    with np.errstate(divide="ignore", invalid="ignore"):
        term_dropped = np.where(
            x > 0,
            np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return common + np.logaddexp(term_alive, term_dropped)


def bgnbd_log_likelihood(params: np.ndarray, x, t_x, big_t) -> float:
    """Total log-likelihood of (r, alpha, a, b) for the customers' (x, t_x, T)."""
    x, t_x, big_t = _as_arrays(x, t_x, big_t)
    return float(np.sum(_individual_log_likelihood(np.asarray(params, dtype=float), x, t_x, big_t)))


def _check_input(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> None:
    if x.size == 0:
        raise ValueError("no customers to fit the BG/NBD model on (empty input)")
    if not (x.shape == t_x.shape == big_t.shape):
        raise ValueError("x, t_x and T must have the same length")
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(big_t).all()):
        raise ValueError("x, t_x and T must be finite numbers (found NaN or infinity)")
    if (x < 0).any() or (t_x < 0).any() or (big_t < 0).any():
        raise ValueError("x, t_x and T must not be negative")
    if (t_x > big_t + 1e-9).any():
        raise ValueError("t_x (latest purchase) is after T (end of observation) for some customers")
    if not (x > 0).any():
        raise ValueError(
            "no repeat buyers: BG/NBD cannot be identified when every customer bought once"
        )


def fit_bgnbd(
    x, t_x, big_t, *, initial: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
) -> BgNbdParams:
    """Maximum-likelihood fit, optimising log-parameters so all four stay positive."""
    x, t_x, big_t = _as_arrays(x, t_x, big_t)
    _check_input(x, t_x, big_t)
    scale = max(big_t.max(), 1.0)  # alpha scales with time units; start near the data's scale

    def negative(log_params: np.ndarray) -> float:
        value = -bgnbd_log_likelihood(np.exp(log_params), x, t_x, big_t)
        return value if np.isfinite(value) else 1e300

    start = np.log(np.asarray(initial, dtype=float) * np.array([1.0, scale / 10.0, 1.0, 1.0]))
    first = optimize.minimize(negative, start, method="Nelder-Mead",
                              options={"maxiter": 4000, "xatol": 1e-8, "fatol": 1e-8})  # fmt: skip
    polished = optimize.minimize(negative, first.x, method="L-BFGS-B")
    best = polished if polished.fun <= first.fun else first
    r, alpha, a, b = np.exp(best.x)
    return BgNbdParams(
        r=float(r), alpha=float(alpha), a=float(a), b=float(b),
        log_likelihood=float(-best.fun), n_customers=int(x.size),
        converged=bool(first.success or polished.success),
    )  # fmt: skip


def p_alive(params: BgNbdParams, x, t_x, big_t) -> np.ndarray:
    """P(alive | x, t_x, T), eq. (11) of the paper; 1 for customers with no repeat purchase."""
    x, t_x, big_t = _as_arrays(x, t_x, big_t)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(params.a) - np.log(np.maximum(params.b + x - 1, 1e-300))
            + (params.r + x) * np.log((params.alpha + big_t) / (params.alpha + t_x))
        )  # fmt: skip
    return np.where(x > 0, 1.0 / (1.0 + np.exp(np.minimum(log_odds, 700.0))), 1.0)


def p_alive_sql(r: float, alpha: float, a: float, b: float, x_col: str = "x",
                t_x_col: str = "t_x", T_col: str = "T") -> str:  # noqa: N803  # fmt: skip
    """The same closed form as portable SQL (CASE, EXP, LN, LEAST) with literal parameters."""
    return (
        f"case when {x_col} = 0 then 1.0 else 1.0 / (1.0 + exp(least(700.0, "
        f"ln({a!r}) - ln({b!r} + {x_col} - 1) + ({r!r} + {x_col}) * "
        f"ln(({alpha!r} + {T_col}) / ({alpha!r} + {t_x_col}))))) end"
    )


def sample_for_fit(x, t_x, big_t, max_n: int = 50_000, seed: int = 0):
    """A reproducible subsample: the fit needs tens of thousands of buyers, not millions."""
    x, t_x, big_t = _as_arrays(x, t_x, big_t)
    if x.size <= max_n:
        return x, t_x, big_t
    chosen = np.sort(np.random.default_rng(seed).choice(x.size, size=max_n, replace=False))
    return x[chosen], t_x[chosen], big_t[chosen]


def summarise_transactions(df: pd.DataFrame, customer_col: str, date_col: str,
                           observation_end, freq_days: int = 7) -> pd.DataFrame:  # fmt: skip
    """(x, t_x, T) per customer from a transaction log, counting purchase days, in weeks."""
    days = pd.DataFrame(
        {"customer": df[customer_col], "day": pd.to_datetime(df[date_col]).dt.normalize()}
    ).drop_duplicates()
    end = pd.Timestamp(observation_end)
    days = days[days["day"] <= end]
    grouped = days.groupby("customer")["day"]
    first, last, count = grouped.min(), grouped.max(), grouped.count()
    return pd.DataFrame(
        {
            "x": (count - 1).astype(float),
            "t_x": (last - first).dt.days / freq_days,
            "T": (end - first).dt.days / freq_days,
        }
    )


def _lifetimes_datasets() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the CDNOW data ships in the `lifetimes` wheel; install it (pip install lifetimes)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "datasets"


def cdnow_summary() -> pd.DataFrame:
    """The CDNOW sample (2,357 customers, 39-week calibration to 1997-09-30), as x, t_x, T.

    Built from the raw transaction log in the `lifetimes` wheel without importing lifetimes.
    """
    log = pd.read_csv(
        _lifetimes_datasets() / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["customer_id", "sample_id", "date", "quantity", "amount"],
        dtype={"date": str},
    )
    log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
    return summarise_transactions(log, "customer_id", "date", "1997-09-30")
