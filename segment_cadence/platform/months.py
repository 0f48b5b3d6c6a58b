"""Months as the pipeline counts them: a refresh month is named by its first day and
computed "as of" its last day."""

from __future__ import annotations

import calendar
from datetime import date


class MonthNotUnderstood(ValueError):
    """Text that is not a month; the message shows how to write one."""


def parse_month(value: str) -> date:
    """'2026-10', '2026-10-01' or '2026-10-31' → the first day of that month."""
    text = value.strip()
    try:
        year, month = int(text[0:4]), int(text[5:7])
        if len(text) not in (7, 10) or text[4] != "-":
            raise ValueError
        return date(year, month, 1)
    except (ValueError, IndexError):
        raise MonthNotUnderstood(f"not a month: {value!r}; write it as YYYY-MM") from None


def month_end(month_start: date) -> date:
    return date(
        month_start.year,
        month_start.month,
        calendar.monthrange(month_start.year, month_start.month)[1],
    )


def previous_month(month_start: date) -> date:
    return (
        date(month_start.year - 1, 12, 1)
        if month_start.month == 1
        else date(month_start.year, month_start.month - 1, 1)
    )


def previous_month_end(day: date) -> date:
    """The last day of the month before the one `day` falls in: what a refresh of that
    month compares with (last month's published membership, its metrics)."""
    return month_end(previous_month(day.replace(day=1)))


def next_month(month_start: date) -> date:
    return (
        date(month_start.year + 1, 1, 1)
        if month_start.month == 12
        else date(month_start.year, month_start.month + 1, 1)
    )


def months_between(first: date, last: date) -> list[date]:
    """Month starts from first to last, inclusive."""
    months, current = [], first
    while current <= last:
        months.append(current)
        current = next_month(current)
    return months


def last_complete_month(today: date) -> date:
    return previous_month(date(today.year, today.month, 1))


def add_months(month_start: date, count: int) -> date:
    """The first day of the month `count` months after (or before, if negative) this one."""
    index = month_start.year * 12 + month_start.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


# Quarters, named by their first day (2025-10-01 is 2025-Q4), as the quarterly partitions.


def quarter_start(day: date) -> date:
    """The first day of the quarter `day` falls in."""
    return date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def quarter_label(day: date) -> str:
    """'2025-Q4' for any day of that quarter."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_end(day: date) -> date:
    """The last day of the quarter `day` falls in (the as-of day of its last month)."""
    return month_end(add_months(quarter_start(day), 2))


def previous_quarter(day: date) -> date:
    """The first day of the quarter before the one `day` falls in."""
    return add_months(quarter_start(day), -3)


def latest_complete_quarter(latest_month: date) -> date:
    """The first day of the latest quarter whose last month is `latest_month` or earlier:
    the quarter a strategic re-fit can run for once that month is published."""
    if latest_month.month % 3 == 0:
        return quarter_start(latest_month)
    return previous_quarter(latest_month)
