"""Forward-looking customer value: expected purchases, expected spend per purchase, CLV.

Spend so far says what a customer was worth; a campaign or clienteling decision needs what
they are likely to be worth. Three pieces, each a published model:

* **Expected purchases** in the next t periods given (x, t_x, T): the conditional
  expectation of the month's churn model (BG/NBD, Fader, Hardie & Lee 2005, eq. 10; the
  modified BG/NBD, Batislam, Denizel & Filiztekin 2007). Both need the Gaussian
  hypergeometric function, so unlike P(alive) they are computed here, not in SQL.
* **Expected spend per purchase** from the Gamma-Gamma model (Fader, Hardie & Lee 2005,
  "RFM and CLV: Using Iso-value Curves"), fitted on repeat buyers' mean spend. It assumes
  spend per purchase is independent of how often a customer buys; `spend_frequency_correlation`
  is the check to report beside the fit (near 0 is what the model needs).
* **CLV** over a horizon of whole months: each month's expected purchases times the
  expected spend, discounted at a monthly rate, month k by (1 + rate)^k. The horizon, the
  rate and both fits are the assumptions, and are recorded with every figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln, hyp2f1

from segment_cadence.defs.segments.churn import (
    BgNbdParams,
    maximise_likelihood,
    names_at_bound,
    p_alive,
)

#: Weeks in an average month (365.25 / 12 / 7): the product measures t_x and T in weeks.
WEEKS_PER_MONTH = 365.25 / 12 / 7


def alive_purchases(
    params: BgNbdParams,
    t: float,
    x: ArrayLike,
    T: ArrayLike,  # noqa: N803
) -> np.ndarray:
    """Purchases in (T, T + t] expected of a customer who is still alive, given x and T.

    Both models' conditional expectation factors as P(alive | x, t_x, T) times this, which
    does not depend on t_x, so it is computed once per distinct (x, T) and the SQL multiplies
    it by the P(alive) it scores itself:
      BG/NBD:  (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]
      MBG/NBD: (a+b+x)/(a-1)   [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; z)]
    with z = t / (alpha+T+t). With a < 1 the fraction and the bracket are both negative,
    and their product is the same positive expectation.
    """
    if t < 0 or not np.isfinite(t):
        raise ValueError(f"the forecast horizon t must be a finite number >= 0; got {t}")
    x, T = (np.asarray(v, dtype=float).reshape(-1) for v in (x, T))
    r, alpha, a, b = params.as_array()
    shift = 1.0 if params.model == "mbgnbd" else 0.0
    z = t / (alpha + T + t)
    hyp = hyp2f1(r + x, b + x + shift, a + b + x - 1 + shift, z)
    return (
        (a + b + x - 1 + shift)
        / (a - 1)
        * (1 - np.exp((r + x) * np.log((alpha + T) / (alpha + T + t))) * hyp)
    )


def expected_purchases(
    params: BgNbdParams,
    t: float,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, t_x, T] under the fit's model, t in the same units:
    P(alive) times `alive_purchases`."""
    return p_alive(params, x, t_x, T) * alive_purchases(params, t, x, T)


@dataclass(frozen=True)
class GammaGammaParams:
    """A fitted Gamma-Gamma spend model: spend per purchase is gamma(p, nu) around each
    customer's mean, and nu is gamma(q, gamma) across customers."""

    p: float
    q: float
    gamma: float
    log_likelihood: float
    n_customers: int  # repeat buyers fitted on
    converged: bool

    @property
    def population_mean(self) -> float:
        """The expected spend per purchase of a customer the model knows nothing about
        (p gamma / (q - 1); infinite unless q > 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")

    def unsound(self) -> str | None:
        """Why the fit should not price anybody's purchases, or None when it may."""
        if not self.converged:
            return "the optimiser did not converge"
        at = names_at_bound({"p": self.p, "q": self.q, "gamma": self.gamma})
        if at:
            return f"{', '.join(at)} ran into the search's bound (e^+-30): the likelihood is flat there"
        if self.q <= 1:
            return f"q = {self.q:.4g} <= 1: the population's mean spend per purchase is infinite"
        return None


def _spend_arrays(x: ArrayLike, mean_spend: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, m = (np.asarray(v, dtype=float).reshape(-1) for v in (x, mean_spend))
    if x.shape != m.shape:
        raise ValueError(f"x and mean_spend must have the same length ({x.size}, {m.size})")
    return x, m


def gamma_gamma_log_likelihood(params: ArrayLike, x: ArrayLike, mean_spend: ArrayLike) -> float:
    """Total log-likelihood of (p, q, gamma) over repeat buyers with x purchases averaging
    mean_spend each (the terms that do not depend on the parameters left out)."""
    p, q, gamma = np.asarray(params, dtype=float).reshape(-1)
    if not (np.isfinite([p, q, gamma]).all() and min(p, q, gamma) > 0):
        return -np.inf
    x, m = _spend_arrays(x, mean_spend)
    px = p * x
    return float(
        np.sum(
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(gamma)
            + (px - 1) * np.log(m)
            + px * np.log(x)
            - (px + q) * np.log(x * m + gamma)
        )
    )


def fit_gamma_gamma(x: ArrayLike, mean_spend: ArrayLike) -> GammaGammaParams:
    """Fit (p, q, gamma) by maximum likelihood on repeat buyers (x > 0, mean_spend > 0)."""
    x, m = _spend_arrays(x, mean_spend)
    if x.size == 0:
        raise ValueError("cannot fit Gamma-Gamma without repeat buyers")
    if (x <= 0).any() or (m <= 0).any() or not np.isfinite(m).all():
        raise ValueError(
            "Gamma-Gamma is fitted on repeat buyers with a positive mean spend: "
            f"{int((x <= 0).sum())} have x <= 0, {int((~(m > 0)).sum())} a spend that is not > 0"
        )

    start = np.log([1.0, 1.0, max(float(np.median(m)), 1e-6)])
    best, success = maximise_likelihood(
        lambda params: gamma_gamma_log_likelihood(params, x, m), start, x.size
    )
    p, q, gamma = (float(v) for v in best)
    total = gamma_gamma_log_likelihood([p, q, gamma], x, m)
    return GammaGammaParams(
        p=p,
        q=q,
        gamma=gamma,
        log_likelihood=total,
        n_customers=int(x.size),
        converged=bool(np.isfinite(total) and success),
    )


def expected_spend(params: GammaGammaParams, x: ArrayLike, mean_spend: ArrayLike) -> np.ndarray:
    """E[spend per purchase | x purchases averaging mean_spend]: a weighted mean of the
    population's mean and the customer's own, the customer's weight growing with x,
        (q - 1) / (p x + q - 1) * p gamma / (q - 1) + p x / (p x + q - 1) * mean_spend.
    A customer without repeat purchases (x = 0) gets the population's mean."""
    x, m = _spend_arrays(x, mean_spend)
    if params.q <= 1:
        raise ValueError(f"expected spend needs q > 1 (a finite population mean); q = {params.q}")
    own = np.where(x > 0, m, 0.0)
    return params.p * (params.gamma + x * own) / (params.p * x + params.q - 1)


def spend_frequency_correlation(x: ArrayLike, mean_spend: ArrayLike) -> float:
    """Pearson correlation of repeat purchases and mean spend among repeat buyers: the
    Gamma-Gamma model assumes none, so a value far from 0 says to distrust it."""
    x, m = _spend_arrays(x, mean_spend)
    repeat = x > 0
    if repeat.sum() < 3 or np.std(x[repeat]) == 0 or np.std(m[repeat]) == 0:
        return float("nan")
    return float(np.corrcoef(x[repeat], m[repeat])[0, 1])


@dataclass(frozen=True)
class ClvAssumptions:
    """What a CLV figure assumes, recorded beside it."""

    horizon_months: int
    monthly_discount_rate: float
    periods_per_month: float = WEEKS_PER_MONTH  # t_x and T are in weeks

    def __post_init__(self) -> None:
        if not (isinstance(self.horizon_months, int) and self.horizon_months >= 1):
            raise ValueError(
                f"horizon_months must be a whole number >= 1; got {self.horizon_months}"
            )
        if not (0 <= self.monthly_discount_rate < 1):
            raise ValueError(
                f"monthly_discount_rate must be at least 0 and below 1; got {self.monthly_discount_rate}"
            )


def discounted_alive_purchases(
    params: BgNbdParams,
    assumptions: ClvAssumptions,
    x: ArrayLike,
    T: ArrayLike,  # noqa: N803
) -> np.ndarray:
    """Purchases an alive customer is expected to make over the horizon, each month's
    discounted: the sum over months k of (alive purchases to the end of month k minus to
    the end of month k - 1) / (1 + rate)^k. Like `alive_purchases`, it depends on x and T
    only, and CLV is P(alive) x expected spend x this."""
    total = np.zeros(np.asarray(x).size)
    before = np.zeros_like(total)
    for month in range(1, assumptions.horizon_months + 1):
        to_here = alive_purchases(params, month * assumptions.periods_per_month, x, T)
        total += (to_here - before) / (1 + assumptions.monthly_discount_rate) ** month
        before = to_here
    return total


def clv(
    purchases: BgNbdParams,
    spend: GammaGammaParams,
    assumptions: ClvAssumptions,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,  # noqa: N803
    mean_spend: ArrayLike,
) -> np.ndarray:
    """Discounted value of the next `horizon_months`: for each month k, the purchases
    expected in it times the expected spend per purchase, divided by (1 + rate)^k."""
    return (
        p_alive(purchases, x, t_x, T)
        * expected_spend(spend, x, mean_spend)
        * discounted_alive_purchases(purchases, assumptions, x, T)
    )


#: Expected purchases are reported for the next 12 months, whatever the CLV horizon.
OUTLOOK_MONTHS = 12


@dataclass(frozen=True)
class PurchaseOutlook:
    """What the month's churn model expects of an alive customer, per distinct (x, T) of
    the month's buyers: the two factors the SQL multiplies by P(alive) (and CLV also by the
    expected spend). Thousands of rows for a million customers, since x and T are whole
    purchase days and whole days."""

    x: np.ndarray
    T: np.ndarray
    alive_purchases_12m: np.ndarray
    discounted_alive_purchases: np.ndarray

    def columns(self) -> dict[str, np.ndarray]:
        """The columns of churn.purchase_outlook, keyed by whole numbers (x, and T in days),
        which both engines join on exactly."""
        return {
            "bgnbd_x": self.x.astype(np.int64),
            "bgnbd_T_days": np.rint(self.T * 7).astype(np.int64),
            "alive_purchases_12m": self.alive_purchases_12m,
            "discounted_alive_purchases": self.discounted_alive_purchases,
        }


def purchase_outlook(
    params: BgNbdParams,
    assumptions: ClvAssumptions,
    x: ArrayLike,
    T: ArrayLike,  # noqa: N803
) -> PurchaseOutlook:
    """The outlook of every distinct (x, T) among the given buyers."""
    x, T = (np.asarray(v, dtype=float).reshape(-1) for v in (x, T))
    pairs = np.unique(np.column_stack([x, T]), axis=0) if x.size else np.empty((0, 2))
    px, pt = pairs[:, 0], pairs[:, 1]
    return PurchaseOutlook(
        x=px,
        T=pt,
        alive_purchases_12m=alive_purchases(
            params, OUTLOOK_MONTHS * assumptions.periods_per_month, px, pt
        ),
        discounted_alive_purchases=discounted_alive_purchases(params, assumptions, px, pt),
    )


#: What CLV assumes when the dictionary says nothing (README, "Churn likelihood: which model").
DEFAULT_CLV = ClvAssumptions(horizon_months=12, monthly_discount_rate=0.01)


@dataclass(frozen=True)
class MonthSpendFit:
    """A month's spend model as it is kept beside its churn fit (churn_fits, and in the
    warehouse churn.value_params): the Gamma-Gamma parameters (None when the month has too
    few repeat buyers), the independence check, the CLV assumptions, and, when the month's
    own fit was not sound, the earlier month whose parameters stand in."""

    params: GammaGammaParams | None
    spend_frequency_correlation: float | None
    assumptions: ClvAssumptions
    kept_from: date | None = None

    def record(self) -> dict[str, Any]:
        p = self.params
        correlation = self.spend_frequency_correlation
        return {
            "spend_p": p.p if p else None,
            "spend_q": p.q if p else None,
            "spend_gamma": p.gamma if p else None,
            "spend_log_likelihood": p.log_likelihood if p else None,
            "spend_n_customers": p.n_customers if p else None,
            "spend_converged": p.converged if p else False,
            "spend_kept_from": self.kept_from,
            "spend_frequency_correlation": (
                correlation if correlation is not None and np.isfinite(correlation) else None
            ),
            "clv_horizon_months": self.assumptions.horizon_months,
            "clv_monthly_discount_rate": self.assumptions.monthly_discount_rate,
        }


def spend_params_of(record: dict[str, Any]) -> GammaGammaParams | None:
    """A recorded month's spend parameters (None when it had none)."""
    if record.get("spend_p") is None:
        return None
    return GammaGammaParams(
        p=record["spend_p"],
        q=record["spend_q"],
        gamma=record["spend_gamma"],
        log_likelihood=record["spend_log_likelihood"],
        n_customers=int(record["spend_n_customers"] or 0),
        converged=bool(record["spend_converged"]),
    )


def assumptions_of(record: dict[str, Any]) -> ClvAssumptions:
    """The CLV assumptions a month was recorded with (the defaults for a month recorded
    before they were)."""
    if record.get("clv_horizon_months") is None:
        return DEFAULT_CLV
    return ClvAssumptions(
        horizon_months=int(record["clv_horizon_months"]),
        monthly_discount_rate=float(record["clv_monthly_discount_rate"]),
    )


def month_spend_fit_to_keep(
    fitted: GammaGammaParams | None,
    correlation: float | None,
    earlier: list[dict[str, Any]],
    assumptions: ClvAssumptions,
) -> tuple[MonthSpendFit, str | None]:
    """The spend model a month prices purchases with, and what was wrong with its own fit.

    As for the churn fit (churn.month_fit_to_keep): an unsound fit gives way to the latest
    earlier sound one of its own month (`earlier`: recorded months, latest first); without
    one the month's own is kept and the problem still reported. No fit at all prices
    nobody."""
    problem = fitted.unsound() if fitted else None
    if problem is None:
        return MonthSpendFit(fitted, correlation, assumptions), None
    for record in earlier:
        candidate = spend_params_of(record)
        if (
            candidate is not None
            and record.get("spend_kept_from") is None
            and not candidate.unsound()
        ):
            kept = record["month_end"]
            note = f"spend model: {problem}; kept the parameters fitted for {kept:%Y-%m}"
            return MonthSpendFit(candidate, correlation, assumptions, kept_from=kept), note
    note = f"spend model: {problem}; no earlier sound fit to keep, so this month's is used"
    return MonthSpendFit(fitted, correlation, assumptions), note
