"""`segment-cadence`: the command line for people and for the set-up scripts.

    segment-cadence demo                 generate example data if none, refresh recent months
    segment-cadence refresh --month 2026-10 [--months 3]
    segment-cadence generate --customers 1000000
    segment-cadence validate [FILE]      check a segment dictionary
    segment-cadence parse                prepare dbt's manifest (if missing or stale)
    segment-cadence sizes [--month M]    published segment sizes
    segment-cadence release --month M --by APPROVER --reason TEXT   publish a held month
    segment-cadence definitions status|history|approve|rollback
    segment-cadence alerts list|run|ack|silence|unsilence   on the state store, never the warehouse
    segment-cadence state migrate        move an older warehouse's alerts and firewall records
    segment-cadence campaign check|override FILE   the campaign firewall
    segment-cadence audit customer|dispute ID      the audit trail
    segment-cadence lint [FILE ...]                retired language

The Dagster code location (and with it the dbt manifest, built on import if missing) is
imported only by the commands that run a job, and so are the platform modules that import
Dagster (the instance storage, the reaper, the run origin, the dbt preparer), so `parse`,
`validate` and the read commands start fast and work before a manifest exists; every other
import is at the top.

Refreshes run the same Dagster job the schedule runs, recorded in the local Dagster
instance (var/dagster_home) with the code location's origin, so they show in the UI on the
job's page like runs launched there (segment_cadence/platform/run_origin.py). Commands take
turns at the warehouse (segment_cadence/platform/warehouse_lock.py): a refresh waits for the
one before it; a command that finds a refresh writing waits briefly, then says so in one line
and exits 2. The alert commands and the records of campaign checks, overrides and disputes
use the state store (segment_cadence/platform/state_store.py), so they do not wait for a
refresh.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import segment_cadence.cli.churn as cli_churn
import segment_cadence.cli.governance as cli_governance
import segment_cadence.cli.sources as cli_sources
import segment_cadence.cli.terminal as terminal
from segment_cadence.defs.alerting import alerts, slack
from segment_cadence.defs.alerting.alert_tick import activity_since, run_tick
from segment_cadence.defs.alerting.outbox import record_refresh_failure, step_failure_text
from segment_cadence.defs.dictionary import segment_dictionary, versions
from segment_cadence.defs.health import thresholds
from segment_cadence.defs.ingest import ingest
from segment_cadence.defs.segments import gate, publish
from segment_cadence.example import generator as example_generator
from segment_cadence.platform import history, paths, state_store, warehouse, warehouse_lock
from segment_cadence.platform.months import (
    MonthNotUnderstood,
    last_complete_month,
    month_end,
    months_between,
    parse_month,
    previous_month,
    quarter_start,
)

if TYPE_CHECKING:
    import dagster as dg

EXIT_BUSY = 2


def prepare_dagster_home() -> Path:
    """Point Dagster at the local instance, creating it from the template if new."""
    home = paths.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        from segment_cadence.platform.instance_storage import instance_yaml

        (home / "dagster.yaml").write_text(instance_yaml(home.resolve()))
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_parse(_: argparse.Namespace) -> int:
    from segment_cadence.platform.resources import prepare_dbt_project

    print(f"dbt manifest: {prepare_dbt_project()}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        dictionary = segment_dictionary.load(args.file)
        version = segment_dictionary.definition_version(dictionary)
    except (segment_dictionary.DefinitionError, thresholds.ThresholdError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"{args.file}: {len(dictionary.segments)} active segments, valid")
    print(f"definition version: {version}")
    for warning in dictionary.warnings:
        print(f"warning: {warning}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:

    config = example_generator.GeneratorConfig(
        customers=args.customers,
        end_month=args.end_month or last_complete_month(date.today()).strftime("%Y-%m"),
        history_months=args.history_months,
        seed=args.seed,
        orders_per_customer=args.orders_per_customer,
    )
    out = Path(args.out) if args.out else paths.raw_dir()
    started = time.perf_counter()
    counts = example_generator.generate(out, config, progress=not args.no_progress)
    print(f"wrote {out} in {time.perf_counter() - started:.1f}s:")
    for table, rows in counts.items():
        print(f"  {table:<20} {rows:>12,}")
    return 0


def cmd_strategic(args: argparse.Namespace) -> int:
    """Run the quarterly strategic refresh for a quarter (a candidate, never published)."""
    prepare_dagster_home()
    import dagster as dg

    from segment_cadence.definitions import defs

    text = args.quarter.upper()
    if "Q" in text:
        year, quarter = text.split("-Q")
        start = date(int(year), (int(quarter) - 1) * 3 + 1, 1)
    else:
        start = quarter_start(parse_month(text))
    job = defs.resolve_job_def("quarterly_strategic_refresh")
    with (
        dg.DagsterInstance.get() as instance,
        warehouse_lock.writer(f"the strategic refresh of {text}", on_wait=say),
    ):
        result = execute_in_this_process(job, start.isoformat(), instance)
    if not result.success:
        print("strategic refresh failed; see the run in the Dagster UI", file=sys.stderr)
        return 1
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        print(f"candidate: {metadata['candidate_file'].value}")
        for key in (
            "chosen_k",
            "clusters_kept",
            "bootstrap_ari_mean",
            "previous_quarter_ari",
            "rule_fidelity",
            "unchanged_share",
            "business_rule_violations",
        ):
            print(f"  {key}: {metadata[key].value}")
        print(metadata["sizes"].value)
    return 0


def say(line: str) -> None:
    """A line for the person at the terminal, at once (not when the buffer fills)."""
    print(line, flush=True)


def execute_in_this_process(
    job: dg.JobDefinition,
    partition_key: str,
    instance: dg.DagsterInstance,
    tags: dict[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run a job here, in the local instance, tagged with this process so that the dead-run
    reaper can fail the run if the process is killed (the daemon cannot see it), and with
    the code location's origin, so that the run shows on its job's page in the UI
    (segment_cadence/platform/run_origin.py)."""
    from segment_cadence.platform import run_origin
    from segment_cadence.platform.reaper import process_tags

    origin = run_origin.remote_job_origin(job.name)
    result = job.execute_in_process(
        partition_key=partition_key,
        instance=instance,
        raise_on_error=False,
        tags={**process_tags(), **run_origin.origin_tags(origin), **(tags or {})},
        # The run's events stay in the instance (and the UI); the terminal shows a line per
        # step (segment_cadence/platform/progress.py), and warnings and errors.
        run_config={
            "loggers": {
                "console": {"config": {"log_level": "WARNING"}},
                "terminal_progress": {"config": {"steps": len(job.graph.nodes)}},
            }
        },
    )
    run_origin.record_origin(instance, result.run_id, origin)
    return result


def months_label(months: list[date]) -> str:
    first, last = f"{months[0]:%Y-%m}", f"{months[-1]:%Y-%m}"
    return first if first == last else f"{first} to {last}"


@contextmanager
def refresh_turn(months: list[date]) -> Iterator[None]:
    """The writer's turn for refreshing these months; says once whom it waits for."""
    label = months_label(months)
    with warehouse_lock.writer(warehouse_lock.refresh_activity(label), months=label, on_wait=say):
        yield


def notice_failure(result: dg.ExecuteInProcessResult, month: date) -> None:
    """The refresh-failure notice for a run of ours: the run-failure sensor does not see runs
    started outside the daemon, and writes the same notice only once if it does."""

    failure = next((e for e in result.all_events if e.is_run_failure), None)
    failures = result.get_step_failure_events()
    record_refresh_failure(
        result.run_id,
        month.isoformat(),
        [e.step_key for e in failures if e.step_key],
        step_failure_text(failures) or (failure.message if failure else None),
    )


def run_months(months: list[date], full_rebuild: bool = False) -> bool:
    """Run the monthly refresh job for each month, in order; stop at the first failure.

    First fails the runs left unfinished by a process that died (the dead-run reaper). Each
    run holds the writer's turn, so a second refresh waits for this one, and a failed run
    leaves the refresh-failure notice."""
    prepare_dagster_home()
    import dagster as dg

    from segment_cadence.definitions import defs
    from segment_cadence.platform.reaper import reap_dead_runs

    job = defs.resolve_job_def("monthly_refresh")
    with dg.DagsterInstance.get() as instance:
        for run_id in reap_dead_runs(instance):
            say(f"  run {run_id[:8]} was left unfinished by a process that died; marked failed")
        for month in months:
            with refresh_turn([month]):
                before = publication_record(month)
                started = time.perf_counter()
                result = execute_in_this_process(
                    job,
                    month.isoformat(),
                    instance,
                    tags={"segment_cadence/full_rebuild": "true"} if full_rebuild else None,
                )
                elapsed = time.perf_counter() - started
                status, hold = publication_status(month, before, result.run_id, result.success)
            print(f"  {month:%Y-%m}  {status}  ({elapsed:.1f}s, run {result.run_id[:8]})")
            if not result.success:
                notice_failure(result, month)
            if hold is not None:
                for finding in hold.findings:
                    print(f"    - {finding.message}", file=sys.stderr)
                print(
                    f"    To publish it anyway, an approver runs: segment-cadence release "
                    f"--month {month:%Y-%m} --by APPROVER --reason TEXT",
                    file=sys.stderr,
                )
                return False
            if not result.success:
                said = step_failure_text(result.get_step_failure_events())
                if said:
                    print(f"    step {said}", file=sys.stderr)
                for event in [] if said else result.all_events:
                    if event.is_failure and event.step_key:
                        print(f"    step {event.step_key}: {event.message}", file=sys.stderr)
                return False
    return True


def publication_record(month: date) -> tuple[str, object] | None:
    """(run id, published at) of the month's publication in force, if any."""

    if not paths.warehouse_path().exists():
        return None
    with warehouse.connect(read_only=True) as con:
        if not warehouse.table_exists(con, "published", "publications"):
            return None
        return con.execute(
            "select run_id, published_at from published.publications where month_end = ?",
            [month_end(month)],
        ).fetchone()


def publication_status(month: date, before: tuple | None, run_id: str, success: bool):
    """What a run did to the month, read from the publication record, never guessed from
    which steps ran: the record is what every reader follows."""

    after = publication_record(month)
    if after is not None and after[0] == run_id:
        return ("published" if success else "published, but a later step FAILED"), None
    with warehouse.connect(read_only=True) as con, state_store.transaction() as state:
        hold = gate.latest_hold(state, month_end(month), con)
    if hold is not None and hold.run_id == run_id:
        return "HELD by the publish gate (last published month unchanged)", hold
    if after != before:
        return f"FAILED (the published month changed meanwhile: run {after[0][:8]})", None
    return "FAILED (last published month unchanged)", None


def print_results(month: date) -> None:

    end = month_end(month)
    with warehouse_lock.command_connection("sizes", read_only=True) as con:
        rows = con.execute(
            "select segment_id, paused, customers, share from published.segment_kpis "
            "where month_end = ? order by customers desc",
            [end],
        ).fetchall()
        version, export = con.execute(
            "select definition_version, export_path from published.publications where month_end = ?",
            [end],
        ).fetchone() or (None, None)
        quarantined = con.execute(
            "select source, count(*) from quarantine.rejected_rows group by 1 order by 1"
        ).fetchall()
        flags = (
            con.execute(
                "select metric, value, evaluated from governance.red_flags where month_end = ?",
                [end],
            ).fetchall()
            if warehouse.table_exists(con, "governance", "red_flags")
            else []
        )
    print()
    print(f"Warehouse (DuckDB):  {paths.warehouse_path()}")
    print(f"Membership export:   {export}")
    print(f"Dagster home:        {paths.dagster_home()}  (UI: make ui)")
    print(f"Definition version:  {version}")
    if quarantined:
        print("Quarantined rows:    " + ", ".join(f"{s} {n}" for s, n in quarantined))
    print()
    print(f"Segment sizes, {end:%B %Y}:")
    total = sum(r[2] for r in rows)
    for segment_id, paused, customers, share in rows:
        flag = " (paused)" if paused else ""
        print(f"  {segment_id + flag:<34} {customers:>9,}  {share or 0:6.1%}")
    print(f"  {'total':<34} {total:>9,}")
    if flags:
        print()
        print(f"Governance red flags, {end:%B %Y}:")
        for metric, value, evaluated in flags:
            print(f"  {metric.replace('_', ' '):<34} {value if evaluated else 'not evaluated':>9}")
    pack = paths.review_packs_dir() / f"{end:%Y-%m}" / "review-pack.html"
    if pack.exists():
        print(f"\nReview pack:         {pack}")


def refreshable(months: list[date]) -> None:
    """Check before a run starts what would otherwise fail inside it: the mapping and its
    files, and that the months are partitions. When a month is outside the recorded range,
    the orders are read to learn theirs (the partitions follow, history.py)."""
    config = ingest.load_config(paths.sources_file())
    ingest.check_readable(config)
    months_range = history.refresh_range()
    if all(months_range.first <= m <= months_range.last for m in months):
        return
    data = ingest.order_months(config)
    if data is not None:
        history.record_months(data)
    months_range = history.refresh_range(data=data)
    for month in months:
        months_range.check(month)


def cmd_refresh(args: argparse.Namespace) -> int:
    last = parse_month(args.month) if args.month else last_complete_month(date.today())
    first = last
    for _ in range(args.months - 1):
        first = previous_month(first)
    months = months_between(first, last)
    refreshable(months)
    print(f"Monthly refresh: {months[0]:%Y-%m} to {months[-1]:%Y-%m}", flush=True)
    started = datetime.now(UTC).replace(tzinfo=None)
    # One turn for the whole command: its results and its alert pass are not cut off by the
    # refresh waiting behind it.
    with refresh_turn(months):
        if not run_months(months, full_rebuild=args.full_rebuild):
            return 1
        print_results(last)
        print()
        print(run_alerts_once(since=started))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    raw = paths.raw_dir()
    if not (raw / "orders.parquet").exists():
        print(f"No data in {raw}: generating an example jeweller ({args.customers:,} customers)")
        cmd_generate(
            argparse.Namespace(
                customers=args.customers,
                end_month=None,
                history_months=36,
                seed=42,
                orders_per_customer=3.0,
                out=None,
                no_progress=False,
            )
        )
    return cmd_refresh(argparse.Namespace(month=None, months=args.months, full_rebuild=False))


def cmd_sizes(args: argparse.Namespace) -> int:

    with warehouse_lock.command_connection("sizes", read_only=True) as con:
        months = publish.published_months(con)
    if not months:
        print("Nothing published yet: run `segment-cadence refresh`.")
        return 1
    month = parse_month(args.month) if args.month else months[-1].replace(day=1)
    print_results(month)
    return 0


def cmd_definitions(args: argparse.Namespace) -> int:
    """Review path for segment definitions and thresholds: status, history, approve, rollback."""

    try:
        if args.action == "approve":
            # A quarterly candidate is approved where it is and put in force only once its
            # approval is recorded: a refused approval changes nothing.
            version = versions.approve(
                author=args.author,
                approved_by=args.by,
                reason=args.reason,
                candidate=Path(args.candidate) if args.candidate else None,
            )
            digests = (
                f"dictionary {version.digest[:12]}, thresholds {version.thresholds_digest[:12]}"
            )
            print(f"approved {version.label} ({digests}) by {version.approved_by}:")
            for line in versions.version_history()[-1]["changes"]:
                print(f"  - {line}")
            if args.candidate:
                print(f"{args.candidate} is now in force as {paths.segments_file()}")
            print(f"recorded in {versions.ledger_file()}; commit it for review")
        elif args.action == "rollback":
            version = versions.rollback(
                to=args.to, author=args.author, approved_by=args.by, reason=args.reason
            )
            print(
                f"rolled back to v{version.restores} (recorded as {version.label}, approved by "
                f"{version.approved_by}); dictionary and thresholds restored; the next refresh "
                "publishes with them"
            )
        elif args.action == "history":
            for item in versions.version_history():
                v = item["version"]
                print(
                    f"{v.label}  {v.kind:<9} {v.approved_at[:10]}  by {v.approved_by}: {v.reason}"
                )
                for line in item["changes"]:
                    print(f"      - {line}")
        else:
            version = versions.check_approved()
            print(
                f"{paths.segments_file()}: approved as {version.label} "
                f"({version.approved_by}, {version.approved_at[:10]})"
            )
            print(f"{paths.thresholds_file()}: approved with it (routing settings not governed)")
    except (
        versions.ApprovalError,
        segment_dictionary.DefinitionError,
        thresholds.ThresholdError,
    ) as error:
        print(error, file=sys.stderr)
        return 1
    return 0


def release_hold(month: date, released_by: str, reason: str) -> gate.Hold | None:
    """Release the month's hold, if it has one: the hold read and the release recorded in one
    state-store transaction. The warehouse is only read (when was the month last published;
    an older warehouse's holds move to the store first), never opened for writing."""
    found = paths.warehouse_path().exists()
    reading = warehouse_lock.command_connection("release", read_only=True)
    with reading if found else nullcontext() as con:
        if con is not None:
            state_store.migrate_from_warehouse(con)
        with state_store.transaction() as state:
            hold = gate.latest_hold(state, month, con)
            if hold is not None:
                gate.record_release(state, hold, released_by, reason)
    return hold


def cmd_release(args: argparse.Namespace) -> int:
    """Publish a month the gate held: a recorded act by an approver, with a reason."""

    month = parse_month(args.month)
    if not args.reason.strip():
        print("a release needs a reason", file=sys.stderr)
        return 1
    try:
        versions.require_approver(args.by)
    except versions.ApprovalError as error:
        print(error, file=sys.stderr)
        return 1
    hold = release_hold(month_end(month), args.by, args.reason)
    if hold is None:
        print(f"{month:%Y-%m} is not held by the publish gate; nothing to release")
        return 1
    print(f"{month:%Y-%m} released by {args.by} ({args.reason}); held for:")
    for finding in hold.findings:
        print(f"  - {finding.message}")
    print("Publishing it now with the same inputs:")
    if not run_months([month]):
        return 1
    print_results(month)
    return 0


def run_alerts_once(since: datetime | None = None) -> str:
    """One pass of the alerting loop (what the sensor does every minute), on the state store:
    it runs while a refresh writes the warehouse. With `since` (when a command that ran a
    refresh began), also what went out during the run, which the last pass alone misses."""

    client = slack.slack_client()
    result = run_tick(datetime.now(UTC).replace(tzinfo=None), client=client)
    where = (
        "Slack"
        if client
        else f"the local outbox {paths.outbox_dir() / 'notices.jsonl'} (no SLACK_BOT_TOKEN)"
    )
    during = f"\nAlerts {activity_since(since).summary()}" if since else ""
    return f"Alerts to {where}: {result.summary()}{during}"


def cmd_alerts(args: argparse.Namespace) -> int:
    """The alert commands use the state store only, never the warehouse."""
    now = datetime.now(UTC).replace(tzinfo=None)
    if args.action == "run":
        print(run_alerts_once())
        return 0
    if args.action == "list":
        with state_store.transaction() as state:
            rows = alerts.unresolved(state)
        for state_name, severity, level, key, value, bound in rows:
            print(
                f"{state_name:<12} {severity:<8} L{level} {key}  value {value:.4g} bound {bound:.4g}"
            )
        if not rows:
            print("no open alerts")
        return 0
    with state_store.transaction() as state:
        if args.action == "ack":
            count = alerts.acknowledge(state, args.target, args.by, now)
            print(f"acknowledged {count} alert(s)")
            return 0 if count else 1
        if args.action == "silence":
            silence_id = alerts.silence(
                state,
                segment_id=args.segment,
                rule_id=args.rule,
                created_by=args.by,
                reason=args.reason,
                expires_at=now + timedelta(hours=args.hours),
                now=now,
            )
            print(
                f"silence {silence_id} until {now + timedelta(hours=args.hours):%Y-%m-%d %H:%M} UTC"
            )
            return 0
        if args.action == "unsilence":
            ended = alerts.unsilence(state, segment_id=args.segment, by=args.by, now=now)
            print(f"ended {ended} silence(s) of {args.segment}")
            return 0 if ended else 1
    raise ValueError(f"unknown alerts action {args.action}")


def cmd_state(args: argparse.Namespace) -> int:
    """Bring the state store to the newest schema and, once, move an older warehouse's
    operational tables (alerts.*, governance.firewall_*, governance.exception_requests,
    governance.review_packs; the governance records: definition versions, changelog, retired
    segments, publish holds and releases, language findings, health.breaches) into it. The
    refresh does the same on its first run."""
    print(f"state store: {state_store.engine().url.render_as_string(hide_password=True)}")
    if not paths.warehouse_path().exists():
        print("no warehouse yet: nothing to move")
        return 0
    with warehouse_lock.command_connection("state migrate", read_only=True) as con:
        moved = state_store.migrate_from_warehouse(con)
    if not moved:
        print(
            "nothing to move: the state store already holds operational state, or the "
            "warehouse has none"
        )
    for table, count in moved.items():
        print(f"moved {table}: {count} row(s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segment-cadence", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("parse", help="prepare dbt's manifest (if missing or stale)").set_defaults(
        func=cmd_parse
    )
    validate = sub.add_parser("validate", help="validate a segment dictionary")
    validate.add_argument("file", nargs="?", default=str(paths.segments_file()))
    validate.set_defaults(func=cmd_validate)
    generate = sub.add_parser("generate", help="generate example jeweller data (Parquet)")
    generate.add_argument("--customers", type=int, default=20_000)
    generate.add_argument("--end-month", help="last month of data, YYYY-MM (default: last month)")
    generate.add_argument("--history-months", type=int, default=36)
    generate.add_argument("--seed", type=int, default=42)
    generate.add_argument(
        "--orders-per-customer",
        type=float,
        default=3.0,
        help="mean order lines per customer over the history (10 gives ~100M lines at 10M customers)",
    )
    generate.add_argument("--out", help="output directory (default: var/raw)")
    generate.add_argument("--no-progress", action="store_true")
    generate.set_defaults(func=cmd_generate)
    refresh = sub.add_parser("refresh", help="run the monthly refresh")
    refresh.add_argument(
        "--month", help="the (last) month to refresh, YYYY-MM (default: last month)"
    )
    refresh.add_argument("--months", type=int, default=1, help="refresh this many months up to it")
    refresh.add_argument(
        "--full-rebuild",
        action="store_true",
        help="rebuild the monthly purchase history from scratch (dbt --full-refresh)",
    )
    refresh.set_defaults(func=cmd_refresh)
    demo = sub.add_parser("demo", help="generate data if needed and refresh the last months")
    demo.add_argument("--customers", type=int, default=20_000)
    demo.add_argument("--months", type=int, default=3)
    demo.set_defaults(func=cmd_demo)
    defs = sub.add_parser(
        "definitions", help="definition versions: status, history, approve, rollback"
    )
    actions = defs.add_subparsers(dest="action", required=True)
    actions.add_parser("status", help="are the dictionary and thresholds in force approved?")
    actions.add_parser("history", help="every version and what changed, in words")
    approve = actions.add_parser(
        "approve", help="approve the dictionary and thresholds in force (or a candidate dictionary)"
    )
    approve.add_argument("--author", required=True, help="who asked for the change")
    approve.add_argument("--by", required=True, help="the approver (not the author)")
    approve.add_argument("--reason", required=True)
    approve.add_argument("--candidate", help="a candidate dictionary to approve and put in force")
    rollback = actions.add_parser("rollback", help="put an earlier approved version back in force")
    rollback.add_argument("--to", type=int, required=True, help="version number, e.g. 1 for v1")
    rollback.add_argument("--author", required=True, help="who asks for the rollback")
    rollback.add_argument("--by", required=True, help="the approver (not the author)")
    rollback.add_argument("--reason", required=True)
    defs.set_defaults(func=cmd_definitions)
    strategic_ = sub.add_parser("strategic", help="quarterly strategic re-fit (a candidate)")
    strategic_.add_argument("--quarter", required=True, help="e.g. 2025-Q4")
    strategic_.set_defaults(func=cmd_strategic)
    alerts_ = sub.add_parser("alerts", help="open alerts; acknowledge, silence, run the loop")
    alert_actions = alerts_.add_subparsers(dest="action", required=True)
    alert_actions.add_parser("list", help="open alerts")
    alert_actions.add_parser("run", help="process breaches and deliver the outbox once")
    ack = alert_actions.add_parser("ack", help="acknowledge an alert key or a segment's alerts")
    ack.add_argument("target")
    ack.add_argument("--by", required=True)
    silence_ = alert_actions.add_parser("silence", help="a monitoring window")
    silence_.add_argument("--segment", default="*")
    silence_.add_argument("--rule", default="*")
    silence_.add_argument("--hours", type=float, required=True)
    silence_.add_argument("--by", required=True)
    silence_.add_argument("--reason", required=True)
    unsilence_ = alert_actions.add_parser("unsilence", help="end a segment's silences now")
    unsilence_.add_argument("--segment", required=True)
    unsilence_.add_argument("--by", required=True)
    alerts_.set_defaults(func=cmd_alerts)
    state_ = sub.add_parser("state", help="the operational state store (alerts, firewall records)")
    state_.add_argument(
        "action", choices=["migrate"], help="apply migrations; move an older warehouse's state"
    )
    state_.set_defaults(func=cmd_state)
    release = sub.add_parser(
        "release", help="publish a month the publish gate held (an approver, with a reason)"
    )
    release.add_argument("--month", required=True, help="the held month, YYYY-MM")
    release.add_argument("--by", required=True, help="the approver releasing it")
    release.add_argument("--reason", required=True)
    release.set_defaults(func=cmd_release)
    cli_governance.add_commands(sub)
    cli_churn.add_commands(sub)
    cli_sources.add_commands(sub)
    sizes = sub.add_parser("sizes", help="print published segment sizes")
    sizes.add_argument("--month")
    sizes.set_defaults(func=cmd_sizes)
    return parser


def main(argv: list[str] | None = None) -> int:
    terminal.warnings_only()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ingest.SourceFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return cli_sources.EXIT_UNREADABLE
    except ingest.IngestConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return cli_sources.EXIT_CONFIG
    except history.MonthOutOfRange as error:
        print(f"error: {error}", file=sys.stderr)
        return cli_sources.EXIT_MONTH
    except MonthNotUnderstood as error:
        print(f"error: {error}", file=sys.stderr)
        return cli_sources.EXIT_MONTH
    except warehouse.WarehouseBusy as busy:
        print(busy, file=sys.stderr)
        return EXIT_BUSY
    except warehouse.NoWarehouse as missing:
        print(missing, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
