"""Definition versions: the approval ledger, the review gate, rollback, and changes in words.

Segment definitions are immutable except through review. The ledger
(config/approvals.yaml, committed, so every approval is itself a reviewable change in the
repository) lists each approved version: its number (v1, v2, ...), the digests of what it
governs, who asked, why, who approved and when, and snapshots of the dictionary and of the
health thresholds as approved (config/versions/vN.yaml, vN.thresholds.yaml), which is what
makes rollback exact.

What is governed: the dictionary's rules, order, pauses, status and business rules
(`digest`), and the health thresholds file except its routing settings (`thresholds_digest`;
see thresholds.governed_digest). The gate: a dictionary and thresholds that match no single
approved version are refused before anything runs, with the changes in words and the
command that gets them approved. Edits that govern nothing (names, descriptions, owners,
channels) pass the gate; the changelog still records dictionary edits.

Approvals and rollbacks follow one rule (`check_reviewers`): an approver from the ledger,
not the person who asked. Every check runs before anything is written, so a refused
approval or rollback changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from segment_cadence.defs.dictionary import segment_dictionary
from segment_cadence.defs.health import thresholds
from segment_cadence.defs.health.scorecard import DEFAULT_MATURE_AFTER_MONTHS
from segment_cadence.defs.segments.churn import DEFAULT_MODEL
from segment_cadence.defs.segments.value import DEFAULT_CLV
from segment_cadence.platform import paths, yaml_text

LEDGER_HEADER = (
    "# The approval ledger: append-only. Use `segment-cadence definitions approve` and\n"
    "# `segment-cadence definitions rollback`; every entry is reviewed like code.\n"
)
BEFORE_THRESHOLDS = "was recorded before thresholds were part of the approval"
GOVERNED_FIELDS = ("rule", "priority", "paused", "pause_reason", "status", "fallback", "min_size")


class ApprovalError(RuntimeError):
    """A change that has not been through review, or an approval that breaks the rules."""


@dataclass(frozen=True)
class Version:
    """One ledger entry. `digest` is the dictionary's governed digest (as in every ledger);
    `thresholds_digest` is None in entries recorded before thresholds were governed, and such
    an entry approves no thresholds."""

    number: int
    digest: str
    author: str
    reason: str
    approved_by: str
    approved_at: str
    snapshot: str
    kind: str = "approval"  # or "rollback"
    restores: int | None = None
    thresholds_digest: str | None = None
    thresholds_snapshot: str | None = None

    @property
    def label(self) -> str:
        return f"v{self.number}"


@dataclass(frozen=True)
class GovernedFiles:
    """The dictionary and thresholds as read once from disk: validated, digested, and kept as
    bytes, so what is snapshotted and put in force is exactly what was checked."""

    dictionary_path: Path
    dictionary_bytes: bytes
    dictionary: dict[str, Any]
    digest: str
    thresholds_path: Path
    thresholds_bytes: bytes
    thresholds: dict[str, Any]
    thresholds_digest: str


def ledger_file() -> Path:
    return Path(os.environ.get("SEGMENT_CADENCE_APPROVALS", paths.CONFIG_DIR / "approvals.yaml"))


def _read_ledger(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"rules": {"approvers": [], "four_eyes": True}, "versions": []}
    document = segment_dictionary.read_document(path) or {}
    document.setdefault("rules", {"approvers": [], "four_eyes": True})
    document.setdefault("versions", [])
    return document


def load_versions(path: Path | None = None) -> list[Version]:
    """Every entry of the ledger, oldest first."""
    return [Version(**entry) for entry in _read_ledger(path or ledger_file())["versions"]]


def digest_of(document: dict[str, Any]) -> str:
    """The governed digest of a dictionary document (validated first)."""
    return segment_dictionary.validate(
        document, "<dictionary>", segment_dictionary.feature_columns()
    ).governed_digest


def thresholds_digest_of(path: Path | None = None) -> str:
    """The governed digest of a thresholds file (default: the one in force), as a ledger
    entry's `thresholds_digest` records it. Recompute an entry's value with this after
    changing the thresholds it approves, e.g.
    `python -c "from segment_cadence.defs.dictionary import versions; print(versions.thresholds_digest_of())"`.
    """
    return thresholds.governed_digest_of(path)


def full_digest(path: Path) -> str:
    """Digest of the whole file, ungoverned text included (for recording edits)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def live_version(path: Path | None = None) -> Version | None:
    """The version in force: the latest approval or rollback."""
    versions = load_versions(path)
    return versions[-1] if versions else None


def version_for_digest(digest: str, path: Path | None = None) -> Version | None:
    """The first approved version with this dictionary digest (thresholds not considered)."""
    return next(
        (v for v in load_versions(path) if v.digest == digest and v.kind == "approval"), None
    )


def version_for(digest: str, thresholds_digest: str, path: Path | None = None) -> Version | None:
    """The first approved version of exactly this dictionary and these thresholds."""
    return next(
        (
            v
            for v in load_versions(path)
            if v.kind == "approval"
            and v.digest == digest
            and v.thresholds_digest == thresholds_digest
        ),
        None,
    )


def _parse_dictionary(path: Path) -> tuple[bytes, dict[str, Any], str]:
    """The dictionary file's bytes, document and governed digest (validated)."""
    document = segment_dictionary.read_document(path)
    data = path.read_bytes()
    validated = segment_dictionary.validate(document, path, segment_dictionary.feature_columns())
    return data, document, validated.governed_digest


def _parse_thresholds(path: Path) -> tuple[bytes, dict[str, Any], str]:
    """The thresholds file's bytes, document and governed digest (validated)."""
    try:
        data = path.read_bytes()
        document = yaml_text.load(data)
    except FileNotFoundError:
        raise thresholds.ThresholdError(f"{path}: thresholds file not found") from None
    except yaml.YAMLError as error:
        raise thresholds.ThresholdError(f"{path}: not valid YAML: {error}") from None
    thresholds.validate(document, str(path))
    return data, document, thresholds.governed_digest(document)


def read_governed(
    dictionary_path: Path | None = None, thresholds_path: Path | None = None
) -> GovernedFiles:
    """Read, validate and digest the governed files (default: those in force)."""
    dictionary_path = Path(dictionary_path or paths.segments_file())
    thresholds_path = Path(thresholds_path or paths.thresholds_file())
    dictionary_bytes, dictionary, digest = _parse_dictionary(dictionary_path)
    thresholds_bytes, thresholds_document, thresholds_digest = _parse_thresholds(thresholds_path)
    return GovernedFiles(
        dictionary_path=dictionary_path,
        dictionary_bytes=dictionary_bytes,
        dictionary=dictionary,
        digest=digest,
        thresholds_path=thresholds_path,
        thresholds_bytes=thresholds_bytes,
        thresholds=thresholds_document,
        thresholds_digest=thresholds_digest,
    )


def _name(person: str) -> str:
    return person.strip().lower()


def check_reviewers(rules: dict[str, Any], *, author: str, approved_by: str) -> None:
    """The one rule for every change to what is in force, approval or rollback: someone asks,
    an approver listed in the ledger approves, and nobody approves their own change."""
    if not author.strip():
        raise ApprovalError("a change needs an author (who asks for it)")
    if rules.get("four_eyes", True) and _name(author) == _name(approved_by):
        raise ApprovalError(f"{approved_by} cannot approve their own change (four-eyes rule)")
    _check_approver(rules, approved_by)


def _check_approver(rules: dict[str, Any], name: str) -> None:
    approvers = rules.get("approvers") or []
    if approvers and _name(name) not in {_name(a) for a in approvers}:
        raise ApprovalError(f"{name} is not an approver; approvers are: {', '.join(approvers)}")


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
        was_share, now_share = (_share_text(d.get("holdout")) for d in (previous, segment))
        if was_share != now_share:
            lines.append(f"segment '{segment_id}': holdout changed from {was_share} to {now_share}")
        lines += _kpi_changes(segment, previous.get("kpis"))
        for field in ("name", "description", "owner"):
            if str(previous.get(field, "")).strip() != str(segment.get(field, "")).strip():
                lines.append(f"segment '{segment_id}': {field} edited (not governed)")
    for segment_id in before:
        if segment_id not in after:
            lines.append(f"removed segment '{segment_id}' from the dictionary")
    if old.get("business_rules") != new.get("business_rules"):
        lines.append("business rules changed")
    was, now = (d.get("churn_model", DEFAULT_MODEL) for d in (old, new))
    if was != now:
        lines.append(f"churn model changed from {was} to {now} (churn_likelihood is re-scored)")
    was_clv, now_clv = (_clv_text(d.get("clv")) for d in (old, new))
    if was_clv != now_clv:
        lines.append(f"CLV assumptions changed from {was_clv} to {now_clv} (clv is re-valued)")
    lines += _holdout_changes(old.get("holdouts"), new.get("holdouts"))
    was_after, now_after = (_mature_after(d) for d in (old, new))
    if was_after != now_after:
        lines.append(
            f"segments count as mature after {now_after} months instead of {was_after} "
            "(which KPI targets apply)"
        )
    return lines or ["no changes"]


def _mature_after(document: dict[str, Any]) -> Any:
    maturity = document.get("maturity")
    if isinstance(maturity, dict) and "mature_after_months" in maturity:
        return maturity["mature_after_months"]
    return DEFAULT_MATURE_AFTER_MONTHS


def _kpis_by_name(raw: Any) -> dict[str, dict[str, Any]]:
    items = raw if isinstance(raw, list) else []
    return {k["kpi"]: k for k in items if isinstance(k, dict) and "kpi" in k}


def _target_text(kpi: dict[str, Any]) -> str:
    """A KPI's target as written, in words: "at least 0.5", "new within [0, 1], mature ..."."""
    direction = str(kpi.get("direction", "")).replace("_", " ")
    target = kpi.get("target")
    if isinstance(target, dict):
        ages = [age for age in ("new", "mature") if age in target]
        return ", ".join(f"{age} {direction} {target[age]}" for age in ages)
    return f"{direction} {target}"


def _kpi_changes(segment: dict[str, Any], old: Any) -> list[str]:
    """Every KPI target of a segment added, removed or changed (target, owner, indicator,
    severity) since `old`, its KPIs before."""
    segment_id = segment["id"]
    before, after = _kpis_by_name(old), _kpis_by_name(segment.get("kpis"))
    lines = []
    for name, kpi in after.items():
        where = f"segment '{segment_id}': KPI {name}"
        if name not in before:
            lines.append(
                f"{where} added, target {_target_text(kpi)} ({kpi.get('indicator')}, "
                f"owner {kpi.get('owner') or segment.get('owner')})"
            )
            continue
        was = before[name]
        if _target_text(was) != _target_text(kpi):
            lines.append(f"{where}: target changed from {_target_text(was)} to {_target_text(kpi)}")
        for field in ("owner", "indicator", "severity"):
            if was.get(field) != kpi.get(field):
                lines.append(
                    f"{where}: {field} changed from {was.get(field, 'the default')} to "
                    f"{kpi.get(field, 'the default')}"
                )
    for name in before:
        if name not in after:
            lines.append(f"segment '{segment_id}': KPI {name} removed")
    return lines


def _share_text(value: Any) -> str:
    return f"{float(value or 0) * 100:g} %"


def _holdout_changes(old: Any, new: Any) -> list[str]:
    """A re-draw (a new salt) and a new global control share, in a reviewer's words."""
    old, new = (d if isinstance(d, dict) else {} for d in (old, new))
    lines = []
    if old.get("salt") != new.get("salt"):
        if old.get("salt") is None:
            lines.append(f"holdouts drawn with salt '{new.get('salt')}'")
        elif new.get("salt") is None:
            lines.append("holdouts removed: every customer is treated")
        else:
            lines.append(
                f"holdouts re-drawn: salt changed from '{old.get('salt')}' to "
                f"'{new.get('salt')}' (every holdout is drawn again)"
            )
    was, now = (_share_text(d.get("global_control")) for d in (old, new))
    if was != now:
        lines.append(f"global control changed from {was} to {now}")
    return lines


def _clv_text(raw: Any) -> str:
    """A dictionary's CLV assumptions as a reviewer reads them ("12 months at 1 % a month")."""
    raw = raw if isinstance(raw, dict) else {}
    horizon = raw.get("horizon_months", DEFAULT_CLV.horizon_months)
    rate = raw.get("monthly_discount_rate", DEFAULT_CLV.monthly_discount_rate)
    return f"{horizon} months at {float(rate) * 100:g} % a month"


def _show(value: Any) -> str:
    """A value as a reviewer reads it, close to how it is written in YAML."""
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items()) + "}"
    return json.dumps(value, default=str) if isinstance(value, str) else str(value)


def _same(old: Any, new: Any) -> bool:
    """Equal as the governed digest sees it (so 0 and 0.0 differ, as they do there)."""
    return json.dumps(old, sort_keys=True, default=str) == json.dumps(
        new, sort_keys=True, default=str
    )


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Leaf-by-leaf differences between two values, as 'a.b from X to Y'."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in [*old, *(k for k in new if k not in old)]:
            label = f"{where}.{key}" if where else str(key)
            if key not in new:
                found.append(f"{label} removed")
            elif key not in old:
                found.append(f"{label} added ({_show(new[key])})")
            else:
                found += _differences(old[key], new[key], label)
        return found
    if _same(old, new):
        return []
    if isinstance(old, str) and isinstance(new, str) and max(len(old), len(new)) > 40:
        return [f"{where} edited"]
    return [f"{where} from {_show(old)} to {_show(new)}"]


def _rules_by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in document.get("rules") or [] if isinstance(r, dict) and "id" in r}


def _describe_rules(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    before, after = _rules_by_id(old), _rules_by_id(new)
    for rule_id, rule in after.items():
        if rule_id not in before:
            lines.append(f"thresholds: added rule '{rule_id}' on {rule.get('metric')}")
        elif differences := _differences(before[rule_id], rule):
            lines.append(f"thresholds: rule '{rule_id}' changed: " + "; ".join(differences))
    lines += [f"thresholds: removed rule '{r}'" for r in before if r not in after]
    kept_before = [r for r in before if r in after]
    if kept_before != [r for r in after if r in before]:
        lines.append("thresholds: rule order changed")
    return lines


def _describe_settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    before, after = old.get("settings") or {}, new.get("settings") or {}
    for key in [*before, *(k for k in after if k not in before)]:
        if _same(before.get(key), after.get(key)):
            continue
        if key in thresholds.ROUTING_SETTINGS:
            lines.append(f"thresholds: routing setting '{key}' edited (not governed)")
        elif key not in after:
            lines.append(f"thresholds: setting '{key}' removed")
        elif key not in before:
            lines.append(f"thresholds: setting '{key}' added ({_show(after[key])})")
        else:
            lines.append(
                f"thresholds: setting '{key}' changed from {_show(before[key])} "
                f"to {_show(after[key])}"
            )
    return lines


def _describe_sections(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every other top-level section (defaults, publish_gate, anything added later)."""
    lines: list[str] = []
    for key in [*old, *(k for k in new if k not in old)]:
        if key in ("rules", "settings") or _same(old.get(key), new.get(key)):
            continue
        if key not in new:
            lines.append(f"thresholds: {key} removed")
        elif key not in old:
            lines.append(f"thresholds: {key} added: {_show(new[key])}")
        else:
            lines.append(
                f"thresholds: {key} changed: " + "; ".join(_differences(old[key], new[key]))
            )
    return lines


def describe_threshold_changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What changed between two thresholds documents, rule by rule and section by section,
    in a reviewer's words; routing edits are marked '(not governed)'. Empty: no change."""
    if old is None:
        return [f"thresholds: first approved with {len(new.get('rules') or [])} rules"]
    lines = _describe_rules(old, new) + _describe_settings(old, new) + _describe_sections(old, new)
    governed = [line for line in lines if "(not governed)" not in line]
    if not governed and thresholds.governed_digest(old) != thresholds.governed_digest(new):
        lines.append("thresholds: governed content changed")
    return lines


def _governed_only(changes: list[str]) -> list[str]:
    return [c for c in changes if "(not governed)" not in c and c != "no changes"]


def _snapshot_path(snapshot: str, ledger: Path) -> Path:
    path = Path(snapshot)
    return path if path.is_absolute() else ledger.parent / path


def _load_snapshot(snapshot: str | None, ledger: Path) -> dict[str, Any] | None:
    return segment_dictionary.read_document(_snapshot_path(snapshot, ledger)) if snapshot else None


def _changes_since(live: Version | None, found: GovernedFiles, ledger: Path) -> list[str]:
    """The governed changes of the files found against the version in force."""
    if live is None:
        return describe_changes(None, found.dictionary) + describe_threshold_changes(
            None, found.thresholds
        )
    changes = _governed_only(
        describe_changes(_load_snapshot(live.snapshot, ledger), found.dictionary)
    )
    if live.thresholds_snapshot is None:
        changes.append(
            f"thresholds: {live.label} {BEFORE_THRESHOLDS}, so it approves no thresholds; "
            "the thresholds need an approval"
        )
    else:
        old = _load_snapshot(live.thresholds_snapshot, ledger)
        changes += _governed_only(describe_threshold_changes(old, found.thresholds))
    return changes or [
        "this dictionary and these thresholds were never approved together in one version"
    ]


def check_approved(
    dictionary_path: Path | None = None,
    ledger: Path | None = None,
    thresholds_path: Path | None = None,
) -> Version:
    """The review gate: return the approved version of the dictionary and thresholds in
    force (both digests must match one approval), or refuse with the changes in words."""
    ledger = ledger or ledger_file()
    found = read_governed(dictionary_path, thresholds_path)
    approved = version_for(found.digest, found.thresholds_digest, ledger)
    if approved is not None:
        return approved
    live = live_version(ledger)
    changes = _changes_since(live, found, ledger)
    raise ApprovalError(
        f"{found.dictionary_path}, {found.thresholds_path}: the governed definitions differ "
        f"from the approved version {live.label if live else '(none yet)'} and the change has "
        "not been approved:\n"
        + "\n".join(f"  - {c}" for c in changes)
        + "\nNothing was written; the last approved version stays live. To approve, a reviewer "
        "runs: segment-cadence definitions approve --author NAME --by REVIEWER --reason TEXT"
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target, then replace it: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)


def _ledger_text(old_text: str | None, document: dict[str, Any], entry: dict[str, Any]) -> str:
    """The ledger with the entry appended. The existing text is kept as written (comments
    included) when appending to it parses to the expected ledger; otherwise it is re-dumped."""
    expected = {**document, "versions": [*document["versions"], entry]}
    if old_text:
        appended = old_text.rstrip("\n") + "\n" + yaml.safe_dump([entry], sort_keys=False)
        try:
            if yaml_text.load(appended) == expected:
                return appended
        except yaml.YAMLError:
            pass
    return LEDGER_HEADER + yaml.safe_dump(expected, sort_keys=False)


def _append(ledger: Path, entry: dict[str, Any]) -> Version:
    old_text = ledger.read_text() if ledger.exists() else None
    text = _ledger_text(old_text, _read_ledger(ledger), entry)
    _write_atomically(ledger, text.encode())
    return Version(**entry)


def _next_number(ledger: Path) -> int:
    return max((v.number for v in load_versions(ledger)), default=0) + 1


def _now(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds")


def approve(
    *,
    author: str,
    approved_by: str,
    reason: str,
    dictionary_path: Path | None = None,
    thresholds_path: Path | None = None,
    candidate: Path | None = None,
    ledger: Path | None = None,
    now: datetime | None = None,
) -> Version:
    """Approve the dictionary and thresholds in force as a new version, or a candidate
    dictionary with the thresholds in force. Every check runs before anything is written, so
    a refused approval changes nothing; a candidate is validated and approved where it is and
    put in force (atomically) only once its approval is recorded."""
    in_force = Path(dictionary_path or paths.segments_file())
    ledger = ledger or ledger_file()
    if not reason.strip():
        raise ApprovalError("an approval needs a reason")
    check_reviewers(_read_ledger(ledger)["rules"], author=author, approved_by=approved_by)
    found = read_governed(candidate or in_force, thresholds_path)
    existing = version_for(found.digest, found.thresholds_digest, ledger)
    if existing is not None:
        raise ApprovalError(f"these definitions are already approved as {existing.label}")
    number = _next_number(ledger)
    snapshot = Path("versions") / f"v{number}.yaml"
    thresholds_snapshot = Path("versions") / f"v{number}.thresholds.yaml"
    _write_atomically(ledger.parent / snapshot, found.dictionary_bytes)
    _write_atomically(ledger.parent / thresholds_snapshot, found.thresholds_bytes)
    version = _append(
        ledger,
        {
            "number": number,
            "digest": found.digest,
            "thresholds_digest": found.thresholds_digest,
            "author": author,
            "reason": reason,
            "approved_by": approved_by,
            "approved_at": _now(now),
            "snapshot": str(snapshot),
            "thresholds_snapshot": str(thresholds_snapshot),
            "kind": "approval",
            "restores": None,
        },
    )
    if candidate is not None:
        _write_atomically(in_force, found.dictionary_bytes)
    return version


def rollback(
    *,
    to: int,
    author: str,
    approved_by: str,
    reason: str,
    dictionary_path: Path | None = None,
    thresholds_path: Path | None = None,
    ledger: Path | None = None,
    now: datetime | None = None,
) -> Version:
    """Put an earlier approved version back in force, dictionary and thresholds exactly, and
    record it. Like an approval it needs an approver who is not the author, and every check
    runs before anything is written."""
    dictionary_path = Path(dictionary_path or paths.segments_file())
    thresholds_path = Path(thresholds_path or paths.thresholds_file())
    ledger = ledger or ledger_file()
    if not reason.strip():
        raise ApprovalError("a rollback needs a reason")
    check_reviewers(_read_ledger(ledger)["rules"], author=author, approved_by=approved_by)
    target = next(
        (v for v in load_versions(ledger) if v.number == to and v.kind == "approval"), None
    )
    if target is None:
        raise ApprovalError(f"there is no approved version v{to} to roll back to")
    if target.thresholds_snapshot is None:
        raise ApprovalError(
            f"{target.label} {BEFORE_THRESHOLDS} and has no thresholds snapshot, so it cannot "
            "be restored exactly; approve what it should restore as a new version instead"
        )
    dictionary_bytes = _snapshot_path(target.snapshot, ledger).read_bytes()
    thresholds_bytes = _snapshot_path(target.thresholds_snapshot, ledger).read_bytes()
    number = _next_number(ledger)
    _write_atomically(dictionary_path, dictionary_bytes)
    _write_atomically(thresholds_path, thresholds_bytes)
    return _append(
        ledger,
        {
            "number": number,
            "digest": target.digest,
            "thresholds_digest": target.thresholds_digest,
            "author": author,
            "reason": reason,
            "approved_by": approved_by,
            "approved_at": _now(now),
            "snapshot": target.snapshot,
            "thresholds_snapshot": target.thresholds_snapshot,
            "kind": "rollback",
            "restores": target.number,
        },
    )


def _entry_changes(
    version: Version,
    previous: tuple[dict[str, Any] | None, dict[str, Any] | None],
    current: tuple[dict[str, Any], dict[str, Any] | None],
) -> list[str]:
    """A ledger entry's changes in words: dictionary, then thresholds."""
    (old_dictionary, old_thresholds), (dictionary, thresholds_document) = previous, current
    changes = [c for c in describe_changes(old_dictionary, dictionary) if c != "no changes"]
    if thresholds_document is None:
        changes.append(f"thresholds: not part of this entry (it {BEFORE_THRESHOLDS})")
    else:
        changes += describe_threshold_changes(old_thresholds, thresholds_document)
    if version.kind == "rollback":
        return [f"rolled back to v{version.restores}", *changes]
    return changes or ["no changes"]


def version_history(ledger: Path | None = None) -> list[dict[str, Any]]:
    """Each ledger entry with its changes in words against the entry before it."""
    ledger = ledger or ledger_file()
    history: list[dict[str, Any]] = []
    previous: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None)
    for version in load_versions(ledger):
        document = segment_dictionary.read_document(_snapshot_path(version.snapshot, ledger))
        current = (document, _load_snapshot(version.thresholds_snapshot, ledger))
        changes = _entry_changes(version, previous, current)
        history.append({"version": version, "changes": changes, "document": document})
        previous = current
    return history


def require_approver(name: str, ledger: Path | None = None) -> None:
    """Refuse anyone the ledger does not list as an approver (for acts that are not a
    definition change, such as releasing a month the publish gate held)."""
    _check_approver(_read_ledger(ledger or ledger_file())["rules"], name)
