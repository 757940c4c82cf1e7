"""Record-at-a-time importers: CSV rows and JSON records streamed, each mapped to events.

For logs that come in thousands to millions of rows (audit exports, sign-in
logs, HR and asset registers), mapping in Python is fast enough and reads
plainly; CERT's hundreds of millions of rows go through Arrow instead
(``importers.cert``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from bpoguard.errors import InputError
from bpoguard.events.importers._common import BadLine, BadLines, Progress
from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import Event

Record = Mapping[str, Any]
Convert = Callable[[Record], list[Event]]
_FRACTION: Final = re.compile(r"(\.\d{6})\d+")
_CHUNK: Final = 1 << 20
_LONGEST: Final = 64 << 20  # the longest JSON record believed
_HEAD: Final = 1 << 20  # where a Graph page's "value" array must begin


class RowProblem(Exception):
    """A row cannot be mapped; the message says which field and why (never its value)."""


class Unmapped(Exception):
    """A row of a kind this importer does not map (counted, not an error)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def parse_time(value: object, field: str) -> dt.datetime:
    """An ISO 8601 time (``Z``, an offset, or none meaning UTC; 7-digit fractions) in UTC."""
    if not isinstance(value, str) or not value.strip():
        raise RowProblem(f"{field} is missing")
    text = _FRACTION.sub(r"\1", value.strip())
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise RowProblem(f"{field} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def parse_date(value: object, field: str) -> dt.date:
    """A ``YYYY-MM-DD`` date."""
    if not isinstance(value, str):
        raise RowProblem(f"{field} is missing")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise RowProblem(f"{field} is not a date (YYYY-MM-DD)") from None


class _CountingText:
    """Text lines of a file, reporting bytes read for the progress bar."""

    def __init__(self, path: Path, progress: Progress) -> None:
        self._raw = path.open("rb")
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8-sig", newline="")
        self._size = path.stat().st_size
        self._progress = progress
        self._name = path.name
        self._lines = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._text:
            self._lines += 1
            if self._lines % 20_000 == 0:
                self._progress(self._name, self._raw.tell(), self._size)
            yield line

    def close(self) -> None:
        self._progress(self._name, self._size, self._size)
        self._text.close()


def csv_rows(
    path: Path,
    required: tuple[str, ...],
    progress: Progress,
    aliases: Mapping[str, str] | None = None,
) -> Iterator[tuple[int, Any]]:
    """Rows of a headed CSV file as dicts with their (first) line number; checks the header.

    A row with the wrong number of fields comes as a marker that becomes a bad line.
    """
    stream = _CountingText(path, progress)
    try:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path.name} is empty")
        names = [(aliases or {}).get(h.strip(), h.strip()) for h in header]
        missing = [c for c in required if c not in names]
        if missing:
            raise InputError(f"{path.name}: header lacks {', '.join(missing)}")
        start = reader.line_num + 1
        for row in reader:
            if len(row) == len(names):
                yield start, dict(zip(names, row, strict=True))
            elif row:
                yield start, _Shape(len(row), len(names))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"{path.name} line {reader.line_num}: not valid CSV ({exc})") from None
    finally:
        stream.close()


_PAGE: Final = re.compile(r'"value"\s*:\s*\[')


def json_layout(path: Path) -> str:
    """``array`` (``[...]``), ``page`` (``{"value": [...]}``, Graph's) or ``lines`` (JSON Lines)."""
    with path.open("r", encoding="utf-8-sig") as handle:
        first = handle.readline()
    start = first.lstrip()
    if start.startswith("["):
        return "array"
    if start.startswith("{"):
        try:
            json.loads(first)
        except json.JSONDecodeError:
            return "page"
    return "lines"


def json_records(path: Path, progress: Progress) -> Iterator[tuple[int, Any]]:
    """Records of a JSON array, a Graph page or JSON Lines, streamed (never read whole)."""
    size = path.stat().st_size
    layout = json_layout(path)
    with path.open("r", encoding="utf-8-sig") as handle:
        if layout == "lines":
            yield from _lines(handle, path.name, size, progress)
        else:
            head = handle.read(_HEAD)
            found = re.search(r"\[", head) if layout == "array" else _PAGE.search(head)
            if found is None:
                raise InputError(f'{path.name}: no "value" array near the start of the page')
            yield from _array(handle, head[found.end() :], path.name, size, progress)
    progress(path.name, size, size)


def _array(
    handle: io.TextIOBase, buffer: str, name: str, size: int, progress: Progress
) -> Iterator[tuple[int, Any]]:
    """Objects of a JSON array whose opening bracket has been read, until its closing one."""
    decoder = json.JSONDecoder()
    position = 0
    number = 0
    done = 0
    while True:
        # Skip separators; read on when the buffer runs short of a whole record.
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n,":
                position += 1
            if position < len(buffer):
                break
            more = handle.read(_CHUNK)
            if not more:
                raise InputError(f"{name}: the JSON array is not closed")
            done += len(buffer)
            buffer, position = more, 0
        if buffer[position] == "]":
            return
        try:
            record, end = decoder.raw_decode(buffer, position)
        except json.JSONDecodeError:
            more = handle.read(_CHUNK)
            # A record is a few KB; one that will not end is broken, not long.
            if not more or len(buffer) - position > _LONGEST:
                raise InputError(f"{name} record {number + 1}: not valid JSON") from None
            buffer, position = buffer[position:] + more, 0
            continue
        number += 1
        yield number, record
        position = end
        if position > _CHUNK:
            done += position
            buffer, position = buffer[position:], 0
            progress(name, min(done, size), size)


def _lines(
    handle: io.TextIOBase, name: str, size: int, progress: Progress
) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError:
            yield number, _NotJson()
        if number % 20_000 == 0:
            progress(name, handle.tell() if handle.seekable() else 0, size)


class _NotJson:
    """A JSON Lines line that does not parse (reported as a bad line)."""


class _Shape:
    """A CSV row with the wrong number of fields (reported as a bad line)."""

    def __init__(self, fields: int, expected: int) -> None:
        self.reason = f"has {fields} fields, expected {expected}"


def write_records(
    writer: LakeWriter,
    records: Iterator[tuple[int, Any]],
    convert: Convert,
    bad: BadLines,
    unmapped: Counter[str],
) -> tuple[int, dt.datetime | None, dt.datetime | None]:
    """Map each record to events and write them; bad records go to ``bad``, others are counted.

    An event whose id came earlier in the same file is written once (an HR
    notice's planned leaving and the leaver row for that day are one event).
    """
    seen: set[str] = set()
    rows = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    for number, record in records:
        try:
            if isinstance(record, _NotJson):
                raise RowProblem("not valid JSON")
            if isinstance(record, _Shape):
                raise RowProblem(record.reason)
            if not isinstance(record, Mapping):
                raise RowProblem("is not a JSON object")
            events = convert(record)
        except Unmapped as skip:
            unmapped[skip.what] += 1
            continue
        except RowProblem as problem:
            bad.add(number, str(problem))
            continue
        for event in events:
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            writer.write(event)
            rows += 1
            first = event.time if first is None or event.time < first else first
            last = event.time if last is None or event.time > last else last
    return rows, first, last


def field(record: Record, path: str) -> Any:
    """A value by dotted path (``status.errorCode``), or a flattened key of that name."""
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def text(value: object) -> str | None:
    """A non-empty string, or None."""
    if value is None:
        return None
    result = str(value).strip()
    return result or None


def raw_json(record: Record) -> str:
    """The source record as compact JSON (the lake's ``raw``)."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True, default=str)


__all__ = [
    "BadLine",
    "RowProblem",
    "Unmapped",
    "csv_rows",
    "field",
    "json_layout",
    "json_records",
    "parse_date",
    "parse_time",
    "raw_json",
    "text",
    "write_records",
]
