"""Definition versions: the approval ledger, the review gate, rollback, and changes in words.

Segment definitions are immutable except through review. The ledger
(config/approvals.yaml, committed, so every approval is itself a reviewable change in the
repository) lists each approved version: its number (v1, v2, ...), the digest of what it
governs, who asked, why, who approved and when, and a snapshot of the dictionary as
approved (config/versions/vN.yaml), which is what makes rollback exact.

The gate: a dictionary whose governed content (rules, order, pauses, status, business
rules) matches no approved version is refused before anything runs, with the changes in
words and the command that gets them approved. Edits that govern nothing (names,
descriptions, owners) pass the gate; the changelog still records them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from segment_cadence import definitions, paths

GOVERNED_FIELDS = ("rule", "priority", "paused", "pause_reason", "status", "fallback", "min_size")


class ApprovalError(RuntimeError):
    """A change that has not been through review, or an approval that breaks the rules."""


@dataclass(frozen=True)
class Version:
    number: int
    digest: str
    author: str
    reason: str
    approved_by: str
    approved_at: str
    snapshot: str
    kind: str = "approval"  # or "rollback"
    restores: int | None = None

    @property
    def label(self) -> str:
        return f"v{self.number}"


def ledger_file() -> Path:
    return Path(os.environ.get("SEGMENT_CADENCE_APPROVALS", paths.CONFIG_DIR / "approvals.yaml"))


def _read_ledger(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"rules": {"approvers": [], "four_eyes": True}, "versions": []}
    document = yaml.safe_load(path.read_text()) or {}
    document.setdefault("rules", {"approvers": [], "four_eyes": True})
    document.setdefault("versions", [])
    return document


def load_versions(path: Path | None = None) -> list[Version]:
    """Every entry of the ledger, oldest first."""
    return [Version(**entry) for entry in _read_ledger(path or ledger_file())["versions"]]


def digest_of(document: dict[str, Any]) -> str:
    """The governed digest of a dictionary document (validated first)."""
    return definitions.validate(
        document, "<dictionary>", definitions.feature_columns()
    ).governed_digest


def full_digest(path: Path) -> str:
    """Digest of the whole file, ungoverned text included (for recording edits)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def live_version(path: Path | None = None) -> Version | None:
    """The version in force: the latest approval or rollback."""
    versions = load_versions(path)
    return versions[-1] if versions else None


def version_for_digest(digest: str, path: Path | None = None) -> Version | None:
    """The first approved version with this governed digest."""
    return next(
        (v for v in load_versions(path) if v.digest == digest and v.kind == "approval"), None
    )


def _segments_by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in document.get("segments", []) if isinstance(s, dict) and "id" in s}


def describe_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What changed between two dictionaries, segment by segment, in a reviewer's words."""
    if old is None:
        return [f"first version: {len(new.get('segments', []))} segments"]
    lines: list[str] = []
    before, after = _segments_by_id(old), _segments_by_id(new)
    for segment_id, segment in after.items():
        if segment_id not in before:
            rule = segment.get("rule") or "fallback"
            lines.append(f"added segment '{segment_id}' ({segment.get('name')}) with rule `{rule}`")
            continue
        previous = before[segment_id]
        if segment.get("status") == "retired" and previous.get("status") != "retired":
            lines.append(
                f"retired segment '{segment_id}': {segment.get('retired_rationale', 'no rationale')}"
            )
            continue
        if previous.get("rule") != segment.get("rule"):
            lines.append(
                f"segment '{segment_id}': rule changed from `{previous.get('rule')}` "
                f"to `{segment.get('rule')}`"
            )
        if bool(previous.get("paused")) != bool(segment.get("paused")):
            state = "paused" if segment.get("paused") else "unpaused"
            why = f" ({segment.get('pause_reason')})" if segment.get("paused") else ""
            lines.append(f"segment '{segment_id}': {state}{why}")
        for field in ("priority", "min_size", "status"):
            if previous.get(field) != segment.get(field):
                lines.append(
                    f"segment '{segment_id}': {field} changed from {previous.get(field)} "
                    f"to {segment.get(field)}"
                )
        for field in ("name", "description", "owner"):
            if str(previous.get(field, "")).strip() != str(segment.get(field, "")).strip():
                lines.append(f"segment '{segment_id}': {field} edited (not governed)")
    for segment_id in before:
        if segment_id not in after:
            lines.append(f"removed segment '{segment_id}' from the dictionary")
    if old.get("business_rules") != new.get("business_rules"):
        lines.append("business rules changed")
    return lines or ["no changes"]


def check_approved(dictionary_path: Path | None = None, ledger: Path | None = None) -> Version:
    """The review gate: return the approved version of the dictionary in force, or refuse."""
    dictionary_path = Path(dictionary_path or paths.segments_file())
    ledger = ledger or ledger_file()
    document = yaml.safe_load(dictionary_path.read_text())
    dictionary = definitions.validate(document, dictionary_path, definitions.feature_columns())
    approved = version_for_digest(dictionary.governed_digest, ledger)
    if approved is not None:
        return approved
    live = live_version(ledger)
    live_document = yaml.safe_load(_snapshot_path(live, ledger).read_text()) if live else None
    changes = describe_changes(live_document, document)
    governed = [c for c in changes if "(not governed)" not in c]
    raise ApprovalError(
        f"{dictionary_path}: the segment definitions differ from the approved version "
        f"{live.label if live else '(none yet)'} and the change has not been approved:\n"
        + "\n".join(f"  - {c}" for c in governed)
        + "\nNothing was written; the last approved version stays live. To approve, a reviewer "
        "runs: segment-cadence definitions approve --author NAME --by REVIEWER --reason TEXT"
    )


def _snapshot_path(version: Version, ledger: Path) -> Path:
    snapshot = Path(version.snapshot)
    return snapshot if snapshot.is_absolute() else ledger.parent / snapshot


def _append(ledger: Path, entry: dict[str, Any]) -> Version:
    document = _read_ledger(ledger)
    document["versions"].append(entry)
    ledger.parent.mkdir(parents=True, exist_ok=True)
    partial = ledger.with_suffix(".yaml.partial")
    partial.write_text(
        "# The approval ledger: append-only. Use `segment-cadence definitions approve` and\n"
        "# `segment-cadence definitions rollback`; every entry is reviewed like code.\n"
        + yaml.safe_dump(document, sort_keys=False)
    )
    partial.replace(ledger)
    return Version(**entry)


def approve(
    *,
    author: str,
    approved_by: str,
    reason: str,
    dictionary_path: Path | None = None,
    ledger: Path | None = None,
    now: datetime | None = None,
) -> Version:
    """Approve the dictionary in force as a new version (or say it already is one)."""
    dictionary_path = Path(dictionary_path or paths.segments_file())
    ledger = ledger or ledger_file()
    if not reason.strip():
        raise ApprovalError("an approval needs a reason")
    rules = _read_ledger(ledger)["rules"]
    if rules.get("four_eyes", True) and author.strip().lower() == approved_by.strip().lower():
        raise ApprovalError(f"{approved_by} cannot approve their own change (four-eyes rule)")
    approvers = [a.lower() for a in rules.get("approvers", [])]
    if approvers and approved_by.lower() not in approvers:
        raise ApprovalError(
            f"{approved_by} is not an approver; approvers are: {', '.join(rules['approvers'])}"
        )
    document = yaml.safe_load(dictionary_path.read_text())
    digest = digest_of(document)
    existing = version_for_digest(digest, ledger)
    if existing is not None:
        raise ApprovalError(f"these definitions are already approved as {existing.label}")
    number = max((v.number for v in load_versions(ledger)), default=0) + 1
    snapshot = Path("versions") / f"v{number}.yaml"
    (ledger.parent / snapshot).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(dictionary_path, ledger.parent / snapshot)
    return _append(
        ledger,
        {
            "number": number,
            "digest": digest,
            "author": author,
            "reason": reason,
            "approved_by": approved_by,
            "approved_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
            "snapshot": str(snapshot),
            "kind": "approval",
            "restores": None,
        },
    )


def rollback(
    *,
    to: int,
    approved_by: str,
    reason: str,
    dictionary_path: Path | None = None,
    ledger: Path | None = None,
    now: datetime | None = None,
) -> Version:
    """Put an earlier approved version back in force, exactly, and record that it was done."""
    dictionary_path = Path(dictionary_path or paths.segments_file())
    ledger = ledger or ledger_file()
    target = next(
        (v for v in load_versions(ledger) if v.number == to and v.kind == "approval"), None
    )
    if target is None:
        raise ApprovalError(f"there is no approved version v{to} to roll back to")
    if not reason.strip():
        raise ApprovalError("a rollback needs a reason")
    shutil.copyfile(_snapshot_path(target, ledger), dictionary_path)
    number = max(v.number for v in load_versions(ledger)) + 1
    return _append(
        ledger,
        {
            "number": number,
            "digest": target.digest,
            "author": approved_by,
            "reason": reason,
            "approved_by": approved_by,
            "approved_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
            "snapshot": target.snapshot,
            "kind": "rollback",
            "restores": target.number,
        },
    )


def version_history(ledger: Path | None = None) -> list[dict[str, Any]]:
    """Each ledger entry with its changes in words against the entry before it."""
    ledger = ledger or ledger_file()
    history: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for version in load_versions(ledger):
        document = yaml.safe_load(_snapshot_path(version, ledger).read_text())
        if version.kind == "rollback":
            changes = [f"rolled back to v{version.restores}"] + [
                c for c in describe_changes(previous, document) if c != "no changes"
            ]
        else:
            changes = describe_changes(previous, document)
        history.append({"version": version, "changes": changes, "document": document})
        previous = document
    return history


def require_approver(name: str, ledger: Path | None = None) -> None:
    """Refuse anyone who is not an approver in the ledger (an empty list admits anyone)."""
    rules = _read_ledger(ledger or ledger_file())["rules"]
    approvers = [a.lower() for a in rules.get("approvers", [])]
    if approvers and name.strip().lower() not in approvers:
        raise ApprovalError(
            f"{name} is not an approver; approvers are: {', '.join(rules['approvers'])}"
        )
