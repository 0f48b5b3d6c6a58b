"""dbt run inside this process: the monthly dbt assets' builds, and the few models a plain
module needs built on the warehouse file it holds open.

A dbt process per build costs more than the build on a month of a small shop: the new
process imports dbt, reads its partial parse and writes the manifest back, and dagster-dbt
opens an adapter of its own beside it (for row counts no refresh asks for). dbt in this
process does those once: `parsed_manifest()` parses the project once per process and target,
and every build after runs on that manifest (dbt's programmatic invocation, `dbtRunner` with
a manifest), streaming dbt's result events as the JSON dicts its structured log carries,
the ones dagster-dbt turns into Dagster events (segment_cadence/defs/segments/dbt_assets.py).

DuckDB lets one process write a file. A plain module that holds the warehouse open and needs
a few dbt models built on it (the ingest rules, right after a file is landed) cannot start a
dbt process: that process could not open the file. dbt in this process opens the same
database instance instead (its profile passes no connection config, only settings), so the
models are built while the caller keeps its connection.

The parameters go through SEGMENT_CADENCE_DBT_VARS, as for the refresh
(dbt_project/macros/cadence_var.sql), so a new parameter value re-parses nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from dbt.adapters.duckdb.connections import DuckDBConnectionManager
from dbt.adapters.factory import FACTORY
from dbt.cli.main import dbtRunner, dbtRunnerResult
from dbt.contracts.graph.manifest import Manifest
from dbt.parser.manifest import extended_mashumuro_decoder
from dbt.version import __version__ as dbt_version
from dbt_common.events.base_types import EventMsg
from dbt_common.events.functions import msg_to_dict

from segment_cadence.platform import paths

# dbt's events that carry a node's result: the ones dagster-dbt turns into materializations
# and check results. The rest of dbt's events go to its log file and stdout as ever.
RESULT_EVENTS = frozenset({"LogModelResult", "LogTestResult", "LogSeedResult", "LogSnapshotResult"})
# The levels of dbt's events it prints on its console by default.
CONSOLE_LEVELS = frozenset({"info", "warn", "error"})
# Set while a build runs here: dbt-duckdb keeps the warehouse open from node to node
# (dbt_project/profiles.yml, keep_open) instead of closing, and so checkpointing, it after
# every statement.
KEEP_OPEN = "SEGMENT_CADENCE_DBT_KEEP_OPEN"


class DbtBuildFailed(RuntimeError):
    """A model or test of the selection failed; the message names each with dbt's words."""


@dataclass(frozen=True)
class DbtBuild:
    """What to build: dbt selectors and the run's parameters."""

    select: tuple[str, ...]
    variables: dict[str, Any]


@dataclass
class _Finished:
    """The end of a streamed invocation: dbt's result, or what dbt raised."""

    result: dbtRunnerResult | None = None
    error: BaseException | None = None


_parsed: dict[tuple[str, ...], Manifest] = {}
_parse_lock = threading.Lock()


def database_path(con: duckdb.DuckDBPyConnection) -> str:
    """The file `con` is open on: the warehouse dbt is pointed at."""
    return con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()[0]


def dagster_target_path() -> Path:
    """dbt's target directory as dagster-dbt and `segment-cadence parse` use it
    (DBT_TARGET_PATH, relative to the project, default "target")."""
    return paths.DBT_PROJECT_DIR / os.environ.get("DBT_TARGET_PATH", "target")


def target_path() -> Path:
    """dbt's target directory for in-process builds of plain modules, beside dagster-dbt's."""
    return dagster_target_path() / "in_process"


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _project_args(target: Path) -> list[str]:
    project = str(paths.DBT_PROJECT_DIR)
    return [
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target-path",
        str(target),
        "--log-path",
        str(target),
    ]


def _manifest_key() -> tuple[str, ...]:
    """What a parse depends on besides the project's files: the target (its adapter's macros
    are in the manifest), the names the profile gives the warehouse (DuckDB's catalog is the
    file's stem, Spark's databases carry the schema prefix), and the prepared manifest's age
    (the project is re-prepared when its files change: segment_cadence/platform/
    resources.py)."""
    prepared = dagster_target_path() / "manifest.json"
    identity = parse_identity()
    return (
        str(dagster_target_path()),
        identity["target"],
        Path(identity["warehouse"]).stem,
        identity["spark_schema"],
        str(prepared.stat().st_mtime_ns) if prepared.exists() else "",
    )


# Where the project's own files are (dbt_project.yml's model-, macro- and test-paths, and the
# resource folders dbt reads by default). Only these are looked at: the target directories
# beside them gather every run's compiled SQL, and walking them made each check slower.
PROJECT_FOLDERS = ("models", "macros", "tests", "seeds", "snapshots", "analyses")
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "selectors.yml")
# Beside the prepared manifest: the parse identity it was prepared for (parse_identity).
PREPARED_FOR = ".prepared_for.json"


def project_files(project_dir: Path = paths.DBT_PROJECT_DIR) -> list[Path]:
    """The files whose change means a new parse: the project's yml and its SQL and yml."""
    root = Path(project_dir)
    found = [root / name for name in PROJECT_FILES if (root / name).exists()]
    for folder in PROJECT_FOLDERS:
        found += [f for f in (root / folder).rglob("*") if f.suffix in (".sql", ".yml")]
    return found


def manifest_is_stale(manifest: Path, project_dir: Path = paths.DBT_PROJECT_DIR) -> bool:
    """No manifest yet, or a model, macro or yml file changed since it was prepared."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(f.stat().st_mtime > built for f in project_files(project_dir))


def parse_identity() -> dict[str, str]:
    """What dbt's parse reads from the environment, through the profile: the target, the
    warehouse file and the Spark schema. A manifest parsed under another identity names other
    relations, and dbt discards its partial-parse file when the rendered profile changed."""
    return {
        "target": os.environ.get("SEGMENT_CADENCE_DBT_TARGET", "duckdb"),
        "warehouse": os.environ.get("SEGMENT_CADENCE_WAREHOUSE", "warehouse.duckdb"),
        "spark_schema": os.environ.get("SEGMENT_CADENCE_SPARK_SCHEMA", ""),
    }


def prepared_for(target: Path) -> dict[str, str] | None:
    """The parse identity the manifest in `target` was prepared for, if it was recorded."""
    try:
        return json.loads((target / PREPARED_FOR).read_text())
    except (OSError, ValueError):
        return None


def record_prepared_for(target: Path, identity: dict[str, str]) -> None:
    (target / PREPARED_FOR).write_text(json.dumps(identity, sort_keys=True))


def _saved_parse() -> Manifest | None:
    """The prepared project's saved parse (the partial-parse file dbt wrote beside the
    manifest), read back as dbt reads it when nothing changed, without the reading and
    hashing of every project file that dbt's check for changes costs (a second and more).
    Only when it was saved for this identity, no project file is newer, it is this dbt's, and
    every environment variable the parse read still has its value; otherwise None."""
    target = dagster_target_path()
    saved = target / "partial_parse.msgpack"
    if prepared_for(target) != parse_identity() or manifest_is_stale(saved):
        return None
    try:
        manifest = Manifest.from_msgpack(saved.read_bytes(), decoder=extended_mashumuro_decoder)
    except Exception:  # half written, or from another dbt: parse instead
        return None
    if manifest.metadata.dbt_version != dbt_version or any(
        os.environ.get(name) != value for name, value in manifest.env_vars.items()
    ):
        return None
    # What dbt's own load does with a saved parse that needs nothing re-parsed.
    manifest.build_parent_and_child_maps()
    manifest.build_flat_graph()
    return manifest


def parsed_manifest() -> Manifest:
    """The project parsed once per process and target: the prepared project's saved parse
    when it was saved for this identity (_saved_parse), else dbt's partial parse of the prepared project (copied
    from dagster-dbt's target directory), in a directory of its own so that processes
    parsing at once do not share files."""
    key = _manifest_key()
    with _parse_lock:
        if key in _parsed:
            return _parsed[key]
        manifest = _saved_parse()
        if manifest is not None:
            _parsed.clear()
            _parsed[key] = manifest
            return manifest
        base = dagster_target_path()
        base.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="parse-", dir=base))
        try:
            partial = base / "partial_parse.msgpack"
            if partial.exists():
                shutil.copy(partial, scratch / partial.name)
            result = dbtRunner().invoke(["parse", "--quiet", *_project_args(scratch)])
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if not result.success or not isinstance(result.result, Manifest):
            raise DbtBuildFailed("; ".join(failures(result)) or "dbt could not parse the project")
        _parsed.clear()  # an older parse of this process is stale now
        _parsed[key] = result.result
        return result.result


def failures(result: dbtRunnerResult) -> list[str]:
    """One line per failed node of a dbt invocation, or its exception."""
    found = [
        f"{r.node.name}: {' '.join(str(r.message).split())}"
        for r in (getattr(result.result, "results", None) or [])
        if str(r.status) in ("error", "fail")
    ]
    if not found and result.exception is not None:
        found.append(" ".join(str(result.exception).split()))
    return found


def unique_target_path(name: str) -> Path:
    """A target directory of one invocation (its compiled SQL, run results and dbt.log),
    named like dagster-dbt's: the step, then a random part."""
    return dagster_target_path() / f"{name}-{uuid.uuid4().hex[:7]}"


def stream_events(
    args: Sequence[str], target: Path, console: list[str] | None = None
) -> Iterator[dict[str, Any]]:
    """Run `dbt <args>` in this process on the parsed manifest and yield each node's result
    event as its structured-log dict, as dbt finishes the node. dbt runs in a thread of its
    own so the results reach the caller while later nodes run; raises DbtBuildFailed at the
    end when any node failed, with dbt's words for each.

    dbt prints nothing: the lines it would print (info and above) are appended to `console`
    for the caller to log with the run, and its debug log goes to target/dbt.log. A refresh
    at a terminal shows its own progress, not dbt's."""
    manifest = parsed_manifest()
    # Nothing reads the artifacts of a build on the parsed manifest (its results come as
    # events): not writing manifest.json and run_results.json halves the calls of a small build.
    args = [*args, "--no-write-json", "--no-use-colors", "--log-level", "none"]
    if os.environ.get("SEGMENT_CADENCE_DBT_TARGET") == "spark":
        # PyHive's Thrift connections are not safe across threads of one process: two dbt
        # threads here lost the endpoint mid-build ("TSocket read 0 bytes"), which in a dbt
        # process of its own they did not. Spark parallelises each statement anyway.
        args = [*args, "--threads", "1"]
    events: queue.Queue[dict[str, Any] | _Finished] = queue.Queue()

    def on_event(message: EventMsg) -> None:
        if message.info.name in RESULT_EVENTS:
            events.put(msg_to_dict(message))
        if console is not None and message.info.level in CONSOLE_LEVELS and message.info.msg:
            console.append(str(message.info.msg))

    def invoke() -> None:
        try:
            runner = dbtRunner(manifest=manifest, callbacks=[on_event])
            with _environment({KEEP_OPEN: "true"}):
                result = runner.invoke([*args, *_project_args(target)])
            events.put(_Finished(result=result))
        except BaseException as error:  # handed to the caller's thread below
            events.put(_Finished(error=error))
        finally:
            # The warehouse stays open for the build only: the run's next step, or another
            # process, opens it next.
            DuckDBConnectionManager.close_all_connections()

    worker = threading.Thread(target=invoke, name="dbt", daemon=True)
    worker.start()
    finished = False
    try:
        while not isinstance(item := events.get(), _Finished):
            yield item
        finished = True
    finally:
        if not finished:
            _cancel(worker)
        worker.join()
    if item.error is not None:
        raise DbtBuildFailed(" ".join(str(item.error).split())) from item.error
    assert item.result is not None
    if not item.result.success:
        raise DbtBuildFailed("; ".join(failures(item.result)) or "dbt build failed")


def _cancel(worker: threading.Thread) -> None:
    """The caller stopped reading before dbt finished: its step was interrupted (Terminate in
    the UI) or failed. dbt's running statements are cancelled, as dbt does on Ctrl-C, until
    its thread ends, so that no build goes on writing after its step has let the warehouse go.
    An adapter that cannot cancel (dbt-spark over Thrift) finishes its statement first."""
    while worker.is_alive():
        for adapter in list(FACTORY.adapters.values()):
            # Cancelling is best effort; the join below waits anyway.
            with contextlib.suppress(Exception):
                adapter.cancel_open_connections()
        worker.join(timeout=0.2)


def build(con: duckdb.DuckDBPyConnection, job: DbtBuild) -> None:
    """`dbt build` of the selection (its data tests included, unit tests left out) on the
    warehouse `con` is open on; raises DbtBuildFailed when anything fails."""
    environment = {
        "SEGMENT_CADENCE_WAREHOUSE": database_path(con),
        "SEGMENT_CADENCE_DBT_VARS": json.dumps(job.variables),
    }
    # No dbt.log for these small builds: a failure comes back in DbtBuildFailed, in dbt's words.
    args = [
        "build",
        "--quiet",
        "--log-level-file",
        "none",
        "--exclude-resource-type",
        "unit_test",
        "--select",
        *job.select,
    ]
    with _environment(environment):
        for _ in stream_events(args, target_path()):
            pass
