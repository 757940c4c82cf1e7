"""The people dimension: snapshots, traits, and who joined or left between snapshots."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from bpoguard.events import people

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def snapshot(
    month: int, persons: list[str], role: str = "Engineer", at: dt.datetime = NOW
) -> pa.Table:
    rows = [
        {
            "person": p,
            "name": f"Name {p}",
            "role": role,
            "snapshot": dt.date(2010, month, 1),
            "source": "cert-ldap",
            "imported_at": at,
        }
        for p in persons
    ]
    return pa.Table.from_pylist(rows, schema=people.SNAPSHOT_SCHEMA)


def test_changes_between_snapshots_are_leavers_and_joiners() -> None:
    table = pa.concat_tables(
        [snapshot(1, ["A", "B", "C"]), snapshot(2, ["A", "C", "D"]), snapshot(3, ["A", "D"])]
    )

    assert people.changes(table) == [
        ("hr.leave", "B", dt.date(2010, 2, 1)),
        ("hr.join", "D", dt.date(2010, 2, 1)),
        ("hr.leave", "C", dt.date(2010, 3, 1)),
    ]


def test_load_joins_traits_and_keeps_the_latest_import_of_a_month(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    people.write_file(
        lake, "ldap-2010-01-old.parquet", snapshot(1, ["A"], "Engineer", NOW - dt.timedelta(days=1))
    )
    people.write_file(lake, "ldap-2010-01-new.parquet", snapshot(1, ["A"], "Manager", NOW))
    traits = pa.Table.from_pylist(
        [{"person": "A", "O": 40, "C": 30, "E": 20, "A": 10, "N": 45, "imported_at": NOW}],
        schema=people.TRAITS_SCHEMA,
    )
    people.write_file(lake, "psychometric-x.parquet", traits)

    (row,) = people.load(lake).to_pylist()

    assert row["role"] == "Manager"
    assert (row["O"], row["N"]) == (40, 45)
    assert people.load(tmp_path / "empty").num_rows == 0
