"""How the review pack writes a number: rates and shares as percentages, money in the
retailer's currency, counts with thousands separators.

The pack's sections keep raw numbers in their `figures` and tables (a test compares them with
the tables they come from); these functions are applied only when a pack is rendered, so the
words on the page and the numbers in the warehouse never drift apart. The currency is a
presentation setting (`currency` in config/thresholds.yaml `settings`, a routing setting: it
changes no definition version).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

# The symbols the pack knows; any other ISO code is written before the amount ("CHF 12,340").
CURRENCY_SYMBOLS = {"GBP": "£", "EUR": "€", "USD": "$"}

# How a table column is shown (Table.kinds): a rate or share, an amount of money, or as is.
PERCENT = "percent"
MONEY = "money"


def percent(value: float | None) -> str:
    """A rate or share (0.413) as a reader says it ("41.3%")."""
    return "" if value is None else f"{value * 100:.1f}%"


def money(value: float | None, currency: str | None) -> str:
    """An amount in whole units of the configured currency ("£12,340", "CHF 12,340"); the bare
    number when no currency is configured."""
    if value is None:
        return ""
    sign = "-" if value < 0 else ""
    amount = f"{abs(value):,.0f}"
    if not currency:
        return f"{sign}{amount}"
    code = str(currency).upper()
    symbol = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{code} {amount}"


def count(value: Any) -> str:
    """A headline count, or what stands in for one ("not evaluated", "no data")."""
    if value is None:
        return "no data"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def cell(value: Any, kind: str = "", currency: str | None = None) -> str:
    """One table cell: empty for None, dates to the minute, a column's kind applied."""
    if value is None:
        return ""
    if kind == PERCENT and isinstance(value, int | float):
        return percent(value)
    if kind == MONEY and isinstance(value, int | float):
        return money(value, currency)
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, datetime | date):
        return value.isoformat()[:16].replace("T", " ")
    return str(value)
