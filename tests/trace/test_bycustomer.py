"""Record decisions filed by customer: the same accesses as the lake, kept up to date."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest
from trace_world import World

from bpoguard.trace import bycustomer
from bpoguard.trace.accesses import access_index, accesses_of


def _customers(lake: Path, count: int = 40) -> list[int]:
    index = access_index(lake)
    step = max(1, index.customers.size // count)
    return [int(c) for c in index.customers[::step]][:count]


def _windows(world: World) -> list[dt.datetime | None]:
    start = dt.date.fromisoformat(world.truth["config"]["start"])
    return [None] + [
        dt.datetime.combine(start + dt.timedelta(days=d), dt.time(0), tzinfo=dt.UTC) for d in (2, 4)
    ]


def _same(lake: Path, cache: Path, customers: list[int], world: World) -> None:
    for before in _windows(world):
        for include_denied in (True, False):
            expected = accesses_of(lake, customers, before, include_denied)
            assert accesses_of(lake, customers, before, include_denied, cache) == expected


def _segments(cache: Path) -> list[Path]:
    return sorted(p for p in cache.glob("rows-v*") if p.is_dir())


def test_the_cache_gives_the_lakes_rows(world: World, lake: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    customers = _customers(lake)
    assert bycustomer.worth_it(customers)
    assert accesses_of(lake, customers)
    _same(lake, cache, customers, world)
    assert len(_segments(cache)) == 1
    for path in _segments(cache)[0].rglob("*.parquet"):
        assert (path.stat().st_mode & 0o777) == 0o600


def test_new_lake_files_become_a_segment_and_too_many_are_merged(
    world: World, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    customers = _customers(lake)
    days = sorted(lake.glob("day=*"))
    aside = tmp_path / "aside"
    aside.mkdir()
    for day in days[len(days) // 2 :]:
        shutil.move(day, aside / day.name)
    _same(lake, cache, customers, world)
    later = sorted(aside.iterdir())
    shutil.move(later[0], lake / later[0].name)
    _same(lake, cache, customers, world)
    assert len(_segments(cache)) == 2  # the new files only were read
    monkeypatch.setattr(bycustomer, "MAX_SEGMENTS", 2)
    for day in later[1:]:
        shutil.move(day, lake / day.name)
    _same(lake, cache, customers, world)
    assert len(_segments(cache)) == 1  # merged into one


def test_a_changed_file_a_stray_folder_or_a_bad_manifest_mean_a_rebuild(
    world: World, lake: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    customers = _customers(lake)
    _same(lake, cache, customers, world)
    files = sorted(lake.glob("day=*/*.parquet"))
    files[0].unlink()
    stat = files[1].stat()
    os.utime(files[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))
    stray = cache / f"{bycustomer._PREFIX}stray"
    stray.mkdir()
    _same(lake, cache, customers, world)
    assert not stray.exists() and len(_segments(cache)) == 1
    manifest = _segments(cache)[0].with_suffix(".json")
    assert json.loads(manifest.read_text(encoding="utf-8"))["format"] == bycustomer.FORMAT
    manifest.write_text("[", encoding="utf-8")
    _same(lake, cache, customers, world)
    assert len(_segments(cache)) == 1


def test_many_customers_or_a_cache_that_cannot_be_written_read_the_lake(
    world: World, lake: Path, tmp_path: Path
) -> None:
    assert not bycustomer.worth_it(range(bycustomer.BUCKETS))
    many = [int(c) for c in access_index(lake).customers]
    cache = tmp_path / "cache"
    assert accesses_of(lake, many, cache_dir=cache) == accesses_of(lake, many)
    assert not cache.exists()  # the lake was read: nothing built for it
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    customers = _customers(lake)
    assert accesses_of(lake, customers, cache_dir=blocked / "c") == accesses_of(lake, customers)
