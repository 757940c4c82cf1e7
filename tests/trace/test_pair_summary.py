"""The lake's pair summary: the same pairs as a scan, kept up to date as the lake changes."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from trace_world import World

from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.trace import accesses
from bpoguard.trace.accesses import access_index, accesses_of, day_files, lake_files, pair_summary
from bpoguard.trace.dumps import DumpSpec, make_dump
from bpoguard.trace.leak import LeakOptions, cache_dir, trace_leak
from bpoguard.trace.report import leak_document
from bpoguard.trace.scoring import AccessIndex
from bpoguard.workspace import Workspace


def _pairs(index: AccessIndex) -> set[tuple[str, int]]:
    owners = np.searchsorted(index.indptr, np.arange(index.accessors.size), side="right") - 1
    return {
        (index.people[int(p)], int(index.customers[int(o)]))
        for p, o in zip(index.accessors.tolist(), owners.tolist(), strict=True)
    }


def _same(a: AccessIndex, b: AccessIndex) -> None:
    assert a.people == b.people
    assert _pairs(a) == _pairs(b)
    assert a.pairs == b.pairs
    assert np.array_equal(a.person_size, b.person_size)


def _windows(world: World) -> list[dt.datetime | None]:
    start = dt.date.fromisoformat(world.truth["config"]["start"])
    return [None] + [
        dt.datetime.combine(start + dt.timedelta(days=d), dt.time(0), tzinfo=dt.UTC)
        for d in (1, 3, 5)
    ]


def test_the_summary_gives_the_pairs_a_scan_gives(world: World, lake: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for before in _windows(world):
        for include_denied in (True, False):
            scanned = access_index(lake, before, include_denied)
            summarised = access_index(lake, before, include_denied, cache)
            _same(scanned, summarised)
            assert list(scanned.people) == sorted(scanned.people)  # name order, both ways
    assert len(list(cache.glob("*.parquet"))) == 1  # built once, then reused


def test_new_lake_files_are_merged_in_and_the_old_summary_goes(
    world: World, lake: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    days = sorted(lake.glob("day=*"))
    aside = tmp_path / "aside"
    aside.mkdir()
    for day in days[len(days) // 2 :]:
        shutil.move(day, aside / day.name)
    first = pair_summary(lake, cache)
    _same(access_index(lake), access_index(lake, cache_dir=cache))
    for day in sorted(aside.iterdir()):
        shutil.move(day, lake / day.name)
    second = pair_summary(lake, cache)
    assert second != first and not first.exists()
    manifest = json.loads(second.with_suffix(".json").read_text(encoding="utf-8"))
    assert [tuple(f) for f in manifest["files"]] == lake_files(lake)
    for before in _windows(world):
        _same(access_index(lake, before), access_index(lake, before, cache_dir=cache))
        _same(access_index(lake, before, False), access_index(lake, before, False, cache))


def test_a_summary_built_in_parts_is_the_one_built_in_one_query(
    world: World, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    whole = pq.read_table(pair_summary(lake, tmp_path / "whole"))
    # Parts of a few hundred rows: many customer ranges, some of them empty.
    monkeypatch.setattr(accesses, "ROWS_PER_PART", 300)
    parted = pair_summary(lake, tmp_path / "parted")
    assert pq.read_table(parted).equals(whole)
    assert whole.num_rows > 0
    # Brought up to date in parts too (an older summary as the base), the same again.
    days = sorted(lake.glob("day=*"))
    aside = tmp_path / "aside"
    aside.mkdir()
    for day in days[len(days) // 2 :]:
        shutil.move(day, aside / day.name)
    pair_summary(lake, tmp_path / "grown")
    for day in sorted(aside.iterdir()):
        shutil.move(day, lake / day.name)
    assert pq.read_table(pair_summary(lake, tmp_path / "grown")).equals(whole)
    assert not list((tmp_path / "grown").glob(".pairs-*"))  # no part left behind


def test_a_changed_or_removed_file_means_a_rebuild(
    world: World, lake: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    pair_summary(lake, cache)
    files = sorted(lake.glob("day=*/*.parquet"))
    files[0].unlink()  # the lake lost a file: its pairs must go too
    stat = files[1].stat()
    os.utime(files[1], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000))  # rewritten in place
    for before in _windows(world):
        _same(access_index(lake, before), access_index(lake, before, cache_dir=cache))


def test_an_unreadable_manifest_is_never_trusted(world: World, lake: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    summary = pair_summary(lake, cache)
    summary.with_suffix(".json").write_text("{not json", encoding="utf-8")
    newest = sorted(lake.glob("day=*/*.parquet"))[-1]
    shutil.copy(newest, newest.with_name("copy-" + newest.name))  # the lake grew
    _same(access_index(lake), access_index(lake, cache_dir=cache))


def test_a_cache_that_cannot_be_written_falls_back_to_the_scan(
    world: World, lake: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    cache = blocked / "cache"  # a folder cannot be made under a file
    _same(access_index(lake), access_index(lake, cache_dir=cache))
    assert blocked.is_file()


def test_a_failed_build_leaves_no_file(
    world: World, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"

    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(accesses.os, "chmod", broken)  # fails after the file was written
    with pytest.raises(OSError, match="disk full"):
        pair_summary(lake, cache)
    assert list(cache.iterdir()) == []


def test_a_trace_is_the_same_every_time_and_keeps_its_summary(world: World, tmp_path: Path) -> None:
    dump = tmp_path / "dump.csv"
    with Workspace.open(world.home) as ws:
        make_dump(ws, DumpSpec("mixed", 120, "csv", 11), dump)
        start = dt.date.fromisoformat(world.truth["config"]["start"])
        options = LeakOptions(first_seen=start + dt.timedelta(days=4))
        documents = []
        for _ in range(3):
            vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
            trace = trace_leak(ws, vault, dump, options)
            documents.append(json.dumps(leak_document(trace), sort_keys=True, default=str))
            assert set(trace.timings) >= {"read", "match", "access index", "accesses", "proofs"}
        assert documents[0] == documents[1] == documents[2]
        assert len(list(cache_dir(ws).glob("*.parquet"))) == 1


def test_accesses_read_only_the_days_before_and_the_same_rows_either_way(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = world.home / "lake"
    index = access_index(lake)
    customers = [int(c) for c in index.customers[:: max(1, index.customers.size // 300)]]
    everything = accesses_of(lake, customers)
    assert everything
    for before in _windows(world)[1:]:
        assert before is not None
        kept = day_files(lake, before)
        assert kept and len(kept) < len(day_files(lake))
        assert all(p.parent.name <= f"day={before.date().isoformat()}" for p in kept)
        expected = [a for a in everything if a.at < before]
        assert accesses_of(lake, customers, before) == expected
        monkeypatch.setattr(accesses, "INLINE_IDS", 0)  # the join instead of constants
        assert accesses_of(lake, customers, before) == expected
        monkeypatch.undo()
        allowed = [a for a in expected if a.allowed]
        assert accesses_of(lake, customers, before, include_denied=False) == allowed
