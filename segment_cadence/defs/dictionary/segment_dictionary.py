"""The segment dictionary: schema, validation and the definition version.

The dictionary is governed configuration. It is validated in full before anything runs, and
every problem is reported at once, each naming the file, the segment and what is wrong, so a
reviewer can fix a change in one pass. A valid dictionary compiles into an ordered list of
(segment, SQL predicate) pairs that the dbt membership model turns into one CASE expression.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from segment_cadence.defs.dictionary.rules import RuleError, compile_rule
from segment_cadence.defs.governance.governance import lint_text
from segment_cadence.defs.health import scorecard, thresholds
from segment_cadence.defs.segments import holdouts as holdout_plans
from segment_cadence.defs.segments.churn import DEFAULT_MODEL, MODELS
from segment_cadence.defs.segments.holdouts import NO_HOLDOUTS, HoldoutPlan
from segment_cadence.defs.segments.lift import DEFAULT_MEASUREMENT, Measurement, parse_measurement
from segment_cadence.defs.segments.value import DEFAULT_CLV, ClvAssumptions
from segment_cadence.platform import paths, yaml_text

SEGMENT_ID = re.compile(r"^[a-z][a-z0-9_]{1,62}$")
STATUSES = ("draft", "active", "retired")
REQUIRED_FIELDS = ("id", "name", "description", "owner", "priority", "status")
KNOWN_FIELDS = {
    "id",
    "name",
    "description",
    "owner",
    "priority",
    "rule",
    "paused",
    "pause_reason",
    "min_size",
    "status",
    "fallback",
    "retired_rationale",
    "kpis",
    "holdout",
}


class DefinitionError(ValueError):
    """The dictionary is invalid; `problems` lists every problem found.

    One problem reads as one line, `<file>: segment '<id>': <problem>`, as a terminal, a log
    or a Dagster failure shows it; several are listed under a header so they are fixed in one
    pass.
    """

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"{self.path}: {problems[0]}")
            return
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"{self.path}: {len(problems)} problem(s) in segment definitions:\n{lines}"
        )


@dataclass(frozen=True)
class Segment:
    id: str
    name: str
    description: str
    owner: str
    priority: int
    rule: str | None
    rule_sql: str | None
    paused: bool
    pause_reason: str | None
    min_size: int
    status: str
    fallback: bool = False
    retired_rationale: str | None = None
    # The KPIs the segment is held to, with targets by maturity and owners (scorecard.py).
    kpis: tuple[scorecard.KpiTarget, ...] = ()
    # The share of the segment's members held out of its campaigns (holdouts.py).
    holdout_share: float = 0.0


@dataclass(frozen=True)
class BusinessRule:
    id: str
    description: str
    applies_to: str
    applies_to_sql: str
    max_priority: int


@dataclass(frozen=True)
class SegmentDictionary:
    """A validated dictionary. `segments` holds active segments in evaluation order."""

    path: str
    name: str
    segments: tuple[Segment, ...]
    all_segments: tuple[Segment, ...]
    business_rules: tuple[BusinessRule, ...]
    warnings: tuple[str, ...]
    governed_digest: str
    # How churn_likelihood is modelled: "bgnbd" (absent from the file) or "mbgnbd".
    churn_model: str = DEFAULT_MODEL
    # What the clv feature assumes: months ahead and the monthly discount rate.
    clv: ClvAssumptions = DEFAULT_CLV
    # Who is held out of campaigns to measure lift: the salt and the shares.
    holdouts: HoldoutPlan = NO_HOLDOUTS
    # How lift against the holdouts is measured (windows, minimum arm size, confidence).
    measurement: Measurement = DEFAULT_MEASUREMENT
    # Months from a segment's first published month until its mature KPI targets apply.
    mature_after_months: int = scorecard.DEFAULT_MATURE_AFTER_MONTHS

    @property
    def kpi_targets(self) -> tuple[scorecard.KpiTarget, ...]:
        """Every active segment's KPI targets, in evaluation order."""
        return tuple(k for s in self.segments for k in s.kpis)

    @property
    def fallback(self) -> Segment:
        return next(s for s in self.segments if s.fallback)

    @property
    def ruled(self) -> tuple[Segment, ...]:
        """Active segments with a rule, highest priority (lowest number) first."""
        return tuple(s for s in self.segments if not s.fallback)

    def segment(self, segment_id: str) -> Segment:
        return next(s for s in self.all_segments if s.id == segment_id)

    def dbt_vars(self) -> dict[str, Any]:
        """What the dbt models need: the ordered rules and the fallback id (membership), and
        every segment as a row (the per-version dictionary, governance.segment_dictionary_versions)."""
        return {
            "segment_rules": [{"id": s.id, "rule": s.rule_sql} for s in self.ruled],
            "fallback_segment": self.fallback.id,
            "dictionary_segments": [dictionary_row(s) for s in self.all_segments],
            **self.holdouts.dbt_vars(),
            **self.measurement.dbt_vars(),
            "kpi_targets": [k.var_row() for k in self.kpi_targets],
            "kpi_mature_after_months": self.mature_after_months,
        }


def dictionary_row(segment: Segment) -> dict[str, Any]:
    """A segment as the per-version dictionary table keeps it (the rule as written)."""
    return {
        "segment_id": segment.id,
        "segment_name": segment.name,
        "description": segment.description,
        "owner": segment.owner,
        "priority": segment.priority,
        "rule": segment.rule,
        "paused": segment.paused,
        "pause_reason": segment.pause_reason,
        "min_size": segment.min_size,
        "status": segment.status,
        "is_fallback": segment.fallback,
    }


def feature_columns(catalogue: Path = paths.FEATURE_CATALOGUE) -> list[str]:
    """The columns rules may read: those documented in the customer_features model."""
    doc = yaml_text.load(catalogue.read_text())
    model = next(m for m in doc["models"] if m["name"] == "customer_features")
    keys = {"customer_id", "month_end", "definition_inputs_version"}
    return [c["name"] for c in model["columns"] if c["name"] not in keys]


def lint_language(text: str) -> list[str]:
    """Retired pressure phrases found in a text, each with the promoted alternative
    (the phrases live in config/governance.yaml)."""
    return [
        f"uses retired phrase '{f.phrase}' (\"{f.found}\"); say '{f.suggest}' instead"
        for f in lint_text(text, source="text", object_id="", field="")
    ]


def _is_whole_number(value: Any) -> bool:
    """YAML reads `true` as a bool, which Python counts as an int; a priority is neither."""
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_segment(
    raw: Any, index: int, columns: list[str], problems: list[str], warnings: list[str]
) -> Segment | None:
    if not isinstance(raw, dict):
        problems.append(
            f"segments[{index}]: expected a mapping of fields, got {type(raw).__name__}"
        )
        return None
    label = f"segment '{raw.get('id', f'#{index + 1}')}'"
    before = len(problems)
    for name in REQUIRED_FIELDS:
        if raw.get(name) in (None, ""):
            problems.append(f"{label}: missing required field '{name}'")
    for name in sorted(set(raw) - KNOWN_FIELDS):
        problems.append(f"{label}: unknown field '{name}'")
    segment_id = raw.get("id")
    if segment_id is not None and not (
        isinstance(segment_id, str) and SEGMENT_ID.match(segment_id)
    ):
        problems.append(
            f"{label}: id must be lower_snake_case letters, digits and underscores, got {segment_id!r}"
        )
    priority = raw.get("priority")
    if priority is not None and not _is_whole_number(priority):
        problems.append(f"{label}: priority must be a whole number, got {priority!r}")
    status = raw.get("status")
    if status is not None and status not in STATUSES:
        problems.append(f"{label}: status must be one of {', '.join(STATUSES)}, got {status!r}")
    if status == "retired" and not raw.get("retired_rationale"):
        problems.append(f"{label}: a retired segment needs a 'retired_rationale'")
    paused = raw.get("paused", False)
    if not isinstance(paused, bool):
        problems.append(f"{label}: paused must be true or false, got {paused!r}")
    elif paused and not raw.get("pause_reason"):
        problems.append(f"{label}: a paused segment needs a 'pause_reason'")
    min_size = raw.get("min_size", 0)
    if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0:
        problems.append(f"{label}: min_size must be a whole number >= 0, got {min_size!r}")
    kpis = scorecard.parse_kpis(
        raw.get("kpis"), label, str(segment_id), str(raw.get("owner") or ""), problems
    )
    holdout_share = holdout_plans.parse_share(raw.get("holdout"), label, problems)
    fallback = bool(raw.get("fallback", False))
    rule = raw.get("rule")
    rule_sql = None
    if fallback:
        if rule not in (None, ""):
            problems.append(
                f"{label}: the fallback segment takes everyone left over; remove its rule"
            )
    elif rule in (None, ""):
        problems.append(f"{label}: missing required field 'rule' (only the fallback has no rule)")
    else:
        try:
            rule_sql = compile_rule(str(rule), columns).sql
        except RuleError as error:
            problems.append(f"{label}: {error}")
    for text_field in ("name", "description"):
        for finding in lint_language(str(raw.get(text_field) or "")):
            warnings.append(f"{label}: {text_field} {finding}")
    if len(problems) > before:
        return None
    return Segment(
        id=segment_id,
        name=str(raw["name"]),
        description=str(raw["description"]).strip(),
        owner=str(raw["owner"]),
        priority=priority,
        rule=str(rule) if rule else None,
        rule_sql=rule_sql,
        paused=paused,
        pause_reason=raw.get("pause_reason"),
        min_size=min_size,
        status=status,
        fallback=fallback,
        retired_rationale=raw.get("retired_rationale"),
        kpis=kpis,
        holdout_share=holdout_share,
    )


def _validate_business_rules(
    raw_rules: Any, columns: list[str], problems: list[str]
) -> list[BusinessRule]:
    rules: list[BusinessRule] = []
    if raw_rules is None:
        return rules
    if not isinstance(raw_rules, list):
        problems.append("business_rules: expected a list")
        return rules
    for index, raw in enumerate(raw_rules):
        label = f"business rule '{raw.get('id', f'#{index + 1}')}'" if isinstance(raw, dict) else ""
        if not isinstance(raw, dict):
            problems.append(f"business_rules[{index}]: expected a mapping")
            continue
        missing = [k for k in ("id", "applies_to", "max_priority") if raw.get(k) in (None, "")]
        if missing:
            problems.append(f"{label}: missing required field(s) {', '.join(missing)}")
            continue
        if not _is_whole_number(raw["max_priority"]):
            problems.append(
                f"{label}: max_priority must be a whole number, got {raw['max_priority']!r}"
            )
            continue
        try:
            sql = compile_rule(str(raw["applies_to"]), columns).sql
        except RuleError as error:
            problems.append(f"{label}: {error}")
            continue
        rules.append(
            BusinessRule(
                id=raw["id"],
                description=str(raw.get("description", "")).strip(),
                applies_to=raw["applies_to"],
                applies_to_sql=sql,
                max_priority=int(raw["max_priority"]),
            )
        )
    return rules


def validate(document: Any, path: Path | str, columns: list[str]) -> SegmentDictionary:
    """Validate a parsed dictionary document; raise DefinitionError listing every problem."""
    problems: list[str] = []
    warnings: list[str] = []
    if not isinstance(document, dict) or not isinstance(document.get("segments"), list):
        raise DefinitionError(path, ["expected a mapping with a 'segments' list"])
    if not document["segments"]:
        raise DefinitionError(path, ["'segments' is empty; at least a fallback segment is needed"])
    segments: list[Segment] = []
    for index, raw in enumerate(document["segments"]):
        segment = _validate_segment(raw, index, columns, problems, warnings)
        if segment is not None:
            segments.append(segment)
    raw_segments = [r for r in document["segments"] if isinstance(r, dict)]
    seen_ids: dict[str, int] = {}
    for raw in raw_segments:
        if raw.get("id") and isinstance(raw["id"], str):
            seen_ids[raw["id"]] = seen_ids.get(raw["id"], 0) + 1
    for segment_id, count in seen_ids.items():
        if count > 1:
            problems.append(f"segment '{segment_id}': duplicate id (defined {count} times)")
    by_priority: dict[Any, list[str]] = {}
    for raw in raw_segments:
        if raw.get("status", "active") == "active" and _is_whole_number(raw.get("priority")):
            by_priority.setdefault(raw["priority"], []).append(str(raw.get("id")))
    for priority, ids in by_priority.items():
        if len(ids) > 1:
            problems.append(
                f"segments {', '.join(repr(i) for i in ids)}: duplicate priority {priority}; "
                "priorities decide evaluation order and must be unique"
            )
    fallbacks = [r for r in raw_segments if r.get("fallback") and r.get("status") == "active"]
    if not fallbacks:
        problems.append(
            "missing fallback segment: mark exactly one active segment with 'fallback: true' so "
            "that customers with missing or insufficient data are not dropped"
        )
    elif len(fallbacks) > 1:
        ids = ", ".join(repr(r.get("id")) for r in fallbacks)
        problems.append(f"segments {ids}: more than one fallback segment")
    elif by_priority and fallbacks[0].get("priority") != max(by_priority):
        problems.append(
            f"segment '{fallbacks[0].get('id')}': the fallback must have the lowest priority "
            "(the largest number)"
        )
    business_rules = _validate_business_rules(document.get("business_rules"), columns, problems)
    churn_model = document.get("churn_model", DEFAULT_MODEL)
    if churn_model not in MODELS:
        problems.append(
            f"churn_model must be one of {', '.join(MODELS)} (see the README's churn section), "
            f"got {churn_model!r}"
        )
    clv = _clv_assumptions(document.get("clv"), problems)
    holdouts = holdout_plans.parse(
        document.get("holdouts"),
        {s.id: s.holdout_share for s in segments if s.holdout_share > 0},
        problems,
    )
    measurement = parse_measurement(document.get("lift"), problems)
    mature_after_months = scorecard.parse_maturity(document.get("maturity"), problems)
    if problems:
        raise DefinitionError(path, problems)
    active = sorted((s for s in segments if s.status == "active"), key=lambda s: s.priority)
    return SegmentDictionary(
        path=str(path),
        name=str(document.get("dictionary", Path(path).stem)),
        segments=tuple(active),
        all_segments=tuple(segments),
        business_rules=tuple(business_rules),
        warnings=tuple(warnings),
        governed_digest=governed_digest(
            active, business_rules, churn_model, clv, holdouts, mature_after_months
        ),
        churn_model=churn_model,
        clv=clv,
        holdouts=holdouts,
        measurement=measurement,
        mature_after_months=mature_after_months,
    )


def _clv_assumptions(raw: Any, problems: list[str]) -> ClvAssumptions:
    """The dictionary's `clv:` section (horizon_months, monthly_discount_rate), each
    defaulting to DEFAULT_CLV's; a problem is added for anything else."""
    if raw is None:
        return DEFAULT_CLV
    if not isinstance(raw, dict):
        problems.append(
            f"clv: must be a mapping with horizon_months and monthly_discount_rate, got {raw!r}"
        )
        return DEFAULT_CLV
    unknown = sorted(set(raw) - {"horizon_months", "monthly_discount_rate"})
    if unknown:
        problems.append(
            f"clv: unknown key {', '.join(map(repr, unknown))} "
            "(known: horizon_months, monthly_discount_rate)"
        )
    horizon = raw.get("horizon_months", DEFAULT_CLV.horizon_months)
    rate = raw.get("monthly_discount_rate", DEFAULT_CLV.monthly_discount_rate)
    if isinstance(horizon, bool) or not isinstance(horizon, int) or not 1 <= horizon <= 120:
        problems.append(
            f"clv.horizon_months must be a whole number of months from 1 to 120, got {horizon!r}"
        )
        return DEFAULT_CLV
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate < 1:
        problems.append(
            "clv.monthly_discount_rate must be a number from 0 up to (not including) 1, "
            f"for example 0.01 for 1 % a month; got {rate!r}"
        )
        return DEFAULT_CLV
    return ClvAssumptions(horizon_months=horizon, monthly_discount_rate=float(rate))


def governed_digest(
    segments: list[Segment],
    business_rules: list[BusinessRule],
    churn_model: str = DEFAULT_MODEL,
    clv: ClvAssumptions = DEFAULT_CLV,
    holdouts: HoldoutPlan = NO_HOLDOUTS,
    mature_after_months: int = scorecard.DEFAULT_MATURE_AFTER_MONTHS,
) -> str:
    """Hash of what decides membership and protection: ids, order, rules, pauses, status,
    the churn model the rules' churn_likelihood comes from and the assumptions of their clv.

    Names, descriptions and owners are left out on purpose: editing them does not change
    who is in which segment. The churn model and the CLV assumptions count only when they are
    not the defaults, so a dictionary written before the choice existed (scored with BG/NBD,
    valued over 12 months at 1 %) keeps its digest, and writing the defaults into it changes
    nothing. Holdouts count once any share is above 0: a new salt (a re-draw) or a new share
    changes who campaigns may reach, so it is a definition change like a pause. KPI targets
    count once a segment declares one: a target decides who is asked to act, and when.
    """
    governed = {
        "segments": [
            {
                "id": s.id,
                "priority": s.priority,
                "rule": s.rule_sql,
                "paused": s.paused,
                "fallback": s.fallback,
                "status": s.status,
                "min_size": s.min_size,
            }
            for s in segments
        ],
        "business_rules": [
            {"id": r.id, "applies_to": r.applies_to_sql, "max_priority": r.max_priority}
            for r in business_rules
        ],
    }
    if churn_model != DEFAULT_MODEL:
        governed["churn_model"] = churn_model
    if clv != DEFAULT_CLV:
        governed["clv"] = {
            "horizon_months": clv.horizon_months,
            "monthly_discount_rate": clv.monthly_discount_rate,
        }
    if holdouts.active:
        governed["holdouts"] = holdouts.governed()
    targets = [k.governed() | {"segment_id": k.segment_id} for s in segments for k in s.kpis]
    if targets:
        governed["kpis"] = targets
        governed["mature_after_months"] = mature_after_months
    return hashlib.sha256(json.dumps(governed, sort_keys=True).encode()).hexdigest()


def _line_and_column(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8, as an editor shows it (line and column, 1-based)."""
    before = data[: error.start].decode("utf-8")
    where = _line_and_column(before, len(before))
    return (
        f"not UTF-8 text: byte 0x{data[error.start]:02x} at {where} "
        f"(byte offset {error.start}); save the file as UTF-8"
    )


def _not_yaml(error: yaml.YAMLError, text: str) -> str:
    """A YAML error on one line, with the line and column where it was found."""
    if isinstance(error, yaml.reader.ReaderError):
        where = f" at {_line_and_column(text, error.position)}"
        problem = f"character #x{error.character:04x}: {error.reason}"
    else:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or error
    return " ".join(f"not valid YAML{where}: {problem}".split())


def read_document(path: Path | str) -> Any:
    """Parse a governed YAML file (a dictionary, a snapshot, the ledger).

    Every way a file can be unreadable (missing, not UTF-8, not YAML, nested beyond the
    parser's stack) raises DefinitionError naming the file and where it breaks, so the CLI,
    the review gate and the Dagster asset report it in one line instead of a traceback.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DefinitionError(path, ["file not found"]) from None
    except OSError as error:
        raise DefinitionError(path, [f"cannot be read: {error.strerror or error}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DefinitionError(path, [_not_utf8(data, error)]) from None
    try:
        return yaml_text.load(text)
    except yaml.YAMLError as error:
        raise DefinitionError(path, [_not_yaml(error, text)]) from None
    except RecursionError:
        raise DefinitionError(path, ["not valid YAML: nested too deeply to read"]) from None


def load(path: Path | str | None = None, columns: list[str] | None = None) -> SegmentDictionary:
    """Read and validate a dictionary file (default: the one in force)."""
    path = Path(path) if path else paths.segments_file()
    document = read_document(path)
    return validate(document, path, columns if columns is not None else feature_columns())


def model_sql_digest(dbt_project_dir: Path = paths.DBT_PROJECT_DIR) -> str:
    """Hash of the SQL that computes features and membership (models and macros)."""
    digest = hashlib.sha256()
    for sql_file in sorted((dbt_project_dir / "models").rglob("*.sql")) + sorted(
        (dbt_project_dir / "macros").rglob("*.sql")
    ):
        digest.update(str(sql_file.relative_to(dbt_project_dir)).encode())
        digest.update(sql_file.read_bytes())
    return digest.hexdigest()


def definition_version(
    dictionary: SegmentDictionary,
    dbt_project_dir: Path = paths.DBT_PROJECT_DIR,
    thresholds_path: Path | None = None,
) -> str:
    """Content hash of what decides membership and its health: the governed dictionary, the
    SQL of the models, and the governed part of the health thresholds (versioned with the
    definitions). Routing settings are left out, so a channel edit keeps the version."""
    thresholds_path = Path(thresholds_path or paths.thresholds_file())
    threshold_digest = (
        thresholds.governed_digest_of(thresholds_path) if thresholds_path.exists() else ""
    )
    combined = hashlib.sha256(
        (dictionary.governed_digest + model_sql_digest(dbt_project_dir) + threshold_digest).encode()
    ).hexdigest()
    return combined[:12]
