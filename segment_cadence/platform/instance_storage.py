"""The local Dagster instance's storage: Dagster's SQLite files, with the event log's
connections kept open instead of opened for every write.

Dagster's SQLite event log builds an engine, opens a connection and closes it again for each
statement it runs, and a run writes hundreds of events (a monthly refresh: about 420, and
as many again for the warehouse pool's claims). Measured on a 200-customer refresh that was
about 5 ms an event, 2 s of a 7.5 s run. Keeping one engine per database file, and letting
SQLite sync the write-ahead log at checkpoints rather than at every commit (`synchronous =
NORMAL`, which in WAL mode can lose the last events on a power cut, never corrupt the file),
takes most of that away. Dagster also asks the index, for every materialization and check
result, whether a table exists (asset checks, tags), each time on a new engine and
connection: here a table once seen is remembered (Dagster's migrations only add tables).
Files, tables and layout are Dagster's own, so the UI, the daemon and `dagster` commands
read the same history; orchestration/dagster.yaml names this class.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine

from segment_cadence.platform import paths

TEMPLATE = paths.REPO_ROOT / "orchestration" / "dagster.yaml"
HOME_FROM_ENVIRONMENT = "base_dir:\n        env: DAGSTER_HOME\n"

# A run writes to its own file and to the index; the UI reads a few runs at once.
OPEN_FILES = 8


def _sync_at_checkpoints(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class KeptOpenSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's per-run SQLite event log, with an engine (and its pool) kept per file."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[tuple[int, str], Engine] = OrderedDict()
        # Its own lock: Dagster's _db_lock is held for a whole transaction, and has_table
        # may be asked inside one.
        self._engines_lock = threading.Lock()
        self._tables_seen: set[str] = set()
        super().__init__(base_dir, inst_data)

    def _engine(self, shard: str) -> Engine:
        # Keyed by process too: a forked child must not share its parent's connections.
        key = (os.getpid(), shard)
        with self._engines_lock:
            engine = self._engines.get(key)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                event.listen(engine, "connect", _sync_at_checkpoints)
                self._engines[key] = engine
                while len(self._engines) > OPEN_FILES:
                    _, oldest = self._engines.popitem(last=False)
                    oldest.dispose()
            self._engines.move_to_end(key)
            return engine

    def has_table(self, table_name: str) -> bool:
        if table_name in self._tables_seen:
            return True
        engine = self._engine(INDEX_SHARD_NAME)
        with engine.connect() as conn:
            present = bool(engine.dialect.has_table(conn, table_name))
        if present:  # a missing table is asked again: a migration may add it meanwhile
            self._tables_seen.add(table_name)
        return present

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def register_instance(self, instance) -> None:
        # A home's dagster.yaml that names another home would write this instance's runs
        # there (a copied file, DAGSTER_HOME set to another home): refuse it, in one line.
        here = os.path.realpath(instance.root_directory)
        if os.path.realpath(self._base_dir) != os.path.join(here, "history", "runs"):
            raise ValueError(
                f"{os.path.join(here, 'dagster.yaml')}: storage base_dir names another "
                "instance's home; set it to this one (or DAGSTER_HOME to it)"
            )
        super().register_instance(instance)

    def dispose(self) -> None:
        with self._db_lock, self._engines_lock:
            while self._engines:
                _, engine = self._engines.popitem()
                engine.dispose()
        super().dispose()


class LocalInstanceStorage(DagsterSqliteStorage):
    """Dagster's default storage under one base directory, same files, same layout."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self.base_dir = base_dir
        self._run_storage = SqliteRunStorage.from_local(os.path.join(base_dir, "history", ""))
        self._event_log_storage = KeptOpenSqliteEventLogStorage(
            os.path.join(base_dir, "history", "runs", "")
        )
        self._schedule_storage = SqliteScheduleStorage.from_local(
            os.path.join(base_dir, "schedules")
        )
        self._inst_data = inst_data
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, str]
    ) -> LocalInstanceStorage:
        return cls(inst_data=inst_data, **config_value)


def instance_yaml(home: os.PathLike[str] | str) -> str:
    """The instance template with `home` written in as the storage's base directory, so the
    home's dagster.yaml holds wherever it is opened from (DAGSTER_HOME set or not)."""
    template = TEMPLATE.read_text()
    if HOME_FROM_ENVIRONMENT not in template:
        raise ValueError(f"{TEMPLATE}: storage base_dir is not read from DAGSTER_HOME")
    return template.replace(HOME_FROM_ENVIRONMENT, f"base_dir: {json.dumps(str(home))}\n")
