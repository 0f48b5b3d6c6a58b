"""The changelog: an append-only record of versions, edits, publications and review packs.

Every entry has an identity (`entry_id`) derived from what it records, so rebuilding the
changelog any number of times adds each entry once. Entries are never updated or deleted.
The changelog, the archive of retired segments and the definition versions are governance
records in the state store (changelog, retired_segments, definition_versions); what they
are built from that the runs publish (publications, segment sizes) is read from the warehouse.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
from sqlalchemy import Connection, delete, insert, select

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
            )
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
        c
        for c in versions.describe_changes(segment_dictionary.read_document(snapshot), document)
        if "(not governed)" in c
    ]
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
        )
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
        )
        for month, version, label, customers, sizes in rows
    ]


def review_pack_entries(state: Connection) -> list[Entry]:
    """Monthly review packs, once the review pack asset records them (in the state store)."""
    packs = state_store.review_packs.c
    rows = state.execute(select(packs.month_end, packs.path).order_by(packs.month_end)).all()
    return [
        Entry(
            f"review_pack:{month}",
            "review_pack",
            None,
            None,
            month,
            f"Review pack for {month:%B %Y}: {path}",
        )
        for month, path in rows
    ]


def record(state: Connection, entries: list[Entry]) -> list[Entry]:
    """Append the entries not yet recorded; return those added."""
    known = set(state.execute(select(state_store.changelog.c.entry_id)).scalars())
    added = [e for e in entries if e.entry_id not in known]
    if added:
        now = datetime.now(UTC).replace(tzinfo=None)
        state.execute(
            insert(state_store.changelog),
            [{"recorded_at": now, **asdict(e)} for e in added],
        )
    return added


def record_definition_version(
    state: Connection, definition_version: str, approved: versions.Version
) -> None:
    """Record which approval the definition version in force is (v1, v2, ... with author,
    reason and approver), replacing an earlier record of the same version. Its changelog
    entry is added when the run reaches the changelog (refresh_changelog), as before: a
    version whose run fails before publishing is on record here, not in the changelog."""
    versions_table = state_store.definition_versions
    state.execute(
        delete(versions_table).where(versions_table.c.definition_version == definition_version)
    )
    state.execute(
        insert(versions_table).values(
            definition_version=definition_version,
            version_number=approved.number,
            governed_digest=approved.digest,
            author=approved.author,
            reason=approved.reason,
            approved_by=approved.approved_by,
            approved_at=approved.approved_at,
            recorded_at=datetime.now(UTC).replace(tzinfo=None),
        )
    )


def _last_published_size(con: duckdb.DuckDBPyConnection, segment_id: str) -> tuple | None:
    if not table_exists(con, "published", "segment_kpis"):
        return None
    return con.execute(
        "select customers, month_end from published.segment_kpis "
        "where segment_id = ? and customers > 0 order by month_end desc limit 1",
        [segment_id],
    ).fetchone()


def archive_retired(
    state: Connection, con: duckdb.DuckDBPyConnection, ledger: Path | None = None
) -> int:
    """Keep every retired segment with its rationale and its last published size."""
    added = 0
    known = set(state.execute(select(state_store.retired_segments.c.segment_id)).scalars())
    for item in versions.version_history(ledger):
        for segment in item["document"].get("segments", []):
            if segment.get("status") != "retired" or segment["id"] in known:
                continue
            last = _last_published_size(con, segment["id"])
            state.execute(
                insert(state_store.retired_segments).values(
                    segment_id=segment["id"],
                    segment_name=segment.get("name"),
                    rationale=segment.get("retired_rationale"),
                    retired_in_version=item["version"].label,
                    last_size=last[0] if last else None,
                    last_published_month=last[1] if last else None,
                    recorded_at=datetime.now(UTC).replace(tzinfo=None),
                )
            )
            known.add(segment["id"])
            added += 1
    return added


def refresh_changelog(state: Connection, con: duckdb.DuckDBPyConnection) -> list[Entry]:
    """Bring the changelog and the archive of retired segments up to date from the ledger,
    the dictionary and the warehouse, all in the caller's state-store transaction: each
    version's entry, the edits, publications and review packs are recorded together or not
    at all."""
    entries = (
        version_entries() + edit_entries() + publication_entries(con) + review_pack_entries(state)
    )
    added = record(state, entries)
    archive_retired(state, con)
    return added


def recent_entries(state: Connection, limit: int = 15) -> list[tuple]:
    """The newest entries (recorded at, kind, version label, summary), newest first."""
    c = state_store.changelog.c
    return [
        tuple(r)
        for r in state.execute(
            select(c.recorded_at, c.kind, c.version_label, c.summary)
            .order_by(c.recorded_at.desc(), c.entry_id.desc())
            .limit(limit)
        )
    ]


def retired_archive(state: Connection) -> list[tuple]:
    """The archive of retired segments: id, rationale, retired in version, last size."""
    c = state_store.retired_segments.c
    return [
        tuple(r)
        for r in state.execute(
            select(c.segment_id, c.rationale, c.retired_in_version, c.last_size).order_by(
                c.segment_id
            )
        )
    ]
