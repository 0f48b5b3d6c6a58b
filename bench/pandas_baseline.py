"""What a user would write instead: the month's segmentation as a straightforward pandas script.

python -m bench.pandas_baseline RAW_DIR YYYY-MM PARAMS_JSON OUT.parquet
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.platform.months import month_end, parse_month


def main(raw: str, month: str, params_json: str, out: str) -> None:
    end = pd.Timestamp(month_end(parse_month(month)))
    p = json.loads(params_json)
    customers = pd.read_parquet(f"{raw}/customers.parquet", columns=["customer_id", "signup_date"])
    customers = customers[pd.to_datetime(customers["signup_date"]) <= end]
    orders = pd.read_parquet(
        f"{raw}/orders.parquet", columns=["order_id", "customer_id", "order_date", "amount"]
    )
    orders["order_date"] = pd.to_datetime(orders["order_date"])
    orders = orders[orders["order_date"] <= end]
    grouped = orders.groupby("customer_id")
    purchases = pd.DataFrame(
        {
            "last": grouped["order_date"].max(),
            "first": grouped["order_date"].min(),
            "frequency": grouped["order_id"].nunique(),
            "monetary_value": grouped["amount"].sum(),
            "purchase_days": grouped["order_date"].nunique(),
        }
    )
    purchases["recency_days"] = (end - purchases["last"]).dt.days
    x = purchases["purchase_days"] - 1
    t_x = (purchases["last"] - purchases["first"]).dt.days / 7.0
    big_t = (end - purchases["first"]).dt.days / 7.0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds = (
            np.log(p["a"])
            - np.log(p["b"] + x - 1)
            + (p["r"] + x) * np.log((p["alpha"] + big_t) / (p["alpha"] + t_x))
        )
    purchases["churn_likelihood"] = np.where(
        x > 0, 1 - 1 / (1 + np.exp(np.minimum(log_odds, 700))), 0.0
    )

    events = pd.read_parquet(
        f"{raw}/engagement_events.parquet", columns=["customer_id", "channel", "event_at"]
    )
    day = events["event_at"].dt.normalize()
    events = events[(day <= end) & (day > end - pd.Timedelta(days=365))]
    recent = events[events["event_at"].dt.normalize() > end - pd.Timedelta(days=90)]
    engagement = pd.DataFrame({"engagement_events_365d": events.groupby("customer_id").size()})
    engagement["engagement_events_90d"] = recent.groupby("customer_id").size()
    engagement["engagement_channels_90d"] = recent.groupby("customer_id")["channel"].nunique()

    f = customers.set_index("customer_id").join(purchases).join(engagement)
    for column in (
        "frequency",
        "monetary_value",
        "engagement_events_365d",
        "engagement_events_90d",
        "engagement_channels_90d",
    ):
        f[column] = f[column].fillna(0)
    buyers = f[f["frequency"] > 0].reset_index().sort_values(["monetary_value", "customer_id"])
    f["m_score"] = pd.Series(ntile(len(buyers), 5), index=buyers["customer_id"].to_numpy())

    dictionary = segment_dictionary.load()
    conditions = [_rule(f, s.id) for s in dictionary.ruled]
    segments = np.select(
        conditions, [s.id for s in dictionary.ruled], default=dictionary.fallback.id
    )
    pd.DataFrame({"customer_id": f.index, "segment_id": segments}).to_parquet(out, index=False)


def ntile(n: int, buckets: int) -> np.ndarray:
    """SQL's NTILE for rows already in order: the first n % buckets groups get one extra."""
    size, extra = divmod(n, buckets)
    position = np.arange(n)
    big = extra * (size + 1)
    return np.where(
        position < big,
        position // (size + 1) + 1,
        extra + (position - big) // max(size, 1) + 1,
    )


def _rule(f: pd.DataFrame, segment_id: str) -> pd.Series:
    """The default dictionary's rules, hand-translated (what a pandas user would write)."""
    r, fr, m = f["recency_days"], f["frequency"], f["monetary_value"]
    rules = {
        "post_purchase_cooldown": r <= 30,
        "vip_collectors": (m >= 8000) | ((f["m_score"] == 5) & (fr >= 3)),
        "evaluation": (f["engagement_events_90d"] >= 4)
        & (f["engagement_channels_90d"] >= 2)
        & (r.isna() | (r > 90)),
        "loyal_repeat": (fr >= 2) & (r <= 365),
        "new_first_purchase": (fr == 1) & (r <= 180),
        "at_risk": (fr >= 1) & (f["churn_likelihood"] >= 0.6) & (r <= 730),
        "occasional": (fr >= 1) & (r <= 730),
        "dormant": (fr >= 1) & (r > 730),
        "prospects": (fr == 0) & (f["engagement_events_365d"] >= 1),
    }
    return rules[segment_id].fillna(False).astype(bool)


if __name__ == "__main__":
    main(*sys.argv[1:5])
