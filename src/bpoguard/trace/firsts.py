"""First accesses for `trace complaints`, kept in the workspace's cache: a trace reads pairs, not events.

A complaints trace compares, for every staff member, team, site, shift and
channel, the victims it accessed with the other customers of the same clients
it accessed. Read from the lake, that is every record decision and every
interaction's purpose, labelled one by one: at 10,000 agents and ten days, 9
million rows a trace. Two files in ``cache/trace/firsts/`` replace that scan:

- ``firsts-v1-<lake digest>.parquet``: one row per (person, customer, site,
  channel) of the record decisions, with the time of the first decision and
  of the first allowed one (the channel is the purpose of the interaction the
  access was made in, or "outside any interaction"). Built by one scan of the
  lake, named after the lake's files with their sizes and modification times
  (as the pair summary is): when files are added, only those are read and
  merged in; when one changed or disappeared, it is built again. Sorted by
  customer, so the rows of a few customers are found without reading the rest.
- ``counts-v2-<digest>.parquet``: for every group of every dimension, client
  and UTC day, how many customers who are not canaries the group first
  accessed that day (any decision, and allowed ones). It depends on the
  firsts and on the store (each person's team, site and shift; each
  customer's client; which customers are canaries), so its name digests the
  firsts' name, the staff's labels and a fingerprint of the customers (per
  client their count, highest id and sum of ids, and the canaries' ids).

The customers of some clients a group accessed before midnight of a day are
then a sum of counts over the days before it; a trace reads the firsts' rows
of its victims alone, and subtracts the victims from those sums. Both files are written whole and are mode 0600 (who
accessed whom, never a value). Deleting ``cache/`` is always safe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from bpoguard.trace._files import build_connection, write_private, write_whole
from bpoguard.trace.accesses import RECORD_ACTIONS, has_lake, lake_files

# Bumped when a file's columns or meaning change (counts 2: canaries left out).
FIRSTS_FORMAT, COUNTS_FORMAT = 1, 2
DIMENSIONS = ("staff", "team", "site", "shift", "channel")
OUTSIDE = "outside any interaction"
DAY_US = 86_400 * 1_000_000
INLINE_IDS = 2_000  # customers written into a query as constants, at most
_FIRSTS = f"firsts-v{FIRSTS_FORMAT}-"
_COUNTS = f"counts-v{COUNTS_FORMAT}-"

# Group labels per row of the firsts, with the staff table's labels joined on the
# person: the same strings the complaints report has always shown (an empty team
# or site is a group of its own; a person the store does not know has shift "/").
_LABELLED = (
    "SELECT f.customer_id, f.actor AS staff, coalesce(s.team, '') AS team, "
    "coalesce(f.site_id, '') AS site, coalesce(s.shift, '/') AS shift, f.purpose AS channel, "
    "f.first_us, f.first_allowed_us FROM {source} f LEFT JOIN staff s ON s.actor = f.actor"
)


def staff_labels(staff: Sequence[tuple[str, str | None, str | None, str | None]]) -> pa.Table:
    """(person, team, site, shift) rows of the store as the labels a report shows: actor, team, shift."""
    return pa.table(
        {
            "actor": pa.array([p for p, _, _, _ in staff], pa.string()),
            "team": pa.array([team or "" for _, team, _, _ in staff], pa.string()),
            "shift": pa.array([f"{site or ''}/{shift or ''}" for _, _, site, shift in staff],
                              pa.string()),
        }
    )  # fmt: skip


def firsts_file(lake_dir: Path, folder: Path) -> Path | None:
    """The firsts of the lake as it is now: reused, extended or built; None when the lake is empty.

    When files were only added since a firsts file was written, only those are
    read and merged in (as the pair summary does); a changed or removed file
    means a build from the whole lake. Raises OSError when the folder cannot be
    written.
    """
    if not has_lake(lake_dir):
        return None
    files = lake_files(lake_dir)
    target = folder / f"{_FIRSTS}{_digest(files)}.parquet"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    base, covered = _best_base(folder, set(files))
    if covered == set(files):  # a base of every file, yet another name: never extend it
        base, covered = None, set()
    new = [lake_dir / f[0] for f in files if f not in covered]
    old = [lake_dir / f[0] for f in files if f in covered]
    unresolved = [0]

    def build(con: duckdb.DuckDBPyConnection, tmp: str) -> None:
        unresolved[0] = _build_firsts(con, new, old, base, tmp)

    _write(target, build)
    manifest = {"format": FIRSTS_FORMAT, "files": files, "unresolved": unresolved[0]}
    write_whole(target.with_suffix(".json"), json.dumps(manifest))
    _drop_others(folder, _FIRSTS, target)
    return target


def _best_base(folder: Path, files: set[tuple[str, int, int]]) -> tuple[Path | None, set[Any]]:
    """The firsts file covering the most of the lake's files and nothing else, if it can grow.

    One that holds accesses whose interaction it never found cannot: the opening
    event may be in a file added since, and would change those rows' channel.
    """
    best: Path | None = None
    covered: set[Any] = set()
    for manifest in folder.glob(f"{_FIRSTS}*.json"):
        firsts = manifest.with_suffix(".parquet")
        try:
            doc = json.loads(manifest.read_text(encoding="utf-8"))
            listed = {(str(p), int(n), int(t)) for p, n, t in doc["files"]}
            usable = doc["format"] == FIRSTS_FORMAT and int(doc["unresolved"]) == 0
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: never trusted
        if usable and firsts.is_file() and listed <= files and len(listed) > len(covered):
            best, covered = firsts, listed
    return best, covered


def _build_firsts(
    con: duckdb.DuckDBPyConnection,
    new: Sequence[Path],
    old: Sequence[Path],
    base: Path | None,
    tmp: str,
) -> int:
    """Write the firsts of ``base`` (covering ``old``) and the ``new`` files; returns how many
    accesses name an interaction whose opening event is in no file."""
    # Relations over the file lists: no path is ever written into SQL text.
    con.read_parquet([str(f) for f in new], hive_partitioning=True, union_by_name=True
                     ).create_view("lake")  # fmt: skip
    actions = ", ".join(f"'{a}'" for a in RECORD_ACTIONS)
    con.execute(
        "CREATE VIEW acc AS SELECT actor, customer_id, site_id, interaction_id, "  # noqa: S608
        "epoch_us(time) AS t, outcome = 'allowed' AS allowed FROM lake WHERE source = 'guard' "
        f"AND customer_id IS NOT NULL AND actor IS NOT NULL AND action IN ({actions})"
    )
    con.execute(
        "CREATE TEMP TABLE purposes AS SELECT interaction_id, any_value(purpose) AS purpose "
        "FROM lake WHERE action = 'interaction.open' AND interaction_id IS NOT NULL GROUP BY 1"
    )
    missing = (
        "SELECT DISTINCT interaction_id FROM acc WHERE interaction_id IS NOT NULL "
        "AND interaction_id NOT IN (SELECT interaction_id FROM purposes)"
    )
    if old:
        # An interaction's purpose is read wherever its opening event lies: the new
        # accesses of calls opened before the new files are looked for in the old ones.
        con.read_parquet([str(f) for f in old], hive_partitioning=True, union_by_name=True
                         ).create_view("old")  # fmt: skip
        con.execute(
            "INSERT INTO purposes SELECT interaction_id, any_value(purpose) FROM old "  # noqa: S608
            f"WHERE action = 'interaction.open' AND interaction_id IN ({missing}) GROUP BY 1"
        )
    rows = (
        f"SELECT acc.actor, acc.customer_id, acc.site_id, coalesce(purposes.purpose, '{OUTSIDE}') "  # noqa: S608
        "AS purpose, min(t) AS first_us, min(t) FILTER (WHERE allowed) AS first_allowed_us "
        "FROM acc LEFT JOIN purposes USING (interaction_id) GROUP BY 1, 2, 3, 4"
    )
    if base is not None:
        con.read_parquet(str(base)).create_view("base")
        rows = (
            "SELECT actor, customer_id, site_id, purpose, min(first_us) AS first_us, "  # noqa: S608
            "min(first_allowed_us) AS first_allowed_us FROM "
            f"({rows} UNION ALL SELECT * FROM base) GROUP BY 1, 2, 3, 4"
        )
    con.execute(f"COPY ({rows} ORDER BY customer_id, actor) TO ? (FORMAT parquet)", [tmp])
    found = con.execute(f"SELECT count(*) FROM ({missing})").fetchone()  # noqa: S608
    return int(found[0]) if found else 0


def counts_file(
    firsts: Path,
    folder: Path,
    staff: pa.Table,
    fingerprint: str,
    customers: Callable[[], pa.Table],
) -> Path:
    """The per-group, client and day counts for these firsts and this store, reused or built.

    ``fingerprint`` stands for the store's customers (which client each belongs to,
    which are canaries); ``customers`` gives those who are not canaries (id, client)
    when the counts must be built: the canaries are never part of the comparison.
    """
    key = json.dumps([firsts.name, _table_digest(staff), fingerprint])
    target = folder / f"{_COUNTS}{hashlib.sha256(key.encode()).hexdigest()[:24]}.parquet"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def build(con: duckdb.DuckDBPyConnection, tmp: str) -> None:
        con.register("staff", staff)
        con.register("customers", customers())
        con.read_parquet(str(firsts)).create_view("firsts")
        con.execute(
            "CREATE TEMP TABLE labelled AS SELECT l.*, c.client FROM ("  # noqa: S608
            + _LABELLED.format(source="firsts")
            + ") l JOIN customers c ON c.id = l.customer_id"
        )
        parts = []
        for dimension in DIMENSIONS:
            # A group's first access of a customer is the earliest of its rows for them.
            per_customer = (
                f"SELECT {dimension} AS value, client, min(first_us) // {DAY_US} AS any_day, "  # noqa: S608
                f"min(first_allowed_us) // {DAY_US} AS allowed_day FROM labelled "
                f"GROUP BY {dimension}, client, customer_id"
            )
            for allowed, day in ((False, "any_day"), (True, "allowed_day")):
                parts.append(
                    f"SELECT '{dimension}' AS dimension, value, client, {allowed} AS allowed, "  # noqa: S608
                    f"{day} AS day, count(*) AS n FROM ({per_customer}) WHERE {day} IS NOT NULL "
                    "GROUP BY value, client, day"
                )
        con.execute(
            f"COPY (SELECT * FROM ({' UNION ALL '.join(parts)}) "  # noqa: S608
            "ORDER BY dimension, value, client, allowed, day) TO ? (FORMAT parquet)",
            [tmp],
        )

    _write(target, build)
    _drop_others(folder, _COUNTS, target)
    return target


def rows_of(
    con: duckdb.DuckDBPyConnection, firsts: Path, customers: Collection[int], staff: pa.Table
) -> pa.Table:
    """The firsts' rows of these customers, with every dimension's label."""
    con.register("staff", staff)
    if len(customers) <= INLINE_IDS:
        # Constants DuckDB checks against each row group's statistics: the firsts are
        # sorted by customer, so only the groups that can hold them are decoded.
        wanted = "(" + ", ".join(str(int(c)) for c in sorted(customers)) + ")"
    else:
        con.register("wanted", pa.table({"cid": pa.array(sorted(customers), pa.int64())}))
        wanted = "(SELECT cid FROM wanted)"
    source = f"(SELECT * FROM read_parquet(?) WHERE customer_id IN {wanted})"  # noqa: S608
    return con.execute(_LABELLED.format(source=source), [str(firsts)]).arrow().read_all()


def group_totals(
    con: duckdb.DuckDBPyConnection,
    counts: Path,
    clients: Collection[str],
    before_day: int,
    allowed_only: bool,
    groups: Sequence[tuple[str, str]],
) -> dict[tuple[str, str], int]:
    """(dimension, group) -> customers of these clients it first accessed before a UTC day.

    Canaries are not counted; ``groups`` are the (dimension, group) pairs wanted.
    """
    if not groups:
        return {}
    con.register("groups", pa.table({"dimension": [d for d, _ in groups],
                                     "value": [v for _, v in groups]}))  # fmt: skip
    rows = con.execute(
        "SELECT dimension, value, sum(n) FROM read_parquet(?) SEMI JOIN groups "
        "USING (dimension, value) WHERE list_contains(?, client) AND allowed = ? AND day < ? "
        "GROUP BY 1, 2",
        [str(counts), sorted(clients), allowed_only, before_day],
    ).fetchall()
    return {(str(d), str(v)): int(n) for d, v, n in rows}


def _write(target: Path, build: Callable[[duckdb.DuckDBPyConnection, str], None]) -> None:
    """Run ``build`` into ``target`` on a connection of bounded memory, written whole.

    At 90 days (20 million firsts, 20 million interactions) the builds held 7-10 GB
    unbounded; DuckDB now spills its joins, groupings and sorts beside the cache instead.
    """
    with build_connection(target.parent) as con:
        write_private(target, lambda tmp: build(con, tmp))


def _drop_others(folder: Path, prefix: str, keep: Path) -> None:
    """Remove superseded files of one kind, of any format; a reader that has one open keeps it."""
    for old in folder.glob(f"{prefix.split('-')[0]}-v*"):
        if old not in (keep, keep.with_suffix(".json")):
            old.unlink(missing_ok=True)


def _digest(files: object) -> str:
    return hashlib.sha256(json.dumps(files).encode("utf-8")).hexdigest()[:24]


def _table_digest(table: pa.Table) -> str:
    return _digest(sorted(zip(*(table.column(n).to_pylist() for n in table.column_names),
                              strict=True)))  # fmt: skip


__all__ = [
    "DIMENSIONS",
    "counts_file",
    "firsts_file",
    "group_totals",
    "rows_of",
    "staff_labels",
]
