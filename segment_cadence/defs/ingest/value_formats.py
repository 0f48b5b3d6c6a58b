"""How a source writes its dates and amounts, and the DuckDB that rewrites them canonically.

The ingest rules (dbt, macros/ingest.sql) read ISO dates and timestamps and amounts with a
decimal point, on DuckDB and on Spark alike. Everything else a file may hold (19970101,
05/01/2025, 1/5/2025 3:04 PM, 2025-01-05T10:00:00+02:00, epoch seconds, "€ 1.234,50") is
rewritten here, at the front door, into that canonical text, in a column of the landing
next to the file's own (`_as_<canonical column>`). A value that matches no declared format
is passed on as written, so the rules still say "unparseable" and quarantine it with the
original record: nothing is turned silently into NULL.

Time zones: a timestamp with an offset becomes UTC; one without is taken as written. A
date column keeps the calendar day as written, whatever the offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from segment_cadence.defs.ingest.errors import IngestConfigError

# Named families of formats, tried in order. A named family reads dates with or without a
# time of day. Two-digit years come first: %Y would read 01/12/97 as the year 97, while %y
# refuses a four-digit year (the digits left over).
_TIMES = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p")
DATE_FORMAT_WORDS: dict[str, tuple[str, ...]] = {
    "yyyymmdd": ("%Y%m%d",),
    "dayfirst": tuple(
        day + time
        for day in ("%d/%m/%y", "%d.%m.%y", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y")
        for time in _TIMES
    ),
    "monthfirst": tuple(
        day + time for day in ("%m/%d/%y", "%m/%d/%Y", "%m-%d-%Y") for time in _TIMES
    ),
}
# Not strptime patterns: ISO 8601 with an optional offset, and seconds or milliseconds
# since 1970-01-01 UTC.
ISO, EPOCH, EPOCH_MS = "iso", "epoch", "epoch_ms"
SPECIAL_FORMATS = (ISO, EPOCH, EPOCH_MS)
# Text a date column may not need a format for: what the rules cast themselves.
_OFFSET = r"(Z|[+-]\d\d(:?\d\d)?)$"


@dataclass(frozen=True)
class ValueFormats:
    """A source's date formats (tried in order) and number separators."""

    date_formats: tuple[str, ...] = ()
    decimal_separator: str = "."
    thousands_separator: str = ""


def _date_formats(value: Any, where: str) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    listed = [value] if isinstance(value, str | int) else value
    if not isinstance(listed, list) or not all(isinstance(v, str | int) for v in listed):
        raise IngestConfigError(
            f"{where}.date_format: expected a format or a list of them, got {value!r}"
        )
    formats: list[str] = []
    for item in map(str, listed):
        word = item.strip().lower()
        if word in DATE_FORMAT_WORDS:
            formats.extend(DATE_FORMAT_WORDS[word])
        elif word in SPECIAL_FORMATS:
            formats.append(word)
        elif "%" in item:
            formats.append(item)
        else:
            raise IngestConfigError(
                f"{where}.date_format: {item!r} is neither a strptime pattern (such as "
                f"'%d/%m/%Y') nor one of {', '.join([*DATE_FORMAT_WORDS, *SPECIAL_FORMATS])}"
            )
    return tuple(formats)


def _separator(value: Any, where: str, field: str, allowed: tuple[str, ...]) -> str:
    text = "" if value is None else str(value)
    if text not in allowed:
        shown = ", ".join(repr(a) for a in allowed)
        raise IngestConfigError(f"{where}.{field}: {value!r}; use one of {shown}")
    return text


def parse_value_formats(raw: dict[str, Any], where: str) -> ValueFormats:
    """The `date_format`, `decimal_separator` and `thousands_separator` of a mapping entry."""
    decimal = _separator(raw.get("decimal_separator", "."), where, "decimal_separator", (".", ","))
    thousands = _separator(
        raw.get("thousands_separator", ""), where, "thousands_separator", ("", ",", ".", " ", "'")
    )
    if thousands == decimal:
        raise IngestConfigError(
            f"{where}: thousands_separator and decimal_separator are both {decimal!r}"
        )
    return ValueFormats(_date_formats(raw.get("date_format"), where), decimal, thousands)


def _strptime(text: str, formats: tuple[str, ...]) -> str:
    patterns = ", ".join("'" + f.replace("'", "''") + "'" for f in formats)
    parsed = f"try_strptime({text}, [{patterns}])"
    # A pattern with an offset gives an instant: in UTC, as a plain timestamp.
    return f"timezone('UTC', {parsed})" if any("%z" in f for f in formats) else parsed


def _instant(text: str, fmt: str, kind: str) -> str:
    if fmt == ISO:
        if kind == "date":
            return f"try_cast({text} as date)"
        return (
            f"case when regexp_matches({text}, '{_OFFSET}') "
            f"then timezone('UTC', try_cast({text} as timestamptz)) "
            f"else try_cast({text} as timestamp) end"
        )
    if fmt in (EPOCH, EPOCH_MS):
        scale = " / 1000" if fmt == EPOCH_MS else ""
        return f"timezone('UTC', to_timestamp(try_cast({text} as double){scale}))"
    return _strptime(text, (fmt,))


def date_expression(column: str, kind: str, formats: ValueFormats) -> str:
    """The canonical text of a date or timestamp column: ISO, or the value as written when
    no declared format reads it. Text timestamps with an offset are read as instants even
    without a declared format (DuckDB's own cast would drop the offset)."""
    text = f"nullif(trim(cast({column} as varchar)), '')"
    declared = formats.date_formats or (ISO,)
    groups: list[list[str]] = []
    for fmt in declared:  # consecutive strptime patterns go in one try_strptime call
        if fmt in SPECIAL_FORMATS or not groups or groups[-1][0] in SPECIAL_FORMATS:
            groups.append([fmt])
        else:
            groups[-1].append(fmt)
    parsed = [
        _instant(text, group[0], kind)
        if group[0] in SPECIAL_FORMATS
        else _strptime(text, tuple(group))
        for group in groups
    ]
    sql_type, pattern = (
        ("date", "%Y-%m-%d") if kind == "date" else ("timestamp", "%Y-%m-%d %H:%M:%S.%f")
    )
    first = parsed[0] if len(parsed) == 1 else f"coalesce({', '.join(parsed)})"
    return f"coalesce(strftime(cast({first} as {sql_type}), '{pattern}'), {text})"


def amount_expression(column: str, formats: ValueFormats) -> str:
    """The canonical text of an amount: currency symbols and codes, blanks and thousands
    separators removed, a decimal comma made a point; the value as written when that still
    is not a number. With the default separators a value that is already a number is left
    alone, so only the odd ones pay for the rewriting."""
    text = f"nullif(trim(cast({column} as varchar)), '')"
    cleaned = f"regexp_replace({text}, '[\\s\\p{{Sc}}]|[A-Za-z]{{3}}', '', 'g')"
    if formats.thousands_separator:
        cleaned = f"replace({cleaned}, '{formats.thousands_separator}', '')"
    if formats.decimal_separator == ",":
        cleaned = f"replace({cleaned}, ',', '.')"
    rewritten = (
        f"case when try_cast({cleaned} as double) is not null then {cleaned} else {text} end"
    )
    if formats.decimal_separator == "." and not formats.thousands_separator:
        return f"case when try_cast({text} as double) is not null then {text} else {rewritten} end"
    return rewritten


def line_amount_expression(unit_price: str, quantity: str | None, formats: ValueFormats) -> str:
    """The amount of a line item written as a unit price and a quantity (a shop export):
    their product, as canonical text; when either is not a number, the value as written, so
    the rules say "unparseable amount"."""
    price = amount_expression(unit_price, formats)
    if quantity is None:
        return price
    count = amount_expression(quantity, formats)
    product = f"try_cast({price} as double) * try_cast({count} as double)"
    written = f"nullif(trim(cast({unit_price} as varchar)), '')"
    return f"coalesce(cast(round({product}, 6) as varchar), {written})"
