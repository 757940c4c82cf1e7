"""Who accessed which customers, read from the event lake's guard decisions with DuckDB.

Every guard decision is a lake row carrying its ledger index, so what is read
here can be proved entry by entry from the ledger. Reads are column-pruned
and filtered inside DuckDB; only (person, customer) pairs and the rows for
the customers in question come back to Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from bpoguard.trace.scoring import AccessIndex

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


@contextmanager
def _lake(lake_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = duckdb.connect()
    try:
        glob = str(lake_dir / "day=*" / "*.parquet").replace("'", "''")
        # The path is quoted for SQL; nothing else is interpolated.
        view = f"CREATE VIEW lake AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true, union_by_name = true)"  # noqa: S608
        con.execute(view)
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
    lake_dir: Path, before: dt.datetime | None = None, include_denied: bool = True
) -> AccessIndex:
    """Every (person, customer) pair of record decisions before a time, as an AccessIndex."""
    if not has_lake(lake_dir):
        return AccessIndex.from_pairs((), [], [])
    where, params = _where(before, include_denied)
    with _lake(lake_dir) as con:
        table: pa.Table = (
            con.execute(f"SELECT DISTINCT actor, customer_id FROM lake WHERE {where}", params)  # noqa: S608
            .arrow()
            .read_all()
        )
    actors = table.column("actor").combine_chunks().dictionary_encode()
    people = tuple(str(p) for p in actors.dictionary.to_pylist())
    person = np.asarray(actors.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    customer = np.asarray(table.column("customer_id").to_numpy(), dtype=np.int64)
    return AccessIndex.from_pairs(people, person, customer)


def accesses_of(
    lake_dir: Path,
    customers: Collection[int],
    before: dt.datetime | None = None,
    include_denied: bool = True,
) -> list[Access]:
    """Every record decision on the given customers before a time, oldest first."""
    if not customers or not has_lake(lake_dir):
        return []
    where, params = _where(before, include_denied)
    with _lake(lake_dir) as con:
        con.register("wanted", pa.table({"cid": pa.array(sorted(customers), pa.int64())}))
        rows = con.execute(
            "SELECT actor, customer_id, epoch_us(time), action, outcome, fields, ledger_index, "  # noqa: S608
            f"site_id, interaction_id FROM lake WHERE {where} "
            "AND customer_id IN (SELECT cid FROM wanted) ORDER BY time, ledger_index",
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
    with _lake(lake_dir) as con:
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


__all__ = ["Access", "access_index", "accesses_of", "first_accesses", "has_lake"]
