"""The changelog: an append-only record of versions, edits, publications and review packs.

Every entry has an identity (`entry_id`) derived from what it records, so rebuilding the
changelog any number of times adds each entry once. Entries are never updated or deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
from sqlalchemy import select

from segment_cadence.defs.dictionary import segment_dictionary, versions
from segment_cadence.platform import paths, state_store
from segment_cadence.platform.warehouse import table_exists


@dataclass(frozen=True)
class Entry:
    entry_id: str
    kind: str
    version_label: str | None
    definition_version: str | None
    month_end: date | None
    summary: str


def version_entries(ledger: Path | None = None) -> list[Entry]:
    entries = []
    for item in versions.version_history(ledger):
        version: versions.Version = item["version"]
        verb = "rolled back" if version.kind == "rollback" else "approved"
        header = (
            f"{version.label} {verb} by {version.approved_by} on {version.approved_at[:10]} "
            f"(asked by {version.author}): {version.reason}"
        )
        body = "\n".join(f"- {line}" for line in item["changes"])
        entries.append(
            Entry(
                f"version:{version.number}",
                version.kind,
                version.label,
                None,
                None,
                f"{header}\n{body}",
            )  # fmt: skip
        )
    return entries


def edit_entries(dictionary_path: Path | None = None, ledger: Path | None = None) -> list[Entry]:
    """Ungoverned edits (names, descriptions, owners) made since the version was approved."""
    dictionary_path = Path(dictionary_path or paths.segments_file())
    ledger = ledger or versions.ledger_file()
    document = segment_dictionary.read_document(dictionary_path)
    approved = versions.version_for_digest(versions.digest_of(document), ledger)
    if approved is None:
        return []
    snapshot = ledger.parent / approved.snapshot
    if versions.full_digest(snapshot) == versions.full_digest(dictionary_path):
        return []
    changes = [
        c for c in versions.describe_changes(segment_dictionary.read_document(snapshot), document)
        if "(not governed)" in c
    ]  # fmt: skip
    if not changes:
        return []
    return [
        Entry(
            f"edit:{versions.full_digest(dictionary_path)[:16]}",
            "edit",
            approved.label,
            None,
            None,
            "Edits that need no approval:\n" + "\n".join(f"- {c}" for c in changes),
        )  # fmt: skip
    ]


def publication_entries(con: duckdb.DuckDBPyConnection) -> list[Entry]:
    if not table_exists(con, "published", "publications"):
        return []
    rows = con.execute(
        "select p.month_end, p.definition_version, p.version_label, p.customers, "
        "string_agg(k.segment_id || ' ' || k.customers, ', ' order by k.customers desc) "
        "from published.publications p left join published.segment_kpis k using (month_end) "
        "group by all order by p.month_end"
    ).fetchall()
    return [
        Entry(
            f"published:{month}:{version}",
            "publication",
            label,
            version,
            month,
            f"Published {month:%B %Y} with {label or version}: {customers:,} customers ({sizes})",
        )  # fmt: skip
        for month, version, label, customers, sizes in rows
    ]


def review_pack_entries() -> list[Entry]:
    """Monthly review packs, once the review pack asset records them (in the state store)."""
    packs = state_store.review_packs.c
    with state_store.transaction() as state:
        rows = state.execute(select(packs.month_end, packs.path).order_by(packs.month_end)).all()
    return [
        Entry(
            f"review_pack:{month}",
            "review_pack",
            None,
            None,
            month,
            f"Review pack for {month:%B %Y}: {path}",
        )  # fmt: skip
        for month, path in rows
    ]


def record(con: duckdb.DuckDBPyConnection, entries: list[Entry]) -> list[Entry]:
    """Append the entries not yet recorded; return those added."""
    known = {row[0] for row in con.execute("select entry_id from governance.changelog").fetchall()}
    added = [e for e in entries if e.entry_id not in known]
    if added:
        con.executemany(
            "insert into governance.changelog values (?, current_timestamp, ?, ?, ?, ?, ?)",
            [
                (e.entry_id, e.kind, e.version_label, e.definition_version, e.month_end, e.summary)
                for e in added
            ],  # fmt: skip
        )
    return added


def archive_retired(con: duckdb.DuckDBPyConnection, ledger: Path | None = None) -> int:
    """Keep every retired segment with its rationale and its last published size."""
    added = 0
    known = {
        r[0] for r in con.execute("select segment_id from governance.retired_segments").fetchall()
    }
    for item in versions.version_history(ledger):
        for segment in item["document"].get("segments", []):
            if segment.get("status") != "retired" or segment["id"] in known:
                continue
            last = None
            if table_exists(con, "published", "segment_kpis"):
                last = con.execute(
                    "select customers, month_end from published.segment_kpis "
                    "where segment_id = ? and customers > 0 order by month_end desc limit 1",
                    [segment["id"]],
                ).fetchone()
            con.execute(
                "insert into governance.retired_segments values (?, ?, ?, ?, ?, ?, current_timestamp)",
                [
                    segment["id"],
                    segment.get("name"),
                    segment.get("retired_rationale"),
                    item["version"].label,
                    last[0] if last else None,
                    last[1] if last else None,
                ],  # fmt: skip
            )
            known.add(segment["id"])
            added += 1
    return added


def refresh_changelog(con: duckdb.DuckDBPyConnection) -> list[Entry]:
    """Bring the changelog up to date from the ledger, the dictionary and the warehouse."""
    entries = version_entries() + edit_entries() + publication_entries(con) + review_pack_entries()
    added = record(con, entries)
    archive_retired(con)
    return added
