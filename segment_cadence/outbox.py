"""The local outbox: notices that must not be lost, kept as JSON lines on disk.

With no Slack token set, this file is where on-call notices land. Writing is append-only
and one line per notice, so a crash mid-write loses at most the notice being written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from segment_cadence import paths


def outbox_file() -> Path:
    return paths.outbox_dir() / "notices.jsonl"


def append_notice(
    kind: str, summary: str, details: dict[str, Any], path: Path | None = None
) -> Path:
    """Append one notice; returns the file it went to."""
    target = path or outbox_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    notice = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "kind": kind,
        "summary": summary,
        "details": details,
    }
    with target.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(notice, default=str, sort_keys=True) + "\n")
    return target


def read_notices(path: Path | None = None) -> list[dict[str, Any]]:
    target = path or outbox_file()
    if not target.exists():
        return []
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line]
