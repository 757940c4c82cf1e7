"""Reading a leaked dump as it comes: CSV of any dialect, XLSX, JSON, JSON Lines, plain text.

A dump is read as a stream of :class:`Cells` records (a CSV row, a spreadsheet
row, a JSON object, a line or paragraph of text), never whole: memory stays
bounded by one record, however large the file. What cannot be read at all
(empty, binary, an old .xls) is a :class:`DumpError` with one clear line; what
is odd inside a readable file (undecodable bytes, an overlong line, a formula
with no cached value) is counted in :class:`ReadStats` and reading goes on.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bpoguard.errors import InputError

SAMPLE_BYTES = 64 * 1024  # enough to sniff a CSV dialect and a text encoding
MAX_LINE = 1024 * 1024  # longer lines are cut: no dump row needs a megabyte
MAX_CELL = 4096  # a cell longer than this holds no single value we look for
MAX_CELLS = 512  # cells read from one record; the rest are garbage columns
MAX_JSON_RECORD = 4 * 1024 * 1024  # one JSON object larger than this is skipped
MAX_RECORDS = 1_000_000
SNIFF_LINES = 50  # lines of the sample a CSV dialect and header are judged on

_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls and .doc
_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"BZh", b"7z\xbc\xaf")
_KEY_VALUE = re.compile(r"^\s*[\w .#/()-]{1,40}\s*[:=]\s*\S")


class DumpError(InputError):
    """A dump file that cannot be read at all; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Cells:
    """One record of a dump: where it is, and its cells as (column name or None, text)."""

    number: int  # 1-based record number in the file
    where: str  # "line 41", "sheet Sheet1 row 7", "record 3"
    cells: tuple[tuple[str | None, str], ...]


@dataclass
class ReadStats:
    """What reading met besides records: the format, oddities skipped, limits reached."""

    format: str = ""
    encoding: str = ""
    records: int = 0
    replaced_bytes: bool = False  # some bytes were not valid in the encoding
    cut_lines: int = 0
    skipped_cells: int = 0  # overlong cells, formulas without cached values
    skipped_records: int = 0  # malformed JSON objects, unreadable rows
    stopped_at_limit: bool = False
    notes: list[str] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """Plain sentences for the report about what was skipped."""
        said = list(self.notes)
        if self.replaced_bytes:
            said.append(f"some bytes were not valid {self.encoding} and were replaced")
        if self.cut_lines:
            said.append(f"{self.cut_lines} overlong lines were cut at {MAX_LINE:,} characters")
        if self.skipped_cells:
            said.append(
                f"{self.skipped_cells} cells were skipped (overlong, or uncomputed formulas)"
            )
        if self.skipped_records:
            said.append(f"{self.skipped_records} malformed records were skipped")
        if self.stopped_at_limit:
            said.append(f"reading stopped after {self.records:,} records (the record limit)")
        return said


def read_dump(
    path: Path, stats: ReadStats | None = None, max_records: int = MAX_RECORDS
) -> Generator[Cells, None, None]:
    """Stream the records of a dump file, whatever its format; DumpError if it cannot be read."""
    stats = stats if stats is not None else ReadStats()
    head = _head(path)
    kind = _kind(path, head)
    stats.format = kind
    records = _xlsx(path, stats) if kind == "xlsx" else _text_records(path, head, kind, stats)
    for count, record in enumerate(records, start=1):
        if count > max_records:
            stats.stopped_at_limit = True
            return
        stats.records = count
        yield record


def dump_format(path: Path) -> str:
    """The format a dump will be read as (csv, xlsx, json, jsonl, text); DumpError if unreadable."""
    return _kind(path, _head(path))


# --- what kind of file --------------------------------------------------------------------


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            head = handle.read(SAMPLE_BYTES)
    except IsADirectoryError:
        raise DumpError(f"{path} is a folder, not a dump file") from None
    except FileNotFoundError:
        raise DumpError(f"no file {path}") from None
    except OSError as exc:
        raise DumpError(f"cannot read {path}: {exc.strerror or 'unreadable'}") from None
    if not head.strip(b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"):
        raise DumpError(f"{path} is empty: there is nothing to trace")
    return head


def _kind(path: Path, head: bytes) -> str:
    if head.startswith(_ZIP):
        if path.suffix.lower() in (".xlsx", ".xlsm") or b"xl/" in head[:4096]:
            return "xlsx"
        raise DumpError(f"{path} is a ZIP archive: unpack it and trace the files inside")
    if head.startswith(_OLE):
        raise DumpError(f"{path} is an old Excel (.xls) or Office file: save it as .xlsx or CSV")
    if head.startswith(_BINARY_MAGIC) or (_utf16_without_bom(head) is None and _looks_binary(head)):
        raise DumpError(f"{path} is a binary file, not a dump (CSV, XLSX, JSON or text)")
    text = _decode_sample(head)
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return "jsonl" if _is_json_lines(stripped) else "json"
    if path.suffix.lower() in (".csv", ".tsv") or _sniff(text) is not None:
        return "csv"
    return "text"


def _looks_binary(head: bytes) -> bool:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return False
    sample = head[:8192]
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return b"\x00" in sample or controls > len(sample) // 20


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 text saved without a byte-order mark: every other byte of it is zero."""
    sample = head[:4096]
    if len(sample) < 8 or head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    even, odd = sample[0::2], sample[1::2]
    # Latin text: the high byte of each unit is zero, the low byte never (or hardly).
    if odd.count(0) >= 0.9 * len(odd) and even.count(0) <= 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) >= 0.9 * len(even) and odd.count(0) <= 0.05 * len(odd):
        return "utf-16-be"
    return None


def _encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if (utf16 := _utf16_without_bom(head)) is not None:
        return utf16
    try:
        # A multi-byte character may straddle the end of the sample: drop a few bytes.
        head[: len(head) - 4 if len(head) == SAMPLE_BYTES else len(head)].decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"  # what spreadsheets on Windows save; undecodable bytes are replaced
    return "utf-8"


def _decode_sample(head: bytes) -> str:
    return head.decode(_encoding(head), errors="replace")


def _is_json_lines(text: str) -> bool:
    first, _, rest = text.partition("\n")
    try:
        json.loads(first)
    except ValueError:
        return False
    return bool(rest.strip())


def _sniff(text: str) -> type[csv.Dialect] | None:
    lines = [line for line in text.splitlines()[:SNIFF_LINES] if line.strip()]
    if len(lines) < 2:
        return None
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
    except csv.Error:
        return None
    # The sniffer finds a "delimiter" in prose too: demand a steady column count.
    try:
        widths = {len(row) for row in csv.reader(lines, dialect)}
    except csv.Error:
        return None
    if min(widths) < 2 or max(widths) - min(widths) > 2:
        return None
    return dialect


# --- text-based formats -------------------------------------------------------------------


def _text_records(path: Path, head: bytes, kind: str, stats: ReadStats) -> Iterator[Cells]:
    encoding = _encoding(head)
    stats.encoding = encoding
    with path.open("rb") as raw:
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        lines = _bounded_lines(text, stats)
        if kind == "csv":
            yield from _csv(lines, _decode_sample(head), stats)
        elif kind == "jsonl":
            yield from _json_lines(lines, stats)
        elif kind == "json":
            yield from _json_array(text, stats)
        else:
            yield from _plain(lines)


def _bounded_lines(text: IO[str], stats: ReadStats) -> Iterator[str]:
    """Lines of at most MAX_LINE characters; the rest of an overlong line is read and dropped."""
    while True:
        line = text.readline(MAX_LINE)
        if not line:
            return
        if "\ufffd" in line:
            stats.replaced_bytes = True
        if len(line) == MAX_LINE and not line.endswith("\n"):
            stats.cut_lines += 1
            while (rest := text.readline(MAX_LINE)) and not rest.endswith("\n"):
                pass
            line += "\n"
        yield line


def _clip(value: str, stats: ReadStats) -> str | None:
    value = value.strip()
    if not value:
        return None
    if len(value) > MAX_CELL:
        stats.skipped_cells += 1
        return None
    return value


def _first_row(sample: str, dialect: type[csv.Dialect]) -> list[str]:
    lines = sample.lstrip("\ufeff").splitlines()
    try:
        return next(csv.reader(lines[:1], dialect), [])
    except csv.Error:
        return []


def _csv(lines: Iterator[str], sample: str, stats: ReadStats) -> Iterator[Cells]:
    dialect = _sniff(sample) or csv.excel
    try:
        # The sniffer reads 21 rows at most to judge a header, but sniffs the dialect
        # of all it is given first: the first lines are enough (64 KiB took 70 ms).
        has_header = csv.Sniffer().has_header("\n".join(sample.splitlines()[:SNIFF_LINES]))
    except csv.Error:
        has_header = False
    first = _first_row(sample, dialect)
    # The sniffer misses headers over columns of text; a first row with no digit
    # and no address in it is a header in any dump we have seen.
    has_header = has_header or _is_header([c.strip() or None for c in first])
    stats.notes.append(
        f"read as CSV, delimiter {dialect.delimiter!r}, "
        + ("with a header row" if has_header else "no header row")
    )
    csv.field_size_limit(MAX_LINE)
    reader = csv.reader(lines, dialect)
    header: list[str] | None = None
    # Each position's column name: the header's, or (headerless, or past the header's
    # end) the position itself, so that a column can still be profiled.
    names: list[str | None] = []
    number = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            stats.skipped_records += 1
            continue
        if not any(c.strip() for c in row):
            continue
        if has_header and header is None:
            header = [c.strip() for c in row]
            names = [name or None for name in header]
            continue
        number += 1
        cells = []
        for k, cell in enumerate(row[:MAX_CELLS]):
            if not cell:
                continue  # most cells of a wide dump are empty: not even stripped
            value = _clip(cell, stats)
            if value is not None:
                while len(names) <= k:
                    names.append(f"#{len(names) + 1}")
                cells.append((names[k], value))
        yield Cells(number, f"line {reader.line_num}", tuple(cells))


def _flatten(value: Any, prefix: str | None, out: list[tuple[str | None, str]]) -> None:
    if len(out) >= MAX_CELLS:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, str(key) if prefix is None else f"{prefix}.{key}", out)
    elif isinstance(value, list):
        for item in value:
            _flatten(item, prefix, out)
    elif value is not None and not isinstance(value, bool):
        text = str(value).strip()
        if text and len(text) <= MAX_CELL:
            out.append((prefix, text))


def _json_cells(value: Any, number: int, where: str) -> Cells:
    cells: list[tuple[str | None, str]] = []
    _flatten(value, None, cells)
    return Cells(number, where, tuple(cells))


def _json_lines(lines: Iterator[str], stats: ReadStats) -> Iterator[Cells]:
    number = 0
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError:
            stats.skipped_records += 1
            continue
        number += 1
        yield _json_cells(value, number, f"line {line_no}")


def _json_array(text: IO[str], stats: ReadStats) -> Iterator[Cells]:
    """Objects of a top-level JSON array (or of the first array inside an object), streamed."""
    decoder = json.JSONDecoder()
    buffer = ""
    position = 0
    started = False
    number = 0
    while True:
        chunk = text.read(SAMPLE_BYTES)
        buffer = buffer[position:] + chunk
        position = 0
        if not started:
            opening = buffer.find("[")
            if opening < 0:
                if not chunk:
                    yield from _json_whole(buffer, stats)
                    return
                if len(buffer) > MAX_JSON_RECORD:
                    raise DumpError("the JSON holds no list of records to read")
                continue
            if buffer.lstrip().startswith("{") and _is_one_object(buffer):
                yield from _json_whole(buffer, stats)
                return
            position, started = opening + 1, True
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n,":
                position += 1
            if position >= len(buffer):
                break
            if buffer[position] == "]":
                return
            try:
                value, end = decoder.raw_decode(buffer, position)
            except ValueError:
                if not chunk:
                    stats.skipped_records += 1
                    return
                if len(buffer) - position > MAX_JSON_RECORD:
                    stats.skipped_records += 1
                    raise DumpError(
                        "the JSON has a record too large or malformed to read"
                    ) from None
                break
            number += 1
            yield _json_cells(value, number, f"record {number}")
            position = end
        if not chunk:
            return


def _is_one_object(buffer: str) -> bool:
    try:
        json.loads(buffer)
    except ValueError:
        return False
    return True


def _json_whole(buffer: str, stats: ReadStats) -> Iterator[Cells]:
    try:
        value = json.loads(buffer)
    except ValueError:
        raise DumpError("the file looks like JSON but does not parse") from None
    records = _first_list_of_dicts(value)
    for number, item in enumerate(records if records is not None else [value], start=1):
        yield _json_cells(item, number, f"record {number}")


def _first_list_of_dicts(value: Any) -> list[Any] | None:
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return value
    if isinstance(value, dict):
        for item in value.values():
            found = _first_list_of_dicts(item)
            if found is not None:
                return found
    return None


def _plain(lines: Iterator[str]) -> Iterator[Cells]:
    """Text from a chat or a web page: a paragraph of "key: value" lines is one record, else a line."""
    block: list[tuple[str | None, str]] = []
    block_start = 0
    number = 0
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if _KEY_VALUE.match(line):
            if not block:
                block_start = line_no
            key, _, value = re.split(r"([:=])", line, maxsplit=1)
            block.append((key.strip() or None, value.strip()))
            continue
        if block:
            number += 1
            yield Cells(number, f"line {block_start}", tuple(block[:MAX_CELLS]))
            block = []
        if line:
            number += 1
            yield Cells(number, f"line {line_no}", ((None, line[: MAX_CELL * 4]),))
    if block:
        number += 1
        yield Cells(number, f"line {block_start}", tuple(block[:MAX_CELLS]))


# --- spreadsheets -------------------------------------------------------------------------


def _xlsx(path: Path, stats: ReadStats) -> Iterator[Cells]:
    import zipfile

    from openpyxl import load_workbook  # type: ignore[import-untyped]

    stats.encoding = "xlsx"
    try:
        # data_only: a formula's cached result, never the formula (openpyxl does not
        # evaluate formulas; a cell never computed reads as empty and is skipped).
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise DumpError(f"{path} is not a readable .xlsx workbook") from None
    number = 0
    try:
        for sheet in book.worksheets:
            header: list[str] | None = None
            for row_no, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                values = [_cell_text(v, stats) for v in row[:MAX_CELLS]]
                if not any(values):
                    continue
                if header is None and row_no <= 3 and _is_header(values):
                    header = [v or "" for v in values]
                    continue
                number += 1
                cells = tuple(
                    (header[k] if header and k < len(header) and header[k] else None, v)
                    for k, v in enumerate(values)
                    if v
                )
                yield Cells(number, f"sheet {sheet.title} row {row_no}", cells)
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise DumpError(f"{path} is a damaged .xlsx workbook") from None
    finally:
        book.close()


def _cell_text(value: object, stats: ReadStats) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # card numbers typed into Excel come back as floats
    text = str(value).strip()
    if text.startswith("="):
        stats.skipped_cells += 1  # a formula stored without a cached result
        return None
    if len(text) > MAX_CELL:
        stats.skipped_cells += 1
        return None
    return text or None


def _is_header(values: list[str | None]) -> bool:
    present = [v for v in values if v]
    return bool(present) and all(
        not any(ch.isdigit() for ch in v) and "@" not in v and len(v) < 40 for v in present
    )


__all__ = ["Cells", "DumpError", "ReadStats", "dump_format", "read_dump"]
