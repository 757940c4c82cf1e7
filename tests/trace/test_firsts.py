"""The complaints' first-access cache: the same ranking as labelling every lake row, kept up to date."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest
from sqlalchemy import select, update
from trace_world import World

from bpoguard.store import models as m
from bpoguard.trace import firsts
from bpoguard.trace.accesses import first_accesses, lake_files
from bpoguard.trace.complaints import (
    Line,
    _resolve,
    firsts_dir,
    rank_groups,
    read_complaints,
    trace_complaints,
)
from bpoguard.workspace import Workspace


def _reference(ws: Workspace, path: Path, include_denied: bool) -> list[Line]:
    """The ranking computed the way it was before the cache: every first access labelled."""
    rows = read_complaints(path)
    with ws.store.engine.connect() as conn:
        victims, client_of, _ = _resolve(conn, rows)
        clients = sorted({client_of[c] for c in victims})
        universe = np.fromiter(
            conn.scalars(select(m.Customer.id).where(m.Customer.client_id.in_(clients),
                                                     m.Customer.is_canary.is_(False))),
            dtype=np.int64,
        )  # fmt: skip
        staff = {
            r.id: (r.team, r.site_id, r.shift)
            for r in conn.execute(select(m.Staff.id, m.Staff.team, m.Staff.site_id, m.Staff.shift))
        }
    cutoff = dt.datetime.combine(max(victims.values()), dt.time(0), tzinfo=dt.UTC)
    table = first_accesses(ws.settings.lake_dir, cutoff, include_denied)
    people = [str(a) for a in table.column("actor").to_pylist()]
    none = (None, None, None)
    groups = {
        "staff": people,
        "team": [staff.get(p, none)[0] or "" for p in people],
        "site": [str(s or "") for s in table.column("site_id").to_pylist()],
        "shift": [f"{staff.get(p, none)[1] or ''}/{staff.get(p, none)[2] or ''}" for p in people],
        "channel": [str(s) for s in table.column("purpose").to_pylist()],
    }
    report_us = {
        c: int(dt.datetime.combine(d, dt.time(0), tzinfo=dt.UTC).timestamp() * 1_000_000)
        for c, d in victims.items()
    }
    return rank_groups(
        groups,
        np.asarray(table.column("customer_id").to_numpy(), dtype=np.int64),
        np.asarray(table.column("first_us").to_numpy(), dtype=np.int64),
        report_us,
        universe,
    )


def _random_complaints(world: World, path: Path, seed: int, count: int = 30) -> None:
    """Complaints about customers of the world, some accessed, with dates across the lake's days."""
    rng = np.random.default_rng(seed)
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        ids = sorted(conn.scalars(select(m.Customer.id)))
        canaries = sorted(conn.scalars(select(m.Customer.id).where(m.Customer.is_canary.is_(True))))
    picked = [ids[int(k)] for k in rng.choice(len(ids), size=count, replace=False)]
    picked += canaries[:2]  # a canary among the victims is not part of the comparison
    start = dt.date(2026, 3, 1)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_id", "reported_on"])
        for c in picked:
            writer.writerow([c, (start + dt.timedelta(days=int(rng.integers(0, 8)))).isoformat()])


def _copy_home(world: World, target: Path) -> Path:
    """A workspace copy a test may change (its cache left behind)."""
    shutil.copytree(world.home, target, ignore=shutil.ignore_patterns("cache"))
    return target


@pytest.mark.slow
@pytest.mark.parametrize("include_denied", [True, False])
def test_the_cached_ranking_equals_labelling_every_access(
    world: World, tmp_path: Path, include_denied: bool
) -> None:
    files = [world.home / "sim" / "complaints.csv"]
    for seed in range(3):
        files.append(tmp_path / f"random-{seed}.csv")
        _random_complaints(world, files[-1], seed)
    with Workspace.open(world.home) as ws:
        for path in files:
            got = trace_complaints(ws, path, include_denied=include_denied).lines
            assert got, path.name
            assert got == _reference(ws, path, include_denied), path.name


@pytest.mark.slow
def test_the_cache_is_reused_then_rebuilt_when_the_lake_changes(
    world: World, tmp_path: Path
) -> None:
    home = _copy_home(world, tmp_path / "ws")
    path = world.home / "sim" / "complaints.csv"
    with Workspace.open(home) as ws:
        first = trace_complaints(ws, path).lines
        built = sorted(firsts_dir(ws).glob("*.parquet"))
        assert [p.name.split("-")[0] for p in built] == ["counts", "firsts"]
        assert all(p.stat().st_mode & 0o077 == 0 for p in built)  # who accessed whom: owner only
        stamps = [p.stat().st_mtime_ns for p in built]
        assert trace_complaints(ws, path).lines == first
        assert [p.stat().st_mtime_ns for p in sorted(firsts_dir(ws).glob("*.parquet"))] == stamps
        # The last day's files leave the lake: its accesses no longer count.
        last = sorted(ws.settings.lake_dir.glob("day=*"))[-1]
        shutil.rmtree(last)
        changed = trace_complaints(ws, path).lines
        assert changed == _reference(ws, path, True)
        now = sorted(firsts_dir(ws).glob("*.parquet"))
        assert len(now) == 2 and not set(now) & set(built)  # superseded files are removed


@pytest.mark.slow
def test_the_counts_follow_the_staff_table(world: World, tmp_path: Path) -> None:
    home = _copy_home(world, tmp_path / "ws")
    path = world.home / "sim" / "complaints.csv"
    ring = sorted(world.scenario("ring")["persons"])
    with Workspace.open(home) as ws:
        before = trace_complaints(ws, path).lines
        with ws.store.engine.begin() as conn:  # the ring moved to a team of its own
            conn.execute(update(m.Staff).where(m.Staff.id.in_(ring)).values(team="moved"))
        after = trace_complaints(ws, path).lines
        assert after == _reference(ws, path, True)
        assert after != before
        moved = next(ln for ln in after if ln.dimension == "team" and ln.value == "moved")
        assert moved.victims_accessed > 0


@pytest.mark.slow
def test_a_workspace_whose_cache_cannot_be_written_gives_the_same_answer(
    world: World, tmp_path: Path
) -> None:
    home = _copy_home(world, tmp_path / "ws")
    (home / "cache").write_text("not a folder")  # mkdir fails here, even for root
    path = world.home / "sim" / "complaints.csv"
    with Workspace.open(home) as ws:
        assert trace_complaints(ws, path).lines == _reference(ws, path, True)
    assert (home / "cache").read_text() == "not a folder"


@pytest.mark.slow
def test_a_workspace_without_a_lake_ranks_nothing(world: World, tmp_path: Path) -> None:
    home = _copy_home(world, tmp_path / "ws")
    shutil.rmtree(home / "lake")
    (home / "lake").mkdir()
    with Workspace.open(home) as ws:
        result = trace_complaints(ws, world.home / "sim" / "complaints.csv")
    assert result.victims > 0 and result.lines == []


def _table(path: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect()
    try:
        return con.execute("SELECT * FROM read_parquet(?) ORDER BY ALL", [str(path)]).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_new_lake_files_are_merged_into_the_firsts_as_a_build_would(
    world: World, tmp_path: Path
) -> None:
    home = _copy_home(world, tmp_path / "ws")
    path = world.home / "sim" / "complaints.csv"
    lake = home / "lake"
    last = sorted(lake.glob("day=*"))[-1]
    aside = tmp_path / last.name
    shutil.move(last, aside)
    with Workspace.open(home) as ws:
        trace_complaints(ws, path)
        (before,) = firsts_dir(ws).glob("firsts-*.parquet")
        shutil.move(aside, last)  # the day's files arrive
        base, covered = firsts._best_base(firsts_dir(ws), set(lake_files(lake)))
        assert base == before and len(covered) == len(lake_files(lake)) - len(list(last.iterdir()))
        assert trace_complaints(ws, path).lines == _reference(ws, path, True)
        (grown,) = firsts_dir(ws).glob("firsts-*.parquet")
        assert grown != before
        built = firsts.firsts_file(lake, tmp_path / "fresh")
        assert built is not None and built.name == grown.name
        assert _table(grown) == _table(built)


def test_firsts_with_an_unfound_interaction_are_built_again_not_extended(tmp_path: Path) -> None:
    folder = tmp_path / "firsts"
    folder.mkdir()
    listed = [["day=2026-03-01/a.parquet", 10, 1]]
    for name, unresolved in (("firsts-v1-aaa", 1), ("firsts-v1-bbb", 0)):
        (folder / f"{name}.parquet").write_bytes(b"")
        doc = {"format": 1, "files": listed, "unresolved": unresolved}
        (folder / f"{name}.json").write_text(json.dumps(doc))
    files = {("day=2026-03-01/a.parquet", 10, 1), ("day=2026-03-02/b.parquet", 10, 1)}
    base, covered = firsts._best_base(folder, files)
    assert base == folder / "firsts-v1-bbb.parquet" and len(covered) == 1
    (folder / "firsts-v1-bbb.parquet").unlink()
    assert firsts._best_base(folder, files) == (None, set())
