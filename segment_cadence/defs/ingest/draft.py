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


# What each source is guessed from: its columns in the order they are looked for, each with
# the kind of values it holds; the first ones are required.
DATE, ID, AMOUNT, TEXT = "date", "id", "amount", "text"
RECIPES: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "orders": [
        ("order_date", DATE, HINTS["order_date"]),
        ("customer_id", ID, HINTS["customer_id"]),
        ("amount", AMOUNT, HINTS["amount"]),
        ("order_id", ID, HINTS["order_id"]),
        ("order_line_id", ID, HINTS["order_line_id"]),
        ("category", TEXT, HINTS["category"]),
    ],
    "customers": [
        ("customer_id", ID, (*HINTS["customer_id"], "id")),
        (
            "signup_date",
            DATE,
            ("signup", "sign_up", "registered", "joined", "created", "since", "angemeldet"),
        ),
        ("region", TEXT, ("region", "area", "country", "state", "gebiet")),
        ("age_band", TEXT, ("age",)),
        ("language", TEXT, ("lang", "sprache")),
        ("email_consent", TEXT, ("consent", "opt", "einwilligung")),
    ],
    "engagement_events": [
        ("customer_id", ID, HINTS["customer_id"]),
        ("event_at", DATE, ("time", "at", "date", "when")),
        ("event_type", TEXT, ("type", "event", "action")),
        ("channel", TEXT, ("channel", "medium", "source")),
        ("event_id", ID, ("event_id", "id")),
    ],
    "campaign_sends": [
        ("customer_id", ID, HINTS["customer_id"]),
        ("campaign_id", ID, ("campaign",)),
        ("sent_at", DATE, ("sent", "time", "date", "at")),
        ("campaign_name", TEXT, ("name",)),
        ("sender_id", TEXT, ("sender", "owner")),
        ("channel", TEXT, ("channel", "medium")),
        ("targeted_segment", TEXT, ("segment", "audience")),
        ("send_id", ID, ("send_id", "message", "id")),
    ],
    "team_members": [
        ("sender_id", ID, ("sender", "member", "employee", "user", "id")),
        ("name", TEXT, ("name",)),
        ("team", TEXT, ("team", "department")),
        ("joined_date", DATE, ("joined", "start", "hired", "since", "date")),
    ],
}
REQUIRED_GUESS = {
    "orders": ("customer_id", "order_date", "amount"),
    "customers": ("customer_id",),
    "engagement_events": ("customer_id", "event_at"),
    "campaign_sends": ("customer_id", "campaign_id", "sent_at"),
    "team_members": ("sender_id",),
}
DATE_COLUMNS = ("order_date", "signup_date", "event_at", "sent_at", "joined_date")


def _which_source(columns: list[_Column]) -> str:
    """The source a file most likely is, from its header words and its values."""
    names = " ".join(c.name.lower() for c in columns)
    has_amount = any(c.decimals for c in columns)
    has_date = any(c.date_format and not c.decimals for c in columns)
    has_customer = any(h in names for h in HINTS["customer_id"])
    if "campaign" in names:
        return "campaign_sends"
    if ("event" in names or "action" in names) and has_date and not has_amount:
        return "engagement_events"
    if ("team" in names or "sender" in names) and not has_customer:
        return "team_members"
    if has_amount and has_date:
        return "orders"
    return "customers" if has_customer else "orders"


def _fits(column: _Column, kind: str) -> bool:
    if kind == DATE:
        return bool(column.date_format) and not column.decimals
    if kind == AMOUNT:
        return column.decimals
    return kind == TEXT or not column.decimals


def _map_columns(source: str, columns: list[_Column], taken: set[str]) -> dict[str, str]:
    """{canonical: file column}: by header word first, then, for the required columns, by
    the kind of values alone (an amount is the last decimal column, a customer a repeated
    id, a date the first date)."""
    mapping: dict[str, str] = {}
    for canonical, kind, words in RECIPES[source]:
        free = [c for c in columns if c.name not in taken and _fits(c, kind)]
        found = next((c for c in free if any(w in c.name.lower() for w in words)), None)
        if found is None and canonical in REQUIRED_GUESS[source]:
            if kind == AMOUNT and free:
                found = free[-1]
            elif kind == ID:
                found = next((c for c in free if c.repeats or source != "orders"), None)
            elif free:
                found = free[0]
        if found is not None:
            mapping[canonical] = found.name
            taken.add(found.name)
    return mapping


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

    source = _which_source(columns)
    taken: set[str] = set()
    mapping = _map_columns(source, columns, taken)
    required = [c for c in REQUIRED_GUESS[source] if c not in mapping]
    if required:
        notes.append(
            f"looks like {source}, but could not tell which column is {', '.join(required)}: "
            "map it by hand"
        )
    date_name = next((mapping[c] for c in DATE_COLUMNS if c in mapping), None)
    date_column = next((c for c in columns if c.name == date_name), None)
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
    amount = (
        next((c for c in columns if c.name == mapping.get("amount")), None)
        if source == "orders"
        else None
    )
    if amount is not None and any(re.search(r",\d{1,2}$", v) for v in amount.values):
        entry["decimal_separator"] = ","
    entry["columns"] = mapping
    unmapped = [c.name for c in columns if c.name not in taken]
    if unmapped:
        notes.append(f"not mapped (not needed, or map by hand): {', '.join(unmapped)}")
    return FileDraft(str(path), None if required else source, entry, notes)


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
        lines.append(f"# {found.path}: {found.source or 'not recognised'}")
        lines.extend(f"#   - {note}" for note in found.notes)
        if found.source and found.source not in sources:
            sources[found.source] = found.entry
    if "orders" not in sources:
        lines.append("# No file could be mapped as the orders, which every refresh needs.")
    body = yaml.safe_dump({"sources": sources}, sort_keys=False, allow_unicode=True)
    return "\n".join(lines) + "\n" + body, drafts
