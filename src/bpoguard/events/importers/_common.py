"""What every importer shares: one file in one transaction, bad lines, streaming CSV.

A file is imported whole or not at all: its rows are staged by a
:class:`LakeWriter` and published together with the row in ``imports`` that
records its SHA-256, so importing the same bytes again adds nothing.

Bad lines: by default the first one rejects the file (nothing of it reaches the
lake) with a message naming the line, e.g. ``logon.csv line 41: date is not
MM/DD/YYYY HH:MM:SS``. With ``skip_bad`` they are skipped and counted, and the
first few line numbers reported. Messages name the column and what is wrong,
never the value.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy.exc import IntegrityError

from bpoguard.errors import InputError
from bpoguard.events import imports
from bpoguard.events.lake import LakeWriter
from bpoguard.events.schema import SCHEMA
from bpoguard.workspace import Workspace

Progress = Callable[[str, int, int], None]
KEEP_LINES: Final = 10  # line numbers kept per file in a --skip-bad report
BLOCK: Final = 8 << 20


class BadLine(InputError):
    """A line of an imported file is malformed (names the file, the line and the column)."""


@dataclass
class FileReport:
    """What happened to one file."""

    name: str
    kind: str
    status: str  # "imported" | "already imported"
    rows: int = 0
    skipped: int = 0
    bad_lines: list[str] = field(default_factory=list)
    first_time: str | None = None
    last_time: str | None = None
    sha256: str = ""


@dataclass
class ImportReport:
    """What an import command did, file by file."""

    files: list[FileReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Events (or people rows) added."""
        return sum(f.rows for f in self.files)

    def as_dict(self) -> dict[str, object]:
        """The report as plain data, for ``--json``."""
        return {
            "rows": self.rows,
            "imported": sum(f.status == "imported" for f in self.files),
            "already_imported": sum(f.status == "already imported" for f in self.files),
            "skipped_lines": sum(f.skipped for f in self.files),
            "files": [f.__dict__ for f in self.files],
            "notes": self.notes,
        }


class BadLines:
    """Bad lines of one file: the first rejects it, or (skip_bad) each is counted.

    Arrow's reader numbers the rows it parsed, not the file's lines: a bad row
    is noted by its index among the parsed rows and turned into its line
    number once the lines that did not parse at all (wrong number of fields)
    are known; those are found by their text, scanning the file forward.
    """

    def __init__(self, name: str, skip_bad: bool, unit: str = "line") -> None:
        self.name = name
        self.skip_bad = skip_bad
        self.unit = unit  # "line", or "record" in a JSON array
        self.count = 0
        self._lines: list[tuple[int, str]] = []  # (line, reason)
        self._rows: list[tuple[int, str]] = []  # (index among parsed rows, reason)
        self._unparsed: list[int] = []  # lines that did not parse, in file order
        self._finder: _LineFinder | None = None

    @property
    def examples(self) -> list[str]:
        """The first bad lines, as messages, in file order."""
        found = self._lines + [(self._line_of(i), r) for i, r in self._rows]
        return [self._message(n, r) for n, r in sorted(found)[:KEEP_LINES]]

    def add(self, line: int, reason: str) -> None:
        """Note a bad line by number; raise BadLine unless bad lines are skipped."""
        if not self.skip_bad:
            raise BadLine(self._message(line, reason))
        self.count += 1
        if len(self._lines) < KEEP_LINES:
            self._lines.append((line, reason))

    def unparsed(self, path: Path, texts: list[str], fields: int) -> None:
        """Lines Arrow could not split into ``fields`` fields (given by their text)."""
        if self._finder is None:
            self._finder = _LineFinder(path)
        for text in texts:
            line = self._finder.find(text)
            self._unparsed.append(line)
            self.add(line, f"has {text.count(',') + 1} fields, expected {fields}")

    def close(self) -> None:
        """Release the file the line finder holds open."""
        if self._finder is not None:
            self._finder.close()

    def check(self, first_row: int, problems: list[tuple[pa.Array, str]]) -> pa.Array | None:
        """Apply (bad-row mask, reason) checks to a batch; return the rows to keep, or None.

        ``first_row`` is the batch's first row's index among the parsed rows. A
        row failing several checks is reported once, with the first reason.
        """
        flags = [
            np.asarray(pc.fill_null(mask, True).to_numpy(zero_copy_only=False), dtype=bool)
            for mask, _ in problems
        ]
        if not any(f.any() for f in flags):
            return None
        bad = np.logical_or.reduce(flags)
        rows = np.flatnonzero(bad)
        for index in rows[:KEEP_LINES]:
            reason = next(r for f, (_, r) in zip(flags, problems, strict=True) if f[index])
            if not self.skip_bad:
                raise BadLine(self._message(self._line_of(first_row + int(index)), reason))
            if len(self._rows) < KEEP_LINES:
                self._rows.append((first_row + int(index), reason))
        self.count += len(rows)
        return pa.array(~bad)

    def _line_of(self, row: int) -> int:
        line = 2 + row  # line 1 is the header
        for skipped in self._unparsed:
            if skipped > line:
                break
            line += 1
        return line

    def _message(self, line: int, reason: str) -> str:
        return f"{self.name} {self.unit} {line}: {reason}"


class _LineFinder:
    """Finds lines by their text, moving forward through the file only."""

    def __init__(self, path: Path) -> None:
        self._handle = path.open("r", encoding="utf-8", errors="replace", newline="")
        self._number = 0

    def find(self, text: str) -> int:
        for line in self._handle:
            self._number += 1
            if line.rstrip("\r\n") == text.rstrip("\r\n"):
                return self._number
        raise InputError("a line that did not parse could not be found again in the file")

    def close(self) -> None:
        self._handle.close()


def sha256_of(path: Path, progress: Progress) -> str:
    """The file's SHA-256, read in blocks (a pass that costs far less than parsing it)."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    done = 0
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
            done += len(block)
            progress(f"hash {path.name}", done, size)
    progress(f"hash {path.name}", size, size)
    return digest.hexdigest()


def import_file(
    ws: Workspace,
    path: Path,
    kind: str,
    body: Callable[[LakeWriter, BadLines], tuple[int, dt.datetime | None, dt.datetime | None]],
    skip_bad: bool,
    progress: Progress,
    label: str | None = None,
    unit: str = "line",
) -> FileReport:
    """Run ``body`` (which writes the file's events) as one all-or-nothing, recorded import."""
    name = label or path.name
    sha = sha256_of(path, progress)
    with ws.store.session() as session:
        if imports.find(session, sha, kind) is not None:
            return FileReport(name=name, kind=kind, status="already imported", sha256=sha)
    writer = LakeWriter(
        ws.settings.lake_dir, source=kind.replace(".", "-"), max_buffered=500_000, background=True
    )
    bad = BadLines(name, skip_bad, unit)
    try:
        rows, first, last = body(writer, bad)
        writer.flush()
    except BaseException:
        writer.abort()
        raise
    entry = imports.ImportRecord(
        sha256=sha,
        kind=kind,
        name=name,
        rows=rows,
        skipped=bad.count,
        first_time=first,
        last_time=last,
        run_id=writer.run_id,
        imported_at=dt.datetime.now(dt.UTC),
    )
    publish(ws, writer, entry)
    return FileReport(
        name=name,
        kind=kind,
        status="imported",
        rows=rows,
        skipped=bad.count,
        bad_lines=bad.examples,
        first_time=first.isoformat() if first else None,
        last_time=last.isoformat() if last else None,
        sha256=sha,
    )


def publish(ws: Workspace, writer: LakeWriter, entry: imports.ImportRecord) -> None:
    """Publish the staged rows and record the import: both, or (on any failure) neither."""
    try:
        with ws.store.session() as session:
            imports.record(session, entry)
            session.flush()  # a duplicate (a concurrent import) fails here, before publishing
            writer.commit()
    except IntegrityError:
        writer.retract()
        raise InputError(
            f"{entry.name} was imported by another run at the same time; nothing added"
        ) from None
    except BaseException:
        writer.retract()
        raise


class _Counting(io.RawIOBase):
    """A file that reports how far it has been read, for the progress bar."""

    def __init__(self, path: Path, tick: Callable[[int], None]) -> None:
        self._handle = path.open("rb")
        self._tick = tick
        self._done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = self._handle.readinto(buffer)
        self._done += n
        self._tick(self._done)
        return n

    def close(self) -> None:
        self._handle.close()
        super().close()


def read_header(path: Path) -> list[str]:
    """The first line's column names (a UTF-8 byte-order mark is dropped)."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        line = handle.readline()
    return [c.strip() for c in line.rstrip("\r\n").split(",")] if line else []


def csv_batches(
    path: Path, names: list[str], bad: BadLines, progress: Progress
) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Stream a headed CSV file as string batches, each with its first row's index.

    Lines with the wrong number of fields are skipped by Arrow and handed to
    ``bad`` (which rejects the file unless bad lines are skipped).
    """
    unparsed: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        unparsed.append(row.text or "")
        return "skip"

    size = path.stat().st_size
    source = _Counting(path, lambda done: progress(path.name, done, size))
    reader = pacsv.open_csv(
        source,
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
        ),
    )
    row = 0
    seen = 0
    try:
        for batch in reader:
            # Unparsed lines are noted before the batch's rows are checked, so the
            # lines before a bad row are known when its number is worked out.
            if len(unparsed) > seen:
                bad.unparsed(path, unparsed[seen:], len(names))
                seen = len(unparsed)
            yield row, batch
            row += batch.num_rows
        if len(unparsed) > seen:
            bad.unparsed(path, unparsed[seen:], len(names))
    except pa.ArrowInvalid as exc:
        # Arrow's message quotes the offending text; say only where and what.
        raise InputError(f"{path.name}: not readable as CSV ({_first_words(str(exc))})") from None
    finally:
        source.close()
        bad.close()
    progress(path.name, size, size)


def _first_words(message: str) -> str:
    return message.split(":")[0][:80]


def empty_lists(n: int) -> pa.Array:
    """``n`` empty lists of strings (``reasons``, ``fields`` for sources that have none)."""
    return pa.ListArray.from_arrays(
        pa.array(np.zeros(n + 1, dtype=np.int32)), pa.array([], pa.string())
    )


def to_table(n: int, columns: dict[str, pa.Array]) -> pa.Table:
    """A batch in the lake's schema: the given columns, nulls (or empty lists) for the rest."""
    arrays = []
    for f in SCHEMA:
        if f.name in columns:
            arrays.append(columns[f.name])
        elif pa.types.is_list(f.type):
            arrays.append(empty_lists(n))
        else:
            arrays.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)


def constant(value: object, n: int, kind: pa.DataType | None = None) -> pa.Array:
    """One value repeated ``n`` times."""
    return pa.repeat(pa.scalar(value, kind), n)


def span(table: pa.Table) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Earliest and latest ``time`` of a batch."""
    if table.num_rows == 0:
        return None, None
    bounds = pc.min_max(table.column("time"))
    return bounds["min"].as_py(), bounds["max"].as_py()


def widen(
    current: tuple[dt.datetime | None, dt.datetime | None],
    more: tuple[dt.datetime | None, dt.datetime | None],
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The union of two time spans."""
    lo = [t for t in (current[0], more[0]) if t is not None]
    hi = [t for t in (current[1], more[1]) if t is not None]
    return (min(lo) if lo else None, max(hi) if hi else None)
