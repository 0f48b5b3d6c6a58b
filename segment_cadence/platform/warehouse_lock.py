"""Whose turn it is at the warehouse: one writer at a time, and readers between writers.

DuckDB lets one process write a file and refuses, rather than waits, while another holds it.
A refresh opens and closes many connections, and dbt opens its own, so without a turn of its
own a second refresh or a command slips in between two of them, and one of the two fails.
The turn is an flock on a file beside the warehouse (`warehouse.duckdb.lock`):

- a process that runs a job holds it exclusively for the whole run: the CLI around each
  refresh, WarehouseResource for runs launched from the UI or the schedule; commands that
  write (alerts run, ack, silence, a recorded campaign check) hold it for the moment they
  write, and the alerting sensor takes it only when it is free;
- read commands hold it shared, so they read side by side, never in the middle of a refresh.

The kernel drops an flock when its holder dies, kill -9 included, so a dead holder never
blocks anyone. The holder writes who it is into the file, so whoever waits can say for whom.
Within one process the exclusive turn is re-entrant (the CLI holds it around a run and the
run's warehouse resource takes it again), and the threads of a process share it, as they
share DuckDB's one database instance per process.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from segment_cadence.platform import paths, processes, warehouse
from segment_cadence.platform.warehouse import WarehouseBusy

DEFAULT_COMMAND_WAIT_SECONDS = 15.0
POLL_SECONDS = 0.1


def command_wait() -> float:
    """How long a command waits for its turn before saying the warehouse is busy.

    SEGMENT_CADENCE_COMMAND_WAIT when set, else 15 s: someone at a terminal is better told
    to come back than left waiting for a refresh that may take an hour.
    """
    configured = os.environ.get("SEGMENT_CADENCE_COMMAND_WAIT")
    return float(configured) if configured else DEFAULT_COMMAND_WAIT_SECONDS


def lock_file(warehouse_path: Path | str | None = None) -> Path:
    target = Path(warehouse_path) if warehouse_path else paths.warehouse_path()
    return target.with_name(target.name + ".lock")


def refresh_activity(months: str) -> str:
    """How a refresh is named to whoever waits for it: "the refresh of 2026-11"."""
    return f"the refresh of {months}"


@dataclass(frozen=True)
class Holder:
    """Who has the writer's turn, as recorded in the lock file."""

    activity: str  # "the refresh of 2026-11", "alerts run"
    pid: int
    host: str
    started_at: str  # ISO 8601, local time
    months: str | None = None  # for a refresh: "2026-11", "2026-09 to 2026-11"
    run_id: str | None = None

    def describe(self) -> str:
        started = datetime.fromisoformat(self.started_at)
        return f"{self.activity} (pid {self.pid}, started {started:%H:%M:%S})"

    def busy_message(self) -> str:
        if self.months:
            return (
                f"the warehouse is being refreshed ({self.months}, pid {self.pid}); "
                "try again when it finishes"
            )
        return (
            f"the warehouse is in use ({self.activity}, pid {self.pid}); try again when it finishes"
        )


UNKNOWN_BUSY = "the warehouse is in use by another command; try again when it finishes"


def waiting_message(holder: Holder | None) -> str:
    """The one line a refresh prints when it has to wait for its turn."""
    whom = holder.describe() if holder else "another command using the warehouse"
    return f"waiting for {whom} to finish..."


def read_holder(lock: Path) -> Holder | None:
    """The holder recorded in the lock file, if it is still alive (a holder that died leaves
    its record behind; a reader holds the lock without one)."""
    try:
        holder = Holder(**json.loads(lock.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if holder.host == processes.host_name() and not processes.process_alive(holder.pid):
        return None
    return holder


def holder_soon(lock: Path, patience: float = 0.5) -> Holder | None:
    """The holder's record, allowing it a moment to write it: a writer records itself just
    after taking its turn, so one who arrives at the same instant can find the file empty."""
    deadline = time.monotonic() + patience
    while (holder := read_holder(lock)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return holder


@dataclass
class _Turn:
    fd: int
    holder: Holder
    depth: int = 1


_guard = threading.Lock()
_writers: dict[Path, _Turn] = {}  # the writer's turns this process holds, by lock file
_readers: dict[tuple[Path, int], int] = {}  # reader's turns held, by lock file and thread


def _forget_after_fork() -> None:
    """A forked child does not hold its parent's turns (it must not keep them alive)."""
    for turn in _writers.values():
        os.close(turn.fd)
    _writers.clear()
    _readers.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def _take(
    fd: int, mode: int, lock: Path, wait: float | None, on_wait: Callable[[str], None] | None
) -> None:
    """flock `fd`; if someone else has it, say so once and wait (`wait` None: until free)."""
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    if on_wait:
        on_wait(waiting_message(holder_soon(lock)))
    if wait is None:
        fcntl.flock(fd, mode)
        return
    deadline = time.monotonic() + wait
    while True:
        time.sleep(max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = holder_soon(lock)
                raise WarehouseBusy(holder.busy_message() if holder else UNKNOWN_BUSY) from None


@contextmanager
def writer(
    activity: str,
    *,
    warehouse_path: Path | str | None = None,
    months: str | None = None,
    run_id: str | None = None,
    wait: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Holder]:
    """The writer's turn, for as long as the block runs.

    Waits while another process has a turn: as long as it takes when `wait` is None (a
    refresh behind a refresh), else up to `wait` seconds and then WarehouseBusy. `on_wait`
    gets one line saying whom it waits for. Taken again in the same process, it is held
    already and the first holder's record stands.
    """
    lock = lock_file(warehouse_path)
    with _guard:
        turn = _writers.get(lock)
        if turn is not None:
            turn.depth += 1
        elif _readers.get((lock, threading.get_ident())):
            raise RuntimeError(f"{lock}: a writer's turn inside a reader's would wait for itself")
    if turn is None:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _take(fd, fcntl.LOCK_EX, lock, wait, on_wait)
            holder = Holder(
                activity=activity,
                pid=os.getpid(),
                host=processes.host_name(),
                started_at=datetime.now().isoformat(timespec="seconds"),
                months=months,
                run_id=run_id,
            )
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(asdict(holder)).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        turn = _Turn(fd, holder)
        with _guard:
            _writers[lock] = turn
    try:
        yield turn.holder
    finally:
        with _guard:
            turn.depth -= 1
            last = turn.depth == 0
            if last:
                del _writers[lock]
        if last:
            os.ftruncate(turn.fd, 0)  # whoever looks next finds nobody, not us
            os.close(turn.fd)  # and the kernel lets the next one in


@contextmanager
def reader(*, warehouse_path: Path | str | None = None, wait: float) -> Iterator[None]:
    """A reader's turn: shared with other readers, never during a writer's turn (the process
    that holds the writer's turn reads its own writes). WarehouseBusy after `wait` seconds."""
    lock = lock_file(warehouse_path)
    mine = (lock, threading.get_ident())
    with _guard:
        writing = lock in _writers
        if not writing:
            _readers[mine] = _readers.get(mine, 0) + 1
    if writing:
        yield
        return
    fd = None
    try:
        # No directory means no warehouse to read and nobody writing it; a reader who may not
        # create the file relies on DuckDB's lock alone.
        with contextlib.suppress(FileNotFoundError, PermissionError):
            fd = os.open(lock, os.O_RDONLY | os.O_CREAT, 0o644)
        if fd is not None:
            _take(fd, fcntl.LOCK_SH, lock, wait, None)
        yield
    finally:
        if fd is not None:
            os.close(fd)
        with _guard:
            _readers[mine] -= 1
            if not _readers[mine]:
                del _readers[mine]


@contextmanager
def command_connection(
    activity: str,
    *,
    read_only: bool,
    warehouse_path: Path | str | None = None,
    wait: float | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A command's turn at the warehouse and a connection for it: the one way commands open it.

    Reads take a reader's turn and open read-only; writes take the writer's turn. Either waits
    up to `wait` seconds (default command_wait()) for a refresh, then raises WarehouseBusy with
    one line saying who has the warehouse; the CLI prints it and exits 2.
    """
    budget = command_wait() if wait is None else wait
    started = time.monotonic()
    turn = (
        reader(warehouse_path=warehouse_path, wait=budget)
        if read_only
        else writer(activity, warehouse_path=warehouse_path, wait=budget)
    )
    with turn:
        left = max(0.0, budget - (time.monotonic() - started))
        with warehouse.connect(warehouse_path, read_only=read_only, wait=left) as con:
            yield con
