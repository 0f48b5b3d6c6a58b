"""How a source's files are read: format, compression, encoding, delimiter, quoting, header.

An export arrives in whatever shape its shop system writes: a CSV with semicolons, a
whitespace-aligned text log (the CDNOW master log), a TSV zipped by a mail client, Parquet
from a warehouse, JSON Lines from an event stream, Latin-1 from an old till. The mapping
says the shape (config/sources.yaml, a source's `file` section) and this module turns it
into one DuckDB relation whose columns are the file's own, as text for the text formats.

The options are always passed to DuckDB explicitly rather than sniffed from a sample: a
quoted "12,50" after the sample's last row then loads instead of crashing the load.
What DuckDB cannot read itself (zip archives, encodings other than UTF-8, UTF-16 and
Latin-1) is first copied, once per file version, to UTF-8 text under the state directory.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import shutil
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from segment_cadence.defs.ingest.errors import IngestConfigError

FORMATS = ("csv", "parquet", "jsonl")
FORMAT_ALIASES = {"tsv": "csv", "txt": "csv", "json": "jsonl", "ndjson": "jsonl"}
EXTENSION_FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".dat": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
COMPRESSIONS = ("auto", "none", "gzip", "zip")
# A delimiter written as a word, for the characters YAML makes awkward.
DELIMITER_WORDS = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
# Runs of blanks separate the fields (leading blanks ignored): `whitespace`, or a single
# space, which in a real export almost always means aligned columns.
WHITESPACE = "whitespace"
# The encodings DuckDB decodes itself; any other Python codec is transcoded first.
NATIVE_ENCODINGS = {"utf-8": "utf-8", "utf-16": "utf-16", "latin-1": "latin-1"}
SHAPE_FIELDS = (
    "delimiter",
    "header",
    "names",
    "quote",
    "escape",
    "encoding",
    "compression",
    "skip_rows",
)
# Never in a text export: the whitespace reader takes each line whole with it.
_LINE_DELIMITER = "\x1f"


@dataclass(frozen=True)
class FileShape:
    """What DuckDB needs to know to read a source's files; the defaults read a plain CSV."""

    format: str = "csv"
    delimiter: str = ","
    header: bool = True
    names: tuple[str, ...] = ()
    quote: str = '"'
    escape: str = '"'
    encoding: str = "utf-8"
    compression: str = "auto"
    skip_rows: int = 0

    @property
    def whitespace(self) -> bool:
        return self.delimiter == WHITESPACE


def _without_compression(name: str) -> str:
    lowered = name.lower()
    for suffix in (".gz", ".gzip", ".zip"):
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)]
    return lowered


def format_from_name(name: str) -> str | None:
    """The format a file name implies (orders.csv.gz is CSV), or None."""
    return EXTENSION_FORMATS.get(Path(_without_compression(name)).suffix)


def compression_of(name: str, declared: str) -> str:
    if declared != "auto":
        return declared
    lowered = name.lower()
    if lowered.endswith((".gz", ".gzip")):
        return "gzip"
    return "zip" if lowered.endswith(".zip") else "none"


def _encoding(value: Any, where: str) -> str:
    try:
        name = codecs.lookup(str(value)).name
    except LookupError:
        raise IngestConfigError(
            f"{where}.encoding: unknown encoding {value!r}; e.g. utf-8, latin-1, cp1252, utf-16"
        ) from None
    aliases = {"iso8859-1": "latin-1", "utf-16": "utf-16", "utf-8": "utf-8"}
    return aliases.get(name, name)


def _delimiter(value: Any, where: str) -> str:
    text = str(value)
    if text in (WHITESPACE, " "):
        return WHITESPACE
    text = DELIMITER_WORDS.get(text.lower(), text.replace("\\t", "\t"))
    if len(text) != 1:
        raise IngestConfigError(
            f"{where}.delimiter: {value!r} is not one character; write it as ',' ';' '|', "
            f"'tab' or '{WHITESPACE}' (runs of blanks)"
        )
    return text


def _character(value: Any, where: str, field: str) -> str:
    text = "" if value is None else str(value)
    if len(text) > 1:
        raise IngestConfigError(
            f"{where}.{field}: {value!r} must be one character, or empty for none"
        )
    return text


def parse_shape(raw: dict[str, Any], data_path: str, where: str) -> FileShape:
    """The shape of a source from its mapping entry: `format` and the `file` section (the
    older `csv` section is read the same way); `where` names the entry in errors."""
    declared = raw.get("format")
    if declared is None:
        fmt = format_from_name(data_path) or "csv"
    else:
        fmt = FORMAT_ALIASES.get(str(declared).lower(), str(declared).lower())
        if fmt not in FORMATS:
            raise IngestConfigError(
                f"{where}.format: {declared!r} is not a format; use csv, tsv, parquet or jsonl"
            )
    options = dict(raw.get("csv") or {})
    options.update(raw.get("file") or {})
    unknown = sorted(set(map(str, options)) - set(SHAPE_FIELDS))
    if unknown:
        raise IngestConfigError(
            f"{where}.file: unknown option {', '.join(repr(u) for u in unknown)}; "
            f"the options are {', '.join(SHAPE_FIELDS)}"
        )
    tab_separated = str(declared).lower() == "tsv" or Path(
        _without_compression(data_path)
    ).suffix in (".tsv", ".tab")
    compression = str(options.get("compression", "auto")).lower()
    if compression not in COMPRESSIONS:
        raise IngestConfigError(
            f"{where}.file.compression: {compression!r}; use auto, none, gzip or zip"
        )
    names = options.get("names") or ()
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise IngestConfigError(f"{where}.file.names: expected a list of column names")
    skip = options.get("skip_rows", 0)
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise IngestConfigError(f"{where}.file.skip_rows: expected a whole number, got {skip!r}")
    header = options.get("header", not names)
    if not isinstance(header, bool):
        raise IngestConfigError(f"{where}.file.header: expected true or false, got {header!r}")
    return FileShape(
        format=fmt,
        delimiter=_delimiter(options.get("delimiter", "\t" if tab_separated else ","), where),
        header=header,
        names=tuple(names),
        quote=_character(options.get("quote", '"'), where, "quote"),
        escape=_character(options.get("escape", options.get("quote", '"')), where, "escape"),
        encoding=_encoding(options.get("encoding", "utf-8"), where + ".file"),
        compression=compression,
        skip_rows=skip,
    )


def _digest(path: str) -> str:
    stat = Path(path).stat()
    return hashlib.sha256(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]


def _zip_members(path: str) -> Iterator[tuple[str, io.BufferedIOBase]]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise IngestConfigError(f"{path}: not a zip archive (file.compression is zip)") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if not members:
            raise IngestConfigError(f"{path}: the zip archive holds no file")
        for member in members:
            with archive.open(member) as stream:
                yield member.filename, stream  # type: ignore[misc]


def _copy_as_utf8(stream: io.BufferedIOBase, encoding: str, target: Path) -> None:
    partial = target.with_suffix(target.suffix + ".partial")
    with (
        io.TextIOWrapper(stream, encoding=encoding, newline="") as text,  # type: ignore[arg-type]
        partial.open("w", encoding="utf-8", newline="") as out,
    ):
        shutil.copyfileobj(text, out, 1 << 20)
    partial.replace(target)


def _copy(stream: io.BufferedIOBase, target: Path) -> None:
    partial = target.with_suffix(target.suffix + ".partial")
    with partial.open("wb") as out:
        shutil.copyfileobj(stream, out, 1 << 20)
    partial.replace(target)


def readable_files(files: list[str], shape: FileShape, cache: Path) -> tuple[list[str], FileShape]:
    """The files as DuckDB will read them and their shape: the originals where it can, else
    plain UTF-8 or unzipped copies under `cache`, made once per file version (name, size
    and mtime)."""
    transcode = shape.format != "parquet" and shape.encoding not in NATIVE_ENCODINGS
    if not transcode and not any(compression_of(f, shape.compression) == "zip" for f in files):
        return files, shape
    readable: list[str] = []
    for name in files:
        compression = compression_of(name, shape.compression)
        folder = cache / _digest(name)
        done = folder / ".complete"
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            if compression == "zip":
                members = _zip_members(name)
            else:
                opened = gzip.open(name) if compression == "gzip" else open(name, "rb")  # noqa: SIM115
                members = iter([(Path(_without_compression(name)).name, opened)])
            for index, (member, stream) in enumerate(members):
                target = folder / f"{index:04d}-{Path(member).name}"
                if transcode:
                    _copy_as_utf8(stream, shape.encoding, target)
                else:
                    _copy(stream, target)
                stream.close()
            done.touch()
        readable.extend(str(p) for p in sorted(folder.iterdir()) if p.name != ".complete")
    encoding = "utf-8" if transcode else shape.encoding
    return readable, replace(shape, compression="none", encoding=encoding)


def _listing(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def quoted(column: str) -> str:
    """A DuckDB identifier in double quotes (a quote inside is doubled): a file's column
    names are whatever its export wrote."""
    return '"' + column.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(path: str, shape: FileShape) -> str:
    opener = gzip.open if compression_of(path, shape.compression) == "gzip" else open
    encoding = shape.encoding if shape.encoding in NATIVE_ENCODINGS else "utf-8"
    with opener(path, "rt", encoding=encoding, errors="replace") as text:  # type: ignore[operator]
        for index, line in enumerate(text):
            if index >= shape.skip_rows and line.strip():
                return line
    return ""


def _whitespace_reader(files: list[str], shape: FileShape) -> str:
    """Aligned text: each line whole, split on runs of blanks. The names come from the
    first line (header) or the mapping (names), else column0, column1, ..."""
    header = _first_line(files[0], shape).split() if files else []
    names = list(shape.names) or (header if shape.header else [])
    if not names:
        names = [f"column{i}" for i in range(len(_first_line(files[0], shape).split()))]
    lines = (
        f"read_csv({_listing(files)}, columns = {{'_line': 'VARCHAR'}}, header = false, "
        f"auto_detect = false, delim = '{_LINE_DELIMITER}', quote = '', escape = '', "
        f"skip = {shape.skip_rows + (1 if shape.header else 0)}, compression = '{_compression(shape)}', "
        f"encoding = '{NATIVE_ENCODINGS.get(shape.encoding, 'utf-8')}')"
    )
    fields = ", ".join(f'_f[{i + 1}] as "{n.replace(chr(34), "")}"' for i, n in enumerate(names))
    return (
        f"(select {fields} from (select string_split_regex(trim(_line), '\\s+') as _f "
        f"from {lines} where trim(_line) <> ''))"
    )


def _compression(shape: FileShape) -> str:
    """DuckDB's compression option: gzip when declared, else from each file's extension."""
    return {"gzip": "gzip", "none": "none"}.get(shape.compression, "auto")


def reader(files: list[str], shape: FileShape) -> str:
    """A DuckDB relation over the (readable) files: their own columns, text for the text
    formats, native types for Parquet and JSON Lines; Parquet adds file_row_number."""
    listing = _listing(files)
    if shape.format == "parquet":
        return f"read_parquet({listing}, union_by_name = true, file_row_number = true)"
    if shape.format == "jsonl":
        compression = {"auto": "auto_detect"}.get(_compression(shape), _compression(shape))
        return (
            f"read_json({listing}, format = 'newline_delimited', union_by_name = true, "
            f"compression = '{compression}')"
        )
    if shape.whitespace:
        return _whitespace_reader(files, shape)
    options = [
        "all_varchar = true",
        f"header = {str(shape.header).lower()}",
        f"delim = {_literal(shape.delimiter)}",
        f"quote = {_literal(shape.quote)}",
        f"escape = {_literal(shape.escape)}",
        f"skip = {shape.skip_rows}",
        f"encoding = '{NATIVE_ENCODINGS.get(shape.encoding, 'utf-8')}'",
        f"compression = '{_compression(shape)}'",
        "union_by_name = true",
    ]
    if shape.names:
        options.append("names = [" + ", ".join(_literal(n) for n in shape.names) + "]")
    return f"read_csv({listing}, {', '.join(options)})"
