"""The segment scorecard: each segment's KPIs against targets that depend on its maturity,
each with an owner role; a missed target is a breach that goes through the alert stages.

A segment declares its KPIs in the dictionary (governed like the rules: a target decides who
is asked to act), drawn from the measures the project keeps for every segment (KPIS). A
target is a bound in one direction (`at_least`, `at_most`) or a band (`within`), for new
segments, for mature ones, or for both: growth is asked of a segment in its first months and
stability afterwards. A segment is mature once `maturity.mature_after_months` months have
passed since its first published month.

The comparison is SQL (the dbt model health.segment_scorecard, one row per segment, KPI and
month, with last month's value beside this month's); this module parses the declarations,
passes them to dbt as vars, reads the rows back and turns the missed ones into breaches of
the one code-defined rule KPI_RULE, routed to the KPI's owner rather than the segment's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from segment_cadence.defs.health.thresholds import (
    RESERVED_RULE_ID,
    SEVERITIES,
    Breach,
    ThresholdRule,
)
from segment_cadence.platform.warehouse import WarehouseConnection, table_exists


@dataclass(frozen=True)
class Kpi:
    """A measure a target may be set on: what it is, and how it reads (its unit)."""

    name: str
    description: str
    unit: str  # count, share (a fraction shown as a percentage), amount, points


KPIS: dict[str, Kpi] = {
    k.name: k
    for k in (
        Kpi("size", "members this month", "count"),
        Kpi("size_change", "members against last month, as a fraction of last month", "share"),
        Kpi("retention", "share of last month's members still in the segment", "share"),
        Kpi("response_rate", "campaign responses per send over 365 days", "share"),
        Kpi("churn_likelihood", "members' mean churn likelihood", "share"),
        Kpi("revenue_per_customer", "revenue over the last 365 days per member", "amount"),
        Kpi("clv", "members' mean predicted customer lifetime value", "amount"),
        Kpi(
            "lift",
            "purchase rate of last month's treated members minus the held-out's, "
            "over the lift window (needs a holdout)",
            "points",
        ),
    )
}
DIRECTIONS = ("at_least", "at_most", "within")
INDICATORS = ("leading", "lagging")
MATURITIES = ("new", "mature")
STATUSES = ("met", "missed", "no_data", "no_target")
DEFAULT_MATURE_AFTER_MONTHS = 6
KPI_FIELDS = {"kpi", "direction", "target", "owner", "indicator", "severity"}

# The one rule every missed target breaches: the KPI is the breach's metric, so each KPI of
# each segment is an alert identity of its own. It fires on the first miss (a target is
# already the owner's judgement of what matters) and resolves on the first month met.
KPI_RULE = ThresholdRule(
    id=RESERVED_RULE_ID,
    metric="kpi",
    segments=("*",),
    consecutive=1,
    clear_after=1,
    runbook=(
        "A segment KPI missed the target its owner set in the dictionary: the owner reviews "
        "the segment's treatment at the monthly review, or proposes a new target (a reviewed "
        "dictionary change)."
    ),
    depends_on_inputs=True,
    kind_of_alert="kpi",
)


@dataclass(frozen=True)
class Target:
    """A bound or a band: `low` for at_least, `high` for at_most, both for within."""

    low: float | None = None
    high: float | None = None

    def text(self, unit: str) -> str:
        if self.low is not None and self.high is not None:
            return f"within {format_value(self.low, unit)} to {format_value(self.high, unit)}"
        if self.low is not None:
            return f"at least {format_value(self.low, unit)}"
        return f"at most {format_value(self.high, unit)}"


@dataclass(frozen=True)
class KpiTarget:
    """One KPI a segment declares: its targets by maturity (None: no target at that age)."""

    segment_id: str
    kpi: str
    direction: str
    owner: str
    indicator: str
    severity: str = "warn"
    new: Target | None = None
    mature: Target | None = None

    def governed(self) -> dict[str, Any]:
        """What the definition version hashes: everything, the owner included (who is asked
        to act on a miss is part of the target)."""
        return {
            "kpi": self.kpi,
            "direction": self.direction,
            "owner": self.owner,
            "indicator": self.indicator,
            "severity": self.severity,
            "new": None if self.new is None else [self.new.low, self.new.high],
            "mature": None if self.mature is None else [self.mature.low, self.mature.high],
        }

    def var_row(self) -> dict[str, Any]:
        """The row the dbt model reads (var kpi_targets)."""
        return {
            "segment_id": self.segment_id,
            "kpi": self.kpi,
            "indicator": self.indicator,
            "direction": self.direction,
            "owner": self.owner,
            "severity": self.severity,
            "new_low": None if self.new is None else self.new.low,
            "new_high": None if self.new is None else self.new.high,
            "mature_low": None if self.mature is None else self.mature.low,
            "mature_high": None if self.mature is None else self.mature.high,
        }


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _target(value: Any, direction: str, where: str, problems: list[str]) -> Target | None:
    if direction == "within":
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(_is_number(v) for v in value)
            or value[0] > value[1]
        ):
            problems.append(
                f"{where}: a 'within' target is a [low, high] pair of numbers with low <= "
                f"high, got {value!r}"
            )
            return None
        return Target(float(value[0]), float(value[1]))
    if not _is_number(value):
        problems.append(f"{where}: an '{direction}' target is a number, got {value!r}")
        return None
    return Target(low=float(value)) if direction == "at_least" else Target(high=float(value))


def parse_kpis(
    raw: Any, label: str, segment_id: str, segment_owner: str, problems: list[str]
) -> tuple[KpiTarget, ...]:
    """A segment's `kpis:` list, every problem reported as `<label>: kpis[i] ...`."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(
            f"{label}: kpis must be a list of KPI targets (kpi, direction, target, "
            f"indicator), got {type(raw).__name__}"
        )
        return ()
    found: list[KpiTarget] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        where = f"{label}: kpis[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected a mapping, got {type(item).__name__}")
            continue
        before = len(problems)
        for name in sorted(set(item) - KPI_FIELDS):
            problems.append(f"{where}: unknown field '{name}'")
        kpi = item.get("kpi")
        if kpi not in KPIS:
            problems.append(f"{where}: kpi must be one of {', '.join(KPIS)}, got {kpi!r}")
        elif kpi in seen:
            problems.append(f"{where}: kpi '{kpi}' is declared twice")
        seen.add(kpi)
        where = f"{label}: kpi '{kpi}'" if kpi in KPIS else where
        direction = item.get("direction")
        if direction not in DIRECTIONS:
            problems.append(
                f"{where}: direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}"
            )
        indicator = item.get("indicator")
        if indicator not in INDICATORS:
            problems.append(f"{where}: indicator must be leading or lagging, got {indicator!r}")
        severity = item.get("severity", "warn")
        if severity not in SEVERITIES:
            problems.append(f"{where}: severity must be warn or critical, got {severity!r}")
        owner = item.get("owner", segment_owner)
        if "owner" in item and (not isinstance(owner, str) or not owner.strip()):
            problems.append(f"{where}: owner must be a role name, got {owner!r}")
        targets: dict[str, Target | None] = {"new": None, "mature": None}
        raw_target = item.get("target")
        if direction in DIRECTIONS:
            if isinstance(raw_target, dict):
                for key in sorted(set(raw_target) - set(MATURITIES)):
                    problems.append(
                        f"{where}: target by maturity takes 'new' and 'mature', got '{key}'"
                    )
                for maturity in MATURITIES:
                    if maturity in raw_target:
                        targets[maturity] = _target(
                            raw_target[maturity], direction, f"{where}: target.{maturity}", problems
                        )
                if not raw_target:
                    problems.append(f"{where}: target gives neither 'new' nor 'mature'")
            elif raw_target is None:
                problems.append(f"{where}: missing required field 'target'")
            else:
                both = _target(raw_target, direction, f"{where}: target", problems)
                targets = {"new": both, "mature": both}
        if len(problems) > before:
            continue
        found.append(
            KpiTarget(
                segment_id=segment_id,
                kpi=kpi,
                direction=direction,
                owner=str(owner).strip(),
                indicator=indicator,
                severity=severity,
                new=targets["new"],
                mature=targets["mature"],
            )
        )
    return tuple(found)


def parse_maturity(raw: Any, problems: list[str]) -> int:
    """The dictionary's `maturity: {mature_after_months: N}`: months from a segment's first
    published month until its mature targets apply."""
    if raw is None:
        return DEFAULT_MATURE_AFTER_MONTHS
    months = raw.get("mature_after_months") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or set(raw) - {"mature_after_months"}:
        problems.append("maturity: expected a mapping with 'mature_after_months'")
        return DEFAULT_MATURE_AFTER_MONTHS
    if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 120:
        problems.append(
            f"maturity.mature_after_months must be a whole number of months from 1 to 120, "
            f"got {months!r}"
        )
        return DEFAULT_MATURE_AFTER_MONTHS
    return months


def format_value(value: float | None, unit: str) -> str:
    """A KPI's value as the scorecard shows it."""
    if value is None:
        return ""
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "share":
        return f"{value:.1%}"
    if unit == "points":
        return f"{value * 100:+.1f} pts"
    return f"{value:,.2f}"


@dataclass(frozen=True)
class ScorecardRow:
    """One KPI of one segment in one month, as health.segment_scorecard holds it."""

    month_end: date
    segment_id: str
    kpi: str
    indicator: str
    direction: str
    owner: str
    severity: str
    maturity: str
    months_since_added: int
    target_low: float | None
    target_high: float | None
    actual: float | None
    last_month: float | None
    status: str

    @property
    def unit(self) -> str:
        return KPIS[self.kpi].unit

    @property
    def target(self) -> str:
        if self.target_low is None and self.target_high is None:
            return f"none while {self.maturity}"
        return Target(self.target_low, self.target_high).text(self.unit)

    @property
    def bound(self) -> float | None:
        """The side of the target that was crossed (None unless missed)."""
        if self.status != "missed" or self.actual is None:
            return None
        if self.target_low is not None and self.actual < self.target_low:
            return self.target_low
        return self.target_high

    def cells(self) -> tuple[str, ...]:
        """segment, KPI, indicator, target, actual, last month, status, owner."""
        return (
            self.segment_id,
            self.kpi,
            self.indicator,
            f"{self.target} ({self.maturity})",
            format_value(self.actual, self.unit) or "no data",
            format_value(self.last_month, self.unit) or "no data",
            self.status.replace("_", " "),
            self.owner,
        )


SCORECARD_COLUMNS = (
    "segment",
    "KPI",
    "indicator",
    "target",
    "actual",
    "last month",
    "status",
    "owner",
)
_FIELDS = tuple(ScorecardRow.__dataclass_fields__)


def read(con: WarehouseConnection, month_end: date) -> list[ScorecardRow]:
    """The month's scorecard by segment and KPI; none before the model first builds."""
    if not table_exists(con, "health", "segment_scorecard"):
        return []
    rows = con.execute(
        f"select {', '.join(_FIELDS)} from health.segment_scorecard "
        "where month_end = ? order by segment_id, kpi",
        [month_end],
    ).fetchall()
    return [ScorecardRow(*row) for row in rows]


def breaches(rows: list[ScorecardRow]) -> list[Breach]:
    """Each missed target as a breach of KPI_RULE, owned by the KPI's owner. A KPI without
    data (a segment too small to measure lift) or without a target at this maturity is not a
    miss: nobody can act on it."""
    found = []
    for row in rows:
        if row.status != "missed":
            continue
        found.append(
            Breach(
                month_end=row.month_end,
                rule_id=KPI_RULE.id,
                segment_id=row.segment_id,
                metric=row.kpi,
                value=float(row.actual),
                baseline=row.last_month,
                bound=float(row.bound),
                kind="target",
                severity=row.severity,
                runbook=(
                    f"{row.segment_id}'s {row.kpi} ({KPIS[row.kpi].description}) missed its "
                    f"{row.maturity}-segment target, {row.target}. {KPI_RULE.runbook}"
                ),
                owner=row.owner,
            )
        )
    return found
