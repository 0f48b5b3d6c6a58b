"""Churn likelihood from the BG/NBD family: BG/NBD (Fader, Hardie & Lee 2005, "Counting your
customers the easy way") and the modified BG/NBD (Batislam, Denizel & Filiztekin 2007).

In non-contractual retail nobody tells you they have left, so churn has to be inferred from
the rhythm of purchases. BG/NBD tells this story: while alive, a customer buys at a Poisson
rate lambda (gamma distributed across customers, shape r and rate alpha); after each repeat
purchase they drop out for good with probability p (beta distributed, a and b). Churn
likelihood is then 1 - P(alive | x, t_x, T).

Under BG/NBD a customer can only drop out after a *repeat* purchase, so whoever bought once is
alive with probability 1 however long ago that was. The modified BG/NBD (MBG/NBD) lets a
customer drop out after any purchase, the first included: a one-time buyer silent for years
is then likely gone. A jeweller's customers mostly buy once, so its dictionary chooses
MBG/NBD (`churn_model` in config/segments.yaml). Both have the same four parameters and a
closed-form P(alive) in elementary functions, so both are scored in SQL.

The four parameters are fitted once a month in Python by maximum likelihood on a reproducible
sample of buyers (a few tens of thousands are plenty for four numbers); every customer is
then scored in SQL with the closed form of P(alive), so scoring scales with the warehouse
rather than with Python. `p_alive` and `p_alive_sql` compute the same expression the same
way so the two can be tested against each other.

Per customer, with time measured from their first purchase (in weeks here):

* x   - number of repeat purchases (CDNOW convention: distinct purchase days minus one),
* t_x - time of the latest purchase (0 when x == 0),
* T   - length of the observation window (first purchase to the observation end).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import optimize
from scipy.special import gammaln

#: End of the 39-week calibration period the paper fits CDNOW on.
CDNOW_CALIBRATION_END = "1997-09-30"

# Log-parameters are kept inside +-_LOG_BOUND while polishing so exp() cannot overflow when
# the likelihood is flat in some direction (for example b -> infinity: nobody drops out).
_LOG_BOUND = 30.0

#: The churn models a dictionary may choose; a dictionary that names none means "bgnbd"
#: (what every version before the choice existed was scored with).
MODELS = ("bgnbd", "mbgnbd")
DEFAULT_MODEL = "bgnbd"


def check_model(model: str) -> str:
    if model not in MODELS:
        raise ValueError(f"churn model must be one of {', '.join(MODELS)}; got {model!r}")
    return model


def names_at_bound(params: dict[str, float]) -> list[str]:
    """The parameters (searched over their logs by `maximise_likelihood`) that ran into the
    search's wall, exp(+-30): the likelihood is flat that way, so they are not estimates."""
    return [name for name, v in params.items() if abs(np.log(v)) >= _LOG_BOUND - 1e-6]


@dataclass(frozen=True)
class BgNbdParams:
    """A fitted model of the BG/NBD family (`model`: bgnbd or mbgnbd): the four parameters
    plus what is needed to judge the fit."""

    r: float  # shape of the gamma distribution of purchase rates
    alpha: float  # rate (inverse scale, in time units) of that gamma distribution
    a: float  # beta distribution of the dropout probability p ...
    b: float  # ... with mean a / (a + b)
    log_likelihood: float  # total log-likelihood at the optimum
    n_customers: int  # customers the model was fitted on
    converged: bool  # the optimiser reported success
    model: str = DEFAULT_MODEL

    @property
    def at_bound(self) -> bool:
        """A parameter ran into the search's wall (exp(+-30)): the likelihood is flat that way
        (for example b -> infinity, nobody drops out), and the number is not an estimate."""
        return bool(self.parameters_at_bound())

    def parameters_at_bound(self) -> list[str]:
        return names_at_bound({"r": self.r, "alpha": self.alpha, "a": self.a, "b": self.b})

    def as_array(self) -> np.ndarray:
        """(r, alpha, a, b), the order `bgnbd_log_likelihood` expects."""
        return np.array([self.r, self.alpha, self.a, self.b], dtype=float)


@dataclass(frozen=True)
class MonthFit:
    """A month's fit as it is kept: the parameters, or None when the month has too little
    history to fit (then nobody is scored that month rather than scored by invented numbers).
    `buyers` is how many customers the month had to offer the fit."""

    month_end: date
    params: BgNbdParams | None
    buyers: int
    fitted_at: datetime
    model: str = DEFAULT_MODEL  # the model asked for (also when it could not be fitted)
    kept_from: date | None = None  # the earlier month whose sound fit stands in for this one

    def record(self) -> dict[str, Any]:
        """The columns of churn.bgnbd_params (and of the state store's churn_fits)."""
        p = self.params
        return {
            "month_end": self.month_end,
            "r": p.r if p else None,
            "alpha": p.alpha if p else None,
            "a": p.a if p else None,
            "b": p.b if p else None,
            "log_likelihood": p.log_likelihood if p else None,
            "n_customers": p.n_customers if p else self.buyers,
            "converged": p.converged if p else False,
            "fitted_at": self.fitted_at,
            "model": p.model if p else self.model,
            "kept_from": self.kept_from,
        }


def params_of(record: dict[str, Any]) -> BgNbdParams | None:
    """A recorded fit's parameters (None for a month that could not be fitted)."""
    if record.get("r") is None:
        return None
    return BgNbdParams(
        r=record["r"],
        alpha=record["alpha"],
        a=record["a"],
        b=record["b"],
        log_likelihood=record["log_likelihood"],
        n_customers=int(record["n_customers"] or 0),
        converged=bool(record["converged"]),
        model=record.get("model") or DEFAULT_MODEL,
    )


def unsound(params: BgNbdParams) -> str | None:
    """Why a fit should not be used to score anybody, or None when it may."""
    if not params.converged:
        return "the optimiser did not converge"
    if params.at_bound:
        at = ", ".join(params.parameters_at_bound())
        return f"{at} ran into the search's bound (e^+-30): the likelihood is flat there"
    return None


def month_fit_to_keep(
    month_end: date,
    fitted: BgNbdParams | None,
    earlier: list[dict[str, Any]],
    *,
    buyers: int,
    fitted_at: datetime,
    model: str,
) -> tuple[MonthFit, str | None]:
    """The fit a month is scored with, and what was wrong with its own fit (None if nothing).

    A month's own fit that did not converge or sits at a bound is not an estimate: the
    latest earlier sound fit of the same model (`earlier`, latest first, as recorded) stands
    in, and the month records whose it is (kept_from). With no earlier sound fit the month's
    own is kept, and the problem still reported. A month that could not be fitted at all
    (too little history) scores nobody, as before."""
    problem = unsound(fitted) if fitted else None
    if problem is None:
        return MonthFit(month_end, fitted, buyers, fitted_at, model), None
    for record in earlier:
        candidate = params_of(record)
        if candidate is not None and record.get("kept_from") is None and not unsound(candidate):
            kept = record["month_end"]
            note = f"{problem}; kept the parameters fitted for {kept:%Y-%m}"
            return MonthFit(month_end, candidate, buyers, fitted_at, model, kept_from=kept), note
    note = f"{problem}; no earlier sound fit of {model} to keep, so this month's is used"
    return MonthFit(month_end, fitted, buyers, fitted_at, model), note


def dbt_vars(record: dict[str, Any] | None) -> dict[str, Any]:
    """The month's fit as the dbt vars the models churn.bgnbd_params and churn.value_params
    are built from: `bgnbd_fit`, None when no fit was recorded for the month. Floats pass
    through JSON exactly (shortest repr), so the SQL scores with the very parameters Python
    fitted."""
    if record is None:
        return {"bgnbd_fit": None}
    fit = {name: _as_json(v) for name, v in record.items()}
    fit["model"] = record.get("model") or DEFAULT_MODEL
    return {"bgnbd_fit": fit}


def _as_json(value: Any) -> Any:
    """Dates as ISO text, timestamps with a space (as the SQL casts read them)."""
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return value.isoformat() if isinstance(value, date) else value


def _as_arrays(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, ...]:  # noqa: N803
    arrays = tuple(np.asarray(v, dtype=float).reshape(-1) for v in (x, t_x, T))
    if not arrays[0].shape == arrays[1].shape == arrays[2].shape:
        raise ValueError(
            "x, t_x and T must have the same length "
            f"(got {arrays[0].size}, {arrays[1].size} and {arrays[2].size})"
        )
    return arrays


@dataclass(frozen=True)
class GroupedHistory:
    """Customers grouped by their (x, t_x, T), each group with its count.

    The likelihood depends on a customer only through (x, t_x, T), and a month's buyers share
    far fewer of them than there are buyers (50,000 sampled buyers of the bench's million
    have 26,000 distinct triples and 68 distinct x), so the fit evaluates each group once,
    weighted by its count, and the gamma functions once per distinct x.
    """

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray  # noqa: N815
    count: np.ndarray
    x_values: np.ndarray  # the distinct x, ascending
    x_index: np.ndarray  # each group's position in x_values

    @property
    def n_customers(self) -> int:
        return int(self.count.sum())


def group_history(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> GroupedHistory:  # noqa: N803
    """Group customers by (x, t_x, T); the groups come in ascending order, so the same
    customers in any order give the same groups and the same fit."""
    x, t_x, T = _as_arrays(x, t_x, T)
    triples, count = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    x_values, x_index = np.unique(triples[:, 0], return_inverse=True)
    return GroupedHistory(
        x=triples[:, 0],
        t_x=triples[:, 1],
        T=triples[:, 2],
        count=count.astype(float),
        x_values=x_values,
        x_index=x_index.reshape(-1),
    )


def _group_log_likelihood(
    params: np.ndarray, history: GroupedHistory, model: str = DEFAULT_MODEL
) -> np.ndarray:
    """ln L of one customer of each group, rearranged so nothing is exponentiated.

    BG/NBD, eq. (6) of Fader, Hardie & Lee (2005):
        L = B(a, b+x)/B(a, b) * Gamma(r+x) alpha^r / Gamma(r)
            * [ (alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) ]
    because B(a+1, b+x-1) / B(a, b+x) = a / (b+x-1).

    MBG/NBD (Batislam et al. 2007), where a customer may drop out after every purchase:
        L = B(a, b+x+1)/B(a, b) * Gamma(r+x) alpha^r / Gamma(r)
            * [ (alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x) ]

    The bracket is summed with logaddexp: both terms underflow to 0 in linear space for
    heavy buyers, but not in log space. What depends on x alone is computed once per
    distinct x.
    """
    r, alpha, a, b = params
    xs = history.x_values
    # The beta function's second argument: b + x, or one more purchase's chance to leave.
    shift = 1.0 if model == "mbgnbd" else 0.0
    per_x = (
        gammaln(r + xs)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + xs + shift)
        - gammaln(b)
        - gammaln(a + b + xs + shift)
    )
    log_dropout_odds = _log_dropout_odds(a, b, xs, model)
    x, i = history.x, history.x_index
    log_still_alive = -(r + x) * np.log(alpha + history.T)
    log_dropped = log_dropout_odds[i] - (r + x) * np.log(alpha + history.t_x)
    return per_x[i] + np.logaddexp(log_still_alive, log_dropped)


def _log_dropout_odds(a: float, b: float, x: np.ndarray, model: str) -> np.ndarray:
    """ln of the factor a/(b+x-1) (BG/NBD, repeat buyers only: -inf at x == 0, where nobody
    can have dropped out) or a/(b+x) (MBG/NBD, everyone)."""
    if model == "mbgnbd":
        return np.log(a) - np.log(b + x)
    repeat = x > 0
    # b + x - 1 > 0 whenever x >= 1, so the log is safe where it is used.
    return np.where(repeat, np.log(a) - np.log(np.where(repeat, b + x - 1, 1.0)), -np.inf)


def _total_log_likelihood(
    params: np.ndarray, history: GroupedHistory, model: str = DEFAULT_MODEL
) -> float:
    return float(history.count @ _group_log_likelihood(params, history, model))


def log_likelihood(
    params: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
    model: str = DEFAULT_MODEL,
) -> float:
    """Total log-likelihood of params = (r, alpha, a, b) over all customers under `model`.

    Vectorised and computed in log space (gammaln, logaddexp) so that customers with many
    purchases or long histories do not overflow. Parameters outside the model's support
    (any of them <= 0 or not finite) have likelihood zero, i.e. -inf, which lets an
    optimiser treat them as a wall rather than crash.
    """
    check_model(model)
    values = np.asarray(params, dtype=float).reshape(-1)
    if values.size != 4:
        raise ValueError(f"params must be (r, alpha, a, b); got {values.size} values")
    if not (np.isfinite(values).all() and (values > 0).all()):
        return -np.inf
    return _total_log_likelihood(values, group_history(x, t_x, T), model)


def bgnbd_log_likelihood(
    params: ArrayLike,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
) -> float:
    """Total BG/NBD log-likelihood (`log_likelihood` with model "bgnbd")."""
    return log_likelihood(params, x, t_x, T, "bgnbd")


def _validate_history(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:  # noqa: N803
    """Refuse data the model cannot be fitted on, saying what is wrong and how often."""
    if x.size == 0:
        raise ValueError("cannot fit BG/NBD on empty input: no customers given")
    for name, values in (("x", x), ("t_x", t_x), ("T", T)):
        bad = int((~np.isfinite(values)).sum())
        if bad:
            raise ValueError(f"{name} must be finite numbers: {bad} value(s) are NaN or infinite")
        negative = int((values < 0).sum())
        if negative:
            raise ValueError(
                f"{name} must not be negative: {negative} customer(s) have {name} < 0 "
                f"(minimum {values.min():g})"
            )
    fractional = int((x != np.round(x)).sum())
    if fractional:
        raise ValueError(
            f"x counts repeat purchases and must be a whole number: {fractional} value(s) are not"
        )
    late = int((t_x > T + 1e-9).sum())
    if late:
        raise ValueError(
            f"t_x > T for {late} customer(s): the latest purchase cannot fall after the end "
            "of the observation window T"
        )
    if not (x > 0).any():
        raise ValueError(
            "no repeat buyers (x == 0 for every customer): BG/NBD is not identifiable "
            "without at least some repeat purchases"
        )


def maximise_likelihood(
    log_likelihood: Callable[[np.ndarray], float], log_start: np.ndarray, n_customers: int
) -> tuple[np.ndarray, bool]:
    """The positive parameters that maximise `log_likelihood`, searched over their logs (so
    they stay positive without constraints), and whether the optimiser reported success.

    Nelder-Mead goes first because it is robust from a poor start on likelihoods that are
    flat in some direction; L-BFGS-B then polishes inside +-_LOG_BOUND, and the better of
    the two is kept. The mean rather than the total negative log-likelihood is minimised,
    so the tolerances mean the same for 2,000 customers and for 50,000.
    """

    def objective(log_params: np.ndarray) -> float:
        value = -log_likelihood(np.exp(log_params)) / n_customers
        return value if np.isfinite(value) else 1e300

    coarse = optimize.minimize(
        objective,
        log_start,
        method="Nelder-Mead",
        options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-11},
    )
    polished = optimize.minimize(
        objective,
        np.clip(coarse.x, -_LOG_BOUND, _LOG_BOUND),
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * len(log_start),
        options={"ftol": 1e-15, "gtol": 1e-9},
    )
    best = polished if polished.fun <= coarse.fun else coarse
    return np.exp(best.x), bool(coarse.success or polished.success)


def fit_bgnbd(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
    *,
    initial: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
) -> BgNbdParams:
    """Fit BG/NBD (`fit` with model "bgnbd")."""
    return fit(x, t_x, T, model="bgnbd", initial=initial)


def fit(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
    *,
    model: str = DEFAULT_MODEL,
    initial: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
) -> BgNbdParams:
    """Fit (r, alpha, a, b) of `model` by maximum likelihood.

    The search is `maximise_likelihood`'s (this likelihood is flat along b when few
    customers drop out, which is why Nelder-Mead goes first).

    Raises ValueError for input the model cannot be fitted on (empty, negative or non-finite
    values, t_x > T, fractional x, or no repeat buyers at all), naming the problem.
    """
    check_model(model)
    x, t_x, T = _as_arrays(x, t_x, T)
    _validate_history(x, t_x, T)
    start = np.asarray(initial, dtype=float)
    if start.shape != (4,) or not (np.isfinite(start).all() and (start > 0).all()):
        raise ValueError(f"initial must be four positive numbers (r, alpha, a, b); got {initial}")

    history = group_history(x, t_x, T)
    best, success = maximise_likelihood(
        lambda params: _total_log_likelihood(params, history, model), np.log(start), x.size
    )
    r, alpha, a, b = (float(v) for v in best)
    total = _total_log_likelihood(np.array([r, alpha, a, b]), history, model)
    return BgNbdParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=total,
        n_customers=int(x.size),
        converged=bool(np.isfinite(total) and success),
        model=model,
    )


def p_alive(
    params: BgNbdParams,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
) -> np.ndarray:
    """P(alive | x, t_x, T) under the fit's model.

    BG/NBD, eq. (11) of the paper: 1 / (1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x));
    customers without a repeat purchase are alive with probability 1. MBG/NBD:
    1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)) for everyone, so a one-time buyer's
    P(alive) falls as T grows. The power is taken in log space and the logistic is
    evaluated on whichever side cannot overflow, exactly as `p_alive_sql` does, so the
    warehouse and Python agree to rounding.
    """
    x, t_x, T = _as_arrays(x, t_x, T)
    log_odds = _log_dropout_odds(params.a, params.b, x, params.model) + (params.r + x) * np.log(
        (params.alpha + T) / (params.alpha + t_x)
    )
    with np.errstate(invalid="ignore"):  # -inf + finite is -inf, never NaN, but be sure
        small = np.exp(-np.abs(log_odds))  # never overflows: the argument is <= 0
        alive = np.where(log_odds > 0, small / (1.0 + small), 1.0 / (1.0 + small))
    return np.where(np.isneginf(log_odds), 1.0, alive)


def _sql_literal(name: str, value: float) -> str:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"BG/NBD parameter {name} must be a positive finite number; got {value}")
    # repr() round-trips a float exactly. An exponent makes it a DOUBLE literal everywhere:
    # Spark would read a bare 0.243 as DECIMAL, and decimal arithmetic can lose precision.
    text = repr(value)
    return text if "e" in text else f"{text}E0"


def p_alive_sql(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x_col: str = "x",
    t_x_col: str = "t_x",
    T_col: str = "T",  # noqa: N803
    model: str = DEFAULT_MODEL,
) -> str:
    """P(alive) as a portable SQL expression (DuckDB, Spark SQL, ...) with literal parameters.

    Uses only CASE, EXP, LN and arithmetic. The log-odds of having dropped out,
    lo = ln(a) - ln(b+x-1) + (r+x) ln((alpha+T)/(alpha+t_x)), is only exponentiated with a
    non-positive sign (exp(-lo)/(1+exp(-lo)) when lo > 0, else 1/(1+exp(lo))), so heavy
    buyers who went silent long ago cannot overflow EXP on engines that raise on overflow.
    Under BG/NBD rows with x = 0 score 1; under MBG/NBD the odds use a/(b+x) for every row
    (lo = ln(a) - ln(b+x) + ...). NULL inputs give NULL. Column arguments are inserted verbatim,
    so qualified names or expressions work (quote them yourself if they need quoting).
    Parameters are rendered with repr() precision as DOUBLE literals (0.243E0).
    """
    r_, alpha_, a_, b_ = (
        _sql_literal(name, value)
        for name, value in (("r", r), ("alpha", alpha), ("a", a), ("b", b))
    )
    check_model(model)
    x, t_x, big_t = f"({x_col})", f"({t_x_col})", f"({T_col})"
    offset = "" if model == "mbgnbd" else " - 1"
    log_odds = (
        f"(LN({a_}) - LN({b_} + {x}{offset})"
        f" + ({r_} + {x}) * LN(({alpha_} + {big_t}) / ({alpha_} + {t_x})))"
    )
    only_repeat = "" if model == "mbgnbd" else f" WHEN {x} = 0 THEN 1.0E0"
    return (
        f"(CASE WHEN {x} IS NULL THEN NULL{only_repeat}"
        f" WHEN {log_odds} > 0 THEN EXP(-{log_odds}) / (1.0 + EXP(-{log_odds}))"
        f" ELSE 1.0 / (1.0 + EXP({log_odds})) END)"
    )


def summarise_transactions(
    df: pd.DataFrame,
    customer_col: str,
    date_col: str,
    observation_end: str | pd.Timestamp,
    freq_days: int = 7,
) -> pd.DataFrame:
    """(x, t_x, T) per customer from a transaction log, the CDNOW way.

    x counts repeat purchase *days* (distinct purchase dates minus one: two orders on one day
    are one purchase occasion); t_x and T run from the first purchase to the last purchase
    and to observation_end, in units of freq_days (weeks by default). Transactions after
    observation_end are ignored, and customers whose first purchase is after it are left
    out. This is the reference implementation for tests; the pipeline computes the same
    three numbers in SQL (int_customer_purchases).
    """
    if freq_days <= 0:
        raise ValueError(f"freq_days must be positive; got {freq_days}")
    end = pd.Timestamp(observation_end).normalize()
    days = pd.DataFrame(
        {
            "customer": df[customer_col].to_numpy(),
            "day": pd.to_datetime(df[date_col]).dt.normalize().to_numpy(),
        }
    ).dropna()
    days = days[days["day"] <= end].drop_duplicates()
    grouped = days.groupby("customer")["day"]
    first, last, count = grouped.min(), grouped.max(), grouped.count()
    summary = pd.DataFrame(
        {
            "x": (count - 1).astype(float),
            "t_x": (last - first).dt.days / freq_days,
            "T": (end - first).dt.days / freq_days,
        }
    )
    summary.index.name = customer_col
    return summary


def sample_for_fit(
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
    max_n: int = 50_000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A reproducible simple random sample of at most max_n customers for fitting.

    Four parameters need tens of thousands of buyers, not millions, and a fixed seed means
    re-running a month reproduces its parameters exactly. Order is preserved, and the input
    is returned whole when it is already small enough.
    """
    x, t_x, T = _as_arrays(x, t_x, T)
    return sample_rows(max_n, seed, x, t_x, T)


def sample_rows(max_n: int, seed: int, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """The same reproducible sample of at most max_n rows from each of equally long columns,
    in their order; the columns whole when they are short enough."""
    if max_n < 1:
        raise ValueError(f"max_n must be at least 1; got {max_n}")
    size = columns[0].size
    if size <= max_n:
        return columns
    chosen = np.sort(np.random.default_rng(seed).choice(size, size=max_n, replace=False))
    return tuple(column[chosen] for column in columns)


def _lifetimes_dataset(name: str) -> Path:
    """Path of a data file shipped in the lifetimes wheel, found without importing lifetimes.

    (Importing it fails under pandas 3, and only its data files are wanted anyway.)
    """
    hint = "install the dev extra (pip install 'lifetimes==0.11.3'), whose wheel ships CDNOW"
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the CDNOW data files are not installed: {hint}")
    for location in spec.submodule_search_locations:
        path = Path(location) / "datasets" / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"lifetimes is installed but its data file datasets/{name} is missing: {hint}"
    )


def cdnow_summary(source: str = "transactions") -> pd.DataFrame:
    """The CDNOW sample used in the paper: 2,357 customers, 39-week calibration period.

    source="transactions" (default) builds x, t_x, T from the raw transaction log
    CDNOW_sample.txt with the calibration ending 1997-09-30; source="summary" reads the
    precomputed cdnow_customers_summary.csv (frequency, recency, T rounded to 0.01 week).
    Both reproduce the published fit (r 0.243, alpha 4.414, a 0.793, b 2.426, LL -9582.4);
    the transaction log is preferred because it is not rounded and exercises
    `summarise_transactions`. Indexed by the sample's customer id (1..2357).
    """
    if source == "transactions":
        log = pd.read_csv(
            _lifetimes_dataset("CDNOW_sample.txt"),
            sep=r"\s+",
            header=None,
            names=["master_id", "customer_id", "date", "quantity", "amount"],
            dtype={"date": str},
        )
        log["date"] = pd.to_datetime(log["date"], format="%Y%m%d")
        return summarise_transactions(log, "customer_id", "date", CDNOW_CALIBRATION_END)
    if source == "summary":
        table = pd.read_csv(_lifetimes_dataset("cdnow_customers_summary.csv"))
        return pd.DataFrame(
            {
                "x": table["frequency"].astype(float).to_numpy(),
                "t_x": table["recency"].astype(float).to_numpy(),
                "T": table["T"].astype(float).to_numpy(),
            },
            index=pd.Index(table["ID"].to_numpy(), name="customer_id"),
        )
    raise ValueError(f"source must be 'transactions' or 'summary'; got {source!r}")
