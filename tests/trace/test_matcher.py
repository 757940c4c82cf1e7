"""The batched matcher decides every record exactly as looking its values up one by one does."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event
from trace_world import World

from bpoguard.cli.vault import provider
from bpoguard.guard.vault import Vault
from bpoguard.trace import matcher as matcher_module
from bpoguard.trace import recognition
from bpoguard.trace.dump import Cells, read_dump
from bpoguard.trace.dumps import DumpSpec, make_dump
from bpoguard.trace.matcher import MATCHED, Matcher, RecordMatch, clients
from bpoguard.workspace import Workspace

pytestmark = pytest.mark.slow


def _records(world: World, tmp_path: Path) -> list[Cells]:
    """A mixed dump from the world, plus records with partial values and shared columns."""
    with Workspace.open(world.home) as ws:
        dump = tmp_path / "mixed.csv"
        make_dump(ws, DumpSpec("mixed", 240, "csv", seed=4), dump)
    records = list(read_dump(dump))
    customers = world.customers("org-albion")
    extra = tmp_path / "partial.csv"
    lines = ["name,acc,card,phone"]
    for cid in list(customers)[:30]:
        c = customers[cid]
        lines.append(
            f"{c['name']},{c['account_number']},ending {c['card_number'][-4:]},{c['phone']}"
        )
        lines.append(f"x,{c['account_number']},**** 0000,")  # a partial that disagrees
    extra.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return records + list(read_dump(extra))


def _one_by_one(ws: Workspace, records: list[Cells]) -> tuple[list[RecordMatch], int]:
    with ws.store.engine.connect() as conn:
        m = Matcher(conn, Vault(provider(ws)), clients(conn))
        return [m.match(r) for r in records], m.stats.lookups


def test_batched_matching_gives_the_same_answers_as_one_by_one(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = _records(world, tmp_path)
    # Small blocks, so that the repeats across blocks and the learning of columns are tested.
    monkeypatch.setattr(recognition, "BLOCK", 37)
    monkeypatch.setattr(recognition, "FIRST_BLOCK", 11)
    monkeypatch.setattr(matcher_module, "LEARN_AFTER", 20)  # columns learn within the dump
    with Workspace.open(world.home) as ws:
        expected, lookups = _one_by_one(ws, records)
        statements = 0

        def _count(*_: object) -> None:
            nonlocal statements
            statements += 1

        event.listen(ws.store.engine, "before_cursor_execute", _count)
        with ws.store.engine.connect() as conn:
            batched = Matcher(conn, Vault(provider(ws)), clients(conn))
            got = list(batched.match_all(records))
        event.remove(ws.store.engine, "before_cursor_execute", _count)
    assert got == expected
    assert batched.stats.lookups == lookups
    assert sum(r.status == MATCHED for r in got) > 100
    assert any(r.partials for r in got) and any(
        v == "disagrees" for r in got for _, v in r.partials
    )
    # The look-ups were answered in batches: far fewer statements than look-ups.
    assert statements < lookups / 2
