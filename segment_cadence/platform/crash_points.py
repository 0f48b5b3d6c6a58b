"""Crash points: named places where a refresh can be killed on purpose.

The promise that a killed refresh loses nothing is only worth what its tests prove. A test
sets SEGMENT_CADENCE_CRASH_AT to a point's name and the process kills itself there with
SIGKILL, exactly as `kill -9` would, at a moment no timer could hit reliably (inside the
publish transaction, halfway through the export). Unset, a crash point does nothing.
"""

from __future__ import annotations

import os
import signal

CRASH_AT = "SEGMENT_CADENCE_CRASH_AT"
POINTS = ("ingest", "dbt", "publish_transaction", "export")


def crash_point(name: str) -> None:
    """Die here, uncleanly, when a test asks for it."""
    if os.environ.get(CRASH_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
