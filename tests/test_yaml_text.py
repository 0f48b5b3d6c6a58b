"""Configuration YAML is read with libyaml (segment_cadence/platform/yaml_text.py): the same
values as PyYAML's safe loader, and a document nested beyond reason is one line, not a
traceback from the code that walks it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from segment_cadence.cli import main
from segment_cadence.platform import paths, yaml_text

SHIPPED = sorted(p for p in (paths.REPO_ROOT / "config").rglob("*.y*ml"))


def test_libyaml_is_used_where_pyyaml_has_it():
    assert yaml_text.SafeLoader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(paths.REPO_ROOT)))
def test_every_shipped_file_reads_as_the_safe_loader_reads_it(path: Path):
    text = path.read_text()
    assert yaml_text.load(text) == yaml.safe_load(text)


def test_a_rule_nested_thousands_deep_is_one_line_from_validate(tmp_path, capsys):
    path = tmp_path / "segments.yaml"
    deep = "[" * 3_000 + "]" * 3_000
    path.write_text(f"version: 1\nsegments:\n  - id: a\n    rule: {deep}\n")
    assert main(["validate", str(path)]) != 0
    error = capsys.readouterr().err.strip()
    assert error == f"{path}: not valid YAML: nested too deeply to read (more than 100 levels)"


def nested(levels: int, leaf: object = 1) -> object:
    document = leaf
    for level in range(levels):
        document = [document] if level % 2 else {"k": document}
    return document


@given(st.integers(min_value=0, max_value=150))
def test_depth_counts_lists_and_mappings_and_load_refuses_beyond_the_limit(levels):
    document = nested(levels)
    assert yaml_text.depth(document) == min(levels, yaml_text.MAX_DEPTH + 1)
    text = yaml.safe_dump(document)
    if levels <= yaml_text.MAX_DEPTH:
        assert yaml_text.load(text) == document
    else:
        with pytest.raises(yaml.YAMLError, match="nested too deeply"):
            yaml_text.load(text)
