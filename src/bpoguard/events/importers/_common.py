"""What every importer shares: one file in one transaction, bad lines, big CSV in ranges.

A file is imported whole or not at all: its rows are staged by a
:class:`LakeWriter` and published together with the row in ``imports`` that
records its SHA-256, so importing the same bytes again adds nothing.

A big CSV file (CERT's) is cut into byte ranges of whole lines
(:func:`line_ranges`, :data:`CHUNK` bytes each) that worker processes read,
parse, map and encode side by side (:func:`import_ranges`), each into the
run's staging folder; memory is bounded by the range size times the workers,
whatever the file's size. Lines are numbered by adding up the ranges' line
counts.

Bad lines: by default the first one rejects the file (nothing of it reaches the
lake) with a message naming the line, e.g. ``logon.csv line 41: date is not
MM/DD/YYYY HH:MM:SS``. With ``skip_bad`` they are skipped and counted, and the
first few line numbers reported. Messages name the column and what is wrong,
never the value.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import hashlib
import multiprocessing
import os
import signal
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

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
# Bytes of CSV one worker reads, parses, maps and encodes at a time: large enough
# that each range costs far more than handing it over, small enough that two
# workers stay well under a gigabyte each.
CHUNK: Final = 32 << 20
# ... which it works through in pieces of this size: column passes over a few
# MB stay in the processor's cache, over 32 MB they do not.
PIECE: Final = 8 << 20


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
    """Bad lines of one file: the first rejects it, or (skip_bad) each is counted."""

    def __init__(self, name: str, skip_bad: bool, unit: str = "line") -> None:
        self.name = name
        self.skip_bad = skip_bad
        self.unit = unit  # "line", or "record" in a JSON array
        self.count = 0
        self._lines: list[tuple[int, str]] = []  # (line, reason), the first few in file order

    @property
    def examples(self) -> list[str]:
        """The first bad lines, as messages, in file order."""
        return [self._message(n, r) for n, r in sorted(self._lines)[:KEEP_LINES]]

    def add(self, line: int, reason: str) -> None:
        """Note a bad line by number; raise BadLine unless bad lines are skipped."""
        if not self.skip_bad:
            raise BadLine(self._message(line, reason))
        self.count += 1
        if len(self._lines) < KEEP_LINES:
            self._lines.append((line, reason))

    def extend(self, first_line: int, lines: list[tuple[int, str]], count: int) -> None:
        """Note one range's ``count`` bad lines, the first few given by their index in it.

        Ranges come in file order, so the lines kept are the file's first.
        """
        if count and not self.skip_bad:
            raise BadLine(self._message(first_line + lines[0][0], lines[0][1]))
        self.count += count
        room = KEEP_LINES - len(self._lines)
        self._lines.extend((first_line + n, r) for n, r in lines[: max(room, 0)])

    def _message(self, line: int, reason: str) -> str:
        return f"{self.name} {self.unit} {line}: {reason}"


def sha256_of(path: Path, progress: Progress, between: Callable[[], None] | None = None) -> str:
    """The file's SHA-256, read in blocks (a pass that costs far less than parsing it).

    ``between`` is called after each block (to report work going on meanwhile).
    """
    digest = hashlib.sha256()
    size = path.stat().st_size
    done = 0
    with path.open("rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
            done += len(block)
            progress(f"hash {path.name}", done, size)
            if between is not None:
                between()
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
    return _record(ws, writer, sha, kind, name, rows, (first, last), bad)


def _record(
    ws: Workspace,
    writer: LakeWriter,
    sha: str,
    kind: str,
    name: str,
    rows: int,
    bounds: tuple[dt.datetime | None, dt.datetime | None],
    bad: BadLines,
) -> FileReport:
    first, last = bounds
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


def import_ranges(
    ws: Workspace,
    path: Path,
    kind: str,
    tasks: Callable[[LakeWriter, list[tuple[int, int]]], list[Any]],
    convert: Callable[[Any], RangeResult],
    skip_bad: bool,
    progress: Progress,
    pool: Executor | None,
) -> FileReport:
    """Import a big CSV file as one recorded, all-or-nothing import, its byte ranges in parallel.

    ``tasks(writer, ranges)`` describes each range's work; ``convert(task)``
    (a module-level function, run in ``pool``'s worker processes, or here when
    there is no pool) parses, checks and maps the range and stages its
    Parquet files in ``writer.staging``. A file new to the workspace is
    hashed while the workers run (when its bytes were imported before after
    all, their work is dropped); one whose name was imported before is hashed
    first.
    """
    name = path.name
    size = path.stat().st_size
    writer = LakeWriter(ws.settings.lake_dir, source=kind.replace(".", "-"))
    bad = BadLines(name, skip_bad)
    ranges = line_ranges(path, CHUNK)
    work = tasks(writer, ranges)
    futures: list[Future[RangeResult]] = []
    with ws.store.session() as session:
        # A file of this name imported before is most likely these bytes again:
        # hash first rather than parse what may be dropped.
        again = any(r.name == name and r.kind == kind for r in imports.listing(session))
    try:
        if pool is not None and not again:
            futures = [pool.submit(convert, task) for task in work]

        def meanwhile() -> None:
            done = sum(
                end - begin for f, (begin, end) in zip(futures, ranges, strict=True) if f.done()
            )
            progress(name, done, size)

        sha = sha256_of(path, progress, meanwhile if futures else None)
        with ws.store.session() as session:
            if imports.find(session, sha, kind) is not None:
                _stop(futures)
                writer.abort()
                return FileReport(name=name, kind=kind, status="already imported", sha256=sha)
        if pool is not None and not futures:
            futures = [pool.submit(convert, task) for task in work]
        results = (f.result() for f in futures) if futures else map(convert, work)
        rows, line = 0, 2  # line 1 is the header
        bounds: tuple[dt.datetime | None, dt.datetime | None] = (None, None)
        for (_, end), result in zip(ranges, results, strict=True):
            bad.extend(line, result.bad, result.bad_count)
            line += result.lines
            rows += result.rows
            writer.adopt(result.rows)
            bounds = widen(bounds, (result.first, result.last))
            progress(name, end, size)
        progress(name, size, size)
    except BaseException:
        # No worker may still be writing into the staging folder when it is removed.
        _stop(futures)
        writer.abort()
        raise
    return _record(ws, writer, sha, kind, name, rows, bounds, bad)


def _stop(futures: list[Future[RangeResult]]) -> None:
    for future in futures:
        future.cancel()
    wait(futures)


def worker_pool(workers: int, preload: str) -> Executor:
    """Worker processes for :func:`import_ranges`, forked from a server that imported ``preload``.

    Forked from a clean server rather than from this process (which may run a
    progress bar's thread and hold a database connection), and started once:
    the server pays the module's imports, each worker only a fork.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():  # not on Windows
        spawn = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(max_workers=workers, mp_context=spawn, initializer=_in_worker)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_in_worker)


def _in_worker() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the import, waits
    # for the ranges in hand and removes what was staged.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Each range allocates the same few buffers of 30-40 MB again. glibc maps
    # blocks that big afresh and returns them at once, so every range paid its
    # page faults anew (measured on 8 http ranges: 133,000 minor faults and
    # 0.53 s of system time; keeping them in the heap, 35,000 and 0.29 s).
    with contextlib.suppress(OSError, AttributeError):  # not glibc: leave it be
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_MMAP_THRESHOLD, 256 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)


_M_TRIM_THRESHOLD: Final = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD: Final = -3


def default_workers() -> int:
    """Worker processes for a bulk import: the cores this process may use, at most four."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux: the cores this process may use
    cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, min(4, cores))


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


def read_header(path: Path) -> list[str]:
    """The first line's column names (a UTF-8 byte-order mark is dropped)."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        line = handle.readline()
    return [c.strip() for c in line.rstrip("\r\n").split(",")] if line else []


def line_ranges(
    path: Path, chunk: int, within: tuple[int, int] | None = None
) -> list[tuple[int, int]]:
    """Byte ranges ``[begin, end)`` of about ``chunk`` bytes, cut after a newline, past the header.

    Each range holds whole lines, so ranges can be parsed apart (and in other
    processes) and their line counts added up to number the lines. ``within``
    cuts one such range again instead of the whole file.
    """
    with path.open("rb") as handle:
        if within is None:
            handle.readline()
            begin, size = handle.tell(), path.stat().st_size
        else:
            begin, size = within
        ranges: list[tuple[int, int]] = []
        while begin < size:
            end = begin + chunk
            if end < size:
                handle.seek(end)
                tail = handle.read(min(BLOCK, size - end))
                cut = tail.find(b"\n")
                if cut < 0 and len(tail) == BLOCK:
                    raise InputError(f"{path.name}: a line is longer than {BLOCK >> 20} MB")
                end = end + cut + 1 if cut >= 0 else size
            ranges.append((begin, min(end, size)))
            begin = end
    return ranges


class Block:
    """Whole lines of a headed CSV file (one byte range), split on commas by Arrow.

    CSV here means what CERT writes: fields hold no commas and are not quoted,
    so a line is split at every comma and a line with another number of
    fields is a bad line. Knowing where each parsed row's line starts and ends
    gives it its exact line number, and the line's own text (``raw``) without
    re-joining the fields.
    """

    def __init__(self, path: Path, begin: int, end: int, names: list[str]) -> None:
        with path.open("rb") as handle:
            handle.seek(begin)
            data = handle.read(end - begin)
        if b"\r" in data:
            # Arrow ends a line at \r\n and at a lone \r too: count lines as it does.
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self.name = path.name
        self.data = data
        self.fields = len(names)
        self.table = self._parse(names)
        lengths = np.zeros(self.table.num_rows, dtype=np.int64)
        for column in self.table.columns:
            lengths += pc.binary_length(column).to_numpy()
        lengths += self.fields - 1  # the commas
        unterminated = int(len(data) > 0 and data[-1:] != b"\n")
        #: the line (index within the range) of each parsed row; None: row i is line i
        self.row_lines: np.ndarray | None = None
        #: lines (indexes) with the wrong number of fields, and how many fields they have
        self.misshapen: list[tuple[int, int]] = []
        if int(lengths.sum()) + len(lengths) - unterminated == len(data):
            # Every byte belongs to a parsed row and its line end: each line is one row.
            #: lines in the range, for numbering the lines of the ranges after it
            self.lines = len(lengths)
            self._offsets = np.concatenate(([0], np.cumsum(lengths)))
        else:
            self._lines_one_by_one()

    def _parse(self, names: list[str]) -> pa.Table:
        try:
            return pacsv.read_csv(
                pa.py_buffer(self.data),
                read_options=pacsv.ReadOptions(column_names=names, use_threads=False),
                parse_options=pacsv.ParseOptions(
                    quote_char=False, invalid_row_handler=lambda row: "skip"
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False
                ),
            )
        except pa.ArrowInvalid as exc:
            # Arrow's message quotes the offending text; say only where and what.
            raise InputError(
                f"{self.name}: not readable as CSV ({_first_words(str(exc))})"
            ) from None

    def _lines_one_by_one(self) -> None:
        """Find every line and its fields: the range has empty or misshapen lines."""
        raw = np.frombuffer(self.data, dtype=np.uint8)
        newlines = np.flatnonzero(raw == 10)
        self.lines = len(newlines) + int(len(raw) > 0 and raw[-1] != 10)
        starts = np.concatenate(([0], newlines + 1))[: self.lines]
        ends = np.concatenate((newlines, [len(raw)]))[: self.lines]
        commas = np.flatnonzero(raw == 44)
        counts = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
        empty = ends == starts  # Arrow skips empty lines; they are not bad
        wrong = np.flatnonzero(~empty & (counts != self.fields - 1))
        self.misshapen = [(int(line), int(counts[line]) + 1) for line in wrong]
        self.row_lines = np.flatnonzero(~empty & (counts == self.fields - 1))
        if len(self.row_lines) != self.table.num_rows:
            raise InputError(f"{self.name}: lines and parsed rows disagree; not CERT's plain CSV")
        # Without the newlines the lines lie end to end (see raw()).
        self._offsets = np.concatenate((starts - np.arange(self.lines), [len(raw) - len(newlines)]))

    def bad_lines(
        self, problems: list[tuple[pa.Array | pa.ChunkedArray, str]]
    ) -> tuple[list[tuple[int, str]], int, pa.Array | None]:
        """Lines (index within the range) that are bad: misshapen, or failing a row check.

        ``problems`` are (bad-row mask, reason) checks over :attr:`table`; a row
        failing several is reported with the first reason. Returns the first
        :data:`KEEP_LINES` bad lines in order, how many there are, and the
        rows to keep (None when every row is good).
        """
        flags = [
            np.asarray(pc.fill_null(mask, True).to_numpy(zero_copy_only=False), dtype=bool)
            for mask, _ in problems
        ]
        bad_rows = np.logical_or.reduce(flags) if flags else np.zeros(self.table.num_rows, bool)
        rows = np.flatnonzero(bad_rows)
        found = [
            (line, f"has {fields} fields, expected {self.fields}")
            for line, fields in self.misshapen[:KEEP_LINES]
        ]
        for index in rows[:KEEP_LINES]:
            reason = next(r for f, (_, r) in zip(flags, problems, strict=True) if f[index])
            line = int(index) if self.row_lines is None else int(self.row_lines[index])
            found.append((line, reason))
        found.sort()
        keep = pa.array(~bad_rows) if len(rows) else None
        return found[:KEEP_LINES], len(rows) + len(self.misshapen), keep

    def raw(self, keep: pa.Array | None) -> pa.Array:
        """Each parsed row's line, as the file has it (its line end dropped)."""
        # Without the newlines the lines lie end to end: one string array over that buffer.
        joined = self.data.replace(b"\n", b"")
        lines = pa.StringArray.from_buffers(
            len(self._offsets) - 1,
            pa.py_buffer(self._offsets.astype(np.int32)),
            pa.py_buffer(joined),
        )
        if self.row_lines is not None:
            lines = lines.take(pa.array(self.row_lines))
        return lines.filter(keep) if keep is not None else lines


@dataclass
class RangeResult:
    """What a worker made of one byte range of a file (lines numbered within the range)."""

    lines: int
    rows: int = 0
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    bad: list[tuple[int, str]] = field(default_factory=list)
    bad_count: int = 0


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
