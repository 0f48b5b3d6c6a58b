"""Is a process still there? For the writer lock's "waiting for ..." line and the dead-run
reaper, which must not take a live run for dead, nor a dead one for live.

A pid alone is not enough: the kernel reuses pids, and a killed child not yet waited for
lingers as a zombie. So a process is identified by its pid and its start time, as psutil
reports it, and a zombie counts as gone.
"""

from __future__ import annotations

import socket

import psutil

# Start times are read from the kernel's clock ticks; the same process always reads the same
# within this tolerance, and another process with a reused pid started later than that.
SAME_START_SECONDS = 1.0


def host_name() -> str:
    return socket.gethostname()


def started_at(pid: int | None = None) -> float:
    """When a process (by default this one) started, in seconds since the epoch."""
    return psutil.Process(pid).create_time()


def process_alive(pid: int, started: float | None = None) -> bool:
    """Whether `pid` runs on this host, and is the process that started at `started` if given."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < SAME_START_SECONDS
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # another user's live process
        return True
