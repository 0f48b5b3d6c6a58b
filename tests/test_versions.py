"""The approval ledger: changes in words, the review gate, four eyes, rollback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from segment_cadence.cli import main
from segment_cadence.defs.dictionary import segment_dictionary, versions
from segment_cadence.defs.segments import value
from segment_cadence.platform import paths


@pytest.fixture()
def ledger(tmp_path: Path, monkeypatch) -> Path:
    """A private ledger as it stood at v1 (the shipped ledger's first entry, its rules), with
    v1's dictionary and thresholds in force: every test below starts from one version."""
    shipped = yaml.safe_load((paths.CONFIG_DIR / "approvals.yaml").read_text())
    shipped["versions"] = [v for v in shipped["versions"] if v["number"] == 1]
    (tmp_path / "approvals.yaml").write_text(yaml.safe_dump(shipped, sort_keys=False))
    (tmp_path / "versions").mkdir()
    for name in ("v1.yaml", "v1.thresholds.yaml"):
        shutil.copy(paths.CONFIG_DIR / "versions" / name, tmp_path / "versions" / name)
    shutil.copy(paths.CONFIG_DIR / "versions" / "v1.yaml", tmp_path / "segments.yaml")
    shutil.copy(paths.CONFIG_DIR / "versions" / "v1.thresholds.yaml", tmp_path / "thresholds.yaml")
    monkeypatch.setenv("SEGMENT_CADENCE_APPROVALS", str(tmp_path / "approvals.yaml"))
    monkeypatch.setenv("SEGMENT_CADENCE_SEGMENTS", str(tmp_path / "segments.yaml"))
    monkeypatch.setenv("SEGMENT_CADENCE_THRESHOLDS", str(tmp_path / "thresholds.yaml"))
    return tmp_path / "approvals.yaml"


def edit(path: Path, segment_id: str, **changes) -> None:
    document = yaml.safe_load(path.read_text())
    segment = next(s for s in document["segments"] if s["id"] == segment_id)
    segment.update(changes)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_the_committed_dictionary_is_approved_as_v4_which_added_kpi_targets():
    assert versions.check_approved().label == "v4"
    assert len(segment_dictionary.load().kpi_targets) == 10
    assert segment_dictionary.load().churn_model == "mbgnbd"
    assert segment_dictionary.load().holdouts.salt == "jeweller-2026"
    v2 = segment_dictionary.load(paths.CONFIG_DIR / "versions" / "v2.yaml")
    assert v2.churn_model == "mbgnbd" and not v2.holdouts.active
    v1 = segment_dictionary.load(paths.CONFIG_DIR / "versions" / "v1.yaml")
    assert v1.churn_model == "bgnbd"  # a dictionary that names no model keeps BG/NBD


def test_changing_the_churn_model_is_a_governed_change_described_in_words(ledger):
    document = yaml.safe_load(paths.segments_file().read_text())
    document["churn_model"] = "bgnbd"  # the default written out: nothing changes
    paths.segments_file().write_text(yaml.safe_dump(document, sort_keys=False))
    assert versions.check_approved().label == "v1"
    document["churn_model"] = "mbgnbd"
    paths.segments_file().write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(versions.ApprovalError):
        versions.check_approved()
    approved = versions.approve(author="asha", approved_by="revops-lead", reason="MBG/NBD.")
    assert approved.label == "v2"
    changes = versions.version_history()[-1]["changes"]
    assert "churn model changed from bgnbd to mbgnbd (churn_likelihood is re-scored)" in changes


def test_an_unknown_churn_model_is_a_one_line_definition_error(ledger):
    document = yaml.safe_load(paths.segments_file().read_text())
    document["churn_model"] = "pareto_nbd"
    paths.segments_file().write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(segment_dictionary.DefinitionError) as error:
        segment_dictionary.load()
    assert str(error.value).endswith(
        "churn_model must be one of bgnbd, mbgnbd (see the README's churn section), got 'pareto_nbd'"
    )


def test_the_clv_assumptions_are_governed_and_described_in_words(ledger):
    document = yaml.safe_load(paths.segments_file().read_text())
    document["clv"] = {"horizon_months": 12, "monthly_discount_rate": 0.01}  # the defaults
    paths.segments_file().write_text(yaml.safe_dump(document, sort_keys=False))
    assert versions.check_approved().label == "v1"
    document["clv"] = {"horizon_months": 24, "monthly_discount_rate": 0.015}
    paths.segments_file().write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(versions.ApprovalError):
        versions.check_approved()
    approved = versions.approve(author="asha", approved_by="revops-lead", reason="Two years.")
    assert approved.label == "v2"
    assert segment_dictionary.load().clv == value.ClvAssumptions(24, 0.015)
    changes = versions.version_history()[-1]["changes"]
    assert (
        "CLV assumptions changed from 12 months at 1 % a month to 24 months at 1.5 % a month "
        "(clv is re-valued)"
    ) in changes


@pytest.mark.parametrize(
    ("clv", "says"),
    [
        (
            {"horizon_months": 0},
            "clv.horizon_months must be a whole number of months from 1 to 120, got 0",
        ),
        (
            {"horizon_months": 1.5},
            "clv.horizon_months must be a whole number of months from 1 to 120, got 1.5",
        ),
        (
            {"monthly_discount_rate": 1},
            "clv.monthly_discount_rate must be a number from 0 up to (not including) 1, for example 0.01 for 1 % a month; got 1",
        ),
        (
            {"monthly_discount_rate": "1%"},
            "clv.monthly_discount_rate must be a number from 0 up to (not including) 1, for example 0.01 for 1 % a month; got '1%'",
        ),
        (
            {"horizon": 12},
            "clv: unknown key 'horizon' (known: horizon_months, monthly_discount_rate)",
        ),
        (
            [12, 0.01],
            "clv: must be a mapping with horizon_months and monthly_discount_rate, got [12, 0.01]",
        ),
    ],
)
def test_clv_assumptions_out_of_range_are_a_one_line_definition_error(ledger, clv, says):
    document = yaml.safe_load(paths.segments_file().read_text())
    document["clv"] = clv
    paths.segments_file().write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(segment_dictionary.DefinitionError) as error:
        segment_dictionary.load()
    assert str(error.value).endswith(says)


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
    entry = versions.rollback(
        to=1, author="asha", approved_by="operations-lead", reason="Too many moved."
    )
    assert paths.segments_file().read_bytes() == original
    assert entry.kind == "rollback" and entry.restores == 1 and entry.label == "v3"
    assert versions.check_approved().label == "v1"
    history = versions.version_history()
    assert history[-1]["changes"][0] == "rolled back to v1"
    with pytest.raises(versions.ApprovalError, match="no approved version v9"):
        versions.rollback(to=9, author="asha", approved_by="operations-lead", reason="x")


def thresholds_in_force() -> Path:
    return paths.thresholds_file()


def edit_thresholds(change) -> None:
    """Apply `change` to the parsed thresholds file in force and write it back."""
    document = yaml.safe_load(thresholds_in_force().read_text())
    change(document)
    thresholds_in_force().write_text(yaml.safe_dump(document, sort_keys=False))


def rule(document: dict, rule_id: str) -> dict:
    return next(r for r in document["rules"] if r["id"] == rule_id)


def state(ledger: Path) -> dict[str, bytes]:
    """Every file the review path may write: the dictionary, thresholds, ledger, snapshots."""
    files = [paths.segments_file(), thresholds_in_force(), ledger]
    files += sorted((ledger.parent / "versions").iterdir())
    return {str(f): f.read_bytes() for f in files}


def candidate(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "candidate.yaml"
    shutil.copy(paths.segments_file(), path)
    edit(path, "dormant", **changes)
    return path


@pytest.mark.parametrize(
    ("by", "changes"),
    [
        ("asha", {"rule": "frequency >= 1 and recency_days > 700"}),  # four eyes
        ("intern", {"rule": "frequency >= 1 and recency_days > 700"}),  # not an approver
        ("revops-lead", {"rule": "no_such_column > 1"}),  # invalid candidate
        ("revops-lead", {"description": "Reworded."}),  # already approved as v1
    ],
)
def test_a_refused_candidate_approval_changes_nothing(ledger, tmp_path, capsys, by, changes):
    before = state(ledger)
    proposed = candidate(tmp_path, **changes)
    code = main(
        [
            "definitions",
            "approve",
            "--candidate",
            str(proposed),
            "--author",
            "asha",
            "--by",
            by,
            "--reason",
            "Dormancy at 700 days.",
        ]
    )
    assert code == 1
    assert capsys.readouterr().err
    assert state(ledger) == before


def test_an_approved_candidate_is_put_in_force_after_its_approval(ledger, tmp_path):
    proposed = candidate(tmp_path, rule="frequency >= 1 and recency_days > 700")
    code = main(
        [
            "definitions",
            "approve",
            "--candidate",
            str(proposed),
            "--author",
            "asha",
            "--by",
            "revops-lead",
            "--reason",
            "Dormancy at 700 days.",
        ]
    )
    assert code == 0
    assert paths.segments_file().read_bytes() == proposed.read_bytes()
    assert (ledger.parent / "versions" / "v2.yaml").read_bytes() == proposed.read_bytes()
    approved = versions.check_approved()
    assert (approved.label, approved.author, approved.approved_by) == ("v2", "asha", "revops-lead")


def test_a_rollback_by_a_non_approver_is_refused_and_changes_nothing(ledger, capsys):
    edit(paths.segments_file(), "dormant", rule="frequency >= 1 and recency_days > 700")
    versions.approve(author="asha", approved_by="revops-lead", reason="Dormancy at 700 days.")
    before = state(ledger)
    code = main(
        [
            "definitions",
            "rollback",
            "--to",
            "1",
            "--author",
            "asha",
            "--by",
            "intern",
            "--reason",
            "Too many moved.",
        ]
    )
    assert code == 1
    assert "intern is not an approver" in capsys.readouterr().err
    assert state(ledger) == before


def test_a_rollback_needs_four_eyes_like_an_approval(ledger):
    edit(paths.segments_file(), "dormant", rule="frequency >= 1 and recency_days > 700")
    versions.approve(author="asha", approved_by="revops-lead", reason="Dormancy at 700 days.")
    before = state(ledger)
    with pytest.raises(versions.ApprovalError, match="own change"):
        versions.rollback(to=1, author="revops-lead", approved_by="revops-lead", reason="x")
    assert state(ledger) == before
    code = main(
        [
            "definitions",
            "rollback",
            "--to",
            "1",
            "--author",
            "asha",
            "--by",
            "operations-lead",
            "--reason",
            "Too many moved.",
        ]
    )
    assert code == 0
    entry = versions.load_versions()[-1]
    assert (entry.kind, entry.author, entry.approved_by) == ("rollback", "asha", "operations-lead")


def test_a_thresholds_edit_is_refused_until_approved_under_its_own_version(ledger):
    edit_thresholds(lambda d: rule(d, "segment_size_change")["relative"].update(warn=0.3))
    with pytest.raises(versions.ApprovalError) as refused:
        versions.check_approved()
    message = str(refused.value)
    assert "thresholds: rule 'segment_size_change' changed" in message
    assert "relative.warn from 0.25 to 0.3" in message
    assert "segment-cadence definitions approve" in message
    approved = versions.approve(author="asha", approved_by="revops-lead", reason="Quieter sizes.")
    assert (approved.label, approved.approved_by) == ("v2", "revops-lead")
    assert versions.check_approved() == approved
    snapshot = ledger.parent / "versions" / "v2.thresholds.yaml"
    assert snapshot.read_bytes() == thresholds_in_force().read_bytes()
    assert approved.thresholds_digest == versions.thresholds_digest_of(thresholds_in_force())
    assert approved.digest == versions.load_versions()[0].digest  # the dictionary did not change


def test_the_publish_gate_bounds_are_governed(ledger):
    edit_thresholds(lambda d: d["publish_gate"]["max_quarantine_rate"].update(default=0.1))
    with pytest.raises(versions.ApprovalError) as refused:
        versions.check_approved()
    assert "publish_gate changed: max_quarantine_rate.default from 0.05 to 0.1" in str(
        refused.value
    )
    versions.approve(author="asha", approved_by="revops-lead", reason="A looser gate.")
    assert versions.check_approved().label == "v2"


def test_a_new_thresholds_section_is_governed(ledger):
    edit_thresholds(lambda d: d.update(annual_recalibration={"month": 1}))
    with pytest.raises(versions.ApprovalError, match="thresholds: annual_recalibration added"):
        versions.check_approved()


@pytest.mark.parametrize(
    ("setting", "value"),
    [("repeat_interval_hours", 12), ("ack_timeout_hours", 48), ("persist_refreshes", 5)],
)
def test_escalation_settings_are_governed(ledger, setting, value):
    edit_thresholds(lambda d: d["settings"].update({setting: value}))
    with pytest.raises(versions.ApprovalError, match=f"thresholds: setting '{setting}' changed"):
        versions.check_approved()


def test_defaults_are_governed(ledger):
    edit_thresholds(lambda d: d["defaults"].update(consecutive=2))
    with pytest.raises(versions.ApprovalError, match="thresholds: defaults changed"):
        versions.check_approved()


def route_elsewhere(document: dict) -> None:
    document["settings"]["owner_channels"]["crm-ops"] = "#crm-ops-2"
    document["settings"].update(
        default_channel="#health-2",
        escalation_channel="#oncall-2",
        oncall_mention="<!here>",
        dagster_url="https://dagster.example",
        review_channel="C0REVIEW",
        currency="EUR",
    )


def test_routing_settings_change_neither_the_approval_nor_the_definition_version(ledger):
    dictionary = segment_dictionary.load()
    before = segment_dictionary.definition_version(dictionary)
    edit_thresholds(route_elsewhere)
    assert versions.check_approved().label == "v1"
    assert segment_dictionary.definition_version(dictionary) == before
    # The file read is the one edited: a governed edit on top does move the version.
    edit_thresholds(lambda d: d["settings"].update(persist_refreshes=4))
    assert segment_dictionary.definition_version(dictionary) != before


def test_a_governed_thresholds_change_changes_the_definition_version(ledger):
    dictionary = segment_dictionary.load()
    before = segment_dictionary.definition_version(dictionary)
    edit_thresholds(lambda d: rule(d, "segment_size_change")["relative"].update(warn=0.3))
    assert segment_dictionary.definition_version(dictionary) != before


def test_a_ledger_entry_without_a_thresholds_digest_approves_no_thresholds(ledger):
    document = yaml.safe_load(ledger.read_text())
    for entry in document["versions"]:
        entry.pop("thresholds_digest", None)
        entry.pop("thresholds_snapshot", None)
    ledger.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(versions.ApprovalError, match="the thresholds need an approval"):
        versions.check_approved()


def test_rollback_restores_the_thresholds_exactly(ledger):
    original = thresholds_in_force().read_bytes()
    edit_thresholds(lambda d: rule(d, "churn_rising")["relative"].update(critical=0.4))
    versions.approve(author="asha", approved_by="revops-lead", reason="Churn is noisy.")
    versions.rollback(to=1, author="asha", approved_by="operations-lead", reason="Too quiet.")
    assert thresholds_in_force().read_bytes() == original
    assert versions.check_approved().label == "v1"


def test_history_and_status_show_thresholds_changes(ledger, capsys):
    edit_thresholds(lambda d: rule(d, "churn_rising")["relative"].update(critical=0.4))
    assert main(["definitions", "status"]) == 1
    assert "thresholds: rule 'churn_rising' changed" in capsys.readouterr().err
    versions.approve(author="asha", approved_by="revops-lead", reason="Churn is noisy.")
    assert main(["definitions", "history"]) == 0
    out = capsys.readouterr().out
    v2 = out[out.index("v2  approval") :]
    assert "thresholds: rule 'churn_rising' changed: relative.critical from 0.3 to 0.4" in v2


def test_every_shipped_snapshot_matches_its_recorded_digests():
    ledger = versions.ledger_file()
    for version in versions.load_versions(ledger):
        snapshot = ledger.parent / version.snapshot
        assert versions.digest_of(yaml.safe_load(snapshot.read_text())) == version.digest
        thresholds = ledger.parent / version.thresholds_snapshot
        assert versions.thresholds_digest_of(thresholds) == version.thresholds_digest


@pytest.mark.parametrize("command", ["check", "approve"])
def test_a_non_utf8_dictionary_is_a_one_line_definition_error_at_the_gate(ledger, command):
    path = paths.segments_file()
    path.write_bytes(path.read_bytes().replace(b"name: ", b"name: Caf\xe9 ", 1))
    with pytest.raises(segment_dictionary.DefinitionError) as raised:
        if command == "check":
            versions.check_approved()
        else:
            versions.approve(author="asha", approved_by="revops-lead", reason="Café regulars.")
    message = str(raised.value)
    assert message.startswith(f"{path}: not UTF-8 text: byte 0xe9 at line ")
    assert "\n" not in message
    assert (ledger.parent / "versions" / "v2.yaml").exists() is False
