"""Every person's volume from the per-day totals, however the totals file was written."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bpoguard.trace import accesses

# Sorted by person, as the cache writes them; "bo" spans row groups when they are small.
ROWS = [
    ("al", 1, 2.0, 1.0),
    ("al", 4, 1.0, 0.0),
    ("bo", 0, 3.0, 3.0),
    ("bo", 2, 1.0, 1.0),
    ("bo", 3, 5.0, 0.0),
    ("bo", 6, 2.0, 2.0),
    ("cy", 5, 1.0, 1.0),
    ("dee's", 2, 0.0, 4.0),
]


def _expected(day: int, include_denied: bool) -> tuple[list[str], list[int]]:
    sums: dict[str, int] = {}
    for actor, d, n, n_allowed in ROWS:
        if d < day:
            sums[actor] = sums.get(actor, 0) + int(n if include_denied else n_allowed)
    kept = [(a, v) for a, v in sorted(sums.items()) if v > 0]
    return [a for a, _ in kept], [v for _, v in kept]


@pytest.mark.parametrize("row_group", [1, 3, 100])
@pytest.mark.parametrize("dictionary", [True, False])
def test_volumes_are_the_sums_before_the_day(
    tmp_path: Path, row_group: int, dictionary: bool
) -> None:
    table = pa.table(
        {
            "actor": [r[0] for r in ROWS],
            "day": pa.array([r[1] for r in ROWS], pa.int64()),
            "n": [r[2] for r in ROWS],
            "n_allowed": [r[3] for r in ROWS],
        }
    )
    path = tmp_path / "totals.parquet"
    pq.write_table(table, path, row_group_size=row_group, use_dictionary=dictionary)
    for day in (0, 1, 3, 5, 7, accesses.NEVER):
        for include_denied in (True, False):
            people, sizes = accesses._volumes(path, day, include_denied)
            assert (people, sizes.tolist()) == _expected(day, include_denied), (day, include_denied)


def test_no_totals_is_nobody(tmp_path: Path) -> None:
    empty = pa.table(
        {
            "actor": pa.array([], pa.string()),
            "day": pa.array([], pa.int64()),
            "n": pa.array([], pa.float64()),
            "n_allowed": pa.array([], pa.float64()),
        }
    )
    path = tmp_path / "totals.parquet"
    pq.write_table(empty, path)
    people, sizes = accesses._volumes(path, accesses.NEVER, True)
    assert people == [] and sizes.size == 0
