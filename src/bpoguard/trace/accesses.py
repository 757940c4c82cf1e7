"""Who accessed which customers, read from the event lake's guard decisions with DuckDB.

Every guard decision is a lake row carrying its ledger index, so what is read
here can be proved entry by entry from the ledger. Reads are column-pruned
and filtered inside DuckDB; only (person, customer) pairs and the rows for
the customers in question come back to Python.

Scoring needs every (person, customer) pair before a time, which is a scan of
the whole lake (77 million rows for 10,000 agents over 90 days). Given a cache
folder, :func:`access_index` keeps a summary instead: one row per pair with the
time of its first record decision, and of its first allowed one. The pairs
before any time are exactly the summary's rows whose first time is earlier,
so one scan serves every ``--first-seen``. The summary names the lake files it
covers (path, size, modification time); when files are added, only those are
read and merged in, and when one is changed or removed, it is rebuilt.

A dump's trace reads less still (:func:`dump_accesses`): per-person daily
totals give every volume, and the summary's pairs sorted by customer in an
uncompressed Arrow file, read through a memory map, give the dump customers'
pairs by binary search, so the cost follows the dump, not the lake.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bpoguard import duck
from bpoguard.trace._files import build_connection, write_private, write_whole
from bpoguard.trace.scoring import AccessIndex, IntArray, Relevant

# Up to this many customers are written into the query as constants (see accesses_of).
INLINE_IDS = 2_000
RECORD_ACTIONS = ("record.view", "record.reveal", "record.verify", "record.export", "record.search")


@dataclass(frozen=True, slots=True)
class Access:
    """One guard decision on one customer's record."""

    person: str
    customer_id: int
    at: dt.datetime
    action: str
    allowed: bool
    fields: tuple[str, ...]
    ledger_index: int | None
    site: str | None
    interaction_id: int | None


def has_lake(lake_dir: Path) -> bool:
    """Whether the lake holds any Parquet file yet."""
    return any(lake_dir.glob("day=*/*.parquet"))


def day_files(lake_dir: Path, before: dt.datetime | None = None) -> list[Path]:
    """The lake's files that can hold rows earlier than ``before`` (all of them without it).

    The lake is partitioned by UTC day, so a partition after the day of the last
    instant before ``before`` holds nothing earlier: it is not read at all.
    """
    files = sorted(lake_dir.glob("day=*/*.parquet"))
    if before is None:
        return files
    last = (before - dt.timedelta(microseconds=1)).astimezone(dt.UTC).date()
    kept = []
    for path in files:
        try:
            day = dt.date.fromisoformat(path.parent.name.removeprefix("day="))
        except ValueError:
            day = None  # not a day partition after all: read it
        if day is None or day <= last:
            kept.append(path)
    return kept


@contextmanager
def _lake(files: Sequence[Path]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with a view ``lake`` over the given lake files (at least one)."""
    con = duck.connect()
    try:
        # A relation over the file list: no path is ever written into SQL text.
        con.read_parquet(
            [str(f) for f in files], hive_partitioning=True, union_by_name=True
        ).create_view("lake")
        yield con
    finally:
        con.close()


def _where(before: dt.datetime | None, include_denied: bool) -> tuple[str, list[object]]:
    """A WHERE clause of constants only; the one value (a time) is a bound parameter."""
    clauses = ["source = 'guard'", "customer_id IS NOT NULL", "actor IS NOT NULL"]
    params: list[object] = []
    clauses.append("action IN (" + ", ".join(f"'{a}'" for a in RECORD_ACTIONS) + ")")
    if not include_denied:
        clauses.append("outcome = 'allowed'")
    if before is not None:
        # Micro-seconds since the epoch: DuckDB hands timestamps with zones to
        # Python only through pytz, which we do not depend on.
        clauses.append("epoch_us(time) < ?")
        params.append(int(before.timestamp() * 1_000_000))
    return " AND ".join(clauses), params


def access_index(
    lake_dir: Path,
    before: dt.datetime | None = None,
    include_denied: bool = True,
    cache_dir: Path | None = None,
) -> AccessIndex:
    """Every (person, customer) pair of record decisions before a time, as an AccessIndex.

    With ``cache_dir``, read from the pair summary kept there (built or brought up
    to date first; see the module's notes). People are in name order either way,
    so that people whose scores tie are always ranked the same way.
    """
    if not has_lake(lake_dir):
        return AccessIndex.from_pairs((), [], [])
    table = (
        None if cache_dir is None else _from_summary(lake_dir, cache_dir, before, include_denied)
    )
    files = day_files(lake_dir, before)
    if table is None and not files:
        return AccessIndex.from_pairs((), [], [])
    if table is None:
        where, params = _where(before, include_denied)
        with _lake(files) as con:
            table = (
                # Sorted as the summary is: people in name order, whichever way it was read.
                con.execute(
                    f"SELECT DISTINCT actor, customer_id FROM lake WHERE {where} ORDER BY 1, 2",  # noqa: S608
                    params,
                )
                .arrow()
                .read_all()
            )
    return _index(table)


def _index(table: pa.Table) -> AccessIndex:
    actors = table.column("actor").combine_chunks().dictionary_encode()
    people = tuple(str(p) for p in actors.dictionary.to_pylist())
    person = np.asarray(actors.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    customer = np.asarray(table.column("customer_id").to_numpy(), dtype=np.int64)
    return AccessIndex.from_pairs(people, person, customer)


# --- the pair summary -------------------------------------------------------------------------

SUMMARY_FORMAT = 2  # bumped when the summary's columns or meaning change
_SUMMARY_PREFIX = f"pairs-v{SUMMARY_FORMAT}-"
BARE = "*"  # in a pair's fields: a request that named no field

LakeFile = tuple[str, int, int]  # path inside the lake, size, modification time (ns)


def lake_files(lake_dir: Path) -> list[LakeFile]:
    """The lake's event files, each with what tells a changed file from the one summarised.

    The files ``lake_dir.glob("day=*/*.parquet")`` names, listed with ``os.scandir``:
    pathlib's glob and relative paths cost 0.01 s of CPU for the 750 files at 90 days,
    twice a trace. The list names every cache, so it must stay exactly the same.
    """
    found = []
    try:
        days = [e for e in os.scandir(lake_dir) if e.name.startswith("day=") and e.is_dir()]
    except OSError:  # no lake yet
        return []
    for day in days:
        try:
            names = [e.name for e in os.scandir(day.path) if e.name.endswith(".parquet")]
        except OSError:  # removed or unreadable while listing: not part of the lake
            continue
        for name in names:
            try:
                stat = os.stat(os.path.join(day.path, name))
            except FileNotFoundError:  # removed while listing (a compaction): not part of it
                continue
            found.append((f"{day.name}/{name}", stat.st_size, stat.st_mtime_ns))
    return sorted(found)


def _digest(files: Sequence[LakeFile]) -> str:
    return hashlib.sha256(json.dumps(files).encode("utf-8")).hexdigest()[:24]


def _from_summary(
    lake_dir: Path, cache_dir: Path, before: dt.datetime | None, include_denied: bool
) -> pa.Table | None:
    """(actor, customer_id) pairs before a time from the summary; None if it cannot be kept."""
    try:
        summary = pair_summary(lake_dir, cache_dir)
    except OSError:
        return None  # a read-only workspace copy: scan the lake instead
    column = "first_us" if include_denied else "first_allowed_us"
    # Constants only in the text; the file and the time are bound parameters.
    query = f"SELECT actor, customer_id FROM read_parquet(?) WHERE {column} IS NOT NULL"  # noqa: S608
    params: list[object] = [str(summary)]
    if before is not None:
        query += f" AND {column} < ?"
        params.append(int(before.timestamp() * 1_000_000))
    con = duck.connect()
    try:
        # People in name order, as a scan of the lake gives them (the summary is by customer).
        return con.execute(query + " ORDER BY actor, customer_id", params).arrow().read_all()
    finally:
        con.close()


def pair_summary(lake_dir: Path, cache_dir: Path) -> Path:
    """The summary file for the lake as it is now: reused, brought up to date, or built.

    Raises OSError when the cache folder cannot be written.
    """
    files = lake_files(lake_dir)
    digest = _digest(files)
    target = cache_dir / f"{_SUMMARY_PREFIX}{digest}.parquet"
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    base, covered = _best_base(cache_dir, set(files))
    new = [f for f in files if f not in covered]
    _build(lake_dir, [lake_dir / f[0] for f in new], base, target)
    manifest = target.with_suffix(".json")
    write_whole(manifest, json.dumps({"format": SUMMARY_FORMAT, "files": files}))
    for old in cache_dir.glob(f"{_SUMMARY_PREFIX}*"):
        if old not in (target, manifest):
            old.unlink(missing_ok=True)  # superseded; a reader that has it open keeps its copy
    return target


def _best_base(cache_dir: Path, files: set[LakeFile]) -> tuple[Path | None, set[LakeFile]]:
    """The summary that covers the most of the lake's files and nothing else."""
    best: Path | None = None
    covered: set[LakeFile] = set()
    for manifest in cache_dir.glob(f"{_SUMMARY_PREFIX}*.json"):
        summary = manifest.with_suffix(".parquet")
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            listed = {(str(p), int(n), int(t)) for p, n, t in doc["files"]}
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: never trusted
        usable = doc.get("format") == SUMMARY_FORMAT and summary.is_file() and listed <= files
        if usable and len(listed) > len(covered):
            best, covered = summary, listed
    return best, covered


# Rows (lake events, or pairs of an older summary) one query of the build groups at most.
# Grouping a 90-day lake of 80 million events in one query held every pair's field lists
# at once and ran out of memory (DuckDB stopped at 18.8 GiB); a part of the customers
# at a time keeps a query to a few million rows whatever the lake's size. The field
# lists of a grouping cannot spill to disk: at 8 and at 4 million rows a part, a build limited
# to 1 GB (BUILD_MEMORY) ran out of memory. Each part groups only its own filed rows.
ROWS_PER_PART = 1_000_000


def _build(lake_dir: Path, new: Sequence[Path], base: Path | None, target: Path) -> None:
    """Write the summary of ``base`` (an older summary) and the ``new`` lake files, whole."""
    parts: list[str] = []
    staging = Path(tempfile.mkdtemp(prefix=".pairs-stage-", dir=target.parent))
    with build_connection(target.parent) as con:
        try:
            _build_parts(con, new, base, target, parts, staging)
        finally:
            for part in parts:
                Path(part).unlink(missing_ok=True)
                # DuckDB writes over an existing file through tmp_NAME: gone if it failed.
                Path(part).with_name(f"tmp_{Path(part).name}").unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)


def _build_parts(
    con: duckdb.DuckDBPyConnection,
    new: Sequence[Path],
    base: Path | None,
    target: Path,
    parts: list[str],
    staging: Path,
) -> None:
    """The summary written into ``target`` in ranges of customers, the parts listed in ``parts``.

    On a big lake the record decisions are first filed by range (one scan of the lake,
    streamed to ``staging``), so that each part groups its own rows alone instead of
    scanning the whole lake again.
    """
    if new:
        con.read_parquet(
            [str(p) for p in new], hive_partitioning=True, union_by_name=True
        ).create_view("events")
    if base is not None:
        con.read_parquet(str(base)).create_view("base")
    if not new and base is None:
        raise ValueError("nothing to summarise")  # callers check has_lake first
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in new)
    if base is not None:
        rows += pq.ParquetFile(base).metadata.num_rows
    views = (["events"] if new else []) + (["base"] if base is not None else [])
    ranges = _customer_ranges(con, views, -(-rows // ROWS_PER_PART))
    where, _ = _where(None, True)
    order = " GROUP BY customer_id, actor ORDER BY customer_id, actor"

    def write(tmp: str) -> None:
        if ranges is None:
            if new:
                con.execute(f"CREATE VIEW lake AS SELECT * FROM events WHERE {where}")  # noqa: S608
            union = _summary_union(bool(new), base is not None)
            con.execute(f"COPY ({_SUMMARY_SELECT}({union}) {order}) TO ? (FORMAT parquet)", [tmp])
            return
        filed = _file_by_range(con, where, ranges, staging) if new else {}
        # Each part is a range of customer ids, in order: one after another they are
        # the whole summary, sorted by customer as one query would have sorted it.
        for k, (lo, hi) in enumerate(ranges):
            if filed.get(k):
                con.read_parquet([str(f) for f in filed[k]]).create_view("lake", replace=True)
            if not filed.get(k) and base is None:
                continue  # no customer in this range at all
            fd, part = tempfile.mkstemp(dir=target.parent, prefix=".pairs-part-")
            os.close(fd)
            parts.append(part)
            union = _summary_union(bool(filed.get(k)), base is not None)
            # Integers formatted by Python; only the file's name is a parameter.
            bounds = f"WHERE customer_id >= {int(lo)} AND customer_id < {int(hi)}"
            con.execute(
                f"COPY ({_SUMMARY_SELECT}({union}) {bounds}{order}) TO ? (FORMAT parquet)", [part]
            )
        _concatenate(parts, tmp)

    write_private(target, write)


_SUMMARY_SELECT = (
    "SELECT customer_id, actor, min(first_us) AS first_us, "
    "min(first_allowed_us) AS first_allowed_us, max(last_us) AS last_us, "
    "max(last_allowed_us) AS last_allowed_us, "
    "array_to_string(list_sort(list_distinct(flatten(list(f)))), ',') AS fields, "
    "array_to_string(list_sort(list_distinct(flatten(list(fa)))), ',') AS fields_allowed "
    "FROM "
)


def _file_by_range(
    con: duckdb.DuckDBPyConnection, where: str, ranges: Sequence[tuple[int, int]], staging: Path
) -> dict[int, list[Path]]:
    """The new files' record decisions, filed by customer range: part -> its files."""
    lo, step = ranges[0][0], ranges[0][1] - ranges[0][0]
    # In any order: streamed to the part files instead of held (each part is sorted later).
    con.execute("SET preserve_insertion_order = false")
    try:
        con.execute(
            "COPY (SELECT customer_id, actor, time, outcome, fields, "  # noqa: S608
            f"(customer_id - {int(lo)}) // {int(step)} AS part FROM events WHERE {where}) "
            "TO ? (FORMAT parquet, PARTITION_BY (part))",
            [str(staging / "parts")],
        )
    finally:
        con.execute("SET preserve_insertion_order = true")
    filed: dict[int, list[Path]] = {}
    for folder in (staging / "parts").glob("part=*"):
        filed[int(folder.name.removeprefix("part="))] = sorted(folder.glob("*.parquet"))
    return filed


def _summary_union(lake: bool, base: bool) -> str:
    """The rows a summary groups: the view ``lake`` of requests and the older summary ``base``."""
    selects = []
    if lake:
        # A request that named no field (a search, some exports) handed over the
        # record: it is the token BARE, which every leaked field set matches.
        selects.append(
            "SELECT customer_id, actor, min(t) AS first_us, "  # noqa: S608
            "min(t) FILTER (WHERE ok) AS first_allowed_us, max(t) AS last_us, "
            "max(t) FILTER (WHERE ok) AS last_allowed_us, "
            "list_distinct(flatten(list(toks))) AS f, "
            "list_distinct(flatten(coalesce(list(toks) FILTER (WHERE ok), []))) AS fa "
            "FROM (SELECT customer_id, actor, epoch_us(time) AS t, outcome = 'allowed' AS ok, "
            f"CASE WHEN coalesce(len(fields), 0) = 0 THEN ['{BARE}'] ELSE fields END AS toks "
            "FROM lake) GROUP BY customer_id, actor"
        )
    if base:
        selects.append(
            "SELECT customer_id, actor, first_us, first_allowed_us, last_us, last_allowed_us, "
            "string_split(fields, ',') AS f, "
            "CASE WHEN fields_allowed = '' THEN [] ELSE string_split(fields_allowed, ',') "
            "END AS fa FROM base"
        )
    return " UNION ALL ".join(selects)


def _customer_ranges(
    con: duckdb.DuckDBPyConnection, views: Sequence[str], parts: int
) -> list[tuple[int, int]] | None:
    """``parts`` ranges of customer ids covering every id in the views; None for one query."""
    if parts <= 1:
        return None
    # The bounds from the rows themselves, not through the union's grouping.
    bounds = " UNION ALL ".join(f"SELECT customer_id FROM {view}" for view in views)  # noqa: S608
    row = con.execute(f"SELECT min(customer_id), max(customer_id) FROM ({bounds})").fetchone()  # noqa: S608
    if row is None or row[0] is None or row[0] == row[1]:
        return None
    lo, hi = int(row[0]), int(row[1])
    step = -(-(hi - lo + 1) // parts)
    return [(start, start + step) for start in range(lo, hi + 1, step)]


def _concatenate(parts: Sequence[str], target: str) -> None:
    """One Parquet file of the parts' rows, part after part (each read whole: one part's size)."""
    writer: pq.ParquetWriter | None = None
    try:
        for part in parts:
            table = pq.read_table(part)
            if writer is None:
                writer = pq.ParquetWriter(target, table.schema)
            if table.num_rows:
                writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


# --- what a dump's trace reads: per-person totals and the dump's customers' pairs -----------

DUMP_FORMAT = 1  # bumped when the totals' or the pair index's columns change
_TOTALS_PREFIX = f"people-v{DUMP_FORMAT}-"
_VOLUMES_PREFIX = "volumes-v1-"  # a window's volumes, remembered (see _window_volumes)
# Windows remembered at most (about 235 KB each at 90 days): the most recently written
# are kept, so a workspace traced at many first-seen dates does not grow without end.
MAX_VOLUMES = 64
_PAIRS_PREFIX = f"bycustomer-v{DUMP_FORMAT}-"
DAY_US = 86_400_000_000
NEVER = 2**31 - 1  # the day of a pair's first allowed request when none was allowed


@dataclass(frozen=True)
class DumpCaches:
    """The files a dump's trace reads, derived from one pair summary (named by its digest)."""

    summary: Path
    totals: Path  # Parquet: per person and day, how many customers they first accessed
    pairs: Path  # Arrow IPC, uncompressed, by customer: read through a memory map


def dump_caches(lake_dir: Path, cache_dir: Path) -> DumpCaches:
    """The pair summary and what is derived from it for dumps (built if need be).

    The totals hold one row per person and day: how many customers the person
    accessed for the first time that day (and first had a request allowed), so
    a person's volume up to any midnight is a sum over days. The pair index
    holds the summary's pairs by customer with day numbers and the fields asked
    for, uncompressed: a memory map and a binary search find a customer's pairs
    without reading the rest, so a dump costs what its customers hold, not what
    the lake holds. Both are named after the summary and follow the lake as it
    does. Raises OSError when the cache folder cannot be written.
    """
    summary = pair_summary(lake_dir, cache_dir)
    folder = cache_dir / "dump"
    digest = summary.stem.removeprefix(_SUMMARY_PREFIX)
    caches = DumpCaches(
        summary,
        folder / f"{_TOTALS_PREFIX}{digest}.parquet",
        folder / f"{_PAIRS_PREFIX}{digest}.arrow",
    )
    if not (caches.totals.is_file() and caches.pairs.is_file()):
        folder.mkdir(exist_ok=True, mode=0o700)
        # The pair index first: its arrays are freed before DuckDB's buffers grow.
        write_private(caches.pairs, lambda tmp: _write_pairs(summary, tmp))
        with build_connection(folder) as con:
            con.read_parquet(str(summary)).create_view("pairs")
            write_private(caches.totals, lambda tmp: _write_totals(con, tmp))
    keep = (f"{_VOLUMES_PREFIX}{digest}-", ".spill-")  # this summary's volumes; a build's spill
    for old in folder.iterdir():
        if old not in (caches.totals, caches.pairs) and not old.name.startswith(keep):
            old.unlink(missing_ok=True)  # of a summary since superseded, or a failed write
    return caches


def _write_totals(con: duckdb.DuckDBPyConnection, tmp: str) -> None:
    con.execute(
        "COPY (SELECT actor, day, sum(n) AS n, sum(n_allowed) AS n_allowed FROM ("  # noqa: S608
        f"SELECT actor, first_us // {DAY_US} AS day, 1 AS n, 0 AS n_allowed FROM pairs "
        f"UNION ALL SELECT actor, first_allowed_us // {DAY_US}, 0, 1 FROM pairs "
        "WHERE first_allowed_us IS NOT NULL) GROUP BY actor, day ORDER BY actor, day) "
        "TO ? (FORMAT parquet)",
        [tmp],
    )


# The pair index's columns: the summary's times become UTC day numbers.
_DAYS = (("first_day", "first_us"), ("first_allowed_day", "first_allowed_us"),
         ("last_day", "last_us"), ("last_allowed_day", "last_allowed_us"))  # fmt: skip
_CODED = ("actor", "fields", "fields_allowed")  # dictionary-encoded: names and field lists repeat
_BATCH = 1 << 20  # summary rows decoded at a time while the index is built


def _write_pairs(summary: Path, tmp: str) -> None:
    """The summary's pairs by customer as one uncompressed Arrow batch, built a slice at a time.

    The summary is already in the index's order (customer, then person), so it is
    read a million rows at a time: times become day numbers in preallocated arrays,
    names and field lists codes into dictionaries kept in order of first appearance
    (the order dictionary-encoding the whole table gives). What is held is the
    index's own numbers (36 bytes a pair) and one slice, not the whole table with
    its strings (7.3 GB at 20 million pairs before). The file is the same, byte for byte.
    """
    source = pq.ParquetFile(summary)
    n = source.metadata.num_rows
    customer = np.empty(n, dtype=np.int64)
    days = {name: np.empty(n, dtype=np.int32) for name, _ in _DAYS}
    codes = {name: np.empty(n, dtype=np.int32) for name in _CODED}
    nulls = {name: np.zeros(n, dtype=np.bool_) for name in _CODED}
    seen: dict[str, dict[str, int]] = {name: {} for name in _CODED}
    at = 0
    previous: int | None = None
    for batch in source.iter_batches(batch_size=_BATCH):
        end = at + batch.num_rows
        ids = np.asarray(batch.column("customer_id").to_numpy(), dtype=np.int64)
        if ids.size and (
            (previous is not None and ids[0] < previous) or np.any(ids[1:] < ids[:-1])
        ):
            raise ValueError("the pair summary is not sorted by customer")  # never written so
        previous = int(ids[-1]) if ids.size else previous
        customer[at:end] = ids
        for name, column in _DAYS:
            times = batch.column(column)
            us = np.asarray(times.fill_null(0).to_numpy(), dtype=np.int64)
            # DuckDB's integer division truncates towards zero; numpy's // floors.
            day = np.where(us < 0, -(-us // DAY_US), us // DAY_US)
            days[name][at:end] = np.where(np.asarray(times.is_null()), NEVER, day)
        for name in _CODED:
            values = batch.column(name)
            if name == "fields_allowed":
                values = values.fill_null("")
            local = pc.dictionary_encode(values)
            known = seen[name]
            # New values take the next codes in the order they first appear: as in one pass.
            mapping = np.array([known.setdefault(str(v), len(known))
                                for v in local.dictionary.to_pylist()], dtype=np.int32)  # fmt: skip
            valid = np.asarray(local.indices.is_valid())
            indices = np.asarray(local.indices.fill_null(0).to_numpy(), dtype=np.int64)
            codes[name][at:end] = mapping[indices] if mapping.size else 0
            nulls[name][at:end] = ~valid
        at = end
    columns: dict[str, pa.Array] = {"customer_id": pa.array(customer)}
    for name, array in days.items():
        columns[name] = pa.array(array)
    for name in _CODED:
        dictionary = pa.array(list(seen[name]), pa.string())
        indices = pa.array(codes[name], mask=nulls[name] if nulls[name].any() else None)
        columns[name] = pa.DictionaryArray.from_arrays(indices, dictionary)
    order = ("customer_id", "actor", "first_day", "first_allowed_day", "last_day",
             "last_allowed_day", "fields", "fields_allowed")  # fmt: skip
    batch = pa.record_batch([columns[name] for name in order], names=list(order))
    # One batch: an IPC file holds one dictionary a column, and the reader maps chunk 0.
    with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
        writer.write_batch(batch)


def dump_accesses(
    lake_dir: Path,
    leaked: Mapping[int, Collection[str]],
    before: dt.datetime | None,
    include_denied: bool,
    cache_dir: Path,
) -> tuple[AccessIndex, Relevant] | None:
    """What scoring needs for a dump, read in proportion to the dump rather than the lake.

    ``leaked`` maps each dump customer to the fields the dump holds for them.
    Returns an AccessIndex holding every person's volume before ``before`` (from
    the per-person totals) but only the dump customers' pairs, and, per dump
    customer, the people (indexes) who asked for a leaked field before
    ``before``. None when the caches cannot serve this question (no lake, a
    read-only cache folder, a window not ending at a UTC midnight): the caller
    then reads the whole index instead, with the same result.
    """
    bound = None if before is None else int(before.timestamp() * 1_000_000)
    if (bound is not None and bound % DAY_US) or not has_lake(lake_dir):
        return None
    try:
        caches = dump_caches(lake_dir, cache_dir)
    except OSError:
        return None
    day = NEVER if bound is None else bound // DAY_US
    people, sizes = _window_volumes(caches.totals, day, include_denied)
    pairs = _dump_pairs(caches.pairs, sorted(leaked), day, include_denied, people)
    index = AccessIndex.from_pairs(people, pairs.person, pairs.customer)
    index = dataclasses.replace(index, person_size=sizes, pairs=int(sizes.sum()))
    relevant = _relevant_pairs(lake_dir, cache_dir, pairs, leaked, before, include_denied, people)
    return index, relevant


def _window_volumes(totals: Path, day: int, include_denied: bool) -> tuple[list[str], IntArray]:
    """:func:`_volumes`, remembered beside the totals for this window.

    The same window (first-seen day, refused requests counted or not) traced again
    reads its 10,000 names and sizes instead of summing 670,000 rows of totals
    (0.03 s at 90 days). Named by the totals' summary, so it follows the lake; a
    cache folder that cannot be written computes it every time.
    """
    digest = totals.stem.removeprefix(_TOTALS_PREFIX)
    mode = "all" if include_denied else "allowed"
    memo = totals.parent / f"{_VOLUMES_PREFIX}{digest}-{int(day)}-{mode}.arrow"
    try:
        with pa.memory_map(str(memo)) as source:
            table = pa.ipc.open_file(source).read_all()
            if table.num_rows == 0:
                return [], np.zeros(0, dtype=np.int64)
            names = [str(n) for n in table.column("actor").to_pylist()]
            # A copy: the map is closed on leaving this block.
            return names, np.array(_numbers(table.column("n").combine_chunks()), dtype=np.int64)
    except (OSError, pa.ArrowInvalid, KeyError):
        pass  # not remembered yet (or unreadable): sum the totals
    people, sizes = _volumes(totals, day, include_denied)
    with contextlib.suppress(OSError):  # a read-only cache folder: summed each time
        write_private(memo, lambda tmp: _write_volumes(tmp, people, sizes))
        _forget_volumes(totals.parent, keep=MAX_VOLUMES)
    return people, sizes


def _forget_volumes(folder: Path, keep: int) -> None:
    """All but the ``keep`` most recently written window volumes removed."""
    memos = []
    for path in folder.glob(f"{_VOLUMES_PREFIX}*.arrow"):
        with contextlib.suppress(FileNotFoundError):  # another trace removed it meanwhile
            memos.append((path.stat().st_mtime_ns, path.name, path))
    for *_, path in sorted(memos, reverse=True)[keep:]:
        path.unlink(missing_ok=True)


def _write_volumes(tmp: str, people: Sequence[str], sizes: IntArray) -> None:
    """People and sizes as an uncompressed Arrow file, built from buffers (``pa.array``
    imports pandas, 0.25 s of a trace)."""
    encoded = [p.encode("utf-8") for p in people]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(b) for b in encoded])
    names = pa.Array.from_buffers(
        pa.string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )
    counts = np.ascontiguousarray(sizes, dtype=np.int64)
    n = pa.Array.from_buffers(pa.int64(), counts.size, [None, pa.py_buffer(counts)])
    table = pa.Table.from_arrays([names, n], names=["actor", "n"])
    with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _volumes(totals: Path, day: int, include_denied: bool) -> tuple[list[str], IntArray]:
    """People with any pair before ``day``, in name order, and how many customers each."""
    column = "n" if include_denied else "n_allowed"
    # pyarrow, not DuckDB: a connection costs more than this whole read (10,000 people x days).
    # The names read as the file's dictionary codes: not hundreds of thousands of strings
    # built, then hashed again to encode them (half the read).
    reader = pq.ParquetFile(totals, read_dictionary=["actor"])
    table = reader.read(columns=["actor", "day", column]).unify_dictionaries()
    if table.num_rows == 0:
        return [], np.zeros(0, dtype=np.int64)
    actors = table.column("actor").combine_chunks()
    if not pa.types.is_dictionary(actors.type) or len(pc.unique(actors.dictionary)) != len(
        actors.dictionary
    ):  # a name under two codes would split its run in two: encode the names afresh
        actors = pc.dictionary_encode(
            actors.dictionary_decode() if pa.types.is_dictionary(actors.type) else actors
        )
    days = _numbers(table.column("day").combine_chunks()).astype(np.int64)
    counts = _numbers(table.column(column).combine_chunks()).astype(np.int64)
    # The totals are sorted by person (byte order, as DuckDB's ORDER BY): a person's days are
    # one run, summed with reduceat instead of a hash grouping and a sort.
    code = _numbers(actors.indices).astype(np.int64)
    starts = np.flatnonzero(np.concatenate(([True], code[1:] != code[:-1])))
    sums = np.add.reduceat(np.where(days < day, counts, 0), starts)
    keep = sums > 0
    names = actors.dictionary.to_pylist()
    return [str(names[k]) for k in code[starts[keep]].tolist()], np.asarray(sums[keep], np.int64)


_NUMPY = {pa.int32(): np.int32, pa.int64(): np.int64, pa.float64(): np.float64}


def _numbers(array: pa.Array) -> npt.NDArray[Any]:
    """An Arrow array of numbers as numpy, zero-copy (a memory map stays unread).

    Not ``Array.to_numpy``: pyarrow's conversion imports pandas the first time, 0.25 s
    of a trace. Arrays with nulls (none in these caches) take pyarrow's way.
    """
    if array.null_count or array.type not in _NUMPY:
        return np.asarray(array.to_numpy(zero_copy_only=False))
    dtype = np.dtype(_NUMPY[array.type])
    data = array.buffers()[1]
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)


@dataclass(frozen=True)
class _Pairs:
    """A dump's customers' pairs before the window's end, as parallel arrays."""

    customer: IntArray
    person: IntArray  # index into the people of the window
    inside: npt.NDArray[np.bool_]  # the pair's last request is before the window's end too
    field_codes: IntArray  # the fields of all the pair's requests, as codes into field_sets
    field_sets: list[frozenset[str]]

    @property
    def fields(self) -> list[frozenset[str]]:
        """The fields of all each pair's requests."""
        return [self.field_sets[k] for k in self.field_codes.tolist()]


def _dump_pairs(
    path: Path, ids: Sequence[int], day: int, include_denied: bool, people: Sequence[str]
) -> _Pairs:
    """The pairs of these customers first seen before ``day``, found by binary search."""
    wanted = np.asarray(ids, dtype=np.int64)
    suffix = "" if include_denied else "_allowed"
    with pa.memory_map(str(path)) as source:
        table = pa.ipc.open_file(source).read_all()  # zero-copy: nothing is read yet
        if table.num_rows == 0:
            empty = np.zeros(0, dtype=np.int64)
            return _Pairs(empty, empty, np.zeros(0, dtype=bool), empty, [])
        column = _numbers(table.column("customer_id").chunk(0))
        lo = np.searchsorted(column, wanted, "left")
        count = np.searchsorted(column, wanted, "right") - lo
        # The rows of every wanted customer: each run lo[i] .. lo[i] + count[i].
        starts = np.repeat(lo - (np.cumsum(count) - count), count)
        rows = starts + np.arange(int(count.sum()))
        first = _numbers(table.column(f"first{suffix}_day").chunk(0))[rows]
        rows = rows[first < day]  # NEVER (never allowed) is never before anything
        last = _numbers(table.column(f"last{suffix}_day").chunk(0))[rows]
        actors = table.column("actor").chunk(0)
        fields = table.column(f"fields{suffix}").chunk(0)
        where = {name: k for k, name in enumerate(people)}
        # Everyone with a pair before the day has a volume, so is among the people.
        codes = np.array([where.get(a, -1) for a in actors.dictionary.to_pylist()], np.int64)
        sets = [frozenset(f.split(",")) for f in fields.dictionary.to_pylist()]
        return _Pairs(
            customer=np.asarray(column[rows], dtype=np.int64),
            person=codes[_numbers(actors.indices)[rows]],
            inside=np.asarray(last < day) if day != NEVER else np.ones(rows.size, dtype=bool),
            field_codes=_numbers(fields.indices)[rows].astype(np.int64),
            field_sets=sets,
        )


def _relevant_pairs(
    lake_dir: Path,
    cache_dir: Path,
    pairs: _Pairs,
    leaked: Mapping[int, Collection[str]],
    before: dt.datetime | None,
    include_denied: bool,
    people: Sequence[str],
) -> Relevant:
    """Per dump customer, who asked for a field the dump holds for them before ``before``.

    A pair's fields are those of all its requests, so they decide alone when the
    pair's last request is before the window's end, or when none of them was
    leaked; otherwise (a pair whose requests straddle the end) its rows decide.
    """
    width = max(1, len(people))
    named = np.unique(np.fromiter(leaked, dtype=np.int64, count=len(leaked)))
    if pairs.customer.size == 0:
        return Relevant(named, np.zeros(0, dtype=np.int64), width)
    wanted_sets = {int(c): frozenset(f) for c, f in leaked.items()}
    # Few distinct leaked sets and few distinct field lists: whether a pair asked for a
    # leaked field is a small table of (leaked set, field list), looked up per pair.
    kinds = sorted(set(wanted_sets.values()), key=sorted)
    kind_of = {k: n for n, k in enumerate(kinds)}
    ids = np.fromiter(wanted_sets, dtype=np.int64, count=len(wanted_sets))
    order = np.argsort(ids)
    ids = ids[order]
    kind = np.fromiter((kind_of[s] for s in wanted_sets.values()), np.int64, len(wanted_sets))
    kind = kind[order]
    asks = np.array(
        [[BARE in f or bool(f & k) for f in pairs.field_sets] for k in kinds], dtype=np.bool_
    ).reshape(len(kinds), len(pairs.field_sets))
    pair_kind = kind[np.searchsorted(ids, pairs.customer)]  # every pair's customer was asked
    hit = asks[pair_kind, pairs.field_codes] & (pairs.person >= 0)
    inside = hit & pairs.inside
    # The pairs by customer, then person (the index's order): already sorted keys.
    keys = [pairs.customer[inside] * width + pairs.person[inside]]
    across = hit & ~pairs.inside
    straddling = set(zip(pairs.person[across].tolist(), pairs.customer[across].tolist(),
                         strict=True))  # fmt: skip
    if straddling:
        where = {name: k for k, name in enumerate(people)}
        found = accesses_of(lake_dir, {c for _, c in straddling}, before, include_denied,
                            cache_dir, people={people[p] for p, _ in straddling})  # fmt: skip
        decided = {
            (where[a.person], a.customer_id)
            for a in found
            if (where[a.person], a.customer_id) in straddling
            and (not a.fields or wanted_sets[a.customer_id].intersection(a.fields))
        }
        keys.append(np.array([c * width + p for p, c in decided], dtype=np.int64))
    return Relevant(named, _sorted_unique(np.concatenate(keys)), width)


def _sorted_unique(keys: IntArray) -> IntArray:
    """The keys sorted without repeats (without sorting them again when they already are)."""
    if keys.size < 2 or bool(np.all(keys[1:] > keys[:-1])):
        return keys
    return np.unique(keys)


def accesses_of(
    lake_dir: Path,
    customers: Collection[int],
    before: dt.datetime | None = None,
    include_denied: bool = True,
    cache_dir: Path | None = None,
    people: Collection[str] | None = None,
) -> list[Access]:
    """Every record decision on the given customers before a time, oldest first.

    With ``cache_dir``, read from the record decisions filed by customer there
    (:mod:`bpoguard.trace.bycustomer`, built or brought up to date first). With
    ``people``, only their decisions (the evidence of the few people a report shows).
    """
    if not customers or not has_lake(lake_dir) or (people is not None and not people):
        return []
    rows = None if cache_dir is None else _from_buckets(lake_dir, cache_dir, customers, before,
                                                       include_denied, people)  # fmt: skip
    if rows is None:
        files = day_files(lake_dir, before)
        if not files:
            return []
        where, params = _where(before, include_denied)
        who, more = _who(people)
        with _lake(files) as con:
            wanted = _wanted(con, customers)
            rows = con.execute(
                "SELECT actor, customer_id, epoch_us(time), action, outcome, fields, "  # noqa: S608
                f"ledger_index, site_id, interaction_id FROM lake WHERE {where}{who} "
                f"AND customer_id IN {wanted} ORDER BY time, ledger_index",
                params + more,
            ).fetchall()
    return [
        Access(
            person=str(r[0]),
            customer_id=int(r[1]),
            at=dt.datetime.fromtimestamp(r[2] / 1_000_000, dt.UTC),
            action=str(r[3]),
            allowed=r[4] == "allowed",
            fields=tuple(r[5] or ()),
            ledger_index=None if r[6] is None else int(r[6]),
            site=r[7],
            interaction_id=None if r[8] is None else int(r[8]),
        )
        for r in rows
    ]


def _who(people: Collection[str] | None) -> tuple[str, list[object]]:
    """A filter on the people, if any: the names are bound parameters, never SQL text."""
    if people is None:
        return "", []
    names = sorted(people)
    return " AND actor IN (" + ", ".join("?" for _ in names) + ")", list(names)


def _wanted(con: duckdb.DuckDBPyConnection, customers: Collection[int]) -> str:
    """The customers as SQL: constants for a few, a registered table for many."""
    if len(customers) <= INLINE_IDS:
        # Constants DuckDB pushes into the scan: the other columns are decoded only
        # where a wanted customer is, instead of for every row of the lake.
        return "(" + ", ".join(str(int(c)) for c in sorted(customers)) + ")"
    con.register("wanted", pa.table({"cid": pa.array(sorted(customers), pa.int64())}))
    return "(SELECT cid FROM wanted)"


def _from_buckets(
    lake_dir: Path,
    cache_dir: Path,
    customers: Collection[int],
    before: dt.datetime | None,
    include_denied: bool,
    people: Collection[str] | None = None,
) -> list[tuple[Any, ...]] | None:
    """The rows from the by-customer cache; None to read the lake (a read-only copy, many ids)."""
    from bpoguard.trace.bycustomer import customer_groups, person_groups, worth_it

    if people is None and not worth_it(customers):
        return None  # most buckets: the lake itself is as quick
    wanted = {int(c) for c in customers}
    try:
        if people is not None and not worth_it(customers):
            # A few people's rows: their files are sorted by person, so the row groups'
            # statistics find them (13 groups of 4,096 rows decoded at 90 days for the
            # five people a report shows, instead of 782,516 rows in 64 files).
            table = person_groups(lake_dir, cache_dir, people)
        else:
            table = customer_groups(lake_dir, cache_dir, wanted)
    except OSError:
        return None
    if table is None or table.num_rows == 0:
        return []
    # The cache holds record decisions by staff on customers only: the rest of _where, in
    # numpy over the columns' buffers (no DuckDB connection: one cost more than this read;
    # and no pa.array or timestamps as Python objects: either imports pandas, 0.25 s).
    customer = _numbers(table.column("customer_id").combine_chunks())
    times = _numbers(table.column("time").combine_chunks().view(pa.int64()))  # epoch us
    keep = np.isin(customer, np.fromiter(wanted, dtype=np.int64, count=len(wanted)))
    if people is not None:
        keep &= member(table.column("actor").combine_chunks(), set(people))
    if not include_denied:
        keep &= member(table.column("outcome").combine_chunks(), {"allowed"})
    if before is not None:
        keep &= times < int(before.timestamp() * 1_000_000)
    rows = np.flatnonzero(keep)
    # Oldest first, as the lake's ORDER BY time, ledger_index (a missing index last).
    ledger = _ledger_keys(table.column("ledger_index").combine_chunks())
    rows = rows[np.lexsort((ledger[rows], times[rows]))]
    table = take(table, rows)
    columns = [table.column(n).to_pylist() for n in ("actor", "customer_id")]
    columns.append(times[rows].tolist())
    columns += [table.column(n).to_pylist() for n in ("action", "outcome", "fields",
                                                      "ledger_index", "site_id", "interaction_id")]  # fmt: skip
    # Column by column: a tenth of the cost of building a tuple a row.
    return list(zip(*columns, strict=True))


def _ledger_keys(array: pa.Array) -> npt.NDArray[np.int64]:
    """Ledger indexes as sort keys: a missing one after every other (SQL's NULLS LAST)."""
    if not array.null_count:
        return np.asarray(_numbers(array), dtype=np.int64)
    last = np.iinfo(np.int64).max
    return np.array([last if v is None else v for v in array.to_pylist()], dtype=np.int64)


def member(array: pa.Array, wanted: Collection[object]) -> npt.NDArray[np.bool_]:
    """Which values of an Arrow array (strings or integers) are among ``wanted``, as numpy.

    Through the array's buffers and a dictionary of its distinct values: pyarrow's
    own ``is_in`` needs its value set as an Arrow array, and ``pa.array`` imports pandas.
    """
    if array.type in _NUMPY:
        values = _numbers(array)
        return np.isin(values, np.array(sorted(wanted), dtype=values.dtype))  # type: ignore[type-var]
    if array.null_count:  # never in the caches; a null is among nothing
        return np.array([v is not None and v in wanted for v in array.to_pylist()], np.bool_)
    encoded = pc.dictionary_encode(array)
    hit = np.array([v in wanted for v in encoded.dictionary.to_pylist()], dtype=np.bool_)
    return np.asarray(hit[_numbers(encoded.indices)]) if hit.size else hit


def take(table: pa.Table, rows: npt.NDArray[np.int64]) -> pa.Table:
    """The table's rows at these positions (an index array built without ``pa.array``)."""
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    indices = pa.Array.from_buffers(pa.int64(), rows.size, [None, pa.py_buffer(rows)])
    return table.take(indices)


def first_accesses(
    lake_dir: Path, before: dt.datetime | None = None, include_denied: bool = True
) -> pa.Table:
    """Per (person, customer, site, purpose): the first record decision, in epoch micro-seconds.

    The purpose is that of the interaction the access was made in, from the
    CRM's interaction events; an access outside any interaction has none.
    """
    empty = pa.table(
        {"actor": pa.array([], pa.string()), "customer_id": pa.array([], pa.int64()),
         "site_id": pa.array([], pa.string()), "purpose": pa.array([], pa.string()),
         "first_us": pa.array([], pa.int64())}
    )  # fmt: skip
    if not has_lake(lake_dir):
        return empty
    where, params = _where(before, include_denied)
    # Every file: an interaction's purpose is read wherever its opening event lies.
    with _lake(day_files(lake_dir)) as con:
        return (
            con.execute(
                "WITH purposes AS (SELECT interaction_id, any_value(purpose) AS purpose FROM lake "  # noqa: S608
                "WHERE action = 'interaction.open' AND interaction_id IS NOT NULL GROUP BY 1), "
                f"acc AS (SELECT actor, customer_id, site_id, interaction_id, time FROM lake WHERE {where}) "
                "SELECT acc.actor, acc.customer_id, acc.site_id, "
                "coalesce(purposes.purpose, 'outside any interaction') AS purpose, "
                "min(epoch_us(acc.time)) AS first_us FROM acc "
                "LEFT JOIN purposes USING (interaction_id) GROUP BY 1, 2, 3, 4",
                params,
            )
            .arrow()
            .read_all()
        )


def people_index(index: AccessIndex) -> dict[str, int]:
    """Person name -> index in the AccessIndex."""
    return {name: k for k, name in enumerate(index.people)}


def names(values: Sequence[str]) -> tuple[str, ...]:
    """Deduplicated names in first-seen order."""
    return tuple(dict.fromkeys(values))


__all__ = [
    "Access",
    "DumpCaches",
    "access_index",
    "accesses_of",
    "day_files",
    "dump_accesses",
    "dump_caches",
    "first_accesses",
    "has_lake",
    "lake_files",
    "pair_summary",
]
