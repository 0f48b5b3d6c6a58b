"""Which months can be refreshed: from where the data starts (or a month the mapping sets)
to the later of the last complete month and the last month with data.

A transaction log may start in 1997 or run into 2031; the monthly partitions follow it
rather than a date written in the code. The range is read when the code location loads,
so it comes from two cheap places: `first_month` in config/sources.yaml when set, and
var/history.json, where the orders load (and `segment-cadence refresh` or `sources check`,
before they start) record the months the orders cover. Before either exists the range starts
at DEFAULT_FIRST_MONTH.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from segment_cadence.platform import paths, yaml_text
from segment_cadence.platform.months import MonthNotUnderstood, last_complete_month, parse_month

DEFAULT_FIRST_MONTH = date(2023, 1, 1)
HISTORY_FILE = "history.json"


class MonthOutOfRange(ValueError):
    """A month the partitions do not hold; the message names the range."""


@dataclass(frozen=True)
class DataMonths:
    """The first and last month the orders cover (month starts)."""

    first: date
    last: date


@dataclass(frozen=True)
class RefreshRange:
    """The months that can be refreshed, both included (month starts)."""

    first: date
    last: date

    def check(self, month: date) -> None:
        if not self.first <= month <= self.last:
            raise MonthOutOfRange(
                f"{month:%Y-%m} cannot be refreshed: the months that can are "
                f"{self.first:%Y-%m} to {self.last:%Y-%m} (from the first month of the orders, "
                "or first_month in the source mapping, to the last complete month or the last "
                "month with orders)"
            )


def configured_first_month(mapping: Path | None = None) -> date | None:
    """`first_month` of the source mapping, if it sets one."""
    mapping = mapping or paths.sources_file()
    try:
        document: Any = yaml_text.load(mapping.read_text())
    except (OSError, yaml.YAMLError):
        return None  # the ingest step says what is wrong with the mapping
    value = document.get("first_month") if isinstance(document, dict) else None
    if value is None:
        return None
    try:
        return parse_month(value.isoformat() if isinstance(value, date) else str(value))
    except ValueError:
        raise MonthNotUnderstood(
            f"{mapping}: first_month: {value!r} is not a month; write it as YYYY-MM"
        ) from None


def _history_file() -> Path:
    return paths.state_dir() / HISTORY_FILE


def recorded_months() -> DataMonths | None:
    """The months of the orders as last recorded, if any."""
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        document = json.loads(_history_file().read_text())
        return DataMonths(parse_month(document["first_month"]), parse_month(document["last_month"]))
    return None


def record_months(months: DataMonths) -> bool:
    """Write the orders' months for the next code-location load; True when they changed."""
    if recorded_months() == months:
        return False
    target = _history_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_text(
        json.dumps({"first_month": f"{months.first:%Y-%m}", "last_month": f"{months.last:%Y-%m}"})
    )
    partial.replace(target)
    return True


def refresh_range(
    today: date | None = None,
    data: DataMonths | None = None,
    first_month: date | None = None,
) -> RefreshRange:
    """The months that can be refreshed, from the mapping's first_month, else the data's
    first month, else DEFAULT_FIRST_MONTH; to the later of the last complete month and the
    data's last month."""
    today = today or date.today()
    data = data if data is not None else recorded_months()
    first = first_month or configured_first_month() or (data.first if data else DEFAULT_FIRST_MONTH)
    last = last_complete_month(today)
    if data and data.last > last:
        last = data.last
    return RefreshRange(first, max(first, last))
