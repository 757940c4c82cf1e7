"""Matching pauses the cyclic garbage collector per block: it must make no cycles to collect."""

from __future__ import annotations

import gc
import itertools
from pathlib import Path

import pytest
from trace_world import World

from bpoguard.cli.vault import provider
from bpoguard.guard.vault import Vault
from bpoguard.trace import recognition
from bpoguard.trace.dump import Cells, read_dump
from bpoguard.trace.dumps import DumpSpec, make_dump
from bpoguard.trace.matcher import MATCHED, Matcher, clients
from bpoguard.workspace import Workspace

pytestmark = pytest.mark.slow


def _records(world: World, tmp_path: Path) -> list[Cells]:
    with Workspace.open(world.home) as ws:
        dump = tmp_path / "mixed.csv"
        make_dump(ws, DumpSpec("mixed", 300, "csv", seed=11), dump)
    return list(read_dump(dump))


def test_matching_a_dump_leaves_no_reference_cycles_behind(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several blocks, the first recognised here and the rest in workers where they can be.
    monkeypatch.setattr(recognition, "FIRST_BLOCK", 40)
    monkeypatch.setattr(recognition, "BLOCK", 90)
    monkeypatch.setattr(recognition, "AHEAD_AT", 1)
    records = _records(world, tmp_path)
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        vault = Vault(provider(ws))
        list(Matcher(conn, vault, clients(conn)).match_all(records))  # statements compiled
        gc.collect()
        was = gc.isenabled()
        gc.disable()
        try:
            got = list(Matcher(conn, vault, clients(conn)).match_all(records))
            unreachable = gc.collect()
        finally:
            if was:
                gc.enable()
    assert sum(r.status == MATCHED for r in got) > 50
    assert unreachable == 0  # refcounting freed everything: pausing the collector cost nothing


def test_the_collector_is_on_again_between_blocks_and_after_matching(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recognition, "FIRST_BLOCK", 40)
    monkeypatch.setattr(recognition, "BLOCK", 90)
    records = _records(world, tmp_path)
    assert gc.isenabled()
    with Workspace.open(world.home) as ws, ws.store.engine.connect() as conn:
        stream = Matcher(conn, Vault(provider(ws)), clients(conn)).match_all(records)
        on_while_consumed = [gc.isenabled() for _ in stream]
    assert len(on_while_consumed) == len(records)
    assert all(on_while_consumed)  # the consumer's own code runs with the collector on
    assert gc.isenabled()


def test_blocks_grow_from_the_first_to_the_largest() -> None:
    sizes = [len(b) for b in recognition._blocks(Cells(n, "", ()) for n in range(40_000))]
    assert sizes[0] == recognition.FIRST_BLOCK
    assert all(a < b or b == recognition.BLOCK for a, b in itertools.pairwise(sizes[:-1]))
    assert max(sizes) == recognition.BLOCK
    assert sum(sizes) == 40_000
