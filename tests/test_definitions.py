"""The segment dictionary is validated before anything runs, with errors a reviewer can act on."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.dictionary.rules import compile_rule
from segment_cadence.defs.dictionary.segment_dictionary import DefinitionError
from segment_cadence.platform import paths, yaml_text


@pytest.fixture()
def default_document() -> dict:
    return yaml.safe_load(paths.SEGMENTS_FILE.read_text())


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "segments.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def problems_for(tmp_path: Path, document: dict) -> str:
    path = write(tmp_path, document)
    with pytest.raises(DefinitionError) as raised:
        segment_dictionary.load(path)
    message = str(raised.value)
    assert str(path) in message, "the error names the file"
    return message


def segment(document: dict, segment_id: str) -> dict:
    return next(s for s in document["segments"] if s["id"] == segment_id)


def test_default_dictionary_is_valid_and_has_paused_segments_and_a_fallback():
    dictionary = segment_dictionary.load()
    assert dictionary.fallback.id == "insufficient_data"
    assert {s.id for s in dictionary.segments if s.paused} >= {
        "post_purchase_cooldown",
        "evaluation",
    }
    priorities = [s.priority for s in dictionary.segments]
    assert priorities == sorted(priorities)
    assert dictionary.ruled[-1].id != dictionary.fallback.id


def test_unknown_feature_column_is_named_with_a_suggestion(tmp_path, default_document):
    segment(default_document, "loyal_repeat")["rule"] = "frequncy >= 2"
    message = problems_for(tmp_path, default_document)
    assert "segment 'loyal_repeat'" in message
    assert "unknown feature column 'frequncy'" in message
    assert "did you mean 'frequency'" in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("frequency >= (select max(frequency) from customer_features)", "subquery"),
        ("frequency >= 2; drop table published.segment_membership", "';'"),
        ("read_csv('/etc/passwd') is not null", "function 'read_csv'"),
        ("monetary_value + 10", "not a boolean expression"),
        ("frequency >=", "not valid SQL"),
        ("features.frequency >= 2", "bare feature name"),
    ],
)
def test_unsafe_or_non_boolean_sql_is_refused(tmp_path, default_document, rule, expected):
    segment(default_document, "loyal_repeat")["rule"] = rule
    message = problems_for(tmp_path, default_document)
    assert "segment 'loyal_repeat'" in message
    assert expected in message


def test_allowed_functions_pass(tmp_path, default_document):
    segment(default_document, "loyal_repeat")["rule"] = (
        "coalesce(frequency, 0) >= 2 and abs(recency_days) between 0 and 365"
    )
    dictionary = segment_dictionary.load(write(tmp_path, default_document))
    assert "COALESCE" in dictionary.segment("loyal_repeat").rule_sql


@pytest.mark.parametrize("column", ["age_band", "religion", "health_score", "customer_ethnicity"])
def test_sensitive_attributes_are_refused(tmp_path, default_document, column):
    segment(default_document, "prospects")["rule"] = f"{column} = 'x'"
    message = problems_for(tmp_path, default_document)
    assert "segment 'prospects'" in message
    assert f"sensitive attribute '{column}'" in message


def test_duplicate_ids_are_refused(tmp_path, default_document):
    duplicate = copy.deepcopy(segment(default_document, "dormant"))
    duplicate["priority"] = 50
    default_document["segments"].append(duplicate)
    message = problems_for(tmp_path, default_document)
    assert "segment 'dormant': duplicate id" in message


def test_duplicate_priorities_are_refused(tmp_path, default_document):
    segment(default_document, "dormant")["priority"] = segment(default_document, "occasional")[
        "priority"
    ]
    message = problems_for(tmp_path, default_document)
    assert "'occasional'" in message and "'dormant'" in message
    assert "duplicate priority 7" in message


def test_missing_fallback_is_refused(tmp_path, default_document):
    default_document["segments"] = [
        s for s in default_document["segments"] if not s.get("fallback")
    ]
    message = problems_for(tmp_path, default_document)
    assert "missing fallback segment" in message


def test_malformed_yaml_names_the_line(tmp_path):
    path = tmp_path / "segments.yaml"
    path.write_text("segments:\n  - id: a\n    rule: [unclosed\n")
    with pytest.raises(DefinitionError) as raised:
        segment_dictionary.load(path)
    assert "not valid YAML at line" in str(raised.value)


def test_missing_fields_and_paused_without_reason_are_all_reported_at_once(
    tmp_path, default_document
):
    del segment(default_document, "vip_collectors")["owner"]
    segment(default_document, "evaluation").pop("pause_reason")
    segment(default_document, "dormant")["colour"] = "blue"
    message = problems_for(tmp_path, default_document)
    assert "segment 'vip_collectors': missing required field 'owner'" in message
    assert "segment 'evaluation': a paused segment needs a 'pause_reason'" in message
    assert "segment 'dormant': unknown field 'colour'" in message


def test_retired_segment_needs_a_rationale_and_is_not_evaluated(tmp_path, default_document):
    segment(default_document, "dormant")["status"] = "retired"
    message = problems_for(tmp_path, default_document)
    assert "retired segment needs a 'retired_rationale'" in message
    segment(default_document, "dormant")["retired_rationale"] = "Merged into occasional."
    dictionary = segment_dictionary.load(write(tmp_path, default_document))
    assert "dormant" not in {s.id for s in dictionary.segments}
    assert dictionary.segment("dormant").status == "retired"


def test_retired_pressure_phrases_are_flagged(tmp_path, default_document):
    segment(default_document, "prospects")["description"] = "Hot prospect list; wake them up."
    dictionary = segment_dictionary.load(write(tmp_path, default_document))
    joined = " ".join(dictionary.warnings)
    assert "'hot prospect'" in joined and "'wake them up'" in joined


def test_definition_version_ignores_descriptions_but_not_rules(tmp_path, default_document):
    base = segment_dictionary.definition_version(
        segment_dictionary.load(write(tmp_path, default_document))
    )
    segment(default_document, "dormant")["description"] = "Reworded, same people."
    reworded = segment_dictionary.definition_version(
        segment_dictionary.load(write(tmp_path, default_document))
    )
    segment(default_document, "dormant")["rule"] = "frequency >= 1 and recency_days > 700"
    changed = segment_dictionary.definition_version(
        segment_dictionary.load(write(tmp_path, default_document))
    )
    assert base == reworded
    assert changed != base


def test_feature_catalogue_comes_from_the_dbt_model_documentation():
    columns = segment_dictionary.feature_columns()
    assert {"recency_days", "frequency", "monetary_value", "churn_likelihood"} <= set(columns)
    assert "customer_id" not in columns


def only_line(message: str) -> str:
    """The error, checked to be a single line (a reviewer reads it in a terminal or a log)."""
    assert "\n" not in message, f"expected one line, got:\n{message}"
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize(
    "rule",
    [
        "frequency >= 2 -- and recency_days <= 365",
        "frequency >= 2 /* and recency_days <= 365 */",
        "/* loyal */ frequency >= 2",
        "frequency >= 2 --",
        "-- frequency >= 2",
    ],
)
def test_sql_comments_in_rules_are_refused(tmp_path, default_document, rule):
    segment(default_document, "loyal_repeat")["rule"] = rule
    path = write(tmp_path, default_document)
    with pytest.raises(DefinitionError) as raised:
        segment_dictionary.load(path)
    message = only_line(str(raised.value))
    assert message.startswith(f"{path}: segment 'loyal_repeat': rule contains a SQL comment")


def test_comment_markers_inside_a_string_literal_are_not_comments():
    compiled = compile_rule("lower(channel) = 'e--mail /* x */'", ["channel"])
    assert "'e--mail /* x */'" in compiled.sql


def test_sql_comments_in_business_rules_are_refused(tmp_path, default_document):
    default_document["business_rules"][0]["applies_to"] = (
        "monetary_value >= 8000 -- or frequency > 1"
    )
    message = only_line(problems_for(tmp_path, default_document))
    assert "business rule 'high_value_never_low_priority': rule contains a SQL comment" in message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("recency_days <= 365 and frequency = 'two", "string is never closed"),
        ('"frequency >= 2', "quoted name is never closed"),
        ("frequency >= 2 /* and recency_days <= 365", "comment is never closed"),
    ],
)
def test_unterminated_string_is_one_line_naming_file_segment_and_problem(
    tmp_path, default_document, rule, expected
):
    segment(default_document, "loyal_repeat")["rule"] = rule
    message = only_line(problems_for(tmp_path, default_document))
    assert ": segment 'loyal_repeat': rule is not valid SQL: " in message
    assert expected in message


@pytest.mark.parametrize(
    "rule",
    [
        "(" * 2_000 + "frequency >= 2" + ")" * 2_000,
        "not " * 2_000 + "frequency >= 2",
        "frequency >= " + "abs(" * 500 + "2" + ")" * 500,
        "frequency >= " + "- " * 2_000 + "2",
    ],
    ids=["parentheses", "not", "functions", "minus"],
)
def test_too_deep_nesting_is_refused_with_a_message(tmp_path, default_document, rule):
    segment(default_document, "loyal_repeat")["rule"] = rule
    message = only_line(problems_for(tmp_path, default_document))
    assert ": segment 'loyal_repeat': rule is nested more than" in message


def test_reasonable_nesting_still_compiles():
    rule = "(" * 20 + "frequency >= 2" + ")" * 20
    assert compile_rule(rule, ["frequency"]).columns == ("frequency",)


def test_non_utf8_dictionary_names_the_line_and_byte(tmp_path):
    """A Latin-1 "é" in a name, as an editor saving in the wrong encoding would write it."""
    lines = paths.SEGMENTS_FILE.read_bytes().splitlines(keepends=True)
    line = next(i for i, content in enumerate(lines) if b"name: " in content)
    lines[line] = lines[line].replace(b"name: ", b"name: Caf\xe9 ", 1)
    data = b"".join(lines)
    offset = data.index(b"\xe9")
    column = lines[line].index(b"\xe9") + 1
    path = tmp_path / "segments.yaml"
    path.write_bytes(data)
    with pytest.raises(DefinitionError) as raised:
        segment_dictionary.load(path)
    message = only_line(str(raised.value))
    assert message.startswith(
        f"{path}: not UTF-8 text: byte 0xe9 at line {line + 1}, column {column} "
        f"(byte offset {offset})"
    )


def test_a_single_problem_is_one_line_and_several_keep_the_list(tmp_path, default_document):
    segment(default_document, "loyal_repeat")["rule"] = "frequncy >= 2"
    path = write(tmp_path, default_document)
    with pytest.raises(DefinitionError) as raised:
        segment_dictionary.load(path)
    assert str(raised.value) == (
        f"{path}: segment 'loyal_repeat': rule uses unknown feature column 'frequncy' "
        "(did you mean 'frequency'?)"
    )
    segment(default_document, "dormant")["rule"] = "recncy_days > 730"
    message = problems_for(tmp_path, default_document)
    assert message.splitlines()[0] == f"{path}: 2 problem(s) in segment definitions:"
    assert message.splitlines()[1].startswith("  - segment 'loyal_repeat': ")


def test_validate_command_prints_one_line_for_a_non_utf8_file(tmp_path, capsys):
    from segment_cadence.cli import main

    path = tmp_path / "segments.yaml"
    path.write_bytes(b"segments:\n  - id: caf\xc3\n")
    assert main(["validate", str(path)]) == 1
    error = capsys.readouterr().err.strip()
    assert only_line(error).startswith(f"{path}: not UTF-8 text: byte 0xc3 at line 2")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"segments:\n  - id: a\x01\n", "not valid YAML at line 2, column 10: character #x0001"),
        # 3,000 brackets never closed: libyaml stops where the document ends; PyYAML's
        # pure-Python parser (without libyaml) runs out of stack first.
        (
            b"segments: " + b"[" * 3_000,
            "not valid YAML at line 2, column 1: did not find expected node content"
            if yaml_text.SafeLoader is not yaml.SafeLoader
            else "not valid YAML: nested too deeply to read",
        ),
        (
            b"segments: " + b"[" * 3_000 + b"]" * 3_000,
            "not valid YAML: nested too deeply to read",
        ),
    ],
    ids=["control-character", "deep-yaml", "deep-yaml-closed"],
)
def test_unreadable_yaml_is_a_one_line_error(tmp_path, content, expected):
    path = tmp_path / "segments.yaml"
    path.write_bytes(content)
    with pytest.raises(DefinitionError) as raised:
        segment_dictionary.load(path)
    assert only_line(str(raised.value)).startswith(f"{path}: {expected}")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"id": ["dormant"]}, "id must be lower_snake_case"),
        ({"priority": [7]}, "segment 'dormant': priority must be a whole number, got [7]"),
        ({"kpis": {"retention": 0.5}}, "segment 'dormant': kpis must be a list of KPI targets"),
        ({"kpis": ["repeat rate"]}, "segment 'dormant': kpis[0]: expected a mapping, got str"),
    ],
    ids=["id-list", "priority-list", "kpis-mapping", "kpis-text"],
)
def test_wrongly_typed_fields_are_problems_not_tracebacks(
    tmp_path, default_document, change, expected
):
    segment(default_document, "dormant").update(change)
    assert expected in only_line(problems_for(tmp_path, default_document))


def test_business_rule_max_priority_must_be_a_whole_number(tmp_path, default_document):
    default_document["business_rules"][0]["max_priority"] = "two"
    message = only_line(problems_for(tmp_path, default_document))
    assert "business rule 'high_value_never_low_priority': max_priority must be a whole number" in (
        message
    )
