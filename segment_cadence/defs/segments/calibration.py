"""Calibration against a holdout: does the churn model predict what customers then did?

Fit on the purchase history up to a cut-off, predict each customer's repeat purchases in
the months after it, and compare with the purchases that happened. The standard picture
(Fader, Hardie & Lee 2005, figure 4) groups customers by their repeat purchases in the
calibration period and draws the mean actual and the mean predicted holdout purchases per
group; the report adds the mean absolute error per customer in each group, so a model that
is right on average but wrong for every customer shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from segment_cadence.defs.segments import churn, value
from segment_cadence.platform.months import add_months, month_end, parse_month
from segment_cadence.platform.warehouse import WarehouseConnection

#: Customers with this many calibration repeat purchases or more share the last group.
TOP_GROUP = 7
#: The quarterly check holds out the last six months (two quarters: a jeweller's customers
#: buy a few times a year at most, so one quarter shows little).
QUARTERLY_HOLDOUT_MONTHS = 6


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


def is_quarter_end(day: date) -> bool:
    """The refresh of a quarter's last month makes the quarter's calibration."""
    return day.month % 3 == 0


def holdout_window(cutoff_month: str, months: int) -> tuple[date, date]:
    """(cut-off, holdout end): the last days of the cut-off month (YYYY-MM) and of the
    month `months` later."""
    if months < 1:
        raise ValueError(f"the holdout must be at least one month; got {months}")
    first = parse_month(cutoff_month)
    return month_end(first), month_end(add_months(first, months))


def quarterly_window(quarter_end: date) -> tuple[date, date]:
    """The quarter's check: the history to QUARTERLY_HOLDOUT_MONTHS before its last day,
    and the months since as the holdout."""
    start = add_months(quarter_end.replace(day=1), -QUARTERLY_HOLDOUT_MONTHS)
    return month_end(start), quarter_end


def warehouse_holdout_history(
    con: WarehouseConnection, cutoff: date, holdout_end: date
) -> HoldoutHistory:
    """The calibration summary and holdout purchase days of every customer who bought on or
    before `cutoff`, added up from the monthly slices (history.int_customer_orders_monthly:
    purchase days never span months, so they add up exactly). Both days are month ends."""
    if holdout_end <= cutoff:
        raise ValueError(f"the holdout must end after the cut-off ({cutoff:%Y-%m-%d})")
    cutoff_month, holdout_month = cutoff.replace(day=1), holdout_end.replace(day=1)
    found = con.execute(
        """
        select
            min(case when activity_month <= ? then first_order_date end) as first_day,
            max(case when activity_month <= ? then last_order_date end) as last_day,
            sum(case when activity_month <= ? then purchase_days else 0 end) as calibration_days,
            sum(case when activity_month > ? then purchase_days else 0 end) as holdout_days
        from history.int_customer_orders_monthly
        where activity_month <= ?
        group by customer_id
        having min(case when activity_month <= ? then first_order_date end) is not null
        order by customer_id
        """,
        [cutoff_month, cutoff_month, cutoff_month, cutoff_month, holdout_month, cutoff_month],
    ).df()
    first = pd.to_datetime(found["first_day"])
    last = pd.to_datetime(found["last_day"])
    end = pd.Timestamp(cutoff)
    return HoldoutHistory(
        x=found["calibration_days"].to_numpy(float) - 1,
        t_x=((last - first).dt.days / 7).to_numpy(float),
        T=((end - first).dt.days / 7).to_numpy(float),
        holdout_purchases=found["holdout_days"].to_numpy(float),
        holdout_weeks=(holdout_end - cutoff).days / 7,
    )


def chart_series(groups: list[dict[str, Any]]) -> tuple[list[str], dict[str, list[float]]]:
    """The standard chart's data: the groups' labels, and the mean actual and predicted
    holdout purchases of each."""
    labels = [g["label"] for g in groups]
    return labels, {
        "actual": [g["actual"] for g in groups],
        "predicted": [g["predicted"] for g in groups],
    }


CHART_ALT = (
    "Mean repeat purchases in the holdout, actual and predicted, by repeat purchases in the "
    "calibration period"
)


def record(
    result: Calibration, month: date, cutoff: date, holdout_end: date, computed_at: datetime
) -> dict[str, Any]:
    """The columns of the state store's calibrations."""
    p = result.params
    return {
        "month_end": month,
        "cutoff": cutoff,
        "holdout_end": holdout_end,
        "holdout_weeks": result.holdout_weeks,
        "model": p.model,
        "r": p.r,
        "alpha": p.alpha,
        "a": p.a,
        "b": p.b,
        "customers": sum(g.customers for g in result.groups),
        "mean_absolute_error": result.mean_absolute_error,
        "groups": json.dumps(
            [
                {
                    "label": g.label,
                    "customers": g.customers,
                    "actual": g.actual,
                    "predicted": g.predicted,
                    "mean_absolute_error": g.mean_absolute_error,
                }
                for g in result.groups
            ]
        ),
        "computed_at": computed_at,
    }
