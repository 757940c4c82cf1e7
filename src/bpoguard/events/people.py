"""The people dimension: who each actor is, month by month, from an HR directory.

Imported from CERT's monthly LDAP snapshots (and its psychometric file), it
lives beside the events as Parquet under ``lake/people/``::

    lake/people/ldap-2010-01-<run>.parquet         one row per person in that snapshot
    lake/people/psychometric-<run>.parquet         O, C, E, A, N per person

Event readers skip ``people/`` (``events.dataset``; detection reads only
``day=*`` folders). :func:`load` gives one table, one row per person per
snapshot, with the traits joined on: ``PEOPLE_SCHEMA``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

PEOPLE_DIR: Final = "people"

SNAPSHOT_SCHEMA: Final = pa.schema(
    [
        pa.field("person", pa.string(), nullable=False),  # the user id, as the source names it
        pa.field("name", pa.string()),
        pa.field("email", pa.string()),
        pa.field("role", pa.string()),
        pa.field("projects", pa.string()),  # r6.2 only, ';'-separated
        pa.field("business_unit", pa.string()),
        pa.field("functional_unit", pa.string()),
        pa.field("department", pa.string()),
        pa.field("team", pa.string()),
        pa.field("supervisor", pa.string()),  # the supervisor's person id, when found
        pa.field("supervisor_name", pa.string()),  # as the snapshot gives it
        pa.field("snapshot", pa.date32(), nullable=False),  # first day of the month
        pa.field("source", pa.string(), nullable=False),
        pa.field("imported_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)
TRAITS: Final = ("O", "C", "E", "A", "N")
TRAITS_SCHEMA: Final = pa.schema(
    [pa.field("person", pa.string(), nullable=False)]
    + [pa.field(t, pa.int64()) for t in TRAITS]
    + [pa.field("imported_at", pa.timestamp("us", tz="UTC"), nullable=False)]
)
PEOPLE_SCHEMA: Final = pa.schema(
    [f for f in SNAPSHOT_SCHEMA if f.name != "imported_at"]
    + [pa.field(t, pa.int64()) for t in TRAITS]
)


def people_dir(lake_dir: Path) -> Path:
    """Where the people dimension's files are."""
    return lake_dir / PEOPLE_DIR


def write_file(lake_dir: Path, name: str, table: pa.Table) -> Path:
    """Write one dimension file whole (temporary name, then rename) and return its path."""
    folder = people_dir(lake_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    temporary = folder / f".{name}.tmp"
    pq.write_table(table, temporary, compression="zstd")
    os.replace(temporary, target)
    return target


def load(lake_dir: Path) -> pa.Table:
    """Every person in every snapshot, with their traits where given (``PEOPLE_SCHEMA``).

    A snapshot month imported more than once (a corrected file) counts as its
    latest import.
    """
    snapshots = _latest(_read(lake_dir, "ldap-*.parquet", SNAPSHOT_SCHEMA), ("person", "snapshot"))
    traits = {
        r["person"]: r
        for r in _latest(_read(lake_dir, "psychometric-*.parquet", TRAITS_SCHEMA), ("person",))
    }
    rows = []
    for r in snapshots:
        row = {k: v for k, v in r.items() if k != "imported_at"}
        t = traits.get(r["person"], {})
        row.update({name: t.get(name) for name in TRAITS})
        rows.append(row)
    rows.sort(key=lambda r: (r["snapshot"], r["person"]))
    return pa.Table.from_pylist(rows, schema=PEOPLE_SCHEMA)


def changes(table: pa.Table) -> list[tuple[str, str, dt.date]]:
    """(``hr.leave`` | ``hr.join``, person, first month without | with them), snapshot to snapshot.

    A person missing from a snapshot after being in the one before has left;
    one appearing after the first snapshot has joined.
    """
    members: dict[dt.date, set[str]] = {}
    for person, month in zip(
        table.column("person").to_pylist(), table.column("snapshot").to_pylist(), strict=True
    ):
        members.setdefault(month, set()).add(person)
    months = sorted(members)
    found: list[tuple[str, str, dt.date]] = []
    for before, after in itertools.pairwise(months):
        found += [("hr.leave", p, after) for p in sorted(members[before] - members[after])]
        found += [("hr.join", p, after) for p in sorted(members[after] - members[before])]
    return found


def _read(lake_dir: Path, pattern: str, schema: pa.Schema) -> list[dict[str, object]]:
    files = sorted(people_dir(lake_dir).glob(pattern))
    if not files:
        return []
    rows: list[dict[str, object]] = pa.concat_tables(
        [pq.read_table(f, schema=schema) for f in files]
    ).to_pylist()
    return rows


def _latest(rows: list[dict[str, object]], key: tuple[str, ...]) -> list[dict[str, object]]:
    newest: dict[tuple[object, ...], dict[str, object]] = {}
    for row in rows:
        k = tuple(row[name] for name in key)
        kept = newest.get(k)
        if kept is None or row["imported_at"] >= kept["imported_at"]:  # type: ignore[operator]
            newest[k] = row
    return list(newest.values())
