"""Calibration against a holdout: does the churn model predict what customers then did?

Fit on the purchase history up to a cut-off, predict each customer's repeat purchases in
the months after it, and compare with the purchases that happened. The standard picture
(Fader, Hardie & Lee 2005, figure 4) groups customers by their repeat purchases in the
calibration period and draws the mean actual and the mean predicted holdout purchases per
group; the report adds the mean absolute error per customer in each group, so a model that
is right on average but wrong for every customer shows it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from segment_cadence.defs.segments import churn, value

#: Customers with this many calibration repeat purchases or more share the last group.
TOP_GROUP = 7


@dataclass(frozen=True)
class HoldoutHistory:
    """Per customer: (x, t_x, T) at the cut-off, in weeks, and the repeat purchase days in
    the holdout window (purchase days after the cut-off, up to its end)."""

    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray  # noqa: N815
    holdout_purchases: np.ndarray
    holdout_weeks: float


def holdout_history(
    purchase_days: pd.DataFrame, cutoff: pd.Timestamp, holdout_end: pd.Timestamp
) -> HoldoutHistory:
    """From a log of (customer, day) purchases: the calibration summary of everyone whose
    first purchase is on or before `cutoff` (as churn.summarise_transactions makes it) and
    their distinct purchase days in (cutoff, holdout_end]."""
    cutoff, holdout_end = pd.Timestamp(cutoff).normalize(), pd.Timestamp(holdout_end).normalize()
    if holdout_end <= cutoff:
        raise ValueError(f"the holdout must end after the cut-off ({cutoff:%Y-%m-%d})")
    summary = churn.summarise_transactions(purchase_days, "customer", "day", cutoff)
    days = purchase_days.assign(day=pd.to_datetime(purchase_days["day"]).dt.normalize())
    later = days[(days["day"] > cutoff) & (days["day"] <= holdout_end)].drop_duplicates()
    counts = later.groupby("customer")["day"].count().reindex(summary.index, fill_value=0)
    return HoldoutHistory(
        x=summary["x"].to_numpy(float),
        t_x=summary["t_x"].to_numpy(float),
        T=summary["T"].to_numpy(float),
        holdout_purchases=counts.to_numpy(float),
        holdout_weeks=(holdout_end - cutoff).days / 7,
    )


@dataclass(frozen=True)
class CalibrationGroup:
    label: str  # "0", "1", ... "7+": repeat purchases in the calibration period
    customers: int
    actual: float  # mean repeat purchases in the holdout
    predicted: float  # mean expected purchases in the holdout
    mean_absolute_error: float  # per customer


@dataclass(frozen=True)
class Calibration:
    params: churn.BgNbdParams
    holdout_weeks: float
    groups: tuple[CalibrationGroup, ...]
    mean_absolute_error: float  # over every customer

    def table(self) -> list[dict[str, object]]:
        return [
            {
                "calibration repeat purchases": g.label,
                "customers": g.customers,
                "actual": round(g.actual, 3),
                "predicted": round(g.predicted, 3),
                "MAE per customer": round(g.mean_absolute_error, 3),
            }
            for g in self.groups
        ]


def calibrate(
    history: HoldoutHistory, model: str, fit_sample: int = 50_000, seed: int = 0
) -> Calibration:
    """Fit `model` on the calibration period and compare its holdout predictions with what
    happened, group by group."""
    sample = churn.sample_for_fit(history.x, history.t_x, history.T, max_n=fit_sample, seed=seed)
    params = churn.fit(*sample, model=model)
    predicted = value.expected_purchases(
        params, history.holdout_weeks, history.x, history.t_x, history.T
    )
    actual = history.holdout_purchases
    group = np.minimum(history.x, TOP_GROUP).astype(int)
    groups = []
    for g in range(TOP_GROUP + 1):
        members = group == g
        if not members.any():
            continue
        groups.append(
            CalibrationGroup(
                label=f"{g}+" if g == TOP_GROUP else str(g),
                customers=int(members.sum()),
                actual=float(actual[members].mean()),
                predicted=float(predicted[members].mean()),
                mean_absolute_error=float(np.abs(actual - predicted)[members].mean()),
            )
        )
    return Calibration(
        params=params,
        holdout_weeks=history.holdout_weeks,
        groups=tuple(groups),
        mean_absolute_error=float(np.abs(actual - predicted).mean()),
    )
