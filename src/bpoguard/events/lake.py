"""The event lake: Parquet files partitioned by UTC day (``lake/day=YYYY-MM-DD/``).

A writer stages its files in a hidden folder and publishes them only on
commit, so a run that fails leaves the lake as it was. Readers ignore hidden
files, so a staging folder is never read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import operator
import shutil
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bpoguard.events.schema import COLUMNS, SCHEMA, Event

if TYPE_CHECKING:
    import pyarrow.dataset as ds

_EPOCH = dt.date(1970, 1, 1)
_UTC = dt.UTC
# An event's values in COLUMNS order, read in C: one call instead of a getattr per column.
_ROW = operator.attrgetter(*COLUMNS)
Row = tuple[object, ...]  # one event's values in COLUMNS order


def partition_of(day: dt.date) -> str:
    """The partition folder's name for a UTC day."""
    return f"day={day.isoformat()}"


class LakeWriter:
    """Buffers events by day and writes them as Parquet; memory stays bounded."""

    def __init__(
        self,
        lake_dir: Path,
        source: str,
        max_buffered: int = 250_000,
        background: bool = False,
    ) -> None:
        self.lake_dir = lake_dir
        self.source = source
        self.max_buffered = max_buffered
        self.run_id = uuid.uuid4().hex[:12]
        self._staging = lake_dir / f".staging-{self.run_id}"
        self._buffers: dict[dt.date, list[Row]] = {}  # rows by UTC day, in COLUMNS order
        self._tables: dict[dt.date, list[pa.Table]] = {}
        self._buffered = 0
        self._files = 0
        self.rows_written = 0
        self.published: list[Path] = []
        # With ``background``, Parquet files are encoded on a second thread (Arrow
        # releases the GIL) while the caller parses the next batch: a bulk import
        # keeps both cores busy. Errors surface at the next flush or at commit.
        self._pool = ThreadPoolExecutor(max_workers=1) if background else None
        self._pending: list[Future[None]] = []

    def write(self, event: Event) -> None:
        """Add one event; flushes to disk when the buffer is full."""
        day = event.time.astimezone(_UTC).date()
        rows = self._buffers.get(day)
        if rows is None:
            rows = self._buffers[day] = []
        rows.append(_ROW(event))
        self._buffered += 1
        if self._buffered >= self.max_buffered:
            self.flush()

    def write_rows(self, rows: Iterable[Row]) -> None:
        """Add events given as tuples of their values in ``COLUMNS`` order (bulk writers).

        The same rows as :meth:`write` of the equivalent :class:`Event` objects
        (``time`` timezone-aware; ``reasons`` and ``fields`` lists, empty rather
        than None), without building one object an event.
        """
        width = len(COLUMNS)
        buffers = self._buffers
        for row in rows:
            if len(row) != width:
                raise ValueError(f"a lake row has {width} values, not {len(row)}")
            time: dt.datetime = row[1]  # type: ignore[assignment]
            day = time.date() if time.tzinfo is _UTC else time.astimezone(_UTC).date()
            found = buffers.get(day)
            if found is None:
                found = buffers[day] = []
            found.append(row)
            self._buffered += 1
            if self._buffered >= self.max_buffered:
                self.flush()

    def write_table(self, table: pa.Table) -> None:
        """Add a batch of events already in the lake's schema (importers: no Python objects)."""
        if table.num_rows == 0:
            return
        for day, part in by_day(table):
            self._tables.setdefault(day, []).append(part)
        self._buffered += table.num_rows
        if self._buffered >= self.max_buffered:
            self.flush()

    @property
    def staging(self) -> Path:
        """The hidden folder this run stages its files in (published by :meth:`commit`)."""
        return self._staging

    def adopt(self, rows: int) -> None:
        """Count ``rows`` that another process staged in :attr:`staging` (see :func:`stage_table`)."""
        self.rows_written += rows

    def flush(self) -> None:
        """Write every buffered day to a staged Parquet file."""
        # The previous flush's files finish first: memory holds two buffers at most.
        self._drain()
        for day, rows in sorted(self._buffers.items()):
            # Rows to columns by zip(*rows), in C; Arrow converts each column once.
            columns = zip(*rows, strict=True)
            arrays = [
                pa.array(values, type=f.type) for values, f in zip(columns, SCHEMA, strict=True)
            ]
            self._write_file(day, pa.Table.from_arrays(arrays, schema=SCHEMA))
        for day, tables in sorted(self._tables.items()):
            self._write_file(day, pa.concat_tables(tables))
        self._buffers.clear()
        self._tables.clear()
        self._buffered = 0

    def commit(self) -> int:
        """Publish the staged files into the lake; returns rows written.

        If a move fails half-way, the files already moved are taken back out, so
        the lake holds all of this run or none of it.
        """
        self.flush()
        self._drain()
        if self._staging.exists():
            try:
                for staged in sorted(self._staging.glob("day=*/*.parquet")):
                    target = self.lake_dir / staged.parent.name / staged.name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    staged.rename(target)
                    self.published.append(target)
            except OSError:
                self.retract()
                raise
            shutil.rmtree(self._staging)
        self._close_pool()
        return self.rows_written

    def retract(self) -> None:
        """Remove what :meth:`commit` published (when what had to follow it failed)."""
        for path in self.published:
            path.unlink(missing_ok=True)
        self.published.clear()
        self.abort()

    def abort(self) -> None:
        """Drop everything staged; the lake is left as it was."""
        for pending in self._pending:
            pending.cancel()
        with contextlib.suppress(Exception):  # the run is dropped: its write errors are moot
            self._drain()
        self._buffers.clear()
        self._tables.clear()
        self._buffered = 0
        self._close_pool()
        shutil.rmtree(self._staging, ignore_errors=True)

    def __enter__(self) -> LakeWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def _write_file(self, day: dt.date, table: pa.Table) -> None:
        folder = self._staging / partition_of(day)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.source}-{self.run_id}-{self._files:05d}.parquet"
        self._files += 1
        self.rows_written += table.num_rows
        if self._pool is None:
            _write_parquet(table, path)
            return
        self._pending.append(self._pool.submit(_write_parquet, table, path))

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _drain(self) -> None:
        pending, self._pending = self._pending, []
        for job in pending:
            if not job.cancelled():
                job.result()


# Min/max statistics only where readers filter: computing them over long unique
# strings (raw, dest, event_id) took 30% of the time to write a file.
_STATISTICS = [
    "time",
    "source",
    "action",
    "actor",
    "account",
    "device_id",
    "site_id",
    "outcome",
    "customer_id",
    "interaction_id",
    "ledger_index",
    "canary",
]


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd", write_statistics=_STATISTICS)


def by_day(table: pa.Table) -> Iterator[tuple[dt.date, pa.Table]]:
    """A batch in the lake's schema cut into its UTC days (sorted by day first if out of order)."""
    table = table.select(list(COLUMNS)).cast(SCHEMA)
    days = pc.cast(table.column("time"), pa.date32()).to_numpy().astype("int64")
    if (np.diff(days) < 0).any():
        # Out of time order: sort by day once, then cut (logs are mostly in order).
        order = np.argsort(days, kind="stable")
        table, days = table.take(order), days[order]
    starts = [0, *(np.flatnonzero(np.diff(days)) + 1).tolist()]
    for start, end in zip(starts, [*starts[1:], len(days)], strict=True):
        yield _EPOCH + dt.timedelta(days=int(days[start])), table.slice(start, end - start)


def stage_table(staging: Path, stem: str, table: pa.Table) -> int:
    """Write a batch as one Parquet file a day under a writer's staging folder; returns its rows.

    For worker processes of a bulk import: each encodes its own part of a file
    into the folder of the parent's :class:`LakeWriter` (``writer.staging``),
    which publishes them all on commit, or drops them all on abort. ``stem``
    must be unique within the run.
    """
    rows = 0
    for part, (day, slice_) in enumerate(by_day(table)):
        folder = staging / partition_of(day)
        folder.mkdir(parents=True, exist_ok=True)
        _write_parquet(slice_, folder / f"{stem}-{part:03d}.parquet")
        rows += slice_.num_rows
    return rows


def dataset(lake_dir: Path) -> ds.Dataset:
    """The whole lake as one Arrow dataset, with ``day`` from the partition folders."""
    # Imported here: pyarrow.dataset brings pandas in (about 0.5 s), and most commands
    # that touch the lake only write it.
    import pyarrow.dataset as ds

    return ds.dataset(
        lake_dir,
        format="parquet",
        partitioning=ds.partitioning(pa.schema([("day", pa.date32())]), flavor="hive"),
        exclude_invalid_files=False,
        # people/ holds the imported people dimension, not events (events.people).
        ignore_prefixes=[".", "_", "people"],
    )


def count(lake_dir: Path) -> int:
    """Rows in the lake (0 for an empty lake)."""
    if not any(lake_dir.glob("day=*/*.parquet")):
        return 0
    return int(dataset(lake_dir).count_rows())
