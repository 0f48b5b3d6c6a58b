"""The approval ledger: changes in words, the review gate, four eyes, rollback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from segment_cadence import definitions, paths, versions


@pytest.fixture()
def ledger(tmp_path: Path, monkeypatch) -> Path:
    """A private copy of the ledger (with v1) and of the dictionary in force."""
    shutil.copy(paths.CONFIG_DIR / "approvals.yaml", tmp_path / "approvals.yaml")
    shutil.copytree(paths.CONFIG_DIR / "versions", tmp_path / "versions")
    shutil.copy(paths.SEGMENTS_FILE, tmp_path / "segments.yaml")
    monkeypatch.setenv("SEGMENT_CADENCE_APPROVALS", str(tmp_path / "approvals.yaml"))
    monkeypatch.setenv("SEGMENT_CADENCE_SEGMENTS", str(tmp_path / "segments.yaml"))
    return tmp_path / "approvals.yaml"


def edit(path: Path, segment_id: str, **changes) -> None:
    document = yaml.safe_load(path.read_text())
    segment = next(s for s in document["segments"] if s["id"] == segment_id)
    segment.update(changes)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_the_committed_dictionary_is_approved_as_v1():
    assert versions.check_approved().label == "v1"


def test_an_unapproved_rule_change_is_refused_in_words(ledger):
    edit(paths.segments_file(), "dormant", rule="frequency >= 1 and recency_days > 700")
    with pytest.raises(versions.ApprovalError) as refused:
        versions.check_approved()
    message = str(refused.value)
    assert "segment 'dormant': rule changed from `frequency >= 1 and recency_days > 730`" in message
    assert "last approved version stays live" in message
    assert "segment-cadence definitions approve" in message


def test_ungoverned_edits_pass_the_gate(ledger):
    edit(paths.segments_file(), "dormant", description="Reworded.", owner="someone-else")
    assert versions.check_approved().label == "v1"


def test_pause_changes_and_retirements_are_described(ledger):
    old = yaml.safe_load(paths.segments_file().read_text())
    edit(paths.segments_file(), "loyal_repeat", paused=True, pause_reason="Festive quiet period.")
    edit(
        paths.segments_file(),
        "dormant",
        status="retired",
        retired_rationale="Merged into occasional.",
    )
    changes = versions.describe_changes(old, yaml.safe_load(paths.segments_file().read_text()))
    assert "segment 'loyal_repeat': paused (Festive quiet period.)" in changes
    assert "retired segment 'dormant': Merged into occasional." in changes


def test_approval_needs_four_eyes_an_approver_and_a_reason(ledger):
    edit(paths.segments_file(), "dormant", rule="frequency >= 1 and recency_days > 700")
    with pytest.raises(versions.ApprovalError, match="own change"):
        versions.approve(author="operations-lead", approved_by="operations-lead", reason="x")
    with pytest.raises(versions.ApprovalError, match="not an approver"):
        versions.approve(author="asha", approved_by="asha-friend", reason="x")
    with pytest.raises(versions.ApprovalError, match="needs a reason"):
        versions.approve(author="asha", approved_by="revops-lead", reason=" ")
    approved = versions.approve(
        author="asha", approved_by="revops-lead", reason="Dormancy at 700 days."
    )
    assert approved.label == "v2"
    assert versions.check_approved().label == "v2"
    assert (ledger.parent / "versions" / "v2.yaml").exists()
    with pytest.raises(versions.ApprovalError, match="already approved as v2"):
        versions.approve(author="asha", approved_by="revops-lead", reason="again")


def test_rollback_restores_the_exact_dictionary_and_is_recorded(ledger):
    original = paths.segments_file().read_bytes()
    edit(paths.segments_file(), "dormant", rule="frequency >= 1 and recency_days > 700")
    versions.approve(author="asha", approved_by="revops-lead", reason="Dormancy at 700 days.")
    entry = versions.rollback(to=1, approved_by="operations-lead", reason="Too many moved.")
    assert paths.segments_file().read_bytes() == original
    assert entry.kind == "rollback" and entry.restores == 1 and entry.label == "v3"
    assert versions.check_approved().label == "v1"
    history = versions.version_history()
    assert history[-1]["changes"][0] == "rolled back to v1"
    with pytest.raises(versions.ApprovalError, match="no approved version v9"):
        versions.rollback(to=9, approved_by="operations-lead", reason="x")


@pytest.mark.parametrize("command", ["check", "approve"])
def test_a_non_utf8_dictionary_is_a_one_line_definition_error_at_the_gate(ledger, command):
    path = paths.segments_file()
    path.write_bytes(path.read_bytes().replace(b"name: ", b"name: Caf\xe9 ", 1))
    with pytest.raises(definitions.DefinitionError) as raised:
        if command == "check":
            versions.check_approved()
        else:
            versions.approve(author="asha", approved_by="revops-lead", reason="Café regulars.")
    message = str(raised.value)
    assert message.startswith(f"{path}: not UTF-8 text: byte 0xe9 at line ")
    assert "\n" not in message
    assert (ledger.parent / "versions" / "v2.yaml").exists() is False
