"""Lift: what treating a segment (or sending a campaign) changed, against its holdout.

The warehouse does the counting (dbt models health.segment_lift_arms and
health.campaign_lift_arms: per arm, the customers, the outcome's sum and sum of squares);
this module turns two arms into a difference with an interval. Why a normal approximation
and not a bootstrap: the arms arrive as sums, not as customers, so the interval needs
nothing but the models' rows, and with the minimum arm size below (30 by default) the
difference of two means is close to normal. The interval is Welch's: each arm keeps its own
variance, since held-out and treated customers need not vary alike. Below the minimum size
the answer is "not enough data", never a number.

Intent to treat: the treated arm is every member not held out, whether or not a campaign
reached them, so the difference is what the segment's treatment changed for the segment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

# The outcomes the models measure, in the order reports show them, with their units.
OUTCOMES = {
    "purchase_rate": "share of customers who bought within the window",
    "revenue_per_customer": "revenue per customer within the window",
    "retention": "share still in the segment a month later",
}
MEASURED = "measured"
NOT_ENOUGH_DATA = "not_enough_data"


@dataclass(frozen=True)
class Measurement:
    """How lift is measured (the dictionary's `lift:` section)."""

    purchase_within_days: int = 28
    pre_days: int = 28
    post_days: int = 28
    min_customers_per_arm: int = 30
    confidence: float = 0.95

    def dbt_vars(self) -> dict[str, Any]:
        return {
            "lift_purchase_within_days": self.purchase_within_days,
            "lift_pre_days": self.pre_days,
            "lift_post_days": self.post_days,
            "lift_min_customers_per_arm": self.min_customers_per_arm,
        }


DEFAULT_MEASUREMENT = Measurement()
MEASUREMENT_KEYS = {
    "purchase_within_days": (1, 28),
    "pre_days": (1, 365),
    "post_days": (1, 28),
    "min_customers_per_arm": (2, 1_000_000),
}


@dataclass(frozen=True)
class Arm:
    """One arm's sums: customers, the outcome's sum and its sum of squares."""

    customers: int
    total: float
    total_of_squares: float

    @property
    def mean(self) -> float:
        return self.total / self.customers

    @property
    def variance(self) -> float:
        """The sample variance (n - 1), from the sums; 0 for a single customer."""
        n = self.customers
        if n < 2:
            return 0.0
        return max(0.0, (self.total_of_squares - self.total**2 / n) / (n - 1))


@dataclass(frozen=True)
class LiftEstimate:
    """Treated minus held out, with its interval, or "not enough data" (no numbers)."""

    status: str
    treated_customers: int
    held_out_customers: int
    treated_mean: float | None = None
    held_out_mean: float | None = None
    difference: float | None = None
    low: float | None = None
    high: float | None = None
    confidence: float = 0.95

    @property
    def measured(self) -> bool:
        return self.status == MEASURED

    @property
    def excludes_zero(self) -> bool:
        return self.measured and (self.low > 0 or self.high < 0)

    def covers(self, value: float) -> bool:
        return self.measured and self.low <= value <= self.high

    def in_points(self) -> str:
        """A rate's lift as people read it: "+24.1 pts (+18.0 to +30.2)"."""
        if not self.measured:
            return "not enough data"
        return f"{self.difference * 100:+.1f} pts ({self.low * 100:+.1f} to {self.high * 100:+.1f})"

    def in_amounts(self) -> str:
        """An amount's lift: "+112.40 (+60.10 to +164.70)"."""
        if not self.measured:
            return "not enough data"
        return f"{self.difference:+,.2f} ({self.low:+,.2f} to {self.high:+,.2f})"


def difference(
    treated: Arm, held_out: Arm, measurement: Measurement = DEFAULT_MEASUREMENT
) -> LiftEstimate:
    """Mean of the treated minus mean of the held out, with a Welch normal interval."""
    smallest = min(treated.customers, held_out.customers)
    if smallest < measurement.min_customers_per_arm:
        return LiftEstimate(
            NOT_ENOUGH_DATA,
            treated.customers,
            held_out.customers,
            confidence=measurement.confidence,
        )
    estimate = treated.mean - held_out.mean
    error = math.sqrt(treated.variance / treated.customers + held_out.variance / held_out.customers)
    z = NormalDist().inv_cdf(0.5 + measurement.confidence / 2)
    return LiftEstimate(
        MEASURED,
        treated.customers,
        held_out.customers,
        treated_mean=treated.mean,
        held_out_mean=held_out.mean,
        difference=estimate,
        low=estimate - z * error,
        high=estimate + z * error,
        confidence=measurement.confidence,
    )


def parse_measurement(raw: Any, problems: list[str]) -> Measurement:
    """The dictionary's `lift:` section; a problem is added for anything out of range."""
    if raw is None:
        return DEFAULT_MEASUREMENT
    if not isinstance(raw, dict):
        problems.append(f"lift: must be a mapping of measurement settings, got {raw!r}")
        return DEFAULT_MEASUREMENT
    known = set(MEASUREMENT_KEYS) | {"confidence"}
    unknown = sorted(set(raw) - known)
    if unknown:
        problems.append(
            f"lift: unknown key {', '.join(map(repr, unknown))} (known: {', '.join(sorted(known))})"
        )
    values: dict[str, Any] = {}
    for key, (low, high) in MEASUREMENT_KEYS.items():
        value = raw.get(key, getattr(DEFAULT_MEASUREMENT, key))
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            why = " (the window must end within the next month)" if high == 28 else ""
            problems.append(
                f"lift.{key} must be a whole number from {low} to {high}{why}, got {value!r}"
            )
            return DEFAULT_MEASUREMENT
        values[key] = value
    confidence = raw.get("confidence", DEFAULT_MEASUREMENT.confidence)
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0.5 <= confidence < 1
    ):
        problems.append(
            f"lift.confidence must be a level from 0.5 up to (not including) 1, for example "
            f"0.95; got {confidence!r}"
        )
        return DEFAULT_MEASUREMENT
    return Measurement(**values, confidence=float(confidence))


@dataclass(frozen=True)
class SegmentLift:
    """One segment's lift for a month: each outcome, treated against held out."""

    segment_id: str
    membership_month: Any
    outcomes: dict[str, LiftEstimate]


@dataclass(frozen=True)
class CampaignLift:
    """One campaign's lift on its targeted segment: the post-send difference in purchase
    rate and revenue, the difference in differences, and the pre-send difference (the
    parallel-trends check)."""

    campaign_id: str
    campaign_name: str
    segment_id: str
    first_sent: Any
    reached_share: float | None
    purchase_rate: LiftEstimate
    revenue_per_customer: LiftEstimate
    difference_in_differences: LiftEstimate
    pre_period_difference: LiftEstimate

    @property
    def parallel_trends_doubtful(self) -> bool:
        """Before the send the arms already differed (the interval excludes 0)."""
        return self.pre_period_difference.excludes_zero


def _binary(customers: int, count: int) -> Arm:
    return Arm(customers, count, count)


def segment_lifts(con: Any, month_end: Any, measurement: Measurement) -> list[SegmentLift]:
    """The month's lift per segment from health.segment_lift_arms (segments with members
    in both arms or one: "not enough data" shows which)."""
    rows = con.execute(
        "select segment_id, membership_month, arm, customers, purchasers, revenue, "
        "revenue_squared, retained from health.segment_lift_arms where month_end = ? "
        "order by segment_id, arm",
        [month_end],
    ).fetchall()
    arms: dict[str, dict[str, tuple]] = {}
    months: dict[str, Any] = {}
    for segment_id, membership_month, arm, *figures in rows:
        arms.setdefault(segment_id, {})[arm] = tuple(figures)
        months[segment_id] = membership_month
    empty = (0, 0, 0.0, 0.0, 0)
    found = []
    for segment_id, by_arm in arms.items():
        t, h = by_arm.get("treated", empty), by_arm.get("held_out", empty)
        found.append(
            SegmentLift(
                segment_id,
                months[segment_id],
                {
                    "purchase_rate": difference(
                        _binary(t[0], t[1]), _binary(h[0], h[1]), measurement
                    ),
                    "revenue_per_customer": difference(
                        Arm(t[0], t[2], t[3]), Arm(h[0], h[2], h[3]), measurement
                    ),
                    "retention": difference(_binary(t[0], t[4]), _binary(h[0], h[4]), measurement),
                },
            )
        )
    return found


def campaign_lifts(con: Any, month_end: Any, measurement: Measurement) -> list[CampaignLift]:
    """The campaigns whose post-send window ended this month, from health.campaign_lift_arms."""
    rows = con.execute(
        "select campaign_id, campaign_name, segment_id, first_sent, arm, customers, reached, "
        "purchasers_before, purchasers_after, revenue_after, revenue_after_squared, "
        "change_total, change_squared from health.campaign_lift_arms where month_end = ? "
        "order by first_sent, campaign_id, segment_id, arm",
        [month_end],
    ).fetchall()
    grouped: dict[tuple, dict[str, tuple]] = {}
    for campaign_id, name, segment_id, first_sent, arm, *figures in rows:
        grouped.setdefault((campaign_id, name, segment_id, first_sent), {})[arm] = tuple(figures)
    empty = (0, 0, 0, 0, 0.0, 0.0, 0, 0)
    found = []
    for (campaign_id, name, segment_id, first_sent), by_arm in grouped.items():
        t, h = by_arm.get("treated", empty), by_arm.get("held_out", empty)
        found.append(
            CampaignLift(
                campaign_id,
                name,
                segment_id,
                first_sent,
                reached_share=t[1] / t[0] if t[0] else None,
                purchase_rate=difference(_binary(t[0], t[3]), _binary(h[0], h[3]), measurement),
                revenue_per_customer=difference(
                    Arm(t[0], t[4], t[5]), Arm(h[0], h[4], h[5]), measurement
                ),
                difference_in_differences=difference(
                    Arm(t[0], t[6], t[7]), Arm(h[0], h[6], h[7]), measurement
                ),
                pre_period_difference=difference(
                    _binary(t[0], t[2]), _binary(h[0], h[2]), measurement
                ),
            )
        )
    return found
