"""The rows cache's files sorted by their key in small row groups, read by the groups' statistics.

The rows read this way are held equal to the lake's, for customers and for people,
for every window and with refused requests counted or not; and fewer groups are
decoded than the files hold.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from trace_world import World

from bpoguard.trace import bycustomer
from bpoguard.trace.accesses import access_index, accesses_of, lake_files


def _windows(world: World) -> list[dt.datetime | None]:
    start = dt.date.fromisoformat(world.truth["config"]["start"])
    return [None] + [
        dt.datetime.combine(start + dt.timedelta(days=d), dt.time(0), tzinfo=dt.UTC) for d in (2, 4)
    ]


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> int:
    """Few buckets and small row groups, so that the small world's buckets hold several."""
    monkeypatch.setattr(bycustomer, "ROW_GROUP", 300)
    monkeypatch.setattr(bycustomer, "BUCKETS", 2)
    return 300


def _segment(cache: Path) -> Path:
    (segment,) = [p for p in cache.glob(f"{bycustomer._PREFIX}*") if p.is_dir()]
    return segment


def test_each_bucket_is_one_file_sorted_by_its_key_in_small_groups(
    lake: Path, tmp_path: Path, small_groups: int
) -> None:
    cache = tmp_path / "cache"
    bycustomer.bucket_files(lake, cache, [1])
    segment = _segment(cache)
    for folder, key in ((segment, "customer_id"), (segment / "people", "actor")):
        buckets = sorted(folder.glob("bucket=*"))
        assert len(buckets) == 2
        for bucket in buckets:
            (path,) = bucket.glob("*.parquet")
            source = pq.ParquetFile(path)
            table = source.read()
            keys = table.column(key).to_pylist()
            assert keys == sorted(keys)
            times = [(k, t) for k, t in zip(keys, table.column("time").to_pylist(), strict=True)]
            assert times == sorted(times)  # then by time within a key
            groups = [source.metadata.row_group(g).num_rows for g in range(source.num_row_groups)]
            assert source.num_row_groups > 1 and max(groups) <= small_groups
            assert (path.stat().st_mode & 0o777) == 0o600


def test_rows_read_by_the_groups_statistics_are_the_lakes(
    world: World, lake: Path, tmp_path: Path, small_groups: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    index = access_index(lake)
    # Customers of one bucket of the two: few enough buckets for the cache to be read.
    customers = [int(c) for c in index.customers if int(c) % 2 == 0][::7][:40]
    assert bycustomer.worth_it(customers)
    everyone = accesses_of(lake, customers)
    some = sorted({a.person for a in everyone})[::4]
    assert everyone and some
    for before in _windows(world):
        for include_denied in (True, False):
            expected = accesses_of(lake, customers, before, include_denied)
            got = accesses_of(lake, customers, before, include_denied, cache)
            assert got == expected
            theirs = [a for a in expected if a.person in some]
            assert accesses_of(lake, customers, before, include_denied, cache, some) == theirs
    # The people's own files (what a big dump's few shown people read).
    monkeypatch.setattr(bycustomer, "worth_it", lambda _: False)
    for before in _windows(world):
        for include_denied in (True, False):
            expected = accesses_of(lake, customers, before, include_denied, people=some)
            assert accesses_of(lake, customers, before, include_denied, cache, some) == expected


def test_only_the_groups_that_can_hold_a_key_are_decoded(
    lake: Path, tmp_path: Path, small_groups: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    index = access_index(lake)
    person = index.people[len(index.people) // 2]
    files = bycustomer.person_files(lake, cache, [person])
    decoded: list[int] = []
    read_row_groups = pq.ParquetFile.read_row_groups

    def counting(self: pq.ParquetFile, groups: list[int], *args: object, **kw: object) -> pa.Table:
        decoded.extend(groups)
        return read_row_groups(self, groups, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", counting)
    table = bycustomer.read_groups(files, "actor", {person})
    assert table is not None and person in set(table.column("actor").to_pylist())
    total = sum(pq.ParquetFile(f).num_row_groups for f in files)
    assert 0 < len(decoded) < total
    assert table.num_rows < sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    decoded.clear()
    assert bycustomer.read_groups(files, "actor", {"~nobody, after every name"}) is None
    assert decoded == []


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(st.integers(0, 60), min_size=1, max_size=200),
    wanted=st.sets(st.integers(-5, 65), max_size=8),
    group=st.integers(1, 17),
)
def test_the_groups_chosen_hold_every_wanted_row(
    keys: list[int], wanted: set[int], group: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("groups") / "sorted.parquet"
    pq.write_table(pa.table({"k": sorted(keys)}), path, row_group_size=group)
    table = bycustomer.read_groups([path], "k", wanted)
    got = [] if table is None else table.column("k").to_pylist()
    # Every wanted row is in the groups read, and exactly the groups whose bounds hold a
    # wanted value are read.
    assert [k for k in got if k in wanted] == [k for k in sorted(keys) if k in wanted]
    chunks = [sorted(keys)[i : i + group] for i in range(0, len(keys), group)]
    held = [c for c in chunks if any(c[0] <= w <= c[-1] for w in wanted)]
    assert got == [k for c in held for k in c]


def test_a_segment_of_an_older_format_is_removed(lake: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    old = cache / "rows-v2-0123456789abcdef01234567"
    (old / "bucket=0").mkdir(parents=True)
    (old / "bucket=0" / "data_0.parquet").write_bytes(b"PAR1")
    old.with_suffix(".json").write_text(json.dumps({"format": 2, "files": []}), encoding="utf-8")
    bycustomer.bucket_files(lake, cache, [1])
    assert not old.exists() and not old.with_suffix(".json").exists()
    assert _segment(cache).name.startswith(bycustomer._PREFIX)


def test_the_lake_files_are_those_pathlib_globs(lake: Path) -> None:
    """The list names every cache: listed another way, it must be exactly the same."""
    (lake / "day=odd" / "x.parquet").mkdir(parents=True)  # a folder named like a file
    (lake / "day=2026-01-01").mkdir()
    (lake / "day=2026-01-01" / ".hidden.parquet").write_bytes(b"")
    (lake / "day=2026-01-01" / "notes.txt").write_bytes(b"")
    (lake / "other").mkdir()
    (lake / "other" / "y.parquet").write_bytes(b"")
    (lake / "day=file").write_bytes(b"")
    expected = []
    for path in lake.glob("day=*/*.parquet"):
        stat = path.stat()
        expected.append((path.relative_to(lake).as_posix(), stat.st_size, stat.st_mtime_ns))
    assert lake_files(lake) == sorted(expected) and len(expected) > 3
    assert lake_files(lake / "missing") == []
