"""A first draft of config/sources.yaml from a sample of each file (`sources init`).

It guesses what a person would from the first lines: the delimiter (or aligned columns),
whether there is a header, which column is the customer, the date and the amount, the date
format, and which source the file is. What it cannot decide it says, in the draft's
comments and on the terminal, rather than guessing silently: the draft is checked with
`sources check` before anything is refreshed.
"""

from __future__ import annotations

import gzip
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import yaml

from segment_cadence.defs.ingest import file_shapes
from segment_cadence.defs.ingest.errors import SourceFileError

SAMPLE_LINES = 200
DELIMITERS = (",", ";", "\t", "|")
# Words in a header that say what a column is, by canonical column.
HINTS: dict[str, tuple[str, ...]] = {
    "customer_id": ("customer", "client", "kunde", "buyer", "user", "member", "cust", "account"),
    "order_date": ("date", "day", "placed", "created", "ordered", "time", "datum"),
    "amount": ("amount", "total", "price", "value", "dollar", "revenue", "sales", "spend"),
    "order_id": ("order", "invoice", "receipt", "transaction", "basket"),
    "order_line_id": ("line", "item_id", "position"),
    "category": ("category", "type", "product_type", "department"),
}
_NUMBER = re.compile(r"^[-+]?[$€£¥₹]?\s*\d[\d.,' ]*\s*[$€£¥₹]?$")
_DECIMAL = re.compile(r"^[-+]?[$€£¥₹]?\s*\d+([.,]\d{1,4})$")
_INTEGER = re.compile(r"^\d+$")


@dataclass
class FileDraft:
    """What was guessed about one file, and what was not."""

    path: str
    source: str | None
    entry: dict[str, object]
    notes: list[str] = field(default_factory=list)


def _sample_bytes(path: Path) -> bytes:
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            member = next(m for m in archive.infolist() if not m.is_dir())
            with archive.open(member) as stream:
                return stream.read(1 << 16)
    opener = gzip.open if name.endswith((".gz", ".gzip")) else open
    with opener(path, "rb") as stream:  # type: ignore[operator]
        return stream.read(1 << 16)


def _decoded(raw: bytes) -> tuple[str, str]:
    """The sample as text and its encoding: UTF-8 when it decodes (a character cut at the
    sample's end aside), else Windows Western, the usual other."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as error:
        if error.start >= len(raw) - 3:
            return raw[: error.start].decode("utf-8"), "utf-8"
        return raw.decode("cp1252", errors="replace"), "cp1252"


def _rows(text: str) -> tuple[str, list[list[str]]]:
    lines = [line for line in text.splitlines()[:SAMPLE_LINES] if line.strip()]
    if len(lines) > 2:
        lines = lines[:-1]  # the last one may be cut by the sample
    best, best_width = file_shapes.WHITESPACE, 0
    for delimiter in DELIMITERS:
        widths = {len(line.split(delimiter)) for line in lines}
        if len(widths) == 1 and (width := widths.pop()) > max(best_width, 1):
            best, best_width = delimiter, width
    if best == file_shapes.WHITESPACE:
        return best, [line.split() for line in lines]
    return best, [[v.strip().strip('"') for v in line.split(best)] for line in lines]


def _looks_like_header(rows: list[list[str]]) -> bool:
    if len(rows) < 2:
        return False
    numbers_first = sum(bool(_NUMBER.match(v)) for v in rows[0])
    numbers_next = sum(bool(_NUMBER.match(v)) for v in rows[1])
    return numbers_first < numbers_next or (numbers_first == 0 and numbers_next == 0)


def _date_format(values: list[str]) -> str | None:
    """The one format that reads every sampled value, if there is exactly one."""
    candidates = {
        "yyyymmdd": "%Y%m%d",
        "%Y-%m-%d": "%Y-%m-%d",
        "%d/%m/%Y": "%d/%m/%Y",
        "%m/%d/%Y": "%m/%d/%Y",
        "%d.%m.%Y": "%d.%m.%Y",
        "%Y/%m/%d": "%Y/%m/%d",
    }
    readable = []
    for name, pattern in candidates.items():
        try:
            for value in values:
                day = datetime.strptime(value[:10] if "-" in value else value, pattern)
                if not 1900 <= day.year <= 2100:
                    raise ValueError
        except ValueError:
            continue
        readable.append(name)
    if "%Y-%m-%d" in readable:
        return "iso"
    return readable[0] if len(readable) == 1 else ("ambiguous" if readable else None)


@dataclass(frozen=True)
class _Column:
    name: str
    values: list[str]

    @property
    def date_format(self) -> str | None:
        return _date_format(self.values) if self.values else None

    @property
    def integers(self) -> bool:
        return bool(self.values) and all(_INTEGER.match(v) for v in self.values)

    @property
    def decimals(self) -> bool:
        return (
            bool(self.values)
            and all(_NUMBER.match(v) for v in self.values)
            and any(_DECIMAL.match(v) for v in self.values)
        )

    @property
    def repeats(self) -> bool:
        return len(set(self.values)) < len(self.values)


def _hinted(columns: list[_Column], canonical: str, taken: set[str]) -> _Column | None:
    for column in columns:
        lowered = column.name.lower()
        if column.name not in taken and any(h in lowered for h in HINTS[canonical]):
            return column
    return None


def draft_file(path: Path) -> FileDraft:
    """Guess the entry of one file: shape, columns, date format, which source."""
    if not path.exists():
        raise SourceFileError(f"{path}: no such file")
    fmt = file_shapes.format_from_name(path.name)
    notes: list[str] = []
    if fmt == "parquet" or fmt == "jsonl":
        reader = file_shapes.reader([str(path)], file_shapes.FileShape(format=fmt))
        con = duckdb.connect()
        try:
            sample = con.execute(f"select * from {reader} limit {SAMPLE_LINES}").fetchall()
            names = [d[0] for d in con.description if d[0] != "file_row_number"]
        finally:
            con.close()
        rows = [[("" if v is None else str(v)) for v in row[: len(names)]] for row in sample]
        header, entry = names, {"path": str(path.resolve())}
    else:
        text, encoding = _decoded(_sample_bytes(path))
        delimiter, rows = _rows(text)
        has_header = _looks_like_header(rows)
        header = (
            rows[0] if has_header else [f"column{i}" for i in range(len(rows[0]) if rows else 0)]
        )
        rows = rows[1:] if has_header else rows
        entry = {"path": str(path.resolve()), "format": "csv"}
        options: dict[str, object] = {}
        if delimiter != ",":
            options["delimiter"] = {"\t": "tab", "|": "pipe"}.get(delimiter, delimiter)
        if not has_header:
            options["header"] = False
            notes.append("no header line: the columns are named column0, column1, ...")
        if encoding != "utf-8":
            options["encoding"] = encoding
            notes.append("not UTF-8: read as cp1252 (Windows Western); change if wrong")
        if options:
            entry["file"] = options
    columns = [
        _Column(name, [r[i] for r in rows if i < len(r) and r[i]]) for i, name in enumerate(header)
    ]
    mapping: dict[str, str] = {}
    taken: set[str] = set()

    def take(canonical: str, column: _Column | None) -> None:
        if column is not None:
            mapping[canonical] = column.name
            taken.add(column.name)

    dated = [c for c in columns if c.date_format and not c.decimals]
    take("order_date", _hinted(dated, "order_date", taken) or (dated[0] if dated else None))
    take(
        "customer_id",
        _hinted(columns, "customer_id", taken)
        or next((c for c in columns if c.name not in taken and c.repeats and not c.decimals), None),
    )
    amounts = [c for c in columns if c.name not in taken and c.decimals]
    take("amount", _hinted(amounts, "amount", taken) or (amounts[-1] if amounts else None))
    for optional in ("order_id", "order_line_id", "category"):
        take(optional, _hinted([c for c in columns if c.name not in taken], optional, taken))
    missing = [c for c in ("customer_id", "order_date", "amount") if c not in mapping]
    source = "orders" if not missing else None
    if missing:
        notes.append(
            f"could not tell which column is {', '.join(missing)}: not mapped as orders; "
            "if this is another source (customers, engagement_events, campaign_sends, "
            "team_members), map it by hand"
        )
    date_column = next((c for c in columns if c.name == mapping.get("order_date")), None)
    if date_column is not None:
        guessed = date_column.date_format
        if guessed == "ambiguous":
            notes.append(
                f"{date_column.name}: day-first or month-first cannot be told from the sample "
                f"(e.g. {date_column.values[0]!r}); set date_format to dayfirst or monthfirst"
            )
            entry["date_format"] = "dayfirst"
        elif guessed and guessed != "iso":
            entry["date_format"] = guessed
    amount = next((c for c in columns if c.name == mapping.get("amount")), None)
    if amount is not None and any(re.search(r",\d{1,2}$", v) for v in amount.values):
        entry["decimal_separator"] = ","
    entry["columns"] = mapping
    unmapped = [c.name for c in columns if c.name not in taken]
    if unmapped:
        notes.append(f"not mapped (not needed, or map by hand): {', '.join(unmapped)}")
    return FileDraft(str(path), source, entry, notes)


def draft(paths_: list[Path]) -> tuple[str, list[FileDraft]]:
    """The commented YAML draft of a mapping for these files, and what was guessed."""
    drafts = [draft_file(p) for p in paths_]
    sources: dict[str, dict[str, object]] = {}
    lines = [
        "# A draft written by `segment-cadence sources init`: check it with",
        "# `segment-cadence sources check --sources THIS_FILE`, then refresh.",
        "# The fields are described in config/sources.yaml.",
    ]
    for found in drafts:
        lines.append(f"# {found.path}: {'orders' if found.source else 'not recognised'}")
        lines.extend(f"#   - {note}" for note in found.notes)
        if found.source and found.source not in sources:
            sources[found.source] = found.entry
    if "orders" not in sources:
        lines.append("# No file could be mapped as the orders, which every refresh needs.")
    body = yaml.safe_dump({"sources": sources}, sort_keys=False, allow_unicode=True)
    return "\n".join(lines) + "\n" + body, drafts
