"""A dump's accesses from the per-person totals and the by-customer pair summary.

Everything here is held equal to the whole index and the lake's rows, which is
what a trace read before these caches existed (and still reads when they cannot
answer): the same people, volumes, accessors, relevant accessors, rankings and
reports, for every window and with refused requests counted or not.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trace_world import World

from bpoguard.guard.keys import KeyfileProvider
from bpoguard.guard.vault import Vault
from bpoguard.trace import accesses, bycustomer, leak
from bpoguard.trace.accesses import (
    BARE,
    access_index,
    accesses_of,
    dump_accesses,
    dump_caches,
    pair_summary,
)
from bpoguard.trace.dumps import DumpSpec, make_dump
from bpoguard.trace.leak import LeakOptions, _relevant, cache_dir, trace_leak
from bpoguard.trace.report import leak_document
from bpoguard.trace.scoring import AccessIndex, attribute
from bpoguard.workspace import Workspace

FIELDS = ("name", "phone", "card_number", "address", "date_of_birth", "iban", "passport_number")


def _windows(world: World) -> list[dt.datetime | None]:
    start = dt.date.fromisoformat(world.truth["config"]["start"])
    return [None] + [
        dt.datetime.combine(start + dt.timedelta(days=d), dt.time(0), tzinfo=dt.UTC)
        for d in (1, 3, 5)
    ]


def _dump(lake: Path, seed: int, count: int = 60) -> dict[int, set[str]]:
    """Customers, most of them accessed and a few never, each with some leaked fields."""
    rng = np.random.default_rng(seed)
    known = access_index(lake).customers
    picked = {int(c) for c in rng.choice(known, size=count, replace=False)} | {10**9 + 7}
    return {c: set(rng.choice(FIELDS, size=int(rng.integers(1, 4)), replace=False)) for c in picked}


def _accessors(index: AccessIndex, customer: int) -> set[str]:
    pos = int(index.positions([customer])[0])
    return set() if pos < 0 else {index.people[int(p)] for p in index.accessors_of(pos)}


def _check(lake: Path, cache: Path, leaked: dict[int, set[str]], before: dt.datetime | None,
           include_denied: bool) -> int:  # fmt: skip
    """Hold the cached answer equal to the whole one; the number of relevant pairs."""
    full = access_index(lake, before, include_denied)
    rows = accesses_of(lake, leaked, before, include_denied)
    expected = _relevant(rows, leaked, {name: k for k, name in enumerate(full.people)})
    got = dump_accesses(lake, leaked, before, include_denied, cache)
    assert got is not None
    index, relevant = got
    assert index.people == full.people
    assert np.array_equal(index.person_size, full.person_size)
    assert index.pairs == full.pairs
    for customer in leaked:
        assert _accessors(index, customer) == _accessors(full, customer)
    named = {c: {full.people[p] for p in who} for c, who in expected.items()}
    assert {c: {index.people[p] for p in who} for c, who in relevant.items()} == named
    assert attribute(index, list(leaked), relevant) == attribute(full, list(leaked), expected)
    return sum(len(w) for w in expected.values())


def test_a_dumps_accesses_from_the_caches_equal_the_whole_index(
    world: World, lake: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    for seed in (1, 2):
        leaked = _dump(lake, seed)
        for before in _windows(world):
            for include_denied in (True, False):
                found = _check(lake, cache, leaked, before, include_denied)
                assert found or before == _windows(world)[1]  # the test has something to hold


def test_pairs_whose_requests_straddle_the_window_end_are_decided_by_their_rows(
    world: World, lake: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    summary = pq.read_table(pair_summary(lake, cache)).to_pylist()
    before = _windows(world)[3]
    assert before is not None
    bound = int(before.timestamp() * 1_000_000)
    # Pairs first seen before the end and seen again after it, with a field asked
    # for only after the end: the summary's fields alone would count them wrongly.
    straddling = [r for r in summary if r["first_us"] < bound <= r["last_us"]]
    assert straddling
    rows = accesses_of(lake, {r["customer_id"] for r in straddling})
    later: dict[tuple[str, int], set[str]] = {}
    earlier: dict[tuple[str, int], set[str]] = {}
    for a in rows:
        side = earlier if a.at < before else later
        side.setdefault((a.person, a.customer_id), set()).update(a.fields or {BARE})
    only_later = {k: later[k] - earlier.get(k, set()) for k in later if k in earlier}
    only_later = {k: v - {BARE} for k, v in only_later.items() if v - {BARE} and
                  BARE not in earlier[k]}  # fmt: skip
    assert only_later, "the world has no pair that asked for a new field after the end"
    leaked = {c: set(fields) for (_, c), fields in list(only_later.items())[:40]}
    _check(lake, cache, leaked, before, True)
    index, relevant = dump_accesses(lake, leaked, before, True, cache) or (None, {})
    assert index is not None
    for (person, customer), fields in list(only_later.items())[:40]:
        if leaked[customer] == fields and not earlier[(person, customer)] & fields:
            assert index.people.index(person) not in relevant[customer]


def test_the_pair_index_is_the_summary_by_customer_found_by_binary_search(
    world: World, lake: Path, tmp_path: Path
) -> None:
    caches = dump_caches(lake, tmp_path / "cache")
    summary = pq.read_table(caches.summary).to_pylist()
    with pa.memory_map(str(caches.pairs)) as source:
        index = pa.ipc.open_file(source).read_all()
        assert index.num_rows == len(summary)
        customers = index.column("customer_id").to_numpy()
        assert np.all(customers[1:] >= customers[:-1])  # what the binary search relies on
    assert (caches.pairs.stat().st_mode & 0o777) == 0o600
    assert (caches.totals.stat().st_mode & 0o777) == 0o600
    people = sorted({r["actor"] for r in summary})
    ids = [0, *sorted({r["customer_id"] for r in summary})[::7], 10**9]  # two nobody accessed
    pairs = accesses._dump_pairs(caches.pairs, ids, accesses.NEVER, True, people)
    expected = sorted((r["customer_id"], r["actor"]) for r in summary if r["customer_id"] in ids)
    got = sorted(
        (int(c), people[int(p)]) for c, p in zip(pairs.customer, pairs.person, strict=True)
    )
    assert got == expected
    asked = {(r["customer_id"], r["actor"]): frozenset(r["fields"].split(",")) for r in summary}
    for c, p, fields in zip(
        pairs.customer.tolist(), pairs.person.tolist(), pairs.fields, strict=True
    ):
        assert asked[(c, people[p])] == fields


def test_the_totals_follow_the_lake_as_the_summary_does(
    world: World, lake: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    days = sorted(lake.glob("day=*"))
    aside = tmp_path / "aside"
    aside.mkdir()
    for day in days[len(days) // 2 :]:
        shutil.move(day, aside / day.name)
    leaked = _dump(lake, 3)
    first = dump_caches(lake, cache).pairs
    _check(lake, cache, leaked, None, True)
    for day in sorted(aside.iterdir()):
        shutil.move(day, lake / day.name)  # the lake grew: new pairs, bigger volumes
    caches = dump_caches(lake, cache)
    assert caches.pairs != first and not first.exists()
    digest = caches.summary.stem.split("-")[-1]  # one lake, one digest
    assert caches.pairs.stem.endswith(digest) and caches.totals.stem.endswith(digest)
    assert sorted((cache / "dump").iterdir()) == sorted([caches.pairs, caches.totals])
    for before in _windows(world):
        _check(lake, cache, leaked, before, True)
    files = sorted(lake.glob("day=*/*.parquet"))
    files[-1].unlink()  # the lake lost a file: its pairs and volumes must go too
    for before in _windows(world):
        _check(lake, cache, leaked, before, False)


def test_the_caches_step_aside_when_they_cannot_answer(
    world: World, lake: Path, tmp_path: Path
) -> None:
    leaked = _dump(lake, 4)
    noon = dt.datetime.combine(
        dt.date.fromisoformat(world.truth["config"]["start"]) + dt.timedelta(days=2),
        dt.time(12),
        tzinfo=dt.UTC,
    )
    assert dump_accesses(lake, leaked, noon, True, tmp_path / "cache") is None
    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    assert dump_accesses(lake, leaked, None, True, blocked / "cache") is None
    assert dump_accesses(tmp_path / "no-lake", leaked, None, True, tmp_path / "c2") is None


def test_accesses_of_some_people_are_those_peoples_rows(
    world: World, lake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaked = _dump(lake, 5)
    everyone = accesses_of(lake, leaked)
    some = sorted({a.person for a in everyone})[::3]
    assert some
    expected = [a for a in everyone if a.person in some]
    assert accesses_of(lake, leaked, people=some) == expected
    assert accesses_of(lake, leaked, cache_dir=tmp_path / "cache", people=some) == expected
    assert accesses_of(lake, leaked, people=[]) == []
    # Customers in too many buckets: the people's own files are read instead.
    monkeypatch.setattr(bycustomer, "worth_it", lambda _: False)
    assert bycustomer.person_files(lake, tmp_path / "cache", some)
    assert accesses_of(lake, leaked, cache_dir=tmp_path / "cache", people=some) == expected
    for path in bycustomer.person_files(lake, tmp_path / "cache", some):
        assert (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.slow
def test_reports_are_the_same_with_the_caches_and_without(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = dt.date.fromisoformat(world.truth["config"]["start"])
    with Workspace.open(world.home) as ws:
        for kind, records in (("mixed", 120), ("pair", 30)):
            dump = tmp_path / f"{kind}.csv"
            make_dump(ws, DumpSpec(kind, records, "csv", 3), dump)
            for first_seen in (None, start + dt.timedelta(days=3)):
                for include_denied in (True, False):
                    options = LeakOptions(first_seen=first_seen, include_denied=include_denied)
                    documents = []
                    for cached in (True, False):
                        if not cached:
                            monkeypatch.setattr(leak, "dump_accesses", lambda *_: None)
                        vault = Vault(KeyfileProvider.from_dir(ws.settings.keys_dir))
                        trace = trace_leak(ws, vault, dump, options)
                        documents.append(json.dumps(leak_document(trace), sort_keys=True,
                                                    default=str))  # fmt: skip
                        monkeypatch.undo()
                    assert documents[0] == documents[1]
                    assert json.loads(documents[0])["ranking"]
        assert list((cache_dir(ws) / "dump").glob("bycustomer-v*.arrow"))
