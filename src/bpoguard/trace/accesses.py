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
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from bpoguard.trace._files import write_whole
from bpoguard.trace.scoring import AccessIndex

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
    con = duckdb.connect()
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

SUMMARY_FORMAT = 1  # bumped when the summary's columns or meaning change
_SUMMARY_PREFIX = f"pairs-v{SUMMARY_FORMAT}-"

LakeFile = tuple[str, int, int]  # path inside the lake, size, modification time (ns)


def lake_files(lake_dir: Path) -> list[LakeFile]:
    """The lake's event files, each with what tells a changed file from the one summarised."""
    found = []
    for path in lake_dir.glob("day=*/*.parquet"):
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed while listing (a compaction): not part of the lake
            continue
        found.append((path.relative_to(lake_dir).as_posix(), stat.st_size, stat.st_mtime_ns))
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
    con = duckdb.connect()
    try:
        # The summary is sorted by actor then customer, and a filtered scan keeps that order.
        return con.execute(query, params).arrow().read_all()
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


def _build(lake_dir: Path, new: Sequence[Path], base: Path | None, target: Path) -> None:
    """Write the summary of ``base`` (an older summary) and the ``new`` lake files, whole."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".pairs-", suffix=".parquet")
    os.close(fd)
    con = duckdb.connect()
    try:
        parts = []
        if new:
            con.read_parquet(
                [str(p) for p in new], hive_partitioning=True, union_by_name=True
            ).create_view("lake")
            where, _ = _where(None, True)
            parts.append(
                "SELECT actor, customer_id, min(epoch_us(time)) AS first_us, "  # noqa: S608
                "min(epoch_us(time)) FILTER (WHERE outcome = 'allowed') AS first_allowed_us "
                f"FROM lake WHERE {where} GROUP BY actor, customer_id"
            )
        if base is not None:
            con.read_parquet(str(base)).create_view("base")
            parts.append("SELECT actor, customer_id, first_us, first_allowed_us FROM base")
        if not parts:
            raise ValueError("nothing to summarise")  # callers check has_lake first
        union = " UNION ALL ".join(parts)
        con.execute(
            "COPY (SELECT actor, customer_id, min(first_us) AS first_us, "  # noqa: S608
            "min(first_allowed_us) AS first_allowed_us "
            f"FROM ({union}) GROUP BY actor, customer_id ORDER BY actor, customer_id) "
            "TO ? (FORMAT parquet)",
            [tmp],
        )
        os.chmod(tmp, 0o600)  # who accessed whom: as sensitive as the lake
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        con.close()


def accesses_of(
    lake_dir: Path,
    customers: Collection[int],
    before: dt.datetime | None = None,
    include_denied: bool = True,
    cache_dir: Path | None = None,
) -> list[Access]:
    """Every record decision on the given customers before a time, oldest first.

    With ``cache_dir``, read from the record decisions filed by customer there
    (:mod:`bpoguard.trace.bycustomer`, built or brought up to date first).
    """
    if not customers or not has_lake(lake_dir):
        return []
    rows = None if cache_dir is None else _from_buckets(lake_dir, cache_dir, customers, before,
                                                       include_denied)  # fmt: skip
    if rows is None:
        files = day_files(lake_dir, before)
        if not files:
            return []
        where, params = _where(before, include_denied)
        with _lake(files) as con:
            wanted = _wanted(con, customers)
            rows = con.execute(
                "SELECT actor, customer_id, epoch_us(time), action, outcome, fields, "  # noqa: S608
                f"ledger_index, site_id, interaction_id FROM lake WHERE {where} "
                f"AND customer_id IN {wanted} ORDER BY time, ledger_index",
                params,
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
) -> list[tuple[Any, ...]] | None:
    """The rows from the by-customer cache; None to read the lake (a read-only copy, many ids)."""
    from bpoguard.trace.bycustomer import bucket_files, worth_it

    if not worth_it(customers):
        return None  # most buckets: the lake itself is as quick
    try:
        files = bucket_files(lake_dir, cache_dir, customers)
    except OSError:
        return None
    if not files:
        return []
    # The cache holds record decisions by staff on customers only: the rest of _where.
    clauses, params = [], []
    if not include_denied:
        clauses.append("outcome = 'allowed'")
    if before is not None:
        clauses.append("epoch_us(time) < ?")
        params.append(int(before.timestamp() * 1_000_000))
    con = duckdb.connect()
    try:
        con.read_parquet([str(f) for f in files], union_by_name=True).create_view("lake")
        wanted = _wanted(con, customers)
        where = " AND ".join([*clauses, f"customer_id IN {wanted}"])
        return con.execute(
            "SELECT actor, customer_id, epoch_us(time), action, outcome, fields, "  # noqa: S608
            f"ledger_index, site_id, interaction_id FROM lake WHERE {where} "
            "ORDER BY time, ledger_index",
            params,
        ).fetchall()
    finally:
        con.close()


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
    "access_index",
    "accesses_of",
    "day_files",
    "first_accesses",
    "has_lake",
    "lake_files",
    "pair_summary",
]
