"""What the terminal shows of the libraries under a command: their warnings and errors only.

dbt's tracking library calls `logging.basicConfig()` when it is imported, which puts a
stderr handler of every level on the root logger; Dagster's and dagster-dbt's info messages
then reached the terminal beside the command's own lines. The run's messages are all in the
run's logs (the Dagster UI), whatever the terminal shows."""

from __future__ import annotations

import logging
import sys


def warnings_only() -> None:
    """Library messages reach the terminal at WARNING and above: the root logger's plain
    stderr handlers (basicConfig's) are raised to WARNING, and one is added if there is none.
    Other handlers (a test's capture, a user's logging config) are left as they are."""
    root = logging.getLogger()
    plain = [
        h
        for h in root.handlers
        if type(h) is logging.StreamHandler and h.stream in (sys.stderr, sys.__stderr__)
    ]
    for handler in plain:
        handler.setLevel(max(handler.level, logging.WARNING))
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)
