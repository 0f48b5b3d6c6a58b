"""Health thresholds: governed configuration, and the evaluation that turns metrics into breaches.

A threshold rule watches one metric, for every segment ('*') or a list, with warn and
critical bounds of three kinds:
- absolute: the value itself above or below a bound;
- relative: the change against the previous month, as a fraction of it;
- robust_z: distance from the median of the metric's history in units of its MAD
  (scaled to a standard deviation). Until `min_history` months exist it is not evaluated:
  the absolute bounds, always evaluated, carry the rule meanwhile.
`min_absolute_change` keeps tiny segments from paging anyone: relative and z breaches need
at least that much absolute movement. `direction` (up, down, both) says which way matters.

The file is governed like the dictionary: everything in it decides what is flagged, held or
escalated, so a change needs an approval (see versions.py), except the routing settings,
which only say where messages go. `governed_digest` is the one definition of that split.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from segment_cadence.defs.segments.gate import GateConfigError, bounds_from_document
from segment_cadence.platform import paths, yaml_text

SEVERITIES = ("warn", "critical")
KINDS = ("absolute", "relative", "robust_z")
DIRECTIONS = ("up", "down", "both")
MAD_TO_SIGMA = 1.4826
# The rule id of missed KPI targets (scorecard.KPI_RULE), which a file's rule may not take.
RESERVED_RULE_ID = "kpi_target"
# Where messages go, not what is flagged: editing these needs no approval and does not change
# the definition version. Every other key of the file, any section added later included, is
# governed.
ROUTING_SETTINGS = frozenset(
    {
        "owner_channels",
        "default_channel",
        "escalation_channel",
        "oncall_mention",
        "dagster_url",
        "review_channel",
        "currency",  # how the review pack shows money: presentation, not a definition
    }
)


# How Slack mentions on-call: a user group by its ID (S...), a user by ID (U... or W...),
# or the channel. A name such as <!subteam^oncall> renders as text and pings nobody.
ONCALL_MENTION = re.compile(r"^(<!subteam\^S[A-Z0-9]{2,}>|<@[UW][A-Z0-9]{2,}>|<!here>|<!channel>)$")


class ThresholdError(ValueError):
    """The thresholds file is invalid; the message names the file, the rule and the problem."""


@dataclass(frozen=True)
class Bounds:
    warn: float | None = None
    critical: float | None = None


@dataclass(frozen=True)
class ThresholdRule:
    id: str
    metric: str
    segments: tuple[str, ...]  # ('*',) for every segment
    except_segments: tuple[str, ...] = ()
    direction: str = "both"
    above: Bounds = Bounds()
    below: Bounds = Bounds()
    relative: Bounds = Bounds()
    robust_z: Bounds = Bounds()
    min_history: int = 6
    min_absolute_change: float = 0.0
    consecutive: int = 1
    clear_after: int = 2
    runbook: str = ""
    depends_on_inputs: bool = True
    kind_of_alert: str = "health"  # or "size" / "migration" (inhibited by definition changes)

    def applies_to(self, segment_id: str) -> bool:
        if segment_id in self.except_segments:
            return False
        if segment_id == "*":
            return "*" in self.segments and self.kind_of_alert == "data_quality"
        return "*" in self.segments or segment_id in self.segments


@dataclass(frozen=True)
class Breach:
    month_end: date
    rule_id: str
    segment_id: str
    metric: str
    value: float
    baseline: float | None
    bound: float
    kind: str
    severity: str
    runbook: str = ""
    # Who hears of it when not the segment's owner: a KPI's owner (scorecard.py).
    owner: str | None = None


@dataclass(frozen=True)
class ThresholdConfig:
    path: str
    rules: tuple[ThresholdRule, ...]
    settings: dict[str, Any] = field(default_factory=dict)


def _bounds(raw: Any, label: str, problems: list[str]) -> Bounds:
    if raw is None:
        return Bounds()
    if not isinstance(raw, dict) or set(raw) - set(SEVERITIES):
        problems.append(f"{label}: expected a mapping with 'warn' and/or 'critical'")
        return Bounds()
    values = {}
    for severity in SEVERITIES:
        value = raw.get(severity)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"{label}.{severity}: expected a number, got {value!r}")
            value = None
        values[severity] = None if value is None else float(value)
    return Bounds(**values)


def validate(document: Any, path: str, known_metrics: set[str] | None = None) -> ThresholdConfig:
    problems: list[str] = []
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise ThresholdError(f"{path}: expected a mapping with a 'rules' list")
    defaults = document.get("defaults") or {}
    rules: list[ThresholdRule] = []
    seen: set[str] = set()
    for index, raw in enumerate(document["rules"]):
        label = f"{path}: rule '{raw.get('id', f'#{index + 1}')}'" if isinstance(raw, dict) else ""
        if not isinstance(raw, dict):
            problems.append(f"{path}: rules[{index}]: expected a mapping")
            continue
        merged = {**defaults, **raw}
        unknown = set(merged) - {
            "id",
            "metric",
            "segments",
            "direction",
            "above",
            "below",
            "relative",
            "robust_z",
            "min_history",
            "min_absolute_change",
            "consecutive",
            "clear_after",
            "runbook",
            "depends_on_inputs",
            "kind_of_alert",
            "except_segments",
        }
        for name in sorted(unknown):
            problems.append(f"{label}: unknown field '{name}'")
        for required in ("id", "metric"):
            if not merged.get(required):
                problems.append(f"{label}: missing required field '{required}'")
        if merged.get("id") in seen:
            problems.append(f"{label}: duplicate id")
        if merged.get("id") == RESERVED_RULE_ID:
            problems.append(
                f"{label}: the id '{RESERVED_RULE_ID}' is the scorecard's (missed KPI targets, "
                "set in the dictionary); choose another"
            )
        seen.add(merged.get("id"))
        metric = merged.get("metric")
        if known_metrics is not None and metric and metric not in known_metrics:
            problems.append(f"{label}: unknown metric '{metric}'")
        direction = merged.get("direction", "both")
        if direction not in DIRECTIONS:
            problems.append(f"{label}: direction must be one of {', '.join(DIRECTIONS)}")
        segments = merged.get("segments", "*")
        segments = (segments,) if isinstance(segments, str) else tuple(segments)
        bounds = {
            k: _bounds(merged.get(k), f"{label}: {k}", problems)
            for k in ("above", "below", "relative", "robust_z")
        }
        if not any(b.warn is not None or b.critical is not None for b in bounds.values()):
            problems.append(
                f"{label}: no bounds; give at least one of above, below, relative, robust_z"
            )
        for name in ("consecutive", "clear_after", "min_history"):
            value = merged.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{label}: {name} must be a whole number >= 1")
        for key, b in bounds.items():
            if (
                key in ("above", "relative", "robust_z")
                and None not in (b.warn, b.critical)
                and b.critical < b.warn
            ):
                problems.append(f"{label}: {key}.critical must not be below {key}.warn")
            if key == "below" and None not in (b.warn, b.critical) and b.critical > b.warn:
                problems.append(f"{label}: below.critical must not be above below.warn")
        if problems:
            continue
        rules.append(
            ThresholdRule(
                id=merged["id"],
                metric=metric,
                segments=segments,
                direction=direction,
                except_segments=tuple(merged.get("except_segments") or ()),
                min_history=int(merged.get("min_history", 6)),
                min_absolute_change=float(merged.get("min_absolute_change", 0.0)),
                consecutive=int(merged.get("consecutive", 1)),
                clear_after=int(merged.get("clear_after", 2)),
                runbook=str(merged.get("runbook", "")).strip(),
                depends_on_inputs=bool(merged.get("depends_on_inputs", True)),
                kind_of_alert=str(merged.get("kind_of_alert", "health")),
                **bounds,
            )
        )
    try:
        bounds_from_document(document, path)
    except GateConfigError as error:
        problems.append(str(error))
    mention = (document.get("settings") or {}).get("oncall_mention", "")
    if mention and not ONCALL_MENTION.match(str(mention)):
        problems.append(
            f"{path}: settings.oncall_mention: {mention!r} pings nobody; Slack needs the user "
            "group's ID, <!subteam^S0123ABCD> (or <@U0123ABCD> for one person, <!here>), or "
            "leave it empty"
        )
    if problems:
        raise ThresholdError("\n".join(problems))
    return ThresholdConfig(
        path=path, rules=tuple(rules), settings=dict(document.get("settings") or {})
    )


def read_document(path: Path | None = None) -> Any:
    """The parsed thresholds file (default: the one in force), or a one-line ThresholdError."""
    path = Path(path or paths.thresholds_file())
    try:
        return yaml_text.load(path.read_text())
    except FileNotFoundError:
        raise ThresholdError(f"{path}: thresholds file not found") from None
    except UnicodeDecodeError:
        raise ThresholdError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise ThresholdError(f"{path}: not valid YAML: {error}") from None


def load(path: Path | None = None, known_metrics: set[str] | None = None) -> ThresholdConfig:
    path = Path(path or paths.thresholds_file())
    return validate(read_document(path), str(path), known_metrics)


def governed_content(document: dict[str, Any]) -> dict[str, Any]:
    """The document minus its routing settings: what an approval covers."""
    governed = {key: value for key, value in document.items() if key != "settings"}
    settings = {
        key: value
        for key, value in (document.get("settings") or {}).items()
        if key not in ROUTING_SETTINGS
    }
    if settings:
        governed["settings"] = settings
    return governed


def governed_digest(document: dict[str, Any]) -> str:
    """Hash of the governed content, canonicalised (key order, quoting and comments do not
    count), so a routing or formatting edit leaves it, and the definition version, unchanged."""
    canonical = json.dumps(governed_content(document), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def governed_digest_of(path: Path | None = None) -> str:
    """The governed digest of a thresholds file (validated first; default: the one in force)."""
    path = Path(path or paths.thresholds_file())
    document = read_document(path)
    validate(document, str(path))
    return governed_digest(document)


def _exceeds(score: float, bounds: Bounds) -> tuple[str, float] | None:
    if bounds.critical is not None and score > bounds.critical:
        return "critical", bounds.critical
    if bounds.warn is not None and score > bounds.warn:
        return "warn", bounds.warn
    return None


def _direction_ok(change: float, direction: str) -> bool:
    return (
        direction == "both"
        or (direction == "up" and change > 0)
        or (direction == "down" and change < 0)
    )


def evaluate_one(
    rule: ThresholdRule, value: float | None, history: list[float]
) -> tuple[str, float, float | None, str] | None:  # noqa: E501
    """The worst breach of one rule for one value, given earlier values (oldest first).

    Returns (severity, bound, baseline, kind) or None.
    """
    if value is None or not np.isfinite(value):
        return None
    history = [h for h in history if h is not None and np.isfinite(h)]
    found: list[tuple[str, float, float | None, str]] = []
    above = _exceeds(value, rule.above)
    if above:
        found.append((above[0], above[1], None, "absolute"))
    if rule.below.warn is not None or rule.below.critical is not None:
        below = _exceeds(
            -value,
            Bounds(
                None if rule.below.warn is None else -rule.below.warn,
                None if rule.below.critical is None else -rule.below.critical,
            ),
        )
        if below:
            found.append((below[0], -below[1], None, "absolute"))
    if history:
        previous = history[-1]
        change = value - previous
        if (
            abs(change) >= rule.min_absolute_change
            and _direction_ok(change, rule.direction)
            and previous != 0
        ):
            relative = _exceeds(abs(change) / abs(previous), rule.relative)
            if relative:
                found.append((relative[0], relative[1], previous, "relative"))
        if len(history) >= rule.min_history:
            median = float(np.median(history))
            mad = float(np.median(np.abs(np.array(history) - median))) * MAD_TO_SIGMA
            change = value - median
            if (
                mad > 0
                and abs(change) >= rule.min_absolute_change
                and _direction_ok(change, rule.direction)
            ):
                z = _exceeds(abs(change) / mad, rule.robust_z)
                if z:
                    found.append((z[0], z[1], median, "robust_z"))
    if not found:
        return None
    return max(found, key=lambda f: SEVERITIES.index(f[0]))


def evaluate(
    config: ThresholdConfig,
    month_end: date,
    values: dict[tuple[str, str], float | None],
    history: dict[tuple[str, str], list[float]],
) -> list[Breach]:
    """Breaches for a month. `values` and `history` are keyed by (segment_id, metric)."""
    breaches = []
    for rule in config.rules:
        for (segment_id, metric), value in sorted(values.items()):
            if metric != rule.metric or not rule.applies_to(segment_id):
                continue
            result = evaluate_one(rule, value, history.get((segment_id, metric), []))
            if result:
                severity, bound, baseline, kind = result
                breaches.append(
                    Breach(
                        month_end,
                        rule.id,
                        segment_id,
                        metric,
                        float(value),
                        baseline,
                        bound,
                        kind,
                        severity,
                        rule.runbook,
                    )
                )
    return breaches
