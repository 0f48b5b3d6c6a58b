"""A run started at the terminal (`segment-cadence refresh`, `demo`) shows one line per step
as it ends, with a bar of how far the run is, instead of dbt's and Dagster's own output.

A Dagster logger: the CLI asks for it in the run's config, with the number of steps, and it
sees each event as it happens. Runs launched by the daemon or the UI do not ask for it; the
run's logs are in the UI either way."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import dagster as dg

BAR_WIDTH = 20
ENDS = {"STEP_SUCCESS": "", "STEP_FAILURE": "  FAILED", "STEP_SKIPPED": "  skipped"}


def step_line(done: int, total: int, step: str, seconds: float | None, outcome: str) -> str:
    """`  [#####---------------]  5/27  features_inputs  1.9 s`: the bar counts ended steps."""
    filled = round(BAR_WIDTH * done / total) if total else BAR_WIDTH
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    took = f"  {seconds:.1f} s" if seconds is not None else ""
    width = len(str(total))
    return f"    [{bar}] {done:>{width}}/{total}  {step}{took}{ENDS[outcome]}"


class StepLines(logging.Handler):
    """Prints step_line for each step that ends, timed from its start event."""

    def __init__(self, total: int, stream: TextIO) -> None:
        super().__init__(level=logging.DEBUG)
        self.total = total
        self.stream = stream
        self.started: dict[str, float] = {}
        self.done = 0

    def emit(self, record: logging.LogRecord) -> None:
        event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
        if event is None or not event.step_key:
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[event.step_key] = record.created
        elif kind in ENDS:
            self.done += 1
            began = self.started.pop(event.step_key, None)
            seconds = record.created - began if began is not None else None
            line = step_line(self.done, self.total, event.step_key, seconds, kind)
            print(line, file=self.stream, flush=True)


@dg.logger(
    config_schema={"steps": dg.Field(int, description="How many steps the run has.")},
    description="One line per step that ends, with a progress bar (the CLI's runs).",
)
def terminal_progress(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("segment_cadence.progress", level=logging.DEBUG)
    logger.addHandler(StepLines(init_context.logger_config["steps"], sys.stdout))
    return logger
