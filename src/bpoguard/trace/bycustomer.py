"""The lake's record decisions filed by customer, so that a trace reads only the customers it needs.

The lake is written in time order, one row group a file, so finding the few
customers of a small dump means decoding every column of every row (2 s of
CPU for 9 million rows, and it grows with the lake). This cache keeps the
record decisions alone, with the columns a trace reads, in files by customer
bucket (``customer_id % BUCKETS``): a dump's customers are looked for in their
buckets only. The same rows are filed again by person bucket (an MD5 of the
staff id), for the evidence of the few people a report shows. Each bucket is one
file sorted by its key (the customer, or the person) in small row groups, so that
a reader finds a customer's or a person's rows by the row groups' statistics and
decodes only those (:func:`read_groups`). It is kept in segments, each covering a set of lake files
(listed with size and modification time in the segment's manifest): new lake
files become a new segment; past MAX_SEGMENTS, all are merged into one; when
a file any segment covered changed or disappeared, every segment is dropped and
one is built from the lake. A segment is written in a hidden folder, renamed
into place, then its manifest written: a folder without a manifest is never
read, and is removed.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bpoguard.trace._files import build_connection, write_whole
from bpoguard.trace.accesses import RECORD_ACTIONS, LakeFile, lake_files

FORMAT = 3  # bumped when the columns, the bucketing or the files' order change
BUCKETS = 256
MAX_SEGMENTS = 8
# Rows in a row group of a bucket file. A person has about 3,200 record decisions over 90
# days at the scale and a customer about 35, so a person's rows span a few groups
# and a customer's one or two: at 90 days the five people a report shows were 782,516 rows
# of 64 files in one group each (all decoded, 0.2 s) for the 31,513 that are theirs.
ROW_GROUP = 4_096
COLUMNS = "actor, customer_id, time, action, outcome, fields, ledger_index, site_id, interaction_id"
_PREFIX = f"rows-v{FORMAT}-"


def worth_it(customers: Collection[int]) -> bool:
    """Whether these customers fall in few enough buckets for the cache to beat a lake scan.

    Past about half the buckets, reading them costs as much as the lake (measured: 5
    customers 0.1 s of CPU instead of 2 s on 9 million rows; 5,000 customers 3.9 s
    instead of 2.9 s), so a big dump reads the lake.
    """
    return len({int(c) % BUCKETS for c in customers}) <= BUCKETS // 2


def person_buckets(people: Collection[str]) -> list[int]:
    """The person buckets of these staff ids (an MD5 of the id, so stable everywhere)."""
    return sorted({int.from_bytes(hashlib.md5(p.encode()).digest()[:4], "big") % BUCKETS  # noqa: S324
                   for p in people})  # fmt: skip


def person_files(lake_dir: Path, cache_dir: Path, people: Collection[str]) -> list[Path]:
    """The cache files that hold every record decision by these people (built if need be).

    The evidence of the few people a report shows: their rows on a big dump's
    customers would otherwise be found by reading every customer bucket.
    Raises OSError when the cache folder cannot be written.
    """
    segments = _segments(lake_dir, cache_dir)
    found: list[Path] = []
    for segment in segments:
        for bucket in person_buckets(people):
            found.extend(sorted((segment / "people" / f"bucket={bucket}").glob("*.parquet")))
    return found


def bucket_files(lake_dir: Path, cache_dir: Path, customers: Collection[int]) -> list[Path]:
    """The cache files that hold every record decision on these customers (built if need be).

    Raises OSError when the cache folder cannot be written.
    """
    segments = _segments(lake_dir, cache_dir)
    wanted = sorted({int(c) % BUCKETS for c in customers})
    found: list[Path] = []
    for segment in segments:
        for bucket in wanted:
            found.extend(sorted((segment / f"bucket={bucket}").glob("*.parquet")))
    return found


def customer_groups(lake_dir: Path, cache_dir: Path, customers: Collection[int]) -> pa.Table | None:
    """The row groups that can hold these customers' record decisions (built if need be).

    Each customer is looked for in its own bucket only: ids of every bucket interleave,
    so another bucket's groups would bound it too. None when no group can hold any.
    Raises OSError when the cache folder cannot be written.
    """
    by_bucket: dict[int, set[object]] = {}
    for c in customers:
        by_bucket.setdefault(int(c) % BUCKETS, set()).add(int(c))
    return _bucket_groups(_segments(lake_dir, cache_dir), None, "customer_id", by_bucket)


def person_groups(lake_dir: Path, cache_dir: Path, people: Collection[str]) -> pa.Table | None:
    """The row groups that can hold these people's record decisions (built if need be).

    Each person is looked for in their own bucket only (a bucket's names span the
    alphabet, so its groups would bound other buckets' people too). None when no
    group can hold any. Raises OSError when the cache folder cannot be written.
    """
    by_bucket: dict[int, set[object]] = {}
    for p in people:
        by_bucket.setdefault(person_buckets([p])[0], set()).add(p)
    return _bucket_groups(_segments(lake_dir, cache_dir), "people", "actor", by_bucket)


def _bucket_groups(
    segments: Sequence[Path], sub: str | None, key: str, by_bucket: dict[int, set[object]]
) -> pa.Table | None:
    tables = []
    for segment in segments:
        folder = segment if sub is None else segment / sub
        for bucket, wanted in sorted(by_bucket.items()):
            files = sorted((folder / f"bucket={bucket}").glob("*.parquet"))
            table = read_groups(files, key, wanted) if files else None
            if table is not None:
                tables.append(table)
    if not tables:
        return None
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _segments(lake_dir: Path, cache_dir: Path) -> list[Path]:
    files = set(lake_files(lake_dir))
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    segments: dict[Path, set[LakeFile]] = {}
    for manifest in sorted(cache_dir.glob(f"{_PREFIX}*.json")):
        folder = manifest.with_suffix("")
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            listed = {(str(p), int(n), int(t)) for p, n, t in doc["files"]}
        except (OSError, ValueError, KeyError, TypeError):
            listed = None
        if listed is None or doc.get("format") != FORMAT or not folder.is_dir():
            _drop(cache_dir)  # an unreadable segment: start again
            segments = {}
            break
        segments[folder] = listed
    covered: set[LakeFile] = set().union(*segments.values()) if segments else set()
    overlap = sum(len(s) for s in segments.values()) != len(covered)
    if overlap or not covered <= files:
        _drop(cache_dir)  # a covered file changed or went: the segments may hold stale rows
        segments, covered = {}, set()
    _remove_strays(cache_dir, set(segments))
    new = sorted(files - covered)
    if new:
        if len(segments) + 1 > MAX_SEGMENTS:
            _drop(cache_dir)
            segments, new = {}, sorted(files)
        folder = _build(lake_dir, cache_dir, new)
        segments[folder] = set(new)
    return sorted(segments)


def _build(lake_dir: Path, cache_dir: Path, files: Sequence[LakeFile]) -> Path:
    digest = hashlib.sha256(json.dumps(list(files)).encode("utf-8")).hexdigest()[:24]
    folder = cache_dir / f"{_PREFIX}{digest}"
    staging = Path(tempfile.mkdtemp(prefix=".rows-", dir=cache_dir))
    with build_connection(cache_dir, ordered=False) as con:
        _build_in(con, lake_dir, files, staging, folder)
    return folder


def _build_in(
    con: duckdb.DuckDBPyConnection,
    lake_dir: Path,
    files: Sequence[LakeFile],
    staging: Path,
    folder: Path,
) -> None:
    """The segment of ``files`` written in ``staging``, then renamed to ``folder``."""
    try:
        con.read_parquet(
            [str(lake_dir / f[0]) for f in files], hive_partitioning=True, union_by_name=True
        ).create_view("lake")
        actions = ", ".join(f"'{a}'" for a in RECORD_ACTIONS)  # constants of this module
        con.execute(
            f"COPY (SELECT {COLUMNS}, customer_id % {BUCKETS} AS bucket FROM lake "  # noqa: S608
            f"WHERE source = 'guard' AND customer_id IS NOT NULL AND actor IS NOT NULL "
            f"AND action IN ({actions})) TO ? (FORMAT parquet, PARTITION_BY (bucket))",
            [str(staging / "rows")],
        )
        produced = staging / "rows"
        produced.mkdir(exist_ok=True)  # no record decision at all: an empty segment
        _file_by_person(con, produced, staging / "people")
        _sort_buckets(produced, "customer_id")
        _sort_buckets(produced / "people", "actor")
        for path in produced.rglob("*.parquet"):
            os.chmod(path, 0o600)  # who accessed whom: as sensitive as the lake
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(produced, folder)
        doc = {"format": FORMAT, "files": list(files)}
        write_whole(folder.with_suffix(".json"), json.dumps(doc))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _file_by_person(con: duckdb.DuckDBPyConnection, produced: Path, staging: Path) -> None:
    """The same rows again, filed by person bucket (read from the rows just written)."""
    written = sorted(str(p) for p in produced.rglob("*.parquet"))
    if written:
        con.read_parquet(written).create_view("filed")
        names = [str(r[0]) for r in con.execute("SELECT DISTINCT actor FROM filed").fetchall()]
        # Buckets computed here, not by DuckDB's hash (which may change between versions).
        buckets = [person_buckets([n])[0] for n in names]
        con.register("person_bucket", pa.table({"actor": names, "bucket": buckets}))
        con.execute(
            f"COPY (SELECT {COLUMNS}, bucket FROM filed JOIN person_bucket USING (actor) "  # noqa: S608
            "ORDER BY actor, customer_id) TO ? (FORMAT parquet, PARTITION_BY (bucket))",
            [str(staging)],
        )
    staging.mkdir(exist_ok=True)
    os.replace(staging, produced / "people")


def _sort_buckets(folder: Path, key: str) -> None:
    """Each bucket's files (as a partitioned COPY wrote them) made one file sorted by ``key``.

    Sorted by the key, then time, in row groups of exactly ROW_GROUP rows: each
    group's statistics then bound a few customers (or people), and a reader skips
    the rest. pyarrow, not DuckDB: DuckDB's writer makes groups of any size above
    its target. A bucket is a 256th of the record decisions (a few tens of MB at 90 days).
    """
    for bucket in sorted(p for p in folder.glob("bucket=*") if p.is_dir()):
        parts = sorted(bucket.glob("*.parquet"))
        if not parts:
            continue
        tables = [pq.ParquetFile(p).read() for p in parts]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        order = pc.sort_indices(
            table,
            sort_keys=[(key, "ascending", "at_end"), ("time", "ascending", "at_end"),
                       ("ledger_index", "ascending", "at_end")],
        )  # fmt: skip
        sorted_file = bucket / "sorted.tmp"
        pq.write_table(table.take(order), sorted_file, row_group_size=ROW_GROUP)
        del table, tables
        for part in parts:
            part.unlink()
        os.replace(sorted_file, bucket / "data_0.parquet")


def read_groups(files: Sequence[Path], key: str, wanted: Collection[object]) -> pa.Table | None:
    """The row groups of these bucket files that can hold a row whose ``key`` is wanted.

    Only the row groups whose statistics bound a wanted value are decoded (the files
    are sorted by their key); the caller keeps the rows it wants from them, with its
    other conditions, in one pass. None when no row group can: nothing to read.
    """
    values = sorted(wanted)  # type: ignore[type-var]
    tables = []
    for path in files:
        source = pq.ParquetFile(path)
        groups = _groups(source.metadata, source.schema_arrow.get_field_index(key), values)
        if groups:
            tables.append(source.read_row_groups(groups))
    if not tables:
        return None
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]


def _groups(metadata: pq.FileMetaData, column: int, values: Sequence[object]) -> list[int]:
    """The row groups whose key column's minimum and maximum bound a wanted value."""
    found = []
    for g in range(metadata.num_row_groups):
        stats = metadata.row_group(g).column(column).statistics
        if stats is None or not stats.has_min_max:
            found.append(g)  # no statistics (never written so here): read it
            continue
        at = bisect.bisect_left(values, stats.min)
        if at < len(values) and values[at] <= stats.max:
            found.append(g)
    return found


def _drop(cache_dir: Path) -> None:
    for manifest in cache_dir.glob(f"{_PREFIX}*.json"):
        manifest.unlink(missing_ok=True)  # manifests first: a half-dropped segment is unread
    for folder in cache_dir.glob(f"{_PREFIX}*"):
        shutil.rmtree(folder, ignore_errors=True)


def _remove_strays(cache_dir: Path, keep: set[Path]) -> None:
    """Folders without a manifest (a build that was interrupted) are never read: remove them.

    So are the segments of other formats (an older bpoguard's): never read again, and
    at 90 days 1.5 GB.
    """
    for folder in cache_dir.glob(f"{_PREFIX}*"):
        if folder.is_dir() and folder not in keep:
            shutil.rmtree(folder, ignore_errors=True)
    for other in cache_dir.glob("rows-v*-*"):
        if not other.name.startswith(_PREFIX):
            if other.is_dir():
                shutil.rmtree(other, ignore_errors=True)
            else:
                other.unlink(missing_ok=True)


__all__ = [
    "BUCKETS",
    "MAX_SEGMENTS",
    "bucket_files",
    "customer_groups",
    "person_buckets",
    "person_files",
    "person_groups",
    "read_groups",
    "worth_it",
]
