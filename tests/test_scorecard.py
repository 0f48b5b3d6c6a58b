"""The scorecard's declarations: KPI targets in the dictionary are validated line by line,
governed (a target change is a definition change, described in the changelog's words), and
a missed target becomes a breach owned by the KPI's owner (issue 17)."""

from __future__ import annotations

import copy
from datetime import date

import pytest
import yaml

from segment_cadence.defs.dictionary import segment_dictionary, versions
from segment_cadence.defs.health import scorecard
from segment_cadence.platform import paths

NOV = date(2026, 11, 30)


@pytest.fixture()
def document() -> dict:
    return yaml.safe_load(paths.segments_file().read_text())


def loyal(document: dict) -> dict:
    return next(s for s in document["segments"] if s["id"] == "loyal_repeat")


def problems(document: dict) -> list[str]:
    with pytest.raises(segment_dictionary.DefinitionError) as raised:
        segment_dictionary.validate(document, "segments.yaml", segment_dictionary.feature_columns())
    return raised.value.problems


@pytest.mark.parametrize(
    ("kpi", "expected"),
    [
        (
            {"kpi": "happiness", "direction": "at_least", "target": 1, "indicator": "leading"},
            "kpis[0]: kpi must be one of size, size_change",
        ),
        (
            {"kpi": "size_change", "direction": "within", "target": 0.1, "indicator": "leading"},
            "kpi 'size_change': target: a 'within' target is a [low, high] pair",
        ),
        (
            {"kpi": "retention", "direction": "above", "target": 0.5, "indicator": "lagging"},
            "kpi 'retention': direction must be one of at_least, at_most, within",
        ),
        (
            {
                "kpi": "retention",
                "direction": "at_least",
                "target": {"old": 0.5},
                "indicator": "lagging",
            },
            "kpi 'retention': target by maturity takes 'new' and 'mature', got 'old'",
        ),
        (
            {"kpi": "retention", "direction": "at_least", "target": 0.5},
            "kpi 'retention': indicator must be leading or lagging, got None",
        ),
    ],
    ids=["unknown-kpi", "band-not-a-pair", "bad-direction", "bad-maturity", "no-indicator"],
)
def test_a_wrong_kpi_target_is_one_line_naming_the_segment_and_the_kpi(document, kpi, expected):
    loyal(document)["kpis"] = [kpi]
    found = problems(document)
    assert len(found) == 1
    assert found[0].startswith("segment 'loyal_repeat': ") and expected in found[0]


def test_a_target_change_is_a_definition_change_described_for_the_changelog(document):
    before = segment_dictionary.validate(
        document, "segments.yaml", segment_dictionary.feature_columns()
    )
    changed = copy.deepcopy(document)
    loyal(changed)["kpis"][0]["target"] = {"new": 0.55, "mature": 0.8}
    after = segment_dictionary.validate(
        changed, "segments.yaml", segment_dictionary.feature_columns()
    )
    assert before.governed_digest != after.governed_digest
    assert versions.describe_changes(document, changed) == [
        "segment 'loyal_repeat': KPI retention: target changed from new at least 0.55, "
        "mature at least 0.75 to new at least 0.55, mature at least 0.8"
    ]
    owner = copy.deepcopy(document)
    loyal(owner)["kpis"][2]["owner"] = "crm-ops"
    assert "owner changed from retention-marketing to crm-ops" in " ".join(
        versions.describe_changes(document, owner)
    )


def test_the_targets_reach_dbt_as_rows_with_the_segment_owner_by_default(document):
    dictionary = segment_dictionary.validate(
        document, "segments.yaml", segment_dictionary.feature_columns()
    )
    rows = {(r["segment_id"], r["kpi"]): r for r in dictionary.dbt_vars()["kpi_targets"]}
    assert rows["loyal_repeat", "retention"] | {} == {
        "segment_id": "loyal_repeat",
        "kpi": "retention",
        "indicator": "lagging",
        "direction": "at_least",
        "owner": "crm-ops",
        "severity": "warn",
        "new_low": 0.55,
        "new_high": None,
        "mature_low": 0.75,
        "mature_high": None,
    }
    assert rows["loyal_repeat", "lift"]["owner"] == "retention-marketing"
    assert dictionary.dbt_vars()["kpi_mature_after_months"] == 6


def row(status: str, actual: float | None, low: float | None = 0.1, high: float | None = None):
    return scorecard.ScorecardRow(
        NOV,
        "at_risk",
        "response_rate",
        "leading",
        "at_least",
        "retention-marketing",
        "warn",
        "new",
        2,
        low,
        high,
        actual,
        0.2,
        status,
    )


def test_only_a_missed_target_is_a_breach_and_it_names_the_side_crossed():
    found = scorecard.breaches(
        [row("met", 0.2), row("no_data", None), row("no_target", 0.2, None), row("missed", 0.05)]
    )
    (breach,) = found
    assert (breach.rule_id, breach.metric, breach.owner) == (
        "kpi_target",
        "response_rate",
        "retention-marketing",
    )
    assert (breach.value, breach.bound, breach.baseline, breach.kind) == (0.05, 0.1, 0.2, "target")
    band = scorecard.breaches([row("missed", 0.9, 0.0, 0.5)])[0]
    assert band.bound == 0.5
