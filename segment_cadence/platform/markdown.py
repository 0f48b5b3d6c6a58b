"""Markdown tables, the one way they are built: Dagster metadata (`MetadataValue.md`), the
strategic comparison and anything else shown as a small table of text. Tables the UI should
sort or plot are `MetadataValue.table` instead (defs/segments/assets.py)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence


def cell(value: object) -> str:
    """A value as a cell: empty for None (no data), as written otherwise."""
    return "" if value is None else str(value)


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    empty: str | None = None,
    right: Collection[int] = (),
) -> str:
    """A markdown table of `rows` under `header`, columns numbered in `right` aligned right
    (numbers). With no rows: `empty` if given (say what "nothing" means), else the header."""
    lines = ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    if not lines and empty is not None:
        return empty
    rule = "|" + "".join("---:|" if i in right else "---|" for i in range(len(header)))
    return "\n".join(["| " + " | ".join(header) + " |", rule, *lines])
