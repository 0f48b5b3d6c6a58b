"""`segment-cadence sources init|check`: the first hour with one's own export.

    segment-cadence sources init FILE... [--out sources.yaml]   a commented draft mapping
    segment-cadence sources check [--sources FILE]               a dry run of the ingest

`check` writes nothing: it loads every source into a scratch warehouse with the same rules
a refresh uses, prints per source the rows read, loaded and quarantined (by reason, with
one example row each), the dates covered and the months that can be refreshed, and exits
EXIT_UNREADABLE when a source cannot be read at all.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from segment_cadence.defs.ingest import draft, ingest, source_check
from segment_cadence.platform import paths

EXIT_CONFIG = 3  # the mapping (or another config file) is wrong
EXIT_UNREADABLE = 4  # a file is missing or cannot be read as the mapping says
EXIT_MONTH = 5  # a month outside the months that can be refreshed


def _mapping(args: argparse.Namespace) -> Path:
    return Path(args.sources).resolve() if args.sources else paths.sources_file()


def _origin(report: source_check.SourceReport) -> str:
    if report.origin != ingest.FROM_FILE:
        return report.origin
    if not report.files:
        return "(no file)"
    return report.files[0] + (f" and {len(report.files) - 1} more" if len(report.files) > 1 else "")


def print_report(report: source_check.CheckReport) -> None:
    for source in report.sources:
        print(f"{source.source:<18} {_origin(source)}")
        if source.error:
            print(f"  cannot load: {source.error}")
            continue
        print(
            f"  read {source.rows_read:,}  loaded {source.rows_loaded:,}  "
            f"quarantined {source.rows_quarantined:,}"
        )
        for refused in source.refused:
            record = json.dumps(refused.record, ensure_ascii=False)
            print(
                f"    {refused.reason}: {refused.rows:,}, e.g. row {refused.source_row}: {record}"
            )
        if source.first_day:
            print(f"  dates {source.first_day} to {source.last_day}")
    months = report.refreshable
    print(f"\nMonths that can be refreshed: {months.first:%Y-%m} to {months.last:%Y-%m}")


def cmd_check(args: argparse.Namespace) -> int:
    config = ingest.load_config(_mapping(args))
    report = source_check.check(config)
    print_report(report)
    return EXIT_UNREADABLE if report.unreadable else 0


def cmd_init(args: argparse.Namespace) -> int:
    text, drafts = draft.draft([Path(f) for f in args.files])
    out = Path(args.out)
    if out.exists() and not args.force:
        print(f"{out} exists; write elsewhere with --out, or replace it with --force")
        return EXIT_CONFIG
    out.write_text(text)
    for found in drafts:
        print(f"{found.path}: {found.source or 'not recognised'}")
        for note in found.notes:
            print(f"  - {note}")
    print(f"\nWrote {out}. Next: segment-cadence sources check --sources {out}")
    if not os.environ.get("SEGMENT_CADENCE_SOURCES"):
        print(f"Then: SEGMENT_CADENCE_SOURCES={out} segment-cadence refresh --month YYYY-MM")
    return 0 if any(d.source == "orders" for d in drafts) else EXIT_CONFIG


def add_commands(sub: argparse._SubParsersAction) -> None:
    sources = sub.add_parser("sources", help="draft and check the source mapping")
    actions = sources.add_subparsers(dest="action", required=True)
    init = actions.add_parser("init", help="write a draft mapping from a sample of each file")
    init.add_argument("files", nargs="+", metavar="FILE")
    init.add_argument("--out", default="sources.yaml", help="where to write (sources.yaml)")
    init.add_argument("--force", action="store_true", help="replace --out if it exists")
    init.set_defaults(func=cmd_init)
    check = actions.add_parser("check", help="read everything through the mapping; write nothing")
    check.add_argument("--sources", help="the mapping (default: SEGMENT_CADENCE_SOURCES or config)")
    check.set_defaults(func=cmd_check)
