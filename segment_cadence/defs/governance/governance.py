"""Governance configuration and the language lint (seed 000: the Segmentation Governance Charter).

The settings in config/governance.yaml belong to operations, not to the teams who send
campaigns ("the people who benefit from breaking rules must not own them"). They are
validated here with errors that name the file and the field.

The language lint flags the phrases the charter retires ("warm lead", "hot prospect",
"re-engagement", "wake them up", "push them") in segment names and descriptions, campaign
names and copy, and suggests the promoted language. Words shape behaviour: the lint is
advisory (a WARN check and a line in the firewall's answer), never a silent rewrite.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, delete, insert

from segment_cadence.platform import paths, state_store, yaml_text

GOVERNANCE_FILE = paths.CONFIG_DIR / "governance.yaml"


class GovernanceConfigError(ValueError):
    """config/governance.yaml is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class RetiredPhrase:
    phrase: str
    pattern: re.Pattern[str]
    suggest: str


@dataclass(frozen=True)
class LanguageFinding:
    """One retired phrase found in one field of one object."""

    source: str  # segment / campaign
    object_id: str
    field: str
    phrase: str
    found: str
    suggest: str

    def message(self) -> str:
        return (
            f"{self.source} '{self.object_id}' {self.field}: '{self.found}' is retired language "
            f"({self.phrase}); say '{self.suggest}' instead"
        )


@dataclass(frozen=True)
class GovernanceConfig:
    onboarding_days: int
    stale_membership_days: int
    channels: dict[str, str | None]
    protocol: str
    default_risk: str
    risks: dict[str, str]
    unsafe_attempts_rise: float
    bias_attributes: tuple[str, ...]
    max_disparity_ratio: float
    min_group_customers: int
    min_expected_members: int
    retired: tuple[RetiredPhrase, ...]
    promoted: tuple[str, ...] = field(default_factory=tuple)

    def risk(self, segment_id: str) -> str:
        return self.risks.get(segment_id, self.default_risk)


def _number(
    section: dict[str, Any],
    key: str,
    label: str,
    problems: list[str],
    default: float,
    minimum: float = 0,
) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        problems.append(f"{label}.{key} must be a number >= {minimum}, got {value!r}")
        return default
    return value


def validate(document: Any, source: str = "governance.yaml") -> GovernanceConfig:
    """A GovernanceConfig from a parsed document; every problem is reported at once."""
    if not isinstance(document, dict):
        raise GovernanceConfigError(f"{source}: expected a mapping at the top level")
    problems: list[str] = []
    unknown = set(document) - {"firewall", "red_flags", "bias", "language"}
    if unknown:
        problems.append(f"unknown sections: {', '.join(sorted(unknown))}")
    firewall = document.get("firewall") or {}
    red_flags = document.get("red_flags") or {}
    bias = document.get("bias") or {}
    language = document.get("language") or {}
    for name, section in (
        ("firewall", firewall),
        ("red_flags", red_flags),
        ("bias", bias),
        ("language", language),
    ):
        if not isinstance(section, dict):
            problems.append(f"{name} must be a mapping")
    if problems:
        raise GovernanceConfigError(f"{source}: " + "; ".join(problems))

    channels = firewall.get("channels") or {}
    if not isinstance(channels, dict) or not channels:
        problems.append("firewall.channels must map each channel to its consent column or null")
        channels = {}
    risks = firewall.get("risks") or {}
    if not isinstance(risks, dict):
        problems.append("firewall.risks must map segment ids to a sentence")
        risks = {}
    attributes = bias.get("attributes") or []
    if not isinstance(attributes, list) or not all(isinstance(a, str) for a in attributes):
        problems.append("bias.attributes must be a list of customer columns")
        attributes = []
    ratio = _number(bias, "max_disparity_ratio", "bias", problems, 2.0, minimum=1)

    retired: list[RetiredPhrase] = []
    for i, entry in enumerate(language.get("retired") or []):
        label = f"language.retired[{i}]"
        if not isinstance(entry, dict) or not {"phrase", "pattern", "suggest"} <= set(entry):
            problems.append(f"{label} needs phrase, pattern and suggest")
            continue
        try:
            pattern = re.compile(str(entry["pattern"]), re.IGNORECASE)
        except re.error as error:
            problems.append(f"{label}.pattern is not a valid regular expression: {error}")
            continue
        if not pattern.search(str(entry["phrase"])):
            problems.append(f"{label}.pattern does not match its own phrase {entry['phrase']!r}")
            continue
        retired.append(RetiredPhrase(str(entry["phrase"]), pattern, str(entry["suggest"])))
    if problems:
        raise GovernanceConfigError(f"{source}: " + "; ".join(problems))
    return GovernanceConfig(
        onboarding_days=int(_number(firewall, "onboarding_days", "firewall", problems, 30)),
        stale_membership_days=int(
            _number(firewall, "stale_membership_days", "firewall", problems, 45)
        ),
        channels={str(k): (None if v is None else str(v)) for k, v in channels.items()},
        protocol=str(firewall.get("protocol") or "Review the segment logic; do not bypass it."),
        default_risk=str(firewall.get("default_risk") or "Sending now adds pressure."),
        risks={str(k): str(v).strip() for k, v in risks.items()},
        unsafe_attempts_rise=_number(red_flags, "unsafe_attempts_rise", "red_flags", problems, 0.5),
        bias_attributes=tuple(attributes),
        max_disparity_ratio=float(ratio),
        min_group_customers=int(_number(bias, "min_group_customers", "bias", problems, 30)),
        min_expected_members=int(_number(bias, "min_expected_members", "bias", problems, 10)),
        retired=tuple(retired),
        promoted=tuple(str(p) for p in language.get("promoted") or []),
    )


def load(path: Path | str | None = None) -> GovernanceConfig:
    path = Path(path or GOVERNANCE_FILE)
    try:
        document = yaml_text.load(path.read_text())
    except FileNotFoundError:
        raise GovernanceConfigError(f"{path}: governance settings not found") from None
    except yaml.YAMLError as error:
        raise GovernanceConfigError(f"{path}: not valid YAML: {error}") from None
    return validate(document, str(path))


@lru_cache(maxsize=1)
def default_config() -> GovernanceConfig:
    return load()


def dbt_vars(config: GovernanceConfig) -> dict[str, Any]:
    """The settings the governance dbt models read (dbt_project/models/governance), as vars."""
    return {
        "onboarding_days": config.onboarding_days,
        "bias_attributes": list(config.bias_attributes),
        "max_disparity_ratio": config.max_disparity_ratio,
        "min_group_customers": config.min_group_customers,
        "min_expected_members": config.min_expected_members,
    }


def lint_text(
    text: str,
    *,
    source: str,
    object_id: str,
    field: str,
    config: GovernanceConfig | None = None,
) -> list[LanguageFinding]:
    """Every retired phrase in one text, each with the promoted alternative."""
    config = config or default_config()
    findings = []
    for retired in config.retired:
        for match in retired.pattern.finditer(text or ""):
            findings.append(
                LanguageFinding(
                    source, object_id, field, retired.phrase, match.group(0), retired.suggest
                )
            )
    return findings


def lint_segments(
    segments: list[Any], config: GovernanceConfig | None = None
) -> list[LanguageFinding]:
    """Lint the names and descriptions of segments (objects with id, name, description)."""
    findings = []
    for segment in segments:
        for field_name in ("name", "description"):
            findings += lint_text(
                str(getattr(segment, field_name, "") or ""),
                source="segment",
                object_id=segment.id,
                field=field_name,
                config=config,
            )
    return findings


def store_findings(state: Connection, month_end: date, findings: list[LanguageFinding]) -> None:
    """Replace the month's language findings (the state store's language_findings)."""
    table = state_store.language_findings
    state.execute(delete(table).where(table.c.month_end == month_end))
    if findings:
        state.execute(
            insert(table),
            [{"month_end": month_end, **asdict(f)} for f in findings],
        )
