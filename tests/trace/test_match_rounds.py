"""The block's look-ups are fetched in rounds that follow the search: few values digested twice.

The search asks a value of its countries' clients until one knows it, and a record's
later values of that client alone; the prefetch walks the same way, so that nearly
nothing is looked up singly, and far fewer values are digested than asking every
client of every value's countries would.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from trace_world import World

from bpoguard.cli.vault import provider
from bpoguard.fields import FieldType
from bpoguard.guard.vault import INDEXED, Vault
from bpoguard.trace import recognition
from bpoguard.trace.dump import read_dump
from bpoguard.trace.dumps import DumpSpec, make_dump
from bpoguard.trace.matcher import MATCHED, NOTHING, Matcher, clients
from bpoguard.trace.values import recognise
from bpoguard.workspace import Workspace

pytestmark = pytest.mark.slow


class _Counting(Vault):
    """A real vault that counts what it is asked (singly, and in batches)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.singly = 0
        self.batched = 0

    def lookup(self, *args: Any, **kwargs: Any) -> list[int]:
        self.singly += 1
        return super().lookup(*args, **kwargs)

    def lookup_many(self, conn: Any, client_id: str, field_: FieldType,
                    values: Iterable[str], *args: Any, **kwargs: Any) -> dict[str, list[int]]:  # fmt: skip
        values = list(values)
        self.batched += len(values)
        return super().lookup_many(conn, client_id, field_, values, *args, **kwargs)


def test_the_rounds_fetch_what_the_search_asks_and_little_more(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recognition, "FIRST_BLOCK", 60)
    monkeypatch.setattr(recognition, "BLOCK", 150)
    with Workspace.open(world.home) as ws:
        dump = tmp_path / "mixed.csv"
        make_dump(ws, DumpSpec("mixed", 400, "csv", seed=9), dump)
        records = list(read_dump(dump))
        with ws.store.engine.connect() as conn:
            known = clients(conn)
            vault = _Counting(provider(ws))
            matcher = Matcher(conn, vault, known)
            got = list(matcher.match_all(records))
    statuses = {r.status for r in got}
    assert MATCHED in statuses and NOTHING in statuses  # both kinds of record are in the dump
    # Every client of every value's countries: what the prefetch used to digest.
    in_country = {c.country: sum(k.country == c.country for k in known) for c in known}
    everyone = sum(
        sum(in_country.get(country, 0) for country in found.countries)
        for record in records
        for found in {f for f in recognise(record.cells).found if f.field in INDEXED}
    )
    assert matcher.stats.lookups > 0
    assert vault.singly <= matcher.stats.lookups // 20  # the walk foresaw nearly every one
    assert matcher.stats.lookups <= vault.batched + vault.singly < 0.8 * everyone
