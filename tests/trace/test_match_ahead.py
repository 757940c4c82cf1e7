"""Recognising the next block in a forked worker changes no answer, and leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from trace_world import World, reaped

from bpoguard.cli.vault import provider
from bpoguard.guard.vault import Vault
from bpoguard.trace import recognition
from bpoguard.trace.dump import Cells, read_dump
from bpoguard.trace.dumps import DumpSpec, make_dump
from bpoguard.trace.matcher import Matcher, RecordMatch, clients
from bpoguard.trace.values import pack, recognise, unpack
from bpoguard.workspace import Workspace

pytestmark = pytest.mark.skipif(not recognition._CAN_FORK, reason="needs fork and two cores")


@given(st.lists(st.lists(st.tuples(st.none() | st.text(max_size=12), st.text(max_size=60)))))
def test_sightings_come_back_from_a_worker_as_they_went(
    records: list[list[tuple[str | None, str]]],
) -> None:
    sightings = [recognise(cells) for cells in records]
    assert unpack(pack(sightings)) == sightings


def test_card_numbers_and_partials_survive_the_pipe() -> None:
    cells = [("card", "4960 9153 7641 3372"), ("mob", "07291 522458"), ("x", "ending 3372")]
    sighting = recognise(cells)
    assert sighting.found and sighting.partials
    assert unpack(pack([sighting])) == [sighting]


def _dump(world: World, tmp_path: Path) -> list[Cells]:
    with Workspace.open(world.home) as ws:
        dump = tmp_path / "mixed.csv"
        make_dump(ws, DumpSpec("mixed", 300, "csv", seed=6), dump)
    return list(read_dump(dump))


def _match(world: World, records: list[Cells]) -> list[RecordMatch]:
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        return list(Matcher(conn, Vault(provider(ws)), clients(conn)).match_all(records))


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Blocks of a few dozen records, each recognised ahead; the workers' pids, as started."""
    monkeypatch.setattr(recognition, "FIRST_BLOCK", 20)
    monkeypatch.setattr(recognition, "BLOCK", 45)
    started: list[int] = []
    start = recognition._Recognition._start

    def _counted(self: recognition._Recognition) -> None:
        start(self)
        if self._pid is not None:
            started.append(self._pid)

    monkeypatch.setattr(recognition._Recognition, "_start", _counted)
    return started


def test_records_recognised_in_workers_match_as_recognised_here(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_blocks: list[int]
) -> None:
    records = _dump(world, tmp_path)
    monkeypatch.setattr(recognition, "AHEAD_AT", 10**9)
    here = _match(world, records)
    assert small_blocks == []
    monkeypatch.setattr(recognition, "AHEAD_AT", 1)
    ahead = _match(world, records)
    assert len(small_blocks) >= 6  # every block went to a worker
    assert ahead == here
    assert sum(1 for r in here if r.customer_id is not None) > 50
    assert all(reaped(pid) for pid in small_blocks)


def test_a_failing_worker_leaves_the_block_to_be_recognised_here_silently(
    world: World,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    small_blocks: list[int],
) -> None:
    records = _dump(world, tmp_path)
    monkeypatch.setattr(recognition, "AHEAD_AT", 10**9)
    here = _match(world, records)
    parent = os.getpid()

    def _broken(sightings: object) -> bytes:
        if os.getpid() != parent:
            raise RuntimeError(f"worker failed on {records[0].cells}")  # would name values
        raise AssertionError("pack runs only in the worker")

    monkeypatch.setattr(recognition, "pack", _broken)
    monkeypatch.setattr(recognition, "AHEAD_AT", 1)
    capfd.readouterr()
    assert _match(world, records) == here
    assert small_blocks  # the workers were started, and failed
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no traceback, and so no value, from the workers


def test_stopping_early_leaves_no_worker_behind(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_blocks: list[int]
) -> None:
    records = _dump(world, tmp_path)
    monkeypatch.setattr(recognition, "AHEAD_AT", 1)
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        stream = Matcher(conn, Vault(provider(ws)), clients(conn)).match_all(records)
        first = [next(stream) for _ in range(25)]  # into the second block: a third is ahead
        stream.close()
    assert len(first) == 25
    assert len(small_blocks) >= 2
    assert all(reaped(pid) for pid in small_blocks)
