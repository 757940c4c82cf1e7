"""The rows cache answers many customers as the lake does, whichever way they are listed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from trace_world import World

from bpoguard.trace import accesses
from bpoguard.trace.accesses import access_index, accesses_of


@pytest.mark.parametrize("inline", [1, accesses.INLINE_IDS])
def test_many_customers_listed_or_unnested_give_the_lakes_rows(
    world: World, lake: Path, tmp_path: Path, inline: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # inline=1: every list is past the constants' limit, so the unnested list is used.
    monkeypatch.setattr(accesses, "INLINE_IDS", inline)
    index = access_index(lake)
    people = list(index.people[:3])
    customers = sorted({int(c) for c in index.customers[:: max(1, index.customers.size // 300)]})
    start = dt.date.fromisoformat(world.truth["config"]["start"])
    cache = tmp_path / "cache"
    for before in (None, dt.datetime.combine(start + dt.timedelta(days=3), dt.time(0), dt.UTC)):
        for include_denied in (True, False):
            expected = accesses_of(lake, customers, before, include_denied, people=people)
            found = accesses_of(lake, customers, before, include_denied, cache, people=people)
            assert found == expected
    assert any(accesses_of(lake, customers, None, True, cache, people=people))
